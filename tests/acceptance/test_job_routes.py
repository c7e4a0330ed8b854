"""The lifecycle routes over HTTP: list, cancel, retry, reanalyze, and the upload rate limit.

Owner or admin, decided by RLS through the user-scoped client; another user's id is 404; the
queue's SQL errors arrive as the contract's JSON errors (409, 429 with Retry-After).
"""

from __future__ import annotations

import pytest

from tests.support.env import configure, database_down
from tests.support.http import (
    ClientFor,
    assert_error,
    post_upload,
    process_jobs,
    stored_objects,
    uploaded,
)
from tests.support.tokens import bearer
from tests.support.users import MakeUser


def _job(client_for: ClientFor, user, **kw) -> str:
    return str(uploaded(client_for("uploads"), user, **kw)["job_id"])


def test_list_jobs_pages_through_own_jobs_only(client_for: ClientFor, make_user: MakeUser):
    owner, other = make_user(), make_user()
    mine = [_job(client_for, owner, data=f"Document number {i}.".encode()) for i in range(5)]
    _job(client_for, other)
    jobs = client_for("jobs")

    seen: list[str] = []
    cursor = None
    while True:
        query = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        response = jobs.get("/jobs", query_string=query, headers=bearer(owner))
        assert response.status_code == 200, response.get_data(as_text=True)
        page = response.get_json()
        seen += [j["id"] for j in page["jobs"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(mine))  # newest first, no overlap, nothing of the other user

    pending = jobs.get("/jobs", query_string={"status": "pending"}, headers=bearer(owner))
    assert len(pending.get_json()["jobs"]) == 5
    done = jobs.get("/jobs", query_string={"status": "completed"}, headers=bearer(owner))
    assert done.get_json() == {"jobs": [], "next_cursor": None}


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"status": "done"}, "invalid_status"),
        ({"limit": "0"}, "invalid_limit"),
        ({"limit": "many"}, "invalid_limit"),
        ({"cursor": "not-a-cursor"}, "invalid_cursor"),
    ],
)
def test_list_jobs_rejects_bad_queries(client_for: ClientFor, make_user: MakeUser, query, code):
    response = client_for("jobs").get("/jobs", query_string=query, headers=bearer(make_user()))
    assert_error(response, 422, code)


def test_cancel_a_pending_job(client_for: ClientFor, make_user: MakeUser, sql):
    owner = make_user()
    job_id = _job(client_for, owner)
    jobs = client_for("jobs")

    response = jobs.post(f"/jobs/{job_id}/cancel", headers=bearer(owner))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["status"] == "cancelled"
    assert process_jobs(client_for("process_jobs")).get_json()["claimed"] == 0
    assert jobs.get(f"/jobs/{job_id}", headers=bearer(owner)).get_json()["status"] == "cancelled"
    # A finished job cannot be cancelled again.
    assert_error(jobs.post(f"/jobs/{job_id}/cancel", headers=bearer(owner)), 409, "not_cancellable")


def test_cancel_a_processing_job_is_a_request(client_for: ClientFor, make_user: MakeUser, sql):
    owner = make_user()
    job_id = _job(client_for, owner)
    sql.execute(
        "update processing_jobs set status = 'processing', attempts = 1, lease_owner = 'w',"
        " lease_expires_at = now() + interval '30 seconds', started_at = now() where id = %s",
        (job_id,),
    )
    response = client_for("jobs").post(f"/jobs/{job_id}/cancel", headers=bearer(owner))
    assert response.status_code == 202
    assert response.get_json() == {"id": job_id, "status": "processing", "cancel_requested": True}


def test_another_users_job_is_404_for_every_route(client_for: ClientFor, make_user: MakeUser):
    owner, stranger = make_user(), make_user()
    job_id = _job(client_for, owner)
    jobs = client_for("jobs")
    document_id = jobs.get(f"/jobs/{job_id}", headers=bearer(owner)).get_json()["document_id"]
    for path in (
        f"/jobs/{job_id}/cancel",
        f"/jobs/{job_id}/retry",
        f"/documents/{document_id}/reanalyze",
    ):
        assert_error(jobs.post(path, headers=bearer(stranger)), 404)
    # ... and nothing happened to the owner's job.
    assert jobs.get(f"/jobs/{job_id}", headers=bearer(owner)).get_json()["status"] == "pending"


def test_admin_may_cancel_anyones_job(client_for: ClientFor, make_user: MakeUser):
    owner, admin = make_user(), make_user(admin=True)
    job_id = _job(client_for, owner)
    response = client_for("jobs").post(f"/jobs/{job_id}/cancel", headers=bearer(admin))
    assert response.status_code == 200
    assert response.get_json()["status"] == "cancelled"


def test_retry_a_failed_job(client_for: ClientFor, make_user: MakeUser, sql):
    owner = make_user()
    job_id = _job(client_for, owner)
    jobs = client_for("jobs")
    assert_error(jobs.post(f"/jobs/{job_id}/retry", headers=bearer(owner)), 409, "not_retryable")
    # Make it fail for good: its stored file disappears (not recoverable).
    sql.execute("update documents set storage_path = storage_path || '-gone'")
    assert process_jobs(client_for("process_jobs")).get_json()["failed"] == 1

    response = jobs.post(f"/jobs/{job_id}/retry", headers=bearer(owner))
    assert response.status_code == 202, response.get_data(as_text=True)
    retry = response.get_json()
    assert retry["retry_of"] == job_id and retry["status"] == "pending"
    new_job = jobs.get(f"/jobs/{retry['job_id']}", headers=bearer(owner)).get_json()
    assert new_job["source"] == "retry"
    # The document now has an active job: a second retry conflicts.
    assert_error(jobs.post(f"/jobs/{job_id}/retry", headers=bearer(owner)), 409, "job_active")


def test_reanalyze_once_per_hour(client_for: ClientFor, make_user: MakeUser):
    owner = make_user()
    job_id = _job(client_for, owner)
    jobs = client_for("jobs")
    document_id = jobs.get(f"/jobs/{job_id}", headers=bearer(owner)).get_json()["document_id"]
    path = f"/documents/{document_id}/reanalyze"

    assert_error(jobs.post(path, headers=bearer(owner)), 409, "job_active")
    assert process_jobs(client_for("process_jobs")).get_json()["completed"] == 1

    response = jobs.post(path, headers=bearer(owner))
    assert response.status_code == 202, response.get_data(as_text=True)
    new_job = jobs.get(f"/jobs/{response.get_json()['job_id']}", headers=bearer(owner)).get_json()
    assert (new_job["priority"], new_job["source"]) == ("high", "reanalyze")
    assert process_jobs(client_for("process_jobs")).get_json()["completed"] == 1

    again = jobs.post(path, headers=bearer(owner))
    error = assert_error(again, 429, "reanalyze_too_soon")
    assert 3500 <= int(again.headers["Retry-After"]) <= 3600
    assert error["retry_after"] == int(again.headers["Retry-After"])


def test_upload_rate_limit_answers_429_with_retry_after(
    client_for: ClientFor, make_user: MakeUser, monkeypatch: pytest.MonkeyPatch, sql
):
    """A bucket of 2 refilled at one token a minute: the third upload finds it empty."""
    configure(monkeypatch, UPLOAD_RATE_LIMIT_PER_MINUTE=1, UPLOAD_RATE_BURST=2)
    owner, other = make_user(), make_user()
    _job(client_for, owner, data=b"First document.")
    _job(client_for, owner, data=b"Second document.")
    response = post_upload(client_for("uploads"), owner, b"Third document.")
    error = assert_error(response, 429, "rate_limited")
    # The header and the body say the same: the seconds until the next token, rounded up (the
    # bucket emptied a moment ago, so at most a minute).
    assert error["retry_after"] == int(response.headers["Retry-After"])
    assert 1 <= error["retry_after"] <= 60
    assert error["message"].startswith("rate limit reached (burst 2, 1 per minute); next job in ")
    # Nothing half-written: two documents, and the third file's object was deleted again.
    assert sql.execute("select count(*) from documents").fetchone() == (2,)
    assert len(stored_objects()) == 2
    # Another user is not affected.
    assert post_upload(client_for("uploads"), other, b"Someone else.").status_code == 202


def test_process_jobs_answers_503_when_the_database_is_down(
    client_for: ClientFor, monkeypatch: pytest.MonkeyPatch
) -> None:
    database_down(monkeypatch)
    response = process_jobs(client_for("process_jobs"))
    error = assert_error(response, 503, "unavailable")
    assert int(response.headers["Retry-After"]) == error["retry_after"]


def test_a_cancel_request_shows_on_the_job(client_for: ClientFor, make_user: MakeUser, sql):
    owner = make_user()
    job_id = _job(client_for, owner)
    jobs = client_for("jobs")
    assert (
        jobs.get(f"/jobs/{job_id}", headers=bearer(owner)).get_json()["cancel_requested"] is False
    )
    sql.execute(
        "update processing_jobs set status = 'processing', attempts = 1, lease_owner = 'w',"
        " lease_expires_at = now() + interval '30 seconds', started_at = now() where id = %s",
        (job_id,),
    )
    assert jobs.post(f"/jobs/{job_id}/cancel", headers=bearer(owner)).status_code == 202
    job = jobs.get(f"/jobs/{job_id}", headers=bearer(owner)).get_json()
    assert (job["status"], job["cancel_requested"]) == ("processing", True)
