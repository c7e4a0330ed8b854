"""`jobs` function: jobs and documents of the caller (owner or admin; RLS decides)."""

from __future__ import annotations

import flask
import functions_framework

from shared.documents import documents
from shared.documents.analysis import templates
from shared.jobs import queue
from shared.platform.app import App
from shared.platform.client import UserContext
from shared.platform.errors import NotFound, Unprocessable
from shared.platform.http import Router, json_body, json_response, path_uuid

router = Router("jobs")


@router.route("GET", "/jobs", auth="user")
def list_jobs(request: flask.Request, app: App, user: UserContext) -> flask.Response:
    try:
        limit = int(request.args.get("limit", "50"))
    except ValueError:
        raise Unprocessable("limit must be an integer", code="invalid_limit") from None
    page = queue.list_jobs(
        app.db.as_user(user),
        status=request.args.get("status") or None,
        limit=limit,
        cursor=request.args.get("cursor") or None,
    )
    return json_response(page)


@router.route("GET", "/jobs/{job_id}", auth="user")
def get_job(request: flask.Request, app: App, user: UserContext, job_id: str) -> flask.Response:
    job = queue.get_job(app.db.as_user(user), path_uuid(job_id, "job"))
    return json_response(job)


@router.route("POST", "/jobs/{job_id}/cancel", auth="user")
def cancel_job(request: flask.Request, app: App, user: UserContext, job_id: str) -> flask.Response:
    db = app.db
    job = queue.get_job(db.as_user(user), path_uuid(job_id, "job"))  # owner or admin, or 404
    answer = queue.cancel_job(db, job["id"])
    return json_response(answer, 200 if answer["status"] == "cancelled" else 202)


@router.route("POST", "/jobs/{job_id}/retry", auth="user")
def retry_job(request: flask.Request, app: App, user: UserContext, job_id: str) -> flask.Response:
    db = app.db
    job = queue.get_job(db.as_user(user), path_uuid(job_id, "job"))
    return json_response(queue.retry_job(db, app.settings, job["id"]), 202)


def _stored_file(
    app: App, user: UserContext, document_id: str, kind: str, content_type: str
) -> flask.Response:
    scope = app.db.as_user(user)
    path = documents.stored_file_path(scope, path_uuid(document_id, "document"), kind)
    try:
        data = app.storage.get(path)
    except NotFound:
        raise documents.not_ready(kind) from None
    return flask.Response(data, content_type=content_type)


@router.route("GET", "/documents/{document_id}/text", auth="user")
def get_document_text(
    request: flask.Request, app: App, user: UserContext, document_id: str
) -> flask.Response:
    return _stored_file(app, user, document_id, "text", "text/plain; charset=utf-8")


@router.route("GET", "/documents/{document_id}/markdown", auth="user")
def get_document_markdown(
    request: flask.Request, app: App, user: UserContext, document_id: str
) -> flask.Response:
    return _stored_file(app, user, document_id, "markdown", "text/markdown; charset=utf-8")


@router.route("POST", "/documents/{document_id}/reanalyze", auth="user")
def reanalyze_document(
    request: flask.Request, app: App, user: UserContext, document_id: str
) -> flask.Response:
    db = app.db
    template = templates.check_name(
        json_body(request).get("template"), app.settings.analysis_template
    )
    document = documents.get_document(db.as_user(user), path_uuid(document_id, "document"))
    answer = documents.reanalyze_document(db, app.settings, document["id"], template)
    return json_response(answer, 202)


@router.route("GET", "/templates", auth="user")
def list_templates(request: flask.Request, app: App, user: UserContext) -> flask.Response:
    return json_response(
        {"templates": templates.describe(), "default": app.settings.analysis_template}
    )


@router.route("GET", "/documents/{document_id}", auth="user")
def get_document(
    request: flask.Request, app: App, user: UserContext, document_id: str
) -> flask.Response:
    document = documents.get_document(app.db.as_user(user), path_uuid(document_id, "document"))
    return json_response(document)


@functions_framework.http
def jobs(request: flask.Request) -> flask.Response:
    return router.handle(request)
