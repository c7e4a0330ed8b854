"""Upload intake: read the file within the size limit, check it, store it, create document + job.

Order matters for "a failure half-way leaves nothing": the object is stored under a
server-generated name first, then the document, job and `upload_started` event are created in
one database transaction; if that fails, the object is deleted again.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
import uuid
from typing import IO, Any

from shared.client import Database, UserContext
from shared.config import Settings
from shared.errors import BadRequest, PayloadTooLarge, Unprocessable, UnsupportedMediaType
from shared.log import get_logger
from shared.queue import PRIORITIES
from shared.sniff import sniff
from shared.storage import Storage

log = get_logger("intake")

_CHUNK = 64 * 1024


def read_limited(stream: IO[bytes], limit: int) -> bytes:
    """Read a stream, failing with 413 as soon as it passes `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = stream.read(_CHUNK)
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(
                f"the upload exceeds the limit of {limit} bytes", code="too_large"
            )
        chunks.append(chunk)
    return b"".join(chunks)


def sanitize_filename(name: str | None) -> str:
    """Keep the original name only as display metadata: no path parts, no control chars."""
    name = (name or "").replace("\\", "/").split("/")[-1]
    name = unicodedata.normalize("NFC", name)
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = re.sub(r"\s+", " ", name).strip().lstrip(".")
    return name[:255] or "upload"


def accept_upload(
    db: Database,
    storage: Storage,
    settings: Settings,
    user: UserContext,
    *,
    data: bytes,
    filename: str | None,
    priority: str | None,
    idempotency_key: str | None,
) -> dict[str, Any]:
    priority = (priority or "normal").strip().lower()
    if priority not in PRIORITIES:
        raise Unprocessable(
            f"priority must be one of {', '.join(PRIORITIES)}", code="invalid_priority"
        )
    if idempotency_key is not None and not (1 <= len(idempotency_key) <= 255):
        raise BadRequest(
            "Idempotency-Key must be 1 to 255 characters", code="invalid_idempotency_key"
        )
    if not data:
        raise BadRequest("the file is empty", code="empty_file")
    content_type = sniff(data)
    if content_type is None:
        raise UnsupportedMediaType(
            "unsupported file type (detected from its content)", code="unsupported_content"
        )
    object_name = f"{user.user_id}/{uuid.uuid4().hex}"
    storage.put(object_name, data, content_type)
    try:
        answer: dict[str, Any] = db.call(
            "create_upload",
            user_id=user.user_id,
            original_filename=sanitize_filename(filename),
            content_type=content_type,
            size_bytes=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            storage_path=object_name,
            priority=priority,
            idempotency_key=idempotency_key,
            max_attempts=settings.job_max_attempts,
            rate_limit_per_minute=settings.upload_rate_limit_per_minute,
        )
    except BaseException:
        _discard(storage, object_name)
        raise
    if answer.get("replayed"):
        _discard(storage, object_name)  # the first upload's object is the one in use
    log.info(
        "upload accepted",
        extra={
            "document_id": answer["document_id"],
            "job_id": answer["job_id"],
            "size_bytes": len(data),
        },
    )
    return answer


def _discard(storage: Storage, object_name: str) -> None:
    try:
        storage.delete(object_name)
    except Exception:
        log.error("could not delete orphan object", extra={"object": object_name})
