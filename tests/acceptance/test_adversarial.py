"""Adversarial requests and the authorization matrix.

Every bad request gets a 4xx JSON error (never a 5xx, never HTML), and a rejected upload leaves
nothing behind: no document or job row, no stored object.
"""

from __future__ import annotations

import base64
import io
import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from shared.platform.auth import mint_token
from shared.platform.config import get_settings
from shared.platform.storage import get_storage
from tests.support.data import SAMPLES
from tests.support.env import configure, database_down
from tests.support.http import (
    ClientFor,
    assert_error,
    post_raw,
    post_upload,
    process_jobs,
    stored_objects,
)
from tests.support.rows import row_count
from tests.support.tokens import b64url, bearer, forged, hand_signed, scheduler_headers
from tests.support.users import MakeUser

PDF = (SAMPLES / "annual-report.pdf").read_bytes()
PNG = (SAMPLES / "bad" / "image.png").read_bytes()
TEXT = b"A plain document. It has sentences."
ZIP_NOT_DOCX = base64.b64decode(
    "UEsDBBQAAAAAAAAAIQDW0NrXBQAAAAUAAAAFAAAAYS50eHRoZWxsb1BLAQIUABQAAAAAAAAAIQDW0NrXBQAAAAUA"
    "AAAFAAAAAAAAAAAAAAAAAAAAAABhLnR4dFBLBQYAAAAAAQABADMAAAAoAAAAAAA="
)


def _multipart(
    client: FlaskClient,
    token: str,
    data: bytes,
    filename: str = "doc.txt",
    content_type: str = "application/octet-stream",
    **options: Any,
) -> Any:
    """`post_upload` with this file's default part: `doc.txt`, declared as octet-stream."""
    return post_upload(client, token, data, filename, content_type, **options)


# Each case: (name, call(client, token, user_id) -> response, expected status, expected code)
Case = tuple[str, Callable[[FlaskClient, str, str], Any], int, str | None]

UPLOAD_CASES: list[Case] = [
    (
        "multipart without boundary",
        lambda c, t, u: post_raw(c, t, b"--x\r\n\r\n", "multipart/form-data"),
        400,
        "missing_file",
    ),
    (
        "multipart never closed",
        lambda c, t, u: post_raw(
            c,
            t,
            b'--B\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\nhello',
            "multipart/form-data; boundary=B",
        ),
        400,
        None,
    ),
    (
        "multipart garbage",
        lambda c, t, u: post_raw(c, t, b"\x00\xff" * 500, "multipart/form-data; boundary=zz"),
        400,
        None,
    ),
    (
        "wrong field name",
        lambda c, t, u: _multipart(c, t, TEXT, field="files"),
        400,
        "missing_file",
    ),
    ("not multipart", lambda c, t, u: post_raw(c, t, TEXT, "text/plain"), 415, "not_multipart"),
    (
        "form-urlencoded",
        lambda c, t, u: post_raw(c, t, b"file=hello", "application/x-www-form-urlencoded"),
        415,
        "not_multipart",
    ),
    ("empty file", lambda c, t, u: _multipart(c, t, b""), 400, "empty_file"),
    ("PNG name", lambda c, t, u: _multipart(c, t, PNG, "photo.png"), 415, "extension_not_allowed"),
    ("PNG bytes", lambda c, t, u: _multipart(c, t, PNG, "photo.txt"), 415, "unsupported_content"),
    (
        "PNG declared as PDF",
        lambda c, t, u: _multipart(c, t, PNG, "report.pdf", "application/pdf"),
        415,
        "unsupported_content",
    ),
    (
        "text named .pdf",
        lambda c, t, u: _multipart(c, t, TEXT, "report.pdf"),
        415,
        "extension_mismatch",
    ),
    (
        "PDF named .docx",
        lambda c, t, u: _multipart(c, t, PDF, "report.docx"),
        415,
        "extension_mismatch",
    ),
    (
        "PDF declared text/plain",
        lambda c, t, u: _multipart(c, t, PDF, "report", "text/plain"),
        415,
        "content_type_mismatch",
    ),
    (
        "text declared application/pdf",
        lambda c, t, u: _multipart(c, t, TEXT, "notes", "application/pdf"),
        415,
        "content_type_mismatch",
    ),
    (
        "declared image/jpeg",
        lambda c, t, u: _multipart(c, t, TEXT, "notes", "image/jpeg"),
        415,
        "content_type_mismatch",
    ),
    (
        "wrong magic %PDX",
        lambda c, t, u: _multipart(c, t, b"%PDX-1.4 not a pdf", "x.pdf"),
        415,
        "extension_mismatch",
    ),
    (
        "zip that is not a docx",
        lambda c, t, u: _multipart(c, t, ZIP_NOT_DOCX, "a.docx"),
        415,
        "unsupported_content",
    ),
    (
        "executable",
        lambda c, t, u: _multipart(c, t, b"MZ\x90\x00\x03" + bytes(200), "a.txt"),
        415,
        "unsupported_content",
    ),
    (
        "double extension .pdf.exe",
        lambda c, t, u: _multipart(c, t, PDF, "report.pdf.exe"),
        415,
        "extension_not_allowed",
    ),
    (
        "script extension",
        lambda c, t, u: _multipart(c, t, TEXT, "shell.php"),
        415,
        "extension_not_allowed",
    ),
    (
        "NUL byte in the name",
        lambda c, t, u: _multipart(c, t, PDF, "report.pdf\x00.txt"),
        400,
        "invalid_filename",
    ),
    (
        "traversal name",
        lambda c, t, u: _multipart(c, t, TEXT, "../../etc/passwd"),
        400,
        "invalid_filename",
    ),
    (  # werkzeug keeps only what follows the last backslash (old IE sent full paths)
        "windows traversal",
        lambda c, t, u: _multipart(c, t, TEXT, "..\\..\\win.ini"),
        415,
        "extension_not_allowed",
    ),
    (
        "RTL override name",
        lambda c, t, u: _multipart(c, t, TEXT, "invoice\u202etxt.exe"),
        400,
        "invalid_filename",
    ),
    (
        "control characters",
        lambda c, t, u: _multipart(c, t, TEXT, "a\x1b[31m.txt"),
        400,
        "invalid_filename",
    ),
    (
        "absurdly long name",
        lambda c, t, u: _multipart(c, t, TEXT, "a" * 5000 + ".txt"),
        400,
        "invalid_filename",
    ),
    (
        "bad priority",
        lambda c, t, u: _multipart(c, t, TEXT, form={"priority": "urgent"}),
        422,
        "invalid_priority",
    ),
    (
        "SQL in priority",
        lambda c, t, u: _multipart(
            c, t, TEXT, form={"priority": "high'); drop table documents;--"}
        ),
        422,
        "invalid_priority",
    ),
    (
        "idempotency key too long",
        lambda c, t, u: _multipart(c, t, TEXT, headers={"Idempotency-Key": "k" * 300}),
        400,
        "invalid_idempotency_key",
    ),
    (
        "declared length over the limit",
        lambda c, t, u: _multipart(c, t, b"x" * 100_000),
        413,
        "too_large",
    ),
    (
        "multipart body over the limit",
        lambda c, t, u: post_raw(
            c,
            t,
            b'--B\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\n'
            + b"y" * 200_000
            + b"\r\n--B--\r\n",
            "multipart/form-data; boundary=B",
            input_stream=None,
        ),
        413,
        "too_large",
    ),
    (
        "JSON that is not JSON",
        lambda c, t, u: post_raw(c, t, b"{not json", "application/json"),
        400,
        "invalid_json",
    ),
    (
        "JSON array",
        lambda c, t, u: post_raw(c, t, b"[1, 2]", "application/json"),
        400,
        "invalid_json",
    ),
    (
        "storage_path missing",
        lambda c, t, u: post_raw(c, t, b"{}", "application/json"),
        422,
        "invalid_storage_path",
    ),
    (
        "storage_path a number",
        lambda c, t, u: post_raw(c, t, b'{"storage_path": 5}', "application/json"),
        422,
        "invalid_storage_path",
    ),
    (
        "storage_path of another user",
        lambda c, t, u: post_raw(
            c, t, json.dumps({"storage_path": f"{uuid.uuid4()}/x.pdf"}).encode(), "application/json"
        ),
        404,
        "object_not_found",
    ),
    (
        "storage_path traversal",
        lambda c, t, u: post_raw(
            c,
            t,
            json.dumps({"storage_path": f"{u}/../{uuid.uuid4()}/x.pdf"}).encode(),
            "application/json",
        ),
        404,
        "object_not_found",
    ),
    (
        "storage_path that does not exist",
        lambda c, t, u: post_raw(
            c, t, json.dumps({"storage_path": f"{u}/missing.pdf"}).encode(), "application/json"
        ),
        404,
        "object_not_found",
    ),
    (
        "huge Authorization header",
        lambda c, t, u: c.post(
            "/uploads",
            data={"file": (io.BytesIO(TEXT), "a.txt")},
            headers={"Authorization": "Bearer " + "x" * 100_000},
        ),
        401,
        "invalid_token",
    ),
    (
        "alg none token",
        lambda c, t, u: _multipart(c, _alg_none_token(u), TEXT),
        401,
        "invalid_token",
    ),
    (
        "Basic auth",
        lambda c, t, u: c.post(
            "/uploads",
            data={"file": (io.BytesIO(TEXT), "a")},
            headers={"Authorization": "Basic dXNlcjpwYXNz"},
        ),
        401,
        "invalid_token",
    ),
    ("forged token", lambda c, t, u: _multipart(c, _forged(u), TEXT), 401, "invalid_token"),
    (
        "expired token",
        lambda c, t, u: _multipart(c, mint_token(get_settings(), u, ttl_seconds=-3600), TEXT),
        401,
        "token_expired",
    ),
    (
        "wrong audience",
        lambda c, t, u: _multipart(
            c, mint_token(get_settings(), u, extra={"aud": "service"}), TEXT
        ),
        401,
        "invalid_token",
    ),
    (
        "service_role token",
        lambda c, t, u: _multipart(
            c, mint_token(get_settings(), u, extra={"role": "service_role"}), TEXT
        ),
        401,
        "invalid_token",
    ),
    (
        "wrong method",
        lambda c, t, u: c.put("/uploads", headers={"Authorization": f"Bearer {t}"}),
        405,
        "method_not_allowed",
    ),
]


def _alg_none_token(user_id: str) -> str:
    body = {"sub": user_id, "aud": "authenticated", "role": "authenticated", "exp": 4102444800}
    return hand_signed({"alg": "none", "typ": "JWT"}, body, None)


def _forged(user_id: str) -> str:
    body = {"sub": user_id, "aud": "authenticated", "role": "authenticated", "exp": 4102444800}
    return forged(body)


@pytest.fixture
def small_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    configure(monkeypatch, MAX_UPLOAD_BYTES=10000)  # the sample PDF (5 KB) fits


@pytest.mark.parametrize(
    ("name", "call", "status", "code"), UPLOAD_CASES, ids=[c[0] for c in UPLOAD_CASES]
)
def test_bad_uploads_get_a_4xx_and_leave_nothing(
    client_for: ClientFor, make_user: MakeUser, sql, small_limit, name, call, status, code
) -> None:
    user = make_user()
    response = call(client_for("uploads"), user.token, user.user_id)
    assert_error(response, status, code)
    assert row_count(sql, "documents") == 0
    assert row_count(sql, "processing_jobs") == 0
    assert stored_objects() == []


OTHER_CASES: list[tuple[str, str, str, dict[str, Any], int, str | None]] = [
    # (name, method, path, kwargs, status, code); {job} {doc} are filled in
    ("job id not a uuid", "GET", "/jobs/not-a-uuid", {}, 404, "job_not_found"),
    ("SQL in the job id", "GET", "/jobs/1'%20or%20'1'='1", {}, 404, "job_not_found"),
    ("unknown job", "GET", f"/jobs/{uuid.uuid4()}", {}, 404, "job_not_found"),
    ("negative limit", "GET", "/jobs?limit=-1", {}, 422, "invalid_limit"),
    ("limit not a number", "GET", "/jobs?limit=1e9", {}, 422, "invalid_limit"),
    ("garbage cursor", "GET", "/jobs?cursor=%27%3B--", {}, 422, "invalid_cursor"),
    ("SQL in status", "GET", "/jobs?status=pending'%20or%201=1--", {}, 422, "invalid_status"),
    ("DELETE a job", "DELETE", "/jobs/{job}", {}, 405, "method_not_allowed"),
    ("PATCH a document", "PATCH", "/documents/{doc}", {}, 405, "method_not_allowed"),
    ("document id not a uuid", "GET", "/documents/..%2F..%2Fetc/text", {}, 404, None),
    (
        "unknown document text",
        "GET",
        f"/documents/{uuid.uuid4()}/text",
        {},
        404,
        "document_not_found",
    ),
    ("cancel with a GET", "GET", "/jobs/{job}/cancel", {}, 405, "method_not_allowed"),
    ("retry a pending job", "POST", "/jobs/{job}/retry", {}, 409, "not_retryable"),
    ("reanalyze with an active job", "POST", "/documents/{doc}/reanalyze", {}, 409, "job_active"),
    (
        "analytics for a year",
        "GET",
        "/admin/analytics?window=1y",
        {"admin": True},
        422,
        "invalid_window",
    ),
    ("unknown route", "GET", "/etc/passwd", {}, 404, "route_not_found"),
    (
        "process_jobs body not an object",
        "POST",
        "/process_jobs",
        {"scheduler": True, "json": [1]},
        400,
        "invalid_json",
    ),
    (
        "process_jobs budget not a number",
        "POST",
        "/process_jobs",
        {"scheduler": True, "json": {"max_jobs": "ten"}},
        422,
        "invalid_budget",
    ),
    (
        "process_jobs with a GET",
        "GET",
        "/process_jobs",
        {"scheduler": True},
        405,
        "method_not_allowed",
    ),
    (
        "CORS preflight from a stranger",
        "OPTIONS",
        "/uploads",
        {"headers": {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}},
        403,
        "cors_rejected",
    ),
]


@pytest.mark.parametrize(
    ("name", "method", "path", "kw", "status", "code"), OTHER_CASES, ids=[c[0] for c in OTHER_CASES]
)
def test_bad_requests_to_the_other_routes_get_a_4xx(
    server_client: FlaskClient, make_user: MakeUser, name, method, path, kw, status, code
) -> None:
    user = make_user()
    admin = make_user(admin=True)
    created = _multipart(server_client, user.token, TEXT).get_json()
    path = path.format(job=created["job_id"], doc=created["document_id"])
    headers = dict(kw.get("headers", {}))
    if kw.get("scheduler"):
        headers.update(scheduler_headers())
    elif kw.get("admin"):
        headers.update(bearer(admin))
    elif method != "OPTIONS":
        headers.update(bearer(user))
    response = server_client.open(path, method=method, headers=headers, json=kw.get("json"))
    assert_error(response, status, code)


# --- the authorization matrix -------------------------------------------------------------

ROLES = ("anon", "user_a", "user_b", "admin", "scheduler")


def test_authorization_matrix(server_client: FlaskClient, make_user: MakeUser, sql) -> None:
    a, b, admin = make_user(), make_user(), make_user(admin=True)
    tokens = {"user_a": a.token, "user_b": b.token, "admin": admin.token}

    def headers(role: str) -> dict[str, str]:
        if role == "scheduler":
            return scheduler_headers()
        return {"Authorization": f"Bearer {tokens[role]}"} if role in tokens else {}

    def a_job(*, process_it: bool = False, fail_it: bool = False) -> dict[str, str]:
        created = _multipart(server_client, a.token, TEXT).get_json()
        if fail_it:
            sql.execute(
                "update documents set storage_path = storage_path || '-gone' where id = %s",
                (created["document_id"],),
            )
        if process_it or fail_it:
            assert process_jobs(server_client).status_code == 200
        return created

    def an_alert() -> dict[str, str]:
        row = sql.execute(
            "insert into alert_events (service_name, alert_type, message)"
            " values (%s, 'service_down', 'down') returning id",
            (f"svc-{uuid.uuid4().hex[:8]}",),
        ).fetchone()
        assert row is not None
        return {"alert_id": str(row[0])}

    done = a_job(process_it=True)
    expected: dict[str, tuple[str, str, Callable[[], dict[str, str]] | None, dict[str, int]]] = {
        # route: (method, path template, fixture per role or None, role -> status)
        "upload": (
            "POST",
            "/uploads",
            None,
            {"anon": 401, "user_a": 202, "user_b": 202, "admin": 202, "scheduler": 401},
        ),
        "list jobs": (
            "GET",
            "/jobs",
            None,
            {"anon": 401, "user_a": 200, "user_b": 200, "admin": 200, "scheduler": 401},
        ),
        "get job": (
            "GET",
            "/jobs/{job_id}",
            lambda: done,
            {"anon": 401, "user_a": 200, "user_b": 404, "admin": 200, "scheduler": 401},
        ),
        "get document": (
            "GET",
            "/documents/{document_id}",
            lambda: done,
            {"anon": 401, "user_a": 200, "user_b": 404, "admin": 200, "scheduler": 401},
        ),
        "document text": (
            "GET",
            "/documents/{document_id}/text",
            lambda: done,
            {"anon": 401, "user_a": 200, "user_b": 404, "admin": 200, "scheduler": 401},
        ),
        "document markdown": (
            "GET",
            "/documents/{document_id}/markdown",
            lambda: done,
            {"anon": 401, "user_a": 200, "user_b": 404, "admin": 200, "scheduler": 401},
        ),
        "templates": (
            "GET",
            "/templates",
            None,
            {"anon": 401, "user_a": 200, "user_b": 200, "admin": 200, "scheduler": 401},
        ),
        "cancel": (
            "POST",
            "/jobs/{job_id}/cancel",
            a_job,
            {"anon": 401, "user_a": 200, "user_b": 404, "admin": 200, "scheduler": 401},
        ),
        "retry": (
            "POST",
            "/jobs/{job_id}/retry",
            lambda: a_job(fail_it=True),
            {"anon": 401, "user_a": 202, "user_b": 404, "admin": 202, "scheduler": 401},
        ),
        "reanalyze": (
            "POST",
            "/documents/{document_id}/reanalyze",
            lambda: a_job(process_it=True),
            {"anon": 401, "user_a": 202, "user_b": 404, "admin": 202, "scheduler": 401},
        ),
        "process_jobs": (
            "POST",
            "/process_jobs",
            None,
            {"anon": 401, "user_a": 401, "user_b": 401, "admin": 401, "scheduler": 200},
        ),
        "analytics": (
            "GET",
            "/admin/analytics",
            None,
            {"anon": 401, "user_a": 403, "user_b": 403, "admin": 200, "scheduler": 401},
        ),
        "dashboard page": (  # public: HTML without data; its script sends the admin token
            "GET",
            "/admin/dashboard",
            None,
            {"anon": 200, "user_a": 200, "user_b": 200, "admin": 200, "scheduler": 200},
        ),
        "probe_health": (
            "POST",
            "/probe_health",
            None,
            {"anon": 401, "user_a": 401, "user_b": 401, "admin": 401, "scheduler": 200},
        ),
        "retention": (
            "POST",
            "/retention",
            None,
            {"anon": 401, "user_a": 401, "user_b": 401, "admin": 401, "scheduler": 200},
        ),
        "queue health": (
            "GET",
            "/admin/queue",
            None,
            {"anon": 401, "user_a": 403, "user_b": 403, "admin": 200, "scheduler": 401},
        ),
        "services": (
            "GET",
            "/admin/services",
            None,
            {"anon": 401, "user_a": 403, "user_b": 403, "admin": 200, "scheduler": 401},
        ),
        "list alerts": (
            "GET",
            "/admin/alerts",
            None,
            {"anon": 401, "user_a": 403, "user_b": 403, "admin": 200, "scheduler": 401},
        ),
        "acknowledge alert": (
            "POST",
            "/admin/alerts/{alert_id}/acknowledge",
            an_alert,
            {"anon": 401, "user_a": 403, "user_b": 403, "admin": 200, "scheduler": 401},
        ),
        "resolve alert": (
            "POST",
            "/admin/alerts/{alert_id}/resolve",
            an_alert,
            {"anon": 401, "user_a": 403, "user_b": 403, "admin": 200, "scheduler": 401},
        ),
    }
    seen: dict[str, dict[str, int]] = {}
    for route, (method, template, fixture, _) in expected.items():
        seen[route] = {}
        for role in ROLES:
            target = fixture() if fixture else {}
            path = template.format(**target)
            kwargs: dict[str, Any] = {"headers": headers(role)}
            if route == "upload":
                kwargs.update(
                    data={"file": (io.BytesIO(TEXT), "a.txt")}, content_type="multipart/form-data"
                )
            elif method == "POST":
                kwargs["json"] = {}
            response = server_client.open(path, method=method, **kwargs)
            seen[route][role] = response.status_code
            if response.status_code >= 400:
                assert_error(response, response.status_code)
    assert seen == {route: statuses for route, (_, _, _, statuses) in expected.items()}


def test_a_rejected_signed_upload_keeps_the_clients_object(
    client_for: ClientFor, make_user: MakeUser, sql
) -> None:
    """The signed-upload flow: the object is the client's; a rejection does not delete it, and
    an accepted one is registered without copying."""
    user = make_user()
    storage = get_storage()
    storage.put(f"{user.user_id}/photo.txt", PNG, "image/png")
    storage.put(f"{user.user_id}/big-report.pdf", PDF, "application/pdf")
    uploads = client_for("uploads")
    rejected = post_raw(
        uploads,
        user.token,
        json.dumps({"storage_path": f"{user.user_id}/photo.txt"}).encode(),
        "application/json",
    )
    assert_error(rejected, 415, "unsupported_content")  # refused after reading its bytes
    assert storage.exists(f"{user.user_id}/photo.txt")
    accepted = post_raw(
        uploads,
        user.token,
        json.dumps({"storage_path": f"{user.user_id}/big-report.pdf", "priority": "high"}).encode(),
        "application/json",
    )
    assert accepted.status_code == 202, accepted.get_data(as_text=True)
    row = sql.execute(
        "select storage_path, content_type, original_filename from documents"
    ).fetchone()
    assert row == (f"{user.user_id}/big-report.pdf", "application/pdf", "big-report.pdf")
    assert len(stored_objects()) == 2  # nothing copied, nothing deleted


def test_an_upload_with_the_database_down_is_503_and_keeps_no_object(
    client_for: ClientFor, make_user: MakeUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = make_user()
    uploads = client_for("uploads")
    database_down(monkeypatch)
    response = _multipart(uploads, user.token, TEXT)
    error = assert_error(response, 503, "unavailable")
    assert int(response.headers["Retry-After"]) == error["retry_after"] > 0
    assert stored_objects() == []  # the object stored before the failed insert was deleted


def test_non_finite_budgets_are_422_and_odd_cursor_timestamps_are_understood(
    server_client: FlaskClient, make_user: MakeUser
) -> None:
    """Found by hand next to the schemathesis run: Python's JSON accepts NaN, and Python's ISO
    parser accepts timestamps Postgres does not."""
    for body in (b'{"max_jobs": NaN}', b'{"max_seconds": Infinity}'):
        response = server_client.post(
            "/process_jobs", data=body, headers=scheduler_headers(), content_type="application/json"
        )
        assert_error(response, 422, "invalid_budget")
    user = make_user()
    for created_at in ("2011-W01-2", "2026-01-01T00:00:00+23:59"):
        raw = json.dumps([created_at, str(uuid.uuid4())]).encode()
        cursor = b64url(raw)
        response = server_client.get("/jobs", query_string={"cursor": cursor}, headers=bearer(user))
        assert response.status_code == 200, response.get_data(as_text=True)
