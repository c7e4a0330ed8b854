"""The worker engine (`shared.jobs.worker`) against the real Postgres, with small custom handlers.

Settings are made fast (short heartbeats and leases) through the environment. No test asserts
on elapsed time: handlers and the test meet through `threading.Event` handshakes, and the test
polls the database until a condition holds, with a generous deadline that only bounds a hang.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from shared.documents.intake import accept_upload
from shared.jobs.context import Handler, JobContext
from shared.jobs.worker import DrainReport, Worker
from shared.platform.client import Database, UserContext
from shared.platform.config import Settings
from shared.platform.errors import JobError, JobStopped, Unavailable
from shared.platform.storage import get_storage
from tests.support.data import REPO_ROOT, TEXT
from tests.support.env import configure as configure_env
from tests.support.factories import new_job
from tests.support.http import load_target
from tests.support.net import free_port
from tests.support.rows import event_counts, job_row
from tests.support.threads import Start, started_threads
from tests.support.tokens import bearer
from tests.support.waiting import PATIENCE, wait_until

FAST = {
    "HEARTBEAT_SECONDS": "0.2",
    "JOB_LEASE_SECONDS": "2",
    "PROGRESS_WRITE_SECONDS": "0",
    "WORKER_POLL_SECONDS": "0.1",
    "STALLED_SWEEP_SECONDS": "0.2",
    "JOB_TIMEOUT_SECONDS": "120",
    "WORKER_SHUTDOWN_GRACE_SECONDS": "30",
    # A retried attempt is not due again while a test runs.
    "RETRY_INITIAL_SECONDS": "600",
    "RETRY_MAX_SECONDS": "600",
}


# --- helpers ------------------------------------------------------------------------------


@pytest.fixture
def configure(db: Database, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Settings]:
    """Fast worker settings (FAST, then overrides), through the environment."""

    def apply(**overrides: Any) -> Settings:
        return configure_env(monkeypatch, **{**FAST, **overrides})

    return apply


@pytest.fixture
def user(make_user: Callable[..., UserContext]) -> UserContext:
    return make_user()


@pytest.fixture
def background() -> Iterator[Start]:
    with started_threads() as start:
        yield start


def status_of(sql: psycopg.Connection, job_id: str) -> str:
    return str(job_row(sql, job_id)["status"])


def counts(report: DrainReport) -> dict[str, int]:
    """The report without its zero counters."""
    return {k: v for k, v in report.as_dict().items() if v}


def wait_for_status(sql: psycopg.Connection, job_id: str, status: str) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        row = job_row(sql, job_id)
        return row if row["status"] == status else None

    return wait_until(reached, f"job {job_id} to become {status}")


def returning(result: dict[str, Any]) -> Handler:
    def handler(job: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        return result

    return handler


def run_until_stopped(ctx: JobContext, seen: list[str]) -> dict[str, Any]:
    """A handler body that works until it is told to stop (bounded, should that never come)."""
    deadline = time.monotonic() + PATIENCE
    try:
        while time.monotonic() < deadline:
            ctx.check()
            time.sleep(0.01)
    except JobStopped as stopped:
        seen.append(str(stopped))
        raise
    return {"never": "stopped"}


# --- drain ----------------------------------------------------------------------------------


def test_drain_completes_due_jobs_and_reports_the_counts(db, user, sql, configure) -> None:
    settings = configure()
    jobs = [new_job(db, user) for _ in range(3)]

    def handler(job: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        return {"handled": job["id"], "attempt": ctx.attempt}

    report = Worker(db, settings, handler, concurrency=2).drain(max_jobs=100, max_seconds=60)

    assert isinstance(report, DrainReport)
    assert counts(report) == {"claimed": 3, "completed": 3}
    for job_id in jobs:
        row = job_row(sql, job_id)
        assert row["status"] == "completed"
        assert row["attempts"] == 1
        assert row["progress"] == 100
        assert row["lease_owner"] is None
        assert row["result"] == {"handled": job_id, "attempt": 1}
        assert event_counts(sql, job_id) == {
            "upload_started": 1,
            "processing_started": 1,
            "completed": 1,
        }
    # Nothing is due any more: a second drain finds nothing.
    assert counts(Worker(db, settings, handler).drain(max_jobs=100, max_seconds=60)) == {}


def test_drain_stops_at_max_jobs(db, user, sql, configure) -> None:
    settings = configure()
    jobs = [new_job(db, user) for _ in range(3)]
    worker = Worker(db, settings, returning({}), batch_size=10)
    report = worker.drain(max_jobs=2, max_seconds=60)
    assert counts(report) == {"claimed": 2, "completed": 2}
    assert sorted(status_of(sql, j) for j in jobs) == ["completed", "completed", "pending"]


def test_a_job_error_that_is_not_recoverable_fails_the_job_at_once(
    db, user, sql, configure
) -> None:
    settings = configure()
    job_id = new_job(db, user)

    def handler(job: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        raise JobError("unsupported_content", "not a document", recoverable=False)

    report = Worker(db, settings, handler).drain(max_jobs=10, max_seconds=60)

    assert counts(report) == {"claimed": 1, "failed": 1}
    row = job_row(sql, job_id)
    assert row["status"] == "failed"
    assert row["attempts"] == 1  # no retry although attempts are left
    assert row["max_attempts"] > 1
    assert (row["error_code"], row["error_message"], row["error_recoverable"]) == (
        "unsupported_content",
        "not a document",
        False,
    )
    assert row["result"] is None
    assert row["completed_at"] is not None
    assert event_counts(sql, job_id) == {"upload_started": 1, "processing_started": 1, "failed": 1}


def test_a_recoverable_job_error_is_retried_later(db, user, sql, configure) -> None:
    settings = configure()
    job_id = new_job(db, user)

    def handler(job: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        raise JobError("storage_busy", "try again", recoverable=True)

    report = Worker(db, settings, handler).drain(max_jobs=10, max_seconds=60)

    assert counts(report) == {"claimed": 1, "retried": 1}
    row = job_row(sql, job_id)
    assert row["status"] == "pending"
    assert row["attempts"] == 1
    assert (row["error_code"], row["error_recoverable"]) == ("storage_busy", True)
    assert row["lease_owner"] is None
    in_future = sql.execute("select %s > now()", (row["run_at"],)).fetchone()
    assert in_future == (True,), "a retry must wait for its backoff"
    assert event_counts(sql, job_id) == {
        "upload_started": 1,
        "processing_started": 1,
        "retry_scheduled": 1,
    }


@pytest.mark.parametrize(
    "bad",
    [{"score": float("nan")}, {"share": float("inf")}, {"tags": {"a", "b"}}, {"raw": b"x"}],
    ids=["nan", "inf", "a-set", "bytes"],
)
def test_a_result_that_is_not_json_fails_its_job_alone(
    bad: dict[Any, Any], db, user, sql, configure
) -> None:
    """One handler returns what jsonb cannot hold: that job fails (not recoverable: it would
    return the same again), and the others of the same batch complete."""
    settings = configure()
    jobs = [new_job(db, user) for _ in range(3)]

    def handler(job: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        return bad if job["id"] == jobs[1] else {"ok": True}

    report = Worker(db, settings, handler, concurrency=3, batch_size=3).drain(
        max_jobs=10, max_seconds=60
    )
    assert counts(report) == {"claimed": 3, "completed": 2, "failed": 1}
    assert [status_of(sql, j) for j in jobs] == ["completed", "failed", "completed"]
    row = job_row(sql, jobs[1])
    assert (row["error_code"], row["error_recoverable"]) == ("invalid_result", False)
    assert row["result"] is None


def test_a_crashing_handler_is_a_recoverable_internal_error(db, user, sql, configure) -> None:
    settings = configure()
    job_id = new_job(db, user)

    def handler(job: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        raise ZeroDivisionError("oops")

    report = Worker(db, settings, handler).drain(max_jobs=10, max_seconds=60)

    assert counts(report) == {"claimed": 1, "retried": 1}
    row = job_row(sql, job_id)
    assert row["status"] == "pending"
    assert (row["error_code"], row["error_recoverable"]) == ("internal_error", True)
    assert row["attempts"] == 1


def test_claimed_jobs_run_with_up_to_concurrency_at_once(db, user, sql, configure) -> None:
    settings = configure()
    concurrency = 3
    jobs = [new_job(db, user) for _ in range(7)]
    lock = threading.Lock()
    in_flight = 0
    most = 0
    full = threading.Event()

    def handler(job: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        nonlocal in_flight, most
        with lock:
            in_flight += 1
            most = max(most, in_flight)
            if in_flight >= concurrency:
                full.set()
        try:
            # The first ones wait until `concurrency` of them run side by side.
            assert full.wait(PATIENCE), "the worker never ran `concurrency` jobs at once"
            return {}
        finally:
            with lock:
                in_flight -= 1

    worker = Worker(db, settings, handler, concurrency=concurrency, batch_size=10)
    report = worker.drain(max_jobs=100, max_seconds=60)

    assert counts(report) == {"claimed": 7, "completed": 7}
    assert most == concurrency
    assert all(status_of(sql, j) == "completed" for j in jobs)


# --- progress and heartbeats -----------------------------------------------------------------


def test_reported_stage_and_progress_reach_the_job_row(
    db, user, sql, configure, background
) -> None:
    settings = configure()
    job_id = new_job(db, user)
    reported, release = threading.Event(), threading.Event()

    def handler(job: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        ctx.report("parsing", 40)
        reported.set()
        release.wait(PATIENCE)
        return {"ok": True}

    worker = Worker(db, settings, handler)
    run = background(worker.drain, 10, 60, unblock=(release,))
    assert reported.wait(PATIENCE)

    row = wait_until(
        lambda: (r := job_row(sql, job_id))["stage"] == "parsing" and r,
        "the heartbeat to write stage parsing",
    )
    assert row["status"] == "processing"
    assert row["progress"] == 40

    release.set()
    report = run.join()
    assert counts(report) == {"claimed": 1, "completed": 1}
    row = job_row(sql, job_id)
    assert (row["status"], row["progress"]) == ("completed", 100)


def test_heartbeats_keep_the_lease_of_a_job_that_outlives_it(
    db, user, sql, configure, background
) -> None:
    settings = configure(JOB_LEASE_SECONDS=2, HEARTBEAT_SECONDS=0.2)
    job_id = new_job(db, user)
    started, release = threading.Event(), threading.Event()

    def handler(job: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        started.set()
        release.wait(PATIENCE)
        return {"long": True}

    run = background(Worker(db, settings, handler).drain, 10, 60, unblock=(release,))
    assert started.wait(PATIENCE)
    first_lease = job_row(sql, job_id)["lease_expires_at"]
    leases = [first_lease]

    def moved_twice_and_outlived_the_first_lease() -> bool:
        lease = job_row(sql, job_id)["lease_expires_at"]
        assert lease is not None, "the job lost its lease"
        if lease != leases[-1]:
            assert lease > leases[-1], "a heartbeat moved the lease backwards"
            leases.append(lease)
        past = sql.execute("select now() > %s", (first_lease,)).fetchone()
        return len(leases) >= 3 and past == (True,)

    wait_until(moved_twice_and_outlived_the_first_lease, "heartbeats to extend the lease")
    assert db.call("recover_stalled_jobs") == {"recovered": 0, "failed": 0, "cancelled": 0}
    assert status_of(sql, job_id) == "processing"

    release.set()
    assert counts(run.join()) == {"claimed": 1, "completed": 1}
    row = job_row(sql, job_id)
    assert (row["status"], row["attempts"], row["result"]) == ("completed", 1, {"long": True})
    assert "stalled_recovered" not in event_counts(sql, job_id)


# --- cancel, timeout, lease lost ---------------------------------------------------------------


def test_cancel_while_processing_stops_the_job_and_the_worker_goes_on(
    db, user, sql, configure, background
) -> None:
    settings = configure()
    doomed = new_job(db, user, priority="high")  # claimed first
    next_job = new_job(db, user)
    started = threading.Event()
    seen: list[str] = []

    def handler(job: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        if job["id"] != doomed:
            return {"next": True}
        started.set()
        return run_until_stopped(ctx, seen)

    worker = Worker(db, settings, handler, concurrency=1, batch_size=1)
    run = background(worker.drain, 10, 60)
    assert started.wait(PATIENCE)
    assert status_of(sql, next_job) == "pending"  # one at a time

    answer = db.call("cancel_job", job_id=doomed)
    assert answer["status"] == "processing" and answer["cancel_requested"] is True

    row = wait_for_status(sql, doomed, "cancelled")  # by the worker's next heartbeat
    report = run.join()

    # The handler stops at its next ctx.check(), possibly after the worker moved on.
    wait_until(lambda: seen, "the handler to get JobStopped")
    assert seen == ["cancelled"]
    assert row["result"] is None
    assert row["lease_owner"] is None
    assert event_counts(sql, doomed) == {
        "upload_started": 1,
        "processing_started": 1,
        "cancelled": 1,
    }
    assert report.claimed == 2
    assert report.completed == 1
    assert report.failed == report.retried == 0
    next_row = job_row(sql, next_job)
    assert (next_row["status"], next_row["result"]) == ("completed", {"next": True})


def test_a_job_that_runs_too_long_fails_with_timeout_and_is_not_retried(
    db, user, sql, configure
) -> None:
    settings = configure(JOB_TIMEOUT_SECONDS=0.5)
    job_id = new_job(db, user)
    seen: list[str] = []

    def handler(job: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        return run_until_stopped(ctx, seen)

    report = Worker(db, settings, handler).drain(max_jobs=10, max_seconds=60)

    # The handler stops at its next ctx.check(), possibly after the worker moved on.
    wait_until(lambda: seen, "the handler to get JobStopped")
    assert seen == ["timeout"]
    assert counts(report) == {"claimed": 1, "failed": 1}
    row = job_row(sql, job_id)
    assert row["status"] == "failed"
    assert row["attempts"] == 1
    assert (row["error_code"], row["error_recoverable"]) == ("timeout", False)
    assert row["result"] is None
    assert event_counts(sql, job_id) == {"upload_started": 1, "processing_started": 1, "failed": 1}


def expire_and_recover(sql: psycopg.Connection, job_id: str) -> None:
    """Simulate a lost lease: expire it and sweep, in one transaction (no heartbeat between)."""
    with sql.transaction():
        sql.execute(
            "update public.processing_jobs set lease_expires_at = now() - interval '1 minute'"
            " where id = %s and status = 'processing'",
            (job_id,),
        )
        swept = sql.execute("select public.recover_stalled_jobs()").fetchone()
    assert swept is not None and swept[0]["recovered"] == 1, swept
    assert status_of(sql, job_id) == "pending"


def test_a_lost_lease_stops_the_first_worker_and_its_result_is_discarded(
    db, user, sql, configure, background
) -> None:
    settings = configure()
    job_id = new_job(db, user)
    started, release = threading.Event(), threading.Event()
    contexts: list[JobContext] = []

    def first_handler(job: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        contexts.append(ctx)
        started.set()
        release.wait(PATIENCE)  # ignores ctx.check(): its result comes late
        return {"by": "first"}

    first = Worker(db, settings, first_handler, worker_id="first-worker")
    # max_jobs=1: once it holds the job it claims no more, so it cannot take the job back.
    run = background(first.drain, 1, 60, unblock=(release,))
    assert started.wait(PATIENCE)

    expire_and_recover(sql, job_id)
    second = Worker(db, settings, returning({"by": "second"}), worker_id="second-worker")
    assert counts(second.drain(max_jobs=10, max_seconds=60)) == {"claimed": 1, "completed": 1}

    # The first worker's heartbeat is answered "lost", which stops its job.
    wait_until(lambda: contexts[0].stopped, "the first worker's heartbeat to answer lost")
    assert contexts[0].stop_reason == "lost"
    release.set()
    report = run.join()
    assert report.claimed == 1
    assert report.completed == 0

    row = job_row(sql, job_id)
    assert (row["status"], row["attempts"], row["result"]) == (
        "completed",
        2,
        {"by": "second"},
    )
    assert event_counts(sql, job_id) == {
        "upload_started": 1,
        "processing_started": 2,
        "stalled_recovered": 1,
        "completed": 1,
    }
    completed = sql.execute(
        "select details->>'attempt' from public.document_processing_events"
        " where job_id = %s and event_type = 'completed'",
        (job_id,),
    ).fetchall()
    assert completed == [("2",)]


def test_a_late_result_after_the_lease_was_lost_is_fenced_off_and_counted(
    db, user, sql, configure, background
) -> None:
    # Heartbeats so rare that the first worker never learns it lost the lease before it
    # finishes: the fenced complete_jobs is what discards its result.
    settings = configure(JOB_LEASE_SECONDS=600, HEARTBEAT_SECONDS=300)
    job_id = new_job(db, user)
    started, release = threading.Event(), threading.Event()

    def first_handler(job: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        started.set()
        release.wait(PATIENCE)
        return {"by": "first"}

    first = Worker(db, settings, first_handler, worker_id="first-worker")
    run = background(first.drain, 1, 60, unblock=(release,))
    assert started.wait(PATIENCE)

    expire_and_recover(sql, job_id)
    second = Worker(db, settings, returning({"by": "second"}), worker_id="second-worker")
    assert counts(second.drain(max_jobs=10, max_seconds=60)) == {"claimed": 1, "completed": 1}

    release.set()
    report = run.join()
    assert counts(report) == {"claimed": 1, "lease_lost": 1}
    row = job_row(sql, job_id)
    assert (row["status"], row["attempts"], row["result"]) == (
        "completed",
        2,
        {"by": "second"},
    )
    assert event_counts(sql, job_id)["completed"] == 1


# --- the long-running worker -------------------------------------------------------------------


def listening(sql: psycopg.Connection) -> bool:
    row = sql.execute(
        "select count(*) from pg_stat_activity"
        " where datname = current_database() and query = 'listen docflow_jobs'"
        " and state = 'idle'"
    ).fetchone()
    return row is not None and row[0] > 0


def test_listen_wakes_the_long_running_worker(
    db, user, sql, configure, background, database_url
) -> None:
    # Polling every 30 s: only the NOTIFY of the insert can wake it within the 10 s we wait.
    settings = configure(WORKER_POLL_SECONDS=30, STALLED_SWEEP_SECONDS=60)
    stop = threading.Event()
    worker = Worker(db, settings, returning({"woken": True}), listen_url=database_url)
    run = background(worker.run_forever, stop, unblock=(stop,))
    wait_until(lambda: listening(sql), "the worker to LISTEN while idle")

    job_id = new_job(db, user)
    wait_until(
        lambda: status_of(sql, job_id) == "completed",
        "the NOTIFY to wake the worker (its poll wait is 30 s)",
        limit=10,
    )

    stop.set()
    sql.execute("notify docflow_jobs")  # the listener does not watch `stop`; see the xfail below
    report = run.join()
    assert counts(report) == {"claimed": 1, "completed": 1}
    assert job_row(sql, job_id)["result"] == {"woken": True}


def test_stop_ends_an_idle_listening_worker_without_waiting_for_the_poll(
    db, sql, configure, background, database_url
) -> None:
    settings = configure(WORKER_POLL_SECONDS=30, STALLED_SWEEP_SECONDS=60)
    stop = threading.Event()
    worker = Worker(db, settings, returning({}), listen_url=database_url)
    run = background(worker.run_forever, stop, unblock=(stop,))
    wait_until(lambda: listening(sql), "the worker to LISTEN while idle")

    stop.set()
    run.thread.join(5)  # a bound far below the 30 s poll, not a timing assertion
    ended = not run.thread.is_alive()
    if not ended:
        sql.execute("notify docflow_jobs")  # wake it so that the thread ends with the test
    run.join()
    assert ended, "the worker kept waiting on LISTEN after stop was set"


def test_shutdown_releases_a_job_that_outlives_the_grace_period(
    db, user, sql, configure, background
) -> None:
    settings = configure(WORKER_SHUTDOWN_GRACE_SECONDS=0.3)
    job_id = new_job(db, user)
    started, release, done = threading.Event(), threading.Event(), threading.Event()
    contexts: list[JobContext] = []

    def handler(job: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        contexts.append(ctx)
        started.set()
        try:
            release.wait(PATIENCE)
            return {"too": "late"}
        finally:
            done.set()

    stop = threading.Event()
    run = background(
        Worker(db, settings, handler, concurrency=1).run_forever, stop, unblock=(stop, release)
    )
    assert started.wait(PATIENCE)
    assert status_of(sql, job_id) == "processing"

    stop.set()
    report = run.join()  # run_forever returns although the handler is still blocked
    assert not done.is_set()
    assert counts(report) == {"claimed": 1, "released": 1}
    assert contexts[0].stop_reason == "shutdown"
    row = job_row(sql, job_id)
    assert row["status"] == "pending"
    assert row["attempts"] == 0  # the released attempt does not count
    assert row["lease_owner"] is None and row["lease_expires_at"] is None
    assert event_counts(sql, job_id) == {
        "upload_started": 1,
        "processing_started": 1,
        "released": 1,
    }

    release.set()  # the late result goes nowhere
    assert done.wait(PATIENCE)
    assert status_of(sql, job_id) == "pending"
    assert job_row(sql, job_id)["result"] is None


def test_shutdown_lets_a_running_job_finish_within_the_grace_period(
    db, user, sql, configure, background
) -> None:
    settings = configure(WORKER_SHUTDOWN_GRACE_SECONDS=30)
    job_id = new_job(db, user)
    started, release, shutting_down = threading.Event(), threading.Event(), threading.Event()

    class ObservedWorker(Worker):
        def _shutdown(self, report: DrainReport, deadline: float | None, budgeted: bool) -> None:
            shutting_down.set()
            super()._shutdown(report, deadline, budgeted)

    def handler(job: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        started.set()
        release.wait(PATIENCE)
        return {"finished": "in time"}

    stop = threading.Event()
    worker = ObservedWorker(db, settings, handler, concurrency=1)
    run = background(worker.run_forever, stop, unblock=(stop, release))
    assert started.wait(PATIENCE)

    stop.set()
    assert shutting_down.wait(PATIENCE), "the worker did not begin its shutdown"
    release.set()  # the job finishes while the worker waits out its grace period
    report = run.join()

    assert counts(report) == {"claimed": 1, "completed": 1}
    row = job_row(sql, job_id)
    assert (row["status"], row["result"]) == ("completed", {"finished": "in time"})
    assert "released" not in event_counts(sql, job_id)


def test_the_long_running_worker_recovers_and_runs_a_stalled_job(
    db, user, sql, configure, background
) -> None:
    settings = configure(STALLED_SWEEP_SECONDS=0.2)
    job_id = new_job(db, user)
    # A worker claimed it and crashed: its lease has run out.
    [claimed] = db.call("claim_jobs", worker_id="crashed-worker", max_jobs=1, lease_seconds=60)
    assert claimed["id"] == job_id
    sql.execute(
        "update public.processing_jobs set lease_expires_at = now() - interval '1 minute'"
        " where id = %s",
        (job_id,),
    )

    stop = threading.Event()
    worker = Worker(db, settings, returning({"rescued": True}), worker_id="healthy-worker")
    run = background(worker.run_forever, stop, unblock=(stop,))
    row = wait_for_status(sql, job_id, "completed")
    stop.set()
    report = run.join()

    assert report.stalled_recovered == 1
    assert report.completed == 1
    assert (row["attempts"], row["result"]) == (2, {"rescued": True})
    assert event_counts(sql, job_id) == {
        "upload_started": 1,
        "processing_started": 2,
        "stalled_recovered": 1,
        "completed": 1,
    }


def test_get_job_shows_stage_and_progress_while_the_job_runs(
    db, user, sql, configure, background
) -> None:
    settings = configure()
    job_id = new_job(db, user)
    reported, release = threading.Event(), threading.Event()

    def handler(job: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        ctx.report("extracting", 60)
        reported.set()
        release.wait(PATIENCE)
        return {"words": 3}

    stop = threading.Event()
    run = background(Worker(db, settings, handler).run_forever, stop, unblock=(stop, release))
    assert reported.wait(PATIENCE)

    client = load_target("jobs")
    headers = bearer(user)

    def running_view() -> dict[str, Any] | None:
        response = client.get(f"/jobs/{job_id}", headers=headers)
        assert response.status_code == 200, response.get_data(as_text=True)
        body: dict[str, Any] = response.get_json()
        return body if body["stage"] == "extracting" else None

    job = wait_until(running_view, "GET /jobs/{id} to show stage extracting")
    assert job["status"] == "processing"
    assert job["progress"] == 60
    assert job["result"] is None
    assert "lease_owner" not in job and "lease_expires_at" not in job

    release.set()
    wait_for_status(sql, job_id, "completed")
    stop.set()
    run.join()
    job = client.get(f"/jobs/{job_id}", headers=headers).get_json()
    assert (job["status"], job["progress"], job["result"]) == ("completed", 100, {"words": 3})


class FlakyDatabase(Database):
    """The real client, except that claim_jobs can be held at a gate and the first
    complete_jobs fails as if the database blinked."""

    def __init__(self, inner: Database) -> None:
        super().__init__(inner.transport)
        self.hold_claims = threading.Event()
        self.claim_held = threading.Event()
        self.open_gate = threading.Event()
        self.fail_next_complete = True

    def call(self, fn: str, /, **params: Any) -> Any:
        if fn == "claim_jobs" and self.hold_claims.is_set() and not self.open_gate.is_set():
            self.claim_held.set()
            self.open_gate.wait(PATIENCE)
        if fn == "complete_jobs" and self.fail_next_complete:
            self.fail_next_complete = False
            raise Unavailable("database unreachable (injected)")
        return super().call(fn, **params)


def test_a_failed_flush_does_not_leave_a_stopped_job_held_forever(
    db, user, sql, configure, background, database_url
) -> None:
    settings = configure(
        WORKER_POLL_SECONDS=30, STALLED_SWEEP_SECONDS=60, WORKER_SHUTDOWN_GRACE_SECONDS=0.3
    )
    cancelled = new_job(db, user, priority="high")
    completed = new_job(db, user)
    flaky = FlakyDatabase(db)
    started: set[str] = set()
    finished: set[str] = set()
    both_started, release = threading.Event(), threading.Event()
    lock = threading.Lock()

    class RecordingWorker(Worker):
        def _finish(self, ctx: JobContext, outcome: Any) -> None:
            super()._finish(ctx, outcome)
            with lock:
                finished.add(ctx.id)

    def handler(job: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        with lock:
            started.add(job["id"])
            if len(started) == 2:
                both_started.set()
        if job["id"] == cancelled:
            return run_until_stopped(ctx, [])
        release.wait(PATIENCE)
        return {"done": True}

    stop = threading.Event()
    worker = RecordingWorker(
        flaky, settings, handler, concurrency=3, batch_size=1, listen_url=database_url
    )
    run = background(worker.run_forever, stop, unblock=(stop, release, flaky.open_gate))
    assert both_started.wait(PATIENCE)
    # Hold the loop inside a claim, so that the cancel (a drop) and the completion are
    # flushed together, by the complete_jobs call that fails.
    flaky.hold_claims.set()
    assert flaky.claim_held.wait(PATIENCE)
    db.call("cancel_job", job_id=cancelled)
    wait_for_status(sql, cancelled, "cancelled")
    release.set()
    wait_until(lambda: finished >= {cancelled, completed}, "both outcomes to be recorded")
    flaky.open_gate.set()

    wait_for_status(sql, completed, "completed")  # sent again after the failed flush
    # Nothing is held any more: the idle worker waits on LISTEN (its poll wait is 30 s).
    idle = wait_until(lambda: listening(sql), "the worker to become idle and LISTEN", limit=10)
    stop.set()
    sql.execute("notify docflow_jobs")
    report = run.join()
    assert idle
    assert report.claimed == 2 and report.completed == 1 and report.errors == 1


# --- the real CLI worker -------------------------------------------------------------------


def _run_cli_until_then_sigterm(
    sql: psycopg.Connection, job_id: str, args: list[str], log_path: Path, **env: str
) -> tuple[int, str]:
    """`docflow ARGS` as a process with this test's environment, until the job completes;
    then SIGTERM. Its exit code and output."""
    docflow = REPO_ROOT / ".venv" / "bin" / "docflow"
    assert docflow.exists(), docflow
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [str(docflow), *args],
            env={**os.environ, "DOCFLOW_ENV_FILE": "", **env},
            cwd=log_path.parent,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until(
                lambda: status_of(sql, job_id) == "completed" or process.poll() is not None,
                f"docflow {args[0]} to complete the job",
                limit=60,
            )
            assert process.poll() is None, log_path.read_text()
            process.send_signal(signal.SIGTERM)
            try:
                code = process.wait(timeout=PATIENCE)
            except subprocess.TimeoutExpired:
                pytest.fail(
                    f"docflow {args[0]} did not exit after SIGTERM:\n" + log_path.read_text()
                )
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    return code, log_path.read_text()


def test_the_cli_worker_processes_an_upload_and_exits_cleanly_on_sigterm(
    db, user, sql, configure, tmp_path
) -> None:
    settings = configure(WORKER_POLL_SECONDS=0.2)
    answer = accept_upload(
        db, get_storage(), settings, user, data=TEXT, filename="report.txt", priority=None,
        idempotency_key=None,
    )  # fmt: skip
    assert os.environ["DATABASE_URL"] and os.environ["STORAGE_DIR"] == str(settings.storage_dir)
    code, log = _run_cli_until_then_sigterm(
        sql, answer["job_id"], ["worker", "--concurrency", "2"], tmp_path / "worker.log"
    )
    assert code == 0, log
    row = job_row(sql, answer["job_id"])
    assert row["status"] == "completed"
    assert row["result"]["words"] == len(TEXT.decode().split())
    assert row["result"]["summary"].startswith("Quarterly report for the harbour office.")


def test_the_cli_server_stops_its_worker_and_exits_cleanly_on_sigterm(
    db, user, sql, configure, tmp_path
) -> None:
    """`docflow serve --worker` (make dev) under a supervisor's SIGTERM: the worker stops as
    on Ctrl-C (its `worker stopped` line), and the process exits 0."""
    settings = configure(WORKER_POLL_SECONDS=0.2)
    answer = accept_upload(
        db, get_storage(), settings, user, data=TEXT, filename="report.txt", priority=None,
        idempotency_key=None,
    )  # fmt: skip
    code, log = _run_cli_until_then_sigterm(
        sql, answer["job_id"], ["serve", "--port", str(free_port()), "--worker"],
        tmp_path / "serve.log", LOG_LEVEL="INFO",
    )  # fmt: skip
    assert code == 0, log
    assert '"message": "worker stopped"' in log


# --- at the limits: budgets, hung handlers, a bad --concurrency ---------------------------


def test_a_job_that_outruns_the_budget_fails_recoverably_instead_of_being_released(
    db, user, sql, configure
) -> None:
    settings = configure(WORKER_SHUTDOWN_GRACE_SECONDS=0)
    job_id = new_job(db, user)
    release = threading.Event()

    def handler(job: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        release.wait(PATIENCE)
        return {}

    try:
        report = Worker(db, settings, handler, concurrency=1).drain(max_jobs=10, max_seconds=0.5)
    finally:
        release.set()
    assert report.claimed == 1 and report.retried == 1 and report.released == 0
    row = job_row(sql, job_id)
    assert (row["status"], row["error_code"], row["error_recoverable"], row["attempts"]) == (
        "pending",
        "budget_exceeded",
        True,
        1,
    )


def test_a_job_that_never_started_is_released_when_the_budget_ends(
    db, user, sql, configure
) -> None:
    settings = configure(WORKER_SHUTDOWN_GRACE_SECONDS=0)
    first, second = new_job(db, user, priority="high"), new_job(db, user)
    release = threading.Event()

    def handler(job: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        release.wait(PATIENCE)
        return {}

    try:  # one thread, two jobs claimed in one batch: the second never starts
        report = Worker(db, settings, handler, concurrency=1, batch_size=2).drain(10, 0.5)
    finally:
        release.set()
    assert report.released == 1
    row = job_row(sql, second)
    assert (row["status"], row["attempts"], row["error_code"]) == ("pending", 0, None)
    assert job_row(sql, first)["error_code"] == "budget_exceeded"


def test_jobs_queued_behind_a_hung_handler_are_given_back(
    db, user, sql, configure, background
) -> None:
    settings = configure(JOB_TIMEOUT_SECONDS=0.5)
    hung, queued = new_job(db, user, priority="high"), new_job(db, user)
    release, stop = threading.Event(), threading.Event()

    def handler(job: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        if job["id"] == hung:
            release.wait(PATIENCE)  # ignores ctx.check(): a truly stuck handler
        return {}

    worker = Worker(db, settings, handler, concurrency=1, batch_size=2)
    run = background(worker.run_forever, stop, unblock=(stop, release))
    # The hung job fails with `timeout`; the one queued behind it goes back to the queue
    # instead of being held (and heartbeated) forever by a worker that cannot run it.
    wait_until(lambda: job_row(sql, hung)["error_code"] == "timeout", "the timeout")
    wait_until(
        lambda: any(
            r[0] == "released"
            for r in sql.execute(
                "select event_type from document_processing_events where job_id = %s", (queued,)
            )
        ),
        "the queued job to be given back",
    )
    release.set()
    stop.set()
    run.join()
    assert job_row(sql, hung)["status"] == "failed"


def test_worker_refuses_a_bad_concurrency() -> None:
    result = subprocess.run(
        [".venv/bin/docflow", "worker", "--concurrency", "0"], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "between 1 and 256" in result.stderr
