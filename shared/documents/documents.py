"""Documents: the public document shape, where its extracted text is, and reanalysis.

Python names for the document SQL functions (`get_document`, `reanalyze_document`); a
document's jobs are `shared.jobs.queue`'s.
"""

from __future__ import annotations

from typing import Any

from shared.jobs.queue import public_job
from shared.platform.client import Database, UserScope
from shared.platform.config import Settings
from shared.platform.errors import NotFound


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


def document_text_path(scope: UserScope, document_id: str) -> str:
    """Where the document's extracted text is stored (404 until a job extracted it)."""
    row = scope.call("get_document", document_id=document_id)
    if row is None:
        raise NotFound("document not found", code="document_not_found")
    if not row.get("text_path"):
        raise NotFound("no text extracted for this document yet", code="text_not_ready")
    return str(row["text_path"])


def document_markdown_path(scope: UserScope, document_id: str) -> str:
    """Where the document's Markdown is stored (404 until a job made it; documents processed
    before Markdown existed have none until reanalyzed)."""
    row = scope.call("get_document", document_id=document_id)
    if row is None:
        raise NotFound("document not found", code="document_not_found")
    if not row.get("markdown_path"):
        raise NotFound(
            "no Markdown for this document yet (reanalyze a document processed before it existed)",
            code="markdown_not_ready",
        )
    return str(row["markdown_path"])


def reanalyze_document(db: Database, settings: Settings, document_id: str) -> dict[str, Any]:
    answer: dict[str, Any] = db.call(
        "reanalyze_document",
        document_id=document_id,
        max_attempts=settings.job_max_attempts,
        min_interval_seconds=settings.reanalyze_interval_seconds,
        rate_limit_per_minute=settings.upload_rate_limit_per_minute,
    )
    return answer
