"""`jobs` function: jobs and documents of the caller (owner or admin; RLS decides)."""

from __future__ import annotations

import flask
import functions_framework

from shared import queue
from shared.auth import authenticate
from shared.client import get_db
from shared.config import get_settings
from shared.http import Router, json_response, path_uuid

router = Router("jobs")


@router.route("GET", "/jobs/{job_id}")
def get_job(request: flask.Request, job_id: str) -> flask.Response:
    user = authenticate(request.headers.get("Authorization"), get_settings())
    job = queue.get_job(get_db().as_user(user), path_uuid(job_id, "job"))
    return json_response(job)


@router.route("GET", "/documents/{document_id}")
def get_document(request: flask.Request, document_id: str) -> flask.Response:
    user = authenticate(request.headers.get("Authorization"), get_settings())
    document = queue.get_document(get_db().as_user(user), path_uuid(document_id, "document"))
    return json_response(document)


@functions_framework.http
def jobs(request: flask.Request) -> flask.Response:
    return router.handle(request)
