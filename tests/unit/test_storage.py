"""shared.platform.storage: the local directory backend, and what of Supabase Storage the real
server cannot show (tests/integration/test_storage_contract.py runs the rest against it): its
5xx answers (respx as the API) and names refused before any request."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import respx

from shared.platform import storage as storage_module
from shared.platform.config import get_settings
from shared.platform.errors import (
    Conflict,
    NotFound,
    Unavailable,
)
from shared.platform.storage import (
    LocalStorage,
    StorageUnavailable,
    SupabaseStorage,
    make_storage,
    storage_client,
)
from tests.support.env import configure
from tests.support.tokens import api_key

SUPABASE_URL = "https://proj.supabase.test"
STORAGE_URL = f"{SUPABASE_URL}/storage/v1"
OBJECTS = f"{STORAGE_URL}/object"
USER = str(uuid.uuid4())
NAME = f"{USER}/0f8e2c1d-report.pdf"
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\n%%EOF\n"


SERVICE_KEY = api_key("service_role")

INVALID_NAMES = [
    "..",
    "../etc/passwd",
    f"{USER}/../other/file.pdf",
    f"{USER}/..",
    "a..b",
    "/etc/passwd",
    f"/{USER}/file.pdf",
    f"{USER}\\file.pdf",
    "..\\..\\windows",
    "",
    ".hidden",
    f"{USER}/.hidden",
    ".upload-abc",
    f"{USER}//file.pdf",
    f"{USER}/",
    f"{USER}/file name.pdf",
    f"{USER}/file%2F..%2Fx",
    f"{USER}/fi\x00le",
    "~/file",
    "a" * 513,
]


# --- LocalStorage ---------------------------------------------------------------------------


@pytest.fixture
def local(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "store", "documents")


def _all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_local_put_get_exists_delete(local: LocalStorage, tmp_path: Path) -> None:
    assert local.exists(NAME) is False
    local.put(NAME, PDF, "application/pdf")
    assert local.exists(NAME) is True
    assert local.get(NAME) == PDF
    assert (tmp_path / "store" / "documents" / NAME).read_bytes() == PDF
    local.delete(NAME)
    assert local.exists(NAME) is False
    with pytest.raises(NotFound):
        local.get(NAME)


def test_local_put_refuses_to_replace_unless_overwrite(local: LocalStorage) -> None:
    local.put(NAME, b"old", "text/plain")
    with pytest.raises(Conflict):
        local.put(NAME, b"new", "text/plain")
    assert local.get(NAME) == b"old"
    local.put(NAME, b"new", "text/plain", overwrite=True)
    assert local.get(NAME) == b"new"


def test_local_empty_object(local: LocalStorage) -> None:
    local.put(NAME, b"", "text/plain")
    assert local.exists(NAME)
    assert local.get(NAME) == b""


def test_local_objects_are_separate(local: LocalStorage) -> None:
    other = f"{uuid.uuid4()}/0f8e2c1d-report.pdf"
    local.put(NAME, b"one", "text/plain")
    local.put(other, b"two", "text/plain")
    assert (local.get(NAME), local.get(other)) == (b"one", b"two")
    local.delete(NAME)
    assert local.get(other) == b"two"


def test_local_delete_of_missing_object_is_a_no_op(local: LocalStorage) -> None:
    local.delete(NAME)
    assert local.exists(NAME) is False


def test_local_get_missing_raises_not_found(local: LocalStorage) -> None:
    with pytest.raises(NotFound) as info:
        local.get(NAME)
    assert info.value.code == "object_not_found"
    assert info.value.status == 404
    assert str(local.root) not in info.value.message  # no server paths in the message


def test_local_put_leaves_no_temp_files(local: LocalStorage) -> None:
    local.put(NAME, PDF, "application/pdf")
    assert _all_files(local.root) == [local.root / NAME]


@pytest.mark.parametrize("name", INVALID_NAMES)
@pytest.mark.parametrize("op", ["put", "get", "delete", "exists"])
def test_local_rejects_unsafe_names(
    local: LocalStorage, tmp_path: Path, name: str, op: str
) -> None:
    calls: dict[str, Callable[[], object]] = {
        "put": lambda: local.put(name, b"x", "text/plain"),
        "get": lambda: local.get(name),
        "delete": lambda: local.delete(name),
        "exists": lambda: local.exists(name),
    }
    with pytest.raises(ValueError, match="invalid storage object name"):
        calls[op]()
    assert _all_files(tmp_path) == []


@pytest.mark.parametrize(
    "name",
    [
        "file.pdf",
        NAME,
        f"{USER}/a-b_c.d.txt",
        f"{USER}/sub/dir/x.docx",
        "/".join(["A" * 200, "B" * 200, "C" * 110]),  # 512 characters, the limit
    ],
)
def test_local_accepts_safe_names(local: LocalStorage, name: str) -> None:
    local.put(name, b"ok", "text/plain")
    assert local.get(name) == b"ok"


def test_local_delete_outside_the_store_is_impossible(local: LocalStorage, tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    with pytest.raises(ValueError):
        local.delete("../../victim.txt")
    with pytest.raises(ValueError):
        local.delete(str(victim))
    assert victim.read_text() == "keep me"


def test_local_rejects_a_trailing_newline(local: LocalStorage, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        local.put(f"{NAME}\n", b"x", "text/plain")
    assert _all_files(tmp_path) == []


def test_local_failed_rename_leaves_no_partial_file(
    local: LocalStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patched, pytest.raises(StorageUnavailable):
        patched.setattr(storage_module.os, "replace", failing_replace)
        local.put(NAME, PDF, "application/pdf")
    assert local.exists(NAME) is False
    assert _all_files(local.root) == []


def test_local_failed_write_leaves_no_partial_file(
    local: LocalStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fdopen = os.fdopen

    class Failing:
        """Writes half the data, then the disk fills up."""

        def __init__(self, fd: int, mode: str) -> None:
            self._file = real_fdopen(fd, mode)

        def __enter__(self) -> Failing:
            return self

        def __exit__(self, *exc: object) -> None:
            self._file.close()

        def write(self, data: bytes) -> int:
            self._file.write(data[: len(data) // 2])
            self._file.flush()
            raise OSError(28, "No space left on device")

    with monkeypatch.context() as patched, pytest.raises(StorageUnavailable):
        patched.setattr(storage_module.os, "fdopen", Failing)
        local.put(NAME, PDF, "application/pdf")
    assert _all_files(local.root) == []


def test_local_failed_overwrite_keeps_the_old_object(
    local: LocalStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    local.put(NAME, b"old complete object", "text/plain")

    def failing_replace(src: str, dst: str) -> None:
        raise OSError(5, "I/O error")

    with monkeypatch.context() as patched, pytest.raises(StorageUnavailable):
        patched.setattr(storage_module.os, "replace", failing_replace)
        local.put(NAME, b"new", "text/plain", overwrite=True)
    assert local.get(NAME) == b"old complete object"
    assert _all_files(local.root) == [local.root / NAME]


def test_local_bad_data_leaves_no_partial_file(local: LocalStorage) -> None:
    with pytest.raises(TypeError):
        local.put(NAME, "not bytes", "text/plain", overwrite=True)  # type: ignore[arg-type]
    assert _all_files(local.root) == []


def test_make_storage_defaults_to_local_under_storage_dir(tmp_path: Path) -> None:
    settings = get_settings()  # settings_env points STORAGE_DIR at tmp_path / "storage"
    store = make_storage(settings)
    assert isinstance(store, LocalStorage)
    store.put(NAME, b"x", "text/plain")
    assert (tmp_path / "storage" / "documents" / NAME).read_bytes() == b"x"


# --- SupabaseStorage ------------------------------------------------------------------------


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as router:
        yield router


@pytest.fixture
def remote(api: respx.MockRouter) -> Iterator[SupabaseStorage]:
    store = SupabaseStorage(storage_client(STORAGE_URL, SERVICE_KEY), "documents")
    yield store
    store.close()


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (500, {"statusCode": "500", "error": "internal", "message": "Internal Server Error"}),
        (400, {"statusCode": "500", "error": "internal", "message": "Internal Server Error"}),
        (502, "<html>Bad Gateway</html>"),
        (503, "Service Unavailable"),
        (504, {"message": "upstream timeout"}),
    ],
    ids=["500-json", "400-real-500", "502-html", "503-text", "504-odd-json"],
)
@pytest.mark.parametrize("op", ["put", "get", "delete", "exists"])
def test_remote_5xx_maps_to_unavailable(
    remote: SupabaseStorage, api: respx.MockRouter, status: int, body: object, op: str
) -> None:
    route = api.route(host="proj.supabase.test")
    if isinstance(body, dict):
        route.respond(status, json=body)
    else:
        route.respond(status, text=str(body))
    with pytest.raises(Unavailable) as info:
        _remote_op(remote, op)
    assert info.value.status == 503
    assert info.value.retry_after is not None
    assert info.value.retry_after > 0
    assert "Bad Gateway" not in info.value.message


def _remote_op(remote: SupabaseStorage, op: str) -> object:
    if op == "put":
        return remote.put(NAME, PDF, "application/pdf")
    if op == "get":
        return remote.get(NAME)
    if op == "delete":
        return remote.delete(NAME)
    return remote.exists(NAME)


@pytest.mark.parametrize("name", ["../x", "/abs", f"{USER}\\x", "", ".hidden"])
@pytest.mark.parametrize("op", ["put", "get", "delete", "exists"])
def test_remote_rejects_unsafe_names_before_any_request(
    remote: SupabaseStorage, api: respx.MockRouter, name: str, op: str
) -> None:
    catch_all = api.route().respond(200, json={})
    calls: dict[str, Callable[[], object]] = {
        "put": lambda: remote.put(name, b"x", "text/plain"),
        "get": lambda: remote.get(name),
        "delete": lambda: remote.delete(name),
        "exists": lambda: remote.exists(name),
    }
    with pytest.raises(ValueError):
        calls[op]()
    assert catch_all.call_count == 0


def test_storage_url_defaults_to_the_projects_storage_path(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = configure(
        monkeypatch, SUPABASE_URL=f"{SUPABASE_URL}/", SUPABASE_SERVICE_ROLE_KEY=SERVICE_KEY
    )
    assert settings.storage_api_url == STORAGE_URL
