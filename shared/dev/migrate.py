"""The migrator: applies `supabase/migrations/*.sql` the way the Supabase CLI does.

- Files are `YYYYMMDDHHMMSS_name.sql`, applied in version order.
- Each file's statements and its history row go in one pipeline with one Sync, as the CLI
  sends them: one implicit transaction, so a failing file leaves nothing, and a statement that
  needs an explicit transaction block (`LOCK TABLE`) fails here as on `supabase db push`.
- History goes to `supabase_migrations.schema_migrations (version, statements, name)`, the
  CLI's table, so a later `supabase db push` sees these versions as applied.
- It refuses to run when the database records a version that has no file here.
- Running it again applies nothing.

Before the migrations it runs the local bootstrap SQL (`shared/sql/local_bootstrap.sql`), which
only creates what Supabase's image would have and is a no-op on a real Supabase database (and
on the embedded cluster, whose template1 already carries it).

Run it as the migration role, as `supabase db push` does: on the embedded cluster that is the
NOSUPERUSER `postgres` (`localdb.service_url`). A policy statement on the storage tables goes
through the cluster's supautils stand-in when the database has one (`shared/sql/local_cluster.sql`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

from shared.platform.config import REPO_ROOT
from shared.platform.errors import ConfigError
from shared.platform.log import get_logger

log = get_logger("migrate")

MIGRATIONS_DIR = REPO_ROOT / "supabase" / "migrations"
SEED_FILE = REPO_ROOT / "supabase" / "seed.sql"
BOOTSTRAP_FILE = Path(__file__).parent / "sql" / "local_bootstrap.sql"
_NAME = re.compile(r"^(?P<version>\d{14})_(?P<name>[A-Za-z0-9_\-]+)\.sql$")
_LOCK_KEY = 0x646F63666C6F77  # "docflow": one migrator at a time
_LEADING_COMMENTS = re.compile(r"^(?:\s|--[^\n]*(?:\n|$)|/\*.*?\*/)*", re.S)
_STORAGE_POLICY = re.compile(
    r"(?:create|alter|drop)\s+policy\s+(?:if\s+exists\s+)?(?:\"[^\"]+\"|[a-z_][a-z0-9_$]*)"
    r"\s+on\s+storage\.(?:objects|buckets)\s",
    re.I,
)
_STANDIN = "supautils_standin.policy_statement(text)"

HISTORY_DDL = (
    "create schema if not exists supabase_migrations",
    "create table if not exists supabase_migrations.schema_migrations ("
    "version text not null primary key, statements text[], name text)",
)


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    path: Path

    @property
    def statements(self) -> list[str]:
        return split_statements(self.path.read_text())


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        m = _NAME.match(path.name)
        if not m:
            raise ConfigError(
                f"migration file name not in YYYYMMDDHHMMSS_name.sql form: {path.name}"
            )
        migrations.append(Migration(m["version"], m["name"], path))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise ConfigError("two migration files share a version")
    return migrations


def split_statements(text: str) -> list[str]:
    """Split SQL into statements on top-level semicolons.

    Understands single-quoted strings (with '' escapes, and backslash escapes in E'...'),
    quoted identifiers, dollar-quoted bodies
    ($tag$ ... $tag$), `--` line comments and nested `/* */` comments. Empty statements and
    comment-only statements are dropped; each statement keeps its text without the `;`.
    """
    statements: list[str] = []
    buf: list[str] = []
    i, n = 0, len(text)
    meaningful = False
    while i < n:
        c = text[i]
        if c == "-" and text.startswith("--", i):
            j = text.find("\n", i)
            j = n if j == -1 else j
            buf.append(text[i:j])
            i = j
            continue
        if c == "/" and text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            buf.append(text[i:j])
            i = j
            continue
        if c in ("'", '"'):
            # E'...' strings take backslash escapes (E'it\'s'); standard ones only ''.
            backslash = (
                c == "'"
                and i > 0
                and text[i - 1] in "eE"
                and (i < 2 or not (text[i - 2].isalnum() or text[i - 2] in "_$"))
            )
            j = i + 1
            while j < n:
                if backslash and text[j] == "\\":
                    j += 2
                    continue
                if text[j] == c:
                    if j + 1 < n and text[j + 1] == c:
                        j += 2
                        continue
                    break
                j += 1
            buf.append(text[i : j + 1])
            meaningful = True
            i = j + 1
            continue
        if c == "$":
            m = re.match(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$", text[i:])
            if m:
                tag = m.group(0)
                end = text.find(tag, i + len(tag))
                end = n if end == -1 else end + len(tag)
                buf.append(text[i:end])
                meaningful = True
                i = end
                continue
        if c == ";":
            if meaningful:
                statements.append("".join(buf).strip())
            buf, meaningful = [], False
            i += 1
            continue
        if not c.isspace():
            meaningful = True
        buf.append(c)
        i += 1
    if meaningful:
        statements.append("".join(buf).strip())
    return statements


def _run_file(conn: psycopg.Connection, path: Path) -> None:
    for statement in split_statements(path.read_text()):
        conn.execute(statement.encode())


def bootstrap(conn: psycopg.Connection) -> None:
    """Apply the idempotent local bootstrap (roles, auth, storage, default grants)."""
    with conn.transaction():
        _run_file(conn, BOOTSTRAP_FILE)


def applied_versions(conn: psycopg.Connection) -> set[str]:
    with conn.transaction():
        for ddl in HISTORY_DDL:
            conn.execute(ddl.encode())
    rows = conn.execute("select version from supabase_migrations.schema_migrations").fetchall()
    return {r[0] for r in rows}


def _storage_policy(statement: str) -> str | None:
    """The statement without its leading comments, when it is a policy on a storage table."""
    body = _LEADING_COMMENTS.sub("", statement, count=1)
    return body if _STORAGE_POLICY.match(body) else None


def _apply(conn: psycopg.Connection, statement: str, standin: bool) -> None:
    policy = _storage_policy(statement) if standin else None
    if policy is not None:
        conn.execute("select supautils_standin.policy_statement(%s)", (policy,))
    else:
        conn.execute(statement.encode())


def migrate(database_url: str, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Bootstrap, then apply pending migrations. Returns the migrations applied now."""
    migrations = discover(directory)
    applied_now: list[Migration] = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("select pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            bootstrap(conn)
            done = applied_versions(conn)
            unknown = sorted(done - {m.version for m in migrations})
            if unknown:
                raise ConfigError(
                    "the database records migration versions with no file here: "
                    + ", ".join(unknown)
                    + " (pull the missing files, or repair the history, before migrating)"
                )
            row = conn.execute("select to_regprocedure(%s) is not null", (_STANDIN,)).fetchone()
            standin = bool(row and row[0])
            for migration in migrations:
                if migration.version in done:
                    continue
                statements = migration.statements
                with conn.pipeline():
                    for statement in statements:
                        _apply(conn, statement, standin)
                    conn.execute(
                        "insert into supabase_migrations.schema_migrations "
                        "(version, name, statements) values (%s, %s, %s)",
                        (migration.version, migration.name, statements),
                    )
                log.info(
                    "applied migration",
                    extra={"version": migration.version, "migration": migration.name},
                )
                applied_now.append(migration)
        finally:
            conn.execute("select pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied_now


def seed(database_url: str, path: Path = SEED_FILE) -> None:
    if not path.exists():
        return
    with psycopg.connect(database_url, autocommit=True) as conn, conn.transaction():
        _run_file(conn, path)
