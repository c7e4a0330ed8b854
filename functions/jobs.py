"""`jobs` function: jobs and documents of the caller (owner or admin; RLS decides)."""

from __future__ import annotations

import flask
import functions_framework

from shared.documents import documents
from shared.jobs import queue
from shared.platform.auth import authenticate
from shared.platform.client import get_db
from shared.platform.config import get_settings
from shared.platform.errors import NotFound, Unprocessable
from shared.platform.http import Router, json_response, path_uuid
from shared.platform.storage import get_storage

router = Router("jobs")


@router.route("GET", "/jobs")
def list_jobs(request: flask.Request) -> flask.Response:
    user = authenticate(request.headers.get("Authorization"), get_settings())
    try:
        limit = int(request.args.get("limit", "50"))
    except ValueError:
        raise Unprocessable("limit must be an integer", code="invalid_limit") from None
    page = queue.list_jobs(
        get_db().as_user(user),
        status=request.args.get("status") or None,
        limit=limit,
        cursor=request.args.get("cursor") or None,
    )
    return json_response(page)


@router.route("GET", "/jobs/{job_id}")
def get_job(request: flask.Request, job_id: str) -> flask.Response:
    user = authenticate(request.headers.get("Authorization"), get_settings())
    job = queue.get_job(get_db().as_user(user), path_uuid(job_id, "job"))
    return json_response(job)


@router.route("POST", "/jobs/{job_id}/cancel")
def cancel_job(request: flask.Request, job_id: str) -> flask.Response:
    user = authenticate(request.headers.get("Authorization"), get_settings())
    db = get_db()
    job = queue.get_job(db.as_user(user), path_uuid(job_id, "job"))  # owner or admin, or 404
    answer = queue.cancel_job(db, job["id"])
    return json_response(answer, 200 if answer["status"] == "cancelled" else 202)


@router.route("POST", "/jobs/{job_id}/retry")
def retry_job(request: flask.Request, job_id: str) -> flask.Response:
    settings = get_settings()
    user = authenticate(request.headers.get("Authorization"), settings)
    db = get_db()
    job = queue.get_job(db.as_user(user), path_uuid(job_id, "job"))
    return json_response(queue.retry_job(db, settings, job["id"]), 202)


@router.route("GET", "/documents/{document_id}/text")
def get_document_text(request: flask.Request, document_id: str) -> flask.Response:
    user = authenticate(request.headers.get("Authorization"), get_settings())
    path = documents.document_text_path(get_db().as_user(user), path_uuid(document_id, "document"))
    try:
        text = get_storage().get(path)
    except NotFound:
        raise NotFound("no text extracted for this document yet", code="text_not_ready") from None
    return flask.Response(text, mimetype="text/plain", content_type="text/plain; charset=utf-8")


@router.route("POST", "/documents/{document_id}/reanalyze")
def reanalyze_document(request: flask.Request, document_id: str) -> flask.Response:
    settings = get_settings()
    user = authenticate(request.headers.get("Authorization"), settings)
    db = get_db()
    document = documents.get_document(db.as_user(user), path_uuid(document_id, "document"))
    return json_response(documents.reanalyze_document(db, settings, document["id"]), 202)


@router.route("GET", "/documents/{document_id}")
def get_document(request: flask.Request, document_id: str) -> flask.Response:
    user = authenticate(request.headers.get("Authorization"), get_settings())
    document = documents.get_document(get_db().as_user(user), path_uuid(document_id, "document"))
    return json_response(document)


@functions_framework.http
def jobs(request: flask.Request) -> flask.Response:
    return router.handle(request)
