"""One database, as on Supabase: the real Storage API's schema, docflow's bootstrap and migrations.

The `storage_api` session fixture prepares its database in Supabase's order (the Storage
API's migrations, then docflow's bootstrap, then docflow's migrations), with the Storage API
logged in as `supabase_storage_admin`. These tests check that order's result.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from shared.dev import migrate
from tests.support.storage_api import RealStorageApi


def _storage_catalog(conn: psycopg.Connection) -> list[tuple[object, ...]]:
    """Everything in `storage`: relations, columns, functions, their owners and grants."""
    relations = conn.execute(
        "select c.relname, c.relkind, pg_get_userbyid(c.relowner), c.relacl::text, "
        "c.relrowsecurity from pg_class c where c.relnamespace = 'storage'::regnamespace "
        "order by 1"
    ).fetchall()
    columns = conn.execute(
        "select table_name, column_name, data_type, column_default from "
        "information_schema.columns where table_schema = 'storage' order by 1, 2"
    ).fetchall()
    functions = conn.execute(
        "select p.oid::regprocedure::text, pg_get_userbyid(p.proowner), p.proacl::text, "
        "md5(p.prosrc) from pg_proc p where p.pronamespace = 'storage'::regnamespace order by 1"
    ).fetchall()
    schema = conn.execute(
        "select pg_get_userbyid(nspowner), nspacl::text from pg_namespace where nspname = 'storage'"
    ).fetchall()
    policies = conn.execute(
        "select tablename, policyname, cmd, roles::text, qual, with_check from pg_policies "
        "where schemaname = 'storage' order by 1, 2"
    ).fetchall()
    return [*schema, *relations, *columns, *functions, *policies]


@pytest.fixture
def admin(real_storage: RealStorageApi) -> Iterator[psycopg.Connection]:
    with psycopg.connect(real_storage.admin_database_url, autocommit=True) as conn:
        yield conn


def test_the_storage_schema_is_the_storage_apis_own(admin: psycopg.Connection) -> None:
    owner = admin.execute(
        "select pg_get_userbyid(nspowner) from pg_namespace where nspname = 'storage'"
    ).fetchone()
    assert owner == ("supabase_storage_admin",)
    tables = dict(
        admin.execute(
            "select tablename, tableowner from pg_tables where schemaname = 'storage'"
        ).fetchall()
    )
    assert {"buckets", "objects", "migrations", "s3_multipart_uploads"} <= set(tables)
    assert set(tables.values()) == {"supabase_storage_admin"}
    # columns that only the real schema has, not the bootstrap's stand-in
    columns = {
        row[0]
        for row in admin.execute(
            "select column_name from information_schema.columns "
            "where table_schema = 'storage' and table_name = 'objects'"
        ).fetchall()
    }
    assert {"owner_id", "version", "user_metadata"} <= columns
    row = admin.execute("select count(*) from storage.migrations").fetchone()
    assert row is not None and row[0] > 50


def test_the_server_logs_in_as_supabase_storage_admin(
    real_storage: RealStorageApi, admin: psycopg.Connection
) -> None:
    real_storage.storage().exists("00000000-0000-0000-0000-000000000000/none.txt")
    users = {
        row[0]
        for row in admin.execute(
            "select usename from pg_stat_activity where datname = current_database() "
            "and pid <> pg_backend_pid()"
        ).fetchall()
    }
    assert users == {"supabase_storage_admin"}


def test_docflows_migrations_made_the_bucket_and_policies(admin: psycopg.Connection) -> None:
    bucket = admin.execute(
        "select public, file_size_limit from storage.buckets where id = 'documents'"
    ).fetchone()
    assert bucket == (False, 209715200)
    policies = admin.execute(
        "select policyname from pg_policies where schemaname = 'storage' "
        "and tablename = 'objects' order by 1"
    ).fetchall()
    assert policies == [("documents_bucket_insert_own",), ("documents_bucket_read_own",)]
    applied = admin.execute("select count(*) from supabase_migrations.schema_migrations").fetchone()
    assert applied == (len(migrate.discover()),)


def test_the_bootstrap_leaves_the_real_storage_schema_alone(
    real_storage: RealStorageApi, admin: psycopg.Connection
) -> None:
    before = _storage_catalog(admin)
    with psycopg.connect(real_storage.database_url, autocommit=True) as conn:
        migrate.bootstrap(conn)  # as `postgres`, as every `docflow db migrate` runs it
    migrate.bootstrap(admin)  # and as the superuser, as the cluster set-up runs it
    assert _storage_catalog(admin) == before
