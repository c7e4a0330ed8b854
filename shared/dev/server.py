"""`docflow serve`: every function on one port, dispatched by the first path segment, as the
public gateway does in production (`/uploads` -> uploads, `/jobs/...` -> jobs, ...).

With the real Storage API beside it (`docflow serve --storage-api`), `/storage/v1/...` is
passed through to that server, as Supabase's gateway does, so a client made for a project URL
(supabase-js `createClient("http://127.0.0.1:8080", anonKey).storage`) works unchanged."""

from __future__ import annotations

from collections.abc import Callable

import flask
from werkzeug.exceptions import HTTPException

from shared.platform.errors import (
    BadRequest,
    DocflowError,
    MethodNotAllowed,
    NotFound,
    Unavailable,
)
from shared.platform.http import error_response

# Every method reaches the functions, which answer 405 themselves (as they do deployed alone).
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT", "QUERY"]


# Headers of one hop, not passed through; httpx has already decoded the body.
_HOP_HEADERS = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
    "transfer-encoding", "upgrade", "host", "content-length", "content-encoding",
})  # fmt: skip


def create_app(storage_upstream: str | None = None) -> flask.Flask:
    from functions import ROUTES, targets

    functions = targets()
    app = flask.Flask("docflow")
    if storage_upstream is not None:
        app.add_url_rule(
            "/storage/v1/<path:path>",
            "storage",
            _storage_proxy(storage_upstream),
            methods=METHODS,
        )

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


def _storage_proxy(upstream: str) -> Callable[[str], flask.Response]:
    """`/storage/v1/<path>` passed to the Storage API's `/<path>`: method, query, headers
    (Authorization and apikey included) and body; its answer comes back as it is."""
    import httpx

    def proxy(path: str) -> flask.Response:
        request = flask.request
        query = request.query_string.decode("latin-1")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
        try:
            # A connection per request: local development, and nothing left open at exit.
            with httpx.Client(base_url=upstream, timeout=60.0) as client:
                answer = client.request(
                    request.method,
                    "/" + path + (f"?{query}" if query else ""),
                    headers=headers,
                    content=request.get_data(),
                )
        except httpx.HTTPError:
            return error_response(Unavailable("the local Storage API is not answering"))
        passed = [(k, v) for k, v in answer.headers.items() if k.lower() not in _HOP_HEADERS]
        return flask.Response(answer.content, status=answer.status_code, headers=passed)

    return proxy
