"""Property-based checks of the served functions against docs/openapi.yaml (schemathesis).

Every operation of the spec gets its own test, with a fresh database: schemathesis generates
requests from the spec (valid ones, and invalid ones: wrong types, out-of-range values, odd
strings) and sends them to the one-port app of `docflow serve` as a WSGI app, authenticated
as a real user (an admin for `/admin/*`) or with the scheduler secret. Three documents exist
beforehand (their jobs completed, pending and cancelled); about half the generated path ids are
swapped for theirs and about half the generated upload files for a real document, so the
success paths are reached as well as the 404s and 415s.

The checks: no response is a 5xx; every 4xx is the contract's JSON error; and the response
conforms to the spec (a documented status, content type, headers and body schema).
Examples are bounded and derandomized, so the run is short and the same every time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import flask
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.transport.serialization import Binary

from shared.platform.client import Database, UserContext
from shared.platform.config import get_settings
from tests.support.http import uploaded
from tests.support.tokens import bearer

SPEC_PATH = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
MAX_EXAMPLES = 20

schema = schemathesis.openapi.from_path(SPEC_PATH)


def error_body_is_json(ctx: Any, response: schemathesis.Response, case: schemathesis.Case) -> None:
    """Every 4xx (and 5xx) is `{"error": {"code": str, "message": str, ...}}`, as JSON."""
    if response.status_code < 400:
        return
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type.startswith("application/json"), (
        f"{response.status_code} with Content-Type {content_type!r}: {response.text[:200]!r}"
    )
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error, dict), body
    assert isinstance(error.get("code"), str) and error["code"], body
    assert isinstance(error.get("message"), str) and error["message"], body
    assert "Traceback" not in response.text, body


CHECKS = [
    not_a_server_error,
    error_body_is_json,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@dataclass
class Api:
    app: flask.Flask
    user: UserContext
    admin: UserContext
    scheduler_secret: str
    ids: dict[str, list[str]]  # path parameter name -> ids that exist

    def headers_for(self, path: str) -> dict[str, str]:
        if path in ("/process_jobs", "/probe_health", "/retention"):
            return {"X-Scheduler-Secret": self.scheduler_secret}
        user = self.admin if path.startswith("/admin/") else self.user
        return bearer(user)


def _upload(client: Any, user: UserContext, name: str, text: str) -> dict[str, Any]:
    body: dict[str, Any] = uploaded(client, user, text.encode(), name)
    return body


@pytest.fixture
def api(db: Database, make_user: Callable[..., UserContext]) -> Api:
    from shared.dev.server import create_app

    app = create_app()
    client = app.test_client()
    user, admin = make_user(), make_user(admin=True)
    secret_value = get_settings().scheduler_secret.get_secret_value()
    done = _upload(client, user, "report.txt", "Quarterly report. Revenue grew. Costs fell.\n")
    report = client.post(
        "/process_jobs", json={"max_seconds": 60}, headers={"X-Scheduler-Secret": secret_value}
    )
    assert report.status_code == 200 and report.get_json()["completed"] == 1, report.get_data()
    pending = _upload(client, user, "notes.md", "# Notes\n\n- one\n- two\n")
    cancelled = _upload(client, user, "memo.txt", "A memo that is cancelled before it runs.\n")
    response = client.post(f"/jobs/{cancelled['job_id']}/cancel", headers=bearer(user))
    assert response.status_code == 200, response.get_data(as_text=True)
    known = (done, pending, cancelled)
    return Api(
        app=app,
        user=user,
        admin=admin,
        scheduler_secret=secret_value,
        ids={
            "job_id": [str(k["job_id"]) for k in known],
            "document_id": [str(k["document_id"]) for k in known],
        },
    )


def _reach_success_paths(case: schemathesis.Case, api: Api) -> None:
    """Swap about half the generated path ids for existing ones, and half the generated
    upload files (random bytes, refused as 415) for a real document. Which ones is decided by
    the generated values themselves, so a failing example still shrinks and replays."""
    for name, value in list((case.path_parameters or {}).items()):
        known = api.ids.get(name)
        if known and isinstance(value, str) and value and value[0] in "01234567":
            case.path_parameters[name] = known[ord(value[-1]) % len(known)]
    body = case.body
    file = body.get("file") if isinstance(body, dict) else None
    data = file.data if isinstance(file, Binary) else file
    if isinstance(body, dict) and isinstance(data, bytes) and sum(data) % 2:
        body["file"] = b"Minutes of the meeting. Budget approved. Next review in May.\n"


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_the_served_api_matches_its_spec_and_never_fails(case: schemathesis.Case, api: Api) -> None:
    _reach_success_paths(case, api)
    case.call_and_validate(app=api.app, headers=api.headers_for(case.path), checks=CHECKS)


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "QUERY"])
def test_unrouted_methods_answer_json_405(server_client: Any, method: str) -> None:
    """Every error is JSON (product.md section 5), whatever the method. A function deployed
    alone (functions-framework) already answers these with the JSON 405; `docflow serve`
    does not yet."""
    response = server_client.open("/jobs", method=method)
    assert response.status_code == 405
    assert response.mimetype == "application/json", response.get_data(as_text=True)[:200]
    assert response.get_json()["error"]["code"] == "method_not_allowed"
    assert response.headers["Allow"] == "GET"
