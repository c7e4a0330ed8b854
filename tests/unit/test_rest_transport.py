"""The Supabase REST transport (PostgREST `rpc`), with respx standing in for Supabase.

No database: every request leaves the process through httpx and respx answers it, so these
tests pin what goes on the wire (URL, JSON body, apikey/Authorization) and how PostgREST's
error bodies become docflow's exceptions.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import httpx
import pytest
import respx

from shared.platform.client import Database, RestTransport, UserContext, make_database
from shared.platform.config import Settings
from shared.platform.errors import (
    BadRequest,
    Conflict,
    DatabaseError,
    Forbidden,
    NotFound,
    RateLimited,
    Unauthorized,
    Unavailable,
    Unprocessable,
)
from tests.support.env import configure
from tests.support.tokens import api_key, user_context

SUPABASE_URL = "https://proj.supabase.test"
RPC = f"{SUPABASE_URL}/rest/v1/rpc"


SERVICE_KEY = api_key("service_role")
ANON_KEY = api_key("anon")


@pytest.fixture
def rest_settings(monkeypatch: pytest.MonkeyPatch) -> Settings:
    return configure(
        monkeypatch,
        DB_TRANSPORT="rest",
        SUPABASE_URL=SUPABASE_URL,
        SUPABASE_SERVICE_ROLE_KEY=SERVICE_KEY,
        SUPABASE_ANON_KEY=ANON_KEY,
    )


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    # assert_all_mocked: a request nobody expected fails the test instead of leaving the box.
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as router:
        yield router


@pytest.fixture
def db(rest_settings: Settings, api: respx.MockRouter) -> Iterator[Database]:
    database = make_database(rest_settings)
    try:
        yield database
    finally:
        database.close()


@pytest.fixture
def user(rest_settings: Settings) -> UserContext:
    return user_context(rest_settings)


def _sent_json(route: respx.Route) -> object:
    return json.loads(route.calls.last.request.content)


# --- requests on the wire -------------------------------------------------------------------


def test_make_database_picks_the_rest_transport(db: Database) -> None:
    assert isinstance(db.transport, RestTransport)


def test_service_call_posts_to_rpc_with_service_key(db: Database, api: respx.MockRouter) -> None:
    result = [{"job_id": str(uuid.uuid4()), "attempt": 1}]
    route = api.post(f"{RPC}/claim_jobs").respond(200, json=result)

    assert db.call("claim_jobs", worker_id="w", max_jobs=2) == result

    assert route.call_count == 1
    request = route.calls.last.request
    assert request.method == "POST"
    assert str(request.url) == f"{RPC}/claim_jobs"
    assert request.headers["content-type"].startswith("application/json")
    assert _sent_json(route) == {"worker_id": "w", "max_jobs": 2}
    assert request.headers["apikey"] == SERVICE_KEY
    assert request.headers["authorization"] == f"Bearer {SERVICE_KEY}"


@pytest.mark.parametrize(
    "payload",
    [{"id": "x", "nested": {"a": [1, 2]}}, 42, "text", None, True],
    ids=["object", "number", "string", "null", "bool"],
)
def test_call_returns_the_parsed_json_result(
    db: Database, api: respx.MockRouter, payload: object
) -> None:
    # The body is written out by hand: respx treats json=None as "no body".
    api.post(f"{RPC}/get_stats").respond(
        200, content=json.dumps(payload).encode(), content_type="application/json"
    )
    assert db.call("get_stats") == payload


def test_call_without_parameters_sends_an_empty_object(db: Database, api: respx.MockRouter) -> None:
    route = api.post(f"{RPC}/queue_health").respond(200, json={"pending": 0})
    db.call("queue_health")
    assert _sent_json(route) == {}


def test_structured_parameters_are_sent_as_json(db: Database, api: respx.MockRouter) -> None:
    route = api.post(f"{RPC}/complete_job").respond(200, json=True)
    job_id = uuid.uuid4()
    db.call("complete_job", job_id=job_id, result={"pages": 2, "key_points": ["a", "b"]})
    assert _sent_json(route) == {
        "job_id": str(job_id),
        "result": {"pages": 2, "key_points": ["a", "b"]},
    }


def test_user_call_sends_the_user_token_and_the_anon_key(
    db: Database, api: respx.MockRouter, user: UserContext
) -> None:
    job_id = str(uuid.uuid4())
    route = api.post(f"{RPC}/get_job").respond(200, json={"id": job_id, "status": "pending"})

    assert db.as_user(user).call("get_job", job_id=job_id) == {"id": job_id, "status": "pending"}

    request = route.calls.last.request
    assert request.headers["authorization"] == f"Bearer {user.token}"
    assert request.headers["apikey"] == ANON_KEY
    assert SERVICE_KEY not in request.headers.values()
    assert _sent_json(route) == {"job_id": job_id}


def test_user_call_does_not_change_later_service_calls(
    db: Database, api: respx.MockRouter, user: UserContext
) -> None:
    route = api.post(f"{RPC}/get_job").respond(200, json={})
    db.as_user(user).call("get_job", job_id="1")
    db.call("get_job", job_id="1")
    user_request, service_request = (call.request for call in route.calls)
    assert user_request.headers["authorization"] == f"Bearer {user.token}"
    assert service_request.headers["authorization"] == f"Bearer {SERVICE_KEY}"
    assert service_request.headers["apikey"] == SERVICE_KEY


def test_user_call_without_anon_key_still_authorizes_as_the_user(
    monkeypatch: pytest.MonkeyPatch, rest_settings: Settings, api: respx.MockRouter
) -> None:
    settings = configure(monkeypatch, SUPABASE_ANON_KEY=None)
    assert settings.supabase_anon_key is None
    user = user_context(settings)
    database = make_database(settings)
    try:
        route = api.post(f"{RPC}/list_jobs").respond(200, json=[])
        database.as_user(user).call("list_jobs", max_rows=5)
    finally:
        database.close()
    request = route.calls.last.request
    assert request.headers["authorization"] == f"Bearer {user.token}"
    assert request.headers["apikey"] == SERVICE_KEY


# --- error mapping --------------------------------------------------------------------------


def _pg_error(
    code: str, message: str, *, hint: str | None = None, details: str | None = None
) -> dict[str, object]:
    return {"code": code, "message": message, "hint": hint, "details": details}


def test_df409_maps_to_conflict_with_the_hint_as_code(db: Database, api: respx.MockRouter) -> None:
    api.post(f"{RPC}/complete_job").respond(
        400, json=_pg_error("DF409", "lease lost for job", hint="lease_lost")
    )
    with pytest.raises(Conflict) as info:
        db.call("complete_job", job_id="j", worker_id="w", attempt=1)
    assert info.value.code == "lease_lost"
    assert info.value.status == 409
    assert info.value.message == "lease lost for job"


def test_df429_maps_to_rate_limited_with_retry_after_from_details(
    db: Database, api: respx.MockRouter
) -> None:
    api.post(f"{RPC}/enqueue_upload").respond(
        400,
        json=_pg_error(
            "DF429", "too many uploads", hint="rate_limited", details='{"retry_after": 12}'
        ),
    )
    with pytest.raises(RateLimited) as info:
        db.call("enqueue_upload", user_id="u")
    assert info.value.retry_after == 12
    assert info.value.code == "rate_limited"
    assert info.value.status == 429


@pytest.mark.parametrize(
    ("sqlstate", "expected", "hint"),
    [
        ("DF400", BadRequest, "bad_cursor"),
        ("DF403", Forbidden, "not_owner"),
        ("DF404", NotFound, "job_not_found"),
        ("DF422", Unprocessable, "bad_priority"),
    ],
)
def test_other_df_codes_map_to_their_exception(
    db: Database,
    api: respx.MockRouter,
    sqlstate: str,
    expected: type[Exception],
    hint: str,
) -> None:
    api.post(f"{RPC}/fn").respond(400, json=_pg_error(sqlstate, "no", hint=hint))
    with pytest.raises(expected) as info:
        db.call("fn")
    assert info.value.code == hint  # type: ignore[attr-defined]


@pytest.mark.parametrize("status", [401, 403])
def test_insufficient_privilege_maps_to_forbidden(
    db: Database, api: respx.MockRouter, status: int
) -> None:
    api.post(f"{RPC}/claim_jobs").respond(
        status, json=_pg_error("42501", "permission denied for function claim_jobs")
    )
    with pytest.raises(Forbidden) as info:
        db.call("claim_jobs", worker_id="w", max_jobs=1)
    assert info.value.status == 403
    assert "claim_jobs" not in info.value.message  # no SQL internals


def test_unknown_function_is_a_database_error_without_sql_details(
    db: Database, api: respx.MockRouter
) -> None:
    sql_message = "Could not find the function public.nope(x) in the schema cache"
    api.post(f"{RPC}/nope").respond(
        404,
        json=_pg_error(
            "PGRST202",
            sql_message,
            hint="Perhaps you meant to call the function public.claim_jobs",
            details="Searched for the function public.nope with parameter x",
        ),
    )
    with pytest.raises(DatabaseError) as info:
        db.call("nope", x=1)
    err = info.value
    assert err.status == 500
    assert err.code == "database_error"
    for leaked in ("public.nope", "schema cache", "claim_jobs", "Searched"):
        assert leaked not in str(err)
        assert leaked not in err.message
        assert leaked not in json.dumps(err.details)


def test_non_json_error_body_is_a_database_error(db: Database, api: respx.MockRouter) -> None:
    api.post(f"{RPC}/fn").respond(500, text="<html>Internal Server Error</html>")
    with pytest.raises(DatabaseError) as info:
        db.call("fn")
    assert "html" not in info.value.message.lower()


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("connection refused"),
        httpx.ConnectTimeout("connect timed out"),
        httpx.ReadTimeout("read timed out"),
        httpx.RemoteProtocolError("server disconnected"),
    ],
    ids=["connect-error", "connect-timeout", "read-timeout", "disconnect"],
)
def test_transport_failures_map_to_unavailable(
    db: Database, api: respx.MockRouter, failure: httpx.TransportError
) -> None:
    route = api.post(f"{RPC}/claim_jobs").mock(side_effect=failure)
    with pytest.raises(Unavailable) as info:
        db.call("claim_jobs", worker_id="w", max_jobs=2)
    assert info.value.status == 503
    assert info.value.retry_after is not None
    assert info.value.retry_after > 0
    assert route.call_count == 1  # POST is not retried behind our back


def test_user_call_transport_failure_maps_to_unavailable(
    db: Database, api: respx.MockRouter, user: UserContext
) -> None:
    api.post(f"{RPC}/get_job").mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(Unavailable):
        db.as_user(user).call("get_job", job_id="1")


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (
            503,
            {
                "code": "PGRST001",
                "message": "Database client error",
                "hint": None,
                "details": "no connection to the server",
            },
        ),
        (
            503,
            {
                "code": "PGRST002",
                "message": "Could not query the database for the schema cache. Retrying.",
                "hint": None,
                "details": None,
            },
        ),
        (502, "<html><body>502 Bad Gateway</body></html>"),
        (504, "upstream request timeout"),
    ],
    ids=["PGRST001", "PGRST002", "502-html", "504-text"],
)
def test_upstream_unavailability_maps_to_unavailable(
    db: Database, api: respx.MockRouter, status: int, body: object
) -> None:
    route = api.post(f"{RPC}/claim_jobs")
    if isinstance(body, dict):
        route.respond(status, json=body)
    else:
        route.respond(status, text=str(body))
    with pytest.raises(Unavailable):
        db.call("claim_jobs", worker_id="w", max_jobs=2)


@pytest.mark.parametrize("code", ["PGRST301", "PGRST303"])
def test_jwt_rejected_by_postgrest_maps_to_unauthorized(
    db: Database, api: respx.MockRouter, user: UserContext, code: str
) -> None:
    api.post(f"{RPC}/get_job").respond(
        401, json={"code": code, "message": "JWT expired", "hint": None, "details": None}
    )
    with pytest.raises(Unauthorized):
        db.as_user(user).call("get_job", job_id="1")


# --- name validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fn",
    [
        "x; drop table documents",
        "claim_jobs()",
        "public.claim_jobs",
        "../claim_jobs",
        "claim-jobs",
        "Claim_Jobs",
        "1claim",
        "",
        "a" * 64,
        "claim jobs",
        "claim_jobs?select=*",
    ],
)
def test_invalid_function_names_raise_before_any_request(
    db: Database, api: respx.MockRouter, fn: str
) -> None:
    catch_all = api.route().respond(200, json=None)
    with pytest.raises(ValueError, match="not a valid SQL function or parameter name"):
        db.call(fn)
    assert catch_all.call_count == 0
    assert api.calls.call_count == 0


@pytest.mark.parametrize("param", ["max jobs", "x; drop table t", "Worker", "a-b", "1x", "a" * 64])
def test_invalid_parameter_names_raise_before_any_request(
    db: Database, api: respx.MockRouter, user: UserContext, param: str
) -> None:
    catch_all = api.route().respond(200, json=None)
    with pytest.raises(ValueError):
        db.call("claim_jobs", **{param: 1})
    with pytest.raises(ValueError):
        db.as_user(user).call("get_job", **{param: 1})
    assert catch_all.call_count == 0


def test_longest_valid_name_is_accepted(db: Database, api: respx.MockRouter) -> None:
    name = "f" * 63
    route = api.post(f"{RPC}/{name}").respond(200, json=1)
    assert db.call(name, _p1=1) == 1
    assert route.call_count == 1


@pytest.mark.parametrize("where", ["function", "parameter"])
def test_trailing_newline_in_names_is_rejected(
    db: Database, api: respx.MockRouter, where: str
) -> None:
    catch_all = api.route().respond(200, json=None)
    with pytest.raises(ValueError):
        if where == "function":
            db.call("claim_jobs\n")
        else:
            db.call("claim_jobs", **{"worker_id\n": "w"})
    assert catch_all.call_count == 0
