"""The alert state machine, notification bookkeeping and queue health, in SQL, through `db.call`.

Every function takes an explicit `now`: a sequence of checks is recorded one per minute (or at
the gaps a case gives) from a fixed T0, and after each check the "notify" step runs as the
monitor does: `due_notifications` at that time, then `mark_notified` for everything due
(delivery is simulated as always succeeding, unless a case mutes it). Nothing sleeps and
nothing depends on the wall clock. Alert rows are read back through the `sql` fixture
(superuser), independent of the code under test.
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from shared.platform.client import Database
from shared.platform.errors import Conflict, NotFound
from tests.support.factories import create_upload
from tests.support.queue import claimed_jobs
from tests.support.times import at

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
REPEAT = 4 * 3600  # the default repeat interval, in seconds
SERVICE = "api"


# --- the driver ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivered:
    kind: str  # opened | repeat | recovered
    alert_type: str  # the alert concerned (a recovery names the alert type it recovers)
    alert_id: int
    at: datetime


@dataclass
class Run:
    alerts: list[dict[str, Any]]
    delivered: list[Delivered]
    checks: list[dict[str, Any]]  # what record_health_check returned, in order
    clock: datetime  # the time of the last step
    due_at_end: list[dict[str, Any]] = field(default_factory=list)

    @property
    def notifications(self) -> list[tuple[str, str]]:
        return [(d.kind, d.alert_type) for d in self.delivered]

    @property
    def summary(self) -> list[tuple[str, str]]:
        return [(a["alert_type"], a["status"]) for a in self.alerts]

    def one(self, alert_type: str) -> dict[str, Any]:
        (row,) = [a for a in self.alerts if a["alert_type"] == alert_type]
        return row


def hourly(status: str, n: int) -> list[tuple[str, timedelta]]:
    """`n` checks, one hour apart."""
    return [(status, HOUR)] * n


def alert_rows(sql: psycopg.Connection, service: str = SERVICE) -> list[dict[str, Any]]:
    with sql.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "select * from public.alert_events where service_name = %s order by id", (service,)
        ).fetchall()


def open_alert_id(sql: psycopg.Connection, alert_type: str, service: str = SERVICE) -> int:
    row = sql.execute(
        "select id from public.alert_events where service_name = %s and alert_type = %s"
        " and status in ('active', 'acknowledged')",
        (service, alert_type),
    ).fetchone()
    assert row is not None, f"no open {alert_type} alert"
    return int(row[0])


def drive(
    db: Database,
    sql: psycopg.Connection,
    steps: list[Any],
    *,
    service: str = SERVICE,
    repeat_seconds: int = REPEAT,
    open_after: int = 3,
    resolve_after: int = 2,
) -> Run:
    """Run `steps` and return the alerts and the notifications delivered.

    A step is a status (`"down"`: one check, a minute after the previous one), a
    `(status, gap)` pair (one check, `gap` after the previous one), `("ack", alert_type)`
    (acknowledge that open alert at the time of the last check), or `("mute",)` / `("unmute",)`
    (while muted the notify step is skipped: nothing is delivered nor marked).
    """
    clock: datetime | None = None
    muted = False
    delivered: list[Delivered] = []
    checks: list[dict[str, Any]] = []
    for step in steps:
        if isinstance(step, str):
            step = (step, MINUTE)
        action = step[0]
        if action == "mute":
            muted = True
            continue
        if action == "unmute":
            muted = False
            continue
        if action == "ack":
            db.call(
                "acknowledge_alert",
                alert_id=open_alert_id(sql, step[1], service),
                now=clock or T0,
            )
            continue
        status, gap = step
        clock = T0 if clock is None else clock + gap
        checks.append(
            db.call(
                "record_health_check",
                service_name=service,
                status=status,
                latency_ms=12,
                error_message=None if status == "healthy" else f"{service} is {status}",
                open_after=open_after,
                resolve_after=resolve_after,
                now=clock,
            )
        )
        if muted:
            continue
        due = db.call("due_notifications", repeat_seconds=repeat_seconds, now=clock)
        batch = [
            Delivered(
                alert["kind"],
                alert["details"]["alert_type"]
                if alert["alert_type"] == "recovery"
                else alert["alert_type"],
                alert["id"],
                clock,
            )
            for alert in due
        ]
        # One notify run delivers in id order; two recoveries recorded by the same check have
        # no defined order between them, so a batch is compared sorted by (kind, alert type).
        delivered += sorted(batch, key=lambda d: (d.kind, d.alert_type))
        if due:
            marked = db.call("mark_notified", alert_ids=[a["id"] for a in due], now=clock)
            assert marked == len(due)
    assert clock is not None
    due_at_end = db.call("due_notifications", repeat_seconds=repeat_seconds, now=clock)
    return Run(alert_rows(sql, service), delivered, checks, clock, due_at_end)


# --- sequences -------------------------------------------------------------------------------

DOWN3 = ["down"] * 3
DEGRADED3 = ["degraded"] * 3
HEALTHY2 = ["healthy"] * 2

CASES: list[Any] = [
    pytest.param(
        ["down", "healthy", "down", "down", "healthy", "down", "down", "healthy", "down", "down"],
        [],
        [],
        id="flapping-below-the-threshold-opens-nothing",
    ),
    pytest.param(
        ["degraded", "degraded", "healthy", "down", "degraded", "healthy", "degraded"],
        [],
        [],
        id="degraded-flapping-opens-nothing",
    ),
    pytest.param(
        DOWN3 + HEALTHY2,
        [("service_down", "resolved"), ("recovery", "resolved")],
        [("opened", "service_down"), ("recovered", "service_down")],
        id="down-then-recovery",
    ),
    pytest.param(
        [*DOWN3, "healthy", "down", "healthy", "degraded"],
        [("service_down", "resolved"), ("recovery", "resolved")],
        [("opened", "service_down"), ("recovered", "service_down")],
        id="recovery-needs-consecutive-checks-not-down",
    ),
    pytest.param(
        DOWN3 + ["down"] * 5 + ["healthy"],
        [("service_down", "active")],
        [("opened", "service_down")],
        id="one-alert-for-a-long-run-of-down-checks",
    ),
    pytest.param(
        DOWN3 + hourly("down", 10),
        [("service_down", "active")],
        [("opened", "service_down"), ("repeat", "service_down"), ("repeat", "service_down")],
        id="long-outage-repeats-every-4h",
    ),
    pytest.param(
        [*DOWN3, ("ack", "service_down"), *hourly("down", 10)],
        [("service_down", "acknowledged")],
        [("opened", "service_down")],
        id="acknowledged-stops-repeats-and-stays-open",
    ),
    pytest.param(
        [*DOWN3, ("ack", "service_down"), *hourly("down", 10), *HEALTHY2],
        [("service_down", "resolved"), ("recovery", "resolved")],
        [("opened", "service_down"), ("recovered", "service_down")],
        id="acknowledged-alert-still-recovers",
    ),
    pytest.param(
        DEGRADED3 + HEALTHY2,
        [("service_degraded", "resolved"), ("recovery", "resolved")],
        [("opened", "service_degraded"), ("recovered", "service_degraded")],
        id="degraded-then-recovery",
    ),
    pytest.param(
        [*DEGRADED3, "healthy", "degraded", "healthy"],
        [("service_degraded", "active")],
        [("opened", "service_degraded")],
        id="degraded-needs-consecutive-healthy-checks",
    ),
    pytest.param(
        [*DEGRADED3, "healthy", "healthy", *DEGRADED3],
        [
            ("service_degraded", "resolved"),
            ("recovery", "resolved"),
            ("service_degraded", "active"),
        ],
        [
            ("opened", "service_degraded"),
            ("recovered", "service_degraded"),
            ("opened", "service_degraded"),
        ],
        id="a-new-episode-opens-a-new-alert",
    ),
    pytest.param(
        DEGRADED3 + DOWN3 + hourly("down", 10),
        [("service_degraded", "active"), ("service_down", "active")],
        [
            ("opened", "service_degraded"),
            ("opened", "service_down"),
            ("repeat", "service_down"),
            ("repeat", "service_down"),
        ],
        id="down-inhibits-degraded",
    ),
    pytest.param(
        [*DEGRADED3, *DOWN3, ("ack", "service_down"), *hourly("down", 10)],
        [("service_degraded", "active"), ("service_down", "acknowledged")],
        [("opened", "service_degraded"), ("opened", "service_down")],
        id="an-acknowledged-down-still-inhibits-degraded",
    ),
    pytest.param(
        DEGRADED3 + DOWN3 + hourly("down", 5) + HEALTHY2,
        [
            ("service_degraded", "resolved"),
            ("service_down", "resolved"),
            ("recovery", "resolved"),
            ("recovery", "resolved"),
        ],
        [
            ("opened", "service_degraded"),
            ("opened", "service_down"),
            ("repeat", "service_down"),
            ("recovered", "service_degraded"),
            ("recovered", "service_down"),
        ],
        id="down-and-degraded-recover-together",
    ),
    pytest.param(
        DEGRADED3 + DOWN3 + hourly("down", 5) + ["degraded", "degraded"],
        [
            ("service_degraded", "active"),
            ("service_down", "resolved"),
            ("recovery", "resolved"),
        ],
        [
            ("opened", "service_degraded"),
            ("opened", "service_down"),
            ("repeat", "service_down"),
            # inhibition lifts: the degraded alert, last notified > 4 h ago, repeats
            ("recovered", "service_down"),
            ("repeat", "service_degraded"),
        ],
        id="inhibition-lifts-when-down-recovers",
    ),
    pytest.param(
        [*DOWN3, "degraded", "degraded"],
        [("service_down", "resolved"), ("service_degraded", "active"), ("recovery", "resolved")],
        [
            ("opened", "service_down"),
            ("opened", "service_degraded"),
            ("recovered", "service_down"),
        ],
        id="down-then-degraded-hands-over-to-the-degraded-alert",
    ),
    pytest.param(
        [("mute",), *DOWN3, ("ack", "service_down"), ("unmute",), *HEALTHY2],
        [("service_down", "resolved"), ("recovery", "resolved")],
        [],
        id="recovery-of-an-acknowledged-never-notified-alert-is-silent",
    ),
    pytest.param(
        [("mute",), *DOWN3, *HEALTHY2, ("unmute",), "healthy"],
        [("service_down", "resolved"), ("recovery", "resolved")],
        [],
        id="recovery-of-a-never-notified-alert-is-silent",
    ),
]


@pytest.mark.parametrize(("steps", "alerts", "notifications"), CASES)
def test_alert_sequences(db, sql, steps, alerts, notifications):
    run = drive(db, sql, steps)
    assert run.summary == alerts
    assert run.notifications == notifications
    # Everything due was delivered after each check: nothing is left over at the end.
    assert run.due_at_end == []
    # Invariant: at most one open alert per (service, type).
    open_types = [a["alert_type"] for a in run.alerts if a["status"] != "resolved"]
    assert len(open_types) == len(set(open_types))
    # Every recovery row is informational, resolved, and points at a resolved alert of its type.
    by_id = {a["id"]: a for a in run.alerts}
    for row in run.alerts:
        if row["alert_type"] == "recovery":
            recovered = by_id[row["details"]["recovers"]]
            assert recovered["status"] == "resolved"
            assert recovered["alert_type"] == row["details"]["alert_type"]
            assert recovered["resolved_at"] == row["created_at"] == row["resolved_at"]


def test_down_then_recovery_in_detail(db, sql):
    run = drive(db, sql, DOWN3 + HEALTHY2)
    down, recovery = run.alerts
    assert down["alert_type"] == "service_down"
    assert down["status"] == "resolved"
    assert down["created_at"] == T0 + 2 * MINUTE  # the third down check
    assert down["resolved_at"] == T0 + 4 * MINUTE  # the second healthy check
    assert down["message"] == "api is down: api is down"
    assert down["details"]["consecutive_checks"] == 3
    assert down["notifications"] == 1 and down["notified_at"] == T0 + 2 * MINUTE

    assert recovery["alert_type"] == "recovery"
    assert recovery["status"] == "resolved"
    assert recovery["details"] == {"recovers": down["id"], "alert_type": "service_down"}
    assert recovery["message"] == "api recovered"
    assert recovery["notifications"] == 1

    assert [c["opened"] for c in run.checks] == [[], [], [down["id"]], [], []]
    assert [c["resolved"] for c in run.checks] == [[], [], [], [], [down["id"]]]
    assert [(d.kind, d.alert_id, d.at) for d in run.delivered] == [
        ("opened", down["id"], T0 + 2 * MINUTE),
        ("recovered", recovery["id"], T0 + 4 * MINUTE),
    ]


def test_a_long_outage_repeats_at_4h_and_8h_after_opening(db, sql):
    run = drive(db, sql, DOWN3 + hourly("down", 10))
    opened_at = T0 + 2 * MINUTE
    assert [(d.kind, d.at - opened_at) for d in run.delivered] == [
        ("opened", timedelta(0)),
        ("repeat", timedelta(hours=4)),
        ("repeat", timedelta(hours=8)),
    ]
    alert = run.one("service_down")
    assert alert["notifications"] == 3
    assert alert["notified_at"] == opened_at + 8 * HOUR


def test_a_shorter_repeat_interval_repeats_more_often(db, sql):
    run = drive(db, sql, DOWN3 + hourly("down", 10), repeat_seconds=3 * 3600)
    assert [d.kind for d in run.delivered] == ["opened", "repeat", "repeat", "repeat"]


def test_acknowledging_stops_repeats_but_the_alert_stays_open(db, sql):
    run = drive(db, sql, [*DOWN3, ("ack", "service_down"), *hourly("down", 10)])
    alert = run.one("service_down")
    assert alert["status"] == "acknowledged"
    assert alert["acknowledged_at"] == T0 + 2 * MINUTE
    assert alert["resolved_at"] is None
    assert alert["notifications"] == 1
    # Still open: a further down check opens nothing new, recovery resolves this one.
    outcome = db.call("record_health_check", service_name=SERVICE, status="down", now=run.clock)
    assert outcome["opened"] == []
    db.call("record_health_check", service_name=SERVICE, status="healthy", now=run.clock + HOUR)
    outcome = db.call(
        "record_health_check", service_name=SERVICE, status="healthy", now=run.clock + 2 * HOUR
    )
    assert outcome["resolved"] == [alert["id"]]


def test_down_inhibits_the_degraded_alert_past_the_repeat_interval(db, sql):
    run = drive(db, sql, DEGRADED3 + DOWN3 + hourly("down", 10))
    degraded = run.one("service_degraded")
    assert degraded["notifications"] == 1
    assert degraded["notified_at"] == T0 + 2 * MINUTE  # ~10 h ago, still not repeated
    assert [d.alert_type for d in run.delivered if d.kind == "repeat"] == ["service_down"] * 2


def test_recovery_of_a_never_notified_alert_is_not_due(db, sql):
    run = drive(db, sql, [("mute",), *DOWN3, *HEALTHY2])
    down = run.one("service_down")
    recovery = run.one("recovery")
    assert down["notifications"] == 0
    assert recovery["details"]["recovers"] == down["id"]
    assert db.call("due_notifications", now=run.clock) == []
    assert db.call("due_notifications", now=run.clock + timedelta(days=2)) == []


def test_an_undelivered_opening_stays_due_until_marked(db, sql):
    run = drive(db, sql, [("mute",), *DOWN3])
    (alert,) = run.alerts
    for later in (run.clock, run.clock + MINUTE, run.clock + 5 * HOUR):
        due = db.call("due_notifications", now=later)
        assert [(d["id"], d["kind"]) for d in due] == [(alert["id"], "opened")]
    assert db.call("mark_notified", alert_ids=[alert["id"]], now=run.clock + 5 * HOUR) == 1
    assert db.call("due_notifications", now=run.clock + 5 * HOUR) == []


def test_thresholds_are_parameters(db, sql):
    run = drive(db, sql, ["down", "down", "healthy"], open_after=2, resolve_after=1)
    assert run.summary == [("service_down", "resolved"), ("recovery", "resolved")]
    assert run.notifications == [("opened", "service_down"), ("recovered", "service_down")]


def test_services_are_independent(db, sql):
    drive(db, sql, DOWN3, service="storage")
    run = drive(db, sql, ["healthy"] * 3, service="database")
    assert run.alerts == []
    assert [a["status"] for a in alert_rows(sql, "storage")] == ["active"]


# --- acknowledge / resolve -------------------------------------------------------------------


def _opened(db, sql, service: str = SERVICE) -> int:
    drive(db, sql, DOWN3, service=service)
    return open_alert_id(sql, "service_down", service)


def test_acknowledge_is_idempotent(db, sql):
    alert_id = _opened(db, sql)
    first = db.call("acknowledge_alert", alert_id=alert_id, now=T0 + HOUR)
    assert first["status"] == "acknowledged"
    assert first["id"] == alert_id
    second = db.call("acknowledge_alert", alert_id=alert_id, now=T0 + 2 * HOUR)
    assert second == first  # same row: acknowledged_at is not moved
    (row,) = alert_rows(sql)
    assert row["status"] == "acknowledged"
    assert row["acknowledged_at"] == T0 + HOUR


def test_resolve_is_idempotent_and_works_on_acknowledged_alerts(db, sql):
    alert_id = _opened(db, sql)
    db.call("acknowledge_alert", alert_id=alert_id, now=T0 + HOUR)
    first = db.call("resolve_alert", alert_id=alert_id, now=T0 + 2 * HOUR)
    assert first["status"] == "resolved"
    second = db.call("resolve_alert", alert_id=alert_id, now=T0 + 3 * HOUR)
    assert second == first
    (row,) = alert_rows(sql)  # a manual resolution records no recovery row
    assert (row["status"], row["resolved_at"]) == ("resolved", T0 + 2 * HOUR)


def test_a_resolved_alert_cannot_be_acknowledged(db, sql):
    alert_id = _opened(db, sql)
    db.call("resolve_alert", alert_id=alert_id, now=T0 + HOUR)
    with pytest.raises(Conflict) as caught:
        db.call("acknowledge_alert", alert_id=alert_id, now=T0 + 2 * HOUR)
    assert caught.value.code == "alert_resolved"
    (row,) = alert_rows(sql)
    assert row["status"] == "resolved" and row["acknowledged_at"] is None


def test_a_recovery_row_cannot_be_acknowledged(db, sql):
    run = drive(db, sql, DOWN3 + HEALTHY2)
    with pytest.raises(Conflict) as caught:
        db.call("acknowledge_alert", alert_id=run.one("recovery")["id"])
    assert caught.value.code == "alert_resolved"


@pytest.mark.parametrize("fn", ["acknowledge_alert", "resolve_alert"])
def test_unknown_alert_is_not_found(db, fn):
    with pytest.raises(NotFound) as caught:
        db.call(fn, alert_id=987654321)
    assert caught.value.code == "alert_not_found"


def test_an_acknowledged_alert_is_not_repeated_and_a_resolved_one_not_at_all(db, sql):
    acked = _opened(db, sql, "acked")
    resolved = _opened(db, sql, "resolved-by-hand")
    db.call("acknowledge_alert", alert_id=acked, now=T0 + MINUTE * 3)
    db.call("resolve_alert", alert_id=resolved, now=T0 + MINUTE * 3)
    assert db.call("due_notifications", now=T0 + timedelta(days=1)) == []


# --- queue health ----------------------------------------------------------------------------

THRESHOLDS = {
    "window_seconds": 3600,
    "degraded_success_rate": 0.9,
    "unhealthy_success_rate": 0.7,
    "degraded_stalled": 0,
    "unhealthy_stalled": 5,
    "degraded_backlog": 100,
    "degraded_oldest_seconds": 600,
}


def finish(db, user, completed: int, failed: int, *, now: datetime) -> None:
    """`completed` jobs completed and `failed` failed for good, claimed at T0, done at `now`."""
    jobs = claimed_jobs(db, user, completed + failed, now=T0)
    for job in jobs[:completed]:
        db.call("complete_job", job_id=job["id"], worker_id="w1", attempt=1, now=now)
    for job in jobs[completed:]:
        db.call(
            "fail_job",
            job_id=job["id"],
            worker_id="w1",
            attempt=1,
            error_code="corrupt",
            error_message="unreadable",
            recoverable=False,
            now=now,
        )


def health(db, *, now: datetime, **overrides: Any) -> dict[str, Any]:
    return db.call("queue_health", **{**THRESHOLDS, **overrides}, now=now)


def test_an_empty_queue_is_healthy(db):
    result = health(db, now=T0)
    assert result["health"] == "healthy"
    assert result["reasons"] == []
    assert result["success_rate"] is None
    assert result["stalled"] == 0
    assert result["oldest_pending_seconds"] is None


def test_all_completed_is_healthy(db, make_user):
    finish(db, make_user(), 5, 0, now=at(10, T0))
    result = health(db, now=at(60, T0))
    assert (result["health"], result["reasons"]) == ("healthy", [])
    assert (result["completed"], result["failed"], result["success_rate"]) == (5, 0, 1.0)
    assert result["counts"] == {"completed": 5}


@pytest.mark.parametrize(
    ("completed", "failed", "verdict", "reason"),
    [
        pytest.param(9, 1, "healthy", None, id="90%-is-not-below-90%"),
        pytest.param(4, 1, "degraded", "success rate 80.0% < 90.0%", id="80%"),
        pytest.param(3, 2, "unhealthy", "success rate 60.0% < 70.0%", id="60%"),
        pytest.param(0, 2, "unhealthy", "success rate 0.0% < 70.0%", id="0%"),
    ],
)
def test_success_rate_verdicts(db, make_user, completed, failed, verdict, reason):
    finish(db, make_user(), completed, failed, now=at(10, T0))
    result = health(db, now=at(60, T0))
    assert result["health"] == verdict
    assert result["reasons"] == ([reason] if reason else [])
    assert result["success_rate"] == pytest.approx(completed / (completed + failed))


def test_the_success_rate_only_counts_the_window(db, make_user):
    finish(db, make_user(), 0, 3, now=at(10, T0))  # failures long ago
    result = health(db, now=at(10 + 3601, T0))
    assert (result["health"], result["completed"], result["failed"]) == ("healthy", 0, 0)
    assert result["success_rate"] is None


@pytest.mark.parametrize(
    ("stalled", "verdict"),
    [pytest.param(1, "degraded", id="1-stalled"), pytest.param(6, "unhealthy", id="6-stalled")],
)
def test_stalled_jobs(db, make_user, stalled, verdict):
    claimed_jobs(db, make_user(), stalled, now=T0, lease_seconds=30)
    # Before the lease expires nothing is stalled.
    assert health(db, now=at(29, T0))["stalled"] == 0
    assert health(db, now=at(29, T0))["health"] == "healthy"
    result = health(db, now=at(31, T0))
    assert result["stalled"] == stalled
    assert result["health"] == verdict
    limit = 5 if verdict == "unhealthy" else 0
    assert result["reasons"] == [f"{stalled} stalled jobs > {limit}"]


def test_backlog_over_the_threshold(db, make_user):
    user = make_user()
    for i in range(4):
        create_upload(db, user, now=at(i, T0))
    assert health(db, now=at(10, T0), degraded_backlog=4)["health"] == "healthy"
    result = health(db, now=at(10, T0), degraded_backlog=3)
    assert result["health"] == "degraded"
    assert result["reasons"] == ["4 pending jobs > 3"]
    assert result["counts"] == {"pending": 4}
    assert result["pending_by_priority"] == {"normal": 4}


def test_oldest_pending_older_than_the_threshold(db, make_user):
    create_upload(db, make_user(), now=T0)
    assert health(db, now=at(600, T0))["health"] == "healthy"
    result = health(db, now=at(660, T0))
    assert result["health"] == "degraded"
    assert result["oldest_pending_seconds"] == 660
    assert result["reasons"] == ["oldest pending job waited 660 s > 600 s"]


def test_reasons_list_every_cause(db, make_user):
    user = make_user()
    finish(db, user, 4, 1, now=at(10, T0))  # 80 %
    claimed_jobs(db, user, 1, now=T0, lease_seconds=30)  # stalled after 30 s
    for _ in range(3):
        create_upload(db, user, now=T0)  # backlog of 3, waiting since T0
    result = health(db, now=at(700, T0), degraded_backlog=2)
    assert result["health"] == "degraded"
    assert result["reasons"] == [
        "success rate 80.0% < 90.0%",
        "1 stalled jobs > 0",
        "3 pending jobs > 2",
        "oldest pending job waited 700 s > 600 s",
    ]


# --- concurrency -----------------------------------------------------------------------------

RUNNERS = 10


def _parallel(work, n: int = RUNNERS) -> list[Any]:
    barrier = threading.Barrier(n)

    def run(i: int) -> Any:
        barrier.wait(timeout=30)
        return work(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n)))  # re-raises any error of any runner


@pytest.mark.parametrize("clock", ["same-now", "increasing-now"])
def test_parallel_probe_runs_leave_exactly_one_active_alert(database_url, sql, clock):
    def probe_run(i: int) -> list[dict[str, Any]]:
        outcomes = []
        with psycopg.connect(database_url, autocommit=True) as conn:
            for r in range(3):
                jitter = timedelta(milliseconds=i) if clock == "increasing-now" else timedelta(0)
                now = T0 + r * MINUTE + jitter
                row = conn.execute(
                    "select public.record_health_check(service_name => 'flaky',"
                    " status => 'down', latency_ms => 5000, error_message => 'timeout',"
                    " now => %s)",
                    (now,),
                ).fetchone()
                assert row is not None
                outcomes.append(row[0])
        return outcomes

    outcomes = [o for run in _parallel(probe_run) for o in run]
    assert len(outcomes) == 3 * RUNNERS
    opened = [alert_id for o in outcomes for alert_id in o["opened"]]
    alerts = alert_rows(sql, "flaky")
    assert [(a["alert_type"], a["status"]) for a in alerts] == [("service_down", "active")]
    assert opened == [alerts[0]["id"]]
    checks = sql.execute(
        "select count(*) from public.service_health_checks where service_name = 'flaky'"
    ).fetchone()
    assert checks == (3 * RUNNERS,)


def test_parallel_probe_runs_through_the_shared_client(db, sql):
    def probe_run(i: int) -> list[dict[str, Any]]:
        return [
            db.call("record_health_check", service_name="flaky", status="down", now=T0 + r * MINUTE)
            for r in range(3)
        ]

    outcomes = [o for run in _parallel(probe_run) for o in run]
    alerts = alert_rows(sql, "flaky")
    assert Counter((a["alert_type"], a["status"]) for a in alerts) == {
        ("service_down", "active"): 1
    }
    assert [i for o in outcomes for i in o["opened"]] == [alerts[0]["id"]]
