"""Row level security and privileges, under the real roles (`anon`, `authenticated`).

Two ways in: `db.as_user(user)` (what the API does: role authenticated + the user's claims), and
raw SQL on the superuser connection switched to a role for one transaction, to read the tables
directly as PostgREST would let a client do.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import psycopg
import pytest
from psycopg import sql as pgsql

from shared.platform.errors import Forbidden
from tests.support.factories import create_upload
from tests.support.rows import as_role, as_user, public_tables, row_count

PUBLIC_TABLES = {
    "documents",
    "processing_jobs",
    "document_processing_events",
    "service_health_checks",
    "alert_events",
    "analytics_rollups",
    "analytics_histograms",
    "analytics_stage_totals",
    "analytics_pending",
    "storage_deletions",
}
MONITORING_TABLES = ("document_processing_events", "service_health_checks", "alert_events")


def ids(conn: psycopg.Connection, query: str, *params: Any) -> set[str]:
    return {str(r[0]) for r in conn.execute(query, params).fetchall()}


# --- users see their own rows -------------------------------------------------------------


def test_user_reads_only_own_documents_and_jobs(db, make_user, sql):
    alice, bob, admin = make_user(), make_user(), make_user(admin=True)
    a, b = create_upload(db, alice), create_upload(db, bob)
    assert sql.execute("select count(*) from public.documents").fetchone()[0] == 2

    with as_user(sql, alice):
        assert ids(sql, "select id from public.documents") == {a["document_id"]}
        assert ids(sql, "select id from public.processing_jobs") == {a["job_id"]}
        assert ids(sql, "select id from public.documents where id = %s", b["document_id"]) == set()
        assert (
            ids(sql, "select id from public.processing_jobs where user_id = %s", bob.user_id)
            == set()
        )
    with as_user(sql, bob):
        assert ids(sql, "select id from public.documents") == {b["document_id"]}
        assert ids(sql, "select id from public.processing_jobs") == {b["job_id"]}
    with as_user(sql, admin):
        assert ids(sql, "select id from public.documents") == {a["document_id"], b["document_id"]}
        assert ids(sql, "select id from public.processing_jobs") == {a["job_id"], b["job_id"]}


def test_read_functions_return_null_for_another_users_rows(db, make_user):
    alice, bob, admin = make_user(), make_user(), make_user(admin=True)
    a, b = create_upload(db, alice), create_upload(db, bob)

    as_alice = db.as_user(alice)
    assert as_alice.call("get_job", job_id=a["job_id"])["id"] == a["job_id"]
    own = as_alice.call("get_document", document_id=a["document_id"])
    assert own["id"] == a["document_id"]
    assert own["latest_job"]["id"] == a["job_id"]
    assert as_alice.call("get_job", job_id=b["job_id"]) is None
    assert as_alice.call("get_document", document_id=b["document_id"]) is None

    as_admin = db.as_user(admin)
    assert as_admin.call("get_job", job_id=a["job_id"])["id"] == a["job_id"]
    assert as_admin.call("get_job", job_id=b["job_id"])["id"] == b["job_id"]
    assert as_admin.call("get_document", document_id=b["document_id"])["user_id"] == bob.user_id


def test_read_functions_hide_the_lease_owner_and_idempotency_key(db, make_user):
    alice = make_user()
    a = create_upload(db, alice)
    db.call("claim_jobs", worker_id="secret-worker", max_jobs=1)
    job = db.as_user(alice).call("get_job", job_id=a["job_id"])
    assert job["status"] == "processing"
    assert "lease_owner" not in job
    assert "idempotency_key" not in job
    assert "secret-worker" not in json.dumps(job)


# --- anon ---------------------------------------------------------------------------------


def test_anon_reads_nothing(db, make_user, sql):
    sql.execute(
        "insert into public.service_health_checks (service_name, status) values ('db', 'healthy')"
    )
    sql.execute(
        "insert into public.alert_events (service_name, alert_type, message)"
        " values ('db', 'service_down', 'down')"
    )
    sql.execute(
        "insert into public.document_processing_events (event_type, duration_ms)"
        " values ('completed', 5)"
    )
    a = create_upload(db, make_user())
    db.call("claim_jobs", worker_id="w", max_jobs=1)
    db.call(
        "complete_jobs",
        worker_id="w",
        completions=[{"id": a["job_id"], "attempt": 1, "result": {"timings_ms": {"reading": 2}}}],
    )
    db.call("fold_analytics")  # rollups from these, and one fact left pending
    sql.execute("insert into public.document_processing_events (event_type) values ('failed')")
    sql.execute(
        "insert into public.storage_deletions (object_path, reason) values ('u/x', 'seeded')"
    )
    tables = public_tables(sql)
    assert set(tables) >= PUBLIC_TABLES
    for table in tables:
        assert row_count(sql, table) > 0, (
            f"seed a row in {table} so that 'nothing visible' means something"
        )
        with pytest.raises(psycopg.errors.InsufficientPrivilege), as_role(sql, "anon"):
            sql.execute(pgsql.SQL("select * from public.{}").format(pgsql.Identifier(table)))
    # Nor through the read functions.
    for query, arg in (
        ("select public.get_job(%s)", a["job_id"]),
        ("select public.get_document(%s)", a["document_id"]),
        ("select public.analytics_report(%s)", "24h"),
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege), as_role(sql, "anon"):
            sql.execute(query, (arg,))


# --- monitoring and analytics tables: admins only -----------------------------------------


def _seed_monitoring(sql: psycopg.Connection, user_id: str) -> None:
    sql.execute(
        "insert into public.document_processing_events"
        " (user_id, document_id, event_type, duration_ms)"
        " values (%s, gen_random_uuid(), 'completed', 10), (%s, gen_random_uuid(), 'failed', 7)",
        (user_id, user_id),
    )
    sql.execute(
        "insert into public.service_health_checks (service_name, status)"
        " values ('database', 'healthy'), ('storage', 'down')"
    )
    sql.execute(
        "insert into public.alert_events (service_name, alert_type, status, message)"
        " values ('storage', 'service_down', 'active', 'storage is down'),"
        "        ('database', 'recovery', 'resolved', 'database is back')"
    )


def test_non_admin_sees_no_monitoring_rows_even_their_own_events(make_user, sql):
    alice, admin = make_user(), make_user(admin=True)
    _seed_monitoring(sql, alice.user_id)
    for table in MONITORING_TABLES:
        query = pgsql.SQL("select count(*) from public.{}").format(pgsql.Identifier(table))
        assert sql.execute(query).fetchone()[0] == 2
        with as_user(sql, alice):
            assert sql.execute(query).fetchone()[0] == 0, table
        with as_user(sql, admin):
            assert sql.execute(query).fetchone()[0] == 2, table


def test_non_admin_sees_no_analytics_rollups(db, make_user, sql):
    alice, admin = make_user(), make_user(admin=True)
    _seed_monitoring(sql, alice.user_id)
    db.call("fold_analytics")
    sql.execute("insert into public.document_processing_events (event_type) values ('failed')")
    for table in ("analytics_rollups", "analytics_histograms", "analytics_pending"):
        query = pgsql.SQL("select count(*) from public.{}").format(pgsql.Identifier(table))
        total = sql.execute(query).fetchone()[0]
        assert total > 0, table
        with as_user(sql, alice):
            assert sql.execute(query).fetchone()[0] == 0, table
        with as_user(sql, admin):
            assert sql.execute(query).fetchone()[0] == total, table
        with pytest.raises(psycopg.errors.InsufficientPrivilege), as_user(sql, admin):
            sql.execute(pgsql.SQL("delete from public.{}").format(pgsql.Identifier(table)))


def test_analytics_report_shows_nothing_to_a_non_admin(db, make_user, sql):
    alice, admin = make_user(), make_user(admin=True)
    _seed_monitoring(sql, alice.user_id)
    assert db.as_user(alice).call("analytics_report", window_name="1h")["event_counts"] == {}
    assert db.as_user(admin).call("analytics_report", window_name="1h")["event_counts"] == {
        "completed": 1,
        "failed": 1,
    }
    db.call("fold_analytics")  # the same from the rollups
    assert db.as_user(alice).call("analytics_report", window_name="1h")["event_counts"] == {}
    assert db.as_user(admin).call("analytics_report", window_name="1h")["event_counts"] == {
        "completed": 1,
        "failed": 1,
    }


def test_event_counts_function_shows_nothing_to_a_non_admin(db, make_user, sql):
    alice, admin = make_user(), make_user(admin=True)
    _seed_monitoring(sql, alice.user_id)
    assert db.as_user(alice).call("analytics_event_counts")["event_counts"] == {}
    assert db.as_user(admin).call("analytics_event_counts")["event_counts"] == {
        "completed": 1,
        "failed": 1,
    }


# --- service functions are service-only --------------------------------------------------


def _service_calls(user_id: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        (
            "create_upload",
            {
                "user_id": user_id,
                "original_filename": "x.txt",
                "content_type": "text/plain",
                "size_bytes": 1,
                "sha256": "0" * 64,
                "storage_path": f"{user_id}/x",
            },
        ),
        ("claim_jobs", {"worker_id": "w", "max_jobs": 10}),
        ("complete_job", {"job_id": str(uuid.uuid4()), "worker_id": "w", "attempt": 1}),
        (
            "fail_job",
            {
                "job_id": str(uuid.uuid4()),
                "worker_id": "w",
                "attempt": 1,
                "error_code": "boom",
                "error_message": "boom",
            },
        ),
        ("record_events", {"events": [{"event_type": "completed", "user_id": user_id}]}),
    ]


SERVICE_FUNCTIONS = ["create_upload", "claim_jobs", "complete_job", "fail_job", "record_events"]


def test_authenticated_cannot_execute_service_functions(db, make_user, sql):
    user, admin = make_user(), make_user(admin=True)
    create_upload(db, user)  # a pending job a claim could take
    allowed = []
    for caller in (user, admin):
        for fn, params in _service_calls(caller.user_id):
            try:
                db.as_user(caller).call(fn, **params)
            except Forbidden:
                continue
            allowed.append((fn, caller))
    assert allowed == []
    executable = sql.execute(
        "select r.rolname, p.proname from pg_proc p"
        " cross join (values ('anon'), ('authenticated')) as r(rolname)"
        " where p.pronamespace = 'public'::regnamespace and p.proname = any(%s)"
        "   and has_function_privilege(r.rolname, p.oid, 'execute')",
        (SERVICE_FUNCTIONS,),
    ).fetchall()
    assert executable == []
    # Nothing happened behind the refusals.
    counts = sql.execute(
        "select (select count(*) from public.documents),"
        "       (select count(*) from public.processing_jobs where status = 'pending'),"
        "       (select count(*) from public.document_processing_events)"
    ).fetchone()
    assert counts == (1, 1, 1)


def test_api_roles_cannot_execute_service_functions_in_sql(make_user, sql):
    user = make_user()
    names = []
    for fn, params in _service_calls(user.user_id):
        names.append(fn)
        args = pgsql.SQL(", ").join(
            pgsql.SQL("{} => {}").format(pgsql.Identifier(k), pgsql.Placeholder(k)) for k in params
        )
        query = pgsql.SQL("select public.{}({})").format(pgsql.Identifier(fn), args)
        values = {
            k: psycopg.types.json.Jsonb(v) if isinstance(v, list) else v for k, v in params.items()
        }
        for role, claims in (("anon", None), ("authenticated", user.claims)):
            # Refused at the function itself, not later by a table privilege inside it.
            with (
                pytest.raises(psycopg.errors.InsufficientPrivilege, match=f"function {fn}"),
                as_role(sql, role, claims),
            ):
                sql.execute(query, values)
        # The service role itself may: the refusal is about the caller, not the call.
        # (complete/fail of an unknown job answer the function's own DF409: it ran.)
        try:
            with as_role(sql, "service_role"):
                sql.execute(query, values)
        except psycopg.Error as exc:
            assert exc.sqlstate == "DF409", (fn, exc)
    assert names == SERVICE_FUNCTIONS


def test_api_roles_cannot_reach_the_private_event_logger(sql, make_user):
    user = make_user()
    for role, claims in (("anon", None), ("authenticated", user.claims)):
        with pytest.raises(psycopg.errors.InsufficientPrivilege), as_role(sql, role, claims):
            sql.execute("select docflow_private.log_events('[]'::jsonb)")
        assert not sql.execute(
            "select has_function_privilege(%s, 'docflow_private.log_events(jsonb)', 'execute')",
            (role,),
        ).fetchone()[0]


# --- no direct writes -------------------------------------------------------------------------


def test_authenticated_cannot_write_documents_or_jobs_directly(db, make_user, sql):
    alice = make_user()
    a = create_upload(db, alice)
    snapshot = (
        "select (select jsonb_agg(to_jsonb(d) order by id) from public.documents d),"
        "       (select jsonb_agg(to_jsonb(j) order by id) from public.processing_jobs j)"
    )
    before = sql.execute(snapshot).fetchone()
    attempts = [
        (
            "insert into public.documents"
            " (user_id, original_filename, content_type, size_bytes, sha256, storage_path)"
            " values (%s, 'x.txt', 'text/plain', 1, %s, %s)",
            (alice.user_id, "0" * 64, f"{alice.user_id}/mine"),
        ),
        (
            "update public.documents set original_filename = 'hacked' where id = %s",
            (a["document_id"],),
        ),
        ("delete from public.documents where id = %s", (a["document_id"],)),
        (
            "insert into public.processing_jobs (document_id, user_id, status)"
            " values (%s, %s, 'completed')",
            (a["document_id"], alice.user_id),
        ),
        (
            "update public.processing_jobs set status = 'completed', progress = 100 where id = %s",
            (a["job_id"],),
        ),
        ("delete from public.processing_jobs where id = %s", (a["job_id"],)),
        ("truncate public.processing_jobs", ()),
    ]
    for query, params in attempts:
        with pytest.raises(psycopg.errors.InsufficientPrivilege), as_user(sql, alice):
            sql.execute(query, params)
    assert sql.execute(snapshot).fetchone() == before


def test_every_public_table_has_rls_enabled(sql):
    tables = public_tables(sql)
    assert set(tables) >= PUBLIC_TABLES
    assert sorted(name for name, enabled in tables.items() if not enabled) == []


# --- storage ------------------------------------------------------------------------------


def test_storage_objects_readable_only_under_own_folder(make_user, sql):
    alice, bob = make_user(), make_user()
    sql.execute("insert into storage.buckets (id, name) values ('other', 'other')")
    sql.execute(
        "insert into storage.objects (bucket_id, name) values"
        " ('documents', %(a)s || '/one.pdf'), ('documents', %(a)s || '/two.txt'),"
        " ('documents', %(b)s || '/three.pdf'),"
        " ('other', %(a)s || '/elsewhere.pdf'),"
        " ('documents', 'loose.pdf')",
        {"a": alice.user_id, "b": bob.user_id},
    )
    query = "select bucket_id || ':' || name from storage.objects"
    assert len(ids(sql, query)) == 5

    with as_user(sql, alice):
        assert ids(sql, query) == {
            f"documents:{alice.user_id}/one.pdf",
            f"documents:{alice.user_id}/two.txt",
        }
    with as_user(sql, bob):
        assert ids(sql, query) == {f"documents:{bob.user_id}/three.pdf"}
    with pytest.raises(psycopg.errors.InsufficientPrivilege), as_role(sql, "anon"):
        sql.execute(query)


def test_storage_insert_only_under_own_folder(make_user, sql):
    alice, bob = make_user(), make_user()
    insert = "insert into storage.objects (bucket_id, name) values ('documents', %s)"
    with as_user(sql, alice):
        sql.execute(insert, (f"{alice.user_id}/mine.pdf",))
        assert ids(sql, "select name from storage.objects") == {f"{alice.user_id}/mine.pdf"}
    with pytest.raises(psycopg.errors.InsufficientPrivilege), as_user(sql, alice):
        sql.execute(insert, (f"{bob.user_id}/planted.pdf",))
    with pytest.raises(psycopg.errors.InsufficientPrivilege), as_user(sql, alice):
        sql.execute(insert, ("top-level.pdf",))
