"""shared.platform.errors: the exception hierarchy and the SQLSTATE -> DocflowError translation."""

from __future__ import annotations

import json

import pytest

from shared.platform import errors
from shared.platform.errors import (
    BadRequest,
    ConfigError,
    Conflict,
    DatabaseError,
    DocflowError,
    Forbidden,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    Unauthorized,
    Unavailable,
    Unprocessable,
    UnsupportedMediaType,
    from_sqlstate,
)

DF_CODES = [
    ("DF400", BadRequest, 400),
    ("DF401", Unauthorized, 401),
    ("DF403", Forbidden, 403),
    ("DF404", NotFound, 404),
    ("DF409", Conflict, 409),
    ("DF422", Unprocessable, 422),
    ("DF429", RateLimited, 429),
]

STANDARD_STATES = [
    ("42501", Forbidden),  # insufficient_privilege
    ("23505", Conflict),  # unique_violation
    ("23503", Conflict),  # foreign_key_violation
    ("23514", Unprocessable),  # check_violation
    ("22P02", Unprocessable),  # invalid_text_representation
    ("22023", Unprocessable),  # invalid_parameter_value
    ("22007", Unprocessable),  # invalid_datetime_format
    ("22008", Unprocessable),  # datetime_field_overflow
    ("57014", Unavailable),  # query_canceled
    ("53300", Unavailable),  # too_many_connections
    ("57P01", Unavailable),  # admin_shutdown
    ("57P03", Unavailable),  # cannot_connect_now
]


# --- the hierarchy --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "status", "code"),
    [
        (BadRequest, 400, "bad_request"),
        (Unauthorized, 401, "unauthorized"),
        (Forbidden, 403, "forbidden"),
        (NotFound, 404, "not_found"),
        (MethodNotAllowed, 405, "method_not_allowed"),
        (Conflict, 409, "conflict"),
        (PayloadTooLarge, 413, "payload_too_large"),
        (UnsupportedMediaType, 415, "unsupported_media_type"),
        (Unprocessable, 422, "validation_error"),
        (RateLimited, 429, "rate_limited"),
        (Unavailable, 503, "unavailable"),
        (DatabaseError, 500, "database_error"),
        (ConfigError, 500, "config_error"),
    ],
)
def test_each_error_has_its_status_and_default_code(
    cls: type[DocflowError], status: int, code: str
) -> None:
    err = cls("boom")
    assert isinstance(err, DocflowError)
    assert err.status == status
    assert err.code == code
    assert err.message == "boom"
    assert str(err) == "boom"
    assert err.retry_after is None
    assert err.details == {}


def test_explicit_code_retry_after_and_details_are_kept() -> None:
    err = RateLimited("slow down", code="upload_rate", retry_after=7, details={"limit": 30})
    assert (err.code, err.retry_after, err.details) == ("upload_rate", 7, {"limit": 30})


# --- DF codes -------------------------------------------------------------------------------


@pytest.mark.parametrize(("sqlstate", "cls", "status"), DF_CODES)
def test_df_codes_map_to_their_class_with_hint_as_code(
    sqlstate: str, cls: type[DocflowError], status: int
) -> None:
    err = from_sqlstate(sqlstate, "the message", "the_hint")
    assert type(err) is cls
    assert err.status == status
    assert err.code == "the_hint"
    assert err.message == "the message"


@pytest.mark.parametrize(("sqlstate", "cls", "status"), DF_CODES)
def test_df_codes_without_hint_keep_the_default_code(
    sqlstate: str, cls: type[DocflowError], status: int
) -> None:
    for hint in (None, ""):
        err = from_sqlstate(sqlstate, "msg", hint)
        assert type(err) is cls
        assert err.code == cls.default_code


def test_df409_lease_lost() -> None:
    err = from_sqlstate("DF409", "job lease lost", "lease_lost", None)
    assert isinstance(err, Conflict)
    assert err.code == "lease_lost"


# --- standard SQLSTATEs ---------------------------------------------------------------------


@pytest.mark.parametrize(("sqlstate", "cls"), STANDARD_STATES)
def test_standard_sqlstates_map_to_their_class(sqlstate: str, cls: type[DocflowError]) -> None:
    err = from_sqlstate(sqlstate, "some message")
    assert type(err) is cls


@pytest.mark.parametrize(("sqlstate", "cls"), STANDARD_STATES)
def test_hint_is_not_a_code_for_standard_sqlstates(sqlstate: str, cls: type[DocflowError]) -> None:
    # Postgres' own hints are prose ("Perhaps you meant ..."), never a machine code.
    err = from_sqlstate(sqlstate, "msg", "Perhaps you meant to reference the column x.")
    assert err.code == cls.default_code


def test_insufficient_privilege_does_not_echo_the_sql_message() -> None:
    err = from_sqlstate("42501", "permission denied for function claim_jobs")
    assert isinstance(err, Forbidden)
    assert "claim_jobs" not in err.message
    assert "permission denied" not in str(err)


def test_every_mapped_state_is_covered_here() -> None:
    covered = {s for s, _, _ in DF_CODES} | {s for s, _ in STANDARD_STATES}
    assert set(errors._SQLSTATE) == covered


# --- DETAIL JSON ----------------------------------------------------------------------------


def test_detail_json_retry_after_is_parsed() -> None:
    err = from_sqlstate("DF429", "too many", "rate_limited", '{"retry_after": 12}')
    assert isinstance(err, RateLimited)
    assert err.retry_after == 12
    assert isinstance(err.retry_after, int)
    assert err.code == "rate_limited"
    assert "retry_after" not in err.details


@pytest.mark.parametrize(("raw", "expected"), [("12", 12), (12.0, 12), (3, 3)])
def test_retry_after_is_coerced_to_int(raw: object, expected: int) -> None:
    err = from_sqlstate("DF429", "too many", "rate_limited", json.dumps({"retry_after": raw}))
    assert err.retry_after == expected


def test_other_detail_keys_become_details() -> None:
    err = from_sqlstate(
        "DF409", "busy", "job_active", '{"job_id": "abc", "status": "processing", "retry_after": 3}'
    )
    assert err.details == {"job_id": "abc", "status": "processing"}
    assert err.retry_after == 3


@pytest.mark.parametrize("detail", [None, "", "not json", "[1, 2]", '"a string"', "12", "{broken"])
def test_detail_that_is_not_a_json_object_is_ignored(detail: str | None) -> None:
    err = from_sqlstate("DF429", "too many", "rate_limited", detail)
    assert isinstance(err, RateLimited)
    assert err.retry_after is None
    assert err.details == {}


def test_detail_is_also_parsed_for_standard_states() -> None:
    err = from_sqlstate(
        "57014", "canceling statement due to statement timeout", None, '{"retry_after": 2}'
    )
    assert isinstance(err, Unavailable)
    assert err.retry_after == 2


# --- unknown states -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sqlstate", [None, "", "XX000", "42883", "42P01", "P0001", "DF500", "DF999", "PGRST202"]
)
def test_unknown_states_become_a_generic_database_error(sqlstate: str | None) -> None:
    sql_message = 'function public.secret_fn(integer) does not exist at table "users"'
    err = from_sqlstate(sqlstate, sql_message, "secret_hint", '{"table": "auth.users"}')
    assert type(err) is DatabaseError
    assert err.status == 500
    assert err.code == "database_error"
    assert err.message == "unexpected database error"
    assert err.details == {"sqlstate": sqlstate or "unknown"}
    for leaked in ("secret_fn", "users", "secret_hint"):
        assert leaked not in str(err)
        assert leaked not in err.message
        assert leaked not in json.dumps(err.details)
    assert err.retry_after is None
