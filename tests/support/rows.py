"""Reads through the superuser `sql` connection, independent of the code under test, and the
roles a request runs as (`as_role`, `as_user`)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql as pgsql
from psycopg.rows import dict_row

from shared.platform.client import UserContext


def job_row(sql: psycopg.Connection, job_id: str) -> dict[str, Any]:
    """The job's row in public.processing_jobs (it must exist)."""
    with sql.cursor(row_factory=dict_row) as cur:
        found = cur.execute(
            "select * from public.processing_jobs where id = %s", (job_id,)
        ).fetchone()
    assert found is not None, job_id
    return found


def job_events(sql: psycopg.Connection, job_id: str | None = None) -> list[dict[str, Any]]:
    """The processing events of one job (or of all jobs), oldest first."""
    with sql.cursor(row_factory=dict_row) as cur:
        if job_id is None:
            return cur.execute(
                "select * from public.document_processing_events order by id"
            ).fetchall()
        return cur.execute(
            "select * from public.document_processing_events where job_id = %s order by id",
            (job_id,),
        ).fetchall()


def event_counts(sql: psycopg.Connection, job_id: str) -> dict[str, int]:
    """How many events of each type the job has."""
    rows = sql.execute(
        "select event_type, count(*) from public.document_processing_events"
        " where job_id = %s group by event_type",
        (job_id,),
    ).fetchall()
    return {event_type: n for event_type, n in rows}


def row_count(sql: psycopg.Connection, table: str) -> int:
    """The number of rows of public.`table`."""
    query = pgsql.SQL("select count(*) from public.{}").format(pgsql.Identifier(table))
    row = sql.execute(query).fetchone()
    assert row is not None
    return int(row[0])


def storage_path(sql: psycopg.Connection, document_id: str) -> str:
    """Where the document's object is stored."""
    row = sql.execute(
        "select storage_path from public.documents where id = %s", (document_id,)
    ).fetchone()
    assert row is not None
    return str(row[0])


def public_tables(conn: psycopg.Connection) -> dict[str, bool]:
    """Every table of the public schema, and whether row-level security is enabled on it."""
    rows = conn.execute(
        "select relname, relrowsecurity from pg_class"
        " where relnamespace = 'public'::regnamespace and relkind in ('r', 'p') order by 1"
    ).fetchall()
    return {str(name): bool(rls) for name, rls in rows}


@contextmanager
def as_role(
    conn: psycopg.Connection, role: str, claims: Mapping[str, Any] | None = None
) -> Iterator[psycopg.Connection]:
    """`begin; set local role ...; set_config('request.jwt.claims', ...)`, rolled back after:
    what PostgREST (and Realtime, per change) does for a caller."""
    with conn.transaction(force_rollback=True):
        conn.execute(pgsql.SQL("set local role {}").format(pgsql.Identifier(role)))
        if claims is not None:
            conn.execute(
                "select set_config('request.jwt.claims', %s, true)", (json.dumps(dict(claims)),)
            )
        yield conn


def as_user(conn: psycopg.Connection, user: UserContext) -> Any:
    """`as_role` for a signed-in user: `authenticated`, with the user's claims."""
    return as_role(conn, "authenticated", user.claims)
