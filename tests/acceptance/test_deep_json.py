"""Deeply nested JSON is a client error, never a 500 (issue 13).

`json.loads` recurses once per level, so `[[[[...` thousands deep used to escape as an uncaught
RecursionError. Every JSON body now answers 400 `invalid_json` and the list cursor 422
`invalid_cursor`, through the functions as Cloud Functions loads them from main.py.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from shared.platform.safejson import MAX_DEPTH
from tests.support.http import ClientFor, assert_error
from tests.support.tokens import b64url, bearer, scheduler_headers
from tests.support.users import MakeUser

DEPTHS = (MAX_DEPTH + 1, 900, 5_000, 100_000)


def deep_array(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def deep_object(depth: int) -> bytes:
    return b'{"a":' * (depth - 1) + b"{}" + b"}" * (depth - 1)


def unclosed_array(depth: int) -> bytes:
    return b"[" * depth


BODIES = [
    pytest.param(make(depth), id=f"{make.__name__}-{depth}")
    for make in (deep_array, deep_object, unclosed_array)
    for depth in DEPTHS
]


@pytest.mark.parametrize("body", BODIES)
def test_deep_json_bodies_are_400_invalid_json_on_every_json_route(
    client_for: ClientFor, make_user: MakeUser, body: bytes
) -> None:
    user = make_user()
    calls: list[tuple[str, str, dict[str, str]]] = [
        ("uploads", "/uploads", bearer(user)),
        ("jobs", f"/documents/{uuid.uuid4()}/reanalyze", bearer(user)),
        ("process_jobs", "/process_jobs", scheduler_headers()),
        ("retention", "/retention", scheduler_headers()),
    ]
    for target, path, headers in calls:
        response = client_for(target).post(
            path, data=body, headers=headers, content_type="application/json"
        )
        assert_error(response, 400, "invalid_json")


@pytest.mark.parametrize("body", [deep_array(100_000), deep_object(100_000)])
def test_routes_that_take_no_body_ignore_a_deep_one(
    client_for: ClientFor, make_user: MakeUser, body: bytes
) -> None:
    user = make_user()
    admin = make_user(admin=True)
    jobs = client_for("jobs")
    response = jobs.post(
        f"/jobs/{uuid.uuid4()}/cancel",
        data=body,
        headers=bearer(user),
        content_type="application/json",
    )
    assert_error(response, 404, "job_not_found")
    response = client_for("admin").post(
        "/admin/alerts/1/acknowledge",
        data=body,
        headers=bearer(admin),
        content_type="application/json",
    )
    assert response.status_code < 500, response.get_data(as_text=True)


def test_json_nested_up_to_the_limit_is_still_accepted(client_for: ClientFor) -> None:
    # The top-level object is level 1, so "extra" may nest MAX_DEPTH - 1 more.
    inner: Any = []
    for _ in range(MAX_DEPTH - 2):
        inner = [inner]
    body = json.dumps({"dry_run": True, "extra": inner})
    response = client_for("retention").post(
        "/retention", data=body, headers=scheduler_headers(), content_type="application/json"
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    response = client_for("retention").post(
        "/retention",
        data=json.dumps({"dry_run": True, "extra": [inner]}),
        headers=scheduler_headers(),
        content_type="application/json",
    )
    assert_error(response, 400, "invalid_json")


CURSORS = [
    pytest.param(b64url(deep_array(100_000)), id="arrays-100000"),
    pytest.param(b64url(unclosed_array(100_000)), id="unclosed-100000"),
    pytest.param(b64url(deep_object(100_000)), id="objects-100000"),
    # Short enough to pass the length bound and reach the decoder.
    pytest.param(b64url(deep_array(150)), id="arrays-150"),
    pytest.param(b64url(b"[" + deep_array(100) + b',"x"]'), id="nested-pair"),
    pytest.param(b64url(json.dumps([[["2026-01-01T00:00:00+00:00"]], str(uuid.uuid4())]).encode())),
]


@pytest.mark.parametrize("cursor", CURSORS)
def test_deep_cursors_are_422_invalid_cursor(
    client_for: ClientFor, make_user: MakeUser, cursor: str
) -> None:
    user = make_user()
    response = client_for("jobs").get(
        "/jobs", query_string={"cursor": cursor}, headers=bearer(user)
    )
    assert_error(response, 422, "invalid_cursor")


def test_a_token_with_a_deep_header_is_401(client_for: ClientFor) -> None:
    token = f"{b64url(deep_array(5_000))}.{b64url(b'{}')}.c2ln"
    response = client_for("jobs").get("/jobs", headers=bearer(token))
    assert_error(response, 401, "invalid_token")
