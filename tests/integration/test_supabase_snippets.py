"""The Supabase SQL snippets of docs/deploy.md (`docs/supabase/*.sql`) against the real schema.

`wake_on_insert.sql` and `cron.sql` call Supabase extensions that cannot run on the local
PostgreSQL: pg_net (`net.http_post`), pg_cron (`cron.schedule`, `cron.unschedule`,
`cron.job`) and Vault (`vault.create_secret`, `vault.decrypted_secrets`). `STAND_INS` below
creates minimal stand-ins for them in the test's own database, with the real signatures:
`net.http_post` records its arguments in `net.recorded_requests` (inside the caller's
transaction, as pg_net queues a request that a rollback discards), `cron.schedule` upserts by
name and `cron.unschedule` raises for an unknown name, as pg_cron's do. Nothing else is faked:
jobs are inserted through the real SQL functions (`create_upload`, `enqueue_jobs`).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from shared.platform.client import Database, UserContext
from shared.platform.errors import NotFound
from tests.support.factories import create_upload
from tests.support.times import T0

SNIPPETS = Path(__file__).resolve().parents[2] / "docs" / "supabase"
BASE_URL = "https://europe-west1-docflow-test.cloudfunctions.net"
SECRET = "scheduler-secret-from-vault-0123456789abcdef"

STAND_INS = """
create schema net;
create table net.recorded_requests (
  id bigserial primary key,
  url text,
  body jsonb,
  params jsonb,
  headers jsonb,
  timeout_milliseconds integer,
  txid bigint not null default txid_current()
);
create function net.http_post(
  url text,
  body jsonb default '{}'::jsonb,
  params jsonb default '{}'::jsonb,
  headers jsonb default '{"Content-Type": "application/json"}'::jsonb,
  timeout_milliseconds integer default 5000
) returns bigint language sql as $$
  insert into net.recorded_requests (url, body, params, headers, timeout_milliseconds)
  values ($1, $2, $3, $4, $5)
  returning id
$$;

create schema vault;
create table vault.secrets (
  id uuid primary key default gen_random_uuid(),
  name text unique,
  secret text not null
);
create view vault.decrypted_secrets as
  select id, name, secret as decrypted_secret from vault.secrets;
create function vault.create_secret(
  new_secret text,
  new_name text default null,
  new_description text default '',
  new_key_id uuid default null
) returns uuid language sql as $$
  insert into vault.secrets (name, secret) values ($2, $1) returning id
$$;

create schema cron;
create table cron.job (
  jobid bigserial primary key,
  schedule text not null,
  command text not null,
  jobname text unique
);
create function cron.schedule(job_name text, schedule text, command text)
returns bigint language sql as $$
  insert into cron.job (jobname, schedule, command) values ($1, $2, $3)
  on conflict (jobname) do update set schedule = excluded.schedule, command = excluded.command
  returning jobid
$$;
create function cron.unschedule(job_name text) returns boolean language plpgsql as $$
begin
  delete from cron.job where jobname = job_name;
  if not found then
    raise exception 'could not find valid entry for job ''%''', job_name;
  end if;
  return true;
end;
$$;
"""

BROKEN_HTTP_POST = """
create or replace function net.http_post(
  url text,
  body jsonb default '{}'::jsonb,
  params jsonb default '{}'::jsonb,
  headers jsonb default '{"Content-Type": "application/json"}'::jsonb,
  timeout_milliseconds integer default 5000
) returns bigint language plpgsql as $$
begin
  raise exception 'pg_net is broken';
end;
$$;
"""

SCHEDULED = {
    "docflow-process-jobs": ("* * * * *", "/process_jobs"),
    "docflow-probe-health": ("* * * * *", "/probe_health"),
    "docflow-retention": ("17 3 * * *", "/retention"),
}


@pytest.fixture
def supabase(sql: psycopg.Connection) -> psycopg.Connection:
    """The test database with the stand-ins and docflow's two Vault secrets."""
    sql.execute(STAND_INS)
    sql.execute("select vault.create_secret(%s, 'docflow_base_url')", (BASE_URL,))
    sql.execute("select vault.create_secret(%s, 'docflow_scheduler_secret')", (SECRET,))
    return sql


def apply(sql: psycopg.Connection, name: str) -> None:
    sql.execute((SNIPPETS / name).read_text())


def requests(sql: psycopg.Connection) -> list[dict[str, Any]]:
    with sql.cursor(row_factory=dict_row) as cur:
        return cur.execute("select * from net.recorded_requests order by id").fetchall()


def count(sql: psycopg.Connection, query: str) -> int:
    row = sql.execute(query).fetchone()
    assert row is not None
    return int(row[0])


def documents_without_jobs(sql: psycopg.Connection, user: UserContext, n: int) -> list[str]:
    """n documents with no job yet (inserted directly: no job, so no trigger)."""
    ids = []
    for _ in range(n):
        data = uuid.uuid4().bytes
        row = sql.execute(
            "insert into public.documents"
            " (user_id, original_filename, content_type, size_bytes, sha256, storage_path)"
            " values (%s, 'doc.txt', 'text/plain', %s, %s, %s) returning id",
            (user.user_id, len(data), hashlib.sha256(data).hexdigest(), str(uuid.uuid4())),
        ).fetchone()
        assert row is not None
        ids.append(str(row[0]))
    return ids


def assert_wake_request(request: dict[str, Any]) -> None:
    assert request["url"] == f"{BASE_URL}/process_jobs"
    assert request["headers"] == {
        "Content-Type": "application/json",
        "X-Scheduler-Secret": SECRET,
    }
    assert request["body"] == {"max_seconds": 50}
    # pg_net must wait longer than the budget it asks for.
    assert request["timeout_milliseconds"] > request["body"]["max_seconds"] * 1000


# --- wake_on_insert.sql ----------------------------------------------------------------------


def test_wake_function_is_security_definer_with_an_empty_search_path(
    supabase: psycopg.Connection,
) -> None:
    apply(supabase, "wake_on_insert.sql")
    row = supabase.execute(
        "select p.prosecdef, p.proconfig, t.tgtype"
        "  from pg_trigger t join pg_proc p on p.oid = t.tgfoid"
        " where t.tgrelid = 'public.processing_jobs'::regclass"
        "   and t.tgname = 'docflow_wake_process_jobs'"
    ).fetchone()
    assert row is not None, "the trigger is not on public.processing_jobs"
    secdef, config, tgtype = row
    assert secdef is True
    assert config == ['search_path=""']
    # tgtype bits: 1 = row level (must be off), 2 = before (off), 4 = insert (on)
    assert (tgtype & 1, tgtype & 2, tgtype & 4) == (0, 0, 4)


def test_each_inserting_statement_wakes_process_jobs_once(
    supabase: psycopg.Connection, db: Database, make_user: Callable[..., UserContext]
) -> None:
    apply(supabase, "wake_on_insert.sql")
    apply(supabase, "wake_on_insert.sql")  # running it again replaces, never doubles
    user = make_user()

    first = create_upload(db, user, now=T0)
    (request,) = requests(supabase)
    assert_wake_request(request)

    create_upload(db, user, now=T0)
    assert len(requests(supabase)) == 2

    # One bulk statement inserting three jobs: one request.
    docs = documents_without_jobs(supabase, user, 3)
    ids = db.call("enqueue_jobs", jobs=[{"document_id": d} for d in docs])
    assert len(ids) == 3
    assert count(supabase, "select count(*) from public.processing_jobs") == 5
    sent = requests(supabase)
    assert len(sent) == 3
    for request in sent:
        assert_wake_request(request)
    assert len({r["txid"] for r in sent}) == 3  # one per statement's transaction

    # A statement that inserts no job sends nothing.
    supabase.execute(
        "insert into public.processing_jobs (document_id, user_id)"
        " select document_id, user_id from public.processing_jobs where false"
    )
    assert len(requests(supabase)) == 3

    # A failed insert rolls back its request with it, as pg_net's queue does.
    with pytest.raises(NotFound):
        db.call("enqueue_jobs", jobs=[{"document_id": str(uuid.uuid4())}])
    assert len(requests(supabase)) == 3
    assert first["status"] == "pending"


def test_a_broken_http_post_never_fails_the_insert(
    supabase: psycopg.Connection, db: Database, make_user: Callable[..., UserContext]
) -> None:
    apply(supabase, "wake_on_insert.sql")
    supabase.execute(BROKEN_HTTP_POST)
    user = make_user()

    created = create_upload(db, user, now=T0)  # the real path, as the service role
    row = supabase.execute(
        "select status from public.processing_jobs where id = %s", (created["job_id"],)
    ).fetchone()
    assert row == ("pending",)

    notices: list[str] = []
    supabase.add_notice_handler(
        lambda diag: notices.append(f"{diag.severity} {diag.message_primary}")
    )
    (doc,) = documents_without_jobs(supabase, user, 1)
    supabase.execute(
        "insert into public.processing_jobs (document_id, user_id) values (%s, %s)",
        (doc, user.user_id),
    )
    assert count(supabase, "select count(*) from public.processing_jobs") == 2
    assert requests(supabase) == []
    assert any(
        n.startswith("WARNING") and "wake_process_jobs failed" in n and "pg_net is broken" in n
        for n in notices
    ), notices
    assert not any(SECRET in n for n in notices)


def test_a_missing_vault_secret_never_fails_the_insert(
    supabase: psycopg.Connection, db: Database, make_user: Callable[..., UserContext]
) -> None:
    apply(supabase, "wake_on_insert.sql")
    supabase.execute("delete from vault.secrets where name = 'docflow_base_url'")
    user = make_user()

    created = create_upload(db, user, now=T0)
    assert created["status"] == "pending"
    assert count(supabase, "select count(*) from public.processing_jobs") == 1
    assert requests(supabase) == []


# --- cron.sql --------------------------------------------------------------------------------


def jobs(sql: psycopg.Connection) -> dict[str, tuple[str, str]]:
    rows = sql.execute("select jobname, schedule, command from cron.job").fetchall()
    return {name: (schedule, command) for name, schedule, command in rows}


def test_cron_schedules_three_jobs_and_can_run_again(supabase: psycopg.Connection) -> None:
    supabase.execute("select cron.schedule('someone-else', '0 * * * *', 'select 1')")
    apply(supabase, "cron.sql")  # no docflow job exists yet: unschedule only what exists
    first = jobs(supabase)
    apply(supabase, "cron.sql")
    second = jobs(supabase)

    assert set(second) == set(SCHEDULED) | {"someone-else"}
    assert second["someone-else"] == ("0 * * * *", "select 1")
    for name, (schedule, _route) in SCHEDULED.items():
        assert second[name][0] == schedule, name
    assert {n: c for n, (_s, c) in first.items()} == {n: c for n, (_s, c) in second.items()}
    assert count(supabase, "select count(*) from cron.job") == 4


@pytest.mark.parametrize("name", sorted(SCHEDULED))
def test_each_cron_command_posts_to_its_route_with_the_secret(
    supabase: psycopg.Connection, name: str
) -> None:
    apply(supabase, "cron.sql")
    _schedule, route = SCHEDULED[name]
    command = jobs(supabase)[name][1]

    supabase.execute(command)  # what pg_cron runs
    (request,) = requests(supabase)
    assert request["url"] == BASE_URL + route
    assert request["headers"] == {"Content-Type": "application/json", "X-Scheduler-Secret": SECRET}
    assert isinstance(request["body"], dict)
    if route == "/process_jobs":
        assert request["body"] == {"max_seconds": 50}
        assert request["timeout_milliseconds"] > 50_000
    if route == "/retention":
        assert request["body"] == {"dry_run": False}

    # The command reads Vault when it runs: a rotated secret (or a new base URL with a
    # trailing slash) needs no new schedule.
    supabase.execute(
        "update vault.secrets set secret = 'rotated-secret-0123456789abcdefghijkl'"
        " where name = 'docflow_scheduler_secret'"
    )
    supabase.execute(
        "update vault.secrets set secret = secret || '/' where name = 'docflow_base_url'"
    )
    supabase.execute(command)
    again = requests(supabase)[-1]
    assert again["url"] == BASE_URL + route
    assert again["headers"]["X-Scheduler-Secret"] == "rotated-secret-0123456789abcdefghijkl"
