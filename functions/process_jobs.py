"""`process_jobs` function (scheduler): drain due jobs within a budget."""

from __future__ import annotations

import math

import flask
import functions_framework

from shared.documents.pipeline import document_worker
from shared.platform.app import App
from shared.platform.errors import Unavailable, Unprocessable
from shared.platform.http import Router, json_body, json_response

router = Router("process_jobs")


def _positive(body: dict[str, object], key: str, default: float, cap: float) -> float:
    value = body.get(key, default)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise Unprocessable(f"{key} must be a positive number", code="invalid_budget")
    return min(float(value), cap)


@router.route("POST", "/process_jobs", auth="scheduler")
@router.route("POST", "/", auth="scheduler")
def run(request: flask.Request, app: App) -> flask.Response:
    settings = app.settings
    body = json_body(request)
    max_jobs = int(_positive(body, "max_jobs", settings.process_max_jobs, 10_000))
    max_seconds = _positive(body, "max_seconds", settings.process_max_seconds, 3600)
    # Recover stalled jobs first, then drain due jobs within the budget (no LISTEN here).
    worker = document_worker(app.db, settings)
    worker.listen_url = None
    report = worker.drain(max_jobs, max_seconds)
    if report.errors and not report.claimed:
        # Nothing could be done: tell the scheduler, so the run shows as failed.
        raise Unavailable("the database is unavailable; nothing was processed", retry_after=30)
    return json_response(report.as_dict())


@functions_framework.http
def process_jobs(request: flask.Request) -> flask.Response:
    return router.handle(request)
