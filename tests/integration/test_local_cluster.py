"""The local database behaves like a hosted Supabase one.

Hosted Supabase runs `supabase db push` as a NOSUPERUSER `postgres` with BYPASSRLS; `auth` and
`storage` belong to their own admin roles; the API roles carry statement timeouts that
PostgREST applies per transaction. The embedded cluster keeps the same privileges, so that a
migration or a call that would fail on a hosted project fails here too.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import psycopg
import pytest

from shared.dev import localdb, migrate
from shared.platform.config import REPO_ROOT
from shared.platform.errors import ConfigError, Unavailable

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("TEST_DATABASE_URL")),
    reason="checks the embedded cluster's Supabase-like roles; TEST_DATABASE_URL is another server",
)


def _one(conn: psycopg.Connection, query: str, *params: object) -> object:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


# --- roles and ownership -------------------------------------------------------------------


def test_the_service_login_is_postgres_without_superuser_but_with_bypassrls(database_url):
    with psycopg.connect(database_url) as conn:
        assert _one(conn, "select current_user") == "postgres"
        super_, bypass, createdb = conn.execute(
            "select rolsuper, rolbypassrls, rolcreatedb from pg_roles where rolname = 'postgres'"
        ).fetchone()
    assert (super_, bypass, createdb) == (False, True, True)


def test_the_only_superuser_is_supabase_admin(sql):
    superusers = {r[0] for r in sql.execute("select rolname from pg_roles where rolsuper")}
    assert superusers == {"supabase_admin"}


def test_auth_and_storage_belong_to_their_admins_and_postgres_only_uses_them(sql):
    owners = dict(
        sql.execute(
            "select nspname, nspowner::regrole::text from pg_namespace"
            " where nspname in ('auth', 'storage')"
        ).fetchall()
    )
    assert owners == {"auth": "supabase_auth_admin", "storage": "supabase_storage_admin"}
    tables = dict(
        sql.execute(
            "select c.oid::regclass::text, c.relowner::regrole::text from pg_class c"
            " where c.oid in ('auth.users'::regclass, 'storage.objects'::regclass,"
            "                 'storage.buckets'::regclass)"
        ).fetchall()
    )
    assert tables == {
        "auth.users": "supabase_auth_admin",
        "storage.objects": "supabase_storage_admin",
        "storage.buckets": "supabase_storage_admin",
    }
    for schema in ("auth", "storage"):
        assert _one(sql, "select has_schema_privilege('postgres', %s, 'usage')", schema)
        assert not _one(sql, "select has_schema_privilege('postgres', %s, 'create')", schema)
    for admin in ("supabase_auth_admin", "supabase_storage_admin", "supabase_admin"):
        assert not _one(sql, "select pg_has_role('postgres', %s, 'member')", admin)
    # The table grants Supabase gives the migration role.
    assert _one(sql, "select has_table_privilege('postgres', 'auth.users', 'insert, references')")
    assert _one(sql, "select has_table_privilege('postgres', 'storage.buckets', 'insert, update')")


def test_the_migrations_ran_as_postgres(sql):
    owners = {
        r[0]
        for r in sql.execute(
            "select distinct relowner::regrole::text from pg_class"
            " where relnamespace = 'public'::regnamespace and relkind in ('r', 'p', 'v', 'S')"
        )
    }
    assert owners == {"postgres"}
    assert (
        _one(
            sql, "select datdba::regrole::text from pg_database where datname = current_database()"
        )
        == "postgres"
    )


# --- migrations that hosted Supabase would refuse fail here too -----------------------------


@pytest.mark.parametrize(
    ("name", "statement"),
    [
        ("needs_superuser", "create role docflow_test_super superuser"),
        ("alters_storage_table", "alter table storage.objects add column docflow_extra int"),
        ("creates_in_auth", "create table auth.docflow_extra (id int)"),
        ("alters_auth_users", "alter table auth.users add column docflow_extra int"),
    ],
)
def test_a_migration_hosted_supabase_would_refuse_fails_locally(
    database_url, sql, tmp_path: Path, name: str, statement: str
):
    directory = tmp_path / "migrations"
    directory.mkdir()
    for m in migrate.discover():
        shutil.copy(m.path, directory / m.path.name)
    (directory / f"29991231000000_{name}.sql").write_text(statement + ";\n")

    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        migrate.migrate(database_url, directory)

    applied = {
        r[0] for r in sql.execute("select version from supabase_migrations.schema_migrations")
    }
    assert "29991231000000" not in applied
    assert not _one(
        sql, "select exists (select from pg_roles where rolname = 'docflow_test_super')"
    )


def test_the_storage_policy_stand_in_runs_only_policy_statements(database_url):
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "select supautils_standin.policy_statement(%s)",
            (
                "create policy docflow_test_policy on storage.objects for select to authenticated"
                " using (bucket_id = 'documents')",
            ),
        )
        assert (
            _one(
                conn,
                "select count(*) from pg_policy where polname = 'docflow_test_policy'"
                " and polrelid = 'storage.objects'::regclass",
            )
            == 1
        )
        for refused in (
            "alter table storage.objects add column docflow_extra int",
            "create policy p on public.documents using (true)",
            "drop policy docflow_test_policy on storage.objects; drop table storage.objects",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("select supautils_standin.policy_statement(%s)", (refused,))


def test_the_migrator_sends_storage_policies_through_the_stand_in():
    assert migrate._storage_policy(
        '-- a comment\n/* another */\ncreate policy "read own" on storage.objects\n for select'
    )
    assert migrate._storage_policy("DROP POLICY IF EXISTS p ON storage.buckets ")
    assert migrate._storage_policy("create policy p on public.documents for select") is None
    assert migrate._storage_policy("alter table storage.objects add column x int") is None


# --- role settings, applied per transaction as PostgREST does --------------------------------


def test_the_api_roles_have_hosted_statement_timeouts(sql):
    settings = dict(
        sql.execute(
            "select setrole::regrole::text, c from pg_db_role_setting, unnest(setconfig) c"
            " where setdatabase = 0 and c like 'statement\\_timeout=%'"
        ).fetchall()
    )
    assert settings["anon"] == "statement_timeout=3s"
    assert settings["authenticated"] == "statement_timeout=8s"


@pytest.fixture
def slow_function(sql) -> None:
    sql.execute(
        "create function public.docflow_test_sleep(seconds float8) returns int"
        " language sql as $$ select 1 from pg_sleep(seconds) $$"
    )
    sql.execute("grant execute on function public.docflow_test_sleep(float8) to authenticated")


def test_a_user_call_past_the_roles_statement_timeout_is_cancelled(
    sql, db, make_user, slow_function
):
    # Lowered for this database only, as `alter role ... in database` would be on a project.
    dbname = _one(sql, "select current_database()")
    sql.execute(
        f"alter role authenticated in database \"{dbname}\" set statement_timeout = '200ms'"
    )
    user = make_user()

    with pytest.raises(Unavailable) as caught:
        db.as_user(user).call("docflow_test_sleep", seconds=3)
    assert isinstance(caught.value.__cause__, psycopg.errors.QueryCanceled)  # 57014

    # The service login has no such limit, and a quick user call still works.
    assert db.call("docflow_test_sleep", seconds=0.3) == 1
    assert db.as_user(user).call("docflow_test_sleep", seconds=0) == 1


# --- where the cluster lives ----------------------------------------------------------------


def test_as_root_the_data_lives_outside_the_checkout_per_checkout():
    root = localdb.default_root(as_root=True)
    assert root.is_relative_to(localdb.SHARED_ROOT)
    assert not root.is_relative_to(REPO_ROOT)
    assert REPO_ROOT.name in str(root)
    assert localdb.default_root(as_root=False).is_relative_to(REPO_ROOT)


def test_an_older_clusters_data_directory_is_refused_with_the_fix(tmp_path: Path):
    cluster = localdb.Cluster(bindir=tmp_path, root=tmp_path / "pg", port=1, os_user=None)
    (cluster.data_dir).mkdir(parents=True)
    (cluster.data_dir / "PG_VERSION").write_text("15\n")

    with pytest.raises(ConfigError, match="docflow db reset"):
        localdb.check_layout(cluster)

    localdb._write_marker(cluster, "ready")
    localdb.check_layout(cluster)  # the current layout passes


def test_a_directory_someone_else_could_have_planted_is_refused(tmp_path: Path):
    me = (os.geteuid(),)
    good = tmp_path / "good"
    localdb._private_dir(good, me)  # created 0755, ours: accepted
    localdb._private_dir(good, me)  # and accepted again

    target = tmp_path / "target"
    target.mkdir()
    link = tmp_path / "link"
    link.symlink_to(target)
    writable = tmp_path / "writable"
    writable.mkdir()
    writable.chmod(0o777)
    for planted in (link, writable):
        with pytest.raises(ConfigError, match="LOCAL_PG_DIR"):
            localdb._private_dir(planted, me)
    with pytest.raises(ConfigError):
        localdb._private_dir(good, (os.geteuid() + 1,))  # owned by someone else


def test_files_written_as_root_never_follow_a_planted_symlink(tmp_path: Path):
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    planted = tmp_path / "pwfile"
    planted.symlink_to(victim)

    localdb._write_file(planted, "secret\n", mode=0o600)

    assert victim.read_text() == "keep me"
    assert not planted.is_symlink()
    assert planted.read_text() == "secret\n"
    assert planted.stat().st_mode & 0o777 == 0o600
