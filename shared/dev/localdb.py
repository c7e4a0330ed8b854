"""The embedded PostgreSQL cluster for local development and tests (`docflow db ...`).

A private cluster on its own port (LOCAL_PG_PORT), started from the server binaries found on
the machine (PG_BINDIR, PATH, `pg_config --bindir`, `/usr/lib/postgresql/*/bin`), or from the
`pgserver` wheel where none are found. When DATABASE_URL is set none of this runs: that
database is used as it is.

It keeps hosted Supabase's privileges, so that a migration that would fail under
`supabase db push` fails here too:
- the superuser is `supabase_admin` (initdb's bootstrap user); it creates, clones and drops
  databases and nothing else;
- `postgres` is NOSUPERUSER with BYPASSRLS and owns the databases: migrations and the
  application's service login run as it;
- `auth` and `storage` belong to `supabase_auth_admin` and `supabase_storage_admin`;
  `template1` carries the local bootstrap (`shared/sql/local_bootstrap.sql`), so every
  database created here starts as a Supabase project's does;
- the one stand-in (`shared/sql/local_cluster.sql`): `postgres` may create policies on the
  storage tables, which hosted Supabase allows through supautils' policy grants.

Where the data lives: `initdb` refuses to run as root, so as root the cluster runs as an
unprivileged OS user (LOCAL_PG_OS_USER, else `postgres` when it exists, else a system user
`docflow-pg` that we create). That user may not be able to enter the checkout (a root home or
a `mktemp -d` directory is 0700), so as root the data goes to a per-checkout directory under
`/var/tmp/docflow/`; otherwise to `.local/pg`. LOCAL_PG_DIR overrides both.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from shared.platform.config import LOCAL_DIR, REPO_ROOT, Settings
from shared.platform.errors import ConfigError
from shared.platform.log import get_logger

log = get_logger("localdb")

SUPERUSER = "supabase_admin"
SUPERUSER_PASSWORD = "postgres"  # noqa: S105 - a local, loopback-only development cluster
SERVICE_ROLE_LOGIN = "postgres"  # the migration owner and the service login, as on Supabase
SERVICE_ROLE_PASSWORD = "postgres"  # noqa: S105 - Settings.local_database_url uses it too
SHARED_ROOT = Path("/var/tmp/docflow")  # noqa: S108 - reachable by the cluster's OS user
# Written into the cluster directory once it is set up the Supabase way; a data directory
# without it was made by an older docflow (superuser `postgres`) and must be re-created.
MARKER = "docflow-cluster.json"
LAYOUT = 2
_SQL_DIR = Path(__file__).parent / "sql"
_SETUP_LOCK = 0x646F63666C6F78  # one _set_up at a time (the migrator's key + 1)


@dataclass(frozen=True)
class Cluster:
    bindir: Path
    root: Path
    port: int
    os_user: str | None  # None: run as the current user

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.root / "postgres.log"

    @property
    def marker(self) -> Path:
        return self.root / MARKER

    def url(self, dbname: str = "postgres") -> str:
        """The superuser's URL (cluster administration only)."""
        return f"postgresql://{SUPERUSER}:{SUPERUSER_PASSWORD}@127.0.0.1:{self.port}/{dbname}"

    def service_url(self, dbname: str = "postgres") -> str:
        """`postgres`'s URL: migrations and the application's service login."""
        return (
            f"postgresql://{SERVICE_ROLE_LOGIN}:{SERVICE_ROLE_PASSWORD}@127.0.0.1:{self.port}"
            f"/{dbname}"
        )


def _version_key(path: str) -> tuple[int, ...]:
    m = re.search(r"/postgresql/(\d+)(?:\.(\d+))?/", path)
    return tuple(int(g) for g in m.groups() if g) if m else (0,)


def find_bindir() -> Path:
    """Locate PostgreSQL server binaries (initdb, pg_ctl, postgres)."""
    candidates: list[Path] = []
    if os.environ.get("PG_BINDIR"):
        candidates.append(Path(os.environ["PG_BINDIR"]))
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        candidates.append(Path(os.path.realpath(pg_ctl)).parent)
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if out.returncode == 0 and out.stdout.strip():
            candidates.append(Path(out.stdout.strip()))
    for pattern in ("/usr/lib/postgresql/*/bin", "/usr/local/pgsql/bin", "/opt/homebrew/bin"):
        for found in sorted(glob.glob(pattern), key=_version_key, reverse=True):
            candidates.append(Path(found))
    for candidate in candidates:
        if all((candidate / tool).exists() for tool in ("initdb", "pg_ctl", "postgres")):
            return candidate
    try:  # a pip-installed PostgreSQL (the `pgserver` wheel ships the server binaries)
        import pgserver  # type: ignore[import-not-found]

        wheel_bin = Path(pgserver.__file__).parent / "pginstall" / "bin"
        if (wheel_bin / "initdb").exists():
            return wheel_bin
    except ImportError:
        pass
    raise ConfigError(
        "no PostgreSQL server binaries found: install them (`apt-get install postgresql`) or "
        "`pip install pgserver`, set PG_BINDIR, or set DATABASE_URL to use an existing database"
    )


def _ensure_os_user(preferred: str | None) -> str:
    for name in (preferred, "postgres"):
        if not name:
            continue
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            if name == preferred:
                raise ConfigError(f"LOCAL_PG_OS_USER={name!r}: no such OS user") from None
    name = "docflow-pg"
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            check=True,
        )
    return name


def default_root(as_root: bool) -> Path:
    """Where the cluster lives when LOCAL_PG_DIR is not set (see the module docstring)."""
    if not as_root:
        return LOCAL_DIR / "pg"
    checkout = hashlib.sha256(str(REPO_ROOT).encode()).hexdigest()[:10]
    return SHARED_ROOT / f"{REPO_ROOT.name}-{checkout}" / "pg"


def cluster_for(settings: Settings) -> Cluster:
    os_user = None
    if os.geteuid() == 0:
        os_user = _ensure_os_user(settings.local_pg_os_user)
    root = settings.local_pg_dir or default_root(os_user is not None)
    return Cluster(
        bindir=find_bindir(),
        root=Path(root).resolve(),
        port=settings.local_pg_port,
        os_user=os_user,
    )


def _as_user(cluster: Cluster) -> Callable[[], None] | None:
    if cluster.os_user is None:
        return None
    entry = pwd.getpwnam(cluster.os_user)

    def demote() -> None:
        os.setgroups([])
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)

    return demote


def _run(cluster: Cluster, args: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
    if cluster.os_user:
        env["HOME"] = str(cluster.root)
    result = subprocess.run(
        args,
        capture_output=True,
        text=True,
        env=env,
        cwd=str(cluster.root),
        preexec_fn=_as_user(cluster),
        check=False,
    )
    if check and result.returncode != 0:
        hint = ""
        if cluster.os_user:
            hint = (
                f" (as root, the cluster runs as OS user {cluster.os_user!r}: every parent "
                "directory of LOCAL_PG_DIR must be searchable by it; set LOCAL_PG_DIR elsewhere "
                "if not)"
            )
        raise ConfigError(
            f"{Path(args[0]).name} failed ({result.returncode}): "
            f"{(result.stderr or result.stdout).strip()[-2000:]}{hint}"
        )
    return result


def _chown_tree(cluster: Cluster) -> None:
    if cluster.os_user is None:
        return
    entry = pwd.getpwnam(cluster.os_user)
    for dirpath, _dirs, files in os.walk(cluster.root):  # does not descend into symlinks
        os.chown(dirpath, entry.pw_uid, entry.pw_gid, follow_symlinks=False)
        for f in files:
            os.chown(os.path.join(dirpath, f), entry.pw_uid, entry.pw_gid, follow_symlinks=False)


def _private_dir(path: Path, owners: tuple[int, ...]) -> None:
    """Create `path` (0755) when missing, and refuse it unless it is a real directory owned by
    one of `owners` that nobody else may write. /var/tmp is world-writable: another local user
    could have made the directory first, or put a symlink there, for root to follow."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o755)
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid not in owners or info.st_mode & 0o022:
        raise ConfigError(
            f"{path} is not a directory that only root (or the cluster's OS user) owns and can "
            "write: remove it, or set LOCAL_PG_DIR to another place"
        )


def _prepare_root(cluster: Cluster) -> None:
    if not cluster.root.is_relative_to(SHARED_ROOT):
        cluster.root.mkdir(parents=True, exist_ok=True)
        return
    # /var/tmp/docflow and /var/tmp/docflow/<checkout> are root's; <checkout>/pg becomes the
    # cluster user's (_chown_tree).
    cluster_uid = pwd.getpwnam(cluster.os_user).pw_uid if cluster.os_user else os.geteuid()
    directory = SHARED_ROOT
    _private_dir(directory, (0, os.geteuid()))
    for part in cluster.root.relative_to(SHARED_ROOT).parts[:-1]:
        directory = directory / part
        _private_dir(directory, (0, os.geteuid()))
    _private_dir(cluster.root, (0, os.geteuid(), cluster_uid))


def _write_file(path: Path, text: str, mode: int = 0o644) -> None:
    """Write a small file without following a symlink planted in its place."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # removes a link itself, never its target
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "w") as file:
        file.write(text)


def _read_marker(cluster: Cluster) -> dict[str, object] | None:
    try:
        data = json.loads(cluster.marker.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_marker(cluster: Cluster, state: str) -> None:
    _write_file(cluster.marker, json.dumps({"layout": LAYOUT, "state": state}) + "\n")


def check_layout(cluster: Cluster) -> None:
    """Refuse a data directory made by an older docflow (superuser `postgres`)."""
    if not (cluster.data_dir / "PG_VERSION").exists():
        return
    marker = _read_marker(cluster)
    if marker is None or marker.get("layout") != LAYOUT:
        raise ConfigError(
            f"the local cluster in {cluster.root} was created by an older docflow, before the "
            "local database was set up like a hosted Supabase one (superuser supabase_admin, "
            "migrations as a non-superuser postgres): run `docflow db reset` to re-create it "
            "(its local data is lost)"
        )


def init(cluster: Cluster) -> bool:
    """Create the cluster when it does not exist yet. Returns True when it was created."""
    if (cluster.data_dir / "PG_VERSION").exists():
        check_layout(cluster)
        return False
    _prepare_root(cluster)
    if cluster.data_dir.exists():
        shutil.rmtree(cluster.data_dir)  # a half-initialised directory from a failed run
    pwfile = cluster.root / "pwfile"
    _write_file(pwfile, SUPERUSER_PASSWORD + "\n", mode=0o600)
    _chown_tree(cluster)
    try:
        _run(
            cluster,
            [
                str(cluster.bindir / "initdb"),
                "-D",
                str(cluster.data_dir),
                "-U",
                SUPERUSER,
                "--pwfile",
                str(pwfile),
                "--auth",
                "scram-sha-256",
                "-E",
                "UTF8",
                "--locale",
                "C",
            ],
        )
    finally:
        pwfile.unlink(missing_ok=True)
    with (cluster.data_dir / "postgresql.conf").open("a") as conf:
        conf.write(
            "\n# docflow local cluster\n"
            "listen_addresses = '127.0.0.1'\n"
            f"port = {cluster.port}\n"
            "unix_socket_directories = ''\n"
            "max_connections = 200\n"
            "shared_buffers = 256MB\n"
        )
    _write_marker(cluster, "initialised")
    _chown_tree(cluster)
    log.info("initialised local cluster", extra={"data_dir": str(cluster.data_dir)})
    return True


def _set_up(cluster: Cluster) -> None:
    """Make a new cluster look like a hosted Supabase project's (once, as the superuser).

    template1 and postgres get the local bootstrap (roles, `auth`, `storage`, grants, the
    Realtime publication) and the storage-policy stand-in; `postgres` gets its password and
    the `postgres` database. Idempotent: a run cut short is finished by the next start.
    """
    from shared.dev.migrate import split_statements

    statements = [
        *split_statements((_SQL_DIR / "local_bootstrap.sql").read_text()),
        *split_statements((_SQL_DIR / "local_cluster.sql").read_text()),
    ]
    # Two first starts at once (serve and a worker) take turns; the bootstrap is idempotent.
    with psycopg.connect(cluster.url(), autocommit=True) as lock:
        lock.execute("select pg_advisory_lock(%s)", (_SETUP_LOCK,))
        for dbname in ("template1", "postgres"):
            with psycopg.connect(cluster.url(dbname), autocommit=True) as conn, conn.transaction():
                for statement in statements:
                    conn.execute(statement.encode())
        lock.execute(
            sql.SQL("alter role {} with login password {}").format(
                sql.Identifier(SERVICE_ROLE_LOGIN), sql.Literal(SERVICE_ROLE_PASSWORD)
            )
        )
        lock.execute(
            sql.SQL("alter database postgres owner to {}").format(
                sql.Identifier(SERVICE_ROLE_LOGIN)
            )
        )
        _write_marker(cluster, "ready")
    log.info("local cluster set up like a hosted Supabase database")


def is_running(cluster: Cluster) -> bool:
    if not (cluster.data_dir / "PG_VERSION").exists():
        return False
    result = _run(
        cluster,
        [str(cluster.bindir / "pg_ctl"), "status", "-D", str(cluster.data_dir)],
        check=False,
    )
    return result.returncode == 0


def _wait_ready(cluster: Cluster, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(cluster.url(), connect_timeout=2):
                return
        except psycopg.OperationalError as exc:
            if time.monotonic() > deadline:
                raise ConfigError(f"local cluster did not accept connections: {exc}") from exc
            time.sleep(0.2)


def start(cluster: Cluster) -> bool:
    """Start the cluster (creating it first if needed). Returns True if it was started now."""
    init(cluster)
    started = False
    if not is_running(cluster):
        if _port_in_use(cluster.port):
            legacy = LOCAL_DIR / "pg"
            hint = (
                f" (an older docflow cluster from this checkout, in {legacy}, may still be "
                "running: `docflow db reset` stops it and re-creates the cluster)"
                if legacy != cluster.root and (legacy / "data" / "postmaster.pid").exists()
                else ""
            )
            raise ConfigError(
                f"port {cluster.port} is taken by another server (another checkout's cluster?): "
                f"stop it, or set LOCAL_PG_PORT to a free port{hint}"
            )
        _pg_ctl(cluster, "start", "-t", "60")
        _wait_ready(cluster)
        log.info(
            "started local cluster", extra={"port": cluster.port, "data_dir": str(cluster.root)}
        )
        started = True
    if (_read_marker(cluster) or {}).get("state") != "ready":
        _set_up(cluster)
    return started


def stop_legacy(cluster: Cluster) -> Path | None:
    """Stop an older docflow's cluster of this checkout (`.local/pg`, from before the data
    moved out of the checkout for root) that would hold the port. Returns its directory."""
    legacy = Cluster(cluster.bindir, LOCAL_DIR / "pg", cluster.port, cluster.os_user)
    if legacy.root == cluster.root or not (legacy.data_dir / "postmaster.pid").exists():
        return None
    _run(
        legacy,
        [str(legacy.bindir / "pg_ctl"), "stop", "-D", str(legacy.data_dir), "-m", "fast", "-w"],
        check=False,
    )
    return legacy.root


def remove(cluster: Cluster) -> None:
    """Stop the cluster and delete its data (`docflow db reset` of an older docflow's)."""
    stop(cluster)
    if cluster.root.exists():
        shutil.rmtree(cluster.root)


def restart(cluster: Cluster) -> None:
    """Restart the running cluster (the crash harness uses it)."""
    _pg_ctl(cluster, "restart", "-m", "fast")
    _wait_ready(cluster)


def _pg_ctl(cluster: Cluster, action: str, *extra: str) -> None:
    """`pg_ctl start|restart` on our data directory, port and log file, waiting for it."""
    _run(
        cluster,
        [
            str(cluster.bindir / "pg_ctl"),
            action,
            "-D",
            str(cluster.data_dir),
            "-l",
            str(cluster.log_file),
            "-o",
            f"-p {cluster.port}",
            "-w",
            *extra,
        ],
    )


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def stop(cluster: Cluster) -> bool:
    if not is_running(cluster):
        return False
    _run(
        cluster,
        [str(cluster.bindir / "pg_ctl"), "stop", "-D", str(cluster.data_dir), "-m", "fast", "-w"],
    )
    return True


def url_for(admin_url: str, dbname: str) -> str:
    """The same server's URL for another database."""
    info = psycopg.conninfo.conninfo_to_dict(admin_url)
    info["dbname"] = dbname
    return psycopg.conninfo.make_conninfo("", **info)


def admin_url(settings: Settings) -> str:
    """DATABASE_URL when set, else the embedded cluster's superuser (started if needed)."""
    if settings.database_url:
        return settings.database_url
    cluster = cluster_for(settings)
    start(cluster)
    return cluster.url()


def service_url(admin_url: str, dbname: str) -> str:
    """The URL that migrations and the application use for a database of this server.

    On the embedded cluster that is `postgres` (not the superuser); on any other server
    (DATABASE_URL, TEST_DATABASE_URL), the same login as `admin_url`.
    """
    info = psycopg.conninfo.conninfo_to_dict(admin_url)
    if info.get("user") == SUPERUSER:
        info["user"], info["password"] = SERVICE_ROLE_LOGIN, SERVICE_ROLE_PASSWORD
    info["dbname"] = dbname
    return psycopg.conninfo.make_conninfo("", **info)


def drop_database(admin_url: str, dbname: str) -> None:
    """Drop a database (forcibly: open connections are closed) if it exists."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(dbname))
        )


def recreate_database(admin_url: str, dbname: str, template: str | None = None) -> None:
    """Drop (forcibly) and create a database on the server behind admin_url.

    On the embedded cluster the new database belongs to `postgres`, as a Supabase project's
    does; elsewhere to the admin login, which `service_url` then also uses.
    """
    drop_database(admin_url, dbname)
    create = sql.SQL("create database {}").format(sql.Identifier(dbname))
    if template:
        create += sql.SQL(" template {}").format(sql.Identifier(template))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if conn.info.user == SUPERUSER:  # the embedded cluster (service_url logs in as postgres)
            create += sql.SQL(" owner {}").format(sql.Identifier(SERVICE_ROLE_LOGIN))
        conn.execute(create)


def ensure_auth_user(database_url: str, user_id: str, email: str | None, admin: bool) -> None:
    """Create a user in the local `auth.users` when missing (what Supabase Auth does on sign-up)."""
    meta = '{"role": "admin"}' if admin else "{}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "insert into auth.users (id, email, raw_app_meta_data) values (%s, %s, %s::jsonb) "
            "on conflict (id) do nothing",
            (user_id, email, meta),
        )
