"""`uploads` function: POST /uploads (multipart `file`, optional `priority` and `template`)."""

from __future__ import annotations

import flask
import functions_framework

from shared.documents import intake
from shared.platform import events
from shared.platform.app import App
from shared.platform.client import UserContext
from shared.platform.errors import (
    BadRequest,
    DocflowError,
    PayloadTooLarge,
    Unprocessable,
    UnsupportedMediaType,
)
from shared.platform.http import Router, json_body, json_response

router = Router("uploads")
# Room for the multipart envelope and small form fields around the file itself.
MULTIPART_OVERHEAD = 64 * 1024
# Refusals of an authenticated upload that operators see as `upload_rejected` events, by code.
REJECTED_STATUSES = frozenset({400, 409, 413, 415, 422, 429})


@router.route("POST", "/uploads", auth="user")
@router.route("POST", "/", auth="user")
def create_upload(request: flask.Request, app: App, user: UserContext) -> flask.Response:
    try:
        return _create_upload(request, app, user)
    except DocflowError as err:
        # No document or job exists, so no transition records it: an ad-hoc event does,
        # fire-and-forget (flushed when the request ends; a failure never reaches the caller).
        if err.status in REJECTED_STATUSES:
            events.record_processing_event(
                "upload_rejected",
                user_id=user.user_id,
                error_message=err.code,
                details={"status": err.status},
            )
        raise


def _create_upload(request: flask.Request, app: App, user: UserContext) -> flask.Response:
    settings = app.settings
    if request.mimetype == "application/json":
        return _register_stored(request, app, user)
    if request.mimetype != "multipart/form-data":
        raise UnsupportedMediaType(
            'send the file as multipart/form-data, or JSON {"storage_path": ...}',
            code="not_multipart",
        )
    # A declared length over the limit is refused before reading a byte; a chunked body is
    # cut off while it is read (werkzeug's max_content_length, then read_limited()).
    limit = settings.max_upload_bytes + MULTIPART_OVERHEAD
    if (request.content_length or 0) > limit:
        raise PayloadTooLarge(
            f"the upload exceeds the limit of {settings.max_upload_bytes} bytes", code="too_large"
        )
    request.max_content_length = limit
    file = request.files.get("file")
    if file is None:
        raise BadRequest("multipart field 'file' is required", code="missing_file")
    db = app.db
    priority = request.form.get("priority")
    template = request.form.get("template")
    idempotency_key = request.headers.get("Idempotency-Key")
    # Name, type and rate limit before a byte of the content is read or sniffed.
    intake.check_before_content(
        db,
        settings,
        user,
        filename=file.filename,
        declared_type=file.mimetype,
        priority=priority,
        idempotency_key=idempotency_key,
        template=template,
    )
    data = intake.read_limited(file.stream, settings.max_upload_bytes)
    answer = intake.accept_upload(
        db,
        app.storage,
        settings,
        user,
        data=data,
        filename=file.filename,
        declared_type=file.mimetype,
        priority=priority,
        idempotency_key=idempotency_key,
        template=template,
    )
    return _accepted(answer)


def _register_stored(request: flask.Request, app: App, user: UserContext) -> flask.Response:
    """The signed-upload flow: the object is already in the caller's folder of the bucket."""
    settings = app.settings
    body = json_body(request, optional=False)
    path = intake.check_stored_path(user, body.get("storage_path"))
    priority = body.get("priority")
    if priority is not None and not isinstance(priority, str):
        raise Unprocessable("priority must be a string", code="invalid_priority")
    filename = body.get("filename")
    if not isinstance(filename, str):
        filename = path.rsplit("/", 1)[-1]
    db = app.db
    idempotency_key = request.headers.get("Idempotency-Key")
    template = body.get("template")
    # Name and rate limit before the object is read or sniffed.
    intake.check_before_content(
        db,
        settings,
        user,
        filename=filename,
        priority=priority,
        idempotency_key=idempotency_key,
        template=template,
    )
    storage = app.storage
    path, data = intake.read_stored(storage, user, path, settings.max_stored_upload_bytes)
    answer = intake.accept_upload(
        db,
        storage,
        settings,
        user,
        data=data,
        filename=filename,
        priority=priority,
        idempotency_key=idempotency_key,
        stored_path=path,
        template=template,
    )
    return _accepted(answer)


def _accepted(answer: dict[str, object]) -> flask.Response:
    return json_response({k: answer[k] for k in ("document_id", "job_id", "status")}, 202)


@functions_framework.http
def uploads(request: flask.Request) -> flask.Response:
    return router.handle(request)
