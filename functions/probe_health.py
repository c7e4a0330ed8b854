"""`probe_health` function (scheduler): probe services, record checks, alert, notify."""

from __future__ import annotations

import flask
import functions_framework

from shared.ops.probes import probe_and_notify
from shared.platform.app import App
from shared.platform.errors import Unavailable
from shared.platform.http import Router, json_response

router = Router("probe_health")


@router.route("POST", "/probe_health", auth="scheduler")
@router.route("POST", "/", auth="scheduler")
def run(request: flask.Request, app: App) -> flask.Response:
    report = probe_and_notify(app.db, app.storage, app.settings)
    if not any(check["recorded"] for check in report["checks"]):
        # The database is down: nothing could be recorded or alerted. Fail loudly, so that the
        # scheduler's own failure alerting (Cloud Scheduler, pg_cron logs) sees it.
        raise Unavailable("the database is unavailable; no check was recorded", retry_after=60)
    return json_response(report)


@functions_framework.http
def probe_health(request: flask.Request) -> flask.Response:
    return router.handle(request)
