"""`uploads` function: POST /uploads (multipart `file`, optional `priority`)."""

from __future__ import annotations

import flask
import functions_framework

from shared import intake
from shared.auth import authenticate
from shared.client import get_db
from shared.config import get_settings
from shared.errors import BadRequest, UnsupportedMediaType
from shared.http import Router, json_response
from shared.storage import get_storage

router = Router("uploads")


@router.route("POST", "/uploads")
@router.route("POST", "/")
def create_upload(request: flask.Request) -> flask.Response:
    settings = get_settings()
    user = authenticate(request.headers.get("Authorization"), settings)
    if request.mimetype != "multipart/form-data":
        raise UnsupportedMediaType("send the file as multipart/form-data", code="not_multipart")
    # Werkzeug stops reading past this many bytes (413) instead of buffering a huge body.
    request.max_content_length = settings.max_upload_bytes + 64 * 1024
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
