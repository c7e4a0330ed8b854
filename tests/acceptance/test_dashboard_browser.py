"""The admin dashboard in a real browser.

`docflow serve` runs as a subprocess on a free port against this test's database (the
environment the other tests use: DATABASE_URL, the JWT secret of `settings_env`). Known numbers
are seeded through real SQL (events, whose trigger feeds the analytics rollups; jobs; health
checks; alerts), then headless Chromium (Debian's `chromium` and `chromedriver`, driven by
selenium) opens `/admin/dashboard#token=...` and the test reads what the page shows, clicks
Acknowledge and checks the database. A screenshot is saved to test-artifacts/dashboard.png.

Chromium and chromedriver (Debian's `chromium` and `chromium-driver`) are installed by `make
test` when it runs as root (scripts/install-system-deps.sh). Only without root, where nothing
can be installed system-wide, may a missing one skip the test, with the command to run; as
root or under CI=true a missing one fails it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from flask.testing import FlaskClient
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

from shared.platform.client import Database
from tests.support.browser import browser_unavailable, running_under_ci
from tests.support.data import REPO_ROOT
from tests.support.net import free_port
from tests.support.users import MakeUser

ARTIFACTS = REPO_ROOT / "test-artifacts"

# (minutes ago, duration ms, queue wait ms, priority, content type, stage timings of its job)
COMPLETED = [
    (5, 400, 200, "high", "application/pdf", {"reading": 100, "extracting": 250}),
    (10, 650, 300, "normal", "application/pdf", {"reading": 150, "extracting": 400}),
    (70, 800, 500, "normal", "text/plain", {"reading": 50, "extracting": 700}),
    (75, 1200, 800, "normal", "application/pdf", {"reading": 200, "extracting": 900}),
    (190, 2500, 1000, "low", "application/pdf", {"reading": 300, "extracting": 2000}),
    (200, 3100, 1500, "normal", "text/plain", {"reading": 100, "extracting": 2900}),
    (400, 4000, 2000, "high", "application/pdf", {"reading": 500, "extracting": 3300}),
]
PARSE_ERROR = "the document could not be parsed"
FAILED = [  # (minutes ago, error message, priority, content type)
    (15, PARSE_ERROR, "normal", "application/pdf"),
    (80, PARSE_ERROR, "high", "application/pdf"),
    (200, "unsupported content", "low", "text/plain"),
]
BROWSER_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1366,900",
)


@pytest.fixture
def server_url(db: Database, tmp_path: Path) -> Iterator[str]:
    """`docflow serve` in a subprocess, with this test's environment; stopped at the end."""
    docflow = Path(sys.executable).parent / "docflow"
    assert docflow.exists(), f"{docflow} not found: install the project (pip install -e .)"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(docflow), "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO_ROOT,
            env=dict(os.environ),  # DATABASE_URL of this test, the JWT secret, STORAGE_DIR
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        for _ in range(300):
            if proc.poll() is not None:
                pytest.fail(f"docflow serve exited ({proc.returncode}):\n{log.read_text()}")
            try:
                if httpx.get(f"{url}/admin/dashboard", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(0.1)
        else:
            pytest.fail(f"docflow serve did not answer in 30 s:\n{log.read_text()}")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    chromedriver = shutil.which("chromedriver")
    unavailable = browser_unavailable(
        chromium, chromedriver, as_root=os.geteuid() == 0, ci=running_under_ci()
    )
    if unavailable:
        may_skip, reason = unavailable
        if may_skip:
            pytest.skip(reason)
        pytest.fail(reason)
    assert chromium and chromedriver
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in BROWSER_ARGS:
        options.add_argument(arg)
    options.set_capability("goog:loggingOptions", {"browser": "ALL"})
    # With the driver's path given, Selenium Manager is not run (nothing is downloaded).
    driver = webdriver.Chrome(
        options=options, service=webdriver.ChromeService(executable_path=chromedriver)
    )
    try:
        yield driver
    finally:
        driver.quit()


# --- seeding ---------------------------------------------------------------------------------


def _document(sql: psycopg.Connection, user_id: str, content_type: str) -> str:
    name = uuid.uuid4().hex
    row = sql.execute(
        """insert into public.documents
             (user_id, original_filename, content_type, size_bytes, sha256, storage_path)
           values (%s, %s, %s, 1234, %s, %s) returning id""",
        (user_id, f"{name}.bin", content_type, "0" * 64, f"{user_id}/{name}.bin"),
    ).fetchone()
    assert row is not None
    return str(row[0])


def _event(
    sql: psycopg.Connection,
    at: datetime,
    event_type: str,
    details: dict[str, Any],
    job_id: str | None = None,
    duration_ms: int | None = None,
    error_message: str | None = None,
) -> None:
    sql.execute(
        """insert into public.document_processing_events
             (event_type, job_id, duration_ms, error_message, details, created_at)
           values (%s, %s, %s, %s, %s, %s)""",
        (event_type, job_id, duration_ms, error_message, json.dumps(details), at),
    )


def _seed(sql: psycopg.Connection, user_id: str) -> dict[str, int]:
    """Seven completed jobs (each with its upload, first-attempt start and completion events,
    and stage timings), three failed events with their uploads, two pending jobs (one high,
    waiting for two hours), two services (database healthy, storage down) and three alerts:
    active, acknowledged and resolved. Every time is relative to one database `now()`.
    Returns the alert ids."""
    row = sql.execute("select now()").fetchone()
    assert row is not None
    now: datetime = row[0]

    def ago(minutes: int) -> datetime:
        return now - timedelta(minutes=minutes)

    for minutes, duration, wait, priority, ctype, timings in COMPLETED:
        done = ago(minutes)
        started = done - timedelta(milliseconds=duration)
        created = started - timedelta(milliseconds=wait)
        job = sql.execute(
            """insert into public.processing_jobs
                 (document_id, user_id, status, priority, progress, attempts, result,
                  created_at, run_at, started_at, completed_at, duration_ms)
               values (%s, %s, 'completed', %s, 100, 1, %s, %s, %s, %s, %s, %s)
               returning id""",
            (
                _document(sql, user_id, ctype),
                user_id,
                priority,
                json.dumps({"timings_ms": timings}),
                created,
                created,
                started,
                done,
                duration,
            ),
        ).fetchone()
        assert job is not None
        details = {"priority": priority, "content_type": ctype}
        _event(sql, created, "upload_started", details, job_id=job[0])
        _event(sql, started, "processing_started", {**details, "attempt": 1}, job_id=job[0])
        _event(sql, done, "completed", details, job_id=job[0], duration_ms=duration)
    for minutes, message, priority, ctype in FAILED:
        details = {"priority": priority, "content_type": ctype}
        _event(sql, ago(minutes + 1), "upload_started", details)
        _event(sql, ago(minutes), "failed", details, error_message=message)
    for waited, priority in ((120, "high"), (3, "normal")):
        sql.execute(
            """insert into public.processing_jobs
                 (document_id, user_id, status, priority, created_at, run_at)
               values (%s, %s, 'pending', %s, %s, %s)""",
            (
                _document(sql, user_id, "application/pdf"),
                user_id,
                priority,
                ago(waited),
                ago(waited),
            ),
        )
    checks: list[tuple[str, str, int, str | None, int]] = [
        ("database", "healthy", ms, None, m) for ms, m in ((3, 20), (4, 15), (5, 10))
    ]
    checks += [
        ("storage", "healthy", 20, None, 20),
        ("storage", "down", 5000, "connection refused", 10),
        ("storage", "down", 5000, "connection refused", 5),
    ]
    for service, status, latency, error, minutes in checks:
        sql.execute(
            """insert into public.service_health_checks
                 (service_name, status, latency_ms, error_message, checked_at, created_at)
               values (%s, %s, %s, %s, %s, %s)""",
            (service, status, latency, error, ago(minutes), ago(minutes)),
        )
    ids = {}
    for status, service, alert_type, message in (
        ("active", "storage", "service_down", "storage is down: connection refused"),
        ("acknowledged", "database", "service_degraded", "database is degraded"),
        ("resolved", "mailer", "service_down", "mailer is down"),
    ):
        alert = sql.execute(
            """insert into public.alert_events
                 (service_name, alert_type, status, message, created_at, acknowledged_at,
                  resolved_at)
               values (%s, %s, %s, %s, %s, %s, %s)
               returning id""",
            (
                service,
                alert_type,
                status,
                message,
                ago(5),
                ago(2) if status != "active" else None,
                ago(1) if status == "resolved" else None,
            ),
        ).fetchone()
        assert alert is not None
        ids[status] = int(alert[0])
    return ids


def _buckets(sql: psycopg.Connection, event_type: str) -> int:
    """Distinct hourly buckets (epoch-aligned, as the report's) holding `event_type` events."""
    row = sql.execute(
        """select count(distinct date_bin('1 hour', created_at, timestamptz '1970-01-01 00:00+00'))
             from public.document_processing_events where event_type = %s""",
        (event_type,),
    ).fetchone()
    assert row is not None
    return int(row[0])


# --- page helpers ----------------------------------------------------------------------------


def _el(driver: webdriver.Chrome, testid: str) -> WebElement:
    return driver.find_element(By.CSS_SELECTOR, f'[data-testid="{testid}"]')


def _all(driver: webdriver.Chrome, testid: str) -> list[WebElement]:
    return driver.find_elements(By.CSS_SELECTOR, f'[data-testid="{testid}"]')


def _tile(driver: webdriver.Chrome, key: str) -> str:
    return str(_el(driver, f"tile-{key}").find_element(By.CLASS_NAME, "value").text)


def _tile_sub(driver: webdriver.Chrome, key: str) -> str:
    return str(_el(driver, f"tile-{key}").find_element(By.CLASS_NAME, "sub").text)


def _seconds(text: str) -> float:
    match = re.fullmatch(r"([0-9.]+) (ms|s)", text)
    assert match, text
    return float(match[1]) / (1000 if match[2] == "ms" else 1)


def _table(driver: webdriver.Chrome, testid: str) -> list[list[str]]:
    rows = _el(driver, testid).find_elements(By.CSS_SELECTOR, "tbody tr")
    return [[td.text for td in row.find_elements(By.TAG_NAME, "td")] for row in rows]


def _severe(driver: webdriver.Chrome) -> list[dict[str, Any]]:
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


# --- tests -----------------------------------------------------------------------------------


def test_dashboard_in_a_browser_shows_the_seeded_figures_and_acknowledges(
    browser: webdriver.Chrome,  # first: a missing browser stops the test before the server starts
    server_url: str,
    sql: psycopg.Connection,
    make_user: MakeUser,
) -> None:
    admin, user = make_user(admin=True), make_user()
    alerts = _seed(sql, user.user_id)
    driver = browser
    wait = WebDriverWait(driver, 15)

    driver.get(f"{server_url}/admin/dashboard#token={admin.token}")
    wait.until(lambda d: _el(d, "updated-at").text.startswith("updated"))
    assert re.fullmatch(r"updated \d\d:\d\d:\d\d", _el(driver, "updated-at").text)
    # the token left the address bar, and lives in this tab's sessionStorage only
    assert "token" not in driver.current_url and admin.token not in driver.current_url
    assert driver.current_url == f"{server_url}/admin/dashboard"
    stored = driver.execute_script("return [sessionStorage.length, localStorage.length]")
    assert stored == [1, 0]
    assert not _el(driver, "error-message").is_displayed()
    assert not _el(driver, "token-form").is_displayed()

    # tiles: the 24h window holds every seeded event
    assert _tile(driver, "completed") == "7"
    assert _tile(driver, "failed") == "3"
    assert _tile(driver, "success-rate") == "70%"
    assert _tile_sub(driver, "completed") == "10 created"  # upload_started events
    # percentiles come from 2 % histogram buckets: within 1 % of the nearest-rank value
    assert _seconds(_tile(driver, "p50")) == pytest.approx(1.2, rel=0.015)
    assert _seconds(_tile(driver, "p95")) == pytest.approx(4.0, rel=0.015)
    assert _seconds(_tile(driver, "p99")) == pytest.approx(4.0, rel=0.015)
    assert _tile(driver, "throughput").endswith(" /h")
    assert _tile(driver, "wait-avg") == "900 ms"  # (200+300+500+800+1000+1500+2000) / 7
    assert _tile_sub(driver, "wait-avg") == "7 first attempts"
    assert _seconds(_tile(driver, "wait-p95")) == pytest.approx(2.0, rel=0.015)
    assert _tile(driver, "queue-depth") == "2"
    assert _tile_sub(driver, "queue-depth") == "high 1 · normal 1"
    assert _tile(driver, "oldest-pending").startswith("2 h ")
    assert _tile(driver, "stalled") == "0"
    # the last hour: 2 completed, 1 failed (67 % < 70 %), and a job waiting for 2 h
    assert _tile(driver, "queue-health") == "unhealthy"
    assert "success rate 66.7% < 70.0%" in _tile_sub(driver, "queue-health")

    # charts: one stacked bar per non-empty hour, one p95 point per hour with completions
    completed_bars = _all(driver, "bar-completed")
    assert len(completed_bars) == _buckets(sql, "completed") >= 3
    assert len(_all(driver, "bar-failed")) == _buckets(sql, "failed") >= 2
    assert all(float(bar.get_attribute("height") or 0) > 0 for bar in completed_bars)
    assert len(_all(driver, "p95-point")) == _buckets(sql, "completed")
    throughput = _el(driver, "chart-throughput")
    assert "bucket start (local time)" in throughput.text

    # services
    database, storage = _el(driver, "service-database"), _el(driver, "service-storage")
    assert "healthy" in database.text and "100%" in database.text
    assert "5 ms" in database.text  # the latest check (and the p95 of 3, 4, 5 ms)
    assert "down" in (storage.get_attribute("class") or "").split()
    assert "connection refused" in storage.text and "33.33%" in storage.text
    assert "5.00 s" in storage.text

    # alerts: the active one with both buttons, the acknowledged one without Acknowledge
    active, acked = alerts["active"], alerts["acknowledged"]
    alert = _el(driver, f"alert-{active}")
    assert "storage is down: connection refused" in alert.text
    assert _all(driver, f"ack-{active}") and _all(driver, f"resolve-{active}")
    assert "database is degraded" in _el(driver, f"alert-{acked}").text
    assert not _all(driver, f"ack-{acked}") and _all(driver, f"resolve-{acked}")
    assert not _all(driver, f"alert-{alerts['resolved']}")

    # tables
    assert _table(driver, "table-errors") == [[PARSE_ERROR, "2"], ["unsupported content", "1"]]
    assert _table(driver, "table-content-types") == [
        ["application/pdf", "7", "5", "2"],
        ["text/plain", "3", "2", "1"],
    ]
    assert [row[0] for row in _table(driver, "table-priorities")] == ["high", "normal", "low"]
    stages = {row[0]: row for row in _table(driver, "table-stages")}
    assert stages["reading"][1] == "7" and stages["extracting"][1] == "7"
    assert stages["reading"][2] == "200 ms"  # (100+150+50+200+300+100+500) / 7

    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "dashboard.png"
    # the whole page in one image: a window as tall as the page plus the browser's own frame
    height, frame = driver.execute_script(
        "return [document.documentElement.scrollHeight, outerHeight - innerHeight]"
    )
    driver.set_window_size(1366, int(height) + int(frame))
    wait.until(
        lambda d: d.execute_script("return innerHeight") >= int(height),
        "the window did not grow to the page's height",
    )
    assert driver.save_screenshot(str(screenshot))
    driver.set_window_size(1366, 900)
    print(f"screenshot: {screenshot}")
    assert _severe(driver) == []  # no script error, no CSP violation, no failed request

    # acknowledge: the page refreshes and the database agrees
    _el(driver, f"ack-{active}").click()
    wait.until(lambda d: not _all(d, f"ack-{active}"))
    wait.until(lambda d: "acknowledged" in _el(d, f"alert-{active}").text)
    assert "acknowledged" in (_el(driver, f"alert-{active}").get_attribute("class") or "")
    row = sql.execute(
        "select status, acknowledged_at is not null from public.alert_events where id = %s",
        (active,),
    ).fetchone()
    assert row == ("acknowledged", True)

    # the window selector: the last hour holds 2 completed and 1 failed job
    Select(_el(driver, "window-select")).select_by_value("1h")
    wait.until(lambda d: _tile(d, "completed") == "2")
    assert _tile(driver, "failed") == "1"
    assert _tile(driver, "success-rate") == "66.7%"
    assert len(_all(driver, "bar-completed")) >= 1
    assert _severe(driver) == []

    # sign out, then a token that is not an admin's: a clear message and the form again
    _el(driver, "sign-out").click()
    assert _el(driver, "token-form").is_displayed()
    assert driver.execute_script("return sessionStorage.length") == 0
    _el(driver, "token-input").send_keys(user.token)
    _el(driver, "token-submit").click()
    wait.until(lambda d: _el(d, "error-message").is_displayed())
    assert "not belong to an admin" in _el(driver, "error-message").text
    assert _el(driver, "token-form").is_displayed()
    assert not _el(driver, "tile-completed").is_displayed()
    assert driver.execute_script("return sessionStorage.length") == 0
    # only the refused API calls may be logged
    unexpected = [e for e in _severe(driver) if "status of 403" not in e["message"]]
    assert unexpected == []


def test_dashboard_page_is_public_static_and_locked_down(
    client_for: Callable[[str], FlaskClient],
) -> None:
    response = client_for("admin").get("/admin/dashboard")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp
    assert re.search(r"script-src 'sha256-[A-Za-z0-9+/]+=*'(;|$)", csp), csp
    assert re.search(r"style-src 'sha256-[A-Za-z0-9+/]+=*'(;|$)", csp), csp
    assert "unsafe" not in csp
    html = response.get_data(as_text=True)
    assert not re.search(r"https?://", html)
    # one plain inline script and one plain inline style; no handler or style attributes
    assert html.count("<script") == 1 and html.count("<script>") == 1
    assert html.count("<style") == 1 and html.count("<style>") == 1
    markup = re.sub(r"<(script|style)>.*?</\1>", "", html, flags=re.S)
    assert not re.search(r"\son[a-z]+\s*=", markup, flags=re.I)
    assert not re.search(r"\sstyle\s*=", markup, flags=re.I)
