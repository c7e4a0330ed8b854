"""The HTTP edge shared by every function: routing, auth, JSON bodies, errors, CORS, request ids.

Each route declares its auth level, and the router checks it before the handler runs:

- `public`: no check; the handler gets `(request, app, **path)`.
- `user`: a valid access token (`Authorization: Bearer ...`, else 401); the handler gets
  `(request, app, user, **path)` with the verified `UserContext`.
- `admin`: as `user`, and then the admin role (else 403).
- `scheduler`: the `X-Scheduler-Secret` header (else 401); the handler gets
  `(request, app, **path)`.

`app` is the process's `shared.platform.app.App`: settings, database, storage and clock. Handlers
stay thin: parse, call `shared`, shape the response. Any `DocflowError` becomes the contract's
body `{"error": {"code", "message"}}` with its status; anything else is logged with its
traceback and answered as a plain 500 without one.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, get_args

import flask
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from shared.platform import events, safejson
from shared.platform.app import App, get_app
from shared.platform.auth import authenticate, check_scheduler_secret, require_admin
from shared.platform.errors import (
    BadRequest,
    DocflowError,
    Forbidden,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    Unprocessable,
)
from shared.platform.log import get_logger, log_context

log = get_logger("http")

Handler = Callable[..., flask.Response]
Auth = Literal["public", "user", "admin", "scheduler"]
AUTH_LEVELS: tuple[Auth, ...] = get_args(Auth)
MAX_JSON_BYTES = 1024 * 1024
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> flask.Response:
    return flask.Response(
        json.dumps(data, default=str, separators=(",", ":")),
        status=status,
        mimetype="application/json",
        headers=headers,
    )


def error_response(err: DocflowError, headers: dict[str, str] | None = None) -> flask.Response:
    body: dict[str, Any] = {"code": err.code, "message": err.message}
    if err.retry_after is not None:
        body["retry_after"] = err.retry_after
    out_headers = dict(headers or {})
    if err.retry_after is not None:
        out_headers["Retry-After"] = str(err.retry_after)
    return json_response({"error": body}, err.status, out_headers)


def json_body(request: flask.Request, *, optional: bool = True) -> dict[str, Any]:
    """The request's JSON object body (at most 1 MiB, nested at most `safejson.MAX_DEPTH`
    levels); an empty body is `{}` when optional. Anything else is 400 `invalid_json`."""
    if (request.content_length or 0) > MAX_JSON_BYTES:
        raise PayloadTooLarge("the JSON body is too large", code="too_large")
    request.max_content_length = MAX_JSON_BYTES
    raw = request.get_data(cache=True)
    if not raw.strip():
        if optional:
            return {}
        raise BadRequest("a JSON body is required", code="invalid_json")
    try:
        data = safejson.loads(raw)
    except safejson.TooDeep:
        raise BadRequest(
            f"the JSON body is nested deeper than {safejson.MAX_DEPTH} levels", code="invalid_json"
        ) from None
    except ValueError:
        raise BadRequest("the body is not valid JSON", code="invalid_json") from None
    if not isinstance(data, dict):
        raise BadRequest("the JSON body must be an object", code="invalid_json")
    return data


def path_uuid(value: str, what: str) -> str:
    """A UUID from the path; anything else is simply not found (no hint about ids)."""
    if not _UUID.match(value):
        raise NotFound(f"{what} not found", code=f"{what}_not_found")
    return value.lower()


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    auth: Auth


class Router:
    """Routes of one function. The function sees full paths (`/jobs/<id>`), whether it runs
    behind the gateway, alone on its own URL, or in `docflow serve`."""

    def __init__(self, name: str, app: App | None = None) -> None:
        self.name = name
        self.app = app or get_app()
        self.routes: list[Route] = []

    def route(self, method: str, path: str, *, auth: Auth) -> Callable[[Handler], Handler]:
        """Register a handler for `method path` behind the auth level `auth` (module docstring)."""
        if auth not in AUTH_LEVELS:
            raise ValueError(f"auth must be one of {', '.join(AUTH_LEVELS)}, not {auth!r}")
        regex = re.compile(
            "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path.rstrip("/") or "/") + "$"
        )

        def register(handler: Handler) -> Handler:
            self.routes.append(Route(method.upper(), regex, handler, auth))
            return handler

        return register

    def dispatch(self, request: flask.Request) -> flask.Response:
        path = request.path.rstrip("/") or "/"
        allowed: set[str] = set()
        method = "GET" if request.method == "HEAD" else request.method
        for route in self.routes:
            match = route.pattern.match(path)
            if not match:
                continue
            if route.method == method:
                return self._call(route, request, match.groupdict())
            allowed.add(route.method)
        if allowed:
            raise MethodNotAllowed(
                f"{request.method} is not allowed here", details={"allow": sorted(allowed)}
            )
        raise NotFound(f"no route for {request.method} {request.path}", code="route_not_found")

    def _call(self, route: Route, request: flask.Request, params: dict[str, str]) -> flask.Response:
        """Check the route's auth level, then run its handler (module docstring)."""
        app = self.app
        if route.auth == "public":
            return route.handler(request, app, **params)
        if route.auth == "scheduler":
            check_scheduler_secret(request.headers.get("X-Scheduler-Secret"), app.settings)
            return route.handler(request, app, **params)
        user = authenticate(request.headers.get("Authorization"), app.settings)
        if route.auth == "admin":
            require_admin(user)
        return route.handler(request, app, user, **params)

    def handle(self, request: flask.Request) -> flask.Response:
        """The functions-framework entry point of this function."""
        request_id = request.headers.get("X-Request-Id") or uuid.uuid4().hex
        if not re.fullmatch(r"[A-Za-z0-9._\-]{1,100}", request_id):
            request_id = uuid.uuid4().hex
        started = time.perf_counter()
        with log_context(request_id=request_id, function=self.name):
            cors = _cors_headers(request, self.app)
            if request.method == "OPTIONS" and request.headers.get("Access-Control-Request-Method"):
                response = (
                    flask.Response(status=204, headers=cors)
                    if cors
                    else error_response(Forbidden("origin not allowed", code="cors_rejected"))
                )
            else:
                response = self._run(request)
                response.headers.update(cors)
            response.headers["X-Request-Id"] = request_id
            events.flush()
            log.info(
                "request",
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "elapsed_ms": round((time.perf_counter() - started) * 1000, 1),
                },
            )
            return response

    def _run(self, request: flask.Request) -> flask.Response:
        try:
            return self.dispatch(request)
        except MethodNotAllowed as err:
            allow = ", ".join(err.details.get("allow", []))
            return error_response(err, {"Allow": allow})
        except DocflowError as err:
            if err.status >= 500:
                log.error("request failed", extra={"code": err.code, "error": err.message})
            return error_response(err)
        except RequestEntityTooLarge:
            # Lift the limit again: functions-framework reads the rest of the body after the
            # view (to drain the connection), and must not hit the same error there.
            request.max_content_length = None
            limit = self.app.settings.max_upload_bytes
            return error_response(
                PayloadTooLarge(f"the upload exceeds the limit of {limit} bytes", code="too_large")
            )
        except HTTPException as exc:
            status = exc.code or 400
            mapped: DocflowError = (
                Unprocessable(exc.description or "invalid request")
                if status == 422
                else BadRequest(exc.description or "invalid request")
            )
            return error_response(mapped)
        except Exception:
            log.exception("unhandled error")
            return error_response(DocflowError("internal error", code="internal"))


def _cors_headers(request: flask.Request, app: App) -> dict[str, str]:
    origin = request.headers.get("Origin")
    if not origin:
        return {}
    allowed = app.settings.cors_origin_list
    if origin not in allowed and "*" not in allowed:
        return {}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
        "Access-Control-Allow-Headers": (
            "Authorization, Content-Type, Idempotency-Key, X-Request-Id"
        ),
        "Access-Control-Max-Age": "600",
        "Vary": "Origin",
    }
