"""`retention` function (scheduler, daily): delete expired rows in batches, report counts."""

from __future__ import annotations

import flask
import functions_framework

from shared.ops.retention import run as run_retention
from shared.platform.auth import check_scheduler_secret
from shared.platform.client import get_db
from shared.platform.config import get_settings
from shared.platform.errors import Unprocessable
from shared.platform.http import Router, json_body, json_response
from shared.platform.storage import get_storage

router = Router("retention")


@router.route("POST", "/retention")
@router.route("POST", "/")
def run(request: flask.Request) -> flask.Response:
    settings = get_settings()
    check_scheduler_secret(request.headers.get("X-Scheduler-Secret"), settings)
    dry_run = json_body(request).get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise Unprocessable("dry_run must be true or false", code="invalid_dry_run")
    return json_response(run_retention(get_db(), get_storage(), settings, dry_run=dry_run))


@functions_framework.http
def retention(request: flask.Request) -> flask.Response:
    return router.handle(request)
