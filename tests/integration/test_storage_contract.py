"""The storage contract, on both backends: the local directory and Supabase's real Storage API.

Every test of the shared contract runs on `local` (LocalStorage) and on `supabase`
(SupabaseStorage on the real server of the `storage_api` session fixture, service role, the
`documents` bucket that docflow's migrations create). What only a Storage API can do (bucket
limits, a server that is down) runs on the real server alone. The respx tests in
tests/unit/test_storage.py keep what cannot happen here (a gateway's bare 5xx).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from shared.dev.storage_api import api_key
from shared.platform.errors import (
    Conflict,
    DocflowError,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from shared.platform.storage import (
    LocalStorage,
    Storage,
    StorageUnavailable,
    SupabaseStorage,
    storage_client,
)
from tests.support.storage_api import REFUSED_URL, RealStorageApi

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\n%%EOF\n"


@pytest.fixture(params=["local", "supabase"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "local":
        return LocalStorage(tmp_path / "store", "documents")
    api: RealStorageApi = request.getfixturevalue("real_storage")
    return api.storage()


@pytest.fixture
def folder() -> str:
    """A user's folder of its own, so tests never share an object on the session's server."""
    return str(uuid.uuid4())


def test_put_get_exists_delete(store: Storage, folder: str) -> None:
    name = f"{folder}/0f8e2c1d-report.pdf"
    assert store.exists(name) is False
    store.put(name, PDF, "application/pdf")
    assert store.exists(name) is True
    assert store.get(name) == PDF
    store.delete(name)
    assert store.exists(name) is False
    with pytest.raises(NotFound):
        store.get(name)


def test_put_refuses_to_replace_unless_overwrite(store: Storage, folder: str) -> None:
    name = f"{folder}/text.txt"
    store.put(name, b"old", "text/plain")
    with pytest.raises(Conflict) as info:
        store.put(name, b"new", "text/plain")
    assert (info.value.code, info.value.status) == ("object_exists", 409)
    assert store.get(name) == b"old"
    store.put(name, b"newer and longer", "text/plain", overwrite=True)
    assert store.get(name) == b"newer and longer"


def test_overwrite_of_a_missing_object_creates_it(store: Storage, folder: str) -> None:
    name = f"{folder}/fresh.txt"
    store.put(name, b"first", "text/plain", overwrite=True)
    assert store.get(name) == b"first"


def test_empty_and_binary_objects_round_trip(store: Storage, folder: str) -> None:
    data = bytes(range(256)) * 40
    store.put(f"{folder}/empty.txt", b"", "text/plain")
    store.put(f"{folder}/bytes.bin", data, "application/octet-stream")
    assert store.get(f"{folder}/empty.txt") == b""
    assert store.get(f"{folder}/bytes.bin") == data


def test_objects_are_separate(store: Storage, folder: str) -> None:
    one, two = f"{folder}/one.txt", f"{folder}/sub/two.txt"
    store.put(one, b"one", "text/plain")
    store.put(two, b"two", "text/plain")
    store.delete(one)
    assert store.exists(one) is False
    assert store.get(two) == b"two"


def test_get_missing_raises_not_found(store: Storage, folder: str) -> None:
    with pytest.raises(NotFound) as info:
        store.get(f"{folder}/missing.pdf")
    assert (info.value.code, info.value.status) == ("object_not_found", 404)


def test_delete_of_a_missing_object_is_no_error(store: Storage, folder: str) -> None:
    store.delete(f"{folder}/missing.pdf")
    assert store.exists(f"{folder}/missing.pdf") is False


def test_delete_many_removes_present_and_skips_missing(store: Storage, folder: str) -> None:
    names = [f"{folder}/{i}.txt" for i in range(5)]
    for name in names:
        store.put(name, name.encode(), "text/plain")
    keep = f"{folder}/keep.txt"
    store.put(keep, b"keep", "text/plain")
    store.delete_many([*names[:3], f"{folder}/never-there.txt", *names[3:]])
    assert [store.exists(name) for name in names] == [False] * 5
    assert store.get(keep) == b"keep"
    store.delete_many([])


# --- the real server only --------------------------------------------------------------------


def _bucket(api: RealStorageApi, **options: Any) -> str:
    """A private bucket of its own on the real server, with these limits."""
    bucket = f"contract-{uuid.uuid4().hex[:12]}"
    api.client().create_bucket(bucket, options={"public": False, **options})
    return bucket


def test_supabase_put_records_the_content_type(real_storage: RealStorageApi, folder: str) -> None:
    name = f"{folder}/report.pdf"
    real_storage.storage().put(name, PDF, "application/pdf")
    with psycopg.connect(real_storage.admin_database_url) as conn:
        row = conn.execute(
            "select metadata ->> 'mimetype', (metadata ->> 'size')::int from storage.objects "
            "where bucket_id = 'documents' and name = %s",
            (name,),
        ).fetchone()
    assert row == ("application/pdf", len(PDF))


def test_supabase_over_the_bucket_size_limit_is_payload_too_large(
    real_storage: RealStorageApi, folder: str
) -> None:
    store = SupabaseStorage(real_storage.client(), _bucket(real_storage, file_size_limit=1024))
    store.put(f"{folder}/small.txt", b"x" * 1024, "text/plain")
    with pytest.raises(PayloadTooLarge) as info:
        store.put(f"{folder}/large.txt", b"x" * 1025, "text/plain")
    assert info.value.status == 413
    assert store.exists(f"{folder}/large.txt") is False


def test_supabase_documents_bucket_limit_comes_from_the_migration(
    real_storage: RealStorageApi,
) -> None:
    with psycopg.connect(real_storage.admin_database_url) as conn:
        row = conn.execute(
            "select public, file_size_limit from storage.buckets where id = 'documents'"
        ).fetchone()
    assert row == (False, 209715200)


def test_supabase_mime_type_not_allowed_is_unsupported_media_type(
    real_storage: RealStorageApi, folder: str
) -> None:
    store = SupabaseStorage(
        real_storage.client(), _bucket(real_storage, allowed_mime_types=["application/pdf"])
    )
    store.put(f"{folder}/a.pdf", PDF, "application/pdf")
    with pytest.raises(UnsupportedMediaType) as info:
        store.put(f"{folder}/a.txt", b"text", "text/plain")
    assert info.value.status == 415


def _rejected(store: SupabaseStorage, op: str, name: str) -> DocflowError:
    with pytest.raises(DocflowError) as info:
        _op(store, op, name)
    return info.value


@pytest.mark.parametrize("op", ["put", "get", "exists"])
def test_supabase_missing_bucket_is_no_missing_object(
    real_storage: RealStorageApi, folder: str, op: str
) -> None:
    # The server answers 404 "Bucket not found": a configuration fault, not a missing file.
    store = SupabaseStorage(real_storage.client(), f"no-such-bucket-{uuid.uuid4().hex[:8]}")
    error = _rejected(store, op, f"{folder}/a.txt")
    assert (type(error), error.code, error.status) == (DocflowError, "storage_error", 500)


@pytest.mark.parametrize("op", ["put", "get", "exists"])
def test_supabase_a_key_the_server_does_not_trust_is_rejected(
    real_storage: RealStorageApi, folder: str, op: str
) -> None:
    # The server answers 403 to a write and 404 "Bucket not found" to a read.
    forged = api_key("another-secret-that-is-long-enough-0123456789", "service_role")
    real_storage.storage().put(f"{folder}/a.txt", b"x", "text/plain")
    store = SupabaseStorage(real_storage.client(forged), "documents")
    error = _rejected(store, op, f"{folder}/a.txt")
    assert (type(error), error.code) == (DocflowError, "storage_error")


@pytest.mark.parametrize("op", ["put", "get", "delete", "exists"])
def test_supabase_wrong_storage_url_is_no_missing_object(
    real_storage: RealStorageApi, folder: str, op: str
) -> None:
    # supabase-py's /storage/v1 prefix on a server with its routes at the root: 404 "Not Found"
    client = storage_client(f"{real_storage.base_url}/storage/v1", real_storage.service_key)
    store = SupabaseStorage(client, "documents")
    try:
        error = _rejected(store, op, f"{folder}/a.txt")
    finally:
        store.close()
    assert (type(error), error.code) == (DocflowError, "storage_error")


@pytest.fixture
def refused() -> Iterator[SupabaseStorage]:
    store = SupabaseStorage(storage_client(REFUSED_URL, "key"), "documents")
    yield store
    store.close()


@pytest.mark.parametrize("op", ["put", "get", "delete", "delete_many", "exists"])
def test_supabase_connection_refused_is_storage_unavailable(
    refused: SupabaseStorage, op: str
) -> None:
    with pytest.raises(StorageUnavailable) as info:
        _op(refused, op, f"{uuid.uuid4()}/a.txt")
    assert (info.value.status, info.value.op) == (503, "delete" if op == "delete_many" else op)
    assert info.value.retry_after is not None


def test_supabase_server_down_then_back(real_storage: RealStorageApi, folder: str) -> None:
    store = real_storage.storage()
    name = f"{folder}/kept.txt"
    store.put(name, b"kept", "text/plain")
    with real_storage.stopped():
        for op in ("put", "get", "delete", "delete_many", "exists"):
            with pytest.raises(StorageUnavailable):
                _op(store, op, name)
    assert store.get(name) == b"kept"  # the same client works again once the server is back


def _op(store: Storage, op: str, name: str) -> object:
    if op == "put":
        return store.put(name, b"x", "text/plain")
    if op == "get":
        return store.get(name)
    if op == "delete":
        return store.delete(name)
    if op == "delete_many":
        return store.delete_many([name])
    return store.exists(name)
