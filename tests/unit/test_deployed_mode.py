"""Deployed mode (issue 13): a deployment refuses secrets anyone can read; local use is unchanged.

Deployed: `K_SERVICE` set, or a `DATABASE_URL` / `SUPABASE_URL` host that is not loopback. A
local `supabase start` stack (whose JWT secret is the CLI's public default) stays allowed.
"""

from __future__ import annotations

import os
import subprocess
import sys

import jwt
import pytest

from shared.platform import config
from shared.platform.config import load_settings
from tests.support.env import config_error, configure

CLI_JWT_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"
CLI_ANON_KEY = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6ImFub24iLCJleHAi"
    "OjE5ODM4MTI5OTZ9.CRXP1A7WOeoJeXxjNni43kdQwgnWNReilDMblYTn_I0"
)
CLI_SERVICE_KEY = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6InNlcnZpY2Vfcm9s"
    "ZSIsImV4cCI6MTk4MzgxMjk5Nn0.EGIM96RAZx35lJzdJsyH-qQwv8Hdp7fsn3W0YpN81IU"
)
EXAMPLE_SCHEDULER_SECRET = "local-scheduler-secret-change-me-0123456789"
OWN_JWT_SECRET = "f3a9c1d27b8e4605a9d3c2b1e0f4a7d6c5b8e9f0a1b2"
OWN_SCHEDULER_SECRET = "9b2e7c4a1d8f3e6b0c5a2d9e4f7b1c3a8e6d0f2b"
OWN_SERVICE_KEY = jwt.encode({"role": "service_role", "iss": "supabase"}, "x" * 64)
HOSTED = "https://abcdefghijklmnop.supabase.co"

# Everything that decides the mode, plus every setting a case sets.
_ENV = (
    "K_SERVICE",
    "PGHOST",
    "PGHOSTADDR",
    *(name.upper() for name in config.Settings.model_fields),
)


@pytest.fixture(autouse=True)
def local_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Local, with the project's own secrets: nothing here is refused."""
    own = {
        "DOCFLOW_ENV_FILE": "",
        "SUPABASE_JWT_SECRET": OWN_JWT_SECRET,
        "SCHEDULER_SECRET": OWN_SCHEDULER_SECRET,
    }
    configure(monkeypatch, **{**dict.fromkeys(_ENV), **own})


def _refused() -> str:
    error = config_error()
    assert error.code == "config_error"
    return error.message


# --- what counts as deployed ----------------------------------------------------------------

DEPLOYMENTS = {
    "cloud functions": {"K_SERVICE": "uploads"},
    "hosted database url": {
        "DATABASE_URL": "postgresql://postgres.abcd:pw@aws-0-eu-west-1.pooler.supabase.com:6543/postgres"
    },
    "key=value dsn": {"DATABASE_URL": "host=db.abcd.supabase.co dbname=postgres user=postgres"},
    "one of several hosts": {"DATABASE_URL": "postgresql://u:p@127.0.0.1,db.example.com/postgres"},
    "private network host": {"DATABASE_URL": "postgresql://u:p@10.1.2.3/postgres"},
    "hostaddr": {"DATABASE_URL": "host=localhost hostaddr=192.0.2.7 dbname=postgres"},
    "PGHOST": {"DATABASE_URL": "postgresql:///postgres", "PGHOST": "db.example.com"},
    "unparsable database url": {"DATABASE_URL": "host='unterminated"},
    "hosted supabase url": {"SUPABASE_URL": HOSTED},
    "rest transport": {
        "DB_TRANSPORT": "rest",
        "SUPABASE_URL": HOSTED,
        "SUPABASE_SERVICE_ROLE_KEY": OWN_SERVICE_KEY,
    },
    "supabase storage": {
        "STORAGE_BACKEND": "supabase",
        "SUPABASE_URL": HOSTED,
        "SUPABASE_SERVICE_ROLE_KEY": OWN_SERVICE_KEY,
    },
}

LOCAL = {
    "nothing set": {},
    "embedded cluster url": {"DATABASE_URL": "postgresql://postgres:postgres@127.0.0.1:54329/db"},
    "localhost": {"DATABASE_URL": "postgresql://postgres:postgres@localhost:54322/postgres"},
    "ipv6 loopback": {"DATABASE_URL": "postgresql://postgres:postgres@[::1]:54322/postgres"},
    "unix socket": {"DATABASE_URL": "postgresql://postgres@/postgres?host=/var/run/postgresql"},
    "default socket": {"DATABASE_URL": "postgresql:///postgres"},
    "supabase start": {
        "DATABASE_URL": "postgresql://postgres:postgres@127.0.0.1:54322/postgres",
        "SUPABASE_URL": "http://127.0.0.1:54321",
        "DB_TRANSPORT": "rest",
        "STORAGE_BACKEND": "supabase",
        "SUPABASE_ANON_KEY": CLI_ANON_KEY,
        "SUPABASE_SERVICE_ROLE_KEY": CLI_SERVICE_KEY,
    },
    "supabase start on localhost": {
        "SUPABASE_URL": "http://localhost:54321",
        "STORAGE_BACKEND": "supabase",
        "SUPABASE_SERVICE_ROLE_KEY": CLI_SERVICE_KEY,
    },
}


def _set(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize("env", DEPLOYMENTS.values(), ids=DEPLOYMENTS.keys())
def test_deployments_refuse_the_cli_jwt_secret(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    _set(monkeypatch, env)
    assert load_settings().deployed  # with its own secrets, it starts
    monkeypatch.setenv("SUPABASE_JWT_SECRET", CLI_JWT_SECRET)
    message = _refused()
    assert "SUPABASE_JWT_SECRET" in message
    assert "deployed (" in message
    assert CLI_JWT_SECRET not in message


@pytest.mark.parametrize("env", LOCAL.values(), ids=LOCAL.keys())
def test_local_use_keeps_the_public_secrets(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    _set(monkeypatch, env)
    monkeypatch.setenv("SUPABASE_JWT_SECRET", CLI_JWT_SECRET)
    monkeypatch.setenv("SCHEDULER_SECRET", EXAMPLE_SCHEDULER_SECRET)
    settings = load_settings()
    assert not settings.deployed, settings.deployed_because()
    assert settings.supabase_jwt_secret is not None
    assert settings.supabase_jwt_secret.get_secret_value() == CLI_JWT_SECRET


def test_the_reasons_name_each_signal(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().deployed_because() == []
    monkeypatch.setenv("K_SERVICE", "jobs")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:secret-pw@db.example.com/postgres")
    monkeypatch.setenv("SUPABASE_URL", HOSTED)
    reasons = load_settings().deployed_because()
    assert reasons == [
        "K_SERVICE is set",
        "DATABASE_URL's host is not loopback",
        "SUPABASE_URL's host is not loopback",
    ]
    assert "secret-pw" not in " ".join(reasons)


# --- what is refused ------------------------------------------------------------------------

MINTED_WITH_CLI_SECRET = jwt.encode(
    {"role": "service_role", "iss": "supabase", "ref": "abcd"}, CLI_JWT_SECRET, algorithm="HS256"
)
PUBLIC_VALUES = {
    "cli jwt secret": ("SUPABASE_JWT_SECRET", CLI_JWT_SECRET),
    "example scheduler secret": ("SCHEDULER_SECRET", EXAMPLE_SCHEDULER_SECRET),
    "cli anon key": ("SUPABASE_ANON_KEY", CLI_ANON_KEY),
    "cli service_role key": ("SUPABASE_SERVICE_ROLE_KEY", CLI_SERVICE_KEY),
    "cli publishable key": ("SUPABASE_ANON_KEY", "sb_publishable_ACJWlzQHlZjBrEguHvfOxg_3BJgxAaH"),
    "cli secret key": ("SUPABASE_SERVICE_ROLE_KEY", "sb_secret_N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz"),
    "key signed with the cli secret": ("SUPABASE_SERVICE_ROLE_KEY", MINTED_WITH_CLI_SECRET),
    "change-me jwt secret": ("SUPABASE_JWT_SECRET", "Change-Me-to-the-projects-jwt-secret-0123"),
    "change-me scheduler": ("SCHEDULER_SECRET", "please-change-me-scheduler-secret-0123456"),
    "changeme api key": ("ANTHROPIC_API_KEY", "sk-ant-CHANGEME"),
    "change_me api key": ("OPENAI_API_KEY", "sk-change_me"),
    "change-me webhook": ("ALERT_WEBHOOK_URL", "https://hooks.slack.com/services/change-me"),
    "change-me smtp": ("SMTP_PASSWORD", "smtp-password-change-me"),
    "change-me api token": ("API_TOKEN", "token-change-me"),
}


@pytest.mark.parametrize(("name", "value"), PUBLIC_VALUES.values(), ids=PUBLIC_VALUES.keys())
def test_each_public_value_is_refused_when_deployed_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    assert load_settings().deployed is False  # locally: accepted
    monkeypatch.setenv("K_SERVICE", "uploads")
    message = _refused()
    assert f"{name} " in message
    assert value not in message
    other_settings = {n.upper() for n in config.SECRET_SETTINGS} - {name}
    assert not any(f"{other} " in message for other in other_settings), message


def test_a_change_me_database_password_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres:CHANGE-ME@db.example.com/postgres")
    message = _refused()
    assert "DATABASE_URL " in message
    assert "CHANGE-ME" not in message


def test_every_public_secret_is_named_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("K_SERVICE", "uploads")
    monkeypatch.setenv("SUPABASE_JWT_SECRET", CLI_JWT_SECRET)
    monkeypatch.setenv("SCHEDULER_SECRET", EXAMPLE_SCHEDULER_SECRET)
    message = _refused()
    assert "SUPABASE_JWT_SECRET is the Supabase CLI's public JWT secret" in message
    assert "SCHEDULER_SECRET is the example value from .env.example" in message


def test_env_example_is_refused_when_deployed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SUPABASE_JWT_SECRET")
    monkeypatch.delenv("SCHEDULER_SECRET")
    monkeypatch.setenv("DOCFLOW_ENV_FILE", str(config.REPO_ROOT / ".env.example"))
    assert not load_settings().deployed
    monkeypatch.setenv("K_SERVICE", "uploads")
    message = _refused()
    assert "SUPABASE_JWT_SECRET" in message
    assert "SCHEDULER_SECRET" in message


def test_every_secret_setting_is_checked() -> None:
    assert set(config.SECRET_SETTINGS) >= {
        "supabase_jwt_secret",
        "scheduler_secret",
        "supabase_anon_key",
        "supabase_service_role_key",
        "api_token",
        "anthropic_api_key",
        "openai_api_key",
        "alert_webhook_url",
        "smtp_password",
    }


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("::ffff:127.0.0.1", True),
        ("localhost", True),
        ("LOCALHOST.", True),
        ("db.localhost", True),
        ("0.0.0.0", False),  # noqa: S104 - a host name under test, nothing binds
        ("10.0.0.1", False),
        ("::", False),
        ("localhost.example.com", False),
        ("db.abcd.supabase.co", False),
        ("", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert config._is_loopback(host) is loopback


# --- the acceptance criterion: `import main` ------------------------------------------------


def _import_main(**env: str) -> subprocess.CompletedProcess[str]:
    base = {
        "PATH": os.environ.get("PATH", ""),
        **{k: os.environ[k] for k in ("HOME", "LOCAL_PG_PORT", "LOCAL_PG_DIR") if k in os.environ},
        "DOCFLOW_ENV_FILE": "",
        "SCHEDULER_SECRET": OWN_SCHEDULER_SECRET,
        "LOG_LEVEL": "WARNING",
    }
    return subprocess.run(
        [sys.executable, "-c", "import main"],
        cwd=config.REPO_ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_import_main_exits_non_zero_naming_the_cli_jwt_secret_when_deployed() -> None:
    done = _import_main(K_SERVICE="uploads", SUPABASE_JWT_SECRET=CLI_JWT_SECRET)
    assert done.returncode != 0
    assert "SUPABASE_JWT_SECRET" in done.stderr
    assert "refusing to start" in done.stderr
    assert CLI_JWT_SECRET not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


def test_import_main_starts_locally_with_the_cli_jwt_secret() -> None:
    done = _import_main(SUPABASE_JWT_SECRET=CLI_JWT_SECRET)
    assert done.returncode == 0, done.stderr
    done = _import_main(K_SERVICE="uploads", SUPABASE_JWT_SECRET=OWN_JWT_SECRET)
    assert done.returncode == 0, done.stderr
