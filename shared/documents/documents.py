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


# The files a job stores for a document: the column that holds the path, and the 404 until
# there is one (documents processed before Markdown existed have none until reanalyzed).
_STORED = {
    "text": ("text_path", "text_not_ready", "no text extracted for this document yet"),
    "markdown": (
        "markdown_path",
        "markdown_not_ready",
        "no Markdown for this document yet (reanalyze a document processed before it existed)",
    ),
}


def not_ready(kind: str) -> NotFound:
    _, code, message = _STORED[kind]
    return NotFound(message, code=code)


def stored_file_path(scope: UserScope, document_id: str, kind: str) -> str:
    """Where the document's `text` or `markdown` is stored (404 until a job wrote it)."""
    row = scope.call("get_document", document_id=document_id)
    if row is None:
        raise NotFound("document not found", code="document_not_found")
    column = _STORED[kind][0]
    if not row.get(column):
        raise not_ready(kind)
    return str(row[column])


def reanalyze_document(
    db: Database, settings: Settings, document_id: str, template: str
) -> dict[str, Any]:
    """A new job for the document with `template` (checked by the caller); at most once an
    interval per document and template."""
    answer: dict[str, Any] = db.call(
        "reanalyze_document",
        document_id=document_id,
        options={"template": template},
        max_attempts=settings.job_max_attempts,
        min_interval_seconds=settings.reanalyze_interval_seconds,
        rate_limit_per_minute=settings.upload_rate_limit_per_minute,
        rate_burst=settings.upload_rate_burst,
    )
    return answer
