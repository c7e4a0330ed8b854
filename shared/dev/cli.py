"""The `docflow` command line.

  docflow db start|stop|status|reset|migrate|url|destroy
                                                   the embedded Postgres (or DATABASE_URL)
  docflow serve [--port 8080] [--worker] [--schedules]
                                                   every function on one port
  docflow worker                                   the long-running worker
  docflow token --user UUID [--admin]              mint a local user access token
  docflow probe [--json]                           probe the services once
  docflow analytics [--window W] [--json]          the analytics report (1h, 24h, 7d, 30d)
  docflow retention [--dry-run] [--json]           delete expired rows (as /retention does)
  docflow upload PATH... [--recursive] [--parallel N] [--priority P] [--template T]
                 [--wait] [--json]                 upload files and directories through the
                                                   HTTP API (API_URL), to the end
  docflow status JOB_ID [--json]                   one job, through the HTTP API
  docflow demo                                     the end-to-end walkthrough (`make demo`)
  docflow inspect FILE|DIR... [--compare pdftotext] [--json] [--no-sandbox]
                                                   detect and extract locally (no database)

Errors print the message, not a traceback, and exit with status 1.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import psycopg

from shared.dev import analysis_view, localdb, migrate
from shared.platform.config import Settings, get_settings
from shared.platform.errors import ConfigError, DocflowError
from shared.platform.log import configure

if TYPE_CHECKING:
    from shared.dev.apiclient import ApiClient
    from shared.dev.storage_api import StorageServer


def _local(settings: Settings) -> localdb.Cluster | None:
    return None if settings.database_url else localdb.cluster_for(settings)


def _ensure_database(settings: Settings) -> str:
    """Start and migrate the embedded cluster when we own it; return the database URL.

    A database named by DATABASE_URL is used as it is: it is migrated only by an explicit
    `docflow db migrate` (or `supabase db push`), never as a side effect of serve or worker.
    """
    cluster = _local(settings)
    if cluster is not None:
        localdb.start(cluster)
        migrate.migrate(cluster.service_url())
    return settings.effective_database_url()


def _auth_admin_url(settings: Settings) -> str:
    """Where `docflow token` creates users in `auth.users` (what Supabase Auth does on sign-up):
    the embedded cluster's superuser, else DATABASE_URL (a `supabase start` postgres has
    Supabase's grants on auth.users)."""
    cluster = _local(settings)
    if cluster is None:
        return settings.effective_database_url()
    localdb.start(cluster)
    return cluster.url()


def cmd_db(args: argparse.Namespace, settings: Settings) -> int:
    cluster = _local(settings)
    action = args.action
    if action == "url":
        print(settings.effective_database_url())
        return 0
    if action == "migrate":
        if cluster is not None:
            localdb.start(cluster)
        applied = migrate.migrate(settings.effective_database_url())
        for m in applied:
            print(f"applied {m.version}_{m.name}")
        print(f"{len(applied)} migration(s) applied" if applied else "database is up to date")
        return 0
    if cluster is None:
        if action == "status":
            try:
                with psycopg.connect(settings.effective_database_url(), connect_timeout=5):
                    print("DATABASE_URL is set and reachable (embedded cluster not used)")
                return 0
            except psycopg.OperationalError:
                print("DATABASE_URL is set but not reachable", file=sys.stderr)
                return 1
        raise ConfigError(
            f"`docflow db {action}` manages the embedded cluster; DATABASE_URL is set, so it is "
            "not used (unset DATABASE_URL, or use the Supabase CLI for that database)"
        )
    if action == "start":
        started = localdb.start(cluster)
        print(
            ("started" if started else "already running")
            + f": {cluster.service_url()} (data in {cluster.root})"
        )
    elif action == "stop":
        print("stopped" if localdb.stop(cluster) else "not running")
    elif action == "destroy":
        localdb.remove(cluster)
        print(f"deleted the local cluster in {cluster.root}")
    elif action == "status":
        running = localdb.is_running(cluster)
        print(
            f"{'running' if running else 'stopped'}: {cluster.data_dir} "
            f"(port {cluster.port}, binaries {cluster.bindir})"
        )
        return 0 if running else 3
    elif action == "reset":
        legacy = localdb.stop_legacy(cluster)
        if legacy is not None:
            print(f"stopped the older docflow cluster in {legacy} (`make clean` deletes it)")
        try:
            localdb.check_layout(cluster)
        except ConfigError:
            print(f"re-creating the local cluster in {cluster.root}")
            localdb.remove(cluster)
        localdb.start(cluster)
        if args.storage_api:
            _reset_for_storage_api(cluster)
            print("database reset in Supabase's order for the real Storage API: seed loaded")
            return 0
        localdb.recreate_database(cluster.url("template1"), "postgres")
        applied = migrate.migrate(cluster.service_url())
        migrate.seed(cluster.service_url())
        print(f"database reset: {len(applied)} migration(s) applied, seed loaded")
    return 0


def cmd_token(args: argparse.Namespace, settings: Settings) -> int:
    from shared.platform.auth import mint_token

    user_id = str(uuid.UUID(args.user)) if args.user else str(uuid.uuid4())
    if settings.db_transport == "postgres":
        localdb.ensure_auth_user(_auth_admin_url(settings), user_id, args.email, args.admin)
    print(mint_token(settings, user_id, admin=args.admin, email=args.email, ttl_seconds=args.ttl))
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from werkzeug.serving import run_simple

    from shared.dev.server import create_app

    storage_server = None
    if args.storage_api:
        storage_server, settings = _start_storage_api(settings, args.storage_port)
    elif settings.db_transport == "postgres":
        _ensure_database(settings)
    stop = threading.Event()
    worker = _start_worker(settings, stop) if args.worker else None
    if args.worker or args.schedules:  # `make dev`: the local stand-in for Cloud Scheduler
        _start_schedules(
            settings, stop, probe_every=args.probe_every, retention_every=args.retention_every
        )
    print(
        f"docflow serving every function on http://{args.host}:{args.port}/<route>", file=sys.stderr
    )
    # SIGTERM (a supervisor, `kill`) ends the server as Ctrl-C does: werkzeug stops serving on
    # KeyboardInterrupt, then the worker below finishes or releases what it holds.
    signal.signal(signal.SIGTERM, _interrupt)
    upstream = storage_server.base_url if storage_server is not None else None
    try:
        run_simple(
            args.host, args.port, create_app(storage_upstream=upstream), threaded=True,
            use_reloader=False,
        )  # fmt: skip
    finally:
        stop.set()  # the worker stops claiming, finishes or releases what it holds
        if worker is not None:
            worker.join(settings.worker_shutdown_grace_seconds + 5)
        if storage_server is not None:
            storage_server.stop()
    return 0


STORAGE_API_PORT = 8081


def _start_storage_api(settings: Settings, port: int) -> tuple[StorageServer, Settings]:
    """`make dev STORAGE=supabase`: the real Storage API (shared/dev/storage_api.py) on the
    embedded cluster's `postgres` database, the one `docflow token` and `upload --user` use,
    and this process switched to STORAGE_BACKEND=supabase against it. The database must be in
    Supabase's order (the Storage API's schema first): an empty one made for the file backend
    is re-created so; one holding documents is left alone, with the command that does it."""
    import os

    from shared.dev import storage_api
    from shared.platform.config import LOCAL_DIR, reset_settings
    from shared.platform.storage import reset_storage

    cluster = _local(settings)
    if cluster is None:
        raise ConfigError(
            "--storage-api runs the real Storage API on the embedded cluster; DATABASE_URL is "
            "set (unset it, or point SUPABASE_STORAGE_URL at a Storage API of your own)"
        )
    if settings.supabase_jwt_secret is None:
        raise ConfigError("--storage-api signs its keys with SUPABASE_JWT_SECRET; set it")
    localdb.start(cluster)
    if not _has_real_storage_schema(cluster.url()):
        documents = _document_count(cluster.url())
        if documents:
            raise ConfigError(
                f"the local database was made for the file backend and holds {documents} "
                "document(s); `docflow db reset --storage-api` re-creates it in Supabase's order "
                "for the real Storage API (dropping them)"
            )
        print("re-creating the empty local database in Supabase's order", file=sys.stderr)
        _reset_for_storage_api(cluster)
    built = storage_api.build()
    server = storage_api.start_server(
        built,
        database_url=storage_api.storage_admin_url(cluster.url(), "postgres"),
        files_dir=LOCAL_DIR / "storage-api" / "files",
        jwt_secret=settings.supabase_jwt_secret.get_secret_value(),
        log_path=LOCAL_DIR / "storage-api" / "server.log",
        port=port,
    )
    try:
        storage_api.finish_database(cluster.url("template1"), "postgres")
    except BaseException:
        server.stop()
        raise
    os.environ.update(
        STORAGE_BACKEND="supabase",
        SUPABASE_STORAGE_URL=server.base_url,
        SUPABASE_SERVICE_ROLE_KEY=server.service_key,
        SUPABASE_ANON_KEY=server.anon_key,
    )
    reset_settings()
    reset_storage()
    print(
        f"the real Storage API on {server.base_url} (and /storage/v1 of this server), "
        f"anon key {server.anon_key}; log {server.log_path}",
        file=sys.stderr,
    )
    return server, get_settings()


def _has_real_storage_schema(admin_url: str) -> bool:
    """The Storage API's own migrations table: its schema, not the bootstrap's stand-in."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        row = conn.execute("select to_regclass('storage.migrations') is not null").fetchone()
    return bool(row and row[0])


def _document_count(admin_url: str) -> int:
    """Documents in the database; 0 before docflow's migrations made the table."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("select to_regclass('public.documents') is not null").fetchone()
        if not (exists and exists[0]):
            return 0
        row = conn.execute("select count(*) from public.documents").fetchone()
    return int(row[0]) if row else 0


def _reset_for_storage_api(cluster: localdb.Cluster) -> None:
    """Re-create the local `postgres` database in Supabase's order: the Storage API's schema
    (its migrations, run by starting it once), then docflow's bootstrap, migrations and seed."""
    from shared.dev import storage_api
    from shared.platform.config import LOCAL_DIR

    admin = cluster.url("template1")  # not connected to the database it re-creates
    storage_api.create_database(admin, "postgres")
    server = storage_api.start_server(
        storage_api.build(),
        database_url=storage_api.storage_admin_url(cluster.url(), "postgres"),
        files_dir=LOCAL_DIR / "storage-api" / "files",
        jwt_secret="only-for-the-migrations-run-" + uuid.uuid4().hex,
        log_path=LOCAL_DIR / "storage-api" / "server.log",
    )
    try:
        storage_api.finish_database(admin, "postgres")
    finally:
        server.stop()
    migrate.seed(cluster.service_url())


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


PROBE_EVERY_SECONDS = 60
RETENTION_EVERY_SECONDS = 24 * 3600


def _start_schedules(
    settings: Settings,
    stop: threading.Event,
    *,
    probe_every: float = PROBE_EVERY_SECONDS,
    retention_every: float = RETENTION_EVERY_SECONDS,
) -> threading.Thread:
    """The local stand-in for Cloud Scheduler: probe the services every minute, as
    /probe_health is called in production, and run retention at start and then daily, as
    /retention is. The soak (bench/soak.py) shortens both periods."""
    import time

    from shared.ops.probes import probe_and_notify
    from shared.ops.retention import run as run_retention
    from shared.platform.client import get_db
    from shared.platform.log import get_logger
    from shared.platform.storage import get_storage

    log = get_logger("schedules")
    schedules: list[tuple[str, float, Callable[[], object]]] = [
        ("probe", probe_every, lambda: probe_and_notify(get_db(), get_storage(), settings)),
        ("retention", retention_every, lambda: run_retention(get_db(), get_storage(), settings)),
    ]  # fmt: skip
    due = {name: time.monotonic() for name, _, _ in schedules}

    def loop() -> None:
        while not stop.is_set():
            for name, every, job in schedules:
                if time.monotonic() < due[name]:
                    continue
                due[name] = time.monotonic() + every
                try:
                    job()
                except Exception:  # a schedule must outlive a bad run
                    log.warning("scheduled run failed", extra={"schedule": name}, exc_info=True)
            stop.wait(max(0.0, min(due.values()) - time.monotonic()))

    thread = threading.Thread(target=loop, name="docflow-schedules", daemon=True)
    thread.start()
    return thread


def _start_worker(
    settings: Settings, stop: threading.Event, concurrency: int | None = None
) -> threading.Thread:
    from shared.documents.pipeline import document_worker
    from shared.platform.client import get_db

    worker = document_worker(get_db(), settings, concurrency=concurrency)
    thread = threading.Thread(
        target=worker.run_forever, args=(stop,), name="docflow-worker", daemon=True
    )
    thread.start()
    return thread


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    if settings.db_transport == "postgres":
        _ensure_database(settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    thread = _start_worker(settings, stop, args.concurrency)
    # Stop claiming on SIGTERM/SIGINT, finish or release what is held, then exit.
    while thread.is_alive():
        thread.join(0.5)
    return 0


def cmd_probe(args: argparse.Namespace, settings: Settings) -> int:
    import json

    from shared.ops.probes import probe_and_notify
    from shared.platform.client import get_db
    from shared.platform.storage import get_storage

    if settings.db_transport == "postgres":
        _ensure_database(settings)
    report = probe_and_notify(get_db(), get_storage(), settings)
    if args.json:
        print(json.dumps(report, default=str))
    else:
        for check in report["checks"]:
            line = f"{check['service']:<12} {check['status']:<9} {check['latency_ms']} ms"
            if check["error"]:
                line += f"  {check['error']}"
            print(line)
        n = report["notifications"]
        print(f"notifications: {n['delivered']} delivered, {n['failed']} failed")
    return 0 if all(c["status"] == "healthy" for c in report["checks"]) else 1


@contextmanager
def _quiet(*names: str) -> Iterator[None]:
    """Only errors from these loggers while the block runs."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def cmd_analytics(args: argparse.Namespace, settings: Settings) -> int:
    """The analytics report, read as the service (an operator on the database's machine)."""
    import json

    from shared.dev.console import interactive
    from shared.dev.report import render
    from shared.ops import analytics
    from shared.platform.client import get_db

    if settings.db_transport == "postgres":
        _ensure_database(settings)
    # An unreachable database is the one error line: no pool retry warnings, and no warning of
    # a skipped fold (the report is exact without it).
    with _quiet("psycopg.pool", "docflow.analytics"):
        report = analytics.report(get_db(), args.window)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(render(report, color=interactive(sys.stdout)), end="")
    return 0


def cmd_retention(args: argparse.Namespace, settings: Settings) -> int:
    """What POST /retention does, once; `--dry-run` only counts."""
    import json

    from shared.ops.retention import run as run_retention
    from shared.platform.client import get_db
    from shared.platform.storage import get_storage

    if settings.db_transport == "postgres":
        _ensure_database(settings)
    report = run_retention(get_db(), get_storage(), settings, dry_run=args.dry_run)
    if args.json:
        print(json.dumps(report))
        return 0
    verb = "would delete" if args.dry_run else "deleted"
    for table, count in report["counts"].items():
        keep = report["keep_days"].get(table)
        kept = (
            ""
            if keep is None
            else ("  (kept forever)" if keep <= 0 else f"  (older than {keep} days)")
        )
        if table == "analytics_rollups":  # the finer grains go whatever the setting says
            daily = "daily kept forever" if keep is not None and keep <= 0 else f"daily {keep} d"
            kept = f"  (5-min after 2 days, hourly after 8, {daily})"
        print(f"{table:<28} {verb} {count:>9,}{kept}")
    if not report["finished"]:
        print(f"stopped by the time budget after {report['elapsed_ms'] / 1000:.1f} s: "
              "the next run goes on")  # fmt: skip
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    import logging

    from shared.dev.demo import run_demo

    logging.getLogger("docflow").setLevel(logging.WARNING)  # the walkthrough prints its own

    return run_demo(settings, _ensure_database(settings))


# --- upload and status: clients of the HTTP API (API_URL, API_TOKEN) -----------------------


def _uuid(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise argparse.ArgumentTypeError("must be a UUID") from None


def _positive_seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a number of seconds") from None
    if not 0 < seconds <= 86400:
        raise argparse.ArgumentTypeError("must be between 0 and 86400 seconds")
    return seconds


def _api_client(args: argparse.Namespace, settings: Settings) -> ApiClient:
    """The API client as the user: --token, else --user (local: mint one), else API_TOKEN."""
    from shared.dev.apiclient import ApiClient

    token: str | None = args.token
    if token is None and args.user:
        from shared.platform.auth import mint_token

        if settings.db_transport == "postgres":
            localdb.ensure_auth_user(_auth_admin_url(settings), args.user, None, False)
        token = mint_token(settings, args.user)
    if token is None and settings.api_token is not None:
        token = settings.api_token.get_secret_value()
    if not token:
        raise ConfigError(
            "no access token: set API_TOKEN, pass --token, or (local development) --user UUID"
        )
    return ApiClient(args.api_url or settings.api_url, token)


def _summary_line(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit].rstrip() + "..."


def cmd_upload(args: argparse.Namespace, settings: Settings) -> int:
    """A batch through POST /uploads (shared/dev/batch.py), shown by shared/dev/console.py."""
    from shared.dev import batch, console

    items = batch.collect(args.paths, recursive=args.recursive)
    options = batch.Options(
        priority=args.priority,
        template=args.template,
        parallel=args.parallel,
        wait=args.wait,
        timeout=args.timeout,
    )
    with _api_client(args, settings) as api:
        run = batch.Batch(api, items, options).run(console.batch_view(as_json=args.json))
    console.print_summary(run, as_json=args.json)
    return run.exit_status()


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    import json

    with _api_client(args, settings) as api:
        job = api.job(args.job_id)
    if args.json:
        print(json.dumps(job, indent=2))
        return 0
    error = job.get("error")
    rows: list[tuple[str, object]] = [
        ("job", job.get("id")),
        ("document", job.get("document_id")),
        ("status", job.get("status")),
        ("stage", job.get("stage") or "-"),
        ("progress", f"{job.get('progress', 0)}%"),
        ("attempts", f"{job.get('attempts', 0)} of {job.get('max_attempts') or '?'}"),
        ("priority", job.get("priority")),
        ("created", job.get("created_at")),
    ]
    if job.get("duration_ms") is not None:
        rows.append(("duration", f"{job['duration_ms']} ms"))
    rows.append(("error", f"{error.get('code')}: {error.get('message')}" if error else "-"))
    result = job.get("result")
    if isinstance(result, dict):
        rows += [
            ("type", result.get("detected_content_type")),
            ("pages", result.get("pages")),
            ("words", result.get("words")),
            ("characters", result.get("characters")),
            ("extractor", result.get("extractor")),
            ("summarizer", result.get("summarizer")),
            ("summary", _summary_line(str(result.get("summary") or "")) or "-"),
        ]
    for name, value in rows:
        print(f"{name:<11}{value}")
    if isinstance(result, dict):
        for point in result.get("key_points") or []:
            print(f"  - {_summary_line(str(point))}")
        for line in analysis_view.lines(result.get("analysis"), indent=""):
            print(line)
    return 0


def _int_between(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: an integer from `low` to `high`."""

    def parse(value: str) -> int:
        try:
            n = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError("must be an integer") from None
        if not low <= n <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}")
        return n

    return parse


def build_parser() -> argparse.ArgumentParser:
    from shared.jobs.queue import PRIORITIES
    from shared.ops.analytics import WINDOWS

    parser = argparse.ArgumentParser(prog="docflow", description="docflow backend tools")
    sub = parser.add_subparsers(dest="command", required=True)

    db = sub.add_parser("db", help="the embedded Postgres cluster and migrations")
    db.add_argument(
        "action", choices=["start", "stop", "status", "reset", "migrate", "url", "destroy"]
    )
    db.add_argument(
        "--storage-api",
        action="store_true",
        help="reset: re-create the database in Supabase's order for the real Storage API",
    )
    db.set_defaults(func=cmd_db)

    serve = sub.add_parser("serve", help="serve every function on one port")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument(
        "--worker",
        action="store_true",
        help="also run a long-running worker and the local schedules (probe every minute, "
        "retention daily)",
    )
    serve.add_argument(
        "--schedules",
        action="store_true",
        help="run the local schedules without a worker (the soak runs its own workers)",
    )
    serve.add_argument(
        "--probe-every",
        type=_positive_seconds,
        default=PROBE_EVERY_SECONDS,
        metavar="SECONDS",
        help=f"with the schedules: probe this often (default {PROBE_EVERY_SECONDS})",
    )
    serve.add_argument(
        "--retention-every",
        type=_positive_seconds,
        default=RETENTION_EVERY_SECONDS,
        metavar="SECONDS",
        help="with the schedules: run retention at start and then this often (default daily)",
    )
    serve.add_argument(
        "--storage-api",
        action="store_true",
        help="run Supabase's real Storage API beside the embedded database and store files "
        "there (make dev STORAGE=supabase); also proxied at /storage/v1",
    )
    serve.add_argument(
        "--storage-port",
        type=int,
        default=STORAGE_API_PORT,
        metavar="PORT",
        help=f"with --storage-api: its port (default {STORAGE_API_PORT})",
    )
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run the long-running worker")
    worker.add_argument(
        "--concurrency", type=_int_between(1, 256), help="jobs at once, 1-256 (WORKER_CONCURRENCY)"
    )
    worker.set_defaults(func=cmd_worker)

    token = sub.add_parser("token", help="mint a local user access token")
    token.add_argument("--user", help="user id (UUID); a new one when omitted")
    token.add_argument("--admin", action="store_true", help="app_metadata.role = admin")
    token.add_argument("--email")
    token.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds")
    token.set_defaults(func=cmd_token)

    api = argparse.ArgumentParser(add_help=False)
    api.add_argument("--api-url", help="base URL of the docflow API (default: API_URL)")
    who = api.add_mutually_exclusive_group()
    who.add_argument("--token", help="the user's access token (default: API_TOKEN)")
    who.add_argument(
        "--user", type=_uuid, help="local development: mint a token for this user id (UUID)"
    )

    upload = sub.add_parser(
        "upload", parents=[api], help="upload files through the HTTP API, with progress"
    )
    upload.add_argument("paths", nargs="+", metavar="PATH", help="files and directories")
    upload.add_argument(
        "--recursive", "-r", action="store_true", help="also the files of subdirectories"
    )
    upload.add_argument(
        "--parallel",
        type=_int_between(1, 32),
        default=4,
        metavar="N",
        help="files sent at once, 1-32 (default 4)",
    )
    upload.add_argument(
        "--json", action="store_true", help="one JSON object per file on stdout, for scripts"
    )
    upload.add_argument("--priority", choices=PRIORITIES, help="job priority (default: normal)")
    upload.add_argument(
        "--template",
        help="analysis template (default: the server's ANALYSIS_TEMPLATE; see GET /templates)",
    )
    upload.add_argument(
        "--wait",
        action="store_true",
        help="follow the accepted jobs together until each ends, then the summary",
    )
    upload.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=600.0,
        help="with --wait: stop following this many seconds after the last file went (default 600)",
    )
    upload.set_defaults(func=cmd_upload)

    status = sub.add_parser("status", parents=[api], help="one job, through the HTTP API")
    status.add_argument("job_id", metavar="JOB_ID")
    status.add_argument("--json", action="store_true", help="print the API's JSON")
    status.set_defaults(func=cmd_status)

    probe = sub.add_parser("probe", help="probe the services once (as /probe_health does)")
    probe.add_argument("--json", action="store_true", help="print the report as JSON")
    probe.set_defaults(func=cmd_probe)

    analytics = sub.add_parser("analytics", help="the analytics report (as the dashboard's)")
    analytics.add_argument(
        "--window", choices=WINDOWS, default="24h", help="the period reported (default 24h)"
    )
    analytics.add_argument("--json", action="store_true", help="print the report as JSON")
    analytics.set_defaults(func=cmd_analytics)

    retention = sub.add_parser("retention", help="delete expired rows (as /retention does)")
    retention.add_argument(
        "--dry-run", action="store_true", help="only count what would be deleted"
    )
    retention.add_argument("--json", action="store_true", help="print the report as JSON")
    retention.set_defaults(func=cmd_retention)

    demo = sub.add_parser("demo", help="upload the samples over HTTP, process, report")
    demo.set_defaults(func=cmd_demo)

    inspect = sub.add_parser(
        "inspect",
        help="detect and extract files locally, as an upload and its job would (no database)",
    )
    inspect.add_argument("paths", nargs="+", metavar="FILE|DIR")
    inspect.add_argument(
        "--compare", choices=["pdftotext"], help="add word recall against pdftotext for PDFs"
    )
    inspect.add_argument("--json", action="store_true", help="print the report as JSON")
    inspect.add_argument(
        "--no-sandbox", action="store_true", help="extract in this process (no child process)"
    )
    inspect.set_defaults(func=cmd_inspect)
    return parser


def cmd_inspect(args: argparse.Namespace) -> int:
    """Needs no settings: it must work in a fresh checkout, without `.env` or secrets."""
    from shared.dev import inspect

    try:
        return inspect.run(
            args.paths, compare=args.compare, as_json=args.json, sandboxed=not args.no_sandbox
        )
    except inspect.InspectError as exc:
        print(f"docflow inspect: {exc}", file=sys.stderr)
        return 2


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "inspect":  # no settings read
        try:
            return cmd_inspect(args)
        except KeyboardInterrupt:
            return 130
    try:
        settings = get_settings()
        configure(settings.log_level)
        return int(args.func(args, settings))
    except (DocflowError, psycopg.Error) as exc:
        print(f"docflow: {exc}", file=sys.stderr)
        return 1
    except ModuleNotFoundError as exc:
        if exc.name != "rich":
            raise
        print("docflow: this command draws with rich: pip install 'docflow[cli]'", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
