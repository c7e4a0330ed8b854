"""`uploads` function: POST /uploads (multipart `file`, optional `priority`)."""

from __future__ import annotations

import flask
import functions_framework

from shared import intake
from shared.auth import authenticate
from shared.client import get_db
from shared.config import get_settings
from shared.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from shared.http import Router, json_response
from shared.storage import get_storage

router = Router("uploads")
# Room for the multipart envelope and small form fields around the file itself.
MULTIPART_OVERHEAD = 64 * 1024


@router.route("POST", "/uploads")
@router.route("POST", "/")
def create_upload(request: flask.Request) -> flask.Response:
    settings = get_settings()
    user = authenticate(request.headers.get("Authorization"), settings)
    if request.mimetype != "multipart/form-data":
        raise UnsupportedMediaType("send the file as multipart/form-data", code="not_multipart")
    # A declared length over the limit is refused before reading a byte; a chunked body is
    # cut off by read_limited() as soon as it passes the limit.
    if (request.content_length or 0) > settings.max_upload_bytes + MULTIPART_OVERHEAD:
        raise PayloadTooLarge(
            f"the upload exceeds the limit of {settings.max_upload_bytes} bytes", code="too_large"
        )
    file = request.files.get("file")
    if file is None:
        raise BadRequest("multipart field 'file' is required", code="missing_file")
    data = intake.read_limited(file.stream, settings.max_upload_bytes)
    answer = intake.accept_upload(
        get_db(),
        get_storage(),
        settings,
        user,
        data=data,
        filename=file.filename,
        priority=request.form.get("priority"),
        idempotency_key=request.headers.get("Idempotency-Key"),
    )
    body = {k: answer[k] for k in ("document_id", "job_id", "status")}
    return json_response(body, 202)


@functions_framework.http
def uploads(request: flask.Request) -> flask.Response:
    return router.handle(request)
