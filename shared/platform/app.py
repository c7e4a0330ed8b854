"""Wiring: the one place a function's handlers get their settings, database, storage and clock.

One `App` per process (`get_app()`). The router (`shared.platform.http.Router`) hands it to
every handler, together with the caller the route's auth level verified, so a handler never
calls `get_settings()`, `get_db()`, `get_storage()` or `authenticate()` itself.

The App holds no state of its own: each attribute reads the process-wide value behind it
(`config.get_settings()`, `client.get_db()`, `storage.get_storage()`, `clock.get_clock()`), so
that a test that changes the environment and calls `reset_settings()` / `reset_db()` (or
`App.reset()`, which does all of it) is seen by the next request, as before.

`start()` pays at start-up for what the settings need, and only that: it builds the database
client (psycopg's pool, not yet connected, or supabase-py for DB_TRANSPORT=rest), the storage
backend (a directory, or supabase-py's storage client for STORAGE_BACKEND=supabase) and, with
JWKS_URL, the JWKS cache's HTTP client (httpx). No module imports these libraries at the top,
so a function that needs none of them never loads them. `functions.load()` calls `start()` when
functions-framework looks a target up, before the first request. No connection is opened
there: functions-framework's gunicorn forks its worker after loading the app, and a pool's
threads would be left behind in the parent.
"""

from __future__ import annotations

from shared.platform import auth, clock, storage
from shared.platform import client as client_module
from shared.platform.client import Database
from shared.platform.config import Settings, get_settings, reset_settings


class App:
    """Settings, database, storage and clock of this process, for the handlers."""

    @property
    def settings(self) -> Settings:
        return get_settings()

    @property
    def db(self) -> Database:
        return client_module.get_db()

    @property
    def storage(self) -> storage.Storage:
        return storage.get_storage()

    @property
    def clock(self) -> clock.Clock:
        return clock.get_clock()

    def start(self) -> None:
        """Build now what the settings need (see the module docstring); idempotent."""
        settings = self.settings
        _ = self.db
        _ = self.storage
        if settings.jwks_url:
            auth.jwks_cache(settings.jwks_url, settings.jwks_cache_seconds).open()

    def reset(self) -> None:
        """Forget the settings, the database client, the storage backend, the JWKS caches and
        any swapped clock: the next use builds them from the environment again (tests)."""
        reset_settings()
        client_module.reset_db()
        storage.reset_storage()
        auth.reset_jwks_caches()
        clock.set_clock(None)


_app = App()


def get_app() -> App:
    """The process's App."""
    return _app
