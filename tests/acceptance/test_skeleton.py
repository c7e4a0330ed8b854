"""The walking skeleton over HTTP, against the real Postgres.

Every function is loaded from main.py by functions-framework (as `functions-framework --target
NAME` and Cloud Functions load it) and driven through its test client; the one-port app of
`docflow serve` is driven the same way. Checks go to the database through the `sql` fixture
(superuser, independent of the code under test) and to storage through its backend.
"""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from shared.platform import events
from shared.platform.auth import mint_token
from shared.platform.client import Database, UserContext
from shared.platform.config import get_settings
from shared.platform.log import JsonFormatter
from shared.platform.storage import get_storage
from tests.support.data import PNG, TEXT
from tests.support.env import configure
from tests.support.env import database_down as take_database_down
from tests.support.http import (
    ClientFor,
    assert_error,
    post_upload,
    process_jobs,
    stored_objects,
)
from tests.support.rows import event_counts, row_count, storage_path
from tests.support.tokens import bearer, forged, scheduler_headers
from tests.support.users import MakeUser
from tests.support.waiting import wait_until


@pytest.fixture
def users(make_user: MakeUser) -> tuple[UserContext, UserContext, UserContext]:
    """(owner, another user, admin)."""
    return make_user(), make_user(), make_user(admin=True)


# --- the walking skeleton, one function per target -----------------------------------------


def test_walking_skeleton_through_each_target(
    client_for: ClientFor, users: tuple[UserContext, UserContext, UserContext], sql
) -> None:
    owner, other, admin = users

    # upload
    response = post_upload(client_for("uploads"), owner, priority="high")
    assert response.status_code == 202, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"document_id", "job_id", "status"}
    assert body["status"] == "pending"
    document_id, job_id = body["document_id"], body["job_id"]
    uuid.UUID(document_id)
    uuid.UUID(job_id)

    row = sql.execute(
        "select d.user_id::text, d.content_type, d.size_bytes, d.original_filename,"
        " j.status, j.priority"
        " from public.documents d join public.processing_jobs j on j.document_id = d.id"
        " where d.id = %s and j.id = %s",
        (document_id, job_id),
    ).fetchone()
    assert row == (owner.user_id, "text/plain", len(TEXT), "report.txt", "pending", "high")
    path = storage_path(sql, document_id)
    assert path.startswith(f"{owner.user_id}/")
    assert get_storage().exists(path)
    assert get_storage().get(path) == TEXT
    assert event_counts(sql, job_id) == {"upload_started": 1}

    # process
    response = process_jobs(client_for("process_jobs"))
    assert response.status_code == 200, response.get_data(as_text=True)
    report = response.get_json()
    assert report["claimed"] == 1
    assert report["completed"] == 1
    assert report["failed"] == 0
    assert event_counts(sql, job_id) == {
        "upload_started": 1,
        "processing_started": 1,
        "completed": 1,
    }

    # the job: owner, another user, admin
    jobs = client_for("jobs")
    response = jobs.get(f"/jobs/{job_id}", headers=bearer(owner))
    assert response.status_code == 200, response.get_data(as_text=True)
    job = response.get_json()
    assert job["id"] == job_id
    assert job["document_id"] == document_id
    assert job["status"] == "completed"
    assert job["progress"] == 100
    assert job["attempts"] == 1
    assert job["error"] is None
    result = job["result"]
    assert result["words"] == len(TEXT.decode().split())
    assert result["characters"] == len(TEXT.decode())
    assert result["summary"].startswith("Quarterly report for the harbour office.")
    assert result["detected_content_type"] == "text/plain"
    assert result["extractor"] and result["summarizer"]
    assert isinstance(result["timings_ms"], dict) and result["timings_ms"]
    assert "lease_owner" not in job

    assert_error(jobs.get(f"/jobs/{job_id}", headers=bearer(other)), 404)
    response = jobs.get(f"/jobs/{job_id}", headers=bearer(admin))
    assert response.status_code == 200
    assert response.get_json()["status"] == "completed"

    # the document: owner, another user, admin
    response = jobs.get(f"/documents/{document_id}", headers=bearer(owner))
    assert response.status_code == 200, response.get_data(as_text=True)
    document = response.get_json()
    assert document["id"] == document_id
    assert document["content_type"] == "text/plain"
    assert document["size_bytes"] == len(TEXT)
    assert document["original_filename"] == "report.txt"
    assert document["latest_job"]["id"] == job_id
    assert document["latest_job"]["status"] == "completed"
    assert "storage_path" not in document

    assert_error(jobs.get(f"/documents/{document_id}", headers=bearer(other)), 404)
    response = jobs.get(f"/documents/{document_id}", headers=bearer(admin))
    assert response.status_code == 200
    assert response.get_json()["id"] == document_id

    # analytics
    admin_client = client_for("admin")
    response = admin_client.get("/admin/analytics?window=1h", headers=bearer(admin))
    assert response.status_code == 200, response.get_data(as_text=True)
    analytics = response.get_json()
    assert analytics["window"] == "1h"
    assert analytics["event_counts"] == {
        "upload_started": 1,
        "processing_started": 1,
        "completed": 1,
    }
    assert_error(admin_client.get("/admin/analytics?window=1h", headers=bearer(owner)), 403)
    assert_error(admin_client.get("/admin/analytics?window=2y", headers=bearer(admin)), 422)


def test_walking_skeleton_through_the_one_port_app(
    server_client: FlaskClient, users: tuple[UserContext, UserContext, UserContext], sql
) -> None:
    owner, other, admin = users

    response = post_upload(server_client, owner)
    assert response.status_code == 202, response.get_data(as_text=True)
    job_id = response.get_json()["job_id"]
    document_id = response.get_json()["document_id"]
    assert get_storage().exists(storage_path(sql, document_id))

    response = process_jobs(server_client, {"max_jobs": 5})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["claimed"] == 1
    assert response.get_json()["completed"] == 1

    response = server_client.get(f"/jobs/{job_id}", headers=bearer(owner))
    assert response.status_code == 200
    assert response.get_json()["status"] == "completed"
    assert response.get_json()["result"]["detected_content_type"] == "text/plain"
    assert_error(server_client.get(f"/jobs/{job_id}", headers=bearer(other)), 404)

    response = server_client.get(f"/documents/{document_id}", headers=bearer(owner))
    assert response.status_code == 200
    assert response.get_json()["latest_job"]["status"] == "completed"

    response = server_client.get("/admin/analytics?window=1h", headers=bearer(admin))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["event_counts"] == {
        "upload_started": 1,
        "processing_started": 1,
        "completed": 1,
    }
    assert_error(server_client.get("/admin/analytics", headers=bearer(owner)), 403)


# --- the error contract --------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer not-a-jwt", "Basic dXNlcjpwYXNz", "Bearer "],
    ids=["missing", "malformed", "wrong-scheme", "empty"],
)
def test_bad_or_missing_token_is_401(
    client_for: ClientFor, make_user: MakeUser, authorization: str | None
) -> None:
    make_user()
    headers = {"Authorization": authorization} if authorization is not None else {}
    assert_error(client_for("jobs").get(f"/jobs/{uuid.uuid4()}", headers=headers), 401)
    response = client_for("uploads").post(
        "/uploads",
        data={"file": (io.BytesIO(TEXT), "a.txt")},
        headers=headers,
        content_type="multipart/form-data",
    )
    assert_error(response, 401)


def test_expired_token_is_401(client_for: ClientFor, make_user: MakeUser, sql) -> None:
    user = make_user()
    expired = mint_token(get_settings(), user.user_id, ttl_seconds=-3600)
    assert_error(post_upload(client_for("uploads"), expired), 401, "token_expired")
    assert_error(client_for("jobs").get(f"/jobs/{uuid.uuid4()}", headers=bearer(expired)), 401)
    assert row_count(sql, "documents") == 0


def test_token_signed_with_another_secret_is_401(client_for: ClientFor, make_user: MakeUser):
    user = make_user()
    assert_error(post_upload(client_for("uploads"), forged(dict(user.claims))), 401)


def test_wrong_method_is_405_with_allow(client_for: ClientFor, make_user: MakeUser) -> None:
    user = make_user()
    response = client_for("uploads").get("/uploads", headers=bearer(user))
    assert_error(response, 405)
    assert response.headers["Allow"] == "POST"


def test_unknown_route_on_the_one_port_app_is_404(server_client: FlaskClient) -> None:
    assert_error(server_client.get("/nope"), 404)
    assert_error(server_client.post("/nope/deeper", json={}), 404)


def test_unknown_route_inside_a_function_is_404(client_for: ClientFor, make_user: MakeUser):
    user = make_user()
    assert_error(client_for("jobs").get("/jobs/a/b/c", headers=bearer(user)), 404)


def test_job_id_that_is_not_a_uuid_is_404(client_for: ClientFor, make_user: MakeUser) -> None:
    user = make_user()
    assert_error(client_for("jobs").get("/jobs/not-a-uuid", headers=bearer(user)), 404)
    assert_error(client_for("jobs").get("/documents/not-a-uuid", headers=bearer(user)), 404)


def test_unknown_job_is_404(client_for: ClientFor, make_user: MakeUser) -> None:
    user = make_user()
    assert_error(client_for("jobs").get(f"/jobs/{uuid.uuid4()}", headers=bearer(user)), 404)


def test_upload_that_is_not_multipart_is_415(
    client_for: ClientFor, make_user: MakeUser, sql
) -> None:
    user = make_user()
    response = client_for("uploads").post(
        "/uploads", data=TEXT, content_type="text/plain", headers=bearer(user)
    )
    assert_error(response, 415, "not_multipart")
    # JSON is the signed-upload flow, which needs a storage_path.
    response = client_for("uploads").post(
        "/uploads", json={"file": TEXT.decode()}, headers=bearer(user)
    )
    assert_error(response, 422, "invalid_storage_path")
    assert row_count(sql, "documents") == 0


def test_upload_without_file_field_is_400(client_for: ClientFor, make_user: MakeUser) -> None:
    user = make_user()
    response = client_for("uploads").post(
        "/uploads",
        data={"priority": "high"},
        headers=bearer(user),
        content_type="multipart/form-data",
    )
    assert_error(response, 400, "missing_file")


def test_empty_file_is_400(client_for: ClientFor, make_user: MakeUser, sql) -> None:
    user = make_user()
    assert_error(post_upload(client_for("uploads"), user, b""), 400, "empty_file")
    assert row_count(sql, "documents") == 0
    assert stored_objects() == []


def test_binary_content_is_415(client_for: ClientFor, make_user: MakeUser, sql) -> None:
    user = make_user()
    response = post_upload(client_for("uploads"), user, PNG, filename="looks-like.txt")
    assert_error(response, 415, "unsupported_content")
    assert row_count(sql, "documents") == 0
    assert stored_objects() == []


def test_unknown_priority_is_422(client_for: ClientFor, make_user: MakeUser, sql) -> None:
    user = make_user()
    assert_error(post_upload(client_for("uploads"), user, priority="urgent"), 422)
    assert row_count(sql, "documents") == 0


@pytest.mark.parametrize(
    ("app", "size"),
    [
        pytest.param("target", 1001, id="target-over-limit"),
        pytest.param("server", 1001, id="server-over-limit"),
        pytest.param("server", 200_000, id="server-over-body-limit"),
        pytest.param("target", 200_000, id="target-over-body-limit"),
    ],
)
def test_file_over_the_limit_is_413(
    client_for: ClientFor,
    server_client: FlaskClient,
    make_user: MakeUser,
    sql,
    monkeypatch: pytest.MonkeyPatch,
    app: str,
    size: int,
) -> None:
    user = make_user()
    configure(monkeypatch, MAX_UPLOAD_BYTES=1000)
    uploads = client_for("uploads") if app == "target" else server_client
    assert post_upload(uploads, user, b"a" * 1000).status_code == 202  # exactly the limit is fine
    assert_error(post_upload(uploads, user, b"a" * size), 413, "too_large")
    assert row_count(sql, "documents") == 1
    assert len(stored_objects()) == 1


def test_process_jobs_needs_the_scheduler_secret(client_for: ClientFor) -> None:
    client = client_for("process_jobs")
    assert_error(client.post("/process_jobs", json={}), 401)
    wrong = {"X-Scheduler-Secret": "not-the-secret-" + "x" * 40}
    assert_error(client.post("/process_jobs", json={}, headers=wrong), 401)
    # a user token is not a scheduler secret
    assert_error(client.post("/process_jobs", json={}, headers=bearer("abc")), 401)


@pytest.mark.parametrize(
    "body", [{"max_jobs": -1}, {"max_jobs": 0}, {"max_seconds": "ten"}, {"max_jobs": True}]
)
def test_process_jobs_rejects_a_bad_budget_with_422(
    client_for: ClientFor, body: dict[str, Any]
) -> None:
    response = client_for("process_jobs").post(
        "/process_jobs", json=body, headers=scheduler_headers()
    )
    assert_error(response, 422)


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b"{"])
def test_process_jobs_rejects_a_body_that_is_not_a_json_object_with_400(
    client_for: ClientFor, raw: bytes
) -> None:
    response = client_for("process_jobs").post(
        "/process_jobs", data=raw, content_type="application/json", headers=scheduler_headers()
    )
    assert_error(response, 400)


def test_process_jobs_rejects_a_huge_body_with_413(client_for: ClientFor) -> None:
    raw = b'{"max_jobs": 1, "pad": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    response = client_for("process_jobs").post(
        "/process_jobs", data=raw, content_type="application/json", headers=scheduler_headers()
    )
    assert_error(response, 413)


# --- intake is all or nothing, and idempotent ----------------------------------------------


def test_a_failure_half_way_leaves_nothing(client_for: ClientFor, db: Database, sql) -> None:
    # A valid token for a user that does not exist in auth.users: the database refuses the
    # document (foreign key) after the object was already stored.
    ghost = str(uuid.uuid4())
    token = mint_token(get_settings(), ghost)
    response = post_upload(client_for("uploads"), token)
    error = assert_error(response, response.status_code)
    assert response.status_code >= 400, error
    assert stored_objects() == []
    assert row_count(sql, "documents") == 0
    assert row_count(sql, "processing_jobs") == 0
    assert row_count(sql, "document_processing_events") == 0


def test_database_errors_do_not_leak_sql_internals(client_for: ClientFor, db: Database) -> None:
    token = mint_token(get_settings(), str(uuid.uuid4()))  # no such user in auth.users
    response = post_upload(client_for("uploads"), token)
    error = assert_error(response, response.status_code)
    for internal in ("constraint", "documents_user_id_fkey", "insert or update", "violates"):
        assert internal not in error["message"], error


def test_idempotency_key_replays_the_first_answer(
    client_for: ClientFor, make_user: MakeUser, sql
) -> None:
    user = make_user()
    uploads = client_for("uploads")
    key = {"Idempotency-Key": "upload-7f3a"}

    first = post_upload(uploads, user, headers=key)
    second = post_upload(uploads, user, headers=key)
    assert first.status_code == 202 and second.status_code == 202
    assert second.get_json()["document_id"] == first.get_json()["document_id"]
    assert second.get_json()["job_id"] == first.get_json()["job_id"]
    assert row_count(sql, "documents") == 1
    assert row_count(sql, "processing_jobs") == 1
    objects = stored_objects()
    assert len(objects) == 1
    assert objects[0].read_bytes() == TEXT

    conflict = post_upload(uploads, user, TEXT + b"changed", headers=key)
    assert_error(conflict, 409)
    assert row_count(sql, "documents") == 1
    assert stored_objects() == objects

    # another user may use the same key for their own upload
    other = post_upload(uploads, make_user(), headers=key)
    assert other.status_code == 202
    assert other.get_json()["document_id"] != first.get_json()["document_id"]


# --- processing failures --------------------------------------------------------------------


def test_missing_object_fails_the_job_and_the_drain_goes_on(
    client_for: ClientFor, make_user: MakeUser, sql, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(monkeypatch, WORKER_BATCH_SIZE=1)  # one claim per job: the loop must go on
    user = make_user()
    uploads = client_for("uploads")
    broken = post_upload(uploads, user, priority="high").get_json()  # claimed first
    healthy = post_upload(uploads, user, b"Another plain document. Fine.").get_json()
    get_storage().delete(storage_path(sql, broken["document_id"]))

    response = process_jobs(client_for("process_jobs"))
    assert response.status_code == 200, response.get_data(as_text=True)
    report = {k: v for k, v in response.get_json().items() if v}
    assert report == {"claimed": 2, "completed": 1, "failed": 1}

    jobs = client_for("jobs")
    job = jobs.get(f"/jobs/{broken['job_id']}", headers=bearer(user)).get_json()
    assert job["status"] == "failed"
    assert job["attempts"] == 1  # non-recoverable: no retry
    assert job["error"]["code"] == "object_missing"
    assert job["error"]["recoverable"] is False
    assert event_counts(sql, broken["job_id"]) == {
        "upload_started": 1,
        "processing_started": 1,
        "failed": 1,
    }
    row = sql.execute(
        "select error_message from public.document_processing_events"
        " where job_id = %s and event_type = 'failed'",
        (broken["job_id"],),
    ).fetchone()
    assert row is not None and row[0]

    job = jobs.get(f"/jobs/{healthy['job_id']}", headers=bearer(user)).get_json()
    assert job["status"] == "completed"
    assert job["result"]["words"] == 4


# --- logs ---------------------------------------------------------------------------------


@pytest.fixture
def captured_logs(client_for: ClientFor) -> Iterator[io.StringIO]:
    """docflow's log lines, formatted as in production, at DEBUG level."""
    for target in ("uploads", "process_jobs", "jobs", "admin"):
        client_for(target)  # main.py configures logging when it loads: load it first
    logger = logging.getLogger("docflow")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_logs_are_json_lines_without_tokens_or_document_text(
    client_for: ClientFor, make_user: MakeUser, captured_logs: io.StringIO
) -> None:
    secret_sentence = "The merger with Bluewater Holdings closes on the ninth of June."
    user = make_user()
    response = post_upload(client_for("uploads"), user, secret_sentence.encode() + b"\n" + TEXT)
    assert response.status_code == 202
    job_id = response.get_json()["job_id"]
    assert process_jobs(client_for("process_jobs")).status_code == 200
    response = client_for("jobs").get(f"/jobs/{job_id}", headers=bearer(user))
    assert response.status_code == 200
    assert secret_sentence in response.get_json()["result"]["summary"]
    # and some failures, which log too
    assert post_upload(client_for("uploads"), user, PNG).status_code == 415
    assert post_upload(client_for("uploads"), user, b"").status_code == 400

    lines = captured_logs.getvalue().splitlines()
    assert len(lines) >= 4, lines  # at least one line per request
    for line in lines:
        entry = json.loads(line)
        assert entry["severity"] in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
        assert user.token not in line
        assert user.token.split(".")[2] not in line  # not even the signature
        assert "Bluewater" not in line
        assert "Quarterly report" not in line
    assert any(json.loads(line).get("job_id") == job_id for line in lines)


# --- ad-hoc events --------------------------------------------------------------------------


def test_record_processing_event_returns_none_and_is_delivered(db: Database, sql) -> None:
    db.call("analytics_event_counts", window_seconds=60)  # open a pooled connection first
    job_id = str(uuid.uuid4())
    delivered = events.recorder().delivered
    result = events.record_processing_event(  # type: ignore[func-returns-value]
        "cancelled", job_id=job_id, stage="reading", details={"by": "test"}
    )
    assert result is None
    events.flush(timeout=10.0)  # a generous bound: this checks delivery, not speed
    rows = sql.execute(
        "select event_type, stage, details from public.document_processing_events"
        " where job_id = %s",
        (job_id,),
    ).fetchall()
    assert rows == [("cancelled", "reading", {"by": "test"})]
    assert events.recorder().delivered > delivered


@pytest.fixture
def database_down(monkeypatch: pytest.MonkeyPatch) -> None:
    take_database_down(monkeypatch)


def test_record_processing_event_with_the_database_down(database_down: None) -> None:
    recorder = events.recorder()
    dropped = recorder.dropped
    result = events.record_processing_event(  # type: ignore[func-returns-value]
        "failed", job_id=str(uuid.uuid4()), error_message="boom"
    )
    assert result is None
    assert events.flush() is None  # returns (bounded), does not raise
    wait_until(lambda: recorder.dropped > dropped, "the event to be dropped")


def test_flush_counts_what_it_could_not_deliver_before_returning(
    database_down: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The send waits DB_CONNECT_TIMEOUT for a connection, far longer than flush's 0.5 s bound.
    take_database_down(monkeypatch, connect_timeout=3)
    recorder = events.recorder()
    dropped = recorder.dropped
    events.record_processing_event("failed", job_id=str(uuid.uuid4()), error_message="boom")
    try:
        events.flush()
        assert recorder.dropped > dropped
    finally:
        # leave no batch in flight
        wait_until(lambda: recorder.dropped > dropped, "the batch to be dropped")
