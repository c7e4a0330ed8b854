"""Test fixtures: a real PostgreSQL with the real migrations, roles and RLS.

- The server: TEST_DATABASE_URL (an admin URL that may create databases) when set, else the
  embedded local cluster, started on demand.
- A template database is migrated once per run, as the migration role (`postgres`, not a
  superuser, as under `supabase db push`); every test that asks for `database_url` gets a fresh
  copy of it (CREATE DATABASE ... TEMPLATE), dropped afterwards. `database_url` logs in as
  `postgres`, the application's service login; `sql` as the superuser, for setup and checks.
- `settings_env` (autouse) isolates the environment: tests never read a developer's `.env`,
  and every process-wide cache (settings, the database client, storage, the JWKS key sets)
  starts empty and is dropped afterwards, so no test resets them itself. Inside a test,
  `tests.support.env.configure()` changes a setting.

- `storage_api` (session): Supabase's real Storage API, built once (cached between runs) and
  started on a free port against its own database of the local cluster, prepared as on Supabase
  (its migrations, then docflow's bootstrap and migrations); it skips without the source,
  except under `CI=true` (`tests/support/storage_api.py`).

Helpers (factories, tokens, HTTP) are in `tests/support`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from shared.dev import localdb, migrate
from shared.platform import client as client_module
from shared.platform.app import get_app
from shared.platform.client import Database, UserContext
from shared.platform.config import load_settings, reset_settings
from tests.support.receivers import Receivers
from tests.support.storage_api import RealStorageApi, start_storage_api
from tests.support.users import create_user

TEST_ENV = {
    "DOCFLOW_ENV_FILE": "",
    "SUPABASE_JWT_SECRET": "test-jwt-secret-that-is-long-enough-0123456789",
    "SCHEDULER_SECRET": "test-scheduler-secret-long-enough-0123456789",
    "DB_TRANSPORT": "postgres",
    "STORAGE_BACKEND": "local",
    "LOG_LEVEL": "WARNING",
    "DB_POOL_MIN": "0",
    "DB_POOL_MAX": "4",
}
_CLEARED = (
    "DATABASE_URL",
    "SUPABASE_URL",
    "SUPABASE_ANON_KEY",
    "SUPABASE_SERVICE_ROLE_KEY",
    "JWT_ISSUER",
    "CORS_ORIGINS",
)
# One template per test run, so that two runs against the same server never collide.
TEMPLATE_DB = f"docflow_test_template_{os.getpid()}"


def _base_env() -> dict[str, str]:
    env = dict(TEST_ENV)
    for key in ("LOCAL_PG_PORT", "LOCAL_PG_DIR", "LOCAL_PG_OS_USER"):
        if key in os.environ:
            env[key] = os.environ[key]
    return env


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    """An admin URL of the test server (creates databases)."""
    if os.environ.get("TEST_DATABASE_URL"):
        return os.environ["TEST_DATABASE_URL"]
    saved = dict(os.environ)
    os.environ.update(_base_env())
    try:
        settings = load_settings()
        settings = settings.model_copy(update={"database_url": None})
        return localdb.admin_url(settings)
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="session")
def template_url(pg_admin_url: str) -> Iterator[str]:
    localdb.recreate_database(pg_admin_url, TEMPLATE_DB)
    url = localdb.service_url(pg_admin_url, TEMPLATE_DB)
    migrate.migrate(url)
    yield url
    localdb.drop_database(pg_admin_url, TEMPLATE_DB)


@pytest.fixture(scope="session")
def storage_api(
    pg_admin_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RealStorageApi]:
    """The real Storage API, its keys signed with the test SUPABASE_JWT_SECRET."""
    yield from start_storage_api(
        pg_admin_url, tmp_path_factory.mktemp("storage-api"), TEST_ENV["SUPABASE_JWT_SECRET"]
    )


@pytest.fixture
def real_storage(storage_api: RealStorageApi) -> Iterator[RealStorageApi]:
    """The session's real Storage API; the clients a test opens on it are closed after it."""
    yield storage_api
    storage_api.close_clients()


@pytest.fixture
def receivers() -> Iterator[Receivers]:
    """Local webhook, SMTP and silent receivers, each stopped after the test."""
    started = Receivers()
    try:
        yield started
    finally:
        started.stop_all()


@pytest.fixture
def database_url(pg_admin_url: str, template_url: str) -> Iterator[str]:
    name = f"docflow_test_{uuid.uuid4().hex[:12]}"
    localdb.recreate_database(pg_admin_url, name, template=TEMPLATE_DB)
    try:
        yield localdb.service_url(pg_admin_url, name)
    finally:
        client_module.reset_db()
        localdb.drop_database(pg_admin_url, name)


@pytest.fixture(autouse=True)
def settings_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for key in _CLEARED:
        monkeypatch.delenv(key, raising=False)
    for key, value in _base_env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("STORAGE_DIR", str(tmp_path / "storage"))
    _reset_caches()
    yield
    _reset_caches()


def _reset_caches() -> None:
    """Forget every process-wide singleton the code under test caches (settings, the database
    client, storage, the JWKS key sets, a swapped clock): the App's reset."""
    get_app().reset()


@pytest.fixture
def db(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Database:
    """The service-role client bound to this test's fresh database."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    reset_settings()
    client_module.reset_db()
    return client_module.get_db()


@pytest.fixture
def make_user(database_url: str) -> Callable[..., UserContext]:
    """Create a user in auth.users and return its verified context (token + claims)."""

    def factory(*, admin: bool = False) -> UserContext:
        return create_user(database_url, admin=admin)

    return factory


@pytest.fixture
def admin_database_url(pg_admin_url: str, database_url: str) -> str:
    """This test's database, as the server's admin login (the superuser on the local cluster)."""
    return localdb.url_for(pg_admin_url, psycopg.conninfo.conninfo_to_dict(database_url)["dbname"])


@pytest.fixture
def sql(admin_database_url: str) -> Iterator[psycopg.Connection]:
    """A superuser connection to this test's database, for setup and independent checks."""
    with psycopg.connect(admin_database_url, autocommit=True) as conn:
        yield conn
