"""Supabase Realtime: `processing_jobs` and `documents` are published, and RLS decides who sees
which row.

A Realtime server cannot run here (it is an Elixir service reading a logical replication slot),
so these tests check the two things docflow's side of it consists of:

- the `supabase_realtime` publication holds both tables (migration
  20261207150200_realtime_publication.sql), and that migration is safe to run on any state of
  the publication;
- Realtime's authorisation of `postgres_changes`: for each change it switches to the
  subscriber's role with the subscriber's JWT claims in a transaction (`set local role
  authenticated`, `request.jwt.claims`) and keeps the row only if the table's SELECT policy
  lets that subscriber see it. The same switch here shows a user sees only their own documents
  and jobs, an admin all of them, and `anon` nothing.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from psycopg import sql as pgsql

from shared.platform.config import REPO_ROOT
from tests.support.factories import create_upload
from tests.support.rows import as_role

PUBLISHED = {"documents", "processing_jobs"}
MIGRATION: Path = REPO_ROOT / "supabase" / "migrations" / "20261207150200_realtime_publication.sql"


def published_tables(conn: psycopg.Connection) -> set[str]:
    rows = conn.execute(
        "select tablename from pg_publication_tables"
        " where pubname = 'supabase_realtime' and schemaname = 'public'"
    ).fetchall()
    return {r[0] for r in rows}


def visible(conn: psycopg.Connection, table: str, row_id: str) -> bool:
    """Whether the subscriber may receive the change of this row (Realtime selects it by its
    primary key under the subscriber's role)."""
    query = pgsql.SQL("select exists (select from public.{} where id = %s)").format(
        pgsql.Identifier(table)
    )
    row = conn.execute(query, (row_id,)).fetchone()
    assert row is not None
    return bool(row[0])


# --- the publication ---------------------------------------------------------------------------


def test_publication_holds_jobs_and_documents(sql):
    assert published_tables(sql) >= PUBLISHED
    row = sql.execute(
        "select pubinsert, pubupdate, pubdelete from pg_publication"
        " where pubname = 'supabase_realtime'"
    ).fetchone()
    assert row == (True, True, True)
    # UPDATE and DELETE on a published table need a replica identity: the primary key.
    identities = sql.execute(
        "select c.relname, c.relreplident, exists (select from pg_index i"
        "        where i.indrelid = c.oid and i.indisprimary)"
        "  from pg_class c where c.oid in ('public.documents'::regclass,"
        "                                  'public.processing_jobs'::regclass)"
        " order by 1"
    ).fetchall()
    assert identities == [("documents", "d", True), ("processing_jobs", "d", True)]


def test_the_migration_skips_tables_already_published(sql):
    before = published_tables(sql)
    sql.execute(MIGRATION.read_text())  # a DO block: one statement
    assert published_tables(sql) == before


def test_the_migration_creates_a_missing_publication(sql):
    with sql.transaction(force_rollback=True):
        sql.execute("drop publication supabase_realtime")
        sql.execute(MIGRATION.read_text())
        assert published_tables(sql) == PUBLISHED


def test_the_migration_leaves_a_publication_for_all_tables_alone(sql):
    """A project may publish everything; adding a table to it would fail."""
    with sql.transaction(force_rollback=True):
        sql.execute("drop publication supabase_realtime")
        sql.execute("create publication supabase_realtime for all tables")
        sql.execute(MIGRATION.read_text())
        assert published_tables(sql) >= PUBLISHED


# --- RLS as Realtime applies it ------------------------------------------------------------


def test_subscribers_see_only_the_rows_their_select_policy_allows(db, make_user, sql):
    alice, bob, admin = make_user(), make_user(), make_user(admin=True)
    a, b = create_upload(db, alice), create_upload(db, bob)
    db.call("claim_jobs", worker_id="w", max_jobs=2)  # an UPDATE of both jobs, as published
    rows = {
        ("processing_jobs", "alice"): a["job_id"],
        ("processing_jobs", "bob"): b["job_id"],
        ("documents", "alice"): a["document_id"],
        ("documents", "bob"): b["document_id"],
    }
    subscribers = {
        "alice": ("authenticated", alice.claims, {"alice"}),
        "bob": ("authenticated", bob.claims, {"bob"}),
        "admin": ("authenticated", admin.claims, {"alice", "bob"}),
    }
    for name, (role, claims, owners) in subscribers.items():
        for (table, owner), row_id in rows.items():
            with as_role(sql, role, claims):
                assert visible(sql, table, row_id) == (owner in owners), (name, table, owner)
    # anon cannot read either table at all: Realtime sends it nothing.
    for table in PUBLISHED:
        with pytest.raises(psycopg.errors.InsufficientPrivilege), as_role(sql, "anon", None):
            visible(sql, table, a["job_id"])


def test_subscribers_may_read_every_published_column_of_their_rows(sql):
    """Realtime sends the whole row; `authenticated` needs SELECT on every column for it."""
    rows = sql.execute(
        "select c.relname, a.attname from pg_attribute a join pg_class c on c.oid = a.attrelid"
        " where c.oid in ('public.documents'::regclass, 'public.processing_jobs'::regclass)"
        "   and a.attnum > 0 and not a.attisdropped"
        "   and not has_column_privilege('authenticated', c.oid, a.attnum, 'SELECT')"
    ).fetchall()
    assert rows == []
