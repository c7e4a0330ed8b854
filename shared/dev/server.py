"""`docflow serve`: every function on one port, dispatched by the first path segment, as the
public gateway does in production (`/uploads` -> uploads, `/jobs/...` -> jobs, ...)."""

from __future__ import annotations

import flask
from werkzeug.exceptions import HTTPException

from shared.platform.errors import BadRequest, DocflowError, MethodNotAllowed, NotFound
from shared.platform.http import error_response

# Every method reaches the functions, which answer 405 themselves (as they do deployed alone).
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT", "QUERY"]


def create_app() -> flask.Flask:
    from functions import ROUTES, targets

    functions = targets()
    app = flask.Flask("docflow")

    @app.route("/", defaults={"path": ""}, methods=METHODS)
    @app.route("/<path:path>", methods=METHODS)
    def dispatch(path: str) -> flask.Response:
        segment = path.split("/", 1)[0]
        target = ROUTES.get(segment)
        if target is None:
            return error_response(
                NotFound(f"no function serves /{segment}", code="route_not_found")
            )
        response: flask.Response = functions[target](flask.request)
        return response

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> flask.Response:
        """Whatever Flask answers itself (a method it does not route, say) is JSON too."""
        err: DocflowError
        if exc.code == 405:
            err = MethodNotAllowed(f"{flask.request.method} is not allowed here")
        elif exc.code == 404:
            err = NotFound("not found", code="route_not_found")
        else:
            err = BadRequest(exc.description or "invalid request")
        return error_response(err)

    return app
