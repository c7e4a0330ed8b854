"""`admin` function: analytics for admins (the database's RLS checks the role too)."""

from __future__ import annotations

import flask
import functions_framework

from shared import analytics
from shared.auth import authenticate, require_admin
from shared.client import get_db
from shared.config import get_settings
from shared.http import Router, json_response

router = Router("admin")


@router.route("GET", "/admin/analytics")
def get_analytics(request: flask.Request) -> flask.Response:
    user = authenticate(request.headers.get("Authorization"), get_settings())
    require_admin(user)
    return json_response(analytics.report(get_db().as_user(user), request.args.get("window")))


@functions_framework.http
def admin(request: flask.Request) -> flask.Response:
    return router.handle(request)
