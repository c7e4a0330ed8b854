"""Every transition of the queue engine's SQL API (heartbeat, batch complete/fail, cancel, retry,
reanalyze, stalled recovery, release, bulk enqueue, rate limits, list, privileges, NOTIFY), legal
and illegal, through the real client (`db.call`) as the service role.

Time-dependent functions take an explicit `now`, so every time here is fixed: no test sleeps or
asserts on wall-clock time. `sql` (superuser) reads rows and events independently.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import psycopg
import pytest

from shared.jobs import queue
from shared.platform.errors import (
    Conflict,
    Forbidden,
    NotFound,
    RateLimited,
    Unauthorized,
    Unprocessable,
)
from tests.support.factories import create_upload
from tests.support.queue import (
    claim_jobs,
    complete_jobs,
    fail_jobs,
    heartbeat_jobs,
    item,
    recover_stalled_jobs,
)
from tests.support.rows import job_events, job_row
from tests.support.times import T0, at
from tests.support.tokens import b64url


def snapshot(sql: psycopg.Connection, job_id: str) -> Any:
    """The whole row as JSON: equal snapshots mean nothing at all changed."""
    return sql.execute(
        "select to_jsonb(j) from public.processing_jobs j where j.id = %s", (job_id,)
    ).fetchone()[0]


def counts(sql: psycopg.Connection) -> tuple[int, int, int]:
    """(documents, jobs, events)."""
    return sql.execute(
        "select (select count(*) from public.documents),"
        "       (select count(*) from public.processing_jobs),"
        "       (select count(*) from public.document_processing_events)"
    ).fetchone()


def claim_ids(db, worker: str = "w1", **kwargs) -> list[str]:
    return [j["id"] for j in claim_jobs(db, worker, **kwargs)]


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


# --- heartbeat ------------------------------------------------------------------------------


def test_heartbeat_extends_the_lease_and_records_stage_and_progress(db, make_user, sql):
    user = make_user()
    a, b, c = (create_upload(db, user, now=at(i))["job_id"] for i in range(3))
    assert claim_ids(db, "w1", now=at(10), max_jobs=2) == [a, b]
    assert claim_ids(db, "w2", now=at(10)) == [c]
    theirs = snapshot(sql, c)
    n_events = len(job_events(sql))

    out = heartbeat_jobs(
        db,
        "w1",
        [
            item(a, stage="parsing", progress=40),
            item(b, stage="reading", progress=150),
            item(c, stage="parsing", progress=10),  # w2's job
            item(str(uuid.uuid4())),  # no such job
        ],
        now=at(20),
        lease_seconds=45,
    )
    assert set(out["extended"]) == {a, b}
    assert out["cancelled"] == []
    assert len(out["lost"]) == 2 and c in out["lost"]

    row = job_row(sql, a)
    assert (row["status"], row["lease_owner"], row["attempts"]) == ("processing", "w1", 1)
    assert row["lease_expires_at"] == at(65)
    assert (row["stage"], row["progress"]) == ("parsing", 40)
    assert row["updated_at"] == at(20)
    assert (job_row(sql, b)["stage"], job_row(sql, b)["progress"]) == ("reading", 100)
    assert snapshot(sql, c) == theirs

    # Without a stage the last one stays; progress is clamped below too; default 30 s lease.
    out = heartbeat_jobs(db, "w1", [item(a, progress=-5)], now=at(30))
    assert out == {"extended": [a], "cancelled": [], "lost": []}
    row = job_row(sql, a)
    assert (row["stage"], row["progress"], row["lease_expires_at"]) == ("parsing", 0, at(60))

    # The right worker at a wrong attempt is not the holder.
    before = snapshot(sql, a)
    for attempt in (0, 2):
        out = heartbeat_jobs(db, "w1", [item(a, attempt, progress=99)], now=at(31))
        assert out == {"extended": [], "cancelled": [], "lost": [a]}
    assert snapshot(sql, a) == before
    # Heartbeats are not transitions: no lifecycle events.
    assert len(job_events(sql)) == n_events


def test_old_worker_is_lost_after_recovery_and_reclaim(db, make_user, sql):
    user = make_user()
    x = create_upload(db, user, now=at(0))["job_id"]
    done = create_upload(db, user, now=at(1))["job_id"]
    assert claim_ids(db, "w1", now=at(10)) == [x, done]  # leases until at(40)
    assert complete_jobs(db, "w1", [item(done)], now=at(15))["completed"] == [done]
    assert recover_stalled_jobs(db, now=at(41)) == {"recovered": 1, "failed": 0, "cancelled": 0}
    (again,) = claim_jobs(db, "w2", now=at(42))
    assert (again["id"], again["attempts"]) == (x, 2)
    before = snapshot(sql, x)
    finished = snapshot(sql, done)

    out = heartbeat_jobs(db, "w1", [item(x, 1), item(done, 1)], now=at(43))
    assert out["extended"] == [] and out["cancelled"] == []
    assert set(out["lost"]) == {x, done}
    # Even the current holder is lost at the stale attempt.
    assert heartbeat_jobs(db, "w2", [item(x, 1)], now=at(43))["lost"] == [x]
    out = complete_jobs(db, "w1", [item(x, 1, result={"stale": True})], now=at(44))
    assert out == {"completed": [], "cancelled": [], "lost": [x]}
    out = fail_jobs(db, "w1", [item(x, 1, error_code="e", error_message="m")], now=at(44))
    assert out == {"jobs": {}, "lost": [x]}
    with pytest.raises(Conflict) as caught:
        db.call("complete_job", job_id=x, worker_id="w1", attempt=1, now=at(44))
    assert caught.value.code == "lease_lost"
    assert snapshot(sql, x) == before
    assert snapshot(sql, done) == finished

    assert heartbeat_jobs(db, "w2", [item(x, 2)], now=at(45))["extended"] == [x]
    assert complete_jobs(db, "w2", [item(x, 2, result={"ok": 1})], now=at(46))["completed"] == [x]
    row = job_row(sql, x)
    assert (row["status"], row["result"]) == ("completed", {"ok": 1})


def test_heartbeat_cancels_a_job_whose_cancellation_was_requested(db, make_user, sql):
    user = make_user()
    a = create_upload(db, user, now=at(0))["job_id"]
    b = create_upload(db, user, now=at(1))["job_id"]
    claim_jobs(db, "w1", now=at(10))
    heartbeat_jobs(db, "w1", [item(a, stage="parsing", progress=30)], now=at(12))
    assert db.call("cancel_job", job_id=a, now=at(15)) == {
        "id": a,
        "status": "processing",
        "cancel_requested": True,
    }

    out = heartbeat_jobs(db, "w1", [item(a, progress=50), item(b, progress=5)], now=at(20))
    assert out == {"extended": [b], "cancelled": [a], "lost": []}
    row = job_row(sql, a)
    assert row["status"] == "cancelled"
    assert (row["lease_owner"], row["lease_expires_at"]) == (None, None)
    assert row["completed_at"] == at(20)
    assert row["duration_ms"] == 10_000
    assert row["cancel_requested_at"] == at(15)
    last = job_events(sql, a)[-1]
    assert (last["event_type"], last["created_at"], last["duration_ms"]) == (
        "cancelled",
        at(20),
        10_000,
    )
    assert last["stage"] == "parsing"
    assert job_row(sql, b)["lease_expires_at"] == at(50)

    # From now on the job is gone for its worker.
    assert heartbeat_jobs(db, "w1", [item(a)], now=at(21))["lost"] == [a]
    assert complete_jobs(db, "w1", [item(a, result={"x": 1})], now=at(22))["lost"] == [a]
    assert job_row(sql, a)["result"] is None
    assert [e["event_type"] for e in job_events(sql, a)].count("cancelled") == 1


# --- complete -------------------------------------------------------------------------------


def test_complete_jobs_batch_is_fenced_per_job(db, make_user, sql):
    user = make_user()
    j1, j2, j3, j4 = (create_upload(db, user, now=at(i))["job_id"] for i in range(4))
    assert claim_ids(db, "w1", now=at(10), max_jobs=3) == [j1, j2, j3]
    assert claim_ids(db, "w2", now=at(10)) == [j4]
    # j3 moves on to attempt 2: attempt 1 is stale.
    fail_jobs(db, "w1", [item(j3, error_code="e", error_message="m")], now=at(11), retry_jitter=0)
    assert claim_ids(db, "w1", now=at(20)) == [j3]
    stale, theirs = snapshot(sql, j3), snapshot(sql, j4)
    unknown = str(uuid.uuid4())

    out = complete_jobs(
        db,
        "w1",
        [
            item(j1, result={"pages": 1}),
            item(j2, result={"pages": 2}),
            item(j3, 1, result={"stale": True}),
            item(j4, result={"theirs": True}),
            item(unknown),
        ],
        now=at(30),
    )
    assert set(out["completed"]) == {j1, j2}
    assert out["cancelled"] == []
    assert set(out["lost"]) == {j3, j4, unknown}

    for job_id, pages in ((j1, 1), (j2, 2)):
        row = job_row(sql, job_id)
        assert row["status"] == "completed"
        assert row["result"] == {"pages": pages}
        assert (row["stage"], row["progress"]) == ("finalizing", 100)
        assert (row["lease_owner"], row["lease_expires_at"]) == (None, None)
        assert row["completed_at"] == at(30)
        assert row["duration_ms"] == 20_000
        last = job_events(sql, job_id)[-1]
        assert (last["event_type"], last["duration_ms"], last["created_at"]) == (
            "completed",
            20_000,
            at(30),
        )
        assert last["details"] == {"attempt": 1}
    assert snapshot(sql, j3) == stale
    assert snapshot(sql, j4) == theirs

    # Completing a completed job again: lost, the stored result stays.
    assert complete_jobs(db, "w1", [item(j1, result={"again": 1})], now=at(31))["lost"] == [j1]
    with pytest.raises(Conflict) as caught:
        db.call("complete_job", job_id=j1, worker_id="w1", attempt=1, now=at(31))
    assert caught.value.code == "lease_lost"
    assert job_row(sql, j1)["result"] == {"pages": 1}
    assert [e["event_type"] for e in job_events(sql, j1)].count("completed") == 1


def test_completing_a_cancel_requested_job_ends_it_cancelled(db, make_user, sql):
    user = make_user()
    a, b, c = (create_upload(db, user, now=at(i))["job_id"] for i in range(3))
    claim_jobs(db, "w1", now=at(10))
    db.call("cancel_job", job_id=a, now=at(12))
    db.call("cancel_job", job_id=c, now=at(12))

    out = complete_jobs(
        db, "w1", [item(a, result={"discard": True}), item(b, result={"keep": True})], now=at(18)
    )
    assert out == {"completed": [b], "cancelled": [a], "lost": []}
    row = job_row(sql, a)
    assert row["status"] == "cancelled"
    assert row["result"] is None
    assert (row["lease_owner"], row["lease_expires_at"]) == (None, None)
    assert (row["completed_at"], row["duration_ms"]) == (at(18), 8000)
    kinds = [e["event_type"] for e in job_events(sql, a)]
    assert kinds[-1] == "cancelled" and "completed" not in kinds
    assert job_row(sql, b)["result"] == {"keep": True}

    # The single form answers the outcome (cancelled) instead of pretending it completed.
    answer = db.call("complete_job", job_id=c, worker_id="w1", attempt=1, now=at(19))
    assert answer["status"] == "cancelled"
    assert job_row(sql, c)["result"] is None

    # A cancelled job cannot be completed afterwards: refused, result not stored.
    assert complete_jobs(db, "w1", [item(a, result={"late": True})], now=at(20))["lost"] == [a]
    with pytest.raises(Conflict) as caught:
        db.call("complete_job", job_id=a, worker_id="w1", attempt=1, result={"late": 1})
    assert caught.value.code == "lease_lost"
    assert job_row(sql, a)["status"] == "cancelled"
    assert job_row(sql, a)["result"] is None


# --- fail -----------------------------------------------------------------------------------


def test_fail_jobs_batch_outcomes_and_events(db, make_user, sql):
    user = make_user()
    retry = create_upload(db, user, now=at(0))["job_id"]
    last = create_upload(db, user, now=at(1), max_attempts=1)["job_id"]
    fatal = create_upload(db, user, now=at(2))["job_id"]
    cancel = create_upload(db, user, now=at(3))["job_id"]
    wrong_attempt = create_upload(db, user, now=at(4))["job_id"]
    theirs = create_upload(db, user, now=at(5))["job_id"]
    assert len(claim_jobs(db, "w1", now=at(10), max_jobs=5)) == 5
    assert claim_ids(db, "w2", now=at(10)) == [theirs]
    heartbeat_jobs(db, "w1", [item(fatal, stage="extracting")], now=at(11))
    db.call("cancel_job", job_id=cancel, now=at(12))
    untouched = {j: snapshot(sql, j) for j in (wrong_attempt, theirs)}
    unknown = str(uuid.uuid4())

    def failure(job_id, attempt=1, recoverable=True):
        return item(
            job_id,
            attempt,
            error_code=f"code-{job_id[:4]}",
            error_message=f"broke {job_id}",
            recoverable=recoverable,
        )

    params = {
        "retry_initial_seconds": 8.0,
        "retry_multiplier": 2.0,
        "retry_max_seconds": 60.0,
        "retry_jitter": 0.25,
    }
    out = fail_jobs(
        db,
        "w1",
        [
            failure(retry),
            failure(last),
            failure(fatal, recoverable=False),
            failure(cancel),
            failure(wrong_attempt, 2),
            failure(theirs),
            failure(unknown),
        ],
        now=at(20),
        **params,
    )
    assert {k: v["status"] for k, v in out["jobs"].items()} == {
        retry: "pending",
        last: "failed",
        fatal: "failed",
        cancel: "cancelled",
    }
    assert set(out["lost"]) == {wrong_attempt, theirs, unknown}
    assert all(out["jobs"][j]["run_at"] is None for j in (last, fatal, cancel))

    row = job_row(sql, retry)
    assert row["status"] == "pending"
    assert ts(out["jobs"][retry]["run_at"]) == row["run_at"]
    delay = (row["run_at"] - at(20)).total_seconds()
    assert 8 * 0.75 - 1e-6 <= delay <= 8 * 1.25 + 1e-6, delay
    assert (row["lease_owner"], row["lease_expires_at"], row["completed_at"]) == (None,) * 3
    assert (row["error_code"], row["error_message"], row["error_recoverable"]) == (
        f"code-{retry[:4]}",
        f"broke {retry}",
        True,
    )
    assert row["attempts"] == 1
    event = job_events(sql, retry)[-1]
    assert (event["event_type"], event["duration_ms"], event["error_message"]) == (
        "retry_scheduled",
        None,
        f"broke {retry}",
    )
    assert event["details"]["attempt"] == 1
    assert event["details"]["error_code"] == f"code-{retry[:4]}"
    assert abs(event["details"]["delay_ms"] - delay * 1000) <= 1

    for job_id, recoverable in ((last, True), (fatal, False)):
        row = job_row(sql, job_id)
        assert row["status"] == "failed"
        assert row["error_recoverable"] is recoverable
        assert (row["completed_at"], row["duration_ms"]) == (at(20), 10_000)
        assert (row["lease_owner"], row["lease_expires_at"]) == (None, None)
        event = job_events(sql, job_id)[-1]
        assert (event["event_type"], event["duration_ms"], event["error_message"]) == (
            "failed",
            10_000,
            f"broke {job_id}",
        )
        assert event["details"]["recoverable"] is recoverable
        assert event["details"]["error_code"] == f"code-{job_id[:4]}"
    assert job_events(sql, fatal)[-1]["stage"] == "extracting"

    row = job_row(sql, cancel)
    assert (row["status"], row["completed_at"]) == ("cancelled", at(20))
    assert (row["lease_owner"], row["lease_expires_at"]) == (None, None)
    assert job_events(sql, cancel)[-1]["event_type"] == "cancelled"

    for job_id, before in untouched.items():
        assert snapshot(sql, job_id) == before
    # Failed/cancelled jobs are never claimed again; the retry is, once due.
    assert claim_ids(db, "w3", now=at(10_000)) == [retry]


def test_backoff_cap_applies_after_jitter(db, make_user, sql):
    user = make_user()
    first = [create_upload(db, user, max_attempts=20, now=T0)["job_id"] for _ in range(30)]
    high = [create_upload(db, user, max_attempts=20, now=T0)["job_id"] for _ in range(30)]
    # Fast-forward the second group to its 12th attempt (11 already spent).
    sql.execute("update public.processing_jobs set attempts = 11 where id = any(%s)", (high,))
    assert len(claim_jobs(db, "w1", now=at(10), max_jobs=100)) == 60
    assert {job_row(sql, j)["attempts"] for j in high} == {12}

    params = {
        "retry_initial_seconds": 50.0,
        "retry_multiplier": 2.0,
        "retry_max_seconds": 60.0,
        "retry_jitter": 0.5,
    }
    failures = [item(j, 1, error_code="e", error_message="m") for j in first]
    failures += [item(j, 12, error_code="e", error_message="m") for j in high]
    out = fail_jobs(db, "w1", failures, now=at(20), **params)
    assert out["lost"] == [] and len(out["jobs"]) == 60

    def delay(job_id: str) -> float:
        return (job_row(sql, job_id)["run_at"] - at(20)).total_seconds()

    # Attempt 12: 50 * 2^11 s, jittered by +-50 %, capped at 60: always exactly the cap.
    assert {delay(j) for j in high} == {60.0}
    assert {e["details"]["delay_ms"] for j in high for e in job_events(sql, j)[-1:]} == {60_000}
    # Attempt 1: 50 s +- 50 % = [25, 75], capped: [25, 60], the cap reached by some but not all.
    first_delays = [delay(j) for j in first]
    assert all(25.0 - 1e-6 <= d <= 60.0 for d in first_delays), first_delays
    assert max(first_delays) == 60.0
    assert min(first_delays) < 60.0


# --- cancel ---------------------------------------------------------------------------------


def test_cancel_a_pending_job_cancels_it_at_once(db, make_user, sql):
    user = make_user()
    a = create_upload(db, user, now=at(0))["job_id"]
    b = create_upload(db, user, now=at(1))["job_id"]
    retrying = create_upload(db, user, now=at(2))["job_id"]
    assert claim_ids(db, "w1", now=at(3), max_jobs=1) == [a]
    db.call("complete_job", job_id=a, worker_id="w1", attempt=1, now=at(4))
    assert claim_ids(db, "w1", now=at(5), max_jobs=1) == [b]
    fail_jobs(db, "w1", [item(b, error_code="e", error_message="m")], now=at(6), retry_jitter=0)
    # b is pending again (a scheduled retry), retrying is pending from the upload.

    for job_id in (b, retrying):
        answer = db.call("cancel_job", job_id=job_id, now=at(7))
        assert answer == {"id": job_id, "status": "cancelled", "cancel_requested": True}
        row = job_row(sql, job_id)
        assert row["status"] == "cancelled"
        assert (row["cancel_requested_at"], row["completed_at"]) == (at(7), at(7))
        assert (row["lease_owner"], row["lease_expires_at"]) == (None, None)
        last = job_events(sql, job_id)[-1]
        assert (last["event_type"], last["created_at"]) == ("cancelled", at(7))
    assert job_row(sql, b)["attempts"] == 1
    assert claim_jobs(db, "w1", now=at(10_000)) == []


def test_cancel_a_processing_job_only_requests_it(db, make_user, sql):
    user = make_user()
    a = create_upload(db, user, now=at(0))["job_id"]
    claim_jobs(db, "w1", now=at(10))
    n_events = len(job_events(sql))
    expected = {"id": a, "status": "processing", "cancel_requested": True}
    assert db.call("cancel_job", job_id=a, now=at(15)) == expected
    row = job_row(sql, a)
    assert row["status"] == "processing"
    assert (row["lease_owner"], row["lease_expires_at"]) == ("w1", at(40))
    assert row["cancel_requested_at"] == at(15)
    assert row["completed_at"] is None
    # Asking again keeps the first request's time; still no event until the worker stops.
    assert db.call("cancel_job", job_id=a, now=at(16)) == expected
    assert job_row(sql, a)["cancel_requested_at"] == at(15)
    assert len(job_events(sql)) == n_events


def test_finished_or_unknown_jobs_cannot_be_cancelled(db, make_user, sql):
    user = make_user()
    done, failed, cancelled = (create_upload(db, user, now=at(i))["job_id"] for i in range(3))
    db.call("cancel_job", job_id=cancelled, now=at(5))
    claim_jobs(db, "w1", now=at(10))
    complete_jobs(db, "w1", [item(done)], now=at(11))
    fail_jobs(
        db, "w1", [item(failed, error_code="e", error_message="m", recoverable=False)], now=at(11)
    )
    before = {j: snapshot(sql, j) for j in (done, failed, cancelled)}
    n_events = len(job_events(sql))

    for job_id in before:
        with pytest.raises(Conflict) as caught:
            db.call("cancel_job", job_id=job_id, now=at(20))
        assert caught.value.code == "not_cancellable"
    with pytest.raises(NotFound) as caught:
        db.call("cancel_job", job_id=str(uuid.uuid4()), now=at(20))
    assert caught.value.code == "job_not_found"
    assert {j: snapshot(sql, j) for j in before} == before
    assert len(job_events(sql)) == n_events


# --- retry ----------------------------------------------------------------------------------


def test_retry_of_failed_and_cancelled_jobs_makes_a_new_job(db, make_user, sql):
    user = make_user()
    failed = create_upload(db, user, now=at(0), priority="high", options={"ocr": True})
    cancelled = create_upload(db, user, now=at(1), priority="low")
    db.call("cancel_job", job_id=cancelled["job_id"], now=at(2))
    assert claim_ids(db, "w1", now=at(10)) == [failed["job_id"]]
    fail_jobs(
        db,
        "w1",
        [item(failed["job_id"], error_code="bad", error_message="m", recoverable=False)],
        now=at(12),
    )
    old = {j["job_id"]: snapshot(sql, j["job_id"]) for j in (failed, cancelled)}

    new_ids = {}
    for up, priority, options in (
        (failed, "high", {"ocr": True}),
        (cancelled, "low", {}),
    ):
        answer = db.call("retry_job", job_id=up["job_id"], max_attempts=3, now=at(20))
        new_id = answer["job_id"]
        new_ids[up["job_id"]] = new_id
        assert new_id != up["job_id"]
        assert answer == {
            "job_id": new_id,
            "document_id": up["document_id"],
            "status": "pending",
            "retry_of": up["job_id"],
        }
        row = job_row(sql, new_id)
        assert str(row["document_id"]) == up["document_id"]
        assert str(row["user_id"]) == user.user_id
        assert (row["status"], row["source"], row["priority"]) == ("pending", "retry", priority)
        assert (row["attempts"], row["max_attempts"], row["options"]) == (0, 3, options)
        assert (row["run_at"], row["created_at"]) == (at(20), at(20))
        assert row["idempotency_key"] is None
        (event,) = job_events(sql, new_id)
        assert (event["event_type"], event["created_at"]) == ("enqueued", at(20))
        assert event["details"]["retry_of"] == up["job_id"]
        assert event["details"]["source"] == "retry"
        assert str(event["document_id"]) == up["document_id"]
    assert {j: snapshot(sql, j) for j in old} == old  # the originals stay for inspection

    # The document now has an active job (the retry): a second retry is refused.
    n = counts(sql)
    for original in new_ids:
        with pytest.raises(Conflict) as caught:
            db.call("retry_job", job_id=original, now=at(21))
        assert caught.value.code == "job_active"
    assert counts(sql) == n
    # Same priorities as the originals: high first, then low.
    assert claim_ids(db, "w1", now=at(30)) == [
        new_ids[failed["job_id"]],
        new_ids[cancelled["job_id"]],
    ]


def test_retry_while_its_document_is_being_deleted_answers_job_not_found(
    db, make_user, sql, admin_database_url
):
    """A retry that races the deletion of its document (retention, a user's deletion) waits
    for it and answers 404 `job_not_found`, never a raw foreign-key violation (23503)."""
    import threading

    from tests.support.waiting import PATIENCE, wait_until

    user = make_user()
    up = create_upload(db, user, now=at(0))
    db.call("cancel_job", job_id=up["job_id"], now=at(1))
    outcome: list[BaseException | Any] = []

    def retry() -> None:
        try:
            outcome.append(db.call("retry_job", job_id=up["job_id"], now=at(2)))
        except BaseException as exc:
            outcome.append(exc)

    with psycopg.connect(admin_database_url) as deleter, deleter.transaction():
        deleter.execute("delete from public.documents where id = %s", (up["document_id"],))
        thread = threading.Thread(target=retry)
        thread.start()

        def waiting() -> bool:
            row = sql.execute(
                "select count(*) from pg_stat_activity where datname = current_database()"
                " and wait_event_type = 'Lock' and query like '%retry_job%'"
            ).fetchone()
            return bool(row and row[0])

        wait_until(waiting, "the retry to wait on the deleted document")
    thread.join(PATIENCE)
    assert not thread.is_alive()
    (error,) = outcome
    assert isinstance(error, NotFound) and error.code == "job_not_found", error


def test_retry_refuses_unfinished_completed_and_unknown_jobs(db, make_user, sql):
    user = make_user()
    done, processing, pending = (create_upload(db, user, now=at(i))["job_id"] for i in range(3))
    assert claim_ids(db, "w1", now=at(10), max_jobs=2) == [done, processing]
    complete_jobs(db, "w1", [item(done)], now=at(11))
    n = counts(sql)
    for job_id, status in ((pending, "pending"), (processing, "processing"), (done, "completed")):
        assert job_row(sql, job_id)["status"] == status
        with pytest.raises(Conflict) as caught:
            db.call("retry_job", job_id=job_id, now=at(20))
        assert caught.value.code == "not_retryable"
    with pytest.raises(NotFound) as caught:
        db.call("retry_job", job_id=str(uuid.uuid4()), now=at(20))
    assert caught.value.code == "job_not_found"
    assert counts(sql) == n


# --- reanalyze ------------------------------------------------------------------------------


def test_reanalyze_document_lifecycle(db, make_user, sql):
    user = make_user()
    up = create_upload(db, user, now=at(0), priority="low")
    doc = up["document_id"]

    def last_reanalyzed() -> datetime | None:
        return sql.execute(
            "select last_reanalyzed_at from public.documents where id = %s", (doc,)
        ).fetchone()[0]

    def finish(job_id: str, now: datetime) -> None:
        assert claim_ids(db, "w1", now=now) == [job_id]
        assert complete_jobs(db, "w1", [item(job_id)], now=now)["completed"] == [job_id]

    # The upload's job is still pending: no second active job.
    with pytest.raises(Conflict) as caught:
        db.call("reanalyze_document", document_id=doc, now=at(1))
    assert caught.value.code == "job_active"
    assert last_reanalyzed() is None
    finish(up["job_id"], at(2))

    first = db.call("reanalyze_document", document_id=doc, min_interval_seconds=3600, now=at(100))
    assert (first["document_id"], first["status"]) == (doc, "pending")
    row = job_row(sql, first["job_id"])
    assert (row["priority"], row["source"], row["status"]) == ("high", "reanalyze", "pending")
    assert (row["attempts"], row["run_at"], row["created_at"]) == (0, at(100), at(100))
    assert str(row["user_id"]) == user.user_id
    assert last_reanalyzed() == at(100)
    (event,) = job_events(sql, first["job_id"])
    assert (event["event_type"], event["details"]["source"]) == ("enqueued", "reanalyze")
    finish(first["job_id"], at(101))

    n = counts(sql)
    for now, wait in ((at(700), 3000), (at(3699), 1)):
        with pytest.raises(RateLimited) as caught:
            db.call("reanalyze_document", document_id=doc, min_interval_seconds=3600, now=now)
        assert caught.value.code == "reanalyze_too_soon"
        assert caught.value.retry_after == wait
    assert counts(sql) == n
    assert last_reanalyzed() == at(100)

    second = db.call("reanalyze_document", document_id=doc, min_interval_seconds=3600, now=at(3700))
    assert job_row(sql, second["job_id"])["source"] == "reanalyze"
    assert last_reanalyzed() == at(3700)

    # Interval over, but the previous reanalysis is still active.
    with pytest.raises(Conflict) as caught:
        db.call("reanalyze_document", document_id=doc, min_interval_seconds=60, now=at(9000))
    assert caught.value.code == "job_active"
    assert last_reanalyzed() == at(3700)
    finish(second["job_id"], at(9001))
    db.call("reanalyze_document", document_id=doc, min_interval_seconds=60, now=at(9002))
    assert last_reanalyzed() == at(9002)

    with pytest.raises(NotFound) as caught:
        db.call("reanalyze_document", document_id=str(uuid.uuid4()), now=at(9003))
    assert caught.value.code == "document_not_found"


def test_reanalyze_limit_is_per_document_and_template(db, make_user, sql):
    """Switching templates is possible within the interval; the same template again is not.
    The job carries the template in its options (and a retry copies them)."""
    user = make_user()
    up = create_upload(db, user, now=at(0))
    doc = up["document_id"]
    assert claim_ids(db, "w1", now=at(1)) == [up["job_id"]]
    complete_jobs(db, "w1", [item(up["job_id"])], now=at(1))

    def reanalyze(template: str, now: datetime) -> dict:
        return db.call(
            "reanalyze_document",
            document_id=doc,
            options={"template": template},
            min_interval_seconds=3600,
            now=now,
        )

    brief = reanalyze("document_brief", at(10))
    assert job_row(sql, brief["job_id"])["options"] == {"template": "document_brief"}
    (event,) = job_events(sql, brief["job_id"])
    assert event["details"]["template"] == "document_brief"
    assert claim_ids(db, "w1", now=at(11)) == [brief["job_id"]]
    complete_jobs(db, "w1", [item(brief["job_id"])], now=at(11))

    financial = reanalyze("financial", at(20))  # another template: allowed at once
    assert job_row(sql, financial["job_id"])["options"] == {"template": "financial"}
    assert claim_ids(db, "w1", now=at(21)) == [financial["job_id"]]
    complete_jobs(db, "w1", [item(financial["job_id"])], now=at(21))

    n = counts(sql)
    for template, wait in (("document_brief", 3580), ("financial", 3590)):
        with pytest.raises(RateLimited) as caught:
            reanalyze(template, at(30))
        assert caught.value.code == "reanalyze_too_soon"
        assert caught.value.retry_after == wait
    assert counts(sql) == n
    stamps = sql.execute(
        "select reanalyzed_at_by_template from public.documents where id = %s", (doc,)
    ).fetchone()[0]
    assert set(stamps) == {"document_brief", "financial"}
    again = reanalyze("document_brief", at(3610))
    assert job_row(sql, again["job_id"])["source"] == "reanalyze"


# --- intake: rate limit, unknown user -------------------------------------------------------


def test_upload_rate_limit_per_user(db, make_user, sql):
    """A bucket of 3 refilled at 3 a minute (a token every 20 s); tests/integration/
    test_rate_bucket.py covers the bucket in depth."""
    user, other = make_user(), make_user()
    limit = {"rate_limit_per_minute": 3, "rate_burst": 3}
    for _ in range(3):
        create_upload(db, user, now=at(0), **limit)
    n = counts(sql)
    with pytest.raises(RateLimited) as caught:
        create_upload(db, user, now=at(10), **limit)
    assert caught.value.code == "rate_limited"
    assert caught.value.retry_after == 10  # half a token back by T+10, the rest in 10 s
    assert counts(sql) == n  # nothing written

    assert create_upload(db, other, now=at(10), **limit)["replayed"] is False
    assert create_upload(db, user, now=at(20), **limit)["replayed"] is False
    with pytest.raises(RateLimited) as caught:
        create_upload(db, user, now=at(20), **limit)
    assert caught.value.retry_after == 20

    # 0 means no limit at all.
    for _ in range(5):
        create_upload(db, user, now=at(21), rate_limit_per_minute=0, rate_burst=3)
    assert sql.execute(
        "select count(*) from public.processing_jobs where user_id = %s", (user.user_id,)
    ).fetchone()[0] == (4 + 5)


def test_an_idempotency_replay_is_not_counted_against_the_rate_limit(db, make_user, sql):
    user = make_user()
    data = b"replayed bytes"
    limit = {"rate_limit_per_minute": 2, "rate_burst": 2}
    first = create_upload(db, user, now=at(0), data=data, idempotency_key="k1", **limit)
    create_upload(db, user, now=at(0), **limit)
    n = counts(sql)
    for t in (1, 2):
        again = create_upload(db, user, now=at(t), data=data, idempotency_key="k1", **limit)
        assert again["replayed"] is True
        assert (again["document_id"], again["job_id"]) == (first["document_id"], first["job_id"])
    assert counts(sql) == n
    with pytest.raises(RateLimited) as caught:
        create_upload(db, user, now=at(3), **limit)
    # 2 a minute, emptied at T: 0.1 of a token back by T+3, the rest in 27 s.
    assert caught.value.retry_after == 27


def test_create_upload_for_an_unknown_user_writes_nothing(db, sql):
    class Ghost:
        user_id = str(uuid.uuid4())

    with pytest.raises(Unauthorized) as caught:
        create_upload(db, Ghost(), idempotency_key="k", now=T0)
    assert caught.value.code == "unknown_user"
    assert counts(sql) == (0, 0, 0)


# --- stalled recovery -----------------------------------------------------------------------


def test_recover_stalled_jobs(db, make_user, sql):
    user = make_user()
    retry = create_upload(db, user, now=at(0))["job_id"]
    out_of_attempts = create_upload(db, user, now=at(1), max_attempts=1)["job_id"]
    cancel = create_upload(db, user, now=at(2))["job_id"]
    alive = create_upload(db, user, now=at(3))["job_id"]
    assert claim_ids(db, "w1", now=at(10), max_jobs=3) == [retry, out_of_attempts, cancel]
    heartbeat_jobs(db, "w1", [item(out_of_attempts, stage="analyzing")], now=at(11))  # lease at(41)
    assert claim_ids(db, "w2", now=at(25)) == [alive]  # lease until at(55)
    db.call("cancel_job", job_id=cancel, now=at(30))
    n_events = len(job_events(sql))

    # Not yet: a lease expiring exactly now has not expired.
    assert recover_stalled_jobs(db, now=at(40)) == {"recovered": 0, "failed": 0, "cancelled": 0}
    assert job_row(sql, retry)["status"] == "processing"
    assert len(job_events(sql)) == n_events

    alive_before = snapshot(sql, alive)
    assert recover_stalled_jobs(db, now=at(42)) == {"recovered": 1, "failed": 1, "cancelled": 1}
    assert snapshot(sql, alive) == alive_before

    # Back to pending, due at once and keeping its place in the queue (run_at unchanged).
    row = job_row(sql, retry)
    assert (row["status"], row["run_at"], row["attempts"]) == ("pending", at(0), 1)
    assert (row["lease_owner"], row["lease_expires_at"], row["completed_at"]) == (None,) * 3
    assert (row["error_code"], row["error_recoverable"]) == ("stalled", True)
    event = job_events(sql, retry)[-1]
    assert (event["event_type"], event["created_at"]) == ("stalled_recovered", at(42))
    assert event["details"] == {"attempt": 1}

    row = job_row(sql, out_of_attempts)
    assert (row["status"], row["error_code"]) == ("failed", "stalled")
    assert (row["completed_at"], row["duration_ms"]) == (at(42), 32_000)
    assert (row["lease_owner"], row["lease_expires_at"]) == (None, None)
    event = job_events(sql, out_of_attempts)[-1]
    assert (event["event_type"], event["duration_ms"]) == ("failed", 32_000)
    assert event["error_message"]
    assert event["stage"] == "analyzing"

    row = job_row(sql, cancel)
    assert (row["status"], row["completed_at"]) == ("cancelled", at(42))
    assert row["error_code"] is None
    assert job_events(sql, cancel)[-1]["event_type"] == "cancelled"
    assert len(job_events(sql)) == n_events + 3

    # Idempotent; the recovered job is claimable at once, ahead of newer jobs, as its next
    # attempt.
    assert recover_stalled_jobs(db, now=at(42)) == {"recovered": 0, "failed": 0, "cancelled": 0}
    newer = create_upload(db, user, now=at(41))["job_id"]
    (job,) = claim_jobs(db, "w3", now=at(42), max_jobs=1)
    assert (job["id"], job["attempts"]) == (retry, 2)
    assert job_row(sql, newer)["status"] == "pending"


def test_recover_stalled_jobs_respects_max_jobs(db, make_user, sql):
    user = make_user()
    jobs = [create_upload(db, user, now=at(i))["job_id"] for i in range(3)]
    for i, job_id in enumerate(jobs):  # leases expiring at 40, 41, 42
        assert claim_ids(db, "w1", now=at(10 + i), max_jobs=1) == [job_id]
    assert recover_stalled_jobs(db, now=at(100), max_jobs=2) == {
        "recovered": 2,
        "failed": 0,
        "cancelled": 0,
    }
    assert [job_row(sql, j)["status"] for j in jobs] == ["pending", "pending", "processing"]


# --- release --------------------------------------------------------------------------------


def test_release_jobs_gives_attempts_back(db, make_user, sql):
    user = make_user()
    a, b, c, d = (create_upload(db, user, now=at(i))["job_id"] for i in range(4))
    assert claim_ids(db, "w1", now=at(10), max_jobs=2) == [a, b]
    assert claim_ids(db, "w2", now=at(10), max_jobs=1) == [c]
    fail_jobs(db, "w1", [item(a, error_code="e", error_message="m")], now=at(11), retry_jitter=0)
    assert set(claim_ids(db, "w1", now=at(20), max_jobs=2)) == {a, d}  # a at attempt 2
    assert job_row(sql, a)["run_at"] == at(12)  # its backoff: 1 s, no jitter
    db.call("cancel_job", job_id=d, now=at(21))
    keep = {j: snapshot(sql, j) for j in (b, c)}
    n_events = len(job_events(sql))

    released = db.call(
        "release_jobs",
        worker_id="w1",
        jobs=[item(a, 2), item(b, 2), item(c, 1), item(str(uuid.uuid4()))],
        now=at(30),
    )
    assert released == 1
    row = job_row(sql, a)
    # Pending again, due at once, keeping its place in the queue (run_at unchanged).
    assert (row["status"], row["attempts"], row["run_at"]) == ("pending", 1, at(12))
    assert (row["lease_owner"], row["lease_expires_at"], row["completed_at"]) == (None,) * 3
    event = job_events(sql, a)[-1]
    assert (event["event_type"], event["created_at"]) == ("released", at(30))
    assert {j: snapshot(sql, j) for j in keep} == keep  # stale attempt, other worker's job
    assert len(job_events(sql)) == n_events + 1

    assert db.call("release_jobs", worker_id="w1", jobs=[item(b, 1)], now=at(31)) == 1
    assert db.call("release_jobs", worker_id="w1", jobs=[item(b, 1)], now=at(32)) == 0
    assert (job_row(sql, b)["status"], job_row(sql, b)["attempts"]) == ("pending", 0)

    # A job whose cancellation was requested is not handed back: it ends cancelled.
    assert db.call("release_jobs", worker_id="w1", jobs=[item(d, 1)], now=at(33)) == 1
    assert job_row(sql, d)["status"] == "cancelled"
    assert job_events(sql, d)[-1]["event_type"] == "cancelled"

    # The released attempts did not count.
    got = {j["id"]: j["attempts"] for j in claim_jobs(db, "w3", now=at(40))}
    assert got == {a: 2, b: 1}


# --- bulk enqueue ---------------------------------------------------------------------------


def _finished_documents(db, user, n: int, *, start: float = 0) -> list[str]:
    """n documents whose jobs have finished (completed, or failed for odd ones)."""
    ups = [create_upload(db, user, now=at(start + i)) for i in range(n)]
    claimed = claim_ids(db, "setup", now=at(start + n), max_jobs=n)
    assert set(claimed) == {u["job_id"] for u in ups}
    for i, up in enumerate(ups):
        if i % 2:
            fatal = item(up["job_id"], error_code="e", error_message="m", recoverable=False)
            fail_jobs(db, "setup", [fatal], now=at(start + n))
        else:
            complete_jobs(db, "setup", [item(up["job_id"])], now=at(start + n))
    return [u["document_id"] for u in ups]


def test_enqueue_jobs_in_bulk(db, make_user, sql):
    user, other = make_user(), make_user()
    a, b = _finished_documents(db, user, 2)
    (c,) = _finished_documents(db, other, 1, start=5)
    n_events = len(job_events(sql))

    ids = db.call(
        "enqueue_jobs",
        jobs=[
            {"document_id": a, "priority": "high"},
            {"document_id": b, "priority": "low"},
            {"document_id": c},
        ],
        source="retry",
        now=at(50),
    )
    assert len(ids) == len(set(ids)) == 3
    rows = {str(job_row(sql, j)["document_id"]): job_row(sql, j) for j in ids}
    assert set(rows) == {a, b, c}
    for doc, priority, owner in ((a, "high", user), (b, "low", user), (c, "normal", other)):
        row = rows[doc]
        assert (row["status"], row["source"], row["priority"]) == ("pending", "retry", priority)
        assert (row["attempts"], row["run_at"], row["created_at"]) == (0, at(50), at(50))
        assert str(row["user_id"]) == owner.user_id
        (event,) = job_events(sql, str(row["id"]))
        assert (event["event_type"], event["created_at"]) == ("enqueued", at(50))
        assert event["details"] == {"source": "retry"}
        assert str(event["user_id"]) == owner.user_id
    assert len(job_events(sql)) == n_events + 3
    assert set(claim_ids(db, "w1", now=at(50))) == set(ids)

    # The default source is `reanalyze`.
    complete_jobs(db, "w1", [item(str(rows[a]["id"]))], now=at(51))
    (again,) = db.call("enqueue_jobs", jobs=[{"document_id": a}], now=at(52))
    assert job_row(sql, again)["source"] == "reanalyze"


def test_enqueue_jobs_with_an_active_document_inserts_nothing(db, make_user, sql):
    user = make_user()
    (finished,) = _finished_documents(db, user, 1)
    active = create_upload(db, user, now=at(10))["document_id"]  # its job is pending
    n = counts(sql)

    for batch in (
        [{"document_id": finished}, {"document_id": active}],
        [{"document_id": finished}, {"document_id": finished}],  # two jobs for one document
    ):
        with pytest.raises(Conflict) as caught:
            db.call("enqueue_jobs", jobs=batch, source="reanalyze", now=at(20))
        assert caught.value.code == "job_active"
        assert counts(sql) == n

    (job_id,) = db.call("enqueue_jobs", jobs=[{"document_id": finished}], now=at(21))
    assert job_row(sql, job_id)["status"] == "pending"


# --- list -----------------------------------------------------------------------------------


def _listing_fixture(db, make_user, sql):
    user, other = make_user(), make_user()
    created = [create_upload(db, user, now=at(t))["job_id"] for t in (0, 1, 2, 2, 2)]
    for _ in range(2):
        create_upload(db, other, now=at(3))  # newer, and never visible to `user`
    claim_jobs(db, "w1", now=at(10), max_jobs=20)
    for job_id in (created[0], created[3]):
        complete_jobs(db, "w1", [item(job_id)], now=at(11))
    rows = {j: job_row(sql, j) for j in created}
    newest_first = sorted(
        created, key=lambda j: (rows[j]["created_at"], uuid.UUID(j)), reverse=True
    )
    return user, newest_first, {created[0], created[3]}


def test_list_jobs_under_rls_filters_and_pages(db, make_user, sql):
    user, newest_first, completed = _listing_fixture(db, make_user, sql)
    scope = db.as_user(user)

    rows = scope.call("list_jobs")
    assert [r["id"] for r in rows] == newest_first
    assert all(r["user_id"] == user.user_id for r in rows)
    assert not {"lease_owner", "idempotency_key", "priority_rank"} & set(rows[0])

    done = scope.call("list_jobs", status="completed")
    assert [r["id"] for r in done] == [j for j in newest_first if j in completed]
    assert scope.call("list_jobs", status="pending") == []

    pages, before = [], {}
    while True:
        page = scope.call("list_jobs", max_rows=2, **before)
        if not page:
            break
        pages.append([r["id"] for r in page])
        before = {"before_created_at": page[-1]["created_at"], "before_id": page[-1]["id"]}
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [j for p in pages for j in p] == newest_first  # in order, no overlap, no gap


def test_list_jobs_cursor_round_trip_and_invalid_cursor(db, make_user, sql):
    user, newest_first, _ = _listing_fixture(db, make_user, sql)
    scope = db.as_user(user)

    seen, cursor, pages = [], None, 0
    while True:
        page = queue.list_jobs(scope, status=None, limit=2, cursor=cursor)
        pages += 1
        seen.extend(j["id"] for j in page["jobs"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert queue._decode_cursor(cursor) == (
            page["jobs"][-1]["created_at"],
            page["jobs"][-1]["id"],
        )
    assert (pages, seen) == (3, newest_first)

    bad = [
        "!!!not base64!!!",
        b64url(b"not json"),
        b64url(json.dumps(["not a date", newest_first[0]]).encode()),
        b64url(json.dumps([None, newest_first[0]]).encode()),
        b64url(json.dumps(["2026-01-01T12:00:00+00:00"]).encode()),
        "é",
    ]
    for cursor in bad:
        with pytest.raises(Unprocessable) as caught:
            queue.list_jobs(scope, status=None, limit=2, cursor=cursor)
        assert caught.value.code == "invalid_cursor", cursor


def test_a_cursor_with_a_malformed_job_id_is_an_invalid_cursor(db, make_user):
    user = make_user()
    create_upload(db, user, now=T0)
    raw = json.dumps(["2026-01-01T12:00:00+00:00", "not-a-uuid"]).encode()
    cursor = b64url(raw)
    with pytest.raises(Unprocessable) as caught:
        queue.list_jobs(db.as_user(user), status=None, limit=2, cursor=cursor)
    assert caught.value.code == "invalid_cursor"


# --- privileges, NOTIFY ---------------------------------------------------------------------

SERVICE_ONLY = {
    "heartbeat_jobs": "text, jsonb, integer, timestamptz",
    "complete_jobs": "text, jsonb, timestamptz",
    "fail_jobs": (
        "text, jsonb, double precision, double precision, double precision, double precision,"
        " timestamptz"
    ),
    "release_jobs": "text, jsonb, timestamptz",
    "recover_stalled_jobs": "integer, timestamptz",
    "cancel_job": "uuid, timestamptz",
    "retry_job": "uuid, integer, integer, integer, timestamptz",
    "reanalyze_document": "uuid, jsonb, integer, integer, integer, integer, timestamptz",
    "enqueue_jobs": "jsonb, text, timestamptz",
    "create_upload": (
        "uuid, text, text, bigint, text, text, text, text, integer, jsonb, integer, integer,"
        " timestamptz"
    ),
}


def test_the_engine_functions_are_service_only(db, make_user, sql):
    user = make_user()
    (finished_doc,) = _finished_documents(db, user, 1)  # its job completed
    failed = create_upload(db, user, now=at(5))
    claim_jobs(db, "w1", now=at(6))
    fatal = item(failed["job_id"], error_code="e", error_message="m", recoverable=False)
    fail_jobs(db, "w1", [fatal], now=at(7))
    working = create_upload(db, user, now=at(8))
    assert claim_ids(db, "w1", now=at(9)) == [working["job_id"]]
    pending = create_upload(db, user, now=at(10))
    before = sql.execute(
        "select (select jsonb_agg(to_jsonb(j) order by j.id) from public.processing_jobs j),"
        "       (select count(*) from public.document_processing_events)"
    ).fetchone()

    work = [item(working["job_id"])]
    calls = {
        "heartbeat_jobs": {"worker_id": "w1", "jobs": work, "now": at(11)},
        "complete_jobs": {"worker_id": "w1", "completions": work, "now": at(11)},
        "fail_jobs": {
            "worker_id": "w1",
            "failures": [item(working["job_id"], error_code="e", error_message="m")],
            "now": at(11),
        },
        "release_jobs": {"worker_id": "w1", "jobs": work, "now": at(11)},
        "recover_stalled_jobs": {"now": at(100_000)},
        "cancel_job": {"job_id": pending["job_id"], "now": at(11)},
        "retry_job": {"job_id": failed["job_id"], "now": at(11)},
        "reanalyze_document": {"document_id": finished_doc, "now": at(11)},
        "enqueue_jobs": {"jobs": [{"document_id": finished_doc}], "now": at(11)},
    }
    assert set(calls) == set(SERVICE_ONLY) - {"create_upload"}
    allowed = []
    for fn, params in calls.items():
        try:
            db.as_user(user).call(fn, **params)
        except Forbidden:
            continue
        allowed.append(fn)
    assert allowed == []
    # Nothing happened behind the refusals.
    after = sql.execute(
        "select (select jsonb_agg(to_jsonb(j) order by j.id) from public.processing_jobs j),"
        "       (select count(*) from public.document_processing_events)"
    ).fetchone()
    assert after == before

    # Refused at the function itself (not by a table privilege inside it), and the service role
    # really may execute each one, by its exact signature.
    for fn, args in SERVICE_ONLY.items():
        signature = f"public.{fn}({args})"
        privileges = sql.execute(
            "select has_function_privilege('service_role', %(f)s, 'execute'),"
            "       has_function_privilege('authenticated', %(f)s, 'execute'),"
            "       has_function_privilege('anon', %(f)s, 'execute')",
            {"f": signature},
        ).fetchone()
        assert privileges == (True, False, False), signature
    # list_jobs is the user's own read.
    assert sql.execute(
        "select has_function_privilege('authenticated', %(f)s, 'execute'),"
        "       has_function_privilege('anon', %(f)s, 'execute')",
        {"f": "public.list_jobs(text, integer, timestamptz, uuid)"},
    ).fetchone() == (True, False)


def test_create_upload_notifies_listening_workers(db, make_user, database_url):
    user = make_user()
    with psycopg.connect(database_url, autocommit=True) as listener:
        listener.execute("listen docflow_jobs")
        assert list(listener.notifies(timeout=0, stop_after=1)) == []
        create_upload(db, user, now=T0)
        got = list(listener.notifies(timeout=5, stop_after=1))
    assert len(got) == 1
    assert got[0].channel == "docflow_jobs"
