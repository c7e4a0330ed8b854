"""The real Supabase Storage API for tests (`shared.dev.storage_api`), and clients on it.

`storage_api` (a session fixture in tests/conftest.py) builds the server once (cached between
runs) and starts it on a free port against a session database of the local cluster, prepared
in Supabase's order: the Storage API's migrations, docflow's bootstrap, docflow's migrations.
Without the source the tests that use it skip, saying why; under `CI=true` they fail instead.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from shared.dev import localdb, storage_api
from shared.dev.storage_api import StorageServer
from shared.platform.app import get_app
from shared.platform.config import Settings, get_settings
from shared.platform.errors import ConfigError
from shared.platform.storage import SupabaseStorage, storage_client

# Nothing listens on port 1: connecting there is refused at once.
REFUSED_URL = "http://127.0.0.1:1"


@dataclass
class RealStorageApi:
    """A running Storage API and the database it shares with docflow."""

    server: StorageServer
    database_url: str  # `postgres`: docflow's migration role and service login
    admin_database_url: str  # the cluster's superuser, for setup and checks
    _clients: list[Any] = field(default_factory=list, repr=False)

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def service_key(self) -> str:
        return self.server.service_key

    @property
    def anon_key(self) -> str:
        return self.server.anon_key

    def client(self, key: str | None = None) -> Any:
        """storage3's client on the server, with the service key unless `key` is given;
        `close_clients()` closes it (the `real_storage` fixture does, after each test)."""
        client = storage_client(self.base_url, key or self.service_key)
        self._clients.append(client)
        return client

    def user_client(self, token: str) -> Any:
        """storage3's client as supabase-js calls Storage for a signed-in user: the anon key
        as `apikey`, the user's access token as `Authorization` (`client()` sends one key in
        both). Closed by `close_clients()`."""
        from storage3 import SyncStorageClient

        headers = {"apiKey": self.anon_key, "Authorization": f"Bearer {token}"}
        client = SyncStorageClient(self.base_url.rstrip("/") + "/", headers)
        self._clients.append(client)
        return client

    def supabase_js_upload(
        self,
        token: str,
        path: str,
        data: bytes,
        content_type: str,
        *,
        form: bool = False,
        bucket: str = "documents",
    ) -> tuple[int, Any]:
        """What supabase-js sends for a signed-in user: `createSignedUploadUrl(path)`
        (`POST /object/upload/sign/<bucket>/<path>`, the anon key as `apikey`, the user's token
        as `Authorization`), then `uploadToSignedUrl(path, token, file)`: a `PUT` to the
        signed URL with the body as is (`form=False`), or, for a browser's `File`/`Blob`,
        as multipart form data (`cacheControl` and the file in a field named ``).

        Returns the HTTP status and JSON body of the first call that fails, else the upload's.
        (Every error of the Storage API is HTTP 400, the real status in the body.)"""
        headers = {"apikey": self.anon_key, "Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=self.base_url, headers=headers, timeout=30) as http:
            signed = http.post(f"/object/upload/sign/{bucket}/{path}")
            if signed.status_code != 200:
                return signed.status_code, signed.json()
            url = signed.json()["url"]  # /object/upload/sign/<bucket>/<path>?token=...
            assert url.startswith(f"/object/upload/sign/{bucket}/{path}?token=")
            if form:
                response = http.put(
                    url,
                    headers={"x-upsert": "false"},
                    data={"cacheControl": "3600"},
                    files={"": ("blob", data, content_type)},
                )
            else:
                response = http.put(
                    url,
                    headers={
                        "x-upsert": "false",
                        "content-type": content_type,
                        "cache-control": "max-age=3600",
                    },
                    content=data,
                )
            return response.status_code, response.json()

    def docflow_env(self) -> dict[str, str]:
        """The settings that put docflow on this server and its database, as in production:
        STORAGE_BACKEND=supabase with the service key, DATABASE_URL the shared database."""
        return {
            "DATABASE_URL": self.database_url,
            "STORAGE_BACKEND": "supabase",
            "SUPABASE_STORAGE_URL": self.base_url,
            "SUPABASE_SERVICE_ROLE_KEY": self.service_key,
            "SUPABASE_ANON_KEY": self.anon_key,
            "STORAGE_BUCKET": "documents",
        }

    def use_in_docflow(self, monkeypatch: pytest.MonkeyPatch, **env: object) -> Settings:
        """Point docflow (settings, database client, storage) at this server and its database
        for the test, with `env` on top; returns the settings."""
        for key, value in {**self.docflow_env(), **env}.items():
            if value is None:
                monkeypatch.delenv(key, raising=False)
            else:
                monkeypatch.setenv(key, str(value))
        get_app().reset()
        return get_settings()

    def object_row(self, name: str, bucket: str = "documents") -> tuple[Any, ...] | None:
        """The object's `storage.objects` row as the server keeps it: (owner_id, mimetype,
        size), or None when there is none."""
        with psycopg.connect(self.admin_database_url) as conn:
            return conn.execute(
                "select owner_id, metadata ->> 'mimetype', (metadata ->> 'size')::bigint "
                "from storage.objects where bucket_id = %s and name = %s",
                (bucket, name),
            ).fetchone()

    def close_clients(self) -> None:
        while self._clients:
            self._clients.pop().session.close()

    def storage(self, bucket: str = "documents") -> SupabaseStorage:
        """docflow's Supabase backend on this server (service role)."""
        return SupabaseStorage(self.client(), bucket)

    @contextlib.contextmanager
    def stopped(self) -> Iterator[None]:
        """The server down (SIGTERM) for the block, started again after it on the same port."""
        self.server.stop()
        try:
            yield
        finally:
            self.server.start()


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"the real Storage API must run under CI=true: {reason}")
    pytest.skip(reason)


def start_storage_api(
    pg_admin_url: str, workdir: Path, jwt_secret: str
) -> Iterator[RealStorageApi]:
    """Build (cached) and start the Storage API on a new database of the local cluster."""
    source = storage_api.find_source()
    if source is None:
        _unavailable(
            f"no Storage API source: set {storage_api.SOURCE_ENV} or put "
            f"{storage_api.SOURCE_GLOB} in {storage_api.default_source_dir()}"
        )
        raise AssertionError("unreachable")
    admin_user = psycopg.conninfo.conninfo_to_dict(pg_admin_url).get("user")
    if admin_user != localdb.SUPERUSER:
        _unavailable(
            "the real Storage API runs on the embedded local cluster, not on TEST_DATABASE_URL"
        )
    built = storage_api.build(source)
    dbname = f"storage_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        server = storage_api.start_on_new_database(
            built,
            admin_url=pg_admin_url,
            dbname=dbname,
            files_dir=workdir / "files",
            jwt_secret=jwt_secret,
            log_path=workdir / "storage-api.log",
        )
    except ConfigError:
        localdb.drop_database(pg_admin_url, dbname)
        raise
    try:
        yield RealStorageApi(
            server=server,
            database_url=localdb.service_url(pg_admin_url, dbname),
            admin_database_url=localdb.url_for(pg_admin_url, dbname),
        )
    finally:
        server.stop()
        localdb.drop_database(pg_admin_url, dbname)
