"""The worker engine: claim due jobs in batches, run them on a thread pool, heartbeat while they
run, finish them in batches (fenced), sweep stalled jobs, shut down cleanly.

One engine, two ways to run it:
- `Worker.run_forever(stop)`: the long-running `docflow worker`. Waits on LISTEN/NOTIFY
  (`docflow_jobs`) with a polling fallback, sweeps stalled jobs every STALLED_SWEEP_SECONDS,
  and on `stop` (SIGTERM) stops claiming, waits WORKER_SHUTDOWN_GRACE_SECONDS for running jobs
  and releases the rest.
- `Worker.drain(max_jobs, max_seconds)`: what `POST /process_jobs` runs: a stalled sweep, then
  claim and run until nothing is due or the budget is spent; leftovers are released.

The work itself is a handler (`shared.jobs.context.Handler`), passed in by whoever starts the
worker: the engine never imports the work it runs. A handler is `handler(job, ctx) -> result
dict`. It reports progress with
`ctx.report(stage, percent)` (written by the next heartbeat, throttled) and calls `ctx.check()`
where it can stop: that raises `JobStopped` once the job was cancelled, timed out or lost its
lease. It raises `JobError(code, message, recoverable)` to fail the attempt.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import psycopg

from shared.jobs.context import Handler, JobContext
from shared.platform import clock, events
from shared.platform.client import Database
from shared.platform.config import Settings
from shared.platform.errors import DocflowError, JobError, JobStopped
from shared.platform.log import get_logger, log_context

log = get_logger("worker")

CHANNEL = "docflow_jobs"
# Finished jobs are sent in batches: at most this long after the first of a batch finished.
FLUSH_DELAY = 0.05


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class DrainReport:
    claimed: int = 0
    completed: int = 0
    failed: int = 0
    retried: int = 0
    cancelled: int = 0
    lease_lost: int = 0
    released: int = 0
    stalled_recovered: int = 0
    stalled_failed: int = 0
    errors: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


# An outcome: ("complete", result) | ("fail", code, message, recoverable) | ("drop", reason)
Outcome = tuple[Any, ...]


def _completion(result: Any) -> Outcome:
    """A result the database can store (JSON without NaN or infinity), else a failed job, not
    retried: the handler would return the same again. Checked per job, so one bad result
    cannot fail the whole batch of completions it would be sent with."""
    try:
        json.dumps(result, allow_nan=False)
    except (TypeError, ValueError) as exc:
        log.error("job result is not JSON", extra={"error": str(exc)[:200]})
        return ("fail", "invalid_result", f"the job's result cannot be stored: {exc}", False)
    return ("complete", result)


class Worker:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        handler: Handler,
        *,
        worker_id: str | None = None,
        concurrency: int | None = None,
        batch_size: int | None = None,
        listen_url: str | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.handler = handler
        self.worker_id = worker_id or new_worker_id()
        self.concurrency = concurrency or settings.worker_concurrency
        self.batch_size = batch_size or settings.worker_batch_size
        self.listen_url = listen_url
        self._lock = threading.Lock()
        self._held: dict[str, JobContext] = {}
        self._outcomes: list[tuple[JobContext, Outcome]] = []
        self._wake = threading.Event()
        self._heartbeat_nudge = threading.Event()
        self._first_outcome_at = 0.0
        self._tasks = 0  # handler tasks submitted and not yet returned

    # --- the two ways to run ------------------------------------------------------------------

    def drain(self, max_jobs: int, max_seconds: float) -> DrainReport:
        """Sweep stalled jobs, then run due jobs until none are due or the budget is spent."""
        report = DrainReport()
        self._sweep(report)
        started = clock.monotonic()
        self._loop(
            threading.Event(),
            report,
            max_jobs=max_jobs,
            deadline=started + max_seconds,
            exit_when_idle=True,
            # Leave the last fifth of the budget (at most 10 s) to finish what is running:
            # a job claimed seconds before the end would only overrun and lose an attempt.
            claim_until=started + max_seconds - min(10.0, 0.2 * max_seconds),
        )
        events.flush()
        return report

    def run_forever(self, stop: threading.Event) -> DrainReport:
        log.info(
            "worker started", extra={"worker_id": self.worker_id, "concurrency": self.concurrency}
        )
        report = DrainReport()
        self._loop(stop, report, max_jobs=None, deadline=None, exit_when_idle=False)
        log.info("worker stopped", extra={"worker_id": self.worker_id, **report.as_dict()})
        return report

    # --- the loop -------------------------------------------------------------------------------

    def _loop(
        self,
        stop: threading.Event,
        report: DrainReport,
        *,
        max_jobs: int | None,
        deadline: float | None,
        exit_when_idle: bool,
        claim_until: float | None = None,
    ) -> None:
        executor = ThreadPoolExecutor(self.concurrency, thread_name_prefix="docflow-job")
        heartbeat_stop = threading.Event()
        heartbeater = threading.Thread(
            target=self._heartbeat_loop,
            args=(heartbeat_stop,),
            name="docflow-heartbeat",
            daemon=True,
        )
        heartbeater.start()
        listener = _Listener(self.listen_url) if self.listen_url and not exit_when_idle else None
        next_sweep = clock.monotonic() + self.settings.stalled_sweep_seconds
        try:
            while True:
                self._maybe_flush(report)
                left = math.inf if max_jobs is None else max_jobs - report.claimed
                if stop.is_set() or left <= 0:
                    break
                if deadline is not None and clock.monotonic() >= deadline:
                    break
                if not exit_when_idle and clock.monotonic() >= next_sweep:
                    self._sweep(report)
                    next_sweep = clock.monotonic() + self.settings.stalled_sweep_seconds
                with self._lock:
                    busy = self._tasks  # handlers running or queued (a stuck one stays busy)
                claimed: list[dict[str, Any]] = []
                may_claim = claim_until is None or clock.monotonic() < claim_until
                if busy < self.concurrency and may_claim:
                    self._flush(report)  # finish what is done before taking more
                    try:
                        claimed = self._claim(int(min(self.batch_size, left)))
                    except DocflowError as err:
                        report.errors += 1
                        log.warning("claim failed", extra={"code": err.code})
                        if exit_when_idle:
                            break
                        stop.wait(self.settings.worker_poll_seconds)
                        continue
                    report.claimed += len(claimed)
                    for job in claimed:
                        ctx = JobContext(job, self.db, self._heartbeat_nudge)
                        with self._lock:
                            older = self._held.get(ctx.id)
                            self._held[ctx.id] = ctx
                            self._tasks += 1
                        if older is not None:
                            self._superseded(older)
                        executor.submit(self._execute, ctx)
                if claimed:
                    continue
                with self._lock:
                    held, busy = len(self._held), self._tasks
                if held == 0 and busy == 0:
                    if exit_when_idle:
                        break
                    if listener is not None:
                        listener.wait(self.settings.worker_poll_seconds, stop)
                    else:
                        stop.wait(self.settings.worker_poll_seconds)
                else:
                    # Woken when a slot frees up; meanwhile finished jobs wait at most
                    # FLUSH_DELAY to be sent together.
                    self._wake.wait(FLUSH_DELAY)
                    self._wake.clear()
        finally:
            self._shutdown(report, deadline, budgeted=exit_when_idle)
            heartbeat_stop.set()
            self._heartbeat_nudge.set()
            executor.shutdown(wait=False, cancel_futures=True)
            heartbeater.join(5)
            if listener is not None:
                listener.close()

    def _claim(self, n: int) -> list[dict[str, Any]]:
        jobs: list[dict[str, Any]] = self.db.call(
            "claim_jobs",
            worker_id=self.worker_id,
            max_jobs=n,
            lease_seconds=self.settings.job_lease_seconds,
        )
        return jobs

    def _superseded(self, older: JobContext) -> None:
        """This worker claimed a job again while an older attempt of it still runs here: that
        attempt's lease ran out (the sweep gave the job back, e.g. after the database was
        unreachable for longer than the lease), so it is lost. Stop it and never send its
        result; the new attempt takes its place in `_held`."""
        if older.finished:
            return  # its outcome is on its way; the fenced complete/fail refuses it
        older.stop("lost")
        self._finish(older, ("drop", "lost"))
        log.info(
            "job stopped",
            extra={"job_id": older.id, "attempt": older.attempt, "reason": "lost"},
        )

    def _forget(self, ctx: JobContext) -> None:
        """Stop holding `ctx` (the caller holds `_lock`), unless a newer attempt of the same job
        has taken its place."""
        if self._held.get(ctx.id) is ctx:
            del self._held[ctx.id]

    def _sweep(self, report: DrainReport) -> None:
        try:
            answer = self.db.call("recover_stalled_jobs")
        except DocflowError as err:
            report.errors += 1
            log.warning("stalled sweep failed", extra={"code": err.code})
            return
        report.stalled_recovered += answer.get("recovered", 0)
        report.stalled_failed += answer.get("failed", 0)
        report.cancelled += answer.get("cancelled", 0)
        if any(answer.values()):
            log.info("stalled jobs swept", extra=answer)

    def _shutdown(self, report: DrainReport, deadline: float | None, budgeted: bool) -> None:
        """Stop claiming: wait (within the grace period) for held jobs, then give back the rest.

        Jobs that never started are released (the attempt does not count). Jobs still running
        are released too when the worker is shutting down; when a `process_jobs` budget ran
        out (`budgeted`), they fail recoverably (`budget_exceeded`), so a job that can never fit
        in the budget ends failed after its attempts instead of being released forever.
        """
        grace_end = clock.monotonic() + self.settings.worker_shutdown_grace_seconds
        if deadline is not None:
            grace_end = min(grace_end, max(deadline, clock.monotonic()) + 1.0)
        while True:
            self._flush(report)
            with self._lock:
                if not self._held:
                    return
            if clock.monotonic() >= grace_end:
                break
            self._wake.wait(0.1)
            self._wake.clear()
        with self._lock:
            left = [ctx for ctx in self._held.values() if not ctx.finished]
        give_back = [c for c in left if not (budgeted and c.started is not None)]
        for ctx in left:
            if ctx not in give_back:
                ctx.stop("budget_exceeded")
                self._finish(
                    ctx, ("fail", "budget_exceeded", "the job outran the process_jobs budget", True)
                )
        if give_back:
            try:
                report.released += self._give_back(give_back, "shutdown")
            except DocflowError as err:
                report.errors += 1
                log.warning(
                    "release failed; the stalled sweep will recover the jobs",
                    extra={"code": err.code, "jobs": len(give_back)},
                )
        self._flush(report)

    # --- running one job ------------------------------------------------------------------------

    def _execute(self, ctx: JobContext) -> None:
        try:
            if not ctx.stopped:
                self._run_handler(ctx)
        finally:
            with self._lock:
                self._tasks -= 1
                free = self._tasks < self.concurrency
            if free:
                self._wake.set()

    def _run_handler(self, ctx: JobContext) -> None:
        ctx.started = clock.monotonic()
        with log_context(job_id=ctx.id, attempt=ctx.attempt):
            outcome: Outcome
            try:
                result = self.handler(ctx.job, ctx)
            except JobStopped as stopped:
                outcome = ("drop", str(stopped))
            except JobError as err:
                outcome = ("fail", err.code, err.message, err.recoverable)
            except DocflowError as err:
                # Database or storage trouble while processing: try again later.
                outcome = ("fail", err.code, err.message, True)
            except Exception as exc:
                log.exception("job crashed")
                outcome = ("fail", "internal_error", type(exc).__name__, True)
            else:
                outcome = _completion(result)
            self._finish(ctx, outcome)

    def _finish(self, ctx: JobContext, outcome: Outcome) -> None:
        with self._lock:
            if ctx.finished:
                return
            ctx.finished = True
            if not self._outcomes:
                self._first_outcome_at = clock.monotonic()
            self._outcomes.append((ctx, outcome))
            everything_done = len(self._outcomes) >= len(self._held)
        if everything_done:
            self._wake.set()

    def _maybe_flush(self, report: DrainReport) -> None:
        with self._lock:
            pending = len(self._outcomes)
            due = pending and (
                pending >= len(self._held)
                or clock.monotonic() - self._first_outcome_at >= FLUSH_DELAY
            )
        if due:
            self._flush(report)

    def _flush(self, report: DrainReport) -> None:
        """Send finished outcomes: one complete_jobs and one fail_jobs call per flush."""
        with self._lock:
            outcomes, self._outcomes = self._outcomes, []
        if not outcomes:
            return
        completions = [
            {"id": c.id, "attempt": c.attempt, "result": o[1]}
            for c, o in outcomes
            if o[0] == "complete"
        ]
        failures = [
            {
                "id": c.id,
                "attempt": c.attempt,
                "error_code": o[1],
                "error_message": o[2],
                "recoverable": o[3],
            }
            for c, o in outcomes
            if o[0] == "fail"
        ]
        try:
            if completions:
                done = self.db.call(
                    "complete_jobs", worker_id=self.worker_id, completions=completions
                )
                report.completed += len(done["completed"])
                report.cancelled += len(done["cancelled"])
                report.lease_lost += len(done["lost"])
                if done["lost"]:
                    log.warning("results discarded: lease lost", extra={"jobs": done["lost"]})
            if failures:
                s = self.settings
                answer = self.db.call(
                    "fail_jobs",
                    worker_id=self.worker_id,
                    failures=failures,
                    retry_initial_seconds=s.retry_initial_seconds,
                    retry_multiplier=s.retry_multiplier,
                    retry_max_seconds=s.retry_max_seconds,
                    retry_jitter=s.retry_jitter,
                )
                for job_id, state in answer["jobs"].items():
                    status = state["status"]
                    if status == "pending":
                        report.retried += 1
                    elif status == "cancelled":
                        report.cancelled += 1
                    else:
                        report.failed += 1
                    log.info("job attempt failed", extra={"job_id": job_id, "status": status})
                report.lease_lost += len(answer["lost"])
        except DocflowError as err:
            # Keep them and try again next time round; if the database stays away, the leases
            # expire and the sweep hands the jobs to someone else (our late finish is then
            # fenced off and counted as lease_lost).
            report.errors += 1
            log.warning("finishing jobs failed; will retry", extra={"code": err.code})
            with self._lock:
                self._outcomes[:0] = [(c, o) for c, o in outcomes if o[0] != "drop"]
                for ctx, outcome in outcomes:
                    if outcome[0] == "drop":
                        self._forget(ctx)
            self._count_drops(report, outcomes)
            time.sleep(min(1.0, self.settings.worker_poll_seconds))
            return
        self._count_drops(report, outcomes)
        with self._lock:
            for ctx, _ in outcomes:
                self._forget(ctx)

    @staticmethod
    def _count_drops(report: DrainReport, outcomes: list[tuple[JobContext, Outcome]]) -> None:
        """Jobs a heartbeat stopped: cancelled by the user, or lost to another attempt."""
        for _, outcome in outcomes:
            if outcome[0] == "drop" and outcome[1] == "cancelled":
                report.cancelled += 1
            elif outcome[0] == "drop" and outcome[1] == "lost":
                report.lease_lost += 1

    # --- heartbeats and timeouts ------------------------------------------------------------------

    def _heartbeat_loop(self, stop: threading.Event) -> None:
        s = self.settings
        tick = min(1.0, s.heartbeat_seconds, max(s.progress_write_seconds, 0.05))
        while not stop.is_set():
            self._heartbeat_nudge.wait(tick)
            self._heartbeat_nudge.clear()
            if stop.is_set():
                return
            try:
                self._heartbeat_once()
            except DocflowError as err:  # the database is away: the next beat tries again
                log.warning("heartbeat failed", extra={"code": err.code})
            except Exception:  # a heartbeat must never kill the worker
                log.warning("heartbeat failed", exc_info=True)

    def _heartbeat_once(self) -> None:
        s = self.settings
        now = clock.monotonic()
        with self._lock:
            held = [c for c in self._held.values() if not c.finished]
        due = []
        stale = []
        for ctx in held:
            if ctx.started is None and now - ctx.claimed_at > s.job_timeout_seconds:
                stale.append(ctx)  # every thread is stuck: give it back rather than hoard it
                continue
            if ctx.started is not None and now - ctx.started > s.job_timeout_seconds:
                ctx.stop("timeout")
                self._finish(
                    ctx,
                    (
                        "fail",
                        "timeout",
                        f"the job ran longer than {s.job_timeout_seconds:g} s",
                        False,
                    ),
                )
                continue
            since = now - ctx.last_beat
            if since >= s.heartbeat_seconds or (ctx.dirty and since >= s.progress_write_seconds):
                due.append(ctx)
        if stale:
            self._give_back(stale, "queued_too_long")
        if not due:
            return
        sent = [(c.stage, c.progress) for c in due]
        answer = self.db.call(
            "heartbeat_jobs",
            worker_id=self.worker_id,
            jobs=[
                {"id": c.id, "attempt": c.attempt, "stage": stage, "progress": progress}
                for c, (stage, progress) in zip(due, sent, strict=True)
            ],
            lease_seconds=s.job_lease_seconds,
        )
        for ctx, (stage, progress) in zip(due, sent, strict=True):
            ctx.last_beat = now
            # A stage reported while the call ran is still to be written (at the next
            # progress write, not at the next full heartbeat).
            ctx.dirty = (ctx.stage, ctx.progress) != (stage, progress)
        by_id = {c.id: c for c in due}
        for reason in ("cancelled", "lost"):
            for job_id in answer[reason]:
                ctx = by_id[job_id]
                ctx.stop(reason)
                self._finish(ctx, ("drop", reason))
                log.info("job stopped", extra={"job_id": job_id, "reason": reason})

    def _give_back(self, contexts: list[JobContext], reason: str) -> int:
        """Release held jobs (the attempt does not count) and forget them. They are forgotten
        even when the release fails: their leases then run out and the stalled sweep returns
        them to the queue. Returns how many the database released."""
        with self._lock:
            contexts = [c for c in contexts if not c.finished]
            for ctx in contexts:
                ctx.finished = True
        for ctx in contexts:
            ctx.stop(reason)
        if not contexts:
            return 0
        try:
            released: int = self.db.call(
                "release_jobs",
                worker_id=self.worker_id,
                jobs=[{"id": c.id, "attempt": c.attempt} for c in contexts],
            )
        finally:
            with self._lock:
                for ctx in contexts:
                    self._forget(ctx)
        log_fn = log.info if reason == "shutdown" else log.warning
        log_fn("jobs given back", extra={"reason": reason, "jobs": len(contexts)})
        return released


class _Listener:
    """LISTEN docflow_jobs on a dedicated connection; polling stays the fallback."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.conn: psycopg.Connection[Any] | None = None

    def _connect(self) -> psycopg.Connection[Any] | None:
        if self.conn is None or self.conn.closed:
            try:
                self.conn = psycopg.connect(self.url, autocommit=True, connect_timeout=5)
                self.conn.execute(f"listen {CHANNEL}")
            except psycopg.Error:
                self.conn = None
        return self.conn

    def wait(self, timeout: float, stop: threading.Event) -> None:
        conn = self._connect()
        if conn is None:
            stop.wait(timeout)
            return
        # Wait in short slices so that a stop (SIGTERM) is seen within half a second.
        deadline = clock.monotonic() + timeout
        try:
            while not stop.is_set():
                left = deadline - clock.monotonic()
                if left <= 0:
                    return
                if any(True for _ in conn.notifies(timeout=min(left, 0.5), stop_after=1)):
                    return
        except psycopg.Error:
            self.close()
            stop.wait(min(timeout, 1.0))

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(psycopg.Error):
                self.conn.close()
            self.conn = None
