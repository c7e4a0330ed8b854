"""`supabase/schema.sql`: the schema the migrations build, read back from the catalog.

`dump(database_url)` renders, from a migrated database, everything the migrations create:
the project's schemas (`SCHEMAS`) with their tables (columns, defaults, constraints, RLS,
indexes, triggers, policies, comments, grants), functions (`pg_get_functiondef`) with their
grants, default privileges and publication membership; plus what the migrations add to
Supabase's own schemas (policies on the storage tables, the buckets). Supabase's internals
(`auth`, `storage` tables, the migration history) are not in it.

It is built from catalog queries, not `pg_dump`, so the text does not depend on the client's
or the server's version: the same migrations give the same file on Debian's PostgreSQL 15 and
on the `pgserver` wheel's 16. Every list is sorted by name in Python (not by the server's
collation), and every name is schema-qualified (the session's `search_path` is empty).

    python -m shared.dev.schema            # print the schema of a freshly migrated database
    python -m shared.dev.schema --write    # regenerate supabase/schema.sql (`make schema`)
    python -m shared.dev.schema --check    # exit 1 when supabase/schema.sql is out of date

The fresh database is created on the embedded cluster (or on DATABASE_URL's server, as an
admin URL, as `make bench` does), migrated as the migration role, dumped and dropped.
`tests/integration/test_schema_sql.py` compares the committed file with a fresh dump.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import psycopg

from shared.platform.config import REPO_ROOT

SCHEMA_FILE = REPO_ROOT / "supabase" / "schema.sql"
REGENERATE = "python -m shared.dev.schema --write"
# The schemas our migrations own, rendered whole.
SCHEMAS = ("public", "docflow_private")
# Supabase's schemas (and the local cluster's stand-ins), of which only what our migrations add
# is rendered: policies on their tables, and the storage buckets.
PLATFORM_SCHEMAS = (
    "auth",
    "extensions",
    "graphql",
    "graphql_public",
    "net",
    "pgbouncer",
    "pgsodium",
    "pgsodium_masks",
    "realtime",
    "storage",
    "supabase_functions",
    "supabase_migrations",
    "supautils_standin",
    "vault",
)
POLICY_SCHEMAS = (*SCHEMAS, "storage")

HEADER = f"""\
-- docflow's database schema as the migrations in supabase/migrations/ leave it, read back from
-- a freshly migrated database by shared/dev/schema.py. Generated: do not edit. Change the
-- schema with a new migration, then run `{REGENERATE}` (`make schema`);
-- tests/integration/test_schema_sql.py fails while this file and the migrations disagree.
-- Supabase's own objects (auth, storage tables, roles) are not here; the policies and the
-- bucket our migrations add to storage are.
"""

_COMMANDS = {"r": "select", "a": "insert", "w": "update", "d": "delete", "*": "all"}
_DEFAULT_ACL_KINDS = {
    "r": "tables",
    "S": "sequences",
    "f": "functions",
    "T": "types",
    "n": "schemas",
}


class UnsupportedObject(RuntimeError):
    """The database holds something this renderer does not know how to write down."""


def _rows(conn: psycopg.Connection[Any], query: str, *params: Any) -> list[tuple[Any, ...]]:
    return list(conn.execute(query, params).fetchall())


def _ident(conn: psycopg.Connection[Any], *parts: str) -> str:
    row = conn.execute(
        "select string_agg(quote_ident(p), '.' order by o)"
        "  from unnest(%s::text[]) with ordinality as x(p, o)",
        (list(parts),),
    ).fetchone()
    assert row is not None
    return str(row[0])


def _literal(value: str | None) -> str:
    if value is None:
        return "null"
    return "'" + value.replace("'", "''") + "'"


def _check_known(conn: psycopg.Connection[Any]) -> None:
    """Fail loudly on anything a migration created that would otherwise be left out."""
    schemas = {
        name
        for (name,) in _rows(
            conn,
            "select nspname from pg_namespace"
            " where nspname not in ('pg_catalog', 'information_schema', 'pg_toast')"
            "   and nspname not like 'pg\\_temp\\_%%'"
            "   and nspname not like 'pg\\_toast\\_temp\\_%%'",
        )
    }
    unknown = sorted(schemas - set(SCHEMAS) - set(PLATFORM_SCHEMAS))
    if unknown:
        raise UnsupportedObject(
            f"schema(s) {', '.join(unknown)} are neither the project's (SCHEMAS) nor Supabase's"
            " (PLATFORM_SCHEMAS) in shared/dev/schema.py: add each where it belongs"
        )
    odd = _rows(
        conn,
        "select format('%%I.%%I (relkind %%s)', n.nspname, c.relname, c.relkind)"
        "  from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = any(%s)"
        "   and c.relkind not in ('r', 'p', 'i', 'I', 'v', 'm', 'S', 't')"
        " union all "
        "select format('sequence %%I.%%I (not an identity)', n.nspname, c.relname)"
        "  from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = any(%s) and c.relkind = 'S'"
        "   and not exists (select from pg_depend d where d.objid = c.oid"
        "                    and d.classid = 'pg_class'::regclass and d.deptype = 'i')"
        " union all "
        "select format('type %%I.%%I', n.nspname, t.typname)"
        "  from pg_type t join pg_namespace n on n.oid = t.typnamespace"
        " where n.nspname = any(%s) and t.typtype in ('e', 'd', 'r', 'm')"
        "    or (n.nspname = any(%s) and t.typtype = 'c'"
        "        and (select c.relkind from pg_class c where c.oid = t.typrelid) = 'c')"
        " union all "
        "select format('aggregate %%I.%%I', n.nspname, p.proname)"
        "  from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
        " where n.nspname = any(%s) and p.prokind = 'a'",
        list(SCHEMAS),
        list(SCHEMAS),
        list(SCHEMAS),
        list(SCHEMAS),
        list(SCHEMAS),
    )
    if odd:
        raise UnsupportedObject(
            "shared/dev/schema.py cannot render: " + ", ".join(sorted(str(r[0]) for r in odd))
        )


def _grants(
    conn: psycopg.Connection[Any], kind: str, acl_sql: str, oid: int, target: str
) -> list[str]:
    """GRANT statements for one object's ACL (the owner's own privileges left out).

    `acl_sql` selects (acl, owner) for the object `oid`; a NULL ACL means the built-in
    default, which is spelt out (for a function: EXECUTE to PUBLIC)."""
    default_kind = {"table": "r", "sequence": "s", "function": "f", "schema": "n"}[kind]
    rows = _rows(
        conn,
        "select case when a.grantee = 0 then 'public' else quote_ident(g.rolname) end,"
        "       a.privilege_type, a.is_grantable"
        f"  from ({acl_sql}) o (acl, owner)"
        "  cross join lateral aclexplode(coalesce(o.acl, acldefault(%s, o.owner))) a"
        "  left join pg_roles g on g.oid = a.grantee"
        " where a.grantee <> o.owner",
        oid,
        default_kind,
    )
    by_grantee: dict[tuple[str, bool], list[str]] = defaultdict(list)
    for grantee, privilege, grantable in rows:
        by_grantee[(str(grantee), bool(grantable))].append(str(privilege))
    return [
        f"grant {', '.join(sorted(privileges))} on {kind} {target} to {grantee}"
        + (" with grant option" if grantable else "")
        + ";"
        for (grantee, grantable), privileges in sorted(by_grantee.items())
    ]


def _column_grants(conn: psycopg.Connection[Any], table_oid: int, target: str) -> list[str]:
    rows = _rows(
        conn,
        "select quote_ident(a.attname),"
        "       case when x.grantee = 0 then 'public' else quote_ident(g.rolname) end,"
        "       x.privilege_type, x.is_grantable"
        "  from pg_attribute a"
        "  cross join lateral aclexplode(a.attacl) x"
        "  left join pg_roles g on g.oid = x.grantee"
        " where a.attrelid = %s and a.attnum > 0 and not a.attisdropped"
        "   and a.attacl is not null",
        table_oid,
    )
    return sorted(
        f"grant {privilege} ({column}) on table {target} to {grantee}"
        + (" with grant option" if grantable else "")
        + ";"
        for column, grantee, privilege, grantable in rows
    )


def _table(conn: psycopg.Connection[Any], oid: int, target: str) -> list[str]:
    out: list[str] = []
    lines: list[str] = []
    for name, type_, notnull, identity, generated, default, collation in _rows(
        conn,
        "select quote_ident(a.attname), format_type(a.atttypid, a.atttypmod), a.attnotnull,"
        "       a.attidentity, a.attgenerated, pg_get_expr(d.adbin, d.adrelid),"
        "       case when a.attcollation <> t.typcollation then quote_ident(l.collname) end"
        "  from pg_attribute a"
        "  join pg_type t on t.oid = a.atttypid"
        "  left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum"
        "  left join pg_collation l on l.oid = a.attcollation"
        " where a.attrelid = %s and a.attnum > 0 and not a.attisdropped"
        " order by a.attnum",
        oid,
    ):
        line = f"  {name} {type_}"
        if collation:
            line += f" collate {collation}"
        if identity:
            line += " generated " + ("always" if identity == "a" else "by default")
            line += " as identity"
        elif generated:
            line += f" generated always as ({default}) stored"
        elif default is not None:
            line += f" default {default}"
        if notnull:
            line += " not null"
        lines.append(line)
    constraints = _rows(
        conn,
        "select quote_ident(conname), pg_get_constraintdef(oid) from pg_constraint"
        " where conrelid = %s and contype in ('p', 'u', 'c', 'f', 'x')",
        oid,
    )
    for name, definition in sorted(constraints):
        lines.append(f"  constraint {name} {definition}")
    out.append(f"create table {target} (\n" + ",\n".join(lines) + "\n);")

    row = conn.execute(
        "select c.relrowsecurity, c.relforcerowsecurity, c.relreplident, c.reloptions,"
        "       obj_description(c.oid, 'pg_class')"
        "  from pg_class c where c.oid = %s",
        (oid,),
    ).fetchone()
    assert row is not None
    rls, force_rls, replident, options, comment = row
    if options:
        out.append(f"alter table {target} set ({', '.join(sorted(options))});")
    if replident != "d":
        identity_kind = {"n": "nothing", "f": "full", "i": "using index"}[replident]
        if replident == "i":
            index = conn.execute(
                "select quote_ident(i.relname) from pg_index x"
                " join pg_class i on i.oid = x.indexrelid"
                " where x.indrelid = %s and x.indisreplident",
                (oid,),
            ).fetchone()
            assert index is not None
            identity_kind += f" {index[0]}"
        out.append(f"alter table {target} replica identity {identity_kind};")
    if comment is not None:
        out.append(f"comment on table {target} is {_literal(comment)};")
    for column, column_comment in _rows(
        conn,
        "select quote_ident(a.attname), col_description(a.attrelid, a.attnum)"
        "  from pg_attribute a where a.attrelid = %s and a.attnum > 0 and not a.attisdropped"
        "   and col_description(a.attrelid, a.attnum) is not null order by a.attnum",
        oid,
    ):
        out.append(f"comment on column {target}.{column} is {_literal(column_comment)};")

    indexes = _rows(
        conn,
        "select i.relname, pg_get_indexdef(x.indexrelid) from pg_index x"
        "  join pg_class i on i.oid = x.indexrelid"
        " where x.indrelid = %s"
        "   and not exists (select from pg_constraint k where k.conindid = x.indexrelid"
        "                    and k.conrelid = x.indrelid and k.contype in ('p', 'u', 'x'))",
        oid,
    )
    out.extend(f"{definition};" for _, definition in sorted(indexes))

    if rls:
        out.append(f"alter table {target} enable row level security;")
    if force_rls:
        out.append(f"alter table {target} force row level security;")
    out.extend(_policies(conn, oid, target))

    triggers = _rows(
        conn,
        "select t.tgname, pg_get_triggerdef(t.oid), t.tgenabled, quote_ident(t.tgname)"
        "  from pg_trigger t where t.tgrelid = %s and not t.tgisinternal",
        oid,
    )
    for _, definition, enabled, quoted in sorted(triggers):
        out.append(f"{definition};")
        if enabled != "O":
            state = {"D": "disable", "R": "enable replica", "A": "enable always"}[enabled]
            out.append(f"alter table {target} {state} trigger {quoted};")

    out.extend(_grants(conn, "table", _ACL["table"], oid, target))
    out.extend(_column_grants(conn, oid, target))
    return out


def _policies(conn: psycopg.Connection[Any], oid: int, target: str) -> list[str]:
    out = []
    for name, permissive, command, roles, using, check in sorted(
        _rows(
            conn,
            "select quote_ident(p.polname), p.polpermissive, p.polcmd,"
            "       array(select case when r = 0 then 'public' else quote_ident(g.rolname) end"
            "               from unnest(p.polroles) r left join pg_roles g on g.oid = r),"
            "       pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid)"
            "  from pg_policy p where p.polrelid = %s",
            oid,
        )
    ):
        text = f"create policy {name} on {target}"
        if not permissive:
            text += "\n  as restrictive"
        text += f"\n  for {_COMMANDS[command]} to {', '.join(sorted(roles))}"
        if using is not None:
            text += f"\n  using ({using})"
        if check is not None:
            text += f"\n  with check ({check})"
        out.append(text + ";")
    return out


_ACL = {
    "table": "select c.relacl, c.relowner from pg_class c where c.oid = %s",
    "sequence": "select c.relacl, c.relowner from pg_class c where c.oid = %s",
    "function": "select p.proacl, p.proowner from pg_proc p where p.oid = %s",
    "schema": "select n.nspacl, n.nspowner from pg_namespace n where n.oid = %s",
}


def _section(title: str) -> str:
    return f"-- {title} " + "-" * max(3, 96 - len(title))


def dump(database_url: str) -> str:
    """The schema of the database at `database_url`, as the text of supabase/schema.sql."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("set search_path = ''")  # every name comes back schema-qualified
        conn.execute("set timezone = 'UTC'")
        conn.execute("set datestyle = 'ISO, YMD'")
        conn.execute("set intervalstyle = 'postgres'")
        conn.execute("set extra_float_digits = 1")
        _check_known(conn)
        blocks: list[str] = [HEADER.rstrip()]

        blocks.append(_section("Schemas"))
        for oid, name in sorted(
            _rows(
                conn,
                "select oid, nspname from pg_namespace where nspname = any(%s)",
                list(SCHEMAS),
            ),
            key=lambda r: str(r[1]),
        ):
            target = _ident(conn, name)
            statements = [] if name == "public" else [f"create schema {target};"]
            statements += _grants(conn, "schema", _ACL["schema"], oid, target)
            if statements:
                blocks.append("\n".join(statements))

        tables = sorted(
            (str(schema), str(name), int(oid))
            for oid, schema, name in _rows(
                conn,
                "select c.oid, n.nspname, c.relname from pg_class c"
                "  join pg_namespace n on n.oid = c.relnamespace"
                " where n.nspname = any(%s) and c.relkind in ('r', 'p')",
                list(SCHEMAS),
            )
        )
        blocks.append(_section("Tables"))
        for schema, name, oid in tables:
            blocks.append("\n".join(_table(conn, oid, _ident(conn, schema, name))))

        sequences = sorted(
            (str(schema), str(name), int(oid))
            for oid, schema, name in _rows(
                conn,
                "select c.oid, n.nspname, c.relname from pg_class c"
                "  join pg_namespace n on n.oid = c.relnamespace"
                " where n.nspname = any(%s) and c.relkind = 'S'",
                list(SCHEMAS),
            )
        )
        grants = [
            g
            for schema, name, oid in sequences
            for g in _grants(conn, "sequence", _ACL["sequence"], oid, _ident(conn, schema, name))
        ]
        if grants:
            blocks.append(_section("Sequences (identity columns) and their grants"))
            blocks.append("\n".join(grants))

        views = sorted(
            (str(schema), str(name), int(oid), str(kind))
            for oid, schema, name, kind in _rows(
                conn,
                "select c.oid, n.nspname, c.relname, c.relkind from pg_class c"
                "  join pg_namespace n on n.oid = c.relnamespace"
                " where n.nspname = any(%s) and c.relkind in ('v', 'm')",
                list(SCHEMAS),
            )
        )
        if views:
            blocks.append(_section("Views"))
        for schema, name, oid, kind in views:
            target = _ident(conn, schema, name)
            row = conn.execute("select pg_get_viewdef(%s::oid)", (oid,)).fetchone()
            assert row is not None
            what = "materialized view" if kind == "m" else "view"
            statements = [f"create {what} {target} as\n{str(row[0]).rstrip().rstrip(';')};"]
            statements += _grants(conn, "table", _ACL["table"], oid, target)
            blocks.append("\n".join(statements))

        functions = sorted(
            (str(schema), str(name), str(args), int(oid), str(definition))
            for oid, schema, name, args, definition in _rows(
                conn,
                "select p.oid, n.nspname, p.proname, pg_get_function_identity_arguments(p.oid),"
                "       pg_get_functiondef(p.oid)"
                "  from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
                " where n.nspname = any(%s)",
                list(SCHEMAS),
            )
        )
        blocks.append(_section("Functions"))
        for schema, name, args, oid, definition in functions:
            target = f"{_ident(conn, schema, name)}({args})"
            row = conn.execute("select obj_description(%s::oid, 'pg_proc')", (oid,)).fetchone()
            statements = [definition.rstrip() + ";"]
            if row is not None and row[0] is not None:
                statements.append(f"comment on function {target} is {_literal(str(row[0]))};")
            statements += _grants(conn, "function", _ACL["function"], oid, target)
            blocks.append("\n".join(statements))

        storage_policies = [
            (str(schema), str(name), int(oid))
            for oid, schema, name in _rows(
                conn,
                "select distinct c.oid, n.nspname, c.relname from pg_policy p"
                "  join pg_class c on c.oid = p.polrelid"
                "  join pg_namespace n on n.oid = c.relnamespace"
                " where n.nspname = any(%s) and not n.nspname = any(%s)",
                list(POLICY_SCHEMAS),
                list(SCHEMAS),
            )
        ]
        if storage_policies:
            blocks.append(_section("Policies on Supabase's storage tables"))
            for schema, name, oid in sorted(storage_policies):
                blocks.append("\n".join(_policies(conn, oid, _ident(conn, schema, name))))

        buckets = _buckets(conn)
        if buckets:
            blocks.append(_section("Storage buckets (rows the migrations insert)"))
            blocks.append("\n".join(buckets))

        publications = sorted(
            _rows(
                conn,
                "select quote_ident(p.pubname), format('%%I.%%I', n.nspname, c.relname),"
                "       pg_get_expr(r.prqual, r.prrelid),"
                "       (select string_agg(quote_ident(a.attname), ', ' order by a.attnum)"
                "          from pg_attribute a"
                "         where a.attrelid = r.prrelid and a.attnum = any(r.prattrs))"
                "  from pg_publication_rel r"
                "  join pg_publication p on p.oid = r.prpubid"
                "  join pg_class c on c.oid = r.prrelid"
                "  join pg_namespace n on n.oid = c.relnamespace"
                " where n.nspname = any(%s)",
                list(SCHEMAS),
            )
        )
        if publications:
            blocks.append(_section("Publications"))
            blocks.append(
                "\n".join(
                    f"alter publication {pub} add table {table}"
                    + (f" ({columns})" if columns else "")
                    + (f" where ({where})" if where else "")
                    + ";"
                    for pub, table, where, columns in publications
                )
            )

        defaults = _default_privileges(conn)
        if defaults:
            blocks.append(_section("Default privileges (each list is the whole default ACL)"))
            blocks.append("\n".join(defaults))

    return "\n\n".join(blocks).rstrip() + "\n"


def _buckets(conn: psycopg.Connection[Any]) -> list[str]:
    row = conn.execute("select to_regclass('storage.buckets') is not null").fetchone()
    if not row or not row[0]:
        return []
    out = []
    for (bucket,) in _rows(
        conn, 'select to_jsonb(b) from storage.buckets b order by b.id collate "C"'
    ):
        columns = [
            c
            for c in ("id", "name", "public", "file_size_limit", "allowed_mime_types")
            if c in bucket
        ]
        values = []
        for column in columns:
            value = bucket[column]
            if value is None:
                values.append("null")
            elif isinstance(value, bool):
                values.append("true" if value else "false")
            elif isinstance(value, int):
                values.append(str(value))
            elif isinstance(value, list):
                values.append("array[" + ", ".join(_literal(str(v)) for v in value) + "]")
            else:
                values.append(_literal(str(value)))
        out.append(
            f"insert into storage.buckets ({', '.join(columns)})\n  values ({', '.join(values)});"
        )
    return out


def _default_privileges(conn: psycopg.Connection[Any]) -> list[str]:
    rows = _rows(
        conn,
        "select quote_ident(r.rolname), coalesce(quote_ident(n.nspname), ''), d.defaclobjtype,"
        "       case when a.grantee = 0 then 'public' else quote_ident(g.rolname) end,"
        "       a.privilege_type, a.is_grantable"
        "  from pg_default_acl d"
        "  join pg_roles r on r.oid = d.defaclrole"
        "  left join pg_namespace n on n.oid = d.defaclnamespace"
        "  cross join lateral aclexplode(d.defaclacl) a"
        "  left join pg_roles g on g.oid = a.grantee"
        " where n.nspname = any(%s) or d.defaclnamespace = 0",
        list(SCHEMAS),
    )
    grouped: dict[tuple[str, str, str, str, bool], list[str]] = defaultdict(list)
    for role, schema, kind, grantee, privilege, grantable in rows:
        grouped[(str(role), str(schema), str(kind), str(grantee), bool(grantable))].append(
            str(privilege)
        )
    out = []
    for (role, schema, kind, grantee, grantable), privileges in sorted(grouped.items()):
        where = f" in schema {schema}" if schema else ""
        out.append(
            f"alter default privileges for role {role}{where}"
            f" grant {', '.join(sorted(privileges))} on {_DEFAULT_ACL_KINDS[kind]} to {grantee}"
            + (" with grant option" if grantable else "")
            + ";"
        )
    return out


# --- the command ------------------------------------------------------------------------------


def fresh_dump() -> str:
    """Migrate a new database on the local server, dump it, drop it."""
    from shared.dev import localdb, migrate
    from shared.platform.config import load_settings

    admin = localdb.admin_url(load_settings())
    name = f"docflow_schema_{os.getpid()}"
    localdb.recreate_database(admin, name)
    try:
        url = localdb.service_url(admin, name)
        migrate.migrate(url)
        return dump(url)
    finally:
        localdb.drop_database(admin, name)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m shared.dev.schema",
        description="The schema the migrations build, as supabase/schema.sql.",
    )
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--write", action="store_true", help=f"write {SCHEMA_FILE.name}")
    what.add_argument(
        "--check", action="store_true", help=f"exit 1 when {SCHEMA_FILE.name} is out of date"
    )
    parser.add_argument(
        "--database-url",
        help="dump this (already migrated) database instead of migrating a fresh one",
    )
    args = parser.parse_args(argv)
    text = dump(args.database_url) if args.database_url else fresh_dump()
    if args.write:
        SCHEMA_FILE.write_text(text)
        print(f"wrote {SCHEMA_FILE.relative_to(REPO_ROOT)}", file=sys.stderr)
        return 0
    if args.check:
        current = SCHEMA_FILE.read_text() if SCHEMA_FILE.exists() else ""
        if current != text:
            print(
                f"{SCHEMA_FILE.relative_to(REPO_ROOT)} is out of date: run `{REGENERATE}`",
                file=sys.stderr,
            )
            return 1
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
