"""Settings: read once from the environment and `.env`, validated by pydantic-settings.

Each setting is described once, here: its `Field` has the description, the section (one of
`SECTIONS`) and, where it can be turned off, the "off" value. `docs/configuration.md` and
`.env.example` are generated from them (`python -m shared.dev.configuration --write`). A wrong
or missing setting stops start-up with a `ConfigError` naming it. `DOCFLOW_ENV_FILE` picks
another dotenv file (empty: none), which is how the tests keep a developer's `.env` out of their
way.

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

# The sections of the settings, in order, each with a note that applies to the whole section
# (may be empty). Every field names its section in `json_schema_extra={"section": ...}`, says
# what it does in `description` and, where it can be turned off, how in `"off"`.
# docs/configuration.md and .env.example are generated from them: after a change here, run
# `python -m shared.dev.configuration --write` (a test fails until they agree).
SECTIONS: dict[str, str] = {
    "database": "",
    "Supabase": (
        "Needed for `DB_TRANSPORT=rest` and `STORAGE_BACKEND=supabase`; access tokens are "
        "verified locally with `SUPABASE_JWT_SECRET`, `JWKS_URL` or both (at least one must be "
        "set). A local `supabase start` stack (http://127.0.0.1:54321) may use the Supabase "
        "CLI's keys; a hosted project (deployed mode) refuses them."
    ),
    "storage": "",
    "HTTP": "",
    "command line": "What `docflow upload` and `docflow status` talk to.",
    "queue": "",
    "document pipeline": "",
    "monitoring and alerting": (
        "Notifications go to a webhook, by email, both or neither; by default nothing is sent."
    ),
    "retention": (
        "What `POST /retention` (daily) and `docflow retention [--dry-run]` delete. Deletes run "
        "in batches of `RETENTION_BATCH_SIZE` rows, one short statement each, for at most "
        "`RETENTION_MAX_SECONDS` a run; what is left goes on the next run."
    ),
    "logging": "",
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        extra="ignore", case_sensitive=False, frozen=True, env_ignore_empty=True
    )

    # --- database -------------------------------------------------------------------------
    database_url: str | None = Field(
        default=None,
        description=(
            "Postgres URL. Empty: the embedded local cluster (`docflow db start`, port "
            "`LOCAL_PG_PORT`). In production, the Supavisor pooler URL of the Supabase project. "
            "Deployed mode checks the password in it as it checks the secrets."
        ),
        json_schema_extra={"section": "database"},
    )
    db_transport: Literal["postgres", "rest"] = Field(
        default="postgres",
        description=(
            "`postgres`: direct SQL over a psycopg pool. `rest`: Supabase REST (PostgREST "
            "`rpc`), which needs `SUPABASE_URL` and `SUPABASE_SERVICE_ROLE_KEY`."
        ),
        json_schema_extra={"section": "database"},
    )
    db_pool_min: int = Field(
        default=1,
        ge=0,
        description="Minimum pooled connections per process; at most `DB_POOL_MAX`.",
        json_schema_extra={"section": "database"},
    )
    db_pool_max: int = Field(
        default=10,
        ge=1,
        description="Maximum pooled connections per process.",
        json_schema_extra={"section": "database"},
    )
    db_connect_timeout: float = Field(
        default=5.0,
        gt=0,
        description="Seconds to wait for a connection before answering 503.",
        json_schema_extra={"section": "database"},
    )
    db_prepared_statements: bool = Field(
        default=True,
        description="Server-side prepared statements.",
        json_schema_extra={
            "section": "database",
            "off": "`false`, for a transaction-mode pooler (Supavisor port 6543)",
        },
    )
    db_set_service_role: bool = Field(
        default=True,
        description=(
            "Service calls run as `service_role`, set once per pooled connection (`SET ROLE`)."
        ),
        json_schema_extra={
            "section": "database",
            "off": (
                "`false`, and they run as the login role itself (the migration owner, e.g. "
                "Supabase's `postgres`); the setting for a transaction-mode pooler, where a "
                "session-level `SET` would outlive the transaction"
            ),
        },
    )
    worker_listen: bool = Field(
        default=True,
        description=(
            "Long-running workers LISTEN for new jobs (direct Postgres transport only) and "
            "still poll, as the fallback."
        ),
        json_schema_extra={
            "section": "database",
            "off": (
                "`false`, and they only poll; the setting for a transaction-mode pooler, where "
                "LISTEN does not work"
            ),
        },
    )
    local_pg_port: int = Field(
        default=54329,
        ge=1024,
        le=65535,
        description="Port of the embedded local cluster.",
        json_schema_extra={"section": "database"},
    )
    local_pg_dir: Path | None = Field(
        default=None,
        description=(
            "Root of the embedded cluster (`data/`, `postgres.log`). Empty: `.local/pg`, or as "
            "root `/var/tmp/docflow/<checkout>-<hash>/pg`, which the cluster's OS user can reach "
            "(it may not be able to enter the checkout). `docflow db status` prints it."
        ),
        json_schema_extra={"section": "database"},
    )
    local_pg_os_user: str | None = Field(
        default=None,
        description=(
            "As root: the OS user that runs the embedded cluster. Empty: `postgres`, else "
            "`docflow-pg` (created when missing)."
        ),
        json_schema_extra={"section": "database"},
    )

    # --- Supabase -------------------------------------------------------------------------
    supabase_url: str | None = Field(
        default=None,
        description="The project's URL, `https://<ref>.supabase.co`.",
        json_schema_extra={"section": "Supabase"},
    )
    supabase_anon_key: SecretStr | None = Field(
        default=None,
        description=(
            "The `apikey` header on REST calls made with a user's token. Empty: the service key."
        ),
        json_schema_extra={"section": "Supabase"},
    )
    supabase_service_role_key: SecretStr | None = Field(
        default=None,
        description="The service key, for REST service calls and Storage.",
        json_schema_extra={"section": "Supabase"},
    )
    supabase_storage_url: str | None = Field(
        default=None,
        description=(
            "The Storage API's base URL, where `/object/...` and `/bucket/...` live. Empty: "
            "`SUPABASE_URL` + `/storage/v1`, as on a Supabase project; set it for a Storage "
            "API of its own (the local one serves its routes at the root)."
        ),
        json_schema_extra={"section": "Supabase"},
    )
    supabase_jwt_secret: SecretStr | None = Field(
        default=None,
        description=(
            "HS256 secret that signs access tokens (the project's legacy JWT secret, Project "
            "Settings → JWT Keys), at least 32 characters. `docflow token` and `--user` sign "
            "with it. Required unless `JWKS_URL` is set."
        ),
        json_schema_extra={
            "section": "Supabase",
            "off": "empty (with `JWKS_URL` set), and HS256 tokens are refused",
        },
    )
    jwks_url: str | None = Field(
        default=None,
        validate_default=True,
        description=(
            "The project's JSON Web Key Set, for ES256/RS256 access tokens (asymmetric signing "
            "keys): `https://<ref>.supabase.co/auth/v1/.well-known/jwks.json`."
        ),
        json_schema_extra={"section": "Supabase", "off": "empty, HS256 tokens only"},
    )
    jwks_cache_seconds: int = Field(
        default=600,
        ge=1,
        le=600,
        description=(
            "Keep fetched keys at most this many seconds. A token with an unknown key id also "
            "refetches, at most once per 30 s; when a refresh fails, the keys held stay in use."
        ),
        json_schema_extra={"section": "Supabase"},
    )
    jwt_audience: str = Field(
        default="authenticated",
        description="The required `aud` claim.",
        json_schema_extra={"section": "Supabase"},
    )
    jwt_issuer: str | None = Field(
        default=None,
        description=(
            "The required `iss` claim, e.g. `https://<ref>.supabase.co/auth/v1`; `docflow "
            "token` sets it too."
        ),
        json_schema_extra={"section": "Supabase", "off": "empty, `iss` is not checked"},
    )
    jwt_leeway_seconds: int = Field(
        default=30,
        ge=0,
        le=300,
        description="Clock-skew allowance on `exp`, in seconds.",
        json_schema_extra={"section": "Supabase"},
    )

    # --- storage --------------------------------------------------------------------------
    storage_backend: Literal["local", "supabase"] = Field(
        default="local",
        description=(
            "`local`: files under `STORAGE_DIR`. `supabase`: the Supabase Storage bucket "
            "`STORAGE_BUCKET` (needs `SUPABASE_SERVICE_ROLE_KEY`, and `SUPABASE_URL` or "
            "`SUPABASE_STORAGE_URL`)."
        ),
        json_schema_extra={"section": "storage"},
    )
    storage_dir: Path = Field(
        default=LOCAL_DIR / "storage",
        description=(
            "Root of local storage; objects go to `<dir>/<bucket>/<user_id>/<name>`. The "
            "default is `.local/storage` in the checkout; a relative path is taken from the "
            "current directory."
        ),
        json_schema_extra={"section": "storage"},
    )
    storage_bucket: str = Field(
        default="documents",
        description="Bucket name (the migrations create `documents`).",
        json_schema_extra={"section": "storage"},
    )

    # --- HTTP -----------------------------------------------------------------------------
    scheduler_secret: SecretStr = Field(
        description=(
            "Shared secret of the scheduled routes (header `X-Scheduler-Secret`), at least 32 "
            "characters, e.g. from `openssl rand -hex 32`."
        ),
        json_schema_extra={"section": "HTTP"},
    )
    max_upload_bytes: int = Field(
        default=25 * 1024 * 1024,
        ge=1,
        description=(
            "Limit of a multipart upload (25 MiB). Larger ones get 413 `too_large`, before the "
            "body is read when `Content-Length` says so, and go through the signed-upload flow."
        ),
        json_schema_extra={"section": "HTTP"},
    )
    max_stored_upload_bytes: int = Field(
        default=200 * 1024 * 1024,
        ge=1,
        description=(
            "Limit of an object registered through the signed-upload flow (200 MiB): the client "
            "uploads to its own folder of the bucket with a signed upload URL, then registers "
            'it with `POST /uploads {"storage_path": "<user_id>/<name>"}`. Larger ones get 413 '
            "`too_large`."
        ),
        json_schema_extra={"section": "HTTP"},
    )
    upload_rate_limit_per_minute: int = Field(
        default=30,
        ge=0,
        description=(
            "Refill rate of each user's job bucket, in tokens per minute (see "
            "`UPLOAD_RATE_BURST`): every upload, retry and reanalysis takes a token, and an "
            "empty bucket answers 429 `rate_limited` with `Retry-After`, the seconds until the "
            "next token (rounded up). An `Idempotency-Key` replay takes none."
        ),
        json_schema_extra={"section": "HTTP", "off": "`0`, no limit"},
    )
    upload_rate_burst: int = Field(
        default=200,
        ge=1,
        description=(
            "Size of each user's job bucket: the jobs a user with a full bucket may create at "
            "once (a data room). A new user starts full; the bucket refills at "
            "`UPLOAD_RATE_LIMIT_PER_MINUTE` up to this size."
        ),
        json_schema_extra={"section": "HTTP"},
    )
    cors_origins: str = Field(
        default="",
        description="Comma-separated browser origins allowed by CORS; `*` allows any.",
        json_schema_extra={"section": "HTTP", "off": "empty, no cross-origin requests"},
    )

    # --- command line (`docflow upload`, `docflow status`) ---------------------------------
    api_url: str = Field(
        default="http://127.0.0.1:8080",
        description=(
            "Base URL of docflow's HTTP API: `docflow serve` locally, the public gateway in "
            "production. `--api-url` overrides it."
        ),
        json_schema_extra={"section": "command line"},
    )
    api_token: SecretStr | None = Field(
        default=None,
        description=(
            "The user's Supabase access token. Empty: pass `--token`, or locally `--user UUID` "
            "to mint one as `docflow token` does (both also override it). Never commit a real "
            "one."
        ),
        json_schema_extra={"section": "command line"},
    )

    # --- queue ----------------------------------------------------------------------------
    job_lease_seconds: int = Field(
        default=30,
        ge=1,
        description=(
            "Lease a worker gets on each claimed job, renewed by heartbeats. Once it has "
            "expired, the stalled sweep takes the job back."
        ),
        json_schema_extra={"section": "queue"},
    )
    job_max_attempts: int = Field(
        default=4,
        ge=1,
        le=100,
        description="Attempts per job: the first try plus retries.",
        json_schema_extra={"section": "queue"},
    )
    retry_initial_seconds: float = Field(
        default=1.0,
        ge=0,
        description=(
            "Backoff after the first failed attempt. After attempt n the delay is "
            "`RETRY_INITIAL_SECONDS * RETRY_MULTIPLIER^(n-1)`, capped at `RETRY_MAX_SECONDS`, "
            "then ± `RETRY_JITTER`."
        ),
        json_schema_extra={"section": "queue"},
    )
    retry_multiplier: float = Field(
        default=2.0,
        ge=1,
        description="Backoff growth per attempt.",
        json_schema_extra={"section": "queue"},
    )
    retry_max_seconds: float = Field(
        default=60.0,
        ge=0,
        description="Backoff cap, in seconds.",
        json_schema_extra={"section": "queue"},
    )
    retry_jitter: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="Random jitter on each delay, as a ± fraction of it.",
        json_schema_extra={"section": "queue", "off": "`0`, no jitter"},
    )
    worker_batch_size: int = Field(
        default=10,
        ge=1,
        le=1000,
        description=(
            "Jobs per claim call. A worker claims when fewer than `WORKER_CONCURRENCY` of its "
            "jobs are unfinished; claimed jobs wait for a thread, their leases renewed."
        ),
        json_schema_extra={"section": "queue"},
    )
    worker_concurrency: int = Field(
        default=4,
        ge=1,
        le=256,
        description=(
            "Jobs one worker runs at once, on threads. `process_jobs` uses it too; `docflow "
            "worker --concurrency N` overrides it."
        ),
        json_schema_extra={"section": "queue"},
    )
    worker_poll_seconds: float = Field(
        default=1.0,
        gt=0,
        description=(
            "How often an idle long-running worker polls for due jobs (with LISTEN too, as the "
            "fallback)."
        ),
        json_schema_extra={"section": "queue"},
    )
    heartbeat_seconds: float = Field(
        default=10.0,
        gt=0,
        description=(
            "How often each running job's lease is renewed; must be shorter than "
            "`JOB_LEASE_SECONDS`."
        ),
        json_schema_extra={"section": "queue"},
    )
    progress_write_seconds: float = Field(
        default=1.0,
        ge=0,
        description=(
            "Stage and progress reach the job row at most this often per job, with an early "
            "heartbeat."
        ),
        json_schema_extra={"section": "queue", "off": "`0`, no throttling"},
    )
    stalled_sweep_seconds: float = Field(
        default=15.0,
        gt=0,
        description=(
            "How often the long-running worker returns jobs with expired leases to the queue."
        ),
        json_schema_extra={"section": "queue"},
    )
    job_timeout_seconds: float = Field(
        default=300.0,
        gt=0,
        description="A job that runs longer fails with `timeout` and is not retried.",
        json_schema_extra={"section": "queue"},
    )
    worker_shutdown_grace_seconds: float = Field(
        default=10.0,
        ge=0,
        description=(
            "On SIGTERM a worker stops claiming, waits this long for its running jobs, then "
            "releases the rest."
        ),
        json_schema_extra={"section": "queue", "off": "`0`, running jobs are released at once"},
    )
    reanalyze_interval_seconds: int = Field(
        default=3600,
        ge=0,
        description=(
            "A document can be reanalyzed at most once per this many seconds with each analysis "
            "template."
        ),
        json_schema_extra={"section": "queue", "off": "`0`, no minimum interval"},
    )
    process_max_jobs: int = Field(
        default=100,
        ge=1,
        description="Default job budget of one `process_jobs` call.",
        json_schema_extra={"section": "queue"},
    )
    process_max_seconds: float = Field(
        default=50.0,
        gt=0,
        description=(
            "Default time budget of one `process_jobs` call; keep it below the function's timeout."
        ),
        json_schema_extra={"section": "queue"},
    )

    # --- document pipeline --------------------------------------------------------------------
    summarizer: Literal["extractive", "anthropic", "openai"] = Field(
        default="extractive",
        description=(
            "`extractive`: offline and deterministic. `anthropic`: the Messages API. `openai`: "
            "Chat Completions at `OPENAI_BASE_URL` (OpenAI or any compatible server)."
        ),
        json_schema_extra={"section": "document pipeline"},
    )
    analysis_template: str = Field(
        default="document_brief",
        description=(
            "The analysis template of an upload or reanalysis that names none "
            "(`GET /templates` lists them: `document_brief`, `financial`). With `SUMMARIZER` "
            "`extractive` the fields are filled offline by rules, else by the same LLM provider."
        ),
        json_schema_extra={"section": "document pipeline"},
    )
    summarizer_model: str | None = Field(
        default=None,
        description=(
            "The model. Empty: `claude-3-5-haiku-latest` (anthropic) or `gpt-4o-mini` (openai). "
            "Unused by `extractive`."
        ),
        json_schema_extra={"section": "document pipeline"},
    )
    anthropic_api_key: SecretStr | None = Field(
        default=None,
        description="Required when `SUMMARIZER=anthropic`.",
        json_schema_extra={"section": "document pipeline"},
    )
    anthropic_base_url: str = Field(
        default="https://api.anthropic.com",
        description=(
            "Base URL of the Messages API; `/v1/messages` is appended (`/messages` when it "
            "already ends in `/v1`)."
        ),
        json_schema_extra={"section": "document pipeline"},
    )
    openai_api_key: SecretStr | None = Field(
        default=None,
        description=(
            "Required when `SUMMARIZER=openai`, even for a local server that ignores it (any "
            "value then)."
        ),
        json_schema_extra={"section": "document pipeline"},
    )
    openai_base_url: str = Field(
        default="https://api.openai.com/v1",
        description=(
            "Base URL of an OpenAI-compatible API, including its `/v1`; `/chat/completions` is "
            "appended."
        ),
        json_schema_extra={"section": "document pipeline"},
    )
    summarizer_timeout_seconds: float = Field(
        default=60.0,
        gt=0,
        description="Timeout of each summarizer request (connecting: at most 10 s).",
        json_schema_extra={"section": "document pipeline"},
    )
    summarizer_max_input_tokens: int = Field(
        default=8000,
        ge=2500,
        description=(
            "Token budget of one request, prompt included (tokens are estimated at 4 characters "
            "each). A longer text is split, and the parts' summaries are summarized "
            "(map-reduce); the analysis extracts from each part and merges. At least 2500: an "
            "analysis request carries the template's JSON Schema (about 900 tokens)."
        ),
        json_schema_extra={"section": "document pipeline"},
    )
    summarizer_max_output_tokens: int = Field(
        default=512,
        ge=16,
        description="`max_tokens` of each request.",
        json_schema_extra={"section": "document pipeline"},
    )
    summarizer_price_input_per_mtok: float = Field(
        default=0.0,
        ge=0,
        description="USD per million input tokens, for `cost_usd` in each result.",
        json_schema_extra={
            "section": "document pipeline",
            "off": "`0`, cost not estimated (reported as 0)",
        },
    )
    summarizer_price_output_per_mtok: float = Field(
        default=0.0,
        ge=0,
        description="USD per million output tokens, for `cost_usd` in each result.",
        json_schema_extra={
            "section": "document pipeline",
            "off": "`0`, cost not estimated (reported as 0)",
        },
    )
    extract_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description=(
            "Wall-clock limit of one document's extraction; past it the sandboxed child is "
            "killed and the job fails with `timeout`."
        ),
        json_schema_extra={"section": "document pipeline"},
    )
    extract_memory_mb: int = Field(
        default=1024,
        ge=64,
        description=(
            "Address-space limit (`RLIMIT_AS`) of the extraction child; past it the job fails "
            "with `resource_limit`."
        ),
        json_schema_extra={"section": "document pipeline"},
    )
    extract_max_pages: int = Field(
        default=1000,
        ge=1,
        description=(
            "PDF pages read per document; the rest are skipped and the result says "
            "`truncated: true`."
        ),
        json_schema_extra={"section": "document pipeline"},
    )
    docx_max_entries: int = Field(
        default=1000,
        ge=1,
        description=(
            "Most files a DOCX (a ZIP) may hold; more: `resource_limit`. Checked, like the two "
            "below, before anything is decompressed."
        ),
        json_schema_extra={"section": "document pipeline"},
    )
    docx_max_uncompressed_mb: int = Field(
        default=100,
        ge=1,
        description=(
            "Most MiB a DOCX may declare uncompressed, all members together; more: "
            "`resource_limit`."
        ),
        json_schema_extra={"section": "document pipeline"},
    )
    docx_max_compression_ratio: float = Field(
        default=100.0,
        gt=1,
        description=(
            "Highest compression ratio of any DOCX member that inflates past 1 MiB; higher: "
            "`resource_limit`."
        ),
        json_schema_extra={"section": "document pipeline"},
    )

    # --- monitoring and alerting ------------------------------------------------------------
    probe_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        description=(
            "Time limit of each probe (the probes run concurrently); a probe with no answer by "
            "then is `down`. Also the summarizer probe's HTTP timeout, and the limit of each "
            "network step of a notification delivery (webhook, SMTP)."
        ),
        json_schema_extra={"section": "monitoring and alerting"},
    )
    probe_degraded_ms: str = Field(
        default="database=250,storage=1000,summarizer=3000,job_queue=1000",
        description=(
            "Per service, the latency in ms above which an otherwise healthy probe is "
            "`degraded`, as `name=ms,name=ms`; a service not listed has no latency threshold. "
            "Any other form stops start-up."
        ),
        json_schema_extra={"section": "monitoring and alerting"},
    )
    alert_open_after: int = Field(
        default=3,
        ge=1,
        le=100,
        description="Consecutive failing checks of a service that open an alert.",
        json_schema_extra={"section": "monitoring and alerting"},
    )
    alert_resolve_after: int = Field(
        default=2,
        ge=1,
        le=100,
        description=(
            "Consecutive recovered checks that resolve it: not `down` for `service_down`, "
            "`healthy` for `service_degraded`."
        ),
        json_schema_extra={"section": "monitoring and alerting"},
    )
    alert_repeat_seconds: int = Field(
        default=4 * 3600,
        ge=60,
        description=(
            "An alert still active and not acknowledged is notified again after this many "
            "seconds (4 h)."
        ),
        json_schema_extra={"section": "monitoring and alerting"},
    )
    queue_window_seconds: int = Field(
        default=3600,
        ge=60,
        description=(
            "Window of the queue's success rate, completed / (completed + failed) events."
        ),
        json_schema_extra={"section": "monitoring and alerting"},
    )
    queue_degraded_success_rate: float = Field(
        default=0.9,
        ge=0,
        le=1,
        description="A success rate below this makes the queue `degraded`.",
        json_schema_extra={"section": "monitoring and alerting"},
    )
    queue_unhealthy_success_rate: float = Field(
        default=0.7,
        ge=0,
        le=1,
        description="A success rate below this makes the queue `unhealthy`.",
        json_schema_extra={"section": "monitoring and alerting"},
    )
    queue_degraded_stalled: int = Field(
        default=0,
        ge=0,
        description="More stalled jobs (processing, lease expired) than this: `degraded`.",
        json_schema_extra={"section": "monitoring and alerting"},
    )
    queue_unhealthy_stalled: int = Field(
        default=5,
        ge=0,
        description="More stalled jobs than this: `unhealthy`.",
        json_schema_extra={"section": "monitoring and alerting"},
    )
    queue_degraded_backlog: int = Field(
        default=100,
        ge=0,
        description="More pending jobs than this: `degraded`.",
        json_schema_extra={"section": "monitoring and alerting"},
    )
    queue_degraded_oldest_seconds: int = Field(
        default=600,
        ge=0,
        description="A due pending job waiting longer than this many seconds: `degraded`.",
        json_schema_extra={"section": "monitoring and alerting"},
    )
    alert_webhook_url: SecretStr | None = Field(
        default=None,
        description=(
            "Where notifications are POSTed, as JSON that a Slack incoming webhook accepts."
        ),
        json_schema_extra={"section": "monitoring and alerting", "off": "empty, no webhook"},
    )
    smtp_host: str | None = Field(
        default=None,
        description=(
            "SMTP server for email notifications. `SMTP_HOST`, `ALERT_EMAIL_FROM` and "
            "`ALERT_EMAIL_TO` go together: set all three or none, or start-up fails."
        ),
        json_schema_extra={"section": "monitoring and alerting", "off": "empty, no email"},
    )
    smtp_port: int = Field(
        default=587,
        ge=1,
        le=65535,
        description=(
            "SMTP port: the submission port, with STARTTLS. Implicit TLS (port 465) is not "
            "supported."
        ),
        json_schema_extra={"section": "monitoring and alerting"},
    )
    smtp_username: str | None = Field(
        default=None,
        description="Login for SMTP AUTH.",
        json_schema_extra={"section": "monitoring and alerting", "off": "empty, no login"},
    )
    smtp_password: SecretStr | None = Field(
        default=None,
        description="Password for `SMTP_USERNAME`.",
        json_schema_extra={"section": "monitoring and alerting"},
    )
    smtp_starttls: bool = Field(
        default=True,
        description=(
            "Upgrade with STARTTLS, verifying the certificate against `SMTP_HOST`; a server "
            "that does not offer it is a failed delivery, never a plain-text one."
        ),
        json_schema_extra={
            "section": "monitoring and alerting",
            "off": "`false`, plain text: only for a trusted local relay",
        },
    )
    alert_email_from: str | None = Field(
        default=None,
        description="Sender address of notification emails.",
        json_schema_extra={"section": "monitoring and alerting"},
    )
    alert_email_to: str = Field(
        default="",
        description="Recipients of notification emails, comma-separated.",
        json_schema_extra={"section": "monitoring and alerting"},
    )

    # --- retention (POST /retention, `docflow retention`) -------------------------------------
    retention_events_days: int = Field(
        default=30,
        ge=0,
        description="Processing events older than this many days are deleted.",
        json_schema_extra={"section": "retention", "off": "`0`, kept forever"},
    )
    retention_health_checks_days: int = Field(
        default=30,
        ge=0,
        description="Health checks older than this many days are deleted.",
        json_schema_extra={"section": "retention", "off": "`0`, kept forever"},
    )
    retention_alerts_days: int = Field(
        default=30,
        ge=0,
        description=(
            "Alerts resolved longer ago than this many days are deleted; active and "
            "acknowledged alerts never are."
        ),
        json_schema_extra={"section": "retention", "off": "`0`, kept forever"},
    )
    retention_jobs_days: int = Field(
        default=90,
        ge=0,
        description=(
            "Completed, failed and cancelled jobs that finished longer ago than this many days "
            "are deleted; pending and processing jobs never are."
        ),
        json_schema_extra={"section": "retention", "off": "`0`, kept forever"},
    )
    retention_delete_documents: bool = Field(
        default=False,
        description=(
            "Also delete documents older than `RETENTION_JOBS_DAYS` whose jobs are all gone or "
            "expired, with their stored files. The files of documents deleted any other way "
            "(e.g. with their user) are always removed by the next run."
        ),
        json_schema_extra={
            "section": "retention",
            "off": "`false`, documents and their files are kept",
        },
    )
    retention_rollups_days: int = Field(
        default=400,
        ge=0,
        description=(
            "Daily analytics rollups (what the `30d` report reads) older than this many days "
            "are deleted. 5-minute and hourly rollups always go after 2 and 8 days, past the "
            "`1h`, `24h` and `7d` windows that read them."
        ),
        json_schema_extra={"section": "retention", "off": "`0`, daily rollups kept forever"},
    )
    retention_batch_size: int = Field(
        default=5000,
        ge=1,
        le=100_000,
        description="Rows per delete statement.",
        json_schema_extra={"section": "retention"},
    )
    retention_max_seconds: float = Field(
        default=50.0,
        gt=0,
        description=(
            "Time budget of one run; keep it below the function's timeout (deploy retention "
            "with `--timeout 540s`)."
        ),
        json_schema_extra={"section": "retention"},
    )

    # --- logging --------------------------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO",
        description="`DEBUG`, `INFO`, `WARNING` or `ERROR` (any case).",
        json_schema_extra={"section": "logging"},
    )

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

    @field_validator("supabase_storage_url")
    @classmethod
    def _optional_http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/") if value is not None else None

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
            if self.db_transport != "rest" and self.supabase_storage_url is not None:
                missing = [name for name in missing if name != "supabase_url"]
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
        storage_url = self.supabase_storage_url
        if storage_url is not None and not _is_loopback(_url_host(storage_url) or ""):
            reasons.append("SUPABASE_STORAGE_URL's host is not loopback")
        return reasons

    @property
    def deployed(self) -> bool:
        return bool(self.deployed_because())

    @property
    def storage_api_url(self) -> str | None:
        """The Storage API's base URL: SUPABASE_STORAGE_URL, else SUPABASE_URL/storage/v1."""
        if self.supabase_storage_url is not None:
            return self.supabase_storage_url
        if self.supabase_url is None:
            return None
        return f"{self.supabase_url.rstrip('/')}/storage/v1"

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
