"""`docflow serve`: every function on one port, dispatched by the first path segment, as the
public gateway does in production (`/uploads` -> uploads, `/jobs/...` -> jobs, ...)."""

from __future__ import annotations

import flask

from shared.errors import NotFound
from shared.http import error_response


def create_app() -> flask.Flask:
    from functions import ROUTES, targets

    functions = targets()
    app = flask.Flask("docflow")

    @app.route(
        "/",
        defaults={"path": ""},
        methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"],
    )
    @app.route("/<path:path>", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"])
    def dispatch(path: str) -> flask.Response:
        segment = path.split("/", 1)[0]
        target = ROUTES.get(segment)
        if target is None:
            return error_response(
                NotFound(f"no function serves /{segment}", code="route_not_found")
            )
        response: flask.Response = functions[target](flask.request)
        return response

    return app
