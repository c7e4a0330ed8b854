"""The job queue facade: Python names for the queue's job functions, and the public job shape.

Documents (reads, stored text, reanalysis) are in `shared.documents.documents`.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from shared.platform import safejson
from shared.platform.client import Database, UserScope
from shared.platform.config import Settings
from shared.platform.errors import NotFound, Unprocessable

PRIORITIES = ("low", "normal", "high")
STATUSES = ("pending", "processing", "completed", "failed", "cancelled")


def public_job(row: dict[str, Any]) -> dict[str, Any]:
    """The API's view of a job row (no lease internals)."""
    error = None
    if row.get("error_code"):
        error = {
            "code": row["error_code"],
            "message": row.get("error_message"),
            "recoverable": row.get("error_recoverable"),
        }
    return {
        "id": row["id"],
        "document_id": row["document_id"],
        "status": row["status"],
        "priority": row["priority"],
        "stage": row.get("stage"),
        "progress": row.get("progress", 0),
        "attempts": row.get("attempts", 0),
        "max_attempts": row.get("max_attempts"),
        "source": row.get("source"),
        "run_at": row.get("run_at"),
        "cancel_requested": row.get("cancel_requested_at") is not None,
        "error": error,
        "result": row.get("result"),
        "created_at": row.get("created_at"),
        "started_at": row.get("started_at"),
        "completed_at": row.get("completed_at"),
        "duration_ms": row.get("duration_ms"),
        "updated_at": row.get("updated_at"),
    }


def get_job(scope: Database | UserScope, job_id: str) -> dict[str, Any]:
    row = scope.call("get_job", job_id=job_id)
    if row is None:
        raise NotFound("job not found", code="job_not_found")
    return public_job(row)


def list_jobs(
    scope: UserScope, *, status: str | None, limit: int, cursor: str | None
) -> dict[str, Any]:
    """A page of the caller's jobs, newest first; `next_cursor` continues after the last one."""
    if status is not None and status not in STATUSES:
        raise Unprocessable(f"status must be one of {', '.join(STATUSES)}", code="invalid_status")
    if not 1 <= limit <= 200:
        raise Unprocessable("limit must be between 1 and 200", code="invalid_limit")
    before_created_at, before_id = _decode_cursor(cursor) if cursor else (None, None)
    rows = scope.call(
        "list_jobs",
        status=status,
        max_rows=limit,
        before_created_at=before_created_at,
        before_id=before_id,
    )
    jobs = [public_job(r) for r in rows]
    next_cursor = None
    if len(rows) == limit:
        last = rows[-1]
        next_cursor = _encode_cursor(last["created_at"], last["id"])
    return {"jobs": jobs, "next_cursor": next_cursor}


def _encode_cursor(created_at: str, job_id: str) -> str:
    raw = json.dumps([created_at, job_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# Ours are about 110 characters; a longer one is refused before it is decoded.
MAX_CURSOR_LENGTH = 512


def _decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        if len(cursor) > MAX_CURSOR_LENGTH:
            raise ValueError("cursor too long")
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        # safejson: nesting like `[[[[...` is a ValueError here, not a RecursionError (500).
        created_at, job_id = safejson.loads(raw, max_depth=1)
        moment = datetime.fromisoformat(created_at)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        # Re-emitted in UTC, so Postgres parses exactly what Python did.
        return moment.astimezone(UTC).isoformat(), str(uuid.UUID(str(job_id)))
    except (ValueError, TypeError, binascii.Error):
        raise Unprocessable("invalid cursor", code="invalid_cursor") from None


def cancel_job(db: Database, job_id: str) -> dict[str, Any]:
    answer: dict[str, Any] = db.call("cancel_job", job_id=job_id)
    return answer


def retry_job(db: Database, settings: Settings, job_id: str) -> dict[str, Any]:
    answer: dict[str, Any] = db.call(
        "retry_job",
        job_id=job_id,
        max_attempts=settings.job_max_attempts,
        rate_limit_per_minute=settings.upload_rate_limit_per_minute,
        rate_burst=settings.upload_rate_burst,
    )
    return answer


def enqueue_jobs(
    db: Database, jobs: list[dict[str, Any]], *, source: str = "reanalyze"
) -> list[str]:
    """Bulk enqueue for existing documents (benchmarks, backfills): no HTTP rate limit."""
    ids: list[str] = db.call("enqueue_jobs", jobs=jobs, source=source)
    return ids


def queue_health(
    scope: Database | UserScope, settings: Settings, *, now: datetime | None = None
) -> dict[str, Any]:
    health: dict[str, Any] = scope.call(
        "queue_health",
        window_seconds=settings.queue_window_seconds,
        degraded_success_rate=settings.queue_degraded_success_rate,
        unhealthy_success_rate=settings.queue_unhealthy_success_rate,
        degraded_stalled=settings.queue_degraded_stalled,
        unhealthy_stalled=settings.queue_unhealthy_stalled,
        degraded_backlog=settings.queue_degraded_backlog,
        degraded_oldest_seconds=settings.queue_degraded_oldest_seconds,
        now=now,
    )
    return health
