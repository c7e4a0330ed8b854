"""`admin` function: analytics, queue health, services and alerts for admins (the database's
RLS checks the role too; alert changes go through service-only SQL functions), and the
dashboard page that shows them (public: it holds no data; its script calls the JSON routes with
the token the admin gives it)."""

from __future__ import annotations

import re

import flask
import functions_framework

from shared.jobs import queue
from shared.ops import analytics, dashboard
from shared.platform.app import App
from shared.platform.client import UserContext
from shared.platform.errors import NotFound, Unprocessable
from shared.platform.http import Router, json_response

router = Router("admin")


@router.route("GET", "/admin/analytics", auth="admin")
def get_analytics(request: flask.Request, app: App, user: UserContext) -> flask.Response:
    return json_response(analytics.report(app.db.as_user(user), request.args.get("window")))


@router.route("GET", "/admin/dashboard", auth="public")
def get_dashboard(request: flask.Request, app: App) -> flask.Response:
    return dashboard.page()


@router.route("GET", "/admin/queue", auth="admin")
def get_queue(request: flask.Request, app: App, user: UserContext) -> flask.Response:
    return json_response(queue.queue_health(app.db.as_user(user), app.settings))


@router.route("GET", "/admin/services", auth="admin")
def get_services(request: flask.Request, app: App, user: UserContext) -> flask.Response:
    return json_response({"services": app.db.as_user(user).call("services_overview")})


ALERT_STATUSES = ("active", "acknowledged", "resolved")


@router.route("GET", "/admin/alerts", auth="admin")
def list_alerts(request: flask.Request, app: App, user: UserContext) -> flask.Response:
    status = request.args.get("status") or None
    if status is not None and status not in ALERT_STATUSES:
        raise Unprocessable(
            f"status must be one of {', '.join(ALERT_STATUSES)}", code="invalid_status"
        )
    alerts = app.db.as_user(user).call("list_alerts", status=status)
    return json_response({"alerts": alerts})


def _alert_id(value: str) -> int:
    if not re.fullmatch(r"[0-9]{1,18}", value):  # ASCII digits only ("²".isdigit() is True)
        raise NotFound("alert not found", code="alert_not_found")
    return int(value)


@router.route("POST", "/admin/alerts/{alert_id}/acknowledge", auth="admin")
def acknowledge_alert(
    request: flask.Request, app: App, user: UserContext, alert_id: str
) -> flask.Response:
    return json_response(app.db.call("acknowledge_alert", alert_id=_alert_id(alert_id)))


@router.route("POST", "/admin/alerts/{alert_id}/resolve", auth="admin")
def resolve_alert(
    request: flask.Request, app: App, user: UserContext, alert_id: str
) -> flask.Response:
    return json_response(app.db.call("resolve_alert", alert_id=_alert_id(alert_id)))


@functions_framework.http
def admin(request: flask.Request) -> flask.Response:
    return router.handle(request)
