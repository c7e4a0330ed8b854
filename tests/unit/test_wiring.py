"""Wiring: routes declare their auth level, handlers get settings, database, storage and clock
from the App, and the App follows the tests' resets.

- Each route's auth level agrees with the security docs/openapi.yaml declares for it.
- No function module fetches its own wiring (`get_db()`, `get_settings()`, `get_storage()`)
  or checks a caller itself (`authenticate`, `require_admin`, `check_scheduler_secret`).
- The router checks the level before the handler runs and hands it the verified user.
"""

from __future__ import annotations

import ast
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import flask
import pytest
import yaml

import functions
from shared.platform import clock
from shared.platform.app import App, get_app
from shared.platform.auth import mint_token
from shared.platform.client import UserContext
from shared.platform.config import get_settings
from shared.platform.http import Router, json_response

REPO_ROOT = Path(__file__).resolve().parents[2]
WIRING_CALLS = {
    "get_db",
    "get_settings",
    "get_storage",
    "authenticate",
    "require_admin",
    "check_scheduler_secret",
}


def routes() -> list[tuple[str, str, str]]:
    """(method, path template, auth level) of every route of every function."""
    found = []
    for target in functions.TARGETS:
        module = __import__(f"functions.{target}", fromlist=["router"])
        for route in module.router.routes:
            template = route.pattern.pattern[1:-1].replace("(?P<", "{").replace(">[^/]+)", "}")
            found.append((route.method, template, route.auth))
    return found


def test_route_auth_levels_agree_with_the_openapi_security() -> None:
    spec = yaml.safe_load((REPO_ROOT / "docs" / "openapi.yaml").read_text(encoding="utf-8"))
    checked = 0
    for method, path, auth in routes():
        if path == "/":  # a function alone on its own URL: same level as its named path
            continue
        operation = spec["paths"][path][method.lower()]
        security = operation.get("security", spec["security"])
        names = {name for requirement in security for name in requirement}
        expected = {
            "public": set(),
            "scheduler": {"schedulerSecret"},
            "user": {"bearerAuth"},
            "admin": {"bearerAuth"},
        }[auth]
        assert names == expected, (method, path, auth)
        assert (auth == "admin") == ("403" in operation["responses"]), (method, path, auth)
        checked += 1
    assert checked >= 15


def test_same_level_on_a_function_own_url() -> None:
    levels: dict[str, set[str]] = {}
    for target in functions.TARGETS:
        module = __import__(f"functions.{target}", fromlist=["router"])
        levels[target] = {route.auth for route in module.router.routes}
    assert levels["uploads"] == {"user"}
    assert levels["jobs"] == {"user"}
    assert levels["admin"] == {"admin", "public"}
    for target in ("process_jobs", "probe_health", "retention"):
        assert levels[target] == {"scheduler"}, target


def test_function_modules_take_their_wiring_from_the_app() -> None:
    offending = []
    for path in sorted((REPO_ROOT / "functions").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            name = None
            if isinstance(node, ast.Name | ast.alias):
                name = node.id if isinstance(node, ast.Name) else node.name
            elif isinstance(node, ast.Attribute):
                name = node.attr
            if name in WIRING_CALLS:
                offending.append(f"{path.name}:{getattr(node, 'lineno', '?')} {name}")
    assert offending == []


def test_an_unknown_auth_level_is_refused_when_the_route_is_declared() -> None:
    with pytest.raises(ValueError, match="auth must be one of"):
        Router("t").route("GET", "/x", auth="nobody")  # type: ignore[arg-type]


def _router() -> tuple[Router, list[tuple[str, Any]]]:
    seen: list[tuple[str, Any]] = []
    router = Router("t")

    @router.route("GET", "/public", auth="public")
    def public(request: flask.Request, app: App) -> flask.Response:
        seen.append(("public", app))
        return json_response({})

    @router.route("GET", "/mine/{item_id}", auth="user")
    def mine(request: flask.Request, app: App, user: UserContext, item_id: str) -> flask.Response:
        seen.append(("user", (user.user_id, item_id)))
        return json_response({})

    @router.route("GET", "/admin", auth="admin")
    def admin(request: flask.Request, app: App, user: UserContext) -> flask.Response:
        seen.append(("admin", user.user_id))
        return json_response({})

    @router.route("POST", "/tick", auth="scheduler")
    def tick(request: flask.Request, app: App) -> flask.Response:
        seen.append(("scheduler", None))
        return json_response({})

    return router, seen


def _call(router: Router, method: str, path: str, headers: dict[str, str] | None = None) -> Any:
    with flask.Flask(__name__).test_request_context(path, method=method, headers=headers):
        response = router.handle(flask.request)
        return response.status_code, response.get_json()


def test_the_router_checks_the_level_before_the_handler_runs() -> None:
    router, seen = _router()
    settings = get_settings()
    user_id = str(uuid.uuid4())
    user = {"Authorization": f"Bearer {mint_token(settings, user_id)}"}
    admin = {"Authorization": f"Bearer {mint_token(settings, user_id, admin=True)}"}
    secret = settings.scheduler_secret.get_secret_value()

    assert _call(router, "GET", "/public") == (200, {})
    assert seen.pop() == ("public", get_app())

    status, body = _call(router, "GET", "/mine/abc")
    assert (status, body["error"]["code"]) == (401, "missing_token")
    assert _call(router, "GET", "/mine/abc", user)[0] == 200
    assert seen.pop() == ("user", (user_id, "abc"))

    status, body = _call(router, "GET", "/admin", user)
    assert (status, body["error"]["code"]) == (403, "admin_required")
    assert _call(router, "GET", "/admin", admin)[0] == 200
    assert seen.pop() == ("admin", user_id)

    status, body = _call(router, "POST", "/tick", {"X-Scheduler-Secret": "wrong"})
    assert (status, body["error"]["code"]) == (401, "invalid_scheduler_secret")
    assert _call(router, "POST", "/tick", {"X-Scheduler-Secret": secret})[0] == 200
    assert seen.pop() == ("scheduler", None)
    assert seen == []  # no handler ran for a refused request

    # routing comes first: a wrong method is 405 without a token
    assert _call(router, "POST", "/mine/abc")[0] == 405


def test_the_app_follows_the_settings_and_client_resets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = get_app()
    db = app.db
    assert app.db is db and app.settings is get_settings()
    monkeypatch.setenv("MAX_UPLOAD_BYTES", "1234")
    app.reset()
    assert app.settings.max_upload_bytes == 1234
    assert app.db is not db


class FixedClock:
    def monotonic(self) -> float:
        return 42.0

    def now(self) -> datetime:
        return datetime(2026, 1, 1, tzinfo=UTC)


def test_the_clock_can_be_swapped_for_the_whole_process() -> None:
    with clock.use(FixedClock()):
        assert get_app().clock.monotonic() == 42.0
        assert clock.now() == datetime(2026, 1, 1, tzinfo=UTC)
    assert clock.get_clock() is clock.SYSTEM
    assert clock.now().tzinfo is UTC
