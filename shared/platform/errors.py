"""docflow's exceptions: one base class, a flat hierarchy, each with its HTTP status.

Database and HTTP errors are translated into these at the boundary (`shared.platform.client`,
`shared.platform.storage`); the HTTP layer turns any of them into the contract's JSON error body.
"""

from __future__ import annotations

import json
import math
from typing import Any, ClassVar


class DocflowError(Exception):
    status: ClassVar[int] = 500
    default_code: ClassVar[str] = "internal"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        retry_after: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.retry_after = retry_after
        self.details = details or {}


class ConfigError(DocflowError):
    default_code = "config_error"


class BadRequest(DocflowError):
    status = 400
    default_code = "bad_request"


class Unauthorized(DocflowError):
    status = 401
    default_code = "unauthorized"


class Forbidden(DocflowError):
    status = 403
    default_code = "forbidden"


class NotFound(DocflowError):
    status = 404
    default_code = "not_found"


class MethodNotAllowed(DocflowError):
    status = 405
    default_code = "method_not_allowed"


class Conflict(DocflowError):
    status = 409
    default_code = "conflict"


class PayloadTooLarge(DocflowError):
    status = 413
    default_code = "payload_too_large"


class UnsupportedMediaType(DocflowError):
    status = 415
    default_code = "unsupported_media_type"


class Unprocessable(DocflowError):
    status = 422
    default_code = "validation_error"


class RateLimited(DocflowError):
    status = 429
    default_code = "rate_limited"


class Unavailable(DocflowError):
    status = 503
    default_code = "unavailable"


class DatabaseError(DocflowError):
    """An unexpected database error (a bug or a schema mismatch, not the caller's fault)."""

    default_code = "database_error"


# SQL functions raise with SQLSTATE class "DF" (ours): DF400, DF401, DF403, DF404, DF409, DF422,
# DF429. HINT carries the machine-readable code, DETAIL optional JSON (e.g. retry_after).
_SQLSTATE: dict[str, type[DocflowError]] = {
    "DF400": BadRequest,
    "DF401": Unauthorized,
    "DF403": Forbidden,
    "DF404": NotFound,
    "DF409": Conflict,
    "DF422": Unprocessable,
    "DF429": RateLimited,
    "42501": Forbidden,  # insufficient_privilege
    "23505": Conflict,  # unique_violation
    "23503": Conflict,  # foreign_key_violation
    "23514": Unprocessable,  # check_violation
    "22P02": Unprocessable,  # invalid_text_representation (a bad uuid, say)
    "22023": Unprocessable,  # invalid_parameter_value
    "22007": Unprocessable,  # invalid_datetime_format
    "22008": Unprocessable,  # datetime_field_overflow
    "57014": Unavailable,  # query_canceled (statement timeout)
    "53300": Unavailable,  # too_many_connections
    "57P01": Unavailable,  # admin_shutdown
    "57P03": Unavailable,  # cannot_connect_now
}


_GENERIC: dict[type[DocflowError], str] = {
    Forbidden: "not allowed",
    Conflict: "the request conflicts with the current state",
    Unprocessable: "invalid value",
    Unavailable: "database unavailable, try again",
}


def from_sqlstate(
    sqlstate: str | None, message: str, hint: str | None = None, detail: Any = None
) -> DocflowError:
    """Translate a database error (from psycopg or PostgREST) into a DocflowError."""
    cls = _SQLSTATE.get(sqlstate or "", DatabaseError)
    extra: dict[str, Any] = {}
    if isinstance(detail, str) and detail:
        try:
            parsed = json.loads(detail)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            extra = parsed
    elif isinstance(detail, dict):
        extra = dict(detail)
    retry_after: int | None = None
    raw_retry = extra.pop("retry_after", None)
    try:
        if raw_retry is not None and not isinstance(raw_retry, bool):
            retry_after = max(1, math.ceil(float(raw_retry)))
    except (TypeError, ValueError, OverflowError):
        retry_after = None
    code = hint if (sqlstate or "").startswith("DF") and hint else None
    if cls is DatabaseError:
        # Never leak SQL internals to callers; the log keeps the original.
        return DatabaseError(
            "unexpected database error", details={"sqlstate": sqlstate or "unknown"}
        )
    if not (sqlstate or "").startswith("DF"):
        # Our own DF errors carry messages written for callers; Postgres' own messages name
        # constraints and columns, so callers get a generic sentence instead.
        message = _GENERIC.get(cls, message)
    return cls(
        message,
        code=code,
        retry_after=retry_after,
        details=extra,
    )


class JobError(Exception):
    """A processing failure with a reason code; recoverable ones are retried with backoff.

    Not an HTTP error: the worker records it on the job (error code, message, recoverable).
    """

    def __init__(self, code: str, message: str, recoverable: bool = False) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.recoverable = recoverable


class JobStopped(Exception):
    """The job was cancelled, timed out, lost its lease or the worker is shutting down:
    the handler should stop (raised by `JobContext.check()`)."""
