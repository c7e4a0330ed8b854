"""docflow with STORAGE_BACKEND=supabase on Supabase's real Storage API, sharing its database.

The `storage_api` session fixture runs the real server on a database prepared as on Supabase
(its migrations, then docflow's bootstrap and migrations: the `documents` bucket and the RLS
policies on `storage.objects`). Here docflow's one-port app (`create_app()`) runs on that
same database, with the service key for Storage, and users call Storage the way supabase-js
does: the anon key as `apikey`, their own access token (minted by docflow, for a real
`auth.users` row) as `Authorization`.

- the signed-upload flow end to end: a signed upload URL for the user's own folder, the upload,
  `POST /uploads {"storage_path"}`, the worker, the document's text;
- the RLS refusal of another user's folder by the real server, and docflow's answer to a path
  in another user's folder;
- the bucket's size and mime-type limits as the real server enforces them, on a signed upload
  and on docflow's own writes (multipart uploads, the extracted text);
- the storage probe: healthy, down while the server is stopped, healthy again.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from flask.testing import FlaskClient
from storage3.exceptions import StorageApiError

from shared.documents import extract, sniff
from shared.ops import probes
from shared.platform.client import UserContext, get_db
from shared.platform.config import get_settings
from shared.platform.storage import get_storage
from tests.support.data import SAMPLES, TEXT
from tests.support.http import assert_error, post_upload, process_jobs
from tests.support.storage_api import RealStorageApi
from tests.support.tokens import bearer
from tests.support.users import create_user

PDF = (SAMPLES / "annual-report.pdf").read_bytes()


@pytest.fixture
def api(real_storage: RealStorageApi, monkeypatch: pytest.MonkeyPatch) -> RealStorageApi:
    """The real server, with docflow's settings, database client and storage on it."""
    real_storage.use_in_docflow(monkeypatch)
    return real_storage


@pytest.fixture
def app(api: RealStorageApi) -> FlaskClient:
    """The one-port app (`docflow serve`) on the server's database and Storage API."""
    from shared.dev.server import create_app

    return create_app().test_client()


def new_user(api: RealStorageApi) -> UserContext:
    """A user in the shared database's auth.users, with a docflow access token."""
    return create_user(api.database_url)


def user_bucket(api: RealStorageApi, user: UserContext) -> Any:
    """The `documents` bucket as this user's supabase-js sees it."""
    return api.user_client(user.token).from_("documents")


def signed_upload(
    api: RealStorageApi, user: UserContext, path: str, data: bytes, content_type: str
) -> None:
    """What supabase-js does: `createSignedUploadUrl(path)` (POST /object/upload/sign/...),
    then `uploadToSignedUrl(path, token, file)` (PUT to the signed URL)."""
    bucket = user_bucket(api, user)
    signed = bucket.create_signed_upload_url(path)
    assert signed["path"] == path
    bucket.upload_to_signed_url(path, signed["token"], data, {"content-type": content_type})


def refused(call: Any) -> tuple[str, str]:
    """The real server refuses the call: its (status, error) from the body of its HTTP 400."""
    with pytest.raises(StorageApiError) as info:
        call()
    return str(info.value.status), str(info.value.code)


def register(app: FlaskClient, user: UserContext, path: str, **body: Any) -> Any:
    return app.post("/uploads", json={"storage_path": path, **body}, headers=bearer(user))


def documents_at(api: RealStorageApi, path: str) -> int:
    with psycopg.connect(api.admin_database_url) as conn:
        row = conn.execute(
            "select count(*) from public.documents where storage_path = %s", (path,)
        ).fetchone()
    assert row is not None
    return int(row[0])


def documents_of(api: RealStorageApi, user: UserContext) -> int:
    with psycopg.connect(api.admin_database_url) as conn:
        row = conn.execute(
            "select count(*) from public.documents where user_id = %s", (user.user_id,)
        ).fetchone()
    assert row is not None
    return int(row[0])


# --- the signed-upload flow -------------------------------------------------------------------


@pytest.mark.parametrize("form", [False, True], ids=["body", "browser-form"])
def test_signed_upload_flow_end_to_end(api: RealStorageApi, app: FlaskClient, form: bool) -> None:
    alice = new_user(api)
    path = f"{alice.user_id}/annual-report-{uuid.uuid4().hex[:8]}.pdf"

    # As supabase-js sends it: the bytes as the body, or a browser's File as form data.
    status, answer = api.supabase_js_upload(alice.token, path, PDF, "application/pdf", form=form)
    assert (status, answer) == (200, {"Key": f"documents/{path}"})
    # The real server recorded the upload as the user's (the signed URL carries the owner).
    assert api.object_row(path) == (alice.user_id, "application/pdf", len(PDF))

    response = register(app, alice, path, filename="Annual report 2026.pdf", priority="high")
    assert response.status_code == 202, response.get_data(as_text=True)
    created = response.get_json()
    assert created["status"] == "pending"
    job_id, document_id = created["job_id"], created["document_id"]
    assert documents_at(api, path) == 1  # registered where it is: nothing copied

    # The worker (the process_jobs route) reads the object from the real server.
    drained = process_jobs(app, {"max_jobs": 20})
    assert drained.status_code == 200, drained.get_data(as_text=True)
    job = app.get(f"/jobs/{job_id}", headers=bearer(alice)).get_json()
    assert job["status"] == "completed", job
    assert job["result"]["detected_content_type"] == "application/pdf"

    detected = sniff.sniff(PDF, name="annual-report.pdf")
    assert detected == "application/pdf"
    expected = extract.extract(PDF, detected, extract.Limits())
    text = app.get(f"/documents/{document_id}/text", headers=bearer(alice))
    assert text.status_code == 200, text.get_data(as_text=True)
    assert text.get_data(as_text=True) == expected.text
    assert expected.text.strip()
    markdown = app.get(f"/documents/{document_id}/markdown", headers=bearer(alice))
    assert markdown.status_code == 200
    assert markdown.get_data(as_text=True) == expected.markdown

    # The text and the Markdown are objects of the real server, written with the service key
    # into the user's folder; the upload itself is untouched.
    with psycopg.connect(api.admin_database_url) as conn:
        stored = conn.execute(
            "select text_path, markdown_path from public.documents where id = %s", (document_id,)
        ).fetchone()
    assert stored is not None
    for name, mimetype in zip(stored, ("text/plain", "text/markdown"), strict=True):
        assert name.startswith(f"{alice.user_id}/text/")
        row = api.object_row(name)
        assert row is not None and row[1].startswith(mimetype)
    assert api.object_row(path) == (alice.user_id, "application/pdf", len(PDF))

    # A second registration of the same object is refused (one path backs one document).
    again = register(app, alice, path)
    assert_error(again, 409)
    assert documents_at(api, path) == 1


def test_registering_a_missing_object_is_object_not_found(
    api: RealStorageApi, app: FlaskClient
) -> None:
    alice = new_user(api)
    response = register(app, alice, f"{alice.user_id}/never-uploaded.pdf")
    assert_error(response, 404, "object_not_found")
    assert documents_of(api, alice) == 0


# --- another user's folder: refused by the real server's RLS, and by docflow ------------------


def test_another_users_folder_is_refused_by_the_real_server(
    api: RealStorageApi, app: FlaskClient
) -> None:
    alice, mallory = new_user(api), new_user(api)
    alices = f"{alice.user_id}/contract.pdf"
    signed_upload(api, alice, alices, PDF, "application/pdf")
    theirs = user_bucket(api, mallory)
    intruded = f"{alice.user_id}/planted.pdf"

    # Writing into Alice's folder: no signed upload URL, no direct upload (RLS, insert).
    rls = ("403", "Unauthorized")
    assert refused(lambda: theirs.create_signed_upload_url(intruded)) == rls
    assert refused(lambda: theirs.upload(intruded, PDF, {"content-type": "application/pdf"})) == rls
    status, answer = api.supabase_js_upload(mallory.token, intruded, PDF, "application/pdf")
    assert (status, answer["statusCode"], answer["error"]) == (400, "403", "Unauthorized")
    assert api.object_row(intruded) is None

    # Reading it: RLS hides the row, so the server says the object does not exist.
    assert refused(lambda: theirs.download(alices)) == ("404", "not_found")
    assert theirs.exists(alices) is False
    assert user_bucket(api, alice).download(alices) == PDF  # its owner reads it

    # docflow refuses another user's folder before reading anything: the same 404 as a
    # missing object, so the answer tells nothing about Alice's files.
    response = register(app, mallory, alices)
    assert_error(response, 404, "object_not_found")
    assert documents_at(api, alices) == 0
    assert documents_of(api, mallory) == 0
    assert api.object_row(alices) == (alice.user_id, "application/pdf", len(PDF))


def test_a_user_can_neither_replace_nor_delete_an_object_once_uploaded(
    api: RealStorageApi, app: FlaskClient
) -> None:
    """The migration grants users insert and select on their folder, no update and no delete:
    the bytes docflow registered (and hashed) cannot change under it. A removal "succeeds"
    with 200 `[]` and does nothing."""
    alice = new_user(api)
    path = f"{alice.user_id}/minutes.txt"
    signed_upload(api, alice, path, TEXT, "text/plain")
    assert register(app, alice, path).status_code == 202
    bucket = user_bucket(api, alice)

    upsert = {"content-type": "text/plain", "upsert": "true"}
    assert refused(lambda: bucket.upload(path, b"replaced", upsert)) == ("403", "Unauthorized")
    assert refused(lambda: bucket.upload(path, b"replaced", {"content-type": "text/plain"})) == (
        "409",
        "Duplicate",
    )
    assert bucket.remove([path]) == []
    assert bucket.download(path) == TEXT
    assert api.object_row(path) == (alice.user_id, "text/plain", len(TEXT))


# --- the bucket's limits ------------------------------------------------------------------------


@pytest.fixture
def limited(api: RealStorageApi) -> Iterator[Any]:
    """Set limits on the `documents` bucket through the Storage API (as an operator would in
    the dashboard) for the test; the bucket's own settings come back afterwards."""
    client = api.client()

    def bucket_row() -> tuple[Any, ...] | None:
        with psycopg.connect(api.admin_database_url) as conn:
            return conn.execute(
                "select public, file_size_limit, allowed_mime_types from storage.buckets "
                "where id = 'documents'"
            ).fetchone()

    before = bucket_row()
    assert before is not None

    def limit(**options: Any) -> None:
        client.update_bucket("documents", {"public": False, **options})

    yield limit
    public, size, types = before
    client.update_bucket(
        "documents", {"public": public, "file_size_limit": size, "allowed_mime_types": types}
    )
    assert bucket_row() == before


def test_over_the_buckets_size_limit(api: RealStorageApi, app: FlaskClient, limited: Any) -> None:
    limited(file_size_limit=len(TEXT) + 10)
    alice = new_user(api)
    large = TEXT + b"x" * 11

    # supabase-js's signed upload, as a body or a browser's form: the real server refuses it
    # (HTTP 400, the status 413 in the body), so there is nothing to register.
    path = f"{alice.user_id}/large.txt"
    for form in (False, True):
        status, answer = api.supabase_js_upload(alice.token, path, large, "text/plain", form=form)
        assert (status, answer["statusCode"], answer["error"]) == (400, "413", "Payload too large")
    assert api.object_row(path) is None
    assert_error(register(app, alice, path), 404, "object_not_found")

    # docflow's own write (multipart): Storage's 413 is the client's 413, and nothing is left.
    response = post_upload(app, alice, large, "large.txt")
    assert_error(response, 413, "payload_too_large")
    assert documents_of(api, alice) == 0

    # At the limit, both ways work.
    fits = f"{alice.user_id}/fits.txt"
    signed_upload(api, alice, fits, TEXT, "text/plain")
    assert register(app, alice, fits).status_code == 202
    assert post_upload(app, alice, TEXT, "fits.txt").status_code == 202
    assert documents_of(api, alice) == 2


def test_a_mime_type_the_bucket_refuses(
    api: RealStorageApi, app: FlaskClient, limited: Any
) -> None:
    limited(allowed_mime_types=["application/pdf"])
    alice = new_user(api)

    path = f"{alice.user_id}/notes.txt"
    for form in (False, True):
        status, answer = api.supabase_js_upload(alice.token, path, TEXT, "text/plain", form=form)
        assert (status, answer["statusCode"], answer["error"]) == (400, "415", "invalid_mime_type")
    assert api.object_row(path) is None

    response = post_upload(app, alice, TEXT, "notes.txt")
    assert_error(response, 415, "unsupported_media_type")
    assert documents_of(api, alice) == 0

    # A PDF is accepted, but its extracted text (text/plain, text/markdown) is refused by the
    # bucket: the job cannot finish. A bucket limited to types must allow those two.
    pdf = f"{alice.user_id}/report.pdf"
    signed_upload(api, alice, pdf, PDF, "application/pdf")
    response = register(app, alice, pdf)
    assert response.status_code == 202, response.get_data(as_text=True)
    job_id = response.get_json()["job_id"]
    assert process_jobs(app, {"max_jobs": 20}).status_code == 200
    job = app.get(f"/jobs/{job_id}", headers=bearer(alice)).get_json()
    assert job["status"] == "pending"  # to be retried: the operator may fix the bucket
    assert job["error"]["code"] == "unsupported_media_type"
    assert job["error"]["recoverable"] is True

    # The storage probe writes text/plain too: it is down, and says why.
    settings, db, storage = get_settings(), get_db(), get_storage()
    only = {"storage": probes.probes(db, storage, settings)["storage"]}
    [check] = probes.run_probes(db, storage, settings, only=only)
    assert check["status"] == "down"
    assert check["error"] == "UnsupportedMediaType: the bucket does not accept this type of file"


# --- the storage probe ------------------------------------------------------------------------


def test_the_storage_probe_healthy_down_and_back(
    api: RealStorageApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = api.use_in_docflow(monkeypatch, ALERT_OPEN_AFTER=1, ALERT_RESOLVE_AFTER=1)
    db, storage = get_db(), get_storage()
    start = datetime.now(UTC)

    def probe(minutes: int) -> dict[str, Any]:
        at = start + timedelta(minutes=minutes)
        only = {"storage": probes.probes(db, storage, settings, now=at)["storage"]}
        [check] = probes.run_probes(db, storage, settings, only=only, now=at)
        assert check["recorded"] is True
        return check

    first = probe(0)
    assert (first["status"], first["error"]) == ("healthy", None), first

    with api.stopped():
        down = probe(1)
    assert down["status"] == "down"
    assert down["error"] == "StorageUnavailable: storage unreachable"
    assert len(down["alerts_opened"]) == 1

    back = probe(2)
    assert (back["status"], back["error"]) == ("healthy", None), back
    assert back["alerts_resolved"] == down["alerts_opened"]

    with psycopg.connect(api.admin_database_url) as conn:
        rows = conn.execute(
            "select status, error_message from public.service_health_checks "
            "where service_name = 'storage' and checked_at >= %s order by checked_at",
            (start,),
        ).fetchall()
        left = conn.execute(
            "select count(*) from storage.objects where bucket_id = 'documents' "
            "and name like 'probes/%%'"
        ).fetchone()
    assert [row[0] for row in rows] == ["healthy", "down", "healthy"]
    assert left == (0,)  # each probe deletes its object again
