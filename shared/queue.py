"""The job queue facade: Python names for the queue's SQL functions, and the public job shape."""

from __future__ import annotations

from typing import Any

from shared.client import Database, UserScope
from shared.errors import NotFound

PRIORITIES = ("low", "normal", "high")


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


def get_document(scope: Database | UserScope, document_id: str) -> dict[str, Any]:
    row = scope.call("get_document", document_id=document_id)
    if row is None:
        raise NotFound("document not found", code="document_not_found")
    latest = row.pop("latest_job", None)
    return {
        "id": row["id"],
        "original_filename": row["original_filename"],
        "content_type": row["content_type"],
        "size_bytes": row["size_bytes"],
        "sha256": row["sha256"],
        "created_at": row["created_at"],
        "latest_job": public_job(latest) if latest else None,
    }
