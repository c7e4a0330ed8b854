"""docs/openapi.yaml describes exactly the routes the functions serve.

- The spec is a valid OpenAPI 3.1 document (openapi-spec-validator).
- The (method, path template) pairs registered on each function's `router` and the spec's
  paths x methods are the same set, both ways (the `POST /` aliases of a function deployed on
  its own URL are left out: the spec describes the gateway's paths).
- Every operation answers JSON errors, declares its security, and every path parameter is a
  UUID.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

import functions
from shared.platform.http import Router

REPO_ROOT = Path(__file__).resolve().parents[2]
SPEC_PATH = REPO_ROOT / "docs" / "openapi.yaml"
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
_PARAM = re.compile(r"\(\?P<(\w+)>\[\^/\]\+\)")
ERROR_STATUSES = {"400", "401", "403", "404", "405", "409", "413", "415", "422", "429", "503"}
PUBLIC_PAGES = {"/admin/dashboard"}  # HTML that holds no data; its script sends the token


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    data = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def template_of(pattern: re.Pattern[str]) -> str:
    """The path template a route was registered with (`/jobs/{job_id}`), from its regex."""
    source = pattern.pattern
    assert source.startswith("^") and source.endswith("$"), source
    template = _PARAM.sub(r"{\1}", source[1:-1])
    assert not re.search(r"[()\\^$?*+\[\]]", template), f"unexpected regex in {source!r}"
    return template


def routers() -> dict[str, Router]:
    """Each deployable target's module-level `router`."""
    found: dict[str, Router] = {}
    for name in functions.targets():
        module = importlib.import_module(f"functions.{name}")
        router = getattr(module, "router", None)
        assert isinstance(router, Router), f"functions.{name} has no module-level router"
        found[name] = router
    return found


def served_routes() -> set[tuple[str, str]]:
    served = set()
    for router in routers().values():
        for route in router.routes:
            template = template_of(route.pattern)
            if template != "/":  # a function alone on its own URL also answers POST /
                served.add((route.method.upper(), template))
    return served


def spec_operations(spec: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): operation
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    }


def test_template_of_restores_the_registered_path() -> None:
    router = Router("t")
    for path in ("/jobs", "/jobs/{job_id}", "/documents/{document_id}/text", "/"):
        router.route("GET", path, auth="public")(lambda request, app: None)  # type: ignore[arg-type,return-value]
    assert [template_of(r.pattern) for r in router.routes] == [
        "/jobs",
        "/jobs/{job_id}",
        "/documents/{document_id}/text",
        "/",
    ]


def test_spec_is_valid_openapi_3_1(spec: dict[str, Any]) -> None:
    assert spec["openapi"].startswith("3.1.")
    try:
        validate(spec)
    except OpenAPIValidationError as err:  # pragma: no cover - the message is the point
        pytest.fail(f"docs/openapi.yaml is not valid OpenAPI 3.1: {err}")


def test_spec_and_served_routes_agree(spec: dict[str, Any]) -> None:
    served = served_routes()
    described = set(spec_operations(spec))
    assert served, "no routes collected from the functions"
    assert sorted(served - described) == [], "served but missing from docs/openapi.yaml"
    assert sorted(described - served) == [], "in docs/openapi.yaml but not served"


def test_every_first_segment_is_routed_to_the_function_that_serves_it() -> None:
    """The one-port app dispatches on the first path segment (functions.ROUTES)."""
    for target, router in routers().items():
        for route in router.routes:
            template = template_of(route.pattern)
            if template == "/":
                continue
            segment = template.split("/")[1]
            assert functions.ROUTES.get(segment) == target, (route.method, template)


def test_operations_declare_security_errors_and_uuid_ids(spec: dict[str, Any]) -> None:
    responses = spec["components"]["responses"]
    parameters = spec["components"]["parameters"]
    schemes = set(spec["components"]["securitySchemes"])
    assert schemes == {"bearerAuth", "schedulerSecret"}
    for (method, path), operation in spec_operations(spec).items():
        where = f"{method} {path}"
        security = operation.get("security", spec["security"])
        names = {name for requirement in security for name in requirement}
        scheduled = path in ("/process_jobs", "/probe_health", "/retention")
        expected = {"schedulerSecret"} if scheduled else {"bearerAuth"}
        if path in PUBLIC_PAGES:
            assert names == set() and set(operation["responses"]) == {"200"}, where
            continue
        assert names == expected, where
        statuses = set(operation["responses"])
        assert "401" in statuses and "503" in statuses, where
        assert any(s.startswith("2") for s in statuses), where
        for status, response in operation["responses"].items():
            if status in ERROR_STATUSES:
                ref = response.get("$ref", "")
                target = responses[ref.rsplit("/", 1)[-1]]
                schema = target["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, (where, status)
            else:
                assert status.startswith("2"), f"{where}: undocumented kind of status {status}"
        declared = set(re.findall(r"\{(\w+)\}", path))
        params = [
            parameters[p["$ref"].rsplit("/", 1)[-1]] if "$ref" in p else p
            for p in operation.get("parameters", [])
        ]
        in_path = {p["name"]: p for p in params if p["in"] == "path"}
        assert set(in_path) == declared, where
        for name, param in in_path.items():
            assert param["required"] is True, where
            if name == "alert_id":  # alerts have bigint ids
                assert param["schema"]["pattern"] == "^[0-9]{1,18}$", where
            else:
                assert param["schema"]["format"] == "uuid", where


def test_error_responses_cover_the_contract_statuses(spec: dict[str, Any]) -> None:
    responses = spec["components"]["responses"]
    assert len(responses) == len(ERROR_STATUSES)
    for name in ("RateLimited", "Unavailable"):
        assert "Retry-After" in responses[name]["headers"], name
    assert "Allow" in responses["MethodNotAllowed"]["headers"]
    error = spec["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    assert set(error["properties"]["error"]["required"]) == {"code", "message"}
