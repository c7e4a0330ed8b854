"""The migrator and the local bootstrap against the real local PostgreSQL.

Covers what `shared.dev.migrate` promises: Supabase CLI history, one transaction per file, refusal
on unknown versions, an idempotent bootstrap that never replaces what exists, and a schema
(from zero) that matches the SQL functions the Python code calls.
"""

from __future__ import annotations

import ast
import contextlib
import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql as pgsql

from shared.dev import localdb, migrate
from shared.platform.errors import ConfigError
from tests.support.rows import public_tables

REPO_ROOT = Path(__file__).resolve().parents[2]
EXPECTED_TABLES = {
    "documents",
    "processing_jobs",
    "document_processing_events",
    "service_health_checks",
    "alert_events",
}


@pytest.fixture
def empty_db_url(pg_admin_url: str) -> Iterator[str]:
    """A brand-new, empty database (not a copy of the migrated template, nor of the local
    cluster's bootstrapped template1), as the server's admin login."""
    name = f"docflow_mig_{uuid.uuid4().hex[:12]}"
    localdb.recreate_database(pg_admin_url, name, template="template0")
    try:
        yield localdb.url_for(pg_admin_url, name)
    finally:
        localdb.drop_database(pg_admin_url, name)


def _copy_migrations(target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    for path in migrate.discover():
        shutil.copy(path.path, target / path.path.name)
    return target


def _table_exists(conn: psycopg.Connection, qualified: str) -> bool:
    return conn.execute("select to_regclass(%s) is not null", (qualified,)).fetchone()[0]


# --- migrate ------------------------------------------------------------------------------


def test_migrating_twice_applies_nothing_the_second_time(empty_db_url):
    files = migrate.discover()
    assert files, "no migration files found"

    first = migrate.migrate(empty_db_url)
    assert [m.version for m in first] == [m.version for m in files]

    second = migrate.migrate(empty_db_url)
    assert second == []

    with psycopg.connect(empty_db_url) as conn:
        count = conn.execute("select count(*) from supabase_migrations.schema_migrations")
        assert count.fetchone()[0] == len(files)


def test_history_table_has_the_cli_shape_and_one_row_per_file(empty_db_url):
    migrate.migrate(empty_db_url)
    with psycopg.connect(empty_db_url) as conn:
        columns = dict(
            conn.execute(
                "select column_name, udt_name from information_schema.columns"
                " where table_schema = 'supabase_migrations'"
                "   and table_name = 'schema_migrations'"
            ).fetchall()
        )
        assert columns.get("version") == "text"
        assert columns.get("statements") == "_text"
        assert columns.get("name") == "text"
        pk = conn.execute(
            "select array_agg(a.attname::text order by a.attname)"
            "  from pg_index i"
            "  join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)"
            " where i.indrelid = 'supabase_migrations.schema_migrations'::regclass"
            "   and i.indisprimary"
        ).fetchone()[0]
        assert pk == ["version"]
        rows = conn.execute(
            "select version, name, statements from supabase_migrations.schema_migrations"
            " order by version"
        ).fetchall()

    files = migrate.discover()
    assert [(r[0], r[1]) for r in rows] == [(m.version, m.name) for m in files]
    for (version, _name, statements), migration in zip(rows, files, strict=True):
        expected = migrate.split_statements(migration.path.read_text())
        assert expected, f"{migration.path.name} has no statements"
        assert statements == expected, version
        stem = migration.path.name.removesuffix(".sql")
        assert stem == f"{version}_{migration.name}"


def test_a_failing_migration_leaves_nothing(database_url, sql, tmp_path):
    directory = _copy_migrations(tmp_path / "migrations")
    bad = directory / "20991231000000_bad.sql"
    bad.write_text(
        "create table public.half_applied (id integer primary key);\nselec 1;  -- a syntax error\n"
    )

    with pytest.raises(psycopg.errors.SyntaxError):
        migrate.migrate(database_url, directory=directory)

    assert not _table_exists(sql, "public.half_applied")
    history = sql.execute(
        "select count(*) from supabase_migrations.schema_migrations where version = %s",
        ("20991231000000",),
    ).fetchone()[0]
    assert history == 0

    # Nothing was left half-done: once fixed, the file applies cleanly.
    bad.write_text("create table public.half_applied (id integer primary key);\n")
    applied = migrate.migrate(database_url, directory=directory)
    assert [m.version for m in applied] == ["20991231000000"]
    assert _table_exists(sql, "public.half_applied")


def test_a_file_is_sent_as_the_cli_sends_it_outside_a_transaction_block(
    database_url, sql, tmp_path
):
    """`supabase db push` pipelines a file's statements with one Sync, not inside BEGIN/COMMIT:
    LOCK TABLE is refused there, so it must be refused here too, before it reaches a project."""
    directory = _copy_migrations(tmp_path / "migrations")
    (directory / "20991231000000_lock.sql").write_text(
        "create table public.locked (id integer);\n"
        "lock table public.locked in share row exclusive mode;\n"
    )
    with pytest.raises(psycopg.errors.NoActiveSqlTransaction):
        migrate.migrate(database_url, directory=directory)
    assert not _table_exists(sql, "public.locked")


def test_refuses_when_the_database_records_a_version_with_no_file(database_url, sql, tmp_path):
    directory = _copy_migrations(tmp_path / "migrations")
    (directory / "20991231000000_extra.sql").write_text(
        "create table public.should_not_apply (id integer);\n"
    )
    sql.execute(
        "insert into supabase_migrations.schema_migrations (version, name, statements)"
        " values ('20000101000000', 'from_elsewhere', '{}')"
    )

    with pytest.raises(ConfigError) as caught:
        migrate.migrate(database_url, directory=directory)

    assert "20000101000000" in str(caught.value)
    assert not _table_exists(sql, "public.should_not_apply")


# --- bootstrap ----------------------------------------------------------------------------

_SNAPSHOT_QUERIES = {
    "namespaces": (
        "select oid::text, nspname, coalesce(nspacl::text, '') from pg_namespace"
        " where nspname in ('auth', 'storage', 'public') order by nspname"
    ),
    "relations": (
        "select c.oid::text, n.nspname, c.relname, c.relkind::text, c.relrowsecurity,"
        "       coalesce(c.relacl::text, '')"
        "  from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname in ('auth', 'storage') order by 2, 3"
    ),
    "functions": (
        "select p.oid::text, n.nspname, p.proname, md5(p.prosrc), coalesce(p.proacl::text, '')"
        "  from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
        " where n.nspname in ('auth', 'storage') order by 2, 3"
    ),
    "columns": (
        "select attrelid::regclass::text, attname, atttypid::regtype::text from pg_attribute"
        " where attrelid in ('auth.users'::regclass, 'storage.objects'::regclass,"
        "                    'storage.buckets'::regclass)"
        "   and attnum > 0 and not attisdropped order by 1, 2"
    ),
    "default_acls": (
        "select defaclrole::regrole::text, defaclnamespace::regnamespace::text,"
        "       defaclobjtype::text, defaclacl::text from pg_default_acl order by 1, 2, 3"
    ),
    "policies": "select polrelid::regclass::text, polname from pg_policy order by 1, 2",
    "roles": (
        "select oid::text, rolname, rolcanlogin, rolbypassrls from pg_roles"
        " where rolname in ('anon', 'authenticated', 'service_role', 'authenticator')"
        " order by rolname"
    ),
}


def _snapshot(conn: psycopg.Connection) -> dict[str, list[tuple]]:
    return {key: conn.execute(query).fetchall() for key, query in _SNAPSHOT_QUERIES.items()}


def test_bootstrap_is_idempotent_and_creates_nothing_the_second_time(empty_db_url):
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        migrate.bootstrap(conn)
        before = _snapshot(conn)
        migrate.bootstrap(conn)
        after = _snapshot(conn)

    assert before == after
    names = {(r[1], r[2]) for r in before["relations"]}
    assert {("auth", "users"), ("storage", "buckets"), ("storage", "objects")} <= names
    functions = {(r[1], r[2]) for r in before["functions"]}
    assert {("auth", "uid"), ("auth", "role"), ("auth", "jwt"), ("storage", "foldername")} <= (
        functions
    )
    assert {r[1] for r in before["roles"]} == {
        "anon",
        "authenticated",
        "service_role",
        "authenticator",
    }


def test_bootstrap_never_replaces_an_existing_object(empty_db_url):
    constant = "00000000-0000-0000-0000-00000000abcd"
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        conn.execute("create schema auth")
        conn.execute(
            "create function auth.uid() returns uuid language sql stable"
            f" as $$ select '{constant}'::uuid $$"
        )
        conn.execute("create table auth.users (id uuid primary key, marker text default 'ours')")
        uid_before = conn.execute(
            "select oid, prosrc from pg_proc where oid = 'auth.uid()'::regprocedure"
        ).fetchone()
        users_before = conn.execute("select 'auth.users'::regclass::oid").fetchone()[0]

        migrate.bootstrap(conn)

        uid_after = conn.execute(
            "select oid, prosrc from pg_proc where oid = 'auth.uid()'::regprocedure"
        ).fetchone()
        assert uid_after == uid_before
        with conn.transaction(force_rollback=True):
            conn.execute(
                "select set_config('request.jwt.claims', %s, true)",
                (json.dumps({"sub": str(uuid.uuid4())}),),
            )
            assert str(conn.execute("select auth.uid()").fetchone()[0]) == constant
        assert conn.execute("select 'auth.users'::regclass::oid").fetchone()[0] == users_before
        marker = conn.execute(
            "select count(*) from pg_attribute"
            " where attrelid = 'auth.users'::regclass and attname = 'marker'"
        ).fetchone()[0]
        assert marker == 1
        # What was missing was created.
        assert conn.execute("select to_regprocedure('auth.role()') is not null").fetchone()[0]
        assert conn.execute("select to_regprocedure('auth.jwt()') is not null").fetchone()[0]


@pytest.fixture
def supabase_shaped_db(pg_admin_url: str, empty_db_url: str) -> Iterator[tuple[str, str]]:
    """A database shaped like Supabase's image: auth and storage belong to their own admin
    roles, and the migration role (`postgres` there) is not a superuser, has no CREATE on
    those schemas and does not own their tables (supabase/postgres#994)."""
    suffix = uuid.uuid4().hex[:8]
    auth_admin, storage_admin, migrator = (
        f"sim_auth_admin_{suffix}",
        f"sim_storage_admin_{suffix}",
        f"sim_postgres_{suffix}",
    )
    ident = pgsql.Identifier
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        for role in (auth_admin, storage_admin):
            admin.execute(pgsql.SQL("create role {} nologin").format(ident(role)))
        admin.execute(pgsql.SQL("create role {} nologin createrole").format(ident(migrator)))
    try:
        with psycopg.connect(empty_db_url, autocommit=True) as conn:
            # The real thing: bootstrap as a superuser, then hand auth/storage to their admins.
            migrate.bootstrap(conn)
            fmt = {
                "auth": ident(auth_admin),
                "storage": ident(storage_admin),
                "mig": ident(migrator),
            }
            for statement in (
                "alter schema auth owner to {auth}",
                "alter table auth.users owner to {auth}",
                "alter function auth.uid() owner to {auth}",
                "alter function auth.role() owner to {auth}",
                "alter function auth.jwt() owner to {auth}",
                "alter schema storage owner to {storage}",
                "alter table storage.buckets owner to {storage}",
                "alter table storage.objects owner to {storage}",
                "alter function storage.foldername(text) owner to {storage}",
                "alter schema public owner to {mig}",
                "grant usage on schema auth, storage to {mig} with grant option",
                "grant all on auth.users to {mig} with grant option",
                "grant all on storage.buckets, storage.objects to {mig} with grant option",
                "grant execute on function auth.uid(), auth.role(), auth.jwt()"
                " to {mig} with grant option",
            ):
                conn.execute(pgsql.SQL(statement).format(**fmt))
            conn.execute(
                pgsql.SQL("grant create on database {} to {}").format(
                    ident(conn.info.dbname), ident(migrator)
                )
            )
        yield empty_db_url, migrator
    finally:
        localdb.drop_database(
            pg_admin_url, psycopg.conninfo.conninfo_to_dict(empty_db_url)["dbname"]
        )
        with psycopg.connect(pg_admin_url, autocommit=True) as admin:
            for role in (migrator, storage_admin, auth_admin):
                with contextlib.suppress(psycopg.Error):  # best-effort cleanup
                    admin.execute(pgsql.SQL("drop role if exists {}").format(ident(role)))


def test_bootstrap_is_a_no_op_on_a_supabase_shaped_database(supabase_shaped_db):
    url, migrator = supabase_shaped_db
    with psycopg.connect(url, autocommit=True) as conn:
        before = _snapshot(conn)
        conn.execute(pgsql.SQL("set role {}").format(pgsql.Identifier(migrator)))
        migrate.bootstrap(conn)
        conn.execute("reset role")
        after = _snapshot(conn)
    assert _without_acls(after) == _without_acls(before)


def _without_acls(snapshot: dict[str, list[tuple]]) -> dict[str, list[tuple]]:
    """Objects, owners aside from ACL text: a re-grant by another grantor adds ACL items that
    change nothing effective, and the migration role may add its own default privileges."""
    return {
        key: [row[:-1] if key in ("namespaces", "relations", "functions") else row for row in rows]
        for key, rows in snapshot.items()
        if key != "default_acls"
    }


# --- the schema from zero matches the code ------------------------------------------------


def find_rpc_calls(source: str, filename: str = "<src>") -> list[tuple[str, int, str, set, bool]]:
    """Every `<x>.call("fn_name", kw=...)`: (file, line, fn, keyword names, has **kwargs)."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "call"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names = {k.arg for k in node.keywords if k.arg is not None}
            star = any(k.arg is None for k in node.keywords)
            found.append((filename, node.lineno, node.args[0].value, names, star))
    return found


def test_rpc_call_scanner_finds_calls_and_keywords():
    source = (
        "def f(db, user, extra):\n"
        "    db.call('claim_jobs', worker_id='w', max_jobs=3)\n"
        '    db.as_user(user).call("get_job", job_id=1)\n'
        "    db.call('record_events', **extra)\n"
        "    db.call(name_from_variable, x=1)\n"
        "    call('not_an_attribute', y=2)\n"
    )
    calls = [(fn, names, star) for _f, _l, fn, names, star in find_rpc_calls(source)]
    assert calls == [
        ("claim_jobs", {"worker_id", "max_jobs"}, False),
        ("get_job", {"job_id"}, False),
        ("record_events", set(), True),
    ]


def _python_sources() -> list[Path]:
    return sorted(
        p
        for top in ("shared", "functions")
        for p in (REPO_ROOT / top).rglob("*.py")
        if ".venv" not in p.parts
    )


def _signature_problems(
    conn: psycopg.Connection, calls: list[tuple[str, int, str, set, bool]]
) -> list[str]:
    """Calls naming no function in schema public, or parameters that function does not take
    (or leaving out one without a default, unless the call passes **kwargs)."""
    rows = conn.execute(
        "select p.proname, p.proargnames, p.proargmodes::text[], p.pronargs, p.pronargdefaults"
        "  from pg_proc p where p.pronamespace = 'public'::regnamespace"
    ).fetchall()
    overloads: dict[str, list[tuple[list[str], set[str]]]] = {}
    for name, argnames, modes, nargs, ndefaults in rows:
        argnames = argnames or []
        modes = modes or ["i"] * len(argnames)
        inputs = [a for a, m in zip(argnames, modes, strict=True) if m in ("i", "b", "v")]
        overloads.setdefault(name, []).append((inputs, set(inputs[: nargs - ndefaults])))

    problems = []
    for filename, line, fn, names, star in calls:
        where = f"{filename}:{line} {fn}({', '.join(sorted(names))})"
        if fn not in overloads:
            problems.append(f"{where}: no function public.{fn}")
        elif not any(
            names <= set(inputs) and (star or required <= names)
            for inputs, required in overloads[fn]
        ):
            signatures = [inputs for inputs, _ in overloads[fn]]
            problems.append(f"{where}: parameters do not match {signatures}")
    return problems


def test_schema_from_zero_has_every_function_the_code_calls(empty_db_url):
    migrate.migrate(empty_db_url)
    calls = [
        call
        for path in _python_sources()
        for call in find_rpc_calls(path.read_text(), str(path.relative_to(REPO_ROOT)))
    ]
    with psycopg.connect(empty_db_url) as conn:
        # The checker itself tells right from wrong...
        assert (
            _signature_problems(
                conn,
                [
                    ("ok", 1, "claim_jobs", {"worker_id", "max_jobs"}, False),
                    ("ok", 2, "create_upload", {"user_id"}, True),
                ],
            )
            == []
        )
        assert (
            len(
                _signature_problems(
                    conn,
                    [
                        ("bad", 1, "no_such_function", set(), False),
                        ("bad", 2, "claim_jobs", {"worker_id", "max_job"}, False),
                        ("bad", 3, "create_upload", {"user_id"}, False),
                    ],
                )
            )
            == 3
        )
        # ...and the code's calls all match the migrated schema.
        problems = _signature_problems(conn, calls)
    assert not problems, "\n".join(problems)
    if not calls:
        pytest.skip('no `.call("fn", ...)` sites in shared/ or functions/ yet')


def test_every_public_table_has_row_level_security(empty_db_url):
    migrate.migrate(empty_db_url)
    with psycopg.connect(empty_db_url) as conn:
        tables = public_tables(conn)
    assert set(tables) >= EXPECTED_TABLES
    assert [name for name, rls in tables.items() if not rls] == []


# --- split_statements ---------------------------------------------------------------------


def test_split_plain_statements_drops_empty_ones():
    assert migrate.split_statements("select 1;\n\n;  select 2 ;\nselect 3") == [
        "select 1",
        "select 2",
        "select 3",
    ]


def test_split_keeps_dollar_quoted_bodies_whole():
    text = (
        "create function f() returns int language plpgsql as $$\n"
        "begin perform 1; return 2; end;\n"
        "$$;\n"
        "select 3;"
    )
    statements = migrate.split_statements(text)
    assert len(statements) == 2
    assert statements[0].endswith("begin perform 1; return 2; end;\n$$")
    assert statements[1] == "select 3"


def test_split_handles_nested_dollar_tags():
    text = (
        "do $outer$ begin execute $inner$ select 1; select 2; $inner$; end; $outer$;\n"
        "select $a$;$a$;"
    )
    assert migrate.split_statements(text) == [
        "do $outer$ begin execute $inner$ select 1; select 2; $inner$; end; $outer$",
        "select $a$;$a$",
    ]


def test_split_handles_quoted_strings_and_identifiers():
    text = "select 'a;b', 'it''s; fine';\nselect \"odd;name\"\"x\" from t;"
    assert migrate.split_statements(text) == [
        "select 'a;b', 'it''s; fine'",
        'select "odd;name""x" from t',
    ]


def test_split_ignores_semicolons_in_comments():
    text = (
        "-- a header; with a semicolon\n"
        "select 1 /* inline; /* nested; */ still comment; */ + 1;\n"
        "select 2; -- trailing; comment\n"
    )
    assert migrate.split_statements(text) == [
        "-- a header; with a semicolon\nselect 1 /* inline; /* nested; */ still comment; */ + 1",
        "select 2",
    ]


def test_split_drops_comment_only_statements_and_trailing_text():
    text = "select 1;\n-- only a comment\n;\n/* block; */\nselect 2;\n-- the end\n/* bye */\n"
    assert migrate.split_statements(text) == [
        "select 1",
        "/* block; */\nselect 2",
    ]


def test_split_handles_escape_strings_with_backslash_quotes():
    text = r"select E'it\'s; here'; select 2"
    assert migrate.split_statements(text) == [r"select E'it\'s; here'", "select 2"]
