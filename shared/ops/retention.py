"""Retention: delete expired rows in batches within a time budget (`POST /retention`, daily).

`run()` deletes, in this order, expired processing events, health checks, resolved alerts,
finished jobs, (when RETENTION_DELETE_DOCUMENTS is on) old documents whose jobs are all
expired, and the analytics rollups past the windows that read them, each through
`retention_delete()` in SQL: at most RETENTION_BATCH_SIZE rows a call, one short
autocommitted statement each, so no writer ever waits long on it. Then it deletes
the stored files queued in `storage_deletions` (the files of every deleted document, however
it went: retention, or its user deleted from auth.users) and forgets them once storage has.

A run stops when its budget (RETENTION_MAX_SECONDS) is spent and reports `finished: false`;
the next run goes on where it stopped, since only the rows themselves say what is left.
A dry run counts what a run would delete and deletes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Any

from shared.platform import clock as platform_clock
from shared.platform.client import Database
from shared.platform.config import Settings
from shared.platform.errors import DocflowError
from shared.platform.log import get_logger
from shared.platform.storage import Storage

log = get_logger("retention")

# The tables in the order they are cleaned (jobs before documents: a document goes once its
# jobs have).
TABLES = (
    "document_processing_events",
    "service_health_checks",
    "alert_events",
    "processing_jobs",
    "documents",
    "analytics_rollups",
)
FILES_PER_CALL = 1000  # the Storage API deletes up to 1,000 objects a call


def keep_days(settings: Settings) -> dict[str, int]:
    """Days kept per table; 0 keeps the table forever."""
    return {
        "document_processing_events": settings.retention_events_days,
        "service_health_checks": settings.retention_health_checks_days,
        "alert_events": settings.retention_alerts_days,
        "processing_jobs": settings.retention_jobs_days,
        "documents": settings.retention_jobs_days if settings.retention_delete_documents else 0,
        # Daily buckets; the finer ones go after the windows that read them, whatever this says.
        "analytics_rollups": settings.retention_rollups_days,
    }


def run(
    db: Database,
    storage: Storage,
    settings: Settings,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
    max_seconds: float | None = None,
    clock: Callable[[], float] | None = None,
) -> dict[str, Any]:
    """One retention run; returns `{dry_run, finished, counts, keep_days, elapsed_ms}`.

    `counts` has the rows deleted (dry run: that would be) per table, and `stored_files`: the
    files deleted from storage (dry run: the files queued now; documents deleted by the run
    queue theirs too). `now` fixes the cutoffs (tests); `clock` measures the budget (default:
    the process clock, `shared.platform.clock`).
    """
    clock = clock or platform_clock.monotonic
    started = clock()
    deadline = started + (settings.retention_max_seconds if max_seconds is None else max_seconds)
    batch = settings.retention_batch_size
    keep = keep_days(settings)
    counts: dict[str, int] = {table: 0 for table in TABLES}
    counts["stored_files"] = 0
    finished = True

    for table in TABLES:
        # A table kept forever answers 0 at once (SQL decides, so the finer rollups still go).
        delete = partial(
            db.call, "retention_delete", target=table, keep_days=keep[table], batch_size=batch,
            now=now,
        )  # fmt: skip
        if dry_run:
            counts[table] = int(delete(dry_run=True)["deleted"])
            continue
        after = None  # where the previous batch stopped (the time of the newest row it took)
        while True:
            if clock() >= deadline:
                finished = False
                break
            answer = delete(after=after)
            deleted = int(answer["deleted"])
            counts[table] += deleted
            after = answer.get("last") or after
            if deleted < batch:
                break
        if not finished:
            break

    if dry_run:
        counts["stored_files"] = int(db.call("storage_deletions_count"))
    elif finished:
        finished = _delete_files(db, storage, counts, deadline, clock)

    report = {
        "dry_run": dry_run,
        "finished": finished,
        "counts": counts,
        "keep_days": keep,
        "elapsed_ms": round((clock() - started) * 1000, 1),
    }
    log.info(
        "retention run",
        extra={"dry_run": dry_run, "finished": finished, "counts": counts},
    )
    return report


def _delete_files(
    db: Database,
    storage: Storage,
    counts: dict[str, int],
    deadline: float,
    clock: Callable[[], float],
) -> bool:
    """Delete the queued files in storage, then their queue rows; False if stopped early."""
    while True:
        if clock() >= deadline:
            return False
        queued: list[dict[str, Any]] = db.call("storage_deletions_batch", batch_size=FILES_PER_CALL)
        if not queued:
            return True
        try:
            storage.delete_many([str(item["path"]) for item in queued])
        except DocflowError as exc:
            # The rows stay queued: the next run tries these files again.
            log.warning("retention could not delete stored files", extra={"code": exc.code})
            return False
        db.call("storage_deletions_done", ids=[int(item["id"]) for item in queued])
        counts["stored_files"] += len(queued)
