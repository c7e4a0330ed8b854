"""The one database client: every operation is a SQL function called by name.

Two transports behind one interface:
- `PostgresTransport`: direct Postgres (psycopg 3 with a connection pool), e.g. DATABASE_URL
  pointing at the Supavisor pooler, or the embedded local cluster.
- `RestTransport`: Supabase's REST API (PostgREST `rpc`) through supabase-py.

`make_database` builds the one the settings choose, and only that one's libraries are imported:
supabase-py, postgrest and httpx are loaded when DB_TRANSPORT=rest builds a `RestTransport`
(at start-up: `shared.platform.app`), never by importing this module.

Calls run as `service_role` unless made through `Database.as_user(user)`, which runs them under
the caller's JWT claims (`role authenticated`, `request.jwt.claims`, as PostgREST does) so that
the database's RLS decides what the user sees. Database and HTTP errors are translated here
into docflow's exceptions (`shared.platform.errors`).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool, PoolTimeout

from shared.platform.config import Settings, get_settings
from shared.platform.errors import DocflowError, Unauthorized, Unavailable, from_sqlstate
from shared.platform.log import get_logger

if TYPE_CHECKING:
    import httpx

log = get_logger("client")

_IDENT = re.compile(r"[a-z_][a-z0-9_]{0,62}")
# PostgREST's "cannot reach the database / schema cache not ready", and gateway errors
# (postgrest-py reports a non-JSON error body with the HTTP status as its code).
_REST_UNAVAILABLE = {"PGRST000", "PGRST001", "PGRST002", "PGRST003", "502", "503", "504"}


@dataclass(frozen=True)
class UserContext:
    """A verified caller: the raw access token (for REST) and its claims (for direct SQL)."""

    token: str
    claims: Mapping[str, Any] = field(repr=False)

    @property
    def user_id(self) -> str:
        return str(self.claims["sub"])

    @property
    def is_admin(self) -> bool:
        app_metadata = self.claims.get("app_metadata") or {}
        return isinstance(app_metadata, Mapping) and app_metadata.get("role") == "admin"

    def __repr__(self) -> str:  # never print the token
        return f"UserContext(user_id={self.claims.get('sub')!r}, admin={self.is_admin})"


class Transport(Protocol):
    def call(self, fn: str, params: Mapping[str, Any], user: UserContext | None) -> Any: ...

    def close(self) -> None: ...


def _check_names(fn: str, params: Mapping[str, Any]) -> None:
    for name in (fn, *params):
        if not _IDENT.fullmatch(name):
            raise ValueError(f"not a valid SQL function or parameter name: {name!r}")


# The settings that `ALTER ROLE authenticated [IN DATABASE ...] SET ...` gives the role
# (statement_timeout 8s on Supabase), database-specific ones last so that they win. A SET ROLE
# does not apply them, so user calls do, per transaction, as PostgREST does for the role it
# impersonates. Only settings any user may change (context 'user').
_ROLE_SETTINGS = """
select split_part(c, '=', 1), substr(c, strpos(c, '=') + 1)
  from pg_catalog.pg_db_role_setting s
 cross join lateral unnest(s.setconfig) as c
  join pg_catalog.pg_settings p on p.name = split_part(c, '=', 1) and p.context = 'user'
 where s.setrole = to_regrole('authenticated')
   and s.setdatabase in (0, (select oid from pg_catalog.pg_database
                              where datname = current_database()))
 order by s.setdatabase
"""


class PostgresTransport:
    """Direct SQL: `select public.fn(a => $1, ...)`, one statement per call.

    Service calls are one autocommit statement (one round trip) as `service_role`, set once per
    connection (DB_SET_SERVICE_ROLE), or as the login role itself. User calls run in a
    transaction that first switches to `authenticated` with the caller's claims and that role's
    own settings (its statement_timeout among them, read once per client: a changed role
    setting applies after a restart, as PostgREST needs a schema reload), all sent in one
    pipeline; the switch is transaction-local, so it never outlives the call.
    """

    def __init__(self, conninfo: str, settings: Settings) -> None:
        set_role = settings.db_set_service_role

        def configure(conn: psycopg.Connection[Any]) -> None:
            if set_role:
                conn.execute("set role service_role")

        self._pool = ConnectionPool(
            conninfo,
            min_size=settings.db_pool_min,
            max_size=settings.db_pool_max,
            timeout=settings.db_connect_timeout,
            kwargs={
                "autocommit": True,
                "prepare_threshold": 5 if settings.db_prepared_statements else None,
                "connect_timeout": max(1, int(settings.db_connect_timeout)),
                "application_name": "docflow",
            },
            configure=configure,
            open=False,
            name="docflow",
        )
        self._opened = False
        self._lock = threading.Lock()
        self._queries: dict[tuple[str, tuple[str, ...]], sql.Composed] = {}
        self._role_settings: dict[str, str] | None = None

    def _open(self) -> None:
        with self._lock:
            if not self._opened:
                self._pool.open(wait=False)
                self._opened = True

    def _query(self, fn: str, names: tuple[str, ...]) -> sql.Composed:
        key = (fn, names)
        query = self._queries.get(key)
        if query is None:
            args = sql.SQL(", ").join(
                sql.SQL("{} => {}").format(sql.Identifier(n), sql.Placeholder(n)) for n in names
            )
            query = sql.SQL("select {}.{}({})").format(
                sql.Identifier("public"), sql.Identifier(fn), args
            )
            self._queries[key] = query
        return query

    def _user_settings(self, conn: psycopg.Connection[Any]) -> dict[str, str]:
        if self._role_settings is None:
            self._role_settings = {str(k): str(v) for k, v in conn.execute(_ROLE_SETTINGS)}
        return self._role_settings

    def call(self, fn: str, params: Mapping[str, Any], user: UserContext | None) -> Any:
        _check_names(fn, params)
        self._open()
        values = {k: Jsonb(v) if isinstance(v, dict | list) else v for k, v in params.items()}
        query = self._query(fn, tuple(values))
        try:
            with self._pool.connection() as conn:
                if user is None:
                    row = conn.execute(query, values).fetchone()
                else:
                    settings = {
                        **self._user_settings(conn),
                        "role": "authenticated",
                        "request.jwt.claims": json.dumps(dict(user.claims)),
                    }
                    switch = sql.SQL("select ") + sql.SQL(", ").join(
                        sql.SQL("set_config({}, {}, true)").format(
                            sql.Literal(k), sql.Placeholder()
                        )
                        for k in settings
                    )
                    with conn.pipeline(), conn.transaction():
                        conn.execute(switch, tuple(settings.values()))
                        cur = conn.execute(query, values)
                    row = cur.fetchone()
                return row[0] if row else None
        except PoolTimeout as exc:
            raise Unavailable("database busy or unreachable", retry_after=5) from exc
        except psycopg.OperationalError as exc:
            if exc.sqlstate is None:  # connection-level failure
                raise Unavailable("database unreachable", retry_after=5) from exc
            raise self._translate(fn, exc) from exc
        except psycopg.Error as exc:
            raise self._translate(fn, exc) from exc

    @staticmethod
    def _translate(fn: str, exc: psycopg.Error) -> DocflowError:
        diag = exc.diag
        err = from_sqlstate(
            exc.sqlstate, diag.message_primary or str(exc), diag.message_hint, diag.message_detail
        )
        log_fn = log.warning if err.status < 500 else log.error
        log_fn(
            "database call failed",
            extra={"fn": fn, "sqlstate": exc.sqlstate, "db_message": diag.message_primary},
        )
        return err

    def close(self) -> None:
        with self._lock:
            if self._opened:
                self._pool.close()
                self._opened = False


class RestTransport:
    """Supabase REST: `POST {SUPABASE_URL}/rest/v1/rpc/{fn}` with supabase-py / postgrest-py.

    Service calls use the service-role key; user calls send the user's own access token, so
    PostgREST switches to `authenticated` with those claims and RLS applies.
    """

    def __init__(self, settings: Settings, http_client: httpx.Client | None = None) -> None:
        import httpx
        from postgrest import SyncPostgrestClient
        from supabase import ClientOptions, create_client

        assert settings.supabase_url and settings.supabase_service_role_key
        self._url = settings.supabase_url.rstrip("/")
        service_key = settings.supabase_service_role_key.get_secret_value()
        anon = settings.supabase_anon_key
        self._apikey = anon.get_secret_value() if anon else service_key
        self._http = http_client or httpx.Client(timeout=httpx.Timeout(10.0, connect=5.0))
        self._service = create_client(
            self._url, service_key, options=ClientOptions(postgrest_client_timeout=10)
        )
        self._postgrest_cls = SyncPostgrestClient
        self._service_rest = SyncPostgrestClient(
            f"{self._url}/rest/v1",
            headers={"apikey": service_key, "Authorization": f"Bearer {service_key}"},
            http_client=self._http,
        )

    @property
    def supabase(self) -> Any:
        """The supabase-py client (storage uses it)."""
        return self._service

    def call(self, fn: str, params: Mapping[str, Any], user: UserContext | None) -> Any:
        import httpx
        from postgrest.exceptions import APIError

        _check_names(fn, params)
        if user is None:
            rest = self._service_rest
        else:
            rest = self._postgrest_cls(
                f"{self._url}/rest/v1",
                headers={"apikey": self._apikey, "Authorization": f"Bearer {user.token}"},
                http_client=self._http,
            )
        try:
            response = rest.rpc(fn, dict(params)).execute()
        except APIError as exc:
            code = str(exc.code or "")
            log.warning("rest call failed", extra={"fn": fn, "code": code})
            if code in _REST_UNAVAILABLE:
                raise Unavailable("database API unavailable", retry_after=5) from exc
            if code.startswith("PGRST30"):  # PostgREST rejected the JWT
                raise Unauthorized("invalid access token", code="invalid_token") from exc
            raise from_sqlstate(
                code, exc.message or "request failed", exc.hint, exc.details
            ) from exc
        except httpx.TransportError as exc:
            raise Unavailable("database API unreachable", retry_after=5) from exc
        return response.data

    def close(self) -> None:
        self._http.close()


class Database:
    """`db.call("claim_jobs", worker_id=..., max_jobs=10)` -> the function's JSON result."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    def call(self, fn: str, /, **params: Any) -> Any:
        return self.transport.call(fn, params, None)

    def as_user(self, user: UserContext) -> UserScope:
        return UserScope(self, user)

    def close(self) -> None:
        self.transport.close()


@dataclass(frozen=True)
class UserScope:
    db: Database
    user: UserContext

    def call(self, fn: str, /, **params: Any) -> Any:
        return self.db.transport.call(fn, params, self.user)


def make_database(settings: Settings) -> Database:
    if settings.db_transport == "rest":
        return Database(RestTransport(settings))
    return Database(PostgresTransport(settings.effective_database_url(), settings))


_db: Database | None = None
_db_lock = threading.Lock()


def get_db() -> Database:
    """The process-wide client (one pool per function instance)."""
    global _db
    with _db_lock:
        if _db is None:
            _db = make_database(get_settings())
        return _db


def reset_db() -> None:
    global _db
    with _db_lock:
        if _db is not None:
            _db.close()
        _db = None
