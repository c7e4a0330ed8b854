"""SupabaseStorage.delete_many asks only about the names the server's answer leaves out.

The answers are the real Storage API's (tests/integration/test_storage_api_retention.py runs
the same cases on the server): 200 with the removed objects, 200 `[]` for a removal that
did nothing, HTTP 400 with the real status in the body for an `info` look-up. Here respx
counts the requests: a removal whose answer lists every name costs no look-up.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import httpx
import pytest
import respx

from shared.platform.errors import DocflowError
from shared.platform.storage import SupabaseStorage, storage_client
from tests.support.tokens import api_key

STORAGE_URL = "https://proj.supabase.test/storage/v1"
OBJECTS = f"{STORAGE_URL}/object"
USER = str(uuid.uuid4())
NAMES = [f"{USER}/{i}.txt" for i in range(3)]
NOT_FOUND = {"statusCode": "404", "error": "not_found", "message": "Object not found"}
NO_BUCKET = {"statusCode": "404", "error": "Bucket not found", "message": "Bucket not found"}


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        yield router


@pytest.fixture
def remote() -> Iterator[SupabaseStorage]:
    store = SupabaseStorage(storage_client(STORAGE_URL, api_key("service_role")), "documents")
    yield store
    store.close()


def removed(*names: str) -> list[dict[str, str]]:
    return [{"name": name, "bucket_id": "documents"} for name in names]


def test_an_answer_listing_every_name_costs_no_look_up(
    remote: SupabaseStorage, api: respx.MockRouter
) -> None:
    remove = api.delete(f"{OBJECTS}/documents").respond(200, json=removed(*NAMES))
    info = api.get(url__startswith=f"{OBJECTS}/info/").respond(200, json={})
    remote.delete_many(NAMES)
    assert json.loads(remove.calls.last.request.content) == {"prefixes": NAMES}
    assert info.call_count == 0


def test_names_left_out_and_gone_are_no_error(
    remote: SupabaseStorage, api: respx.MockRouter
) -> None:
    api.delete(f"{OBJECTS}/documents").respond(200, json=removed(NAMES[0]))
    info = api.get(url__startswith=f"{OBJECTS}/info/documents/").respond(400, json=NOT_FOUND)
    remote.delete_many([*NAMES, NAMES[1]])
    asked = sorted(str(call.request.url).rsplit("/", 1)[-1] for call in info.calls)
    assert asked == ["1.txt", "2.txt"]  # each left-out name once


def test_a_name_left_out_but_still_there_is_an_error(
    remote: SupabaseStorage, api: respx.MockRouter
) -> None:
    api.delete(f"{OBJECTS}/documents").respond(200, json=[])
    api.get(f"{OBJECTS}/info/documents/{NAMES[0]}").respond(200, json={"name": NAMES[0]})
    with pytest.raises(DocflowError) as info:
        remote.delete(NAMES[0])
    assert (type(info.value), info.value.code, info.value.status) == (
        DocflowError,
        "storage_error",
        500,
    )


def test_a_missing_bucket_is_an_error(remote: SupabaseStorage, api: respx.MockRouter) -> None:
    api.delete(f"{OBJECTS}/documents").respond(200, json=[])
    api.get(url__startswith=f"{OBJECTS}/info/documents/").respond(400, json=NO_BUCKET)
    with pytest.raises(DocflowError) as info:
        remote.delete_many(NAMES)
    assert info.value.code == "storage_error"


def test_more_than_a_thousand_names_go_in_calls_of_a_thousand(
    remote: SupabaseStorage, api: respx.MockRouter
) -> None:
    names = [f"{USER}/{i}.txt" for i in range(2500)]

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=removed(*json.loads(request.content)["prefixes"]))

    remove = api.delete(f"{OBJECTS}/documents").mock(side_effect=answer)
    remote.delete_many(names)
    sizes = [len(json.loads(call.request.content)["prefixes"]) for call in remove.calls]
    assert sizes == [1000, 1000, 500]
