"""The `docflow` command line.

  docflow db start|stop|status|reset|migrate|url   the embedded Postgres (or DATABASE_URL)
  docflow serve [--port 8080] [--worker]           every function on one port
  docflow worker                                   the long-running worker
  docflow token --user UUID [--admin]              mint a local user access token
  docflow demo                                     the end-to-end walkthrough (`make demo`)

Errors print the message, not a traceback, and exit with status 1.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import uuid
from collections.abc import Sequence

import psycopg

from shared import localdb, migrate
from shared.config import Settings, get_settings
from shared.errors import ConfigError, DocflowError
from shared.log import configure


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
        migrate.migrate(cluster.url())
    return settings.effective_database_url()


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
        print(("started" if started else "already running") + f": {cluster.url()}")
    elif action == "stop":
        print("stopped" if localdb.stop(cluster) else "not running")
    elif action == "status":
        running = localdb.is_running(cluster)
        print(
            f"{'running' if running else 'stopped'}: {cluster.data_dir} "
            f"(port {cluster.port}, binaries {cluster.bindir})"
        )
        return 0 if running else 3
    elif action == "reset":
        localdb.start(cluster)
        localdb.recreate_database(cluster.url("template1"), "postgres")
        applied = migrate.migrate(cluster.url())
        migrate.seed(cluster.url())
        print(f"database reset: {len(applied)} migration(s) applied, seed loaded")
    return 0


def cmd_token(args: argparse.Namespace, settings: Settings) -> int:
    from shared.auth import mint_token

    user_id = str(uuid.UUID(args.user)) if args.user else str(uuid.uuid4())
    if settings.db_transport == "postgres":
        localdb.ensure_auth_user(settings.effective_database_url(), user_id, args.email, args.admin)
    print(mint_token(settings, user_id, admin=args.admin, email=args.email, ttl_seconds=args.ttl))
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from werkzeug.serving import run_simple

    from shared.server import create_app

    if settings.db_transport == "postgres":
        _ensure_database(settings)
    stop = threading.Event()
    worker = _start_worker(settings, stop) if args.worker else None
    print(
        f"docflow serving every function on http://{args.host}:{args.port}/<route>", file=sys.stderr
    )
    try:
        run_simple(args.host, args.port, create_app(), threaded=True, use_reloader=False)
    finally:
        stop.set()  # the worker stops claiming, finishes or releases what it holds
        if worker is not None:
            worker.join(settings.worker_shutdown_grace_seconds + 5)
    return 0


def _start_worker(
    settings: Settings, stop: threading.Event, concurrency: int | None = None
) -> threading.Thread:
    from shared.client import get_db
    from shared.worker import document_worker

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


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    import logging

    from shared.demo import run_demo

    logging.getLogger("docflow").setLevel(logging.WARNING)  # the walkthrough prints its own

    return run_demo(settings, _ensure_database(settings))


def _concurrency(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError("must be an integer") from None
    if not 1 <= n <= 256:
        raise argparse.ArgumentTypeError("must be between 1 and 256")
    return n


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="docflow", description="docflow backend tools")
    sub = parser.add_subparsers(dest="command", required=True)

    db = sub.add_parser("db", help="the embedded Postgres cluster and migrations")
    db.add_argument("action", choices=["start", "stop", "status", "reset", "migrate", "url"])
    db.set_defaults(func=cmd_db)

    serve = sub.add_parser("serve", help="serve every function on one port")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--worker", action="store_true", help="also run a long-running worker")
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run the long-running worker")
    worker.add_argument(
        "--concurrency", type=_concurrency, help="jobs at once, 1-256 (WORKER_CONCURRENCY)"
    )
    worker.set_defaults(func=cmd_worker)

    token = sub.add_parser("token", help="mint a local user access token")
    token.add_argument("--user", help="user id (UUID); a new one when omitted")
    token.add_argument("--admin", action="store_true", help="app_metadata.role = admin")
    token.add_argument("--email")
    token.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds")
    token.set_defaults(func=cmd_token)

    demo = sub.add_parser("demo", help="upload the samples over HTTP, process, report")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = get_settings()
        configure(settings.log_level)
        return int(args.func(args, settings))
    except (DocflowError, psycopg.Error) as exc:
        print(f"docflow: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
