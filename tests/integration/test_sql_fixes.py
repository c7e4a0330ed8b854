"""Issue 14's four SQL points, each against the real migrated database.

- Every foreign key of our schemas leads an index, so a cascade from `auth.users` (or a
  document) finds the rows it deletes without a scan: `document_processing_events.user_id`
  was the one that did not.
- `list_jobs` with its explicit user filter answers exactly what the RLS-only version answered,
  for users, admins and the service.
- `claim_jobs` and `complete_jobs` guard only their event insert: a failing insert is a WARNING
  and the transition commits; an error of the transition itself reaches the caller, and the
  transition is not run a second time.
- `queue_health` reads counters kept by triggers instead of counting every job: they equal a
  recount in the same snapshot while concurrent writers run every kind of transition, and the
  answer equals the old full scan's for every kind of caller.

The "before" versions of `list_jobs` and `queue_health` are taken from the migrations that
defined them (the statement as written there, renamed), not copied into this file.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from shared.dev import migrate

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
SCHEMAS = ["public", "docflow_private"]


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def scalar(conn: psycopg.Connection, query: str, *params: Any) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def call(conn: psycopg.Connection, fn: str, **params: Any) -> Any:
    """`select public.fn(name => value, ...)` on a raw connection."""
    values = {k: Jsonb(v) if isinstance(v, dict | list) else v for k, v in params.items()}
    args = ", ".join(f"{name} => %({name})s" for name in values)
    row = conn.execute(f"select public.{fn}({args})", values).fetchone()
    assert row is not None
    return row[0]


def claims_for(user_id: str | None, *, admin: bool = False) -> dict[str, Any]:
    claims: dict[str, Any] = {"role": "authenticated", "aud": "authenticated"}
    if user_id is not None:
        claims["sub"] = user_id
    claims["app_metadata"] = {"role": "admin"} if admin else {}
    return claims


@contextmanager
def as_caller(conn: psycopg.Connection, claims: dict[str, Any] | None) -> Iterator[None]:
    """A transaction as PostgREST runs a request: `authenticated` with these claims (None: the
    service login itself, which bypasses RLS)."""
    with conn.transaction():
        if claims is not None:
            conn.execute(
                "select set_config('role', 'authenticated', true),"
                " set_config('request.jwt.claims', %s, true)",
                (json.dumps(claims),),
            )
        yield


def previous_definition(migration: str, function: str, new_name: str) -> str:
    """The `create or replace function public.<function>` statement of a migration, renamed."""
    (path,) = migrate.MIGRATIONS_DIR.glob(f"{migration}_*.sql")
    (statement,) = [
        s
        for s in migrate.split_statements(path.read_text())
        if re.search(rf"create or replace function public\.{function}\(", s)
    ]
    return re.sub(rf"\b{function}\b", new_name, statement)


def upload(conn: psycopg.Connection, user_id: str, *, now: datetime = T0, **extra: Any) -> dict:
    data = uuid.uuid4().bytes
    return call(
        conn,
        "create_upload",
        user_id=user_id,
        original_filename="doc.txt",
        content_type="text/plain",
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        storage_path=f"{user_id}/{uuid.uuid4()}",
        now=now,
        **extra,
    )


# --- 1. foreign keys lead an index ------------------------------------------------------------


def test_every_foreign_key_leads_an_index(sql):
    """For each foreign key of a table of our schemas, some valid, non-partial index starts with
    exactly the key's columns (in any order), so the referencing rows of a deleted parent are
    found through it. General: a foreign key added later without its index fails here."""
    keys = sql.execute(
        "select format('%%s (%%s)', k.conname, k.conrelid::regclass), k.conrelid, k.conkey"
        "  from pg_constraint k join pg_namespace n on n.oid = k.connamespace"
        " where k.contype = 'f' and n.nspname = any(%s)",
        (SCHEMAS,),
    ).fetchall()
    assert keys, "no foreign keys found: the catalog query is wrong"
    indexes: dict[int, list[list[int]]] = {}
    for table, columns in sql.execute(
        "select x.indrelid, x.indkey::smallint[] from pg_index x"
        " where x.indisvalid and x.indpred is null"
    ).fetchall():
        indexes.setdefault(table, []).append(list(columns))
    unindexed = [
        name
        for name, table, key in keys
        if not any(sorted(index[: len(key)]) == sorted(key) for index in indexes.get(table, []))
    ]
    assert unindexed == []
    # The one this issue added, by name.
    assert scalar(
        sql,
        "select pg_get_indexdef('public.document_processing_events_user_idx'::regclass)",
    ) == (
        "CREATE INDEX document_processing_events_user_idx"
        " ON public.document_processing_events USING btree (user_id)"
    )


# --- 2. list_jobs -----------------------------------------------------------------------------


def _seed_listing(sql: psycopg.Connection, users: list[str]) -> None:
    """Jobs for each user, with shared created_at values (so the id breaks ties) and mixed
    statuses; inserted directly, as the superuser."""
    sql.execute(
        "with docs as ("
        "  insert into public.documents"
        "    (user_id, original_filename, content_type, size_bytes, sha256, storage_path)"
        "  select u, 'doc.txt', 'text/plain', 1,"
        "         encode(sha256(convert_to(u::text || g, 'UTF8')), 'hex'),"
        "         u::text || '/' || g"
        "    from unnest(%s::uuid[]) u, generate_series(1, 7) g"
        "  returning id, user_id, storage_path"
        ")"
        " insert into public.processing_jobs"
        "   (document_id, user_id, status, priority, created_at, completed_at)"
        " select d.id, d.user_id,"
        "        (array['pending', 'completed', 'failed', 'cancelled'])"
        "          [1 + (split_part(d.storage_path, '/', 2)::integer %% 4)],"
        "        'normal', %s::timestamptz"
        "          + make_interval(secs => split_part(d.storage_path, '/', 2)::integer / 3),"
        "        case when split_part(d.storage_path, '/', 2)::integer %% 4 <> 0"
        "             then %s::timestamptz end"
        "   from docs d",
        (users, T0, T0),
    )


def test_list_jobs_answers_as_before_for_users_admins_and_the_service(database_url, sql, make_user):
    users = [make_user().user_id for _ in range(3)]
    admin = make_user(admin=True).user_id
    _seed_listing(sql, users)
    sql.execute(previous_definition("20261123180000", "list_jobs", "list_jobs_before"))

    callers: dict[str, dict[str, Any] | None] = {
        "user": claims_for(users[0]),
        "other user": claims_for(users[1]),
        "user without jobs": claims_for(make_user().user_id),
        "no subject": claims_for(None),
        "admin": claims_for(admin, admin=True),
        "service": None,
    }
    compared = 0
    with psycopg.connect(database_url, autocommit=True) as conn:
        for name, claims in callers.items():
            with as_caller(conn, claims):
                everything = call(conn, "list_jobs_before", max_rows=200)
            cursors: list[dict[str, Any]] = [{}] + [
                {"before_created_at": row["created_at"], "before_id": row["id"]}
                for row in everything
            ]
            for status in (None, "pending", "completed"):
                for max_rows in (1, 2, 50, 500):
                    for cursor in cursors:
                        params = {"status": status, "max_rows": max_rows, **cursor}
                        with as_caller(conn, claims):
                            now = call(conn, "list_jobs", **params)
                            before = call(conn, "list_jobs_before", **params)
                        assert now == before, (name, params)
                        compared += 1
            expected = {
                "user": 7,
                "other user": 7,
                "user without jobs": 0,
                "no subject": 0,
                "admin": 21,
                "service": 21,
            }[name]
            assert len(everything) == expected, name
    assert compared > 500


# --- 3. the event guard -----------------------------------------------------------------------


@contextmanager
def notices(conn: psycopg.Connection) -> Iterator[list[str]]:
    seen: list[str] = []

    def handler(diag: psycopg.errors.Diagnostic) -> None:
        seen.append(f"{diag.severity}: {diag.message_primary}")

    conn.add_notice_handler(handler)
    try:
        yield seen
    finally:
        conn.remove_notice_handler(handler)


def test_a_failing_event_insert_warns_and_the_transition_commits(database_url, sql, make_user):
    user = make_user().user_id
    with psycopg.connect(database_url, autocommit=True) as conn:
        first = upload(conn, user, now=at(0))
        second = upload(conn, user, now=at(1))
        sql.execute(
            "alter table public.document_processing_events"
            " add constraint no_more_events check (false) not valid"
        )
        with notices(conn) as seen:
            claimed = call(conn, "claim_jobs", worker_id="w1", max_jobs=5, now=at(10))
        assert [j["id"] for j in claimed] == [first["job_id"], second["job_id"]]
        assert seen == [
            "WARNING: docflow: 2 lifecycle event(s) not recorded: new row for"
            ' relation "document_processing_events" violates check constraint'
            ' "no_more_events" (SQLSTATE 23514)'
        ]
        with notices(conn) as seen:
            done = call(
                conn,
                "complete_jobs",
                worker_id="w1",
                completions=[{"id": j["id"], "attempt": 1, "result": {}} for j in claimed],
                now=at(11),
            )
        assert sorted(done["completed"]) == sorted([first["job_id"], second["job_id"]])
        assert done["lost"] == [] and done["cancelled"] == []
        assert len(seen) == 1 and "2 lifecycle event(s) not recorded" in seen[0]
        # An empty claim writes no event and warns about nothing.
        with notices(conn) as seen:
            assert call(conn, "claim_jobs", worker_id="w1", max_jobs=5, now=at(12)) == []
        assert seen == []

    statuses = sql.execute(
        "select status, count(*) from public.processing_jobs group by status"
    ).fetchall()
    assert statuses == [("completed", 2)]
    assert (
        scalar(
            sql,
            "select count(*) from public.document_processing_events"
            " where event_type in ('processing_started', 'completed')",
        )
        == 0
    )


FAIL_ONCE = """
create sequence public.test_fail_once;
grant usage on sequence public.test_fail_once to public;
create function public.test_fail_once() returns trigger language plpgsql as $$
begin
  if nextval('public.test_fail_once') = 1 then
    raise exception 'deadlock detected (simulated)' using errcode = '40P01';
  end if;
  return new;
end;
$$;
create trigger test_fail_once before update on public.processing_jobs
  for each row execute function public.test_fail_once();
"""


def _fail_the_next_update(sql: psycopg.Connection) -> None:
    """The next row update of processing_jobs raises a deadlock error, once: a transition that
    is run again after the error succeeds the second time."""
    for statement in migrate.split_statements(FAIL_ONCE):
        sql.execute(statement)


def test_an_error_in_the_claim_itself_is_raised_and_not_run_again(database_url, sql, make_user):
    user = make_user().user_id
    with psycopg.connect(database_url, autocommit=True) as conn:
        job = upload(conn, user, now=at(0))
        _fail_the_next_update(sql)
        with notices(conn) as seen, pytest.raises(psycopg.errors.DeadlockDetected):
            call(conn, "claim_jobs", worker_id="w1", max_jobs=5, now=at(10))
        assert seen == []  # not reported as "events not recorded"
        assert scalar(sql, "select last_value from public.test_fail_once") == 1  # run once
        assert sql.execute(
            "select status, attempts from public.processing_jobs where id = %s",
            (job["job_id"],),
        ).fetchone() == ("pending", 0)
        # The caller's retry claims it, with its event.
        (claimed,) = call(conn, "claim_jobs", worker_id="w1", max_jobs=5, now=at(11))
        assert claimed["id"] == job["job_id"] and claimed["attempts"] == 1
    assert sql.execute(
        "select event_type from public.document_processing_events where job_id = %s order by id",
        (job["job_id"],),
    ).fetchall() == [("upload_started",), ("processing_started",)]


def test_an_error_in_the_completion_itself_is_raised_and_not_run_again(
    database_url, sql, make_user
):
    user = make_user().user_id
    with psycopg.connect(database_url, autocommit=True) as conn:
        job = upload(conn, user, now=at(0))
        call(conn, "claim_jobs", worker_id="w1", max_jobs=5, now=at(10))
        _fail_the_next_update(sql)
        completions = [{"id": job["job_id"], "attempt": 1, "result": {"ok": True}}]
        with notices(conn) as seen, pytest.raises(psycopg.errors.DeadlockDetected):
            call(conn, "complete_jobs", worker_id="w1", completions=completions, now=at(12))
        assert seen == []
        assert scalar(sql, "select last_value from public.test_fail_once") == 1
        assert (
            scalar(sql, "select status from public.processing_jobs where id = %s", job["job_id"])
            == "processing"
        )
        done = call(conn, "complete_jobs", worker_id="w1", completions=completions, now=at(13))
        assert done["completed"] == [job["job_id"]]
    assert sql.execute(
        "select event_type, duration_ms from public.document_processing_events"
        " where job_id = %s order by id",
        (job["job_id"],),
    ).fetchall() == [("upload_started", None), ("processing_started", None), ("completed", 3000)]


# --- 4. queue_health's counters ----------------------------------------------------------------

COUNTERS = (
    "select status, priority, sum(n) from public.job_status_counts"
    " group by 1, 2 having sum(n) <> 0 order by 1, 2"
)
RECOUNT = (  # the counters hold the finished jobs only; the active ones are counted live
    "select status, priority, count(*) from public.processing_jobs"
    " where status in ('completed', 'failed', 'cancelled') group by 1, 2 order by 1, 2"
)
HEALTH = {
    "window_seconds": 3600,
    "degraded_success_rate": 0.9,
    "unhealthy_success_rate": 0.7,
    "degraded_stalled": 0,
    "unhealthy_stalled": 5,
    "degraded_backlog": 3,
    "degraded_oldest_seconds": 600,
}


def counters_and_recount(conn: psycopg.Connection) -> tuple[list[Any], list[Any]]:
    """Both in one snapshot (REPEATABLE READ), however busy the writers are."""
    with conn.transaction():
        conn.execute("set transaction isolation level repeatable read")
        return conn.execute(COUNTERS).fetchall(), conn.execute(RECOUNT).fetchall()


ALLOWED_ERRORS = ("DF", "40P01", "40001", "23505")


def _workload(
    database_url: str, admin_database_url: str, users: list[str], seed: int, steps: int
) -> dict[str, int]:
    """One writer: a random mix of every transition, with fixed times. Errors a transition
    may legitimately raise here (DFxxx refusals, deadlocks, conflicts) roll back that call."""
    rnd = random.Random(seed)
    worker = f"w{seed}"
    held: list[tuple[str, int]] = []  # (job id, attempt) this writer holds
    done: dict[str, int] = {}
    with (
        psycopg.connect(database_url, autocommit=True) as conn,
        psycopg.connect(admin_database_url, autocommit=True) as admin,
    ):

        def any_job() -> str | None:
            row = conn.execute(
                "select id from public.processing_jobs order by random() limit 1"
            ).fetchone()
            return str(row[0]) if row else None

        def op_upload() -> None:
            priority = rnd.choice(["low", "normal", "high"])
            upload(conn, rnd.choice(users), now=at(0), priority=priority)

        def op_claim() -> None:
            jobs = call(
                conn,
                "claim_jobs",
                worker_id=worker,
                max_jobs=rnd.randint(1, 4),
                lease_seconds=30,
                now=at(10),
            )
            held.extend((j["id"], j["attempts"]) for j in jobs)

        def take() -> list[tuple[str, int]]:
            rnd.shuffle(held)
            n = rnd.randint(1, max(1, len(held)))
            taken = held[:n]
            del held[:n]
            return taken

        def op_complete() -> None:
            if held:
                call(
                    conn,
                    "complete_jobs",
                    worker_id=worker,
                    now=at(12),
                    completions=[{"id": i, "attempt": a, "result": {}} for i, a in take()],
                )

        def op_fail() -> None:
            if held:
                call(
                    conn,
                    "fail_jobs",
                    worker_id=worker,
                    now=at(12),
                    retry_initial_seconds=0,
                    retry_jitter=0,
                    failures=[
                        {
                            "id": i,
                            "attempt": a,
                            "error_code": "x",
                            "error_message": "y",
                            "recoverable": rnd.random() < 0.7,
                        }
                        for i, a in take()
                    ],
                )

        def op_release() -> None:
            if held:
                call(
                    conn,
                    "release_jobs",
                    worker_id=worker,
                    now=at(12),
                    jobs=[{"id": i, "attempt": a} for i, a in take()],
                )

        def op_heartbeat() -> None:
            if held:
                call(
                    conn,
                    "heartbeat_jobs",
                    worker_id=worker,
                    now=at(11),
                    jobs=[{"id": i, "attempt": a, "progress": 50} for i, a in held],
                )

        def op_cancel() -> None:
            job = any_job()
            if job:
                call(conn, "cancel_job", job_id=job, now=at(12))

        def op_retry() -> None:
            job = any_job()
            if job:
                call(conn, "retry_job", job_id=job, now=at(12))

        def op_reanalyze() -> None:
            row = conn.execute(
                "select id from public.documents order by random() limit 1"
            ).fetchone()
            if row:
                call(
                    conn,
                    "reanalyze_document",
                    document_id=row[0],
                    min_interval_seconds=0,
                    now=at(12),
                )

        def op_stalled() -> None:
            call(conn, "recover_stalled_jobs", now=at(3600))

        def op_delete_document() -> None:
            conn.execute(
                "delete from public.documents where id ="
                " (select id from public.documents order by random() limit 1)"
            )

        def op_retention() -> None:
            call(
                conn,
                "retention_delete",
                target="processing_jobs",
                keep_days=1,
                batch_size=rnd.randint(1, 5),
                now=at(86400 * 3),
            )

        def op_delete_user() -> None:
            victim = str(uuid.uuid4())
            admin.execute("insert into auth.users (id) values (%s)", (victim,))
            for _ in range(rnd.randint(1, 3)):
                upload(conn, victim, now=at(0))
            admin.execute("delete from auth.users where id = %s", (victim,))

        def op_rolled_back() -> None:
            with conn.transaction(force_rollback=True):
                upload(conn, rnd.choice(users), now=at(0))
                call(conn, "claim_jobs", worker_id=worker, max_jobs=2, now=at(10))

        def op_health() -> None:
            call(conn, "queue_health", now=at(20))  # folds, as the service

        ops: list[tuple[Callable[[], None], int]] = [
            (op_upload, 10),
            (op_claim, 8),
            (op_complete, 5),
            (op_fail, 4),
            (op_release, 1),
            (op_heartbeat, 2),
            (op_cancel, 2),
            (op_retry, 2),
            (op_reanalyze, 2),
            (op_stalled, 1),
            (op_delete_document, 1),
            (op_retention, 1),
            (op_delete_user, 1),
            (op_rolled_back, 1),
            (op_health, 2),
        ]
        functions = [f for f, weight in ops for _ in range(weight)]
        for _ in range(steps):
            op = rnd.choice(functions)
            try:
                op()
                done[op.__name__] = done.get(op.__name__, 0) + 1
            except psycopg.Error as exc:
                if not (exc.sqlstate or "").startswith(ALLOWED_ERRORS):
                    raise
                if op in (op_complete, op_fail, op_release):
                    held.clear()  # unknown which of them the call moved: forget them
    return done


def test_counters_equal_a_recount_under_concurrent_writers(
    database_url, admin_database_url, sql, make_user
):
    users = [make_user().user_id for _ in range(4)]
    writers, steps = 4, 250
    stop = threading.Event()
    snapshots: list[tuple[list[Any], list[Any]]] = []

    def checker() -> None:
        with psycopg.connect(admin_database_url, autocommit=True) as conn:
            while not stop.is_set():
                snapshots.append(counters_and_recount(conn))
                stop.wait(0.01)  # pacing only: leave the writers the CPU

    with ThreadPoolExecutor(max_workers=writers + 1) as pool:
        watching = pool.submit(checker)
        try:
            runs = [
                pool.submit(_workload, database_url, admin_database_url, users, seed, steps)
                for seed in range(writers)
            ]
            done = [run.result() for run in runs]  # re-raises a writer's error
        finally:
            stop.set()
        watching.result()

    for counters, recount in snapshots:
        assert counters == recount
    assert snapshots, "the checker never compared"
    final_counters, final_recount = counters_and_recount(sql)
    assert final_counters == final_recount
    # The workload did move jobs through every path.
    totals: dict[str, int] = {}
    for d in done:
        for name, n in d.items():
            totals[name] = totals.get(name, 0) + n
    assert {"op_upload", "op_claim", "op_complete", "op_fail", "op_delete_user"} <= set(totals)
    assert len({row[0] for row in final_recount}) >= 3  # several statuses

    # The answer equals the old full scan's, as the service and as an admin.
    sql.execute(previous_definition("20261123230000", "queue_health", "queue_health_before"))
    with psycopg.connect(database_url, autocommit=True) as conn:
        for claims in (None, claims_for(users[0], admin=True)):
            for now in (at(0), at(11), at(20), at(7200)):
                with as_caller(conn, claims):
                    assert call(conn, "queue_health", **HEALTH, now=now) == call(
                        conn, "queue_health_before", **HEALTH, now=now
                    )


def _deterministic_queue(conn: psycopg.Connection, users: list[str]) -> None:
    """Every status, retries, a stalled job (from 40 s) and a cancellation request."""
    a, b = users
    for i, priority in enumerate(["low", "normal", "high", "normal", "high", "low"]):
        upload(conn, a if i % 2 else b, now=at(i), priority=priority)
    claimed = call(conn, "claim_jobs", worker_id="w1", max_jobs=4, lease_seconds=30, now=at(10))
    call(
        conn,
        "complete_jobs",
        worker_id="w1",
        now=at(12),
        completions=[{"id": claimed[0]["id"], "attempt": 1, "result": {}}],
    )
    call(
        conn,
        "fail_jobs",
        worker_id="w1",
        now=at(12),
        retry_initial_seconds=0,
        retry_jitter=0,
        failures=[
            {
                "id": claimed[1]["id"],
                "attempt": 1,
                "error_code": "x",
                "error_message": "y",
                "recoverable": True,
            },
            {
                "id": claimed[2]["id"],
                "attempt": 1,
                "error_code": "x",
                "error_message": "y",
                "recoverable": False,
            },
        ],
    )
    call(conn, "cancel_job", job_id=claimed[3]["id"], now=at(13))  # requested, still running
    pending = conn.execute(
        "select id from public.processing_jobs where status = 'pending' and attempts = 0"
        " order by created_at limit 1"
    ).fetchone()
    assert pending is not None
    call(conn, "cancel_job", job_id=pending[0], now=at(14))  # cancelled at once


def test_queue_health_answers_as_the_full_scan_for_every_caller(database_url, sql, make_user):
    users = [make_user().user_id for _ in range(2)]
    admin = make_user(admin=True).user_id
    sql.execute(previous_definition("20261123230000", "queue_health", "queue_health_before"))
    callers = {
        "service": None,
        "admin": claims_for(admin, admin=True),
        "user": claims_for(users[0]),
        "other user": claims_for(users[1]),
        "user without jobs": claims_for(admin),  # no admin claim: sees no job of others
        "no subject": claims_for(None),
    }
    with psycopg.connect(database_url, autocommit=True) as conn:
        _deterministic_queue(conn, users)
        answers = {}
        for name, claims in callers.items():
            for now in (at(14), at(16), at(41), at(700), at(4000)):
                with as_caller(conn, claims):
                    answer = call(conn, "queue_health", **HEALTH, now=now)
                    assert answer == call(conn, "queue_health_before", **HEALTH, now=now), (
                        name,
                        now,
                    )
                answers[(name, now)] = answer
    # The comparison saw what it should: every status, a stalled job, a retry, per-user views.
    service = answers[("service", at(41))]
    assert set(service["counts"]) == {"pending", "processing", "completed", "failed", "cancelled"}
    assert service["stalled"] == 1 and service["retrying"] == 1
    assert service["health"] == "unhealthy"
    assert answers[("admin", at(41))] == service
    assert answers[("user", at(41))]["counts"] != service["counts"]
    assert answers[("user without jobs", at(41))]["counts"] == {}


def test_every_transition_that_finishes_a_job_counts_it(database_url, sql, make_user):
    """Each of the six paths to a finished status, one at a time, against a recount."""
    user = make_user().user_id

    def finished(conn: psycopg.Connection, step: Callable[[], Any]) -> list[Any]:
        before = sql.execute(COUNTERS).fetchall()
        step()
        after = sql.execute(COUNTERS).fetchall()
        assert after == sql.execute(RECOUNT).fetchall()
        assert after != before, "the step finished no job"
        return after

    with psycopg.connect(database_url, autocommit=True) as conn:
        for i in range(7):
            upload(conn, user, now=at(i), max_attempts=1)
        jobs = call(conn, "claim_jobs", worker_id="w1", max_jobs=6, lease_seconds=30, now=at(10))
        a, b, c, d = (job["id"] for job in jobs[:4])  # the last two stall
        for job in (c, d):
            call(conn, "cancel_job", job_id=job, now=at(11))  # requested while processing

        def done(job: str) -> list[dict[str, Any]]:
            return [{"id": job, "attempt": 1, "result": {}}]

        def failure(job: str) -> list[dict[str, Any]]:
            return [{"id": job, "attempt": 1, "error_code": "x", "error_message": "y"}]

        steps: list[Callable[[], Any]] = [
            lambda: call(conn, "complete_jobs", worker_id="w1", completions=done(a), now=at(12)),
            lambda: call(conn, "fail_jobs", worker_id="w1", failures=failure(b), now=at(12)),
            lambda: call(conn, "heartbeat_jobs", worker_id="w1", jobs=done(c), now=at(12)),
            lambda: call(conn, "release_jobs", worker_id="w1", jobs=done(d), now=at(12)),
            lambda: call(conn, "recover_stalled_jobs", now=at(100)),  # e and f, no attempts left
            lambda: call(
                conn,
                "cancel_job",
                job_id=scalar(
                    sql, "select id from public.processing_jobs where status = 'pending'"
                ),
                now=at(101),
            ),
        ]
        for step in steps:
            last = finished(conn, step)
        assert last == [
            ("cancelled", "normal", 3),
            ("completed", "normal", 1),
            ("failed", "normal", 3),
        ]


def test_the_counters_follow_truncate_and_folds(database_url, sql, make_user):
    user = make_user().user_id
    with psycopg.connect(database_url, autocommit=True) as conn:
        for i in range(6):
            upload(conn, user, now=at(i), priority=["low", "high"][i % 2])
        claimed = call(conn, "claim_jobs", worker_id="w1", max_jobs=4, now=at(10))
        assert scalar(sql, "select count(*) from public.job_status_counts") == 0  # none finished
        for job in claimed[:3]:  # the three high ones, one call each: three counter rows
            completion = {"id": job["id"], "attempt": 1, "result": {}}
            call(conn, "complete_jobs", worker_id="w1", completions=[completion], now=at(11))
        pending = scalar(
            sql,
            "select id from public.processing_jobs where status = 'pending'"
            " order by created_at limit 1",
        )
        call(conn, "cancel_job", job_id=pending, now=at(12))
        assert scalar(sql, "select count(*) from public.job_status_counts") == 4
        call(conn, "queue_health", now=at(20))  # the service's call folds
        groups = sql.execute(COUNTERS).fetchall()
        assert groups == [("cancelled", "low", 1), ("completed", "high", 3)]
        assert scalar(sql, "select count(*) from public.job_status_counts") == len(groups)
        assert groups == sql.execute(RECOUNT).fetchall()
        # A fold with nothing new keeps the same sums; a read-only call does not fold.
        with conn.transaction():
            conn.execute("set transaction read only")
            assert call(conn, "queue_health", now=at(20))["counts"] == {
                "pending": 1,
                "processing": 1,
                "completed": 3,
                "cancelled": 1,
            }
        sql.execute("truncate public.processing_jobs")
        assert scalar(sql, "select count(*) from public.job_status_counts") == 0
        assert call(conn, "queue_health", now=at(20))["counts"] == {}
