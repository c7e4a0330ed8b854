"""HTTP helpers: the deployable functions as functions-framework loads them, the requests the
tests send (multipart and JSON), and the contract's error shape."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import functions_framework
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from shared.platform.client import UserContext
from shared.platform.config import get_settings
from shared.platform.storage import LocalStorage, get_storage
from tests.support.data import REPO_ROOT, TEXT
from tests.support.tokens import bearer, scheduler_headers

# The `client_for` fixture (tests/acceptance/conftest.py): a target's name to its test client.
ClientFor = Callable[[str], FlaskClient]


def load_target(target: str) -> FlaskClient:
    """A test client of one deployable target, loaded from main.py by functions-framework
    (the loader of `functions-framework --target NAME` and of Cloud Functions)."""
    app: Any = functions_framework.create_app(target=target, source=str(REPO_ROOT / "main.py"))
    client: FlaskClient = app.test_client()
    return client


def post_upload(
    client: FlaskClient,
    user: UserContext | str,
    data: bytes = TEXT,
    filename: str = "report.txt",
    content_type: str | None = None,
    *,
    field: str = "file",
    priority: str | None = None,
    form: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> TestResponse:
    """`POST /uploads` as a multipart form, as the user (or with a raw token).

    The part's type is `content_type`, else guessed from the name; `form` adds fields.
    """
    part = (
        (io.BytesIO(data), filename)
        if content_type is None
        else (
            io.BytesIO(data),
            filename,
            content_type,
        )
    )
    fields: dict[str, Any] = {field: part, **(form or {})}
    if priority is not None:
        fields["priority"] = priority
    return client.post(
        "/uploads",
        data=fields,
        headers={**bearer(user), **(headers or {})},
        content_type="multipart/form-data",
    )


def uploaded(client: FlaskClient, user: UserContext | str, *args: Any, **kwargs: Any) -> Any:
    """`post_upload`, which must be accepted (202): its answer (document_id, job_id, status)."""
    response = post_upload(client, user, *args, **kwargs)
    assert response.status_code == 202, response.get_data(as_text=True)
    return response.get_json()


def post_raw(
    client: FlaskClient,
    user: UserContext | str,
    body: bytes,
    content_type: str,
    *,
    path: str = "/uploads",
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> TestResponse:
    """A body sent exactly as given, as the user (for bodies a form cannot make)."""
    return client.post(
        path,
        data=body,
        content_type=content_type,
        headers={**bearer(user), **(headers or {})},
        **kwargs,
    )


def multipart_body(
    data: bytes, filename: str, content_type: str = "text/plain", field: str = "file"
) -> tuple[bytes, str]:
    """A one-file multipart body built ahead, and its Content-Type (for `post_raw`)."""
    boundary = f"docflow-{uuid.uuid4().hex}"
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    body = head + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def process_jobs(client: FlaskClient, body: dict[str, Any] | None = None) -> TestResponse:
    """`POST /process_jobs` as Cloud Scheduler sends it."""
    return client.post("/process_jobs", json=body or {}, headers=scheduler_headers())


def assert_error(response: TestResponse, status: int, code: str | None = None) -> dict[str, Any]:
    """The contract's error: JSON `{"error": {"code", "message"}}`, never HTML or a traceback."""
    text = response.get_data(as_text=True)
    assert response.status_code == status, text
    assert response.mimetype == "application/json", text
    assert "Traceback" not in text and "<html" not in text.lower()
    body = response.get_json()
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code, error
    return error


def stored_objects() -> list[Path]:
    """Every file in the local storage bucket (temporary upload files included)."""
    storage = get_storage()
    assert isinstance(storage, LocalStorage)
    assert str(storage.root).startswith(str(get_settings().storage_dir))
    if not storage.root.exists():
        return []
    return sorted(p for p in storage.root.rglob("*") if p.is_file())
