"""supabase/schema.sql is what the migrations build.

A fresh copy of the migrated template is read back from the catalog (`shared.dev.schema.dump`)
and compared with the committed file, so a migration without its regenerated schema.sql (or a
hand edit of schema.sql) fails here.
"""

from __future__ import annotations

import difflib
import os

import pytest

from shared.dev import schema


@pytest.mark.skipif(
    bool(os.environ.get("TEST_DATABASE_URL")),
    reason="schema.sql is generated on the embedded cluster, where migrations run as `postgres`"
    " (owners and default privileges differ on another server)",
)
def test_schema_sql_is_what_the_migrations_build(database_url):
    fresh = schema.dump(database_url)
    committed = schema.SCHEMA_FILE.read_text() if schema.SCHEMA_FILE.exists() else ""
    if fresh != committed:
        diff = "".join(
            list(
                difflib.unified_diff(
                    committed.splitlines(keepends=True),
                    fresh.splitlines(keepends=True),
                    "supabase/schema.sql (committed)",
                    "the migrations (fresh database)",
                    n=2,
                )
            )[:80]
        )
        pytest.fail(
            "supabase/schema.sql does not match the migrations: regenerate it with"
            f" `{schema.REGENERATE}` (make schema) and commit it.\n{diff}",
            pytrace=False,
        )


def test_the_dump_is_deterministic(database_url):
    assert schema.dump(database_url) == schema.dump(database_url)
