"""What a job handler sees: its job, progress reporting and a stop signal.

Its own module so that the work (e.g. `shared.documents.pipeline`) and the engine that runs it
(`shared.jobs.worker`) both depend on it, and not on each other.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from shared.platform import clock
from shared.platform.client import Database
from shared.platform.errors import JobStopped


class JobContext:
    """What a handler sees of its job: progress reporting and a stop signal."""

    def __init__(self, job: dict[str, Any], db: Database, nudge: threading.Event) -> None:
        self.job = job
        self.id: str = job["id"]
        self.attempt: int = job["attempts"]
        self.db = db
        self._nudge = nudge  # wakes the worker's heartbeat to write the progress
        self._stop = threading.Event()
        self.stop_reason: str | None = None
        self.stage: str | None = None
        self.progress = 0
        self.dirty = False
        self.started: float | None = None  # monotonic, when the handler began
        self.claimed_at = clock.monotonic()
        self.last_beat = self.claimed_at  # the claim set the lease
        self.finished = False

    def report(self, stage: str, progress: int) -> None:
        """Record the stage and percent done; the heartbeat writes it (throttled)."""
        self.stage, self.progress, self.dirty = stage, max(0, min(100, progress)), True
        self._nudge.set()
        self.check()

    def check(self) -> None:
        if self._stop.is_set():
            raise JobStopped(self.stop_reason or "stopped")

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def stop(self, reason: str) -> None:
        if not self._stop.is_set():
            self.stop_reason = reason
            self._stop.set()


# A handler runs one job: `handler(job, ctx) -> result dict`; it raises JobError to fail it.
Handler = Callable[[dict[str, Any], JobContext], dict[str, Any]]
