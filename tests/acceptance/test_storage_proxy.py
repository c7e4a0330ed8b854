"""`docflow serve --storage-api` (make dev STORAGE=supabase) passes `/storage/v1/...` to the real
Storage API, as Supabase's gateway does, so a client made for a project URL works unchanged.
Against the real server (the `real_storage` fixture), through the one-port app."""

from __future__ import annotations

import uuid

from shared.dev.server import create_app
from tests.support.storage_api import RealStorageApi
from tests.support.tokens import user_context


def _headers(token: str, apikey: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "apikey": apikey}


def test_storage_calls_pass_through_to_the_real_server(real_storage: RealStorageApi) -> None:
    client = create_app(storage_upstream=real_storage.base_url).test_client()
    service = _headers(real_storage.service_key, real_storage.service_key)

    buckets = client.get("/storage/v1/bucket", headers=service)
    assert buckets.status_code == 200
    assert "documents" in [b["id"] for b in buckets.get_json()]

    # A user writes into their own folder under the bucket's RLS policies, with a query
    # string passed on, and reads the bytes back; the server's own answers come back as
    # they are (its 400 with the real status in the body for another user's folder).
    user = user_context(user_id=str(uuid.uuid4()))
    mine = _headers(user.token, real_storage.anon_key)
    name = f"{user.user_id}/notes-{uuid.uuid4().hex}.txt"
    put = client.post(
        f"/storage/v1/object/documents/{name}?cacheControl=60",
        headers={**mine, "Content-Type": "text/plain"},
        data=b"minutes of the board",
    )
    assert put.status_code == 200, put.get_data(as_text=True)
    got = client.get(f"/storage/v1/object/authenticated/documents/{name}", headers=mine)
    assert (got.status_code, got.data) == (200, b"minutes of the board")
    theirs = client.post(
        f"/storage/v1/object/documents/{uuid.uuid4()}/x.txt",
        headers={**mine, "Content-Type": "text/plain"},
        data=b"x",
    )
    assert theirs.status_code == 400
    assert theirs.get_json()["statusCode"] == "403"


def test_a_stopped_storage_api_is_a_json_503(real_storage: RealStorageApi) -> None:
    client = create_app(storage_upstream=real_storage.base_url).test_client()
    service = _headers(real_storage.service_key, real_storage.service_key)
    with real_storage.stopped():
        answer = client.get("/storage/v1/bucket", headers=service)
    assert answer.status_code == 503
    assert answer.get_json()["error"]["code"] == "unavailable"


def test_without_the_storage_api_the_path_is_an_unknown_route() -> None:
    answer = create_app().test_client().get("/storage/v1/bucket")
    assert answer.status_code == 404
    assert answer.get_json()["error"]["code"] == "route_not_found"
