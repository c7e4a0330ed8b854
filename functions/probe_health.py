"""`probe_health` function (scheduler): probe services, record checks, alert, notify."""

from __future__ import annotations

import flask
import functions_framework

from shared.ops.probes import probe_and_notify
from shared.platform.auth import check_scheduler_secret
from shared.platform.client import get_db
from shared.platform.config import get_settings
from shared.platform.errors import Unavailable
from shared.platform.http import Router, json_response
from shared.platform.storage import get_storage

router = Router("probe_health")


@router.route("POST", "/probe_health")
@router.route("POST", "/")
def run(request: flask.Request) -> flask.Response:
    settings = get_settings()
    check_scheduler_secret(request.headers.get("X-Scheduler-Secret"), settings)
    report = probe_and_notify(get_db(), get_storage(), settings)
    if not any(check["recorded"] for check in report["checks"]):
        # The database is down: nothing could be recorded or alerted. Fail loudly, so that the
        # scheduler's own failure alerting (Cloud Scheduler, pg_cron logs) sees it.
        raise Unavailable("the database is unavailable; no check was recorded", retry_after=60)
    return json_response(report)


@functions_framework.http
def probe_health(request: flask.Request) -> flask.Response:
    return router.handle(request)
