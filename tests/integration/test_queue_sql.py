"""The queue's SQL functions through the real client (`db.call`), as the service role.

Time-dependent functions take an explicit `now`, so every time here is fixed: no test sleeps or
asserts on wall-clock time.
"""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import psycopg
import pytest

from shared.platform.errors import Conflict, Forbidden, Unprocessable
from tests.support.factories import create_upload
from tests.support.queue import claim_jobs, fail_job
from tests.support.rows import job_events, job_row
from tests.support.times import T0, at

# --- claim ---------------------------------------------------------------------------------


def test_claim_order_is_priority_then_oldest_run_at(db, make_user):
    user = make_user()
    created = {
        "low_oldest": create_upload(db, user, priority="low", now=at(0)),
        "normal_late": create_upload(db, user, priority="normal", now=at(2)),
        "high_late": create_upload(db, user, priority="high", now=at(5)),
        "normal_early": create_upload(db, user, priority="normal", now=at(1)),
        "high_early": create_upload(db, user, priority="high", now=at(4)),
    }
    by_id = {v["job_id"]: k for k, v in created.items()}

    order = []
    for _ in created:
        (job,) = claim_jobs(db, now=at(10), max_jobs=1)
        order.append(by_id[job["id"]])
    assert order == ["high_early", "high_late", "normal_early", "normal_late", "low_oldest"]
    assert claim_jobs(db, now=at(10)) == []


def test_a_batch_claim_takes_the_best_jobs(db, make_user):
    user = make_user()
    low = create_upload(db, user, priority="low", now=at(0))
    normal = create_upload(db, user, priority="normal", now=at(1))
    high = create_upload(db, user, priority="high", now=at(2))
    batch = claim_jobs(db, now=at(10), max_jobs=2)
    assert [j["id"] for j in batch] == [high["job_id"], normal["job_id"]]
    assert [j["id"] for j in claim_jobs(db, now=at(10))] == [low["job_id"]]


def test_claim_respects_max_jobs_and_sets_the_lease(db, make_user, sql):
    user = make_user()
    jobs = [create_upload(db, user, now=at(i))["job_id"] for i in range(5)]

    batch = claim_jobs(db, "worker-a", now=at(100), max_jobs=2)
    assert [j["id"] for j in batch] == jobs[:2]
    assert [j["attempts"] for j in batch] == [1, 1]
    for job_id in jobs[:2]:
        row = job_row(sql, job_id)
        assert row["status"] == "processing"
        assert row["lease_owner"] == "worker-a"
        assert row["lease_expires_at"] == at(130)  # the 30 s default lease
        assert row["attempts"] == 1
        assert row["started_at"] == at(100)
    for job_id in jobs[2:]:
        row = job_row(sql, job_id)
        assert (row["status"], row["attempts"], row["lease_owner"]) == ("pending", 0, None)

    batch = claim_jobs(db, "worker-b", now=at(100), max_jobs=2, lease_seconds=90)
    assert [j["id"] for j in batch] == jobs[2:4]
    assert job_row(sql, jobs[2])["lease_expires_at"] == at(190)
    assert job_row(sql, jobs[2])["lease_owner"] == "worker-b"

    assert claim_jobs(db, now=at(100), max_jobs=0) == []
    assert job_row(sql, jobs[4])["status"] == "pending"
    with pytest.raises(Unprocessable) as caught:
        db.call("claim_jobs", worker_id="", max_jobs=1, now=at(100))
    assert caught.value.code == "invalid_worker"
    assert job_row(sql, jobs[4])["status"] == "pending"


def test_jobs_not_yet_due_are_not_claimed(db, make_user):
    user = make_user()
    later = create_upload(db, user, priority="high", now=at(60))
    due = create_upload(db, user, priority="low", now=at(0))
    assert [j["id"] for j in claim_jobs(db, now=at(30))] == [due["job_id"]]
    assert claim_jobs(db, now=at(59)) == []
    assert [j["id"] for j in claim_jobs(db, now=at(60))] == [later["job_id"]]


def test_concurrent_claimers_never_share_a_job(db, make_user, sql):
    user = make_user()
    created = {create_upload(db, user, now=at(i % 7))["job_id"] for i in range(50)}
    workers = [f"worker-{n}" for n in range(4)]
    start = threading.Barrier(len(workers))

    def run(worker: str) -> list[str]:
        start.wait(timeout=10)
        got: list[str] = []
        while True:
            batch = db.call("claim_jobs", worker_id=worker, max_jobs=5, now=at(100))
            if not batch:
                return got
            got.extend(j["id"] for j in batch)

    with ThreadPoolExecutor(len(workers)) as pool:
        results = dict(zip(workers, pool.map(run, workers), strict=True))

    claimed = [job_id for got in results.values() for job_id in got]
    assert len(claimed) == len(set(claimed)), "a job was claimed twice"
    assert set(claimed) == created
    owners = dict(
        sql.execute("select id::text, lease_owner from public.processing_jobs").fetchall()
    )
    for worker, got in results.items():
        assert all(owners[job_id] == worker for job_id in got)
    assert (
        sql.execute("select count(*) from public.processing_jobs where attempts <> 1").fetchone()[0]
        == 0
    )


def test_claim_skips_rows_locked_by_another_transaction(db, make_user, database_url):
    user = make_user()
    jobs = [create_upload(db, user, now=at(i))["job_id"] for i in range(4)]
    with psycopg.connect(database_url) as holder, psycopg.connect(database_url) as claimer:
        holder.execute(
            "select id from public.processing_jobs where id = any(%s::uuid[]) for update",
            (jobs[:2],),
        )
        # A claimer that waited on the lock would hit this timeout instead of answering.
        claimer.execute("set statement_timeout = '5s'")
        claimer.execute("set role service_role")
        got = claimer.execute(
            "select public.claim_jobs(worker_id => 'w', max_jobs => 10, now => %s)", (at(100),)
        ).fetchone()[0]
        claimer.commit()
        holder.rollback()
    assert [j["id"] for j in got] == jobs[2:]


# --- fencing -------------------------------------------------------------------------------


def _snapshot(sql: psycopg.Connection, job_id: str) -> tuple:
    return sql.execute(
        "select to_jsonb(j), (select count(*) from public.document_processing_events)"
        "  from public.processing_jobs j where j.id = %s",
        (job_id,),
    ).fetchone()


def test_only_the_lease_holder_of_the_attempt_may_complete_or_fail(db, make_user, sql):
    user = make_user()
    job_id = create_upload(db, user, now=T0)["job_id"]
    claim_jobs(db, "w1", now=at(10))
    before = _snapshot(sql, job_id)

    wrong = [
        ("complete_job", {"worker_id": "w2", "attempt": 1}),
        ("complete_job", {"worker_id": "w1", "attempt": 2}),
        ("complete_job", {"worker_id": "w1", "attempt": 0}),
        ("fail_job", {"worker_id": "w2", "attempt": 1, "error_code": "x", "error_message": "x"}),
        ("fail_job", {"worker_id": "w1", "attempt": 2, "error_code": "x", "error_message": "x"}),
        (
            "fail_job",
            {
                "worker_id": "w2",
                "attempt": 1,
                "error_code": "x",
                "error_message": "x",
                "recoverable": False,
            },
        ),
    ]
    for fn, params in wrong:
        with pytest.raises(Conflict) as caught:
            db.call(fn, job_id=job_id, now=at(11), **params)
        assert caught.value.code == "lease_lost", (fn, params)
        assert _snapshot(sql, job_id) == before, (fn, params)

    db.call("complete_job", job_id=job_id, worker_id="w1", attempt=1, now=at(12))
    assert job_row(sql, job_id)["status"] == "completed"
    with pytest.raises(Conflict) as caught:
        db.call("complete_job", job_id=str(uuid.uuid4()), worker_id="w1", attempt=1)
    assert caught.value.code == "lease_lost"


def test_a_worker_that_lost_its_lease_cannot_overwrite_the_next_attempt(db, make_user, sql):
    user = make_user()
    job_id = create_upload(db, user, now=T0)["job_id"]
    claim_jobs(db, "w1", now=at(10))
    fail_job(db, job_id, "w1", 1, now=at(11))
    (again,) = claim_jobs(db, "w2", now=at(20))
    assert again["attempts"] == 2
    before = _snapshot(sql, job_id)

    for worker, attempt in (("w1", 1), ("w2", 1), ("w1", 2)):
        with pytest.raises(Conflict) as caught:
            db.call("complete_job", job_id=job_id, worker_id=worker, attempt=attempt, now=at(21))
        assert caught.value.code == "lease_lost"
        with pytest.raises(Conflict) as caught:
            fail_job(db, job_id, worker, attempt, now=at(21), recoverable=False)
        assert caught.value.code == "lease_lost"
    assert _snapshot(sql, job_id) == before

    db.call("complete_job", job_id=job_id, worker_id="w2", attempt=2, now=at(22))
    with pytest.raises(Conflict) as caught:  # a finished job has no lease holder at all
        db.call("complete_job", job_id=job_id, worker_id="w2", attempt=2, now=at(23))
    assert caught.value.code == "lease_lost"


# --- failure and backoff ------------------------------------------------------------------

RETRY = {
    "retry_initial_seconds": 1.0,
    "retry_multiplier": 2.0,
    "retry_max_seconds": 60.0,
    "retry_jitter": 0.1,
}


def _delay(sql, job_id: str, since: datetime) -> float:
    return (job_row(sql, job_id)["run_at"] - since).total_seconds()


def test_recoverable_failures_back_off_exponentially_then_fail(db, make_user, sql):
    user = make_user()
    job_id = create_upload(db, user, max_attempts=4, now=T0)["job_id"]
    expected = {1: 1.0, 2: 2.0, 3: 4.0}
    clock = 0.0
    for attempt, base in expected.items():
        clock += 100
        (job,) = claim_jobs(db, "w1", now=at(clock))
        assert job["attempts"] == attempt
        out = fail_job(
            db,
            job_id,
            "w1",
            attempt,
            now=at(clock + 1),
            error_code=f"e{attempt}",
            error_message=f"attempt {attempt} broke",
            **RETRY,
        )
        assert out["status"] == "pending"
        delay = _delay(sql, job_id, at(clock + 1))
        assert base * 0.9 - 1e-6 <= delay <= base * 1.1 + 1e-6, (attempt, delay)
        row = job_row(sql, job_id)
        assert row["status"] == "pending"
        assert (row["lease_owner"], row["lease_expires_at"]) == (None, None)
        assert row["error_code"] == f"e{attempt}"
        assert row["error_message"] == f"attempt {attempt} broke"
        assert row["error_recoverable"] is True
        assert row["attempts"] == attempt
        assert row["completed_at"] is None

    # The last attempt fails for good even though the error is recoverable.
    (job,) = claim_jobs(db, "w1", now=at(500))
    assert job["attempts"] == 4
    out = fail_job(
        db, job_id, "w1", 4, now=at(501.5), error_code="e4", error_message="still broke", **RETRY
    )
    assert out["status"] == "failed"
    row = job_row(sql, job_id)
    assert row["status"] == "failed"
    assert (row["error_code"], row["error_message"], row["error_recoverable"]) == (
        "e4",
        "still broke",
        True,
    )
    assert row["completed_at"] == at(501.5)
    assert row["duration_ms"] == 1500
    assert (row["lease_owner"], row["lease_expires_at"]) == (None, None)
    assert claim_jobs(db, now=at(10_000)) == []


def test_backoff_is_capped(db, make_user, sql):
    user = make_user()
    job_id = create_upload(db, user, max_attempts=5, now=T0)["job_id"]
    params = {
        "retry_initial_seconds": 10.0,
        "retry_multiplier": 10.0,
        "retry_max_seconds": 15.0,
        "retry_jitter": 0.0,
    }
    claim_jobs(db, now=at(0))
    fail_job(db, job_id, "w1", 1, now=at(1), **params)
    assert _delay(sql, job_id, at(1)) == 10.0
    claim_jobs(db, now=at(100))
    fail_job(db, job_id, "w1", 2, now=at(101), **params)
    assert _delay(sql, job_id, at(101)) == 15.0  # not 100
    claim_jobs(db, now=at(200))
    fail_job(db, job_id, "w1", 3, now=at(201), **params)
    assert _delay(sql, job_id, at(201)) == 15.0


def test_backoff_is_jittered_within_bounds(db, make_user, sql):
    user = make_user()
    jobs = [create_upload(db, user, now=T0)["job_id"] for _ in range(12)]
    claim_jobs(db, now=at(10), max_jobs=20)
    params = {**RETRY, "retry_initial_seconds": 8.0, "retry_jitter": 0.5}
    delays = []
    for job_id in jobs:
        fail_job(db, job_id, "w1", 1, now=at(20), **params)
        delays.append(_delay(sql, job_id, at(20)))
    assert all(4.0 - 1e-6 <= d <= 12.0 + 1e-6 for d in delays), delays
    assert len(set(delays)) > 1, "no jitter applied"


def test_non_recoverable_failure_fails_at_once(db, make_user, sql):
    user = make_user()
    job_id = create_upload(db, user, max_attempts=4, now=T0)["job_id"]
    claim_jobs(db, now=at(10))
    out = fail_job(
        db,
        job_id,
        "w1",
        1,
        now=at(12),
        recoverable=False,
        error_code="malformed_file",
        error_message="not a PDF",
        **RETRY,
    )
    assert out["status"] == "failed"
    row = job_row(sql, job_id)
    assert row["status"] == "failed"
    assert row["attempts"] == 1
    assert (row["error_code"], row["error_message"], row["error_recoverable"]) == (
        "malformed_file",
        "not a PDF",
        False,
    )
    assert row["duration_ms"] == 2000
    assert claim_jobs(db, now=at(10_000)) == []


# --- lifecycle events ---------------------------------------------------------------------


def test_every_transition_records_its_event(db, make_user, sql):
    user = make_user()
    ok = create_upload(db, user, now=at(0))
    bad = create_upload(db, user, now=at(1))
    claim_jobs(db, "w1", now=at(10))
    fail_job(db, ok["job_id"], "w1", 1, now=at(11), error_message="flaky", **RETRY)
    fail_job(
        db,
        bad["job_id"],
        "w1",
        1,
        now=at(13),
        recoverable=False,
        error_code="malformed_file",
        error_message="not a PDF",
    )
    claim_jobs(db, "w2", now=at(20))
    db.call("complete_job", job_id=ok["job_id"], worker_id="w2", attempt=2, now=at(22.5))

    def shape(rows):
        return [
            (e["event_type"], e["duration_ms"], e["error_message"], e["created_at"]) for e in rows
        ]

    ok_events = job_events(sql, ok["job_id"])
    assert shape(ok_events) == [
        ("upload_started", None, None, at(0)),
        ("processing_started", None, None, at(10)),
        ("retry_scheduled", None, "flaky", at(11)),
        ("processing_started", None, None, at(20)),
        ("completed", 2500, None, at(22.5)),
    ]
    assert shape(job_events(sql, bad["job_id"])) == [
        ("upload_started", None, None, at(1)),
        ("processing_started", None, None, at(10)),
        ("failed", 3000, "not a PDF", at(13)),
    ]
    for event in ok_events:
        assert str(event["document_id"]) == ok["document_id"]
        assert str(event["user_id"]) == user.user_id
    assert [e["details"].get("attempt") for e in ok_events[1:]] == [1, 1, 2, 2]
    assert len(job_events(sql)) == 8


@pytest.mark.parametrize("breakage", ["revoke_insert", "check_false"])
def test_a_failing_event_insert_never_fails_the_transition(db, make_user, sql, breakage):
    if breakage == "revoke_insert":
        sql.execute("revoke insert on public.document_processing_events from service_role")
        broken_error: type[Exception] = Forbidden
    else:
        sql.execute(
            "alter table public.document_processing_events"
            " add constraint no_more_events check (false) not valid"
        )
        broken_error = Unprocessable
    # The events table really is unwritable for the service role now.
    with pytest.raises(broken_error):
        db.call("record_events", events=[{"event_type": "completed"}])

    user = make_user()
    first = create_upload(db, user, now=at(0))
    second = create_upload(db, user, now=at(1))
    assert [j["id"] for j in claim_jobs(db, "w1", now=at(10))] == [
        first["job_id"],
        second["job_id"],
    ]
    assert (
        db.call("complete_job", job_id=first["job_id"], worker_id="w1", attempt=1, now=at(12))[
            "status"
        ]
        == "completed"
    )
    assert fail_job(db, second["job_id"], "w1", 1, now=at(12), **RETRY)["status"] == "pending"
    claim_jobs(db, "w1", now=at(20))
    assert fail_job(db, second["job_id"], "w1", 2, now=at(21), recoverable=False)["status"] == (
        "failed"
    )

    assert job_row(sql, first["job_id"])["status"] == "completed"
    assert job_row(sql, second["job_id"])["status"] == "failed"
    assert job_events(sql) == []


# --- intake ------------------------------------------------------------------------------


def test_idempotency_key_replays_the_same_upload(db, make_user, sql):
    user, other = make_user(), make_user()
    data = b"the same bytes"
    first = create_upload(db, user, data=data, idempotency_key="key-1", now=T0)
    assert first["replayed"] is False
    again = create_upload(db, user, data=data, idempotency_key="key-1", now=T0)
    assert again["replayed"] is True
    assert (again["document_id"], again["job_id"]) == (first["document_id"], first["job_id"])
    assert sql.execute("select count(*) from public.documents").fetchone()[0] == 1

    with pytest.raises(Conflict) as caught:
        create_upload(db, user, data=b"different bytes", idempotency_key="key-1", now=T0)
    assert caught.value.code == "idempotency_key_reused"
    assert sql.execute("select count(*) from public.documents").fetchone()[0] == 1

    # Keys are per user.
    theirs = create_upload(db, other, data=data, idempotency_key="key-1", now=T0)
    assert theirs["replayed"] is False
    assert theirs["job_id"] != first["job_id"]


def test_one_active_job_per_document(db, make_user, sql):
    user = make_user()
    up = create_upload(db, user, now=T0)
    insert = (
        "insert into public.processing_jobs (document_id, user_id, source)"
        " values (%s, %s, 'retry') returning id"
    )
    with pytest.raises(psycopg.errors.UniqueViolation):
        sql.execute(insert, (up["document_id"], user.user_id))
    claim_jobs(db, now=at(10))  # processing is active too
    with pytest.raises(psycopg.errors.UniqueViolation):
        sql.execute(insert, (up["document_id"], user.user_id))

    db.call("complete_job", job_id=up["job_id"], worker_id="w1", attempt=1, now=at(11))
    new_id = sql.execute(insert, (up["document_id"], user.user_id)).fetchone()[0]
    assert job_row(sql, str(new_id))["status"] == "pending"


def test_record_events_inserts_and_returns_the_count(db, make_user, sql):
    user = make_user()
    doc, job = str(uuid.uuid4()), str(uuid.uuid4())
    batch = [
        {
            "event_type": "cancelled",
            "document_id": doc,
            "job_id": job,
            "user_id": user.user_id,
            "created_at": at(5).isoformat(),
        },
        {
            "event_type": "failed",
            "document_id": doc,
            "job_id": job,
            "user_id": user.user_id,
            "duration_ms": 42,
            "error_message": "boom",
            "stage": "parsing",
            "details": {"why": "test"},
        },
        {"event_type": "stalled_recovered", "job_id": job},
    ]
    assert db.call("record_events", events=batch) == 3
    rows = job_events(sql)
    assert [(e["event_type"], e["duration_ms"], e["error_message"], e["stage"]) for e in rows] == [
        ("cancelled", None, None, None),
        ("failed", 42, "boom", "parsing"),
        ("stalled_recovered", None, None, None),
    ]
    assert rows[0]["created_at"] == at(5)
    assert rows[1]["details"] == {"why": "test"}
    assert str(rows[0]["document_id"]) == doc
    assert str(rows[2]["job_id"]) == job

    assert db.call("record_events", events=[]) == 0
    with pytest.raises(Unprocessable):
        db.call("record_events", events=[{"event_type": "completed"}, {"event_type": "not_a_type"}])
    assert len(job_events(sql)) == 3
