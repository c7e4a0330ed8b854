"""Settings: read once from the environment and `.env`, validated by pydantic-settings.

Every setting is listed, with its default, in `.env.example`. A wrong or missing setting stops
start-up with a `ConfigError` naming it. `DOCFLOW_ENV_FILE` picks another dotenv file (empty:
none), which is how the tests keep a developer's `.env` out of their way.

**Deployed mode.** A process is deployed when `K_SERVICE` is set (Cloud Run and Cloud
Functions gen2 set it), or when `DATABASE_URL` or `SUPABASE_URL` names a host that is not
loopback (127.0.0.0/8, ::1, localhost). `STORAGE_BACKEND=supabase` and `DB_TRANSPORT=rest`
need `SUPABASE_URL`, so with a hosted project they are deployed through it; against a local
`supabase start` stack (http://127.0.0.1:54321) they are not. A deployed process refuses to
start when a secret setting holds a value anyone can read, naming the setting (never the
value):

- a value of `WELL_KNOWN_SECRETS` (the Supabase CLI's JWT secret and API keys, the
  `.env.example` scheduler secret);
- a JWT signed with the Supabase CLI's public JWT secret (whatever its claims);
- anything containing `change-me` (also `changeme`, `change_me`; any case), the marker of an
  example value.

The secret settings are every `SecretStr` field (`SUPABASE_JWT_SECRET`, `SCHEDULER_SECRET`,
`SUPABASE_ANON_KEY`, `SUPABASE_SERVICE_ROLE_KEY`, `API_TOKEN`, `ANTHROPIC_API_KEY`,
`OPENAI_API_KEY`, `ALERT_WEBHOOK_URL`, `SMTP_PASSWORD`, and any added later) plus the password
inside `DATABASE_URL`. The anon key is public by design, but the CLI's one is refused anyway:
it only works against a project signed with the public secret. Locally, all of these keep
working: they are what `supabase start` and `.env.example` use.
"""

from __future__ import annotations

import ipaddress
import os
import re
import typing
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import jwt
import psycopg
from psycopg.conninfo import conninfo_to_dict
from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.platform.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCAL_DIR = REPO_ROOT / ".local"

# The JWT secret of every local `supabase start` stack, printed by `supabase status`
# (supabase/cli pkg/config/apikeys.go, `defaultJwtSecret`); also `.env.example`'s value.
SUPABASE_CLI_JWT_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"  # noqa: S105

# Secrets anyone can read: refused in deployed mode (see the module docstring), fine locally.
WELL_KNOWN_SECRETS: frozenset[str] = frozenset(
    {
        SUPABASE_CLI_JWT_SECRET,
        # The Supabase CLI's anon and service_role keys (`supabase status`): HS256 JWTs with
        # iss "supabase-demo" and exp 1983812996, signed with the secret above.
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6ImFub24iLCJleHAiOjE5ODM4MTI5OTZ9.CRXP1A7WOeoJeXxjNni43kdQwgnWNReilDMblYTn_I0",
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6InNlcnZpY2Vfcm9sZSIsImV4cCI6MTk4MzgxMjk5Nn0.EGIM96RAZx35lJzdJsyH-qQwv8Hdp7fsn3W0YpN81IU",
        # The Supabase CLI's publishable and secret API keys (newer CLIs; apikeys.go,
        # `defaultPublishableKey` and `defaultSecretKey`).
        "sb_publishable_ACJWlzQHlZjBrEguHvfOxg_3BJgxAaH",
        "sb_secret_N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz",
        # `.env.example`: SCHEDULER_SECRET.
        "local-scheduler-secret-change-me-0123456789",
    }
)
_EXAMPLE_MARKER = re.compile(r"change[-_]?me", re.IGNORECASE)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        extra="ignore", case_sensitive=False, frozen=True, env_ignore_empty=True
    )

    # --- database -------------------------------------------------------------------------
    database_url: str | None = Field(
        default=None,
        description="Postgres URL. Unset: the embedded local cluster (`docflow db start`).",
    )
    db_transport: Literal["postgres", "rest"] = "postgres"
    db_pool_min: int = Field(default=1, ge=0)
    db_pool_max: int = Field(default=10, ge=1)
    db_connect_timeout: float = Field(default=5.0, gt=0)
    # Server-side prepared statements; turn off behind a transaction-mode pooler.
    db_prepared_statements: bool = True
    # Service calls run as `service_role` (SET ROLE once per connection). Off: they run as the
    # login role itself (the migration owner), which is what to use behind a transaction-mode
    # pooler, where a session-level SET would outlive our transaction.
    db_set_service_role: bool = True
    # Workers LISTEN for new jobs (and poll as a fallback). Off behind a transaction pooler.
    worker_listen: bool = True
    local_pg_port: int = Field(default=54329, ge=1024, le=65535)
    # Unset: `.local/pg`, or as root a per-checkout directory under /var/tmp/docflow/ that the
    # cluster's OS user can reach (see shared/localdb.py).
    local_pg_dir: Path | None = None
    local_pg_os_user: str | None = None

    # --- Supabase -------------------------------------------------------------------------
    supabase_url: str | None = None
    supabase_anon_key: SecretStr | None = None
    supabase_service_role_key: SecretStr | None = None
    # HS256 tokens: the project's JWT secret. ES256/RS256 tokens: the project's JWKS
    # (https://<ref>.supabase.co/auth/v1/.well-known/jwks.json). At least one must be set.
    supabase_jwt_secret: SecretStr | None = None
    jwks_url: str | None = Field(default=None, validate_default=True)
    jwks_cache_seconds: int = Field(default=600, ge=1, le=600)
    jwt_audience: str = "authenticated"
    jwt_issuer: str | None = None
    jwt_leeway_seconds: int = Field(default=30, ge=0, le=300)

    # --- storage --------------------------------------------------------------------------
    storage_backend: Literal["local", "supabase"] = "local"
    storage_dir: Path = LOCAL_DIR / "storage"
    storage_bucket: str = "documents"

    # --- HTTP -----------------------------------------------------------------------------
    scheduler_secret: SecretStr
    max_upload_bytes: int = Field(default=25 * 1024 * 1024, ge=1)
    # Objects registered through the signed-upload flow (`{"storage_path": ...}`).
    max_stored_upload_bytes: int = Field(default=200 * 1024 * 1024, ge=1)
    upload_rate_limit_per_minute: int = Field(default=30, ge=0)
    cors_origins: str = ""

    # --- command line (`docflow upload`, `docflow status`) ---------------------------------
    # The base URL of docflow's HTTP API that the CLI talks to, and the user's access token.
    api_url: str = "http://127.0.0.1:8080"
    api_token: SecretStr | None = None

    # --- queue ----------------------------------------------------------------------------
    job_lease_seconds: int = Field(default=30, ge=1)
    job_max_attempts: int = Field(default=4, ge=1, le=100)
    retry_initial_seconds: float = Field(default=1.0, ge=0)
    retry_multiplier: float = Field(default=2.0, ge=1)
    retry_max_seconds: float = Field(default=60.0, ge=0)
    retry_jitter: float = Field(default=0.1, ge=0, le=1)
    worker_batch_size: int = Field(default=10, ge=1, le=1000)
    worker_concurrency: int = Field(default=4, ge=1, le=256)
    worker_poll_seconds: float = Field(default=1.0, gt=0)
    heartbeat_seconds: float = Field(default=10.0, gt=0)
    progress_write_seconds: float = Field(default=1.0, ge=0)
    stalled_sweep_seconds: float = Field(default=15.0, gt=0)
    job_timeout_seconds: float = Field(default=300.0, gt=0)
    worker_shutdown_grace_seconds: float = Field(default=10.0, ge=0)
    reanalyze_interval_seconds: int = Field(default=3600, ge=0)
    process_max_jobs: int = Field(default=100, ge=1)
    process_max_seconds: float = Field(default=50.0, gt=0)

    # --- document pipeline --------------------------------------------------------------------
    summarizer: Literal["extractive", "anthropic", "openai"] = "extractive"
    summarizer_model: str | None = None
    anthropic_api_key: SecretStr | None = None
    anthropic_base_url: str = "https://api.anthropic.com"
    openai_api_key: SecretStr | None = None
    openai_base_url: str = "https://api.openai.com/v1"
    summarizer_timeout_seconds: float = Field(default=60.0, gt=0)
    summarizer_max_input_tokens: int = Field(default=8000, ge=500)
    summarizer_max_output_tokens: int = Field(default=512, ge=16)
    summarizer_price_input_per_mtok: float = Field(default=0.0, ge=0)
    summarizer_price_output_per_mtok: float = Field(default=0.0, ge=0)
    extract_timeout_seconds: float = Field(default=30.0, gt=0)
    extract_memory_mb: int = Field(default=1024, ge=64)
    extract_max_pages: int = Field(default=1000, ge=1)
    docx_max_entries: int = Field(default=1000, ge=1)
    docx_max_uncompressed_mb: int = Field(default=100, ge=1)
    docx_max_compression_ratio: float = Field(default=100.0, gt=1)

    # --- monitoring and alerting ------------------------------------------------------------
    probe_timeout_seconds: float = Field(default=5.0, gt=0)
    # Latency above which a probe is `degraded`, per service, e.g. "database=250,storage=1000".
    probe_degraded_ms: str = "database=250,storage=1000,summarizer=3000,job_queue=1000"
    alert_open_after: int = Field(default=3, ge=1, le=100)
    alert_resolve_after: int = Field(default=2, ge=1, le=100)
    alert_repeat_seconds: int = Field(default=4 * 3600, ge=60)
    queue_window_seconds: int = Field(default=3600, ge=60)
    queue_degraded_success_rate: float = Field(default=0.9, ge=0, le=1)
    queue_unhealthy_success_rate: float = Field(default=0.7, ge=0, le=1)
    queue_degraded_stalled: int = Field(default=0, ge=0)
    queue_unhealthy_stalled: int = Field(default=5, ge=0)
    queue_degraded_backlog: int = Field(default=100, ge=0)
    queue_degraded_oldest_seconds: int = Field(default=600, ge=0)
    alert_webhook_url: SecretStr | None = None
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True
    alert_email_from: str | None = None
    alert_email_to: str = ""

    # --- retention (POST /retention, `docflow retention`) -------------------------------------
    # Days each kind of row is kept; 0 keeps it forever.
    retention_events_days: int = Field(default=30, ge=0)
    retention_health_checks_days: int = Field(default=30, ge=0)
    retention_alerts_days: int = Field(default=30, ge=0)  # resolved alerts only
    retention_jobs_days: int = Field(default=90, ge=0)  # completed, failed, cancelled jobs
    # Also delete documents older than RETENTION_JOBS_DAYS whose jobs are all gone or expired,
    # with their stored files. Off: documents and their files are kept.
    retention_delete_documents: bool = False
    # Daily analytics rollups (the 30d report's); 5-minute and hourly ones always go after 2 and
    # 8 days, past the 1h, 24h and 7d windows that read them.
    retention_rollups_days: int = Field(default=400, ge=0)
    retention_batch_size: int = Field(default=5000, ge=1, le=100_000)
    retention_max_seconds: float = Field(default=50.0, gt=0)

    # --- logging --------------------------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("supabase_jwt_secret", "scheduler_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters")
        return value

    @field_validator("anthropic_base_url", "openai_base_url", "api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")

    @field_validator("jwks_url")
    @classmethod
    def _jwks_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        # A field validator (not a model one), so that it is reported with any other bad setting.
        # A secret that failed its own validation is missing from info.data: already reported.
        if value is None and info.data.get("supabase_jwt_secret", "invalid") is None:
            raise ValueError(
                "SUPABASE_JWT_SECRET or JWKS_URL required: set the project's JWT secret (HS256 "
                "tokens), its JWKS URL (ES256/RS256 tokens), or both"
            )
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _transport_needs(self) -> Settings:
        if self.db_transport == "rest" or self.storage_backend == "supabase":
            missing = [
                name
                for name in ("supabase_url", "supabase_service_role_key")
                if getattr(self, name) is None
            ]
            if missing:
                raise ValueError(
                    f"{', '.join(n.upper() for n in missing)} required when "
                    "DB_TRANSPORT=rest or STORAGE_BACKEND=supabase"
                )
        if self.summarizer == "anthropic" and self.anthropic_api_key is None:
            raise ValueError("ANTHROPIC_API_KEY required when SUMMARIZER=anthropic")
        if self.summarizer == "openai" and self.openai_api_key is None:
            raise ValueError("OPENAI_API_KEY required when SUMMARIZER=openai")
        email = (self.smtp_host, self.alert_email_from, self.alert_email_to.strip())
        if any(email) and not all(email):
            raise ValueError(
                "SMTP_HOST, ALERT_EMAIL_FROM and ALERT_EMAIL_TO go together (set all or none)"
            )
        try:
            self.probe_thresholds_ms  # noqa: B018 - parse once to report a bad value now
        except ValueError:
            raise ValueError("PROBE_DEGRADED_MS must look like name=ms,name=ms") from None
        if self.heartbeat_seconds >= self.job_lease_seconds:
            raise ValueError("HEARTBEAT_SECONDS must be shorter than JOB_LEASE_SECONDS")
        if self.db_pool_min > self.db_pool_max:
            raise ValueError("DB_POOL_MIN must not exceed DB_POOL_MAX")
        return self

    @model_validator(mode="after")
    def _no_public_secrets_when_deployed(self) -> Settings:
        reasons = self.deployed_because()
        if not reasons:
            return self
        refused = [
            f"{name.upper()} {why}"
            for name, value in self._secret_values()
            if (why := _public_secret(value)) is not None
        ]
        if refused:
            raise ValueError(
                f"deployed ({'; '.join(reasons)}), so well-known public secrets are refused: "
                f"{'; '.join(refused)}. Set this deployment's own secrets (docs/deploy.md, "
                "Deployed mode)"
            )
        return self

    def deployed_because(self) -> list[str]:
        """Why this process counts as deployed (empty: it is local); see the module docstring."""
        reasons = []
        if os.environ.get("K_SERVICE"):
            reasons.append("K_SERVICE is set")
        if self.database_url is not None and not _database_is_local(self.database_url):
            reasons.append("DATABASE_URL's host is not loopback")
        if self.supabase_url is not None and not _is_loopback(_url_host(self.supabase_url) or ""):
            reasons.append("SUPABASE_URL's host is not loopback")
        return reasons

    @property
    def deployed(self) -> bool:
        return bool(self.deployed_because())

    def _secret_values(self) -> list[tuple[str, str]]:
        values = [
            (name, value.get_secret_value())
            for name in SECRET_SETTINGS
            if isinstance(value := getattr(self, name), SecretStr)
        ]
        password = _database_password(self.database_url) if self.database_url else None
        if password:
            values.append(("database_url", password))
        return values

    @property
    def probe_thresholds_ms(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for part in self.probe_degraded_ms.split(","):
            name, _, value = part.partition("=")
            if name.strip() and value.strip():
                out[name.strip()] = float(value)
        return out

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    def local_database_url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres:postgres@127.0.0.1:{self.local_pg_port}/{dbname}"

    def effective_database_url(self) -> str:
        return self.database_url or self.local_database_url()


# Every SecretStr setting, found from the annotations so that a new secret is covered too.
SECRET_SETTINGS: tuple[str, ...] = tuple(
    name
    for name, field in Settings.model_fields.items()
    if field.annotation is SecretStr or SecretStr in typing.get_args(field.annotation)
)


def _public_secret(value: str) -> str | None:
    """Why `value` is a secret anyone can read, or None."""
    if value in WELL_KNOWN_SECRETS:
        if value == SUPABASE_CLI_JWT_SECRET:
            return "is the Supabase CLI's public JWT secret"
        if value.startswith(("eyJ", "sb_")):
            return "is a Supabase CLI public API key"
        return "is the example value from .env.example"
    if _EXAMPLE_MARKER.search(value):
        return "contains 'change-me': it is an example value"
    if value.count(".") == 2 and _signed_with_cli_secret(value):
        return "is a JWT signed with the Supabase CLI's public JWT secret"
    return None


def _signed_with_cli_secret(token: str) -> bool:
    try:
        jwt.decode(
            token,
            SUPABASE_CLI_JWT_SECRET,
            algorithms=["HS256", "HS384", "HS512"],
            options={
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "verify_aud": False,
                "verify_iss": False,
            },
        )
    except jwt.PyJWTError:
        return False
    return True


def _is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 (also IPv4-mapped) or localhost; anything else, unparsable included,
    is not."""
    host = host.strip().strip("[]").lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def _url_host(url: str) -> str | None:
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None


def _conninfo(url: str) -> dict[str, str] | None:
    try:
        return {k: str(v) for k, v in conninfo_to_dict(url).items()}
    except psycopg.Error:
        return None


def _database_is_local(url: str) -> bool:
    """Every host libpq would try is a Unix socket or loopback (no host: PGHOST, else the
    default socket). A URL that does not parse counts as remote."""
    params = _conninfo(url)
    if params is None:
        return False
    hosts = [
        part
        for key, env in (("host", "PGHOST"), ("hostaddr", "PGHOSTADDR"))
        for part in (params.get(key) or os.environ.get(env) or "").split(",")
        if part.strip()
    ]
    return all(host.startswith(("/", "@")) or _is_loopback(host) for host in hosts)


def _database_password(url: str) -> str | None:
    params = _conninfo(url)
    return params.get("password") if params else None


def _env_file() -> str | None:
    return os.environ.get("DOCFLOW_ENV_FILE", ".env") or None


def load_settings() -> Settings:
    """Build settings from the environment; raise ConfigError naming each bad setting."""
    try:
        return Settings(_env_file=_env_file())  # type: ignore[call-arg]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = ".".join(str(p) for p in err["loc"]).upper()
            if name:
                problems.append(f"{name}: {err['msg']}")
            else:  # a check across settings (model validator): its message names them
                problems.append(str(err.get("ctx", {}).get("error") or err["msg"]))
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()


def reset_settings() -> None:
    """Forget cached settings (tests change the environment between cases)."""
    get_settings.cache_clear()
