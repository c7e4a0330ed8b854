"""`retention` function (scheduler, daily): delete expired rows in batches, report counts."""

from __future__ import annotations

import flask
import functions_framework

from shared.ops.retention import run as run_retention
from shared.platform.app import App
from shared.platform.errors import Unprocessable
from shared.platform.http import Router, json_body, json_response

router = Router("retention")


@router.route("POST", "/retention", auth="scheduler")
@router.route("POST", "/", auth="scheduler")
def run(request: flask.Request, app: App) -> flask.Response:
    dry_run = json_body(request).get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise Unprocessable("dry_run must be true or false", code="invalid_dry_run")
    report = run_retention(
        app.db, app.storage, app.settings, dry_run=dry_run, clock=app.clock.monotonic
    )
    return json_response(report)


@functions_framework.http
def retention(request: flask.Request) -> flask.Response:
    return router.handle(request)
