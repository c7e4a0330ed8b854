"""shared.platform.config: settings from the environment and a dotenv file, with ConfigErrors naming
the setting at fault."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shared.platform import config
from shared.platform.config import Settings, get_settings, load_settings, reset_settings
from shared.platform.errors import ConfigError

FIELD_ENV_NAMES = [name.upper() for name in Settings.model_fields]
JWT_SECRET = "test-jwt-secret-that-is-long-enough-0123456789"
SCHED_SECRET = "test-scheduler-secret-long-enough-0123456789"


def _clear_settings_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in FIELD_ENV_NAMES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the two required secrets set; no dotenv file."""
    _clear_settings_env(monkeypatch)
    monkeypatch.setenv("DOCFLOW_ENV_FILE", "")
    monkeypatch.setenv("SUPABASE_JWT_SECRET", JWT_SECRET)
    monkeypatch.setenv("SCHEDULER_SECRET", SCHED_SECRET)


def _config_error() -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_settings()
    return info.value


# --- defaults -------------------------------------------------------------------------------


@pytest.mark.usefixtures("clean_env")
def test_defaults_follow_the_product_contract() -> None:
    s = load_settings()
    assert s.db_transport == "postgres"
    assert s.storage_backend == "local"
    assert s.storage_bucket == "documents"
    assert s.max_upload_bytes == 25 * 1024 * 1024
    assert s.upload_rate_limit_per_minute == 30
    assert s.job_max_attempts == 4
    assert s.job_lease_seconds == 30
    assert (s.retry_initial_seconds, s.retry_multiplier, s.retry_max_seconds) == (1.0, 2.0, 60.0)
    assert s.retry_jitter == pytest.approx(0.1)
    assert s.jwt_audience == "authenticated"
    assert s.jwt_issuer is None
    assert s.supabase_jwt_secret.get_secret_value() == JWT_SECRET
    assert s.scheduler_secret.get_secret_value() == SCHED_SECRET


@pytest.mark.usefixtures("clean_env")
def test_secrets_are_not_shown_in_repr() -> None:
    s = load_settings()
    assert JWT_SECRET not in repr(s)
    assert SCHED_SECRET not in repr(s)


@pytest.mark.usefixtures("clean_env")
def test_get_settings_is_cached_until_reset(monkeypatch: pytest.MonkeyPatch) -> None:
    reset_settings()
    first = get_settings()
    assert get_settings() is first
    monkeypatch.setenv("MAX_UPLOAD_BYTES", "4096")
    assert get_settings().max_upload_bytes == first.max_upload_bytes
    reset_settings()
    assert get_settings().max_upload_bytes == 4096


# --- errors name the setting ----------------------------------------------------------------


@pytest.mark.usefixtures("clean_env")
def test_missing_jwt_secret_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SUPABASE_JWT_SECRET")
    assert "SUPABASE_JWT_SECRET" in str(_config_error())


@pytest.mark.usefixtures("clean_env")
def test_missing_scheduler_secret_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SCHEDULER_SECRET")
    assert "SCHEDULER_SECRET" in str(_config_error())


@pytest.mark.usefixtures("clean_env")
@pytest.mark.parametrize("name", ["SCHEDULER_SECRET", "SUPABASE_JWT_SECRET"])
def test_short_secret_is_named_and_not_echoed(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    value = "short-but-secret-value-0123456"  # 30 characters
    monkeypatch.setenv(name, value)
    err = _config_error()
    assert name in str(err)
    assert value not in str(err)
    assert err.code == "config_error"


@pytest.mark.usefixtures("clean_env")
def test_secret_of_exactly_32_characters_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCHEDULER_SECRET", "s" * 32)
    assert load_settings().scheduler_secret.get_secret_value() == "s" * 32
    monkeypatch.setenv("SCHEDULER_SECRET", "s" * 31)
    assert "SCHEDULER_SECRET" in str(_config_error())


@pytest.mark.usefixtures("clean_env")
def test_rest_transport_without_supabase_url_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_TRANSPORT", "rest")
    monkeypatch.setenv("SUPABASE_SERVICE_ROLE_KEY", "service-key")
    err = _config_error()
    assert "SUPABASE_URL" in str(err)
    assert "SUPABASE_SERVICE_ROLE_KEY" not in str(err)


@pytest.mark.usefixtures("clean_env")
def test_rest_transport_without_service_key_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_TRANSPORT", "rest")
    monkeypatch.setenv("SUPABASE_URL", "https://proj.supabase.test")
    assert "SUPABASE_SERVICE_ROLE_KEY" in str(_config_error())


@pytest.mark.usefixtures("clean_env")
def test_supabase_storage_needs_the_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORAGE_BACKEND", "supabase")
    assert "SUPABASE_URL" in str(_config_error())
    monkeypatch.setenv("SUPABASE_URL", "https://proj.supabase.test")
    monkeypatch.setenv("SUPABASE_SERVICE_ROLE_KEY", "service-key")
    assert load_settings().storage_backend == "supabase"


@pytest.mark.usefixtures("clean_env")
@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MAX_UPLOAD_BYTES", "abc"),
        ("MAX_UPLOAD_BYTES", "0"),
        ("DB_POOL_MAX", "1.5"),
        ("LOCAL_PG_PORT", "80"),
        ("JOB_MAX_ATTEMPTS", "0"),
        ("RETRY_JITTER", "2"),
        ("DB_TRANSPORT", "mysql"),
        ("STORAGE_BACKEND", "s3"),
        ("LOG_LEVEL", "chatty"),
        ("WORKER_POLL_SECONDS", "0"),
    ],
)
def test_bad_values_are_named(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    err = _config_error()
    assert name in str(err)


@pytest.mark.usefixtures("clean_env")
def test_every_bad_setting_is_reported_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_UPLOAD_BYTES", "abc")
    monkeypatch.setenv("JOB_LEASE_SECONDS", "never")
    message = str(_config_error())
    assert "MAX_UPLOAD_BYTES" in message
    assert "JOB_LEASE_SECONDS" in message


@pytest.mark.usefixtures("clean_env")
def test_pool_min_above_max_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_POOL_MIN", "5")
    monkeypatch.setenv("DB_POOL_MAX", "2")
    assert "DB_POOL_MIN" in str(_config_error())


@pytest.mark.usefixtures("clean_env")
def test_values_are_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("log_level", "debug")  # names are case-insensitive, level upper-cased
    monkeypatch.setenv("MAX_UPLOAD_BYTES", "1048576")
    monkeypatch.setenv("CORS_ORIGINS", " https://a.test , ,https://b.test")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db.test:6543/postgres")
    s = load_settings()
    assert s.log_level == "DEBUG"
    assert s.max_upload_bytes == 1048576
    assert s.cors_origin_list == ["https://a.test", "https://b.test"]
    assert s.effective_database_url() == "postgresql://u:p@db.test:6543/postgres"


@pytest.mark.usefixtures("clean_env")
def test_local_database_url_is_used_without_database_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LOCAL_PG_PORT", "55555")
    assert load_settings().effective_database_url().endswith("@127.0.0.1:55555/postgres")


@pytest.mark.usefixtures("clean_env")
@pytest.mark.parametrize(("value", "expected"), [("false", False), ("0", False), ("true", True)])
def test_prepared_statements_can_be_turned_off(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: bool
) -> None:
    assert load_settings().db_prepared_statements is True
    monkeypatch.setenv("DB_PREPARED_STATEMENTS", value)
    assert load_settings().db_prepared_statements is expected


@pytest.mark.usefixtures("clean_env")
@pytest.mark.parametrize(
    ("name", "attr", "default"),
    [
        ("JWT_ISSUER", "jwt_issuer", None),
        ("SUPABASE_URL", "supabase_url", None),
        ("DATABASE_URL", "database_url", None),
        ("MAX_UPLOAD_BYTES", "max_upload_bytes", 25 * 1024 * 1024),
        ("DB_TRANSPORT", "db_transport", "postgres"),
    ],
)
def test_empty_values_mean_the_default(
    monkeypatch: pytest.MonkeyPatch, name: str, attr: str, default: object
) -> None:
    monkeypatch.setenv(name, "")
    assert getattr(load_settings(), attr) == default


# --- dotenv file ----------------------------------------------------------------------------


def _write_env(path: Path, **values: str) -> Path:
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()), encoding="utf-8")
    return path


def test_env_file_is_loaded_from_docflow_env_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _clear_settings_env(monkeypatch)
    env_file = _write_env(
        tmp_path / "custom.env",
        SUPABASE_JWT_SECRET=JWT_SECRET,
        SCHEDULER_SECRET=SCHED_SECRET,
        MAX_UPLOAD_BYTES="1234",
        STORAGE_BUCKET="files",
    )
    monkeypatch.setenv("DOCFLOW_ENV_FILE", str(env_file))
    s = load_settings()
    assert s.max_upload_bytes == 1234
    assert s.storage_bucket == "files"
    assert s.supabase_jwt_secret.get_secret_value() == JWT_SECRET


def test_environment_overrides_the_env_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _clear_settings_env(monkeypatch)
    env_file = _write_env(
        tmp_path / "custom.env",
        SUPABASE_JWT_SECRET=JWT_SECRET,
        SCHEDULER_SECRET=SCHED_SECRET,
        MAX_UPLOAD_BYTES="1234",
        STORAGE_BUCKET="files",
    )
    monkeypatch.setenv("DOCFLOW_ENV_FILE", str(env_file))
    monkeypatch.setenv("MAX_UPLOAD_BYTES", "999")
    s = load_settings()
    assert s.max_upload_bytes == 999
    assert s.storage_bucket == "files"


def test_bad_value_in_env_file_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _clear_settings_env(monkeypatch)
    env_file = _write_env(
        tmp_path / "custom.env",
        SUPABASE_JWT_SECRET=JWT_SECRET,
        SCHEDULER_SECRET=SCHED_SECRET,
        JOB_LEASE_SECONDS="soon",
    )
    monkeypatch.setenv("DOCFLOW_ENV_FILE", str(env_file))
    assert "JOB_LEASE_SECONDS" in str(_config_error())


def test_empty_docflow_env_file_ignores_dot_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _clear_settings_env(monkeypatch)
    _write_env(
        tmp_path / ".env",
        SUPABASE_JWT_SECRET=JWT_SECRET,
        SCHEDULER_SECRET=SCHED_SECRET,
        MAX_UPLOAD_BYTES="777",
    )
    monkeypatch.chdir(tmp_path)

    monkeypatch.setenv("DOCFLOW_ENV_FILE", "")
    assert "SUPABASE_JWT_SECRET" in str(_config_error())

    monkeypatch.delenv("DOCFLOW_ENV_FILE")  # unset: ./.env is read
    assert load_settings().max_upload_bytes == 777


def test_missing_env_file_is_not_an_error_when_env_is_complete(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCFLOW_ENV_FILE", str(tmp_path / "does-not-exist.env"))
    assert load_settings().supabase_jwt_secret.get_secret_value()


# --- .env.example ---------------------------------------------------------------------------


@pytest.fixture
def env_example() -> Path:
    path = config.REPO_ROOT / ".env.example"
    if not path.is_file():
        pytest.skip(".env.example not written yet")
    return path


@pytest.mark.parametrize("name", FIELD_ENV_NAMES)
def test_env_example_lists_every_setting(env_example: Path, name: str) -> None:
    text = env_example.read_text(encoding="utf-8")
    # Listed as NAME=..., possibly commented out ("# NAME=") when it has no local value.
    assert re.search(rf"^[ \t]*(?:#[ \t]*)?{name}=", text, re.MULTILINE), (
        f"{name}= missing from .env.example"
    )


def test_env_example_alone_gives_working_local_settings(
    monkeypatch: pytest.MonkeyPatch, env_example: Path
) -> None:
    _clear_settings_env(monkeypatch)
    monkeypatch.setenv("DOCFLOW_ENV_FILE", str(env_example))
    s = load_settings()
    assert s.db_transport == "postgres"
    assert s.storage_backend == "local"
    assert s.max_upload_bytes >= 1
    # Empty entries ("JWT_ISSUER=") mean "unset", not an empty string.
    assert s.jwt_issuer is None
    assert s.supabase_url is None
    assert s.database_url is None
