"""Uploads and jobs made through the real `create_upload` SQL function, as the service role.

These skip HTTP and storage: the document row points at a storage path nobody wrote. Tests of
the upload route use `tests.support.http.post_upload` instead.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Any

from shared.platform.client import Database, UserContext


def create_upload(
    db: Database,
    user: UserContext,
    *,
    now: datetime | None = None,
    data: bytes | None = None,
    filename: str = "doc.txt",
    content_type: str = "text/plain",
    storage_path: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """`create_upload`'s answer (document_id, job_id, replayed, ...) for a new document.

    `now` None is the server's clock; the content (random unless given) only sets the size
    and the hash. `extra` passes through: priority, idempotency_key, rate_limit_per_minute,
    rate_burst...
    """
    data = data if data is not None else uuid.uuid4().bytes
    answer: dict[str, Any] = db.call(
        "create_upload",
        user_id=user.user_id,
        original_filename=filename,
        content_type=content_type,
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        storage_path=storage_path or f"{user.user_id}/{uuid.uuid4()}",
        now=now,
        **extra,
    )
    return answer


def new_job(db: Database, user: UserContext, **options: Any) -> str:
    """The id of a new pending job (a `create_upload` with these options)."""
    return str(create_upload(db, user, **options)["job_id"])
