"""Fault matrix, database rows: the worker's database connection is killed mid-job.

The fault is real: `pg_terminate_backend` from the superuser connection ends the worker's
server process, as a database restart, a pooler or an idle-session killer would. The worker runs
on the process-wide client (`db`, application_name `docflow`), as `docflow worker` does; the
test reads through `sql` (another application name), so every `docflow` backend of the test's
database is the worker's. Another worker or the scheduler's sweep is a second client with its
own pool (`other_db`).

The lease expiring is injected, not waited for: `recover_stalled_jobs(now => ...)` at a moment
just after the lease's end, which is what the sweep does once that moment comes. Handlers and
the test meet through events; the test waits on conditions, never on durations.

Expected for every kill: the worker survives (no crash, no hang), the job runs again and
completes once, and the first attempt's result is never recorded (no stale completion).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest

from shared.jobs.context import JobContext
from shared.jobs.worker import DrainReport, Worker
from shared.platform.client import Database, PostgresTransport, UserContext
from shared.platform.config import Settings, get_settings
from tests.support.env import configure as configure_env
from tests.support.factories import new_job
from tests.support.queue import recover_stalled_jobs
from tests.support.rows import event_counts, job_row
from tests.support.threads import Start, started_threads
from tests.support.waiting import PATIENCE, wait_until

FAST = {
    "HEARTBEAT_SECONDS": "0.2",
    "JOB_LEASE_SECONDS": "2",
    "PROGRESS_WRITE_SECONDS": "0",
    "WORKER_POLL_SECONDS": "0.1",
    # The worker never sweeps by itself here: the test sweeps, at an injected moment.
    "STALLED_SWEEP_SECONDS": "600",
    "JOB_TIMEOUT_SECONDS": "120",
    "WORKER_SHUTDOWN_GRACE_SECONDS": "30",
    "RETRY_INITIAL_SECONDS": "600",
    "RETRY_MAX_SECONDS": "600",
}
# Heartbeats too rare to happen while a test runs: the worker cannot learn by a heartbeat
# that it lost a job, so only the fenced completion (or the claim of the next attempt) can.
NO_HEARTBEATS = {"HEARTBEAT_SECONDS": "300", "JOB_LEASE_SECONDS": "600"}


# --- helpers ------------------------------------------------------------------------------


@pytest.fixture
def configure(db: Database, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Settings]:
    def apply(**overrides: Any) -> Settings:
        return configure_env(monkeypatch, **{**FAST, **overrides})

    return apply


@pytest.fixture
def user(make_user: Callable[..., UserContext]) -> UserContext:
    return make_user()


@pytest.fixture
def other_db(database_url: str) -> Iterator[Database]:
    """A second client with its own pool: another worker process, or the scheduler's sweep."""
    other = Database(PostgresTransport(database_url, get_settings()))
    try:
        yield other
    finally:
        other.close()


@pytest.fixture
def worker_logs(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> Any:
    """What the worker and the client log (shared.platform.log stops docflow propagating)."""
    monkeypatch.setattr(logging.getLogger("docflow"), "propagate", True)
    caplog.set_level(logging.INFO, logger="docflow")

    def messages() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name.startswith("docflow")]

    return messages


@pytest.fixture
def background() -> Iterator[Start]:
    with started_threads() as start:
        yield start


def worker_backends(sql: psycopg.Connection) -> list[int]:
    """The server processes of the worker's pool: this database's `docflow` connections."""
    rows = sql.execute(
        "select pid from pg_stat_activity where datname = current_database()"
        " and application_name = 'docflow' and pid <> pg_backend_pid()"
    ).fetchall()
    return [int(r[0]) for r in rows]


def terminate(sql: psycopg.Connection, pids: list[int]) -> None:
    """`pg_terminate_backend` each one, and wait until the server processes are gone."""
    assert pids, "nothing to kill: the worker holds no connection"
    for pid in pids:
        sql.execute("select pg_terminate_backend(%s)", (pid,))

    def gone() -> bool:
        row = sql.execute(
            "select count(*) from pg_stat_activity where pid = any(%s)", (pids,)
        ).fetchone()
        return row is not None and row[0] == 0

    wait_until(gone, f"backends {pids} to end")


def blocked_heartbeat(sql: psycopg.Connection) -> int | None:
    """The worker's backend that is running heartbeat_jobs and waiting for a row lock."""
    row = sql.execute(
        "select pid from pg_stat_activity where datname = current_database()"
        " and application_name = 'docflow' and wait_event_type = 'Lock'"
        " and query like '%heartbeat_jobs%'"
    ).fetchone()
    return int(row[0]) if row else None


def just_after_the_lease(sql: psycopg.Connection, job_id: str) -> datetime:
    """A moment one second after the job's lease ends: when the sweep finds it stalled."""
    lease: datetime | None = job_row(sql, job_id)["lease_expires_at"]
    assert lease is not None, "the job holds no lease"
    return lease + timedelta(seconds=1)


def completed_attempts(sql: psycopg.Connection, job_id: str) -> list[str]:
    """The attempt of each `completed` event of the job."""
    rows = sql.execute(
        "select details->>'attempt' from public.document_processing_events"
        " where job_id = %s and event_type = 'completed' order by id",
        (job_id,),
    ).fetchall()
    return [str(r[0]) for r in rows]


def assert_ran_again_and_completed_once(sql: psycopg.Connection, job_id: str) -> None:
    row = job_row(sql, job_id)
    assert (row["status"], row["attempts"], row["result"]) == ("completed", 2, {"attempt": 2})
    assert row["lease_owner"] is None and row["lease_expires_at"] is None
    assert event_counts(sql, job_id) == {
        "upload_started": 1,
        "processing_started": 2,
        "stalled_recovered": 1,
        "completed": 1,
    }
    assert completed_attempts(sql, job_id) == ["2"]


def wait_for_status(sql: psycopg.Connection, job_id: str, status: str) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        row = job_row(sql, job_id)
        return row if row["status"] == status else None

    row = wait_until(reached, f"job {job_id} to become {status}")
    assert row is not None
    return row


class Attempts:
    """A handler whose first attempt works until the test lets it return (ignoring
    ctx.check(), like a long step that never looks up) and whose later attempts return at once
    unless told to wait. Each returns {"attempt": n}."""

    def __init__(self, hold_second: bool = False) -> None:
        self.contexts: dict[int, JobContext] = {}
        self.started = {1: threading.Event(), 2: threading.Event()}
        self.release = {1: threading.Event(), 2: threading.Event()}
        self.returned = {1: threading.Event(), 2: threading.Event()}
        if not hold_second:
            self.release[2].set()

    @property
    def events(self) -> tuple[threading.Event, ...]:
        return (*self.release.values(),)

    def __call__(self, job: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        n = ctx.attempt
        self.contexts[n] = ctx
        self.started[n].set()
        try:
            self.release[n].wait(PATIENCE)
            return {"attempt": n}
        finally:
            self.returned[n].set()


# --- the rows -------------------------------------------------------------------------------


def test_connection_killed_between_claim_and_complete_another_worker_reruns_the_job(
    db, user, sql, configure, background, other_db, worker_logs
) -> None:
    """The first worker's connection dies while its handler runs. The lease expires, a second
    worker runs the job again, and the first worker's late completion (sent on a new
    connection after the dead one failed) is refused by the fenced complete_jobs."""
    settings = configure(**NO_HEARTBEATS)
    job_id = new_job(db, user)
    first = Attempts()
    # max_jobs=1: once it holds the job it claims nothing more, so it cannot take it back.
    worker = Worker(db, settings, first, worker_id="first-worker")
    run = background(worker.drain, 1, 60, unblock=first.events)
    assert first.started[1].wait(PATIENCE)

    terminate(sql, worker_backends(sql))
    assert recover_stalled_jobs(other_db, now=just_after_the_lease(sql, job_id)) == {
        "recovered": 1,
        "failed": 0,
        "cancelled": 0,
    }
    second = Worker(other_db, settings, Attempts(), worker_id="second-worker")
    second_report = second.drain(max_jobs=10, max_seconds=60)
    assert second_report.as_dict() == {**DrainReport().as_dict(), "claimed": 1, "completed": 1}
    assert job_row(sql, job_id)["result"] == {"attempt": 2}

    first.release[1].set()  # the first attempt finishes now, on a dead connection
    report = run.join()

    assert report.claimed == 1
    assert report.completed == 0
    assert report.lease_lost == 1  # the fenced completion refused it
    assert report.errors >= 1  # the first try to send it met the killed connection
    assert "finishing jobs failed; will retry" in worker_logs()
    assert "results discarded: lease lost" in worker_logs()
    assert_ran_again_and_completed_once(sql, job_id)


def test_connection_killed_between_claim_and_complete_the_same_worker_reruns_the_job(
    db, user, sql, configure, background, other_db
) -> None:
    """One long-running worker (the usual single-worker deployment): its connections die, the
    sweep finds the lease expired and the same worker claims the job again while its first
    attempt still runs. The claim tells the first attempt to stop; its result is never
    recorded; the second attempt stays held (heartbeats, shutdown) until it completes."""
    settings = configure(**NO_HEARTBEATS, PROGRESS_WRITE_SECONDS="0")
    job_id = new_job(db, user)
    handler = Attempts(hold_second=True)
    stop = threading.Event()
    shutting_down = threading.Event()

    class ObservedWorker(Worker):
        def _shutdown(self, report: DrainReport, deadline: float | None, budgeted: bool) -> None:
            shutting_down.set()
            super()._shutdown(report, deadline, budgeted)

    worker = ObservedWorker(db, settings, handler, worker_id="only-worker", concurrency=2)
    run = background(worker.run_forever, stop, unblock=(stop, *handler.events))
    assert handler.started[1].wait(PATIENCE)

    terminate(sql, worker_backends(sql))
    swept = recover_stalled_jobs(other_db, now=just_after_the_lease(sql, job_id))
    assert swept["recovered"] == 1

    # The worker's next claim fails on a dead connection, the one after takes the job again.
    assert handler.started[2].wait(PATIENCE), "the worker did not run the job again"
    first, second = handler.contexts[1], handler.contexts[2]
    wait_until(lambda: first.stopped, "the first attempt to be told to stop")
    assert first.stop_reason == "lost"
    assert not second.stopped

    handler.release[1].set()  # the stale attempt returns a result
    assert handler.returned[1].wait(PATIENCE)
    # The worker still holds the second attempt: its heartbeat writes the progress.
    second.report("analyzing", 50)
    wait_until(
        lambda: job_row(sql, job_id)["stage"] == "analyzing",
        "the heartbeat to write the second attempt's progress",
    )

    stop.set()
    assert shutting_down.wait(PATIENCE)
    handler.release[2].set()  # within the shutdown grace: the worker waits for it
    report = run.join()

    assert report.claimed == 2
    assert report.completed == 1
    assert report.lease_lost == 1
    assert report.errors >= 1
    assert report.released == 0
    assert_ran_again_and_completed_once(sql, job_id)


def test_connection_killed_during_a_heartbeat(
    db, user, sql, admin_database_url, configure, background, worker_logs
) -> None:
    """The heartbeat's own connection is killed while heartbeat_jobs runs (held on the job's
    row lock, so the kill lands inside the call). The heartbeat fails and the worker goes on;
    the lease expires, the worker learns it lost the attempt, runs the job again and
    completes it once; the first attempt's late result is never recorded."""
    settings = configure()
    job_id = new_job(db, user)
    handler = Attempts()
    stop = threading.Event()
    worker = Worker(db, settings, handler, worker_id="beating-worker", concurrency=2)
    run = background(worker.run_forever, stop, unblock=(stop, *handler.events))
    assert handler.started[1].wait(PATIENCE)

    # A second superuser session holds the job's row lock; `sql` watches and kills (outside a
    # transaction, so that each look at pg_stat_activity is fresh).
    with psycopg.connect(admin_database_url) as locker, locker.transaction():
        locker.execute("select 1 from public.processing_jobs where id = %s for update", (job_id,))
        pid = wait_until(lambda: blocked_heartbeat(sql), "a heartbeat to wait on the row lock")
        assert pid is not None
        terminate(sql, [pid])
        # The lease runs out while the worker cannot renew it: the sweep at that moment, in
        # the transaction that holds the lock (another session's sweep skips a locked row).
        swept = recover_stalled_jobs_as_superuser(locker, just_after_the_lease(sql, job_id))
        assert swept["recovered"] == 1

    wait_for_status(sql, job_id, "completed")
    first = handler.contexts[1]
    wait_until(lambda: first.stopped, "the first attempt to be told to stop")
    assert first.stop_reason == "lost"

    handler.release[1].set()  # its late result goes nowhere
    assert handler.returned[1].wait(PATIENCE)
    # The worker goes on: it runs a new job on its pool (the killed connection was dropped).
    another = new_job(db, user)
    wait_for_status(sql, another, "completed")
    stop.set()
    report = run.join()

    assert report.claimed == 3
    assert report.completed == 2
    assert report.lease_lost == 1
    logs = worker_logs()
    assert "database call failed" in logs  # the killed heartbeat_jobs (57P01)
    assert "heartbeat failed" in logs
    assert_ran_again_and_completed_once(sql, job_id)


def recover_stalled_jobs_as_superuser(sql: psycopg.Connection, now: datetime) -> dict[str, int]:
    """The sweep, in the transaction that holds the job's row lock (another client's sweep
    would skip the locked row)."""
    row = sql.execute("select public.recover_stalled_jobs(now => %s)", (now,)).fetchone()
    assert row is not None
    answer: dict[str, int] = row[0]
    return answer


def test_a_stage_reported_while_a_heartbeat_runs_is_written_next(
    db, user, sql, admin_database_url, configure, background
) -> None:
    """Not a fault of the matrix, found beside it: a stage reported while heartbeat_jobs is
    running (here held on the job's row lock) must still reach the row at the next progress
    write, not wait for the next full heartbeat (300 s here, longer than the test waits)."""
    settings = configure(HEARTBEAT_SECONDS="300", JOB_LEASE_SECONDS="600")
    job_id = new_job(db, user)
    go, second, reported, done = (threading.Event() for _ in range(4))

    def handler(job: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        go.wait(PATIENCE)
        ctx.report("reading", 10)  # due at once: PROGRESS_WRITE_SECONDS is 0
        second.wait(PATIENCE)
        ctx.report("extracting", 50)
        reported.set()
        done.wait(PATIENCE)
        return {"ok": True}

    stop = threading.Event()
    worker = Worker(db, settings, handler, worker_id="reporting-worker", concurrency=1)
    run = background(worker.run_forever, stop, unblock=(stop, go, second, done))
    wait_for_status(sql, job_id, "processing")
    with psycopg.connect(admin_database_url) as locker, locker.transaction():
        locker.execute("select 1 from public.processing_jobs where id = %s for update", (job_id,))
        go.set()
        wait_until(lambda: blocked_heartbeat(sql), "the heartbeat to wait on the row lock")
        second.set()
        assert reported.wait(PATIENCE)
    # The blocked call wrote `reading`; `extracting` follows at the next progress write.
    wait_until(lambda: job_row(sql, job_id)["stage"] == "extracting", "the second stage")
    assert job_row(sql, job_id)["progress"] == 50
    done.set()
    wait_for_status(sql, job_id, "completed")
    stop.set()
    run.join()
