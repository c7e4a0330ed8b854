"""Settings through the environment, as the functions read them.

`tests/conftest.py` (autouse) starts every test from the test environment with fresh caches;
inside a test, `configure()` changes it and makes the cached settings follow.
"""

from __future__ import annotations

import pytest

from shared.platform import client as client_module
from shared.platform.config import Settings, get_settings, load_settings, reset_settings
from shared.platform.errors import ConfigError

# Nothing listens on port 1: connecting there fails at once.
UNREACHABLE_DATABASE_URL = "postgresql://postgres:postgres@127.0.0.1:1/postgres"


def configure(monkeypatch: pytest.MonkeyPatch, **env: object) -> Settings:
    """Set (or, for None, unset) these variables and return the settings they make."""
    for key, value in env.items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, str(value))
    reset_settings()
    return get_settings()


def database_down(monkeypatch: pytest.MonkeyPatch, connect_timeout: int = 1) -> None:
    """Point DATABASE_URL at a closed port and close the process-wide client: the functions'
    next database call fails (503), as with the database down."""
    monkeypatch.setenv("DATABASE_URL", UNREACHABLE_DATABASE_URL)
    monkeypatch.setenv("DB_CONNECT_TIMEOUT", str(connect_timeout))
    reset_settings()
    client_module.reset_db()


def config_error() -> ConfigError:
    """The ConfigError that loading the settings from this environment raises."""
    with pytest.raises(ConfigError) as info:
        load_settings()
    return info.value
