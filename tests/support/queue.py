"""The queue's SQL transitions through the real client, as the service role, each under its SQL
function's name. Every one takes an explicit `now` (see `tests.support.times`).

The single-job functions (`complete_job`, `fail_job`) name one job by id and attempt; the batch
ones (`complete_jobs`, `fail_jobs`, `heartbeat_jobs`) take items, see `item()`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.platform.client import Database, UserContext
from tests.support.factories import create_upload

Items = list[dict[str, Any]]


def item(job_id: str, attempt: int = 1, **extra: Any) -> dict[str, Any]:
    """One job of a batch transition: its id and the attempt the worker holds."""
    return {"id": job_id, "attempt": attempt, **extra}


def claim_jobs(
    db: Database, worker: str = "w1", *, now: datetime, max_jobs: int = 10, **extra: Any
) -> Any:
    return db.call("claim_jobs", worker_id=worker, max_jobs=max_jobs, now=now, **extra)


def claimed_jobs(
    db: Database, user: UserContext, n: int, *, now: datetime, lease_seconds: int = 30
) -> list[dict[str, Any]]:
    """`n` new jobs of `user`, created and claimed by worker w1 at `now`."""
    for _ in range(n):
        create_upload(db, user, now=now)
    jobs: list[dict[str, Any]] = claim_jobs(db, now=now, max_jobs=n, lease_seconds=lease_seconds)
    assert len(jobs) == n
    return jobs


def fail_job(
    db: Database, job_id: str, worker: str, attempt: int, *, now: datetime, **extra: Any
) -> Any:
    """`fail_job` for one job; a recoverable io_error unless `extra` says otherwise."""
    params = {"error_code": "io_error", "error_message": "disk on fire", **extra}
    return db.call("fail_job", job_id=job_id, worker_id=worker, attempt=attempt, now=now, **params)


def heartbeat_jobs(db: Database, worker: str, jobs: Items, *, now: datetime, **extra: Any) -> Any:
    return db.call("heartbeat_jobs", worker_id=worker, jobs=jobs, now=now, **extra)


def complete_jobs(db: Database, worker: str, items: Items, *, now: datetime) -> Any:
    return db.call("complete_jobs", worker_id=worker, completions=items, now=now)


def fail_jobs(db: Database, worker: str, items: Items, *, now: datetime, **extra: Any) -> Any:
    return db.call("fail_jobs", worker_id=worker, failures=items, now=now, **extra)


def recover_stalled_jobs(db: Database, *, now: datetime, **extra: Any) -> Any:
    return db.call("recover_stalled_jobs", now=now, **extra)
