"""`POST /retention` and `docflow retention` end to end.

The `retention` target is loaded from main.py by functions-framework (and, for `/`, called on
its own URL as Cloud Scheduler does); `docflow retention` runs in-process through
`shared.dev.cli.main`. Expired rows are seeded through the `sql` fixture with real timestamps
(days old, so the real `now` of the call decides); the answers are checked against what is
left in the database.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest
from flask.testing import FlaskClient

from shared.dev import cli
from shared.platform.client import Database
from tests.support.cli import run_cli
from tests.support.http import ClientFor

SECRET = {"X-Scheduler-Secret": "test-scheduler-secret-long-enough-0123456789"}
SEED = """
insert into public.document_processing_events (event_type, created_at)
select 'upload_started', now() - make_interval(days => d)
  from (values (45), (31), (29), (1)) as v(d);
insert into public.service_health_checks (service_name, status, checked_at, created_at)
select 'database', 'healthy', now() - make_interval(days => d), now() - make_interval(days => d)
  from (values (60), (2)) as v(d);
insert into public.alert_events (service_name, alert_type, status, message, created_at,
                                 resolved_at)
values ('storage', 'service_down', 'resolved', 'old', now() - interval '50 days',
        now() - interval '40 days'),
       ('database', 'service_down', 'active', 'still down', now() - interval '50 days', null);
"""
EXPECTED = {
    "document_processing_events": 2,
    "service_health_checks": 1,
    "alert_events": 1,
    "processing_jobs": 0,
    "documents": 0,
    "analytics_rollups": 0,  # the seeded events are not folded into rollups yet
    "stored_files": 0,
}


@pytest.fixture
def seeded(db: Database, sql: psycopg.Connection) -> psycopg.Connection:
    sql.execute(SEED)
    return sql


def _left(sql: psycopg.Connection) -> tuple[int, int, int]:
    row = sql.execute(
        "select (select count(*) from public.document_processing_events),"
        " (select count(*) from public.service_health_checks),"
        " (select count(*) from public.alert_events)"
    ).fetchone()
    assert row is not None
    return (int(row[0]), int(row[1]), int(row[2]))


@pytest.mark.parametrize("path", ["/retention", "/"])
def test_the_scheduler_runs_retention(
    client_for: ClientFor, seeded: psycopg.Connection, path: str
) -> None:
    response = client_for("retention").post(path, headers=SECRET)
    assert response.status_code == 200, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    assert body["dry_run"] is False and body["finished"] is True
    assert body["counts"] == EXPECTED
    assert body["keep_days"]["documents"] == 0  # RETENTION_DELETE_DOCUMENTS off by default
    assert _left(seeded) == (2, 1, 1)


def test_a_dry_run_over_http_deletes_nothing(
    client_for: ClientFor, seeded: psycopg.Connection
) -> None:
    response = client_for("retention").post("/retention", headers=SECRET, json={"dry_run": True})
    assert response.status_code == 200
    assert response.get_json()["counts"] == EXPECTED
    assert _left(seeded) == (4, 2, 2)


@pytest.mark.parametrize(
    ("headers", "body", "status", "code"),
    [
        ({}, None, 401, "invalid_scheduler_secret"),
        ({"X-Scheduler-Secret": "wrong"}, None, 401, "invalid_scheduler_secret"),
        (SECRET, {"dry_run": "yes"}, 422, "invalid_dry_run"),
        (SECRET, {"dry_run": 1}, 422, "invalid_dry_run"),
        (SECRET, [True], 400, "invalid_json"),
    ],
)
def test_bad_requests_delete_nothing(
    client_for: ClientFor,
    seeded: psycopg.Connection,
    headers: dict[str, str],
    body: Any,
    status: int,
    code: str,
) -> None:
    response = client_for("retention").post("/retention", headers=headers, json=body)
    assert response.status_code == status
    assert response.get_json()["error"]["code"] == code
    assert _left(seeded) == (4, 2, 2)


def test_get_is_405(client_for: ClientFor, db: Database) -> None:
    response = client_for("retention").get("/retention", headers=SECRET)
    assert response.status_code == 405
    assert response.get_json()["error"]["code"] == "method_not_allowed"


def test_the_one_port_server_dispatches_retention(
    server_client: FlaskClient, seeded: psycopg.Connection
) -> None:
    response = server_client.post("/retention", headers=SECRET, json={})
    assert response.status_code == 200
    assert response.get_json()["counts"] == EXPECTED


def test_the_cli_dry_run_then_run(
    seeded: psycopg.Connection, capsys: pytest.CaptureFixture[str], cli_logging: None
) -> None:
    code, out, _ = run_cli(capsys, "retention", "--dry-run")
    assert code == 0
    lines = {line.split()[0]: line for line in out.splitlines()}
    assert lines["document_processing_events"].split()[1:5] == [
        "would",
        "delete",
        "2",
        "(older",
    ]
    assert "(kept forever)" in lines["documents"]
    assert lines["analytics_rollups"].endswith("(5-min after 2 days, hourly after 8, daily 400 d)")
    assert _left(seeded) == (4, 2, 2)

    code, out, _ = run_cli(capsys, "retention", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["counts"] == EXPECTED
    assert _left(seeded) == (2, 1, 1)


def test_make_dev_schedules_probe_and_retention(
    seeded: psycopg.Connection, cli_logging: None
) -> None:
    """`docflow serve --worker` (make dev) starts the local schedules: both run at start."""
    import threading

    from shared.platform.config import get_settings

    stop = threading.Event()
    thread = cli._start_schedules(get_settings(), stop)
    try:
        for _ in range(600):  # wait for the condition (up to a minute), not for a duration
            checks = seeded.execute(
                "select count(*) from public.service_health_checks where created_at > now() - "
                "interval '1 hour'"
            ).fetchone()
            if _left(seeded)[0] == 2 and checks is not None and checks[0] > 1:
                break
            stop.wait(0.1)
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()
    assert _left(seeded)[0] == 2  # the expired events went
    checks = seeded.execute(
        "select count(distinct service_name) from public.service_health_checks"
        " where created_at > now() - interval '1 hour'"
    ).fetchone()
    assert checks is not None and checks[0] >= 3  # database, storage, job_queue probed
