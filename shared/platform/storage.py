"""File storage behind one interface: a local directory (default) or Supabase Storage.

Object names are `<user_id>/<server-generated name>`; callers never choose them from user input.
A backend that cannot be reached or fails an I/O (a local read, delete or stat that raises
`OSError`, a Supabase Storage 5xx or a connection error) raises `StorageUnavailable`: a 503
`unavailable` for HTTP callers, and for the pipeline the recoverable job error
`storage_unavailable`. A missing object is `NotFound` (`object_not_found`) on both backends.
A delete succeeds only when the object is gone afterwards: the Storage API answers 200 `[]` to
a removal that did nothing (a missing bucket), so `SupabaseStorage` asks about each name its
answer does not list, and one still there (or a missing bucket) is an error.
supabase-py's storage client (storage3, httpx) is imported only when STORAGE_BACKEND=supabase
builds a `SupabaseStorage` (at start-up: `shared.platform.app`), never by importing this module.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any, Protocol

from shared.platform.config import Settings
from shared.platform.errors import (
    Conflict,
    DocflowError,
    NotFound,
    PayloadTooLarge,
    Unavailable,
    UnsupportedMediaType,
)
from shared.platform.log import get_logger

log = get_logger("storage")

_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-]*(/[A-Za-z0-9][A-Za-z0-9._\-]*)*")


class StorageUnavailable(Unavailable):
    """The storage backend failed (an I/O error, a 5xx, no connection): worth trying again."""

    def __init__(self, message: str, *, op: str) -> None:
        super().__init__(message, retry_after=5)
        self.op = op


def _check_name(name: str) -> None:
    if not _SAFE_NAME.fullmatch(name) or ".." in name or len(name) > 512:
        raise ValueError(f"invalid storage object name: {name!r}")


class Storage(Protocol):
    def put(self, name: str, data: bytes, content_type: str, *, overwrite: bool = False) -> None:
        """Store an object; refuse to replace an existing one unless `overwrite`."""

    def get(self, name: str) -> bytes: ...

    def delete(self, name: str) -> None: ...

    def delete_many(self, names: list[str]) -> None:
        """Delete objects; names that are already gone are no error."""

    def exists(self, name: str) -> bool: ...


class LocalStorage:
    """Objects as files under STORAGE_DIR/<bucket>/; writes are atomic (temp file + rename)."""

    def __init__(self, root: Path, bucket: str) -> None:
        self.root = Path(root) / bucket

    def _path(self, name: str) -> Path:
        _check_name(name)
        return self.root / name

    def put(self, name: str, data: bytes, content_type: str, *, overwrite: bool = False) -> None:
        path = self._path(name)
        if not overwrite and path.exists():
            raise Conflict("the object already exists", code="object_exists")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        except OSError as exc:
            raise _local_failure("put", exc) from exc
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException as exc:
            Path(tmp).unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise _local_failure("put", exc) from exc
            raise

    def get(self, name: str) -> bytes:
        path = self._path(name)
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFound("stored object not found", code="object_not_found") from None
        except OSError as exc:
            raise _local_failure("get", exc) from exc

    def delete(self, name: str) -> None:
        path = self._path(name)
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise _local_failure("delete", exc) from exc

    def delete_many(self, names: list[str]) -> None:
        for name in names:
            self.delete(name)

    def exists(self, name: str) -> bool:
        path = self._path(name)
        try:
            return path.is_file()
        except OSError as exc:
            raise _local_failure("exists", exc) from exc


def _local_failure(op: str, exc: OSError) -> StorageUnavailable:
    """An I/O error of the local backend, logged with its errno only (never the path)."""
    log.error("storage call failed", extra={"op": op, "errno": exc.errno})
    return StorageUnavailable("storage request failed", op=op)


class SupabaseStorage:
    """Supabase Storage through supabase-py's storage client (storage3, service role)."""

    def __init__(self, storage_client: Any, bucket: str) -> None:
        self._client = storage_client
        self._bucket = storage_client.from_(bucket)

    def close(self) -> None:
        """Close the client's connections (the process-wide backend's, on `reset_storage`)."""
        self._client.session.close()

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        import httpx
        from storage3.exceptions import StorageApiError

        try:
            return fn(*args, **kwargs)
        except StorageApiError as exc:
            raise _api_failure(what, exc) from exc
        except httpx.TransportError as exc:
            log.error("storage unreachable", extra={"op": what, "error": type(exc).__name__})
            raise StorageUnavailable("storage unreachable", op=what) from exc

    def put(self, name: str, data: bytes, content_type: str, *, overwrite: bool = False) -> None:
        _check_name(name)
        options = {"content-type": content_type, "upsert": "true" if overwrite else "false"}
        self._call("put", self._bucket.upload, name, data, options)

    def get(self, name: str) -> bytes:
        _check_name(name)
        data: bytes = self._call("get", self._bucket.download, name)
        return data

    def delete(self, name: str) -> None:
        self.delete_many([name])

    def delete_many(self, names: list[str]) -> None:
        """Remove the objects; a name the server does not list as removed must be gone.

        The Storage API answers 200 with the objects it removed, and 200 `[]` also when it
        removed nothing because it could not: a missing bucket (a wrong STORAGE_BUCKET), or a
        key without delete rights. So each name missing from its answer is asked about
        (`exists`): one that is still there, or a bucket that is missing, is an error, so that
        retention keeps its queue row. Names that were already gone cost one look-up each.
        (A key that may not even read the objects, such as the anon key, sees them as gone;
        the storage probe is down with such a key, since it cannot write.)"""
        for name in names:
            _check_name(name)
        for i in range(0, len(names), 1000):  # the Storage API takes up to 1,000 a call
            chunk = names[i : i + 1000]
            removed = self._call("delete", self._bucket.remove, chunk)
            listed = {str(item.get("name")) for item in removed or [] if isinstance(item, dict)}
            left = [name for name in dict.fromkeys(chunk) if name not in listed]
            still_there = sum(1 for name in left if self.exists(name))
            if still_there:
                log.error(
                    "storage call failed",
                    extra={"op": "delete", "status": "200", "not_removed": still_there},
                )
                raise DocflowError(
                    "storage answered the delete but kept the object", code="storage_error"
                )

    def exists(self, name: str) -> bool:
        _check_name(name)
        return bool(self._call("exists", self._bucket.exists, name))


def _api_failure(op: str, exc: Any) -> DocflowError:
    """A Storage API error as docflow's.

    The API answers every error with HTTP 400 and the real status as a string `statusCode` in
    the body (storage3's `.status`, its `error` is `.code`); a gateway in front may answer a
    bare 5xx (`.status` is then the HTTP status, an int). Only a missing object (404
    `not_found`) is `NotFound`: a missing bucket (404 `Bucket not found`, also the answer to a
    read with a key the server does not trust) and an unknown route (404 `Not Found`, a wrong
    SUPABASE_STORAGE_URL) are configuration faults, not a missing file.
    """
    status = str(getattr(exc, "status", "") or "")
    error = str(getattr(exc, "code", "") or "")
    if status == "404" and error == "not_found":
        return NotFound("stored object not found", code="object_not_found")
    log.error("storage call failed", extra={"op": op, "status": status, "error": error[:40]})
    if status == "409":
        return Conflict("the object already exists", code="object_exists")
    if status == "413":
        return PayloadTooLarge("the object is too large for the bucket")
    if status == "415":
        return UnsupportedMediaType("the bucket does not accept this type of file")
    if status.startswith("5") or not status:
        return StorageUnavailable("storage request failed", op=op)
    return DocflowError("storage request rejected", code="storage_error")


def storage_client(url: str, service_key: str) -> Any:
    """storage3's client on the Storage API at `url` (its routes at `<url>/object/...`),
    with the service key, as supabase-py's own client makes it."""
    from storage3 import SyncStorageClient

    headers = {"apiKey": service_key, "Authorization": f"Bearer {service_key}"}
    return SyncStorageClient(url.rstrip("/") + "/", headers)


def make_storage(settings: Settings, client: Any | None = None) -> Storage:
    """The backend STORAGE_BACKEND names; `client` (a storage3 client) replaces the one built
    on SUPABASE_STORAGE_URL (default SUPABASE_URL/storage/v1)."""
    if settings.storage_backend == "supabase":
        if client is None:
            url = settings.storage_api_url
            assert url and settings.supabase_service_role_key
            client = storage_client(url, settings.supabase_service_role_key.get_secret_value())
        return SupabaseStorage(client, settings.storage_bucket)
    return LocalStorage(settings.storage_dir, settings.storage_bucket)


_storage: Storage | None = None


def get_storage() -> Storage:
    """The process-wide storage backend chosen by STORAGE_BACKEND."""
    global _storage
    if _storage is None:
        from shared.platform.config import get_settings

        _storage = make_storage(get_settings())
    return _storage


def reset_storage() -> None:
    global _storage
    if isinstance(_storage, SupabaseStorage):
        _storage.close()
    _storage = None
