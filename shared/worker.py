"""The worker: claim due jobs in batches, process each, complete or fail it (fenced).

`drain()` is what the `process_jobs` function runs within its budget; `run_forever()` is the
long-running `docflow worker`.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from shared import events, pipeline
from shared.client import Database
from shared.config import Settings
from shared.errors import Conflict, DocflowError
from shared.log import get_logger, log_context
from shared.storage import Storage

log = get_logger("worker")


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class DrainReport:
    claimed: int = 0
    completed: int = 0
    failed: int = 0
    retried: int = 0
    lease_lost: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class Worker:
    def __init__(
        self, db: Database, storage: Storage, settings: Settings, worker_id: str | None = None
    ) -> None:
        self.db = db
        self.storage = storage
        self.settings = settings
        self.worker_id = worker_id or new_worker_id()

    def _fail(self, job: dict[str, Any], code: str, message: str, recoverable: bool) -> str:
        s = self.settings
        answer = self.db.call(
            "fail_job",
            job_id=job["id"],
            worker_id=self.worker_id,
            attempt=job["attempts"],
            error_code=code,
            error_message=message,
            recoverable=recoverable,
            retry_initial_seconds=s.retry_initial_seconds,
            retry_multiplier=s.retry_multiplier,
            retry_max_seconds=s.retry_max_seconds,
            retry_jitter=s.retry_jitter,
        )
        return str(answer["status"])

    def run_one(self, job: dict[str, Any], report: DrainReport) -> None:
        with log_context(job_id=job["id"], attempt=job["attempts"]):
            try:
                try:
                    result = pipeline.process(job, self.db, self.storage)
                except pipeline.JobError as err:
                    status = self._fail(job, err.code, err.message, err.recoverable)
                    log.info("job attempt failed", extra={"code": err.code, "status": status})
                except DocflowError as err:
                    # Database or storage trouble while processing: try again later.
                    status = self._fail(job, err.code, err.message, True)
                    log.warning("job attempt failed", extra={"code": err.code, "status": status})
                except Exception as exc:
                    status = self._fail(job, "internal_error", type(exc).__name__, True)
                    log.exception("job attempt crashed")
                else:
                    self.db.call(
                        "complete_job",
                        job_id=job["id"],
                        worker_id=self.worker_id,
                        attempt=job["attempts"],
                        result=result,
                    )
                    status = "completed"
            except Conflict:
                report.lease_lost += 1
                log.warning("lease lost; result discarded")
                return
            if status == "completed":
                report.completed += 1
            elif status == "pending":
                report.retried += 1
            else:
                report.failed += 1

    def drain(self, max_jobs: int, max_seconds: float) -> DrainReport:
        """Claim and run due jobs until none are due, max_jobs ran, or max_seconds passed."""
        report = DrainReport()
        deadline = time.monotonic() + max_seconds
        while report.claimed < max_jobs and time.monotonic() < deadline:
            batch = self.db.call(
                "claim_jobs",
                worker_id=self.worker_id,
                max_jobs=min(self.settings.worker_batch_size, max_jobs - report.claimed),
                lease_seconds=self.settings.job_lease_seconds,
            )
            if not batch:
                break
            report.claimed += len(batch)
            for job in batch:
                self.run_one(job, report)
        events.flush()
        return report

    def run_forever(self, stop: threading.Event) -> None:
        log.info("worker started", extra={"worker_id": self.worker_id})
        while not stop.is_set():
            try:
                report = self.drain(
                    self.settings.process_max_jobs, self.settings.process_max_seconds
                )
            except DocflowError as err:
                log.warning("worker cycle failed", extra={"code": err.code})
                report = DrainReport()
            if report.claimed == 0:
                stop.wait(self.settings.worker_poll_seconds)
        log.info("worker stopped", extra={"worker_id": self.worker_id})
