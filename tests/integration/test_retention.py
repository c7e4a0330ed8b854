"""Retention against a real database, with a fixed `now`.

Rows of every kind are seeded on both sides of each cutoff (and exactly on it: a row exactly
`keep_days` old stays) through the `sql` fixture; documents get real files in the local
storage directory. Then `retention.run()` runs with `now = NOW` and the test checks, by id,
that exactly the expired rows went and every live one, every active or acknowledged alert and
every unfinished job stayed. The time budget is driven by an injected clock, so no test
sleeps or measures time.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from shared.ops import retention
from shared.platform.client import Database, UserContext
from shared.platform.config import Settings, get_settings
from shared.platform.errors import DocflowError, Unavailable
from shared.platform.storage import LocalStorage, Storage, make_storage
from tests.support.factories import create_upload

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
# The tables whose rows are seeded by id here (the rollups have a test of their own).
ROWS = tuple(t for t in retention.TABLES if t != "analytics_rollups")
DAY = timedelta(days=1)


@dataclass
class Seeded:
    """Ids per table: `gone` must be deleted by a run at NOW, `kept` must stay."""

    gone: dict[str, set[Any]] = field(default_factory=dict)
    kept: dict[str, set[Any]] = field(default_factory=dict)
    files_gone: set[str] = field(default_factory=set)  # with RETENTION_DELETE_DOCUMENTS=true
    files_kept: set[str] = field(default_factory=set)

    def add(self, table: str, row_id: Any, *, gone: bool) -> None:
        (self.gone if gone else self.kept).setdefault(table, set()).add(row_id)


def _settings(**overrides: Any) -> Settings:
    return get_settings().model_copy(update=overrides)


def _ids(sql: psycopg.Connection, table: str) -> set[Any]:
    return {row[0] for row in sql.execute(f"select id from public.{table}")}


def _insert(sql: psycopg.Connection, statement: str, params: dict[str, Any]) -> Any:
    row = sql.execute(statement, params).fetchone()
    assert row is not None
    return row[0]


def _event(sql: psycopg.Connection, age: timedelta) -> int:
    return int(
        _insert(
            sql,
            "insert into public.document_processing_events (event_type, created_at)"
            " values ('upload_started', %(at)s) returning id",
            {"at": NOW - age},
        )
    )


def _check(sql: psycopg.Connection, age: timedelta) -> int:
    return int(
        _insert(
            sql,
            "insert into public.service_health_checks"
            " (service_name, status, latency_ms, checked_at, created_at)"
            " values ('database', 'healthy', 3, %(at)s, %(at)s) returning id",
            {"at": NOW - age},
        )
    )


def _alert(
    sql: psycopg.Connection,
    status: str,
    created_age: timedelta,
    resolved_age: timedelta | None = None,
    alert_type: str = "service_down",
    service: str | None = None,
) -> int:
    return int(
        _insert(
            sql,
            "insert into public.alert_events"
            " (service_name, alert_type, status, message, created_at, acknowledged_at,"
            "  resolved_at)"
            " values (%(service)s, %(type)s, %(status)s, 'seeded', %(created)s,"
            "  case when %(status)s = 'acknowledged' then %(created)s end, %(resolved)s)"
            " returning id",
            {
                "service": service or f"svc-{uuid.uuid4().hex[:8]}",
                "type": alert_type,
                "status": status,
                "created": NOW - created_age,
                "resolved": None if resolved_age is None else NOW - resolved_age,
            },
        )
    )


def _document(
    sql: psycopg.Connection, storage: Storage, user: UserContext, age: timedelta
) -> tuple[str, list[str]]:
    """A document `age` old with its upload and extracted text stored; (id, file names)."""
    doc_id = str(uuid.uuid4())
    files = [f"{user.user_id}/{doc_id}.pdf", f"{user.user_id}/text/{doc_id}.txt"]
    for name in files:
        storage.put(name, b"bytes of " + name.encode(), "application/octet-stream")
    sql.execute(
        "insert into public.documents (id, user_id, original_filename, content_type,"
        " size_bytes, sha256, storage_path, text_path, created_at)"
        " values (%(id)s, %(user)s, 'doc.pdf', 'application/pdf', 10, repeat('a', 64),"
        " %(path)s, %(text)s, %(at)s)",
        {"id": doc_id, "user": user.user_id, "path": files[0], "text": files[1], "at": NOW - age},
    )
    return doc_id, files


def _job(
    sql: psycopg.Connection, doc_id: str, user: UserContext, status: str, age: timedelta
) -> str:
    """A job created `age` ago; a finished one completed then too."""
    finished = status in ("completed", "failed", "cancelled")
    return str(
        _insert(
            sql,
            "insert into public.processing_jobs (document_id, user_id, status, attempts,"
            " created_at, run_at, started_at, completed_at, lease_owner, lease_expires_at)"
            " values (%(doc)s, %(user)s, %(status)s, %(attempts)s, %(at)s, %(at)s,"
            " case when %(status)s <> 'pending' then %(at)s end, %(done)s,"
            " case when %(status)s = 'processing' then 'w1' end,"
            " case when %(status)s = 'processing' then %(at)s + interval '30 seconds' end)"
            " returning id",
            {
                "doc": doc_id,
                "user": user.user_id,
                "status": status,
                "attempts": 0 if status == "pending" else 1,
                "at": NOW - age,
                "done": NOW - age if finished else None,
            },
        )
    )


@pytest.fixture
def storage(tmp_path: Any) -> LocalStorage:
    store = make_storage(get_settings())
    assert isinstance(store, LocalStorage)
    return store


@pytest.fixture
def seeded(
    db: Database,
    sql: psycopg.Connection,
    storage: LocalStorage,
    make_user: Callable[..., UserContext],
) -> Seeded:
    s = Seeded()
    # Events and health checks: 30 days.
    ages = [
        (45 * DAY, True),
        (30 * DAY + timedelta(seconds=1), True),
        (30 * DAY, False),  # exactly on the cutoff
        (29 * DAY, False),
        (timedelta(minutes=5), False),
    ]
    for age, gone in ages:
        s.add("document_processing_events", _event(sql, age), gone=gone)
        s.add("service_health_checks", _check(sql, age), gone=gone)
    # Alerts: only resolved ones, 30 days after they were resolved.
    s.add("alert_events", _alert(sql, "resolved", 60 * DAY, 45 * DAY), gone=True)
    s.add("alert_events", _alert(sql, "resolved", 40 * DAY, 31 * DAY, "recovery"), gone=True)
    s.add("alert_events", _alert(sql, "resolved", 60 * DAY, 29 * DAY), gone=False)
    s.add("alert_events", _alert(sql, "active", 400 * DAY), gone=False)
    s.add("alert_events", _alert(sql, "acknowledged", 400 * DAY), gone=False)
    # Jobs: finished ones 90 days after they finished; documents with them when the setting
    # says so (every job of the document expired, the document itself old enough).
    user = make_user()
    for status, age, job_gone in [
        ("completed", 100 * DAY, True),
        ("failed", 95 * DAY, True),
        ("cancelled", 91 * DAY, True),
        ("completed", 89 * DAY, False),
        ("failed", 90 * DAY, False),  # exactly on the cutoff
        ("pending", 200 * DAY, False),
        ("processing", 200 * DAY, False),
    ]:
        doc_id, files = _document(sql, storage, user, age)
        s.add("processing_jobs", _job(sql, doc_id, user, status, age), gone=job_gone)
        s.add("documents", doc_id, gone=job_gone)
        (s.files_gone if job_gone else s.files_kept).update(files)
    # A document with an expired job and a live one: the expired job goes, the document stays.
    doc_id, files = _document(sql, storage, user, 120 * DAY)
    s.add("processing_jobs", _job(sql, doc_id, user, "completed", 120 * DAY), gone=True)
    s.add("processing_jobs", _job(sql, doc_id, user, "completed", 10 * DAY), gone=False)
    s.add("documents", doc_id, gone=False)
    s.files_kept.update(files)
    # An old document that never had a job goes too (with the setting on).
    doc_id, files = _document(sql, storage, user, 365 * DAY)
    s.add("documents", doc_id, gone=True)
    s.files_gone.update(files)
    return s


def _all_ids(sql: psycopg.Connection) -> dict[str, set[Any]]:
    return {table: {str(i) for i in _ids(sql, table)} for table in ROWS}


def _as_str(ids: dict[str, set[Any]]) -> dict[str, set[str]]:
    return {table: {str(i) for i in v} for table, v in ids.items()}


def _expect_kept(seeded: Seeded, *, documents_deleted: bool) -> dict[str, set[str]]:
    kept = _as_str(seeded.kept)
    if not documents_deleted:
        kept["documents"] = kept["documents"] | _as_str(seeded.gone)["documents"]
    return kept


@pytest.mark.parametrize("delete_documents", [False, True])
def test_exactly_the_expired_rows_go(
    db: Database,
    sql: psycopg.Connection,
    storage: LocalStorage,
    seeded: Seeded,
    delete_documents: bool,
) -> None:
    settings = _settings(retention_delete_documents=delete_documents, retention_batch_size=2)
    report = retention.run(db, storage, settings, now=NOW)

    assert report["finished"] is True and report["dry_run"] is False
    gone = _as_str(seeded.gone)
    expected_counts = {table: len(gone[table]) for table in ROWS}
    if not delete_documents:
        expected_counts["documents"] = 0
    expected_counts["stored_files"] = len(seeded.files_gone) if delete_documents else 0
    expected_counts["analytics_rollups"] = 0  # the seeded events were never folded
    assert report["counts"] == expected_counts
    assert _all_ids(sql) == _expect_kept(seeded, documents_deleted=delete_documents)
    for name in seeded.files_kept:
        assert storage.exists(name), name
    for name in seeded.files_gone:
        assert storage.exists(name) is (not delete_documents), name
    assert int(db.call("storage_deletions_count")) == 0

    # A second run finds nothing more to delete.
    again = retention.run(db, storage, settings, now=NOW)
    assert set(again["counts"].values()) == {0}


def test_a_dry_run_counts_what_a_run_deletes_and_deletes_nothing(
    db: Database, sql: psycopg.Connection, storage: LocalStorage, seeded: Seeded
) -> None:
    settings = _settings(retention_delete_documents=True)
    before = _all_ids(sql)
    dry = retention.run(db, storage, settings, now=NOW, dry_run=True)
    assert dry["dry_run"] is True
    assert _all_ids(sql) == before
    assert all(storage.exists(name) for name in seeded.files_gone)
    assert dry["counts"]["stored_files"] == 0  # nothing queued yet

    real = retention.run(db, storage, settings, now=NOW)
    assert {t: dry["counts"][t] for t in ROWS} == {t: real["counts"][t] for t in ROWS}
    assert real["counts"]["stored_files"] == len(seeded.files_gone)


def test_zero_days_keeps_a_table_forever(
    db: Database, sql: psycopg.Connection, storage: LocalStorage, seeded: Seeded
) -> None:
    settings = _settings(retention_events_days=0, retention_jobs_days=0)
    before = _all_ids(sql)
    report = retention.run(db, storage, settings, now=NOW)
    assert report["counts"]["document_processing_events"] == 0
    assert report["counts"]["processing_jobs"] == 0
    assert report["keep_days"]["document_processing_events"] == 0
    after = _all_ids(sql)
    assert after["document_processing_events"] == before["document_processing_events"]
    assert after["processing_jobs"] == before["processing_jobs"]
    assert report["counts"]["service_health_checks"] == len(seeded.gone["service_health_checks"])


class StepClock:
    """A clock that moves one second each time it is read."""

    def __init__(self) -> None:
        self._ticks = itertools.count()

    def __call__(self) -> float:
        return float(next(self._ticks))


def test_a_run_stopped_by_its_budget_finishes_on_the_next_one(
    db: Database, sql: psycopg.Connection, storage: LocalStorage, seeded: Seeded
) -> None:
    settings = _settings(retention_delete_documents=True, retention_batch_size=1)
    total = {t: len(v) for t, v in _as_str(seeded.gone).items()}

    # A budget of two clock reads after the start: one batch of one event.
    first = retention.run(db, storage, settings, now=NOW, max_seconds=2, clock=StepClock())
    assert first["finished"] is False
    assert 0 < first["counts"]["document_processing_events"] < total["document_processing_events"]
    assert first["counts"]["processing_jobs"] == 0
    remaining = _all_ids(sql)["document_processing_events"]
    assert len(remaining) == 5 - first["counts"]["document_processing_events"]

    # Later runs get 8 clock reads: enough for a pass over the tables and the files once
    # nothing is left, so the loop ends.
    runs = [first]
    while not runs[-1]["finished"]:
        assert len(runs) < 100, "retention never finished"
        runs.append(retention.run(db, storage, settings, now=NOW, max_seconds=8, clock=StepClock()))
    summed = {t: sum(r["counts"][t] for r in runs) for t in ROWS}
    assert summed == total
    assert sum(r["counts"]["stored_files"] for r in runs) == len(seeded.files_gone)
    assert _all_ids(sql) == _as_str(seeded.kept)
    assert not any(storage.exists(name) for name in seeded.files_gone)


class DownStorage(LocalStorage):
    def delete_many(self, names: list[str]) -> None:
        raise Unavailable("storage unreachable", retry_after=5)


def test_files_stay_queued_while_storage_is_down(
    db: Database, sql: psycopg.Connection, storage: LocalStorage, seeded: Seeded
) -> None:
    settings = _settings(retention_delete_documents=True)
    down = DownStorage(settings.storage_dir, settings.storage_bucket)
    report = retention.run(db, down, settings, now=NOW)
    assert report["finished"] is False
    assert report["counts"]["stored_files"] == 0
    assert report["counts"]["documents"] == len(seeded.gone["documents"])
    assert int(db.call("storage_deletions_count")) == len(seeded.files_gone)
    assert all(storage.exists(name) for name in seeded.files_gone)

    report = retention.run(db, storage, settings, now=NOW)
    assert report["finished"] is True
    assert report["counts"]["stored_files"] == len(seeded.files_gone)
    assert int(db.call("storage_deletions_count")) == 0
    assert not any(storage.exists(name) for name in seeded.files_gone)


def test_deleting_a_user_removes_their_rows_and_the_next_run_their_files(
    db: Database,
    sql: psycopg.Connection,
    storage: LocalStorage,
    make_user: Callable[..., UserContext],
) -> None:
    leaving, staying = make_user(), make_user()
    mine: list[str] = []
    for user in (leaving, staying):
        for _ in range(2):
            path = f"{user.user_id}/{uuid.uuid4()}.txt"
            storage.put(path, b"uploaded", "text/plain")
            created = create_upload(db, user, now=NOW, storage_path=path)
            text = f"{user.user_id}/text/{created['document_id']}.txt"
            storage.put(text, b"extracted", "text/plain")
            sql.execute(
                "update public.documents set text_path = %s where id = %s",
                (text, created["document_id"]),
            )
            if user is leaving:
                mine += [path, text]

    sql.execute("delete from auth.users where id = %s", (leaving.user_id,))

    count = "select count(*) from public.{} where user_id = %s"
    for table in ("documents", "processing_jobs", "document_processing_events"):
        row = sql.execute(count.format(table), (leaving.user_id,)).fetchone()
        assert row == (0,), table
        row = sql.execute(count.format(table), (staying.user_id,)).fetchone()
        assert row is not None and row[0] > 0, table
    queued = {r[0] for r in sql.execute("select object_path from public.storage_deletions")}
    assert queued == set(mine)
    assert all(storage.exists(name) for name in mine)  # the database cannot touch storage

    report = retention.run(db, storage, get_settings(), now=NOW)
    assert report["counts"]["stored_files"] == 4
    assert not any(storage.exists(name) for name in mine)
    assert int(db.call("storage_deletions_count")) == 0
    staying_files = [
        r[0]
        for r in sql.execute(
            "select unnest(array[storage_path, text_path]) from public.documents"
            " where user_id = %s",
            (staying.user_id,),
        )
    ]
    assert len(staying_files) == 4 and all(storage.exists(name) for name in staying_files)


def test_a_queued_file_a_document_points_at_again_is_never_deleted(
    db: Database, sql: psycopg.Connection, make_user: Callable[..., UserContext]
) -> None:
    """A stale attempt can switch a document back to names a newer attempt had queued: those
    queue rows are dropped, never handed to the purge; the others are."""
    user = make_user()
    doc = create_upload(db, user)["document_id"]
    live_text, live_md = f"{user.user_id}/text/{doc}.txt", f"{user.user_id}/text/{doc}.md"
    db.call("set_document_text", document_id=doc, text_path=live_text, markdown_path=live_md)
    gone = f"{user.user_id}/text/{doc}.old.txt"
    for path in (live_text, gone, live_md):
        sql.execute(
            "insert into public.storage_deletions (object_path, reason) values (%s, 'test')",
            (path,),
        )
    batch = db.call("storage_deletions_batch", batch_size=10)
    assert [item["path"] for item in batch] == [gone]
    rows = sql.execute("select object_path from public.storage_deletions").fetchall()
    assert rows == [(gone,)]


def test_a_document_reanalysed_while_retention_waits_for_it_stays(
    sql: psycopg.Connection,
    database_url: str,
    storage: LocalStorage,
    make_user: Callable[..., UserContext],
) -> None:
    """Retention picks an expired document, then waits for its row lock while a reanalysis
    queues a job for it; once that commits, the document and the new job stay."""
    import threading

    from psycopg.types.json import Jsonb

    from tests.support.waiting import PATIENCE, wait_until

    user = make_user()
    doc, _ = _document(sql, storage, user, 400 * DAY)
    _job(sql, doc, user, "completed", 400 * DAY)
    reanalysis = psycopg.connect(database_url)
    try:
        reanalysis.execute(
            "select public.reanalyze_document(document_id => %s, options => %s, now => %s)",
            (doc, Jsonb({"template": "document_brief"}), NOW),
        )
        answer: list[Any] = []
        with psycopg.connect(database_url, autocommit=True) as purge:
            pid = purge.info.backend_pid

            def run() -> None:
                answer.append(
                    purge.execute(
                        "select public.retention_delete('documents', 30, 100, false, %s)", (NOW,)
                    ).fetchone()
                )

            thread = threading.Thread(target=run)
            thread.start()

            def blocked() -> bool:
                row = sql.execute(
                    "select wait_event_type from pg_stat_activity where pid = %s", (pid,)
                ).fetchone()
                return row is not None and row[0] == "Lock"

            wait_until(blocked, "retention to wait on the document's row lock")
            reanalysis.commit()
            thread.join(PATIENCE)
            assert not thread.is_alive()
    finally:
        reanalysis.close()
    assert answer and answer[0][0]["deleted"] == 0
    assert _ids(sql, "documents") >= {uuid.UUID(doc)}
    jobs = sql.execute(
        "select count(*) from public.processing_jobs where document_id = %s and status = 'pending'",
        (doc,),
    ).fetchone()
    assert jobs == (1,)


def test_retention_sql_is_for_the_service_only(sql: psycopg.Connection) -> None:
    for fn in ("retention_delete(text, integer, integer, boolean, timestamptz, timestamptz)",
               "storage_deletions_batch(integer)", "storage_deletions_done(jsonb)",
               "storage_deletions_count()"):  # fmt: skip
        for role, allowed in (("anon", False), ("authenticated", False), ("service_role", True)):
            row = sql.execute(
                "select has_function_privilege(%s, %s, 'execute')", (role, f"public.{fn}")
            ).fetchone()
            assert row == (allowed,), (fn, role)
    row = sql.execute(
        "select relrowsecurity from pg_class where oid = 'public.storage_deletions'::regclass"
    ).fetchone()
    assert row == (True,)


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"target": "auth.users", "keep_days": 1}, "invalid_target"),
        ({"target": "documents", "keep_days": 1, "batch_size": 0}, "invalid_batch_size"),
    ],
)
def test_bad_arguments_are_refused(db: Database, params: dict[str, Any], code: str) -> None:
    with pytest.raises(DocflowError) as exc:
        db.call("retention_delete", **params)
    assert exc.value.code == code


def test_rollups_go_past_the_windows_that_read_them_and_reports_stay_the_same(
    db: Database, sql: psycopg.Connection, storage: LocalStorage
) -> None:
    # Completed events (with durations: counts, histograms) at ages across every horizon.
    ages = [timedelta(minutes=10), timedelta(hours=30), 3 * DAY, 7 * DAY, 9 * DAY, 29 * DAY,
            45 * DAY, 399 * DAY, 401 * DAY, 500 * DAY]  # fmt: skip
    for age in ages:
        sql.execute(
            "insert into public.document_processing_events"
            " (event_type, duration_ms, details, created_at)"
            " values ('completed', 1200, '{\"priority\": \"high\"}', %s)",
            (NOW - age,),
        )
    db.call("fold_analytics")
    windows = ("1h", "24h", "7d", "30d")
    before = {w: db.call("analytics_report", window_name=w, now=NOW) for w in windows}
    assert before["30d"]["jobs"]["completed"] == 6  # 10 min .. 29 days

    def rows_per_grain() -> dict[tuple[str, int], list[datetime]]:
        out: dict[tuple[str, int], list[datetime]] = {}
        for table in ("analytics_rollups", "analytics_histograms"):
            for grain, start in sql.execute(f"select grain, bucket_start from public.{table}"):
                out.setdefault((table, grain), []).append(start)
        return out

    settings = _settings(retention_batch_size=1)
    dry = retention.run(db, storage, settings, now=NOW, dry_run=True)
    report = retention.run(db, storage, settings, now=NOW)
    assert report["finished"] is True
    assert report["counts"]["analytics_rollups"] == dry["counts"]["analytics_rollups"] > 0

    horizon = {300: NOW - 2 * DAY, 3600: NOW - 8 * DAY, 86400: NOW - 400 * DAY}
    left = rows_per_grain()
    for (table, grain), starts in left.items():
        assert min(starts) >= horizon[grain], (table, grain)
    # What stays: 5-min buckets of the last 2 days (2 events), hourly of 8 days (4), daily of
    # 400 days (8, the buckets' start of day within 400 days).
    assert len(left[("analytics_rollups", 300)]) == 2
    assert len(left[("analytics_rollups", 3600)]) == 4
    assert len(left[("analytics_rollups", 86400)]) == 8
    after = {w: db.call("analytics_report", window_name=w, now=NOW) for w in windows}
    assert after == before

    # RETENTION_ROLLUPS_DAYS=0 keeps the daily buckets forever; the finer ones still go.
    kept = _settings(retention_rollups_days=0)
    assert retention.run(db, storage, kept, now=NOW + 30 * DAY)["counts"]["analytics_rollups"] > 0
    left = rows_per_grain()
    assert len(left[("analytics_rollups", 86400)]) == 8
    assert ("analytics_rollups", 300) not in left
