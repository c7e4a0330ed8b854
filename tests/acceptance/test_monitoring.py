"""Monitoring over HTTP and end to end: probes, alerts, real notification delivery, admin routes.

`POST /probe_health` and the admin routes are driven through the functions loaded from main.py.
`run_probes` is given probes that raise, hang or answer slowly; alerts are delivered for real to
a local HTTP server (the webhook) and a local aiosmtpd server (the email), started as in
tests/unit/test_notify.py and stopped (threads joined) at teardown. Checks read the database
through the `sql` fixture, independent of the code under test.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from flask.testing import FlaskClient
from psycopg.rows import dict_row

from shared.ops import probes as monitoring
from shared.ops.alerts import notifier_for, notify_due
from shared.ops.probes import probe_and_notify, run_probes
from shared.platform.client import Database, UserContext
from shared.platform.config import Settings
from shared.platform.storage import LocalStorage, get_storage
from tests.support.env import configure, database_down
from tests.support.factories import new_job
from tests.support.http import ClientFor, assert_error
from tests.support.net import free_port
from tests.support.receivers import Receivers
from tests.support.tokens import bearer, scheduler_headers
from tests.support.users import MakeUser

SENDER = "docflow@example.test"
RECIPIENTS = ["ops@example.test", "oncall@example.test"]
WEBHOOK_PATH = "/services/T000/B000/XXXX"
_NOTIFY_ENV = (
    "ALERT_WEBHOOK_URL",
    "SMTP_HOST",
    "SMTP_PORT",
    "SMTP_USERNAME",
    "SMTP_PASSWORD",
    "SMTP_STARTTLS",
    "ALERT_EMAIL_FROM",
    "ALERT_EMAIL_TO",
    "PROBE_DEGRADED_MS",
    "PROBE_TIMEOUT_SECONDS",
    "ALERT_OPEN_AFTER",
    "ALERT_RESOLVE_AFTER",
    "ALERT_REPEAT_SECONDS",
)


@pytest.fixture(autouse=True)
def no_notification_channels(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start from the defaults: no channel configured, whatever the developer's environment."""
    configure(monkeypatch, **dict.fromkeys(_NOTIFY_ENV))


def check_rows(sql: psycopg.Connection, service: str | None = None) -> list[dict[str, Any]]:
    with sql.cursor(row_factory=dict_row) as cur:
        if service is None:
            return cur.execute("select * from public.service_health_checks order by id").fetchall()
        return cur.execute(
            "select * from public.service_health_checks where service_name = %s order by id",
            (service,),
        ).fetchall()


def alert_rows(sql: psycopg.Connection) -> list[dict[str, Any]]:
    with sql.cursor(row_factory=dict_row) as cur:
        return cur.execute("select * from public.alert_events order by id").fetchall()


def alerting(monkeypatch: pytest.MonkeyPatch, webhook_port: int, smtp_port: int) -> Settings:
    return configure(
        monkeypatch,
        ALERT_WEBHOOK_URL=f"http://127.0.0.1:{webhook_port}{WEBHOOK_PATH}",
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(smtp_port),
        SMTP_STARTTLS="false",
        ALERT_EMAIL_FROM=SENDER,
        ALERT_EMAIL_TO=", ".join(RECIPIENTS),
        ALERT_OPEN_AFTER="2",
    )


# --- probes that misbehave -------------------------------------------------------------------


def failing() -> dict[str, Any]:
    raise RuntimeError("payments API refused the connection")


def healthy() -> dict[str, Any]:
    return {"answer": 42}


@dataclass
class Hanging:
    """A probe that blocks until released (at teardown), so that no thread outlives the test."""

    release: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def __call__(self) -> dict[str, Any]:
        self.threads.append(threading.current_thread())
        self.release.wait(timeout=60)
        return {}


@pytest.fixture
def hanging() -> Iterator[Hanging]:
    probe = Hanging()
    try:
        yield probe
    finally:
        probe.release.set()
        for thread in probe.threads:
            thread.join(timeout=10)
            assert not thread.is_alive()


# --- POST /probe_health ----------------------------------------------------------------------


def test_probe_health_records_one_healthy_check_per_service(
    client_for: ClientFor, sql: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Generous latency limits: this test is about the probes' answers, not this machine's speed.
    configure(monkeypatch, PROBE_DEGRADED_MS="database=60000,storage=60000,job_queue=60000")
    response = client_for("probe_health").post("/probe_health", headers=scheduler_headers())
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    checks = {c["service"]: c for c in body["checks"]}
    assert set(checks) == {"database", "storage", "job_queue"}
    for check in checks.values():
        assert (check["status"], check["error"], check["recorded"]) == ("healthy", None, True)
        assert check["alerts_opened"] == [] and check["alerts_resolved"] == []
    assert body["notifications"] == {"due": 0, "delivered": 0, "failed": 0}

    rows = check_rows(sql)
    assert sorted((r["service_name"], r["status"]) for r in rows) == [
        ("database", "healthy"),
        ("job_queue", "healthy"),
        ("storage", "healthy"),
    ]
    queue = next(r for r in rows if r["service_name"] == "job_queue")
    assert queue["probe_details"] == {"queue_health": "healthy", "reasons": []}
    assert all(r["latency_ms"] is not None and r["latency_ms"] >= 0 for r in rows)
    assert alert_rows(sql) == []
    # The storage probe cleans up after itself.
    storage = get_storage()
    assert isinstance(storage, LocalStorage)
    leftovers = list(storage.root.rglob("*health-*")) if storage.root.exists() else []
    assert leftovers == []


def test_probe_health_through_the_one_port_app(
    server_client: FlaskClient, sql: psycopg.Connection
) -> None:
    response = server_client.post("/probe_health", headers=scheduler_headers())
    assert response.status_code == 200, response.get_data(as_text=True)
    assert {r["service_name"] for r in check_rows(sql)} == {"database", "storage", "job_queue"}


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-secret"),
        pytest.param({"X-Scheduler-Secret": "wrong"}, id="wrong-secret"),
    ],
)
def test_probe_health_requires_the_scheduler_secret(
    client_for: ClientFor, sql: psycopg.Connection, headers: dict[str, str]
) -> None:
    response = client_for("probe_health").post("/probe_health", headers=headers)
    assert_error(response, 401, "invalid_scheduler_secret")
    assert check_rows(sql) == []


@pytest.mark.parametrize(
    ("stalled", "status"),
    [pytest.param(1, "degraded", id="1-stalled"), pytest.param(6, "down", id="6-stalled")],
)
def test_probe_health_maps_the_queue_verdict_onto_the_check(
    client_for: ClientFor,
    db: Database,
    sql: psycopg.Connection,
    make_user: MakeUser,
    monkeypatch: pytest.MonkeyPatch,
    stalled: int,
    status: str,
) -> None:
    configure(monkeypatch, PROBE_DEGRADED_MS="database=60000,storage=60000,job_queue=60000")
    user = make_user()
    claimed_at = datetime.now(UTC) - timedelta(minutes=5)
    for _ in range(stalled):
        new_job(db, user, now=claimed_at)
    jobs = db.call(
        "claim_jobs", worker_id="gone", max_jobs=stalled, lease_seconds=30, now=claimed_at
    )
    assert len(jobs) == stalled  # leases expired 4.5 minutes ago: stalled
    response = client_for("probe_health").post("/probe_health", headers=scheduler_headers())
    assert response.status_code == 200, response.get_data(as_text=True)
    (queue,) = check_rows(sql, "job_queue")
    assert queue["status"] == status  # healthy -> healthy, degraded -> degraded, unhealthy -> down
    expected = "unhealthy" if status == "down" else "degraded"
    limit = 5 if status == "down" else 0
    assert queue["probe_details"] == {
        "queue_health": expected,
        "reasons": [f"{stalled} stalled jobs > {limit}"],
    }


# --- run_probes: isolation, timeouts, latency ------------------------------------------------


def test_a_failing_probe_never_stops_the_others(
    db: Database, sql: psycopg.Connection, monkeypatch: pytest.MonkeyPatch, hanging: Hanging
) -> None:
    settings = configure(monkeypatch, PROBE_TIMEOUT_SECONDS="0.5")
    checks = run_probes(
        db,
        get_storage(),
        settings,
        only={"broken": failing, "hanging": hanging, "fine": healthy},
    )
    assert [(c["service"], c["status"], c["recorded"]) for c in checks] == [
        ("broken", "down", True),
        ("hanging", "down", True),
        ("fine", "healthy", True),
    ]
    broken, hung, fine = check_rows(sql)
    assert (broken["service_name"], broken["status"]) == ("broken", "down")
    assert broken["error_message"] == "RuntimeError: payments API refused the connection"
    assert (hung["service_name"], hung["status"]) == ("hanging", "down")
    assert hung["error_message"] == "no answer within 0.5 s"
    assert hung["latency_ms"] == 500
    assert (fine["service_name"], fine["status"], fine["error_message"]) == (
        "fine",
        "healthy",
        None,
    )
    assert fine["probe_details"] == {"answer": 42}


def test_latency_over_the_service_threshold_is_degraded(
    db: Database, sql: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = configure(monkeypatch, PROBE_DEGRADED_MS="slow=20,quick=60000")

    def slow() -> dict[str, Any]:
        time.sleep(0.1)  # at least 100 ms, well over the 20 ms limit
        return {}

    checks = run_probes(db, get_storage(), settings, only={"slow": slow, "quick": healthy})
    assert [(c["service"], c["status"]) for c in checks] == [
        ("slow", "degraded"),
        ("quick", "healthy"),
    ]
    slow_row, quick_row = check_rows(sql)
    assert slow_row["status"] == "degraded"
    assert slow_row["latency_ms"] >= 100
    assert slow_row["probe_details"]["slow"].endswith("ms > 20 ms")
    assert quick_row["status"] == "healthy" and "slow" not in quick_row["probe_details"]


# --- alerts end to end with real delivery ----------------------------------------------------


def test_alerts_are_delivered_by_webhook_and_email(
    db: Database,
    sql: psycopg.Connection,
    monkeypatch: pytest.MonkeyPatch,
    receivers: Receivers,
) -> None:
    hook = receivers.webhook()
    mail = receivers.smtp()
    settings = alerting(monkeypatch, hook.port, mail.port)
    storage = get_storage()

    def probe_and_deliver(probe: Callable[[], dict[str, Any]]) -> tuple[dict, dict]:
        (check,) = run_probes(db, storage, settings, only={"payments": probe})
        return check, notify_due(db, settings, notifier_for(settings))

    # ALERT_OPEN_AFTER=2: the second failure opens the alert.
    check, sent = probe_and_deliver(failing)
    assert (check["status"], check["alerts_opened"]) == ("down", [])
    assert sent == {"due": 0, "delivered": 0, "failed": 0}
    check, sent = probe_and_deliver(failing)
    (alert_id,) = check["alerts_opened"]
    assert sent == {"due": 1, "delivered": 1, "failed": 0}

    assert len(hook.requests) == 1
    request = hook.requests[0]
    assert request["path"] == WEBHOOK_PATH
    assert request["content_type"] == "application/json"
    assert request["json"]["text"].startswith("[docflow] service_down: payments (opened)")
    opened = request["json"]["alert"]
    assert (opened["id"], opened["service_name"], opened["alert_type"]) == (
        alert_id,
        "payments",
        "service_down",
    )
    assert (opened["kind"], opened["status"]) == ("opened", "active")
    assert "payments API refused the connection" in opened["message"]

    assert len(mail.received) == 1
    mail_from, rcpt_tos, message = mail.received[0]
    assert (mail_from, rcpt_tos) == (SENDER, RECIPIENTS)
    assert message["Subject"] == "[docflow] service_down: payments (opened)"
    assert "payments API refused the connection" in message.get_content()

    # Still failing, within the repeat interval: nothing new is sent.
    check, sent = probe_and_deliver(failing)
    assert check["alerts_opened"] == []
    assert sent == {"due": 0, "delivered": 0, "failed": 0}

    # Recovery after two healthy checks, delivered on both channels.
    check, sent = probe_and_deliver(healthy)
    assert check["alerts_resolved"] == [] and sent["due"] == 0
    check, sent = probe_and_deliver(healthy)
    assert check["alerts_resolved"] == [alert_id]
    assert sent == {"due": 1, "delivered": 1, "failed": 0}

    assert [a["kind"] for a in hook.alerts] == ["opened", "recovered"]
    recovered = hook.alerts[1]
    assert (recovered["alert_type"], recovered["status"]) == ("recovery", "resolved")
    assert recovered["details"] == {"recovers": alert_id, "alert_type": "service_down"}
    assert mail.subjects == [
        "[docflow] service_down: payments (opened)",
        "[docflow] recovery: payments (recovered)",
    ]

    rows = alert_rows(sql)
    assert [(r["alert_type"], r["status"], r["notifications"]) for r in rows] == [
        ("service_down", "resolved", 1),
        ("recovery", "resolved", 1),
    ]
    assert len(check_rows(sql, "payments")) == 5


def test_unreachable_channels_never_stop_probing_and_are_retried_on_the_next_run(
    db: Database,
    sql: psycopg.Connection,
    monkeypatch: pytest.MonkeyPatch,
    receivers: Receivers,
) -> None:
    # Nothing listens on these ports yet: connections are refused.
    webhook_port, smtp_port = free_port(), free_port()
    settings = alerting(monkeypatch, webhook_port, smtp_port)
    storage = get_storage()
    # probe_and_notify probes every service: make "every service" the failing one.
    monkeypatch.setattr(monitoring, "probes", lambda *args, **kw: {"payments": failing})

    first = probe_and_notify(db, storage, settings)
    second = probe_and_notify(db, storage, settings)
    assert [c["recorded"] for c in first["checks"] + second["checks"]] == [True, True]
    (alert_id,) = second["checks"][0]["alerts_opened"]
    assert first["notifications"] == {"due": 0, "delivered": 0, "failed": 0}
    assert second["notifications"] == {"due": 1, "delivered": 0, "failed": 1}
    assert [r["status"] for r in check_rows(sql, "payments")] == ["down", "down"]
    (alert,) = alert_rows(sql)
    assert (alert["id"], alert["status"], alert["notified_at"], alert["notifications"]) == (
        alert_id,
        "active",
        None,
        0,
    )

    # Still unreachable on the next run: still not delivered, probing still recorded.
    third = probe_and_notify(db, storage, settings)
    assert third["checks"][0]["recorded"] is True
    assert third["notifications"] == {"due": 1, "delivered": 0, "failed": 1}

    # The receivers come up on the configured ports: the next run delivers the opening.
    hook = receivers.webhook(webhook_port)
    mail = receivers.smtp(smtp_port)
    fourth = probe_and_notify(db, storage, settings)
    assert fourth["notifications"] == {"due": 1, "delivered": 1, "failed": 0}
    assert [(a["id"], a["kind"]) for a in hook.alerts] == [(alert_id, "opened")]
    assert mail.subjects == ["[docflow] service_down: payments (opened)"]
    (alert,) = alert_rows(sql)
    assert alert["notifications"] == 1 and alert["notified_at"] is not None

    # Delivered once: the run after that sends nothing.
    fifth = probe_and_notify(db, storage, settings)
    assert fifth["notifications"] == {"due": 0, "delivered": 0, "failed": 0}
    assert len(hook.requests) == 1 and len(mail.received) == 1
    assert len(check_rows(sql, "payments")) == 5


def test_without_channels_nothing_is_due_and_alerts_still_open(
    db: Database, sql: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = configure(monkeypatch, ALERT_OPEN_AFTER="1")
    monkeypatch.setattr(monitoring, "probes", lambda *args, **kw: {"payments": failing})
    result = probe_and_notify(db, get_storage(), settings)
    assert result["notifications"] == {"due": 0, "delivered": 0, "failed": 0}
    assert [(a["alert_type"], a["status"]) for a in alert_rows(sql)] == [("service_down", "active")]


# --- admin routes ----------------------------------------------------------------------------


@pytest.fixture
def people(make_user: MakeUser) -> tuple[UserContext, UserContext]:
    """(admin, an ordinary user)."""
    return make_user(admin=True), make_user()


def _seed_checks(db: Database) -> int:
    """`api`: 10 checks over the last 10 minutes, latencies 10..100 ms, the last one degraded;
    `mailer`: down 3 times, which opens a service_down alert. Returns the alert's id."""
    now = datetime.now(UTC)
    for i in range(10):
        db.call(
            "record_health_check",
            service_name="api",
            status="healthy" if i < 9 else "degraded",
            latency_ms=10 * (i + 1),
            now=now - timedelta(minutes=10 - i),
        )
    opened: list[int] = []
    for i in range(3):
        outcome = db.call(
            "record_health_check",
            service_name="mailer",
            status="down",
            latency_ms=5000,
            error_message="connection refused",
            now=now - timedelta(minutes=3 - i),
        )
        opened += outcome["opened"]
    (alert_id,) = opened
    return alert_id


def test_admin_queue(
    client_for: ClientFor, db: Database, people: tuple[UserContext, UserContext]
) -> None:
    admin, user = people
    new_job(db, user)
    client = client_for("admin")
    response = client.get("/admin/queue", headers=bearer(admin))
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["health"] == "healthy"
    assert body["reasons"] == []
    assert body["counts"] == {"pending": 1}  # the admin sees every user's jobs
    assert body["pending_by_priority"] == {"normal": 1}
    assert body["stalled"] == 0
    assert_error(client.get("/admin/queue", headers=bearer(user)), 403, "admin_required")
    assert_error(client.get("/admin/queue"), 401)


def test_admin_services(
    client_for: ClientFor, db: Database, people: tuple[UserContext, UserContext]
) -> None:
    admin, user = people
    _seed_checks(db)
    client = client_for("admin")
    response = client.get("/admin/services", headers=bearer(admin))
    assert response.status_code == 200, response.get_data(as_text=True)
    api, mailer = response.get_json()["services"]
    assert (api["service_name"], api["status"], api["latency_ms"]) == ("api", "degraded", 100)
    assert api["uptime_percent_24h"] == 90.0
    assert api["p95_latency_ms_24h"] == pytest.approx(95.5)  # interpolated over 10..100
    assert api["checks_24h"] == 10
    assert (mailer["service_name"], mailer["status"]) == ("mailer", "down")
    assert mailer["error_message"] == "connection refused"
    assert mailer["uptime_percent_24h"] == 0.0
    assert mailer["p95_latency_ms_24h"] == pytest.approx(5000)
    assert mailer["checks_24h"] == 3
    assert_error(client.get("/admin/services", headers=bearer(user)), 403, "admin_required")
    assert_error(client.get("/admin/services"), 401)


def test_admin_alerts_list_acknowledge_and_resolve(
    client_for: ClientFor,
    db: Database,
    sql: psycopg.Connection,
    people: tuple[UserContext, UserContext],
) -> None:
    admin, _ = people
    alert_id = _seed_checks(db)
    client = client_for("admin")
    as_admin = bearer(admin)

    def listed(status: str | None = None) -> list[int]:
        url = "/admin/alerts" + (f"?status={status}" if status else "")
        response = client.get(url, headers=as_admin)
        assert response.status_code == 200, response.get_data(as_text=True)
        return [a["id"] for a in response.get_json()["alerts"]]

    assert listed("active") == [alert_id]
    assert listed() == [alert_id]
    assert listed("acknowledged") == [] and listed("resolved") == []
    response = client.get("/admin/alerts?status=active", headers=as_admin)
    (shown,) = response.get_json()["alerts"]
    assert (shown["service_name"], shown["alert_type"], shown["status"]) == (
        "mailer",
        "service_down",
        "active",
    )
    assert_error(client.get("/admin/alerts?status=open", headers=as_admin), 422, "invalid_status")

    # acknowledge, twice
    ack = client.post(f"/admin/alerts/{alert_id}/acknowledge", headers=as_admin)
    assert ack.status_code == 200, ack.get_data(as_text=True)
    assert (ack.get_json()["id"], ack.get_json()["status"]) == (alert_id, "acknowledged")
    assert ack.get_json()["acknowledged_at"] is not None
    again = client.post(f"/admin/alerts/{alert_id}/acknowledge", headers=as_admin)
    assert again.status_code == 200, again.get_data(as_text=True)
    assert again.get_json() == ack.get_json()
    assert listed("active") == [] and listed("acknowledged") == [alert_id]

    # resolve, twice; then acknowledging is a conflict
    resolved = client.post(f"/admin/alerts/{alert_id}/resolve", headers=as_admin)
    assert resolved.status_code == 200, resolved.get_data(as_text=True)
    assert resolved.get_json()["status"] == "resolved"
    assert resolved.get_json()["resolved_at"] is not None
    again = client.post(f"/admin/alerts/{alert_id}/resolve", headers=as_admin)
    assert again.status_code == 200 and again.get_json() == resolved.get_json()
    assert_error(
        client.post(f"/admin/alerts/{alert_id}/acknowledge", headers=as_admin),
        409,
        "alert_resolved",
    )
    assert listed("resolved") == [alert_id]
    row = sql.execute(
        "select status from public.alert_events where id = %s", (alert_id,)
    ).fetchone()
    assert row == ("resolved",)


@pytest.mark.parametrize("action", ["acknowledge", "resolve"])
@pytest.mark.parametrize(
    "alert_id",
    [
        pytest.param("987654321", id="unknown"),
        pytest.param("abc", id="non-numeric"),
        pytest.param("-1", id="negative"),
        pytest.param("1.5", id="decimal"),
        pytest.param("9" * 30, id="too-long"),
    ],
)
def test_admin_alert_ids_that_do_not_exist(
    client_for: ClientFor,
    people: tuple[UserContext, UserContext],
    action: str,
    alert_id: str,
) -> None:
    admin, _ = people
    response = client_for("admin").post(f"/admin/alerts/{alert_id}/{action}", headers=bearer(admin))
    assert_error(response, 404, "alert_not_found")


def test_admin_alert_id_with_a_unicode_digit_is_not_found(
    client_for: ClientFor, people: tuple[UserContext, UserContext]
) -> None:
    admin, _ = people
    response = client_for("admin").post("/admin/alerts/%C2%B2/acknowledge", headers=bearer(admin))
    assert_error(response, 404, "alert_not_found")


def test_admin_alert_routes_need_an_admin(
    client_for: ClientFor,
    db: Database,
    sql: psycopg.Connection,
    people: tuple[UserContext, UserContext],
) -> None:
    _, user = people
    alert_id = _seed_checks(db)
    client = client_for("admin")
    for headers, status in ((bearer(user), 403), ({}, 401)):
        assert_error(client.get("/admin/alerts", headers=headers), status)
        assert_error(client.get("/admin/alerts?status=active", headers=headers), status)
        for action in ("acknowledge", "resolve"):
            assert_error(client.post(f"/admin/alerts/{alert_id}/{action}", headers=headers), status)
    (alert,) = alert_rows(sql)
    assert (alert["status"], alert["acknowledged_at"], alert["resolved_at"]) == (
        "active",
        None,
        None,
    )


def test_probe_health_is_503_when_nothing_could_be_recorded(
    client_for, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = client_for("probe_health")
    database_down(monkeypatch)
    response = client.post("/probe_health", headers=scheduler_headers())
    assert_error(response, 503, "unavailable")
