"""The API roles' effective privileges, read from the catalog, against a hand-written allowlist.

`anon` and `authenticated` are the roles PostgREST (and Realtime) switch to for a client's
request. Everything they may do is listed below, object by object, with the reason: the RLS
policies decide which rows, these privileges decide which objects and operations at all. The
test reads what the roles can effectively do in the migrated database (`has_*_privilege`:
direct grants, grants to PUBLIC and inherited ones alike) on every table, view, sequence,
function and schema of `public` and `docflow_private`, and fails

- when a role can do something the allowlist does not grant (a new grant, a default privilege,
  a forgotten revoke),
- when an allowlisted privilege is missing (a revoke too many breaks the API), and
- when an object exists that the allowlist does not list, or the other way round: a new object
  must be added here on purpose, even when the API roles get nothing on it.

It is not a snapshot of the catalog: every entry was written by hand, with its reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import psycopg
import pytest
from psycopg import sql as pgsql

ROLES = ("anon", "authenticated")
SCHEMAS = ("public", "docflow_private")
TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
COLUMN_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "REFERENCES")
SEQUENCE_PRIVILEGES = ("USAGE", "SELECT", "UPDATE")
SCHEMA_PRIVILEGES = ("USAGE", "CREATE")


@dataclass(frozen=True)
class Allowed:
    """What `anon` and `authenticated` may do on one object, and why."""

    reason: str
    anon: frozenset[str] = field(default_factory=frozenset)
    authenticated: frozenset[str] = field(default_factory=frozenset)


def reads(reason: str) -> Allowed:
    """SELECT for `authenticated` only; the policy narrows the rows."""
    return Allowed(reason, authenticated=frozenset({"SELECT"}))


def calls(reason: str) -> Allowed:
    """EXECUTE for `authenticated` only."""
    return Allowed(reason, authenticated=frozenset({"EXECUTE"}))


def nothing(reason: str) -> Allowed:
    return Allowed(reason)


ADMIN_POLICY = "admins only, by its SELECT policy (app_metadata.role = admin)"
SERVICE_ONLY = "service-only: written and read through service_role functions"
TRANSITION = "a queue or alert transition: service_role only"
PRIVATE = "internal helper in docflow_private: no API role may call it"

SCHEMA_ALLOWLIST: dict[str, Allowed] = {
    "public": Allowed(
        "PostgREST resolves the API's tables and functions in public; no API role creates there",
        anon=frozenset({"USAGE"}),
        authenticated=frozenset({"USAGE"}),
    ),
    "docflow_private": nothing("internal helpers, reached only through public functions"),
}

TABLE_ALLOWLIST: dict[str, Allowed] = {
    "public.documents": reads(
        "users read their own documents, admins all (documents_select_own_or_admin):"
        " get_document, PostgREST and Realtime read it as the caller"
    ),
    "public.processing_jobs": reads(
        "users read their own jobs, admins all (processing_jobs_select_own_or_admin):"
        " get_job, list_jobs, queue_health and Realtime read it as the caller"
    ),
    "public.document_processing_events": reads(
        f"lifecycle events, {ADMIN_POLICY}: analytics_report's top errors and"
        " analytics_event_counts read them as the caller"
    ),
    "public.service_health_checks": reads(
        f"probe results, {ADMIN_POLICY}: services_overview reads them as the caller"
    ),
    "public.alert_events": reads(
        f"alerts, {ADMIN_POLICY}: list_alerts and services_overview read them as the caller"
    ),
    "public.analytics_rollups": reads(
        f"analytics counts, {ADMIN_POLICY}: analytics_report reads them as the caller"
    ),
    "public.analytics_histograms": reads(
        f"analytics histograms, {ADMIN_POLICY}: analytics_report reads them as the caller"
    ),
    "public.analytics_stage_totals": reads(
        f"analytics stage totals, {ADMIN_POLICY}: analytics_report reads them as the caller"
    ),
    "public.analytics_pending": reads(
        f"facts not folded yet, {ADMIN_POLICY}: analytics_report adds them to the rollups"
    ),
    "public.job_status_counts": reads(
        f"job counts per status and priority, {ADMIN_POLICY}: queue_health reads them as the caller"
    ),
    "public.storage_deletions": nothing(
        f"{SERVICE_ONLY} (the retention's queue of files to delete; no policy)"
    ),
    "docflow_private.rate_buckets": nothing(
        "the per-user enqueue token buckets: written by enqueue_guard, read by"
        " upload_rate_check, both as service_role; no policy"
    ),
}

# Column-level grants beyond the table-level ones above: none.
COLUMN_ALLOWLIST: dict[str, Allowed] = {}

SEQUENCE_ALLOWLIST: dict[str, Allowed] = {
    f"public.{name}_id_seq": nothing(f"identity of {name}: only service functions insert")
    for name in (
        "document_processing_events",
        "service_health_checks",
        "alert_events",
        "analytics_pending",
        "storage_deletions",
        "job_status_counts",
    )
}

FUNCTION_ALLOWLIST: dict[str, Allowed] = {
    # What a signed-in user calls (RLS on the tables decides what comes back).
    "public.get_job(uuid)": calls("GET /jobs/{id}: reads processing_jobs as the caller"),
    "public.get_document(uuid)": calls("GET /documents/{id}: reads documents as the caller"),
    "public.list_jobs(text, integer, timestamp with time zone, uuid)": calls(
        "GET /jobs: the caller's jobs, keyset-paginated, as the caller"
    ),
    # Admin reads: SECURITY INVOKER, so a non-admin gets nothing back.
    "public.analytics_event_counts(integer, timestamp with time zone)": calls(
        "admin event counts; reads document_processing_events as the caller"
    ),
    "public.analytics_report(text, timestamp with time zone)": calls(
        "GET /admin/analytics: reads the rollups and pending facts as the caller"
    ),
    "public.list_alerts(text, integer)": calls("admin alert list, as the caller"),
    "public.queue_health("
    "integer, double precision, double precision, integer, integer, integer, integer,"
    " timestamp with time zone)": calls("admin queue health, as the caller"),
    "public.services_overview(timestamp with time zone)": calls(
        "admin service overview, as the caller"
    ),
    # Immutable helpers analytics_report (SECURITY INVOKER) calls with the admin's rights.
    "public.analytics_bucket(double precision)": calls(
        "histogram bucket of a value: analytics_report and fold_analytics"
    ),
    "public.analytics_bucket_value(integer)": calls(
        "a histogram bucket's midpoint: analytics_report"
    ),
    "public.analytics_stage_times(jsonb)": calls(
        "stage timings of a pending fact: analytics_report and fold_analytics"
    ),
    # Service-only: the queue, the pipeline, monitoring, analytics and retention writes.
    **{
        signature: nothing(TRANSITION)
        for signature in (
            "public.create_upload(uuid, text, text, bigint, text, text, text, text, integer,"
            " jsonb, integer, integer, timestamp with time zone)",
            "public.enqueue_jobs(jsonb, text, timestamp with time zone)",
            "public.claim_jobs(text, integer, integer, timestamp with time zone)",
            "public.heartbeat_jobs(text, jsonb, integer, timestamp with time zone)",
            "public.complete_job(uuid, text, integer, jsonb, timestamp with time zone)",
            "public.complete_jobs(text, jsonb, timestamp with time zone)",
            "public.fail_job(uuid, text, integer, text, text, boolean, double precision,"
            " double precision, double precision, double precision, timestamp with time zone)",
            "public.fail_jobs(text, jsonb, double precision, double precision, double precision,"
            " double precision, timestamp with time zone)",
            "public.release_jobs(text, jsonb, timestamp with time zone)",
            "public.recover_stalled_jobs(integer, timestamp with time zone)",
            "public.cancel_job(uuid, timestamp with time zone)",
            "public.retry_job(uuid, integer, integer, integer, timestamp with time zone)",
            "public.reanalyze_document("
            "uuid, jsonb, integer, integer, integer, integer, timestamp with time zone)",
            "public.set_document_text(uuid, text, text, timestamp with time zone)",
            "public.record_events(jsonb)",
            "public.record_health_check(text, text, integer, text, jsonb, integer, integer,"
            " timestamp with time zone)",
            "public.due_notifications(integer, timestamp with time zone)",
            "public.mark_notified(jsonb, timestamp with time zone)",
            "public.acknowledge_alert(bigint, timestamp with time zone)",
            "public.resolve_alert(bigint, timestamp with time zone)",
        )
    },
    "public.upload_rate_check(uuid, integer, integer, text, timestamp with time zone)": nothing(
        "the uploads function's rate-limit pre-check before it reads content: service_role only"
    ),
    "public.ping(timestamp with time zone)": nothing("the database probe: service_role only"),
    "public.fold_analytics()": nothing("moves pending facts into the rollups: service_role only"),
    "public.retention_delete(text, integer, integer, boolean, timestamp with time zone,"
    " timestamp with time zone)": nothing("retention: service_role only"),
    "public.storage_deletions_batch(integer)": nothing(f"retention's file queue: {SERVICE_ONLY}"),
    "public.storage_deletions_done(jsonb)": nothing(f"retention's file queue: {SERVICE_ONLY}"),
    "public.storage_deletions_count()": nothing(f"retention's file queue: {SERVICE_ONLY}"),
    **{
        signature: nothing(PRIVATE)
        for signature in (
            "docflow_private.log_events(jsonb)",
            "docflow_private.claim_rows(text, integer, integer, timestamp with time zone)",
            "docflow_private.complete_rows(text, jsonb, timestamp with time zone)",
            "docflow_private.enqueue_guard(uuid, integer, integer, timestamp with time zone)",
            "docflow_private.rate_bucket_level(double precision, timestamp with time zone,"
            " integer, integer, timestamp with time zone)",
            "docflow_private.rate_bucket_refuse(double precision, timestamp with time zone,"
            " integer, integer, timestamp with time zone)",
            "docflow_private.user_exists(uuid)",
            "docflow_private.notify_jobs()",
            "docflow_private.record_analytics_facts()",
            "docflow_private.queue_document_files()",
            "docflow_private.prune_rollups(integer, integer, boolean, timestamp with time zone)",
            "docflow_private.count_job_statuses()",
            "docflow_private.fold_job_status_counts()",
        )
    },
}


# --- reading the catalog ----------------------------------------------------------------------

Grant = tuple[str, str, str, str]  # (kind, object, role, privilege)


def _table_privileges(conn: psycopg.Connection) -> list[str]:
    """The table privileges this server has (MAINTAIN from PostgreSQL 17)."""
    row = conn.execute("select current_setting('server_version_num')::integer").fetchone()
    assert row is not None
    return [*TABLE_PRIVILEGES, *(("MAINTAIN",) if row[0] >= 170000 else ())]


def catalog_objects(conn: psycopg.Connection) -> dict[str, set[str]]:
    """Every schema, relation (table, view, sequence...) and function of SCHEMAS, by kind."""
    schemas = list(SCHEMAS)
    relations = conn.execute(
        "select c.relkind, format('%%I.%%I', n.nspname, c.relname)"
        "  from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = any(%s) and c.relkind in ('r', 'p', 'v', 'm', 'f', 'S')",
        (schemas,),
    ).fetchall()
    functions = conn.execute(
        "select format('%%s.%%s(%%s)', n.nspname, p.proname, oidvectortypes(p.proargtypes))"
        "  from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
        " where n.nspname = any(%s)",
        (schemas,),
    ).fetchall()
    return {
        "schema": set(schemas),
        "table": {name for kind, name in relations if kind != "S"},
        "sequence": {name for kind, name in relations if kind == "S"},
        "function": {name for (name,) in functions},
    }


def effective_grants(conn: psycopg.Connection) -> set[Grant]:
    """What `anon` and `authenticated` can effectively do, from the catalog."""
    schemas, roles = list(SCHEMAS), list(ROLES)
    grants: set[Grant] = set()
    queries = (
        (
            "schema",
            "select n.nspname, r.role, p.priv from pg_namespace n"
            " cross join unnest(%(roles)s::text[]) r(role)"
            " cross join unnest(%(privs)s::text[]) p(priv)"
            " where n.nspname = any(%(schemas)s) and has_schema_privilege(r.role, n.oid, p.priv)",
            list(SCHEMA_PRIVILEGES),
        ),
        (
            "table",
            "select format('%%I.%%I', n.nspname, c.relname), r.role, p.priv"
            "  from pg_class c join pg_namespace n on n.oid = c.relnamespace"
            " cross join unnest(%(roles)s::text[]) r(role)"
            " cross join unnest(%(privs)s::text[]) p(priv)"
            " where n.nspname = any(%(schemas)s) and c.relkind in ('r', 'p', 'v', 'm', 'f')"
            "   and has_table_privilege(r.role, c.oid, p.priv)",
            _table_privileges(conn),
        ),
        (
            # Column privileges held without the table-level one: column-level grants.
            "column",
            "select format('%%I.%%I.%%I', n.nspname, c.relname, a.attname), r.role, p.priv"
            "  from pg_class c join pg_namespace n on n.oid = c.relnamespace"
            "  join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped"
            " cross join unnest(%(roles)s::text[]) r(role)"
            " cross join unnest(%(privs)s::text[]) p(priv)"
            " where n.nspname = any(%(schemas)s) and c.relkind in ('r', 'p', 'v', 'm', 'f')"
            "   and has_column_privilege(r.role, c.oid, a.attnum, p.priv)"
            "   and not has_table_privilege(r.role, c.oid, p.priv)",
            list(COLUMN_PRIVILEGES),
        ),
        (
            "sequence",
            "select format('%%I.%%I', n.nspname, c.relname), r.role, p.priv"
            "  from pg_class c join pg_namespace n on n.oid = c.relnamespace"
            " cross join unnest(%(roles)s::text[]) r(role)"
            " cross join unnest(%(privs)s::text[]) p(priv)"
            " where n.nspname = any(%(schemas)s) and c.relkind = 'S'"
            "   and has_sequence_privilege(r.role, c.oid, p.priv)",
            list(SEQUENCE_PRIVILEGES),
        ),
        (
            "function",
            "select format('%%s.%%s(%%s)', n.nspname, p.proname, oidvectortypes(p.proargtypes)),"
            "       r.role, 'EXECUTE'"
            "  from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
            " cross join unnest(%(roles)s::text[]) r(role)"
            " where n.nspname = any(%(schemas)s)"
            "   and has_function_privilege(r.role, p.oid, 'EXECUTE')",
            ["EXECUTE"],
        ),
    )
    for kind, query, privileges in queries:
        rows = conn.execute(
            query, {"roles": roles, "privs": privileges, "schemas": schemas}
        ).fetchall()
        grants |= {(kind, name, role, privilege) for name, role, privilege in rows}
    return grants


ALLOWLISTS: dict[str, Mapping[str, Allowed]] = {
    "schema": SCHEMA_ALLOWLIST,
    "table": TABLE_ALLOWLIST,
    "column": COLUMN_ALLOWLIST,
    "sequence": SEQUENCE_ALLOWLIST,
    "function": FUNCTION_ALLOWLIST,
}


def allowed_grants() -> set[Grant]:
    return {
        (kind, name, role, privilege)
        for kind, allowlist in ALLOWLISTS.items()
        for name, allowed in allowlist.items()
        for role in ROLES
        for privilege in getattr(allowed, role)
    }


@dataclass(frozen=True)
class Differences:
    granted_not_allowed: list[Grant]
    allowed_not_granted: list[Grant]
    unlisted_objects: list[tuple[str, str]]
    listed_but_missing: list[tuple[str, str]]

    def empty(self) -> bool:
        return not (
            self.granted_not_allowed
            or self.allowed_not_granted
            or self.unlisted_objects
            or self.listed_but_missing
        )


def compare(conn: psycopg.Connection) -> Differences:
    actual, allowed = effective_grants(conn), allowed_grants()
    objects = catalog_objects(conn)
    listed = {kind: set(ALLOWLISTS[kind]) for kind in objects}
    return Differences(
        granted_not_allowed=sorted(actual - allowed),
        allowed_not_granted=sorted(allowed - actual),
        unlisted_objects=sorted((k, n) for k in objects for n in objects[k] - listed[k]),
        listed_but_missing=sorted((k, n) for k in objects for n in listed[k] - objects[k]),
    )


# --- the tests --------------------------------------------------------------------------------


def test_every_allowlist_entry_has_a_reason():
    for kind, allowlist in ALLOWLISTS.items():
        for name, allowed in allowlist.items():
            assert len(allowed.reason.strip()) > 10, (kind, name)
            assert allowed.anon <= {"SELECT", "USAGE", "EXECUTE"}, (kind, name)


def test_api_roles_have_exactly_the_allowlisted_privileges(sql):
    differences = compare(sql)
    assert differences.granted_not_allowed == [], "granted but not in the allowlist"
    assert differences.allowed_not_granted == [], "allowlisted but missing"
    assert differences.unlisted_objects == [], "new objects: add them to the allowlist"
    assert differences.listed_but_missing == [], "allowlisted objects that no longer exist"


def test_anon_gets_nothing_but_the_schema(sql):
    """Stated on its own, whatever the allowlist says: no table, sequence or function."""
    anon = sorted(g for g in effective_grants(sql) if g[2] == "anon")
    assert anon == [("schema", "public", "anon", "USAGE")]


def test_the_comparison_catches_an_extra_grant_a_missing_one_and_a_new_object(sql):
    """The check itself: each kind of drift is reported."""
    assert compare(sql).empty()
    with sql.transaction(force_rollback=True):
        sql.execute("grant trigger on public.processing_jobs to authenticated")
        sql.execute("grant update (status) on public.processing_jobs to authenticated")
        sql.execute("grant usage on sequence public.alert_events_id_seq to anon")
        sql.execute("grant execute on function public.ping(timestamp with time zone) to public")
        sql.execute("revoke select on public.documents from authenticated")
        sql.execute("create table public.scratch_new_table (id integer)")
        differences = compare(sql)
    assert ("table", "public.processing_jobs", "authenticated", "TRIGGER") in (
        differences.granted_not_allowed
    )
    assert ("column", "public.processing_jobs.status", "authenticated", "UPDATE") in (
        differences.granted_not_allowed
    )
    assert ("sequence", "public.alert_events_id_seq", "anon", "USAGE") in (
        differences.granted_not_allowed
    )
    for role in ROLES:
        assert ("function", "public.ping(timestamp with time zone)", role, "EXECUTE") in (
            differences.granted_not_allowed
        )
    assert differences.allowed_not_granted == [
        ("table", "public.documents", "authenticated", "SELECT")
    ]
    assert ("table", "public.scratch_new_table") in differences.unlisted_objects
    assert compare(sql).empty()


def _set_role(conn: psycopg.Connection, role: str) -> None:
    conn.execute(pgsql.SQL("set local role {}").format(pgsql.Identifier(role)))


def test_authenticated_cannot_attach_a_trigger_to_processing_jobs(sql):
    """The attack of issue 13: a pg_temp trigger function on processing_jobs would run as
    service_role when the worker writes the table. The function can be created (any role may
    use pg_temp); attaching it is refused."""
    create_function = (
        "create function pg_temp.spy() returns trigger language plpgsql"
        " as $$ begin return new; end $$"
    )
    create_trigger = (
        "create trigger spy before update on public.processing_jobs"
        " for each row execute function pg_temp.spy()"
    )
    with sql.transaction(force_rollback=True):
        _set_role(sql, "authenticated")
        sql.execute(create_function)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            sql.execute(create_trigger)
    # The same statements are valid: a role holding TRIGGER (service_role) may.
    with sql.transaction(force_rollback=True):
        _set_role(sql, "service_role")
        sql.execute(create_function)
        sql.execute(create_trigger)


def _migration_role(conn: psycopg.Connection) -> str:
    row = conn.execute(
        "select relowner::regrole::text from pg_class"
        " where oid = 'public.processing_jobs'::regclass"
    ).fetchone()
    assert row is not None
    return str(row[0])


def test_objects_the_migration_role_creates_later_give_api_roles_nothing(sql):
    """The migration role's default privileges in public no longer grant the API roles
    anything on new tables, views and sequences (functions: PUBLIC keeps PostgreSQL's built-in
    EXECUTE, which every function migration revokes, and the allowlist test catches)."""
    with sql.transaction(force_rollback=True):
        _set_role(sql, _migration_role(sql))
        sql.execute("create table public.scratch_later (id bigint generated always as identity)")
        sql.execute("create view public.scratch_later_view as select id from public.scratch_later")
        sql.execute("create sequence public.scratch_later_seq")
        sql.execute("reset role")
        rows = sql.execute(
            "select c.relname, r.role, p.priv"
            "  from pg_class c"
            " cross join unnest(array['anon', 'authenticated']) r(role)"
            " cross join unnest(array['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE',"
            "                          'REFERENCES', 'TRIGGER']) p(priv)"
            " where c.relname in ('scratch_later', 'scratch_later_view')"
            "   and c.relnamespace = 'public'::regnamespace"
            "   and has_table_privilege(r.role, c.oid, p.priv)"
            " union all "
            "select c.relname, r.role, p.priv"
            "  from pg_class c"
            " cross join unnest(array['anon', 'authenticated']) r(role)"
            " cross join unnest(array['USAGE', 'SELECT', 'UPDATE']) p(priv)"
            " where c.relname in ('scratch_later_seq', 'scratch_later_id_seq')"
            "   and c.relnamespace = 'public'::regnamespace"
            "   and has_sequence_privilege(r.role, c.oid, p.priv)"
        ).fetchall()
        service = sql.execute(
            "select has_table_privilege('service_role', 'public.scratch_later', 'SELECT')"
        ).fetchone()
    assert rows == []
    assert service == (True,)  # the service role keeps Supabase's defaults
