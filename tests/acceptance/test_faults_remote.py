"""Fault matrix, remote dependencies (issue 17): the LLM provider failing while a job is
`analyzing`, and the alert receivers hanging while a probe run notifies.

The provider is respx (it answers by the request's body: the summary's request, or the
analysis's with its `response_format` or `tools`); the queue is the real one, its transitions
made at a clock the test moves to each job's `run_at` (`ClockedDatabase`), so backoff is read
from the rows and nothing sleeps. The receivers are local sockets: one that accepts and never
says a word (a webhook or SMTP server that hangs), then, on the same port, the real receivers of
tests/support/receivers.py (http.server and aiosmtpd), stopped at teardown.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
import respx
from psycopg.rows import dict_row

from shared.documents.pipeline import document_worker
from shared.jobs.worker import DrainReport
from shared.ops import probes as monitoring
from shared.platform.client import Database
from shared.platform.config import Settings
from tests.support.data import SAMPLES
from tests.support.env import configure
from tests.support.http import ClientFor, uploaded
from tests.support.receivers import Receivers
from tests.support.rows import event_counts, job_events, job_row
from tests.support.tokens import bearer, scheduler_headers
from tests.support.users import MakeUser
from tests.support.waiting import wait_until

# A bound on a hang, never a timing assertion: a probe run that has not returned by then hangs.
RUN_BOUND_SECONDS = 60.0


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def docflow_logs(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[[], list[logging.LogRecord]]]:
    """The `docflow` log records at LOG_LEVEL=INFO, as the functions log them (their logger
    does not propagate to the root, where caplog listens: a handler of its own collects)."""
    monkeypatch.setenv("LOG_LEVEL", "INFO")  # main.py sets the level each time it is loaded
    logger = logging.getLogger("docflow")
    level = logger.level
    logger.setLevel(logging.INFO)
    collect = _Collect()
    logger.addHandler(collect)
    try:
        yield lambda: list(collect.records)
    finally:
        logger.removeHandler(collect)
        logger.setLevel(level)


def _no_secret_logged(records: list[logging.LogRecord], *secrets: str) -> None:
    for record in records:
        text = json.dumps(record.__dict__, default=str)
        for secret in secrets:
            assert secret not in text, (record.name, record.getMessage())


# --- LLM: a 429 storm, then 5xx, then a timeout --------------------------------------------------

# The queue's transitions that take `now`; the handler's own calls (get_document,
# set_document_text) are not time-dependent and go through unchanged.
QUEUE_CALLS = frozenset(
    {
        "claim_jobs",
        "heartbeat_jobs",
        "complete_jobs",
        "fail_jobs",
        "release_jobs",
        "recover_stalled_jobs",
    }
)

KEY = "sk-test-fault-key-never-logged"
SUMMARY = {"summary": "Revenue grew; hiring is the risk.", "key_points": ["Revenue +11 %"]}
# A sentence of the document (no request, error, row or log may repeat it).
DOCUMENT_SENTENCE = "Revenue grew eleven percent"


class ClockedDatabase(Database):
    """The test's database, with the queue's transitions made at `now` (the injected clock)."""

    def __init__(self, db: Database, now: datetime) -> None:
        super().__init__(db.transport)
        self.now = now

    def call(self, fn: str, /, **params: Any) -> Any:
        if fn in QUEUE_CALLS:
            params.setdefault("now", self.now)
        return super().call(fn, **params)


@dataclass(frozen=True)
class Provider:
    name: str
    env: dict[str, str]
    url: str
    analysis_key: str  # in the analysis request's body only: response_format | tools

    def summary_reply(self) -> httpx.Response:
        if self.name == "openai":
            message = {"message": {"content": json.dumps(SUMMARY)}}
            usage = {"prompt_tokens": 400, "completion_tokens": 50}
            return httpx.Response(200, json={"choices": [message], "usage": usage})
        block = {"type": "text", "text": json.dumps(SUMMARY)}
        usage = {"input_tokens": 400, "output_tokens": 50}
        return httpx.Response(200, json={"content": [block], "usage": usage})


PROVIDERS = {
    "openai": Provider(
        "openai",
        {"SUMMARIZER": "openai", "OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": "https://llm.example.test/v1"},
        "https://llm.example.test/v1/chat/completions",
        "response_format",
    ),
    "anthropic": Provider(
        "anthropic",
        {"SUMMARIZER": "anthropic", "ANTHROPIC_API_KEY": KEY, "ANTHROPIC_BASE_URL": "https://llm.example.test"},
        "https://llm.example.test/v1/messages",
        "tools",
    ),
}  # fmt: skip

RATE_LIMITED = "rate limited"
UNAVAILABLE = "unavailable"
TIMEOUT = "timeout"
OK = "ok"


def _fault(kind: str, request: httpx.Request) -> httpx.Response:
    if kind == RATE_LIMITED:
        error = {"type": "rate_limit_error", "message": "Too many requests"}
        return httpx.Response(429, headers={"Retry-After": "20"}, json={"error": error})
    if kind == UNAVAILABLE:
        return httpx.Response(503, json={"error": {"type": "overloaded_error"}})
    assert kind == TIMEOUT
    raise httpx.ReadTimeout("the provider did not answer", request=request)


# Each attempt: the requests it makes, in order, as (which request, the provider's answer). The
# summary is asked first; the analysis only once the summary is in.
STORM_5XX_TIMEOUT = [
    [("summary", RATE_LIMITED)],
    [("summary", OK), ("analysis", RATE_LIMITED)],
    [("summary", UNAVAILABLE)],
    [("summary", OK), ("analysis", TIMEOUT)],
]
STORM_TO_THE_END = [
    [("summary", RATE_LIMITED)],
    [("summary", OK), ("analysis", RATE_LIMITED)],
    [("summary", RATE_LIMITED)],
    [("summary", OK), ("analysis", RATE_LIMITED)],
]
CODES = {
    RATE_LIMITED: "summarizer_rate_limited",
    UNAVAILABLE: "summarizer_unavailable",
    TIMEOUT: "summarizer_unavailable",
}

# Backoff settings for the test: growth 3x from 10 s, a 60 s cap that the third delay reaches,
# and a wide jitter, so that the bounds of every delay differ from those of the others.
RETRY = {"initial": 10.0, "multiplier": 3.0, "max": 60.0, "jitter": 0.5}


def _delay_bounds(attempt: int) -> tuple[float, float, float]:
    """(lowest, nominal, highest) delay after failed attempt `attempt`: jitter, then the cap."""
    nominal = RETRY["initial"] * RETRY["multiplier"] ** (attempt - 1)
    jitter, cap = RETRY["jitter"], RETRY["max"]
    return min(cap, nominal * (1 - jitter)), min(cap, nominal), min(cap, nominal * (1 + jitter))


@pytest.mark.parametrize(
    ("plan", "last_code"),
    [
        pytest.param(STORM_5XX_TIMEOUT, "summarizer_unavailable", id="429s-5xx-timeout"),
        pytest.param(STORM_TO_THE_END, "summarizer_rate_limited", id="429s-to-the-end"),
    ],
)
@pytest.mark.parametrize("provider", list(PROVIDERS.values()), ids=list(PROVIDERS))
def test_an_llm_failing_while_analyzing_is_retried_with_backoff_then_failed(
    client_for: ClientFor,
    make_user: MakeUser,
    db: Database,
    sql: psycopg.Connection,
    monkeypatch: pytest.MonkeyPatch,
    docflow_logs: Callable[[], list[logging.LogRecord]],
    provider: Provider,
    plan: list[list[tuple[str, str]]],
    last_code: str,
) -> None:
    settings = configure(
        monkeypatch,
        **provider.env,
        JOB_MAX_ATTEMPTS=len(plan),
        RETRY_INITIAL_SECONDS=RETRY["initial"],
        RETRY_MULTIPLIER=RETRY["multiplier"],
        RETRY_MAX_SECONDS=RETRY["max"],
        RETRY_JITTER=RETRY["jitter"],
        # Every stage reaches the row at the next heartbeat. (A stage reported while a
        # heartbeat is being written can miss it and wait for the next regular one: beat often.)
        PROGRESS_WRITE_SECONDS=0,
        HEARTBEAT_SECONDS=0.2,
    )
    user = make_user()
    sample = SAMPLES / "quarterly-report.txt"
    assert DOCUMENT_SENTENCE in sample.read_text()
    job_id = str(uploaded(client_for("uploads"), user, sample.read_bytes(), sample.name)["job_id"])

    steps = iter([step for attempt in plan for step in attempt])
    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        asked.append("analysis" if provider.analysis_key in body else "summary")
        # The provider is asked while the job is `analyzing`, and the row says so.
        wait_until(lambda: job_row(sql, job_id)["stage"] == "analyzing", "stage analyzing")
        expected, outcome = next(steps)
        assert asked[-1] == expected, asked
        return provider.summary_reply() if outcome == OK else _fault(outcome, request)

    clocked = ClockedDatabase(db, job_row(sql, job_id)["run_at"])  # due from its creation
    reports: list[DrainReport] = []
    jobs_api = client_for("jobs")
    with respx.mock(assert_all_called=True) as mock:
        mock.post(provider.url).side_effect = answer
        for attempt, requests in enumerate(plan, start=1):
            due = clocked.now
            reports.append(document_worker(clocked, settings).drain(max_jobs=10, max_seconds=60))
            row = job_row(sql, job_id)
            fault = requests[-1][1]
            assert (row["attempts"], row["error_code"], row["error_recoverable"]) == (
                attempt,
                CODES[fault],
                True,
            ), row
            if attempt == len(plan):
                break
            # Back in the queue, due after the backoff: the nominal delay of this attempt,
            # jittered within its bounds, then capped.
            assert row["status"] == "pending"
            delay = (row["run_at"] - due).total_seconds()
            low, nominal, high = _delay_bounds(attempt)
            assert low <= delay <= high, (attempt, delay)
            if high < RETRY["max"]:
                # Jittered: exactly the nominal delay has a chance of about 1 in 10^7.
                assert delay != nominal, (attempt, delay)
            scheduled = [e for e in job_events(sql, job_id) if e["event_type"] == "retry_scheduled"]
            details = scheduled[-1]["details"]
            assert (details["attempt"], details["error_code"]) == (attempt, CODES[fault])
            assert abs(details["delay_ms"] - delay * 1000) <= 1
            assert scheduled[-1]["stage"] == "analyzing"
            # What the user sees meanwhile: pending, the attempt's error, and when it runs next.
            seen = jobs_api.get(f"/jobs/{job_id}", headers=bearer(user)).get_json()
            assert (seen["status"], seen["attempts"], seen["error"]["code"]) == (
                "pending",
                attempt,
                CODES[fault],
            )
            assert datetime.fromisoformat(seen["run_at"]) == row["run_at"]
            # Not due a moment before its run_at: a drain then claims nothing.
            clocked.now = row["run_at"] - timedelta(milliseconds=1)
            early = document_worker(clocked, settings).drain(max_jobs=10, max_seconds=60)
            assert early.claimed == 0 and job_row(sql, job_id)["attempts"] == attempt
            clocked.now = row["run_at"]

    # Every attempt ran once and made exactly the requests of the plan.
    assert [(r.claimed, r.retried, r.failed) for r in reports] == [(1, 1, 0)] * (len(plan) - 1) + [
        (1, 0, 1)
    ]
    assert asked == [kind for attempt in plan for kind, _ in attempt]
    assert next(steps, None) is None

    row = job_row(sql, job_id)
    assert (row["status"], row["attempts"], row["max_attempts"]) == ("failed", len(plan), len(plan))
    assert (row["error_code"], row["error_recoverable"]) == (last_code, True)
    assert row["result"] is None and row["completed_at"] == clocked.now
    assert event_counts(sql, job_id) == {
        "upload_started": 1,
        "processing_started": len(plan),
        "retry_scheduled": len(plan) - 1,
        "failed": 1,
    }
    (failed,) = [e for e in job_events(sql, job_id) if e["event_type"] == "failed"]
    assert (failed["stage"], failed["details"]["error_code"]) == ("analyzing", last_code)
    assert failed["details"]["attempt"] == len(plan)

    # What the user sees: failed, with the last error's code, recoverable (worth a retry later).
    job = jobs_api.get(f"/jobs/{job_id}", headers=bearer(user)).get_json()
    assert (job["status"], job["attempts"], job["error"]["code"]) == (
        "failed",
        len(plan),
        last_code,
    )
    assert job["error"]["recoverable"] is True
    assert provider.name in job["error"]["message"]
    assert KEY not in json.dumps(job) and DOCUMENT_SENTENCE not in json.dumps(job)

    # What the operator sees in the logs: one warning per failed request, with the code and
    # the HTTP status (none for the timeout), and one line per failed attempt.
    records = docflow_logs()
    failures = [r for r in records if r.getMessage().endswith("request failed")]
    expected = [CODES[attempt[-1][1]] for attempt in plan]
    assert [r.__dict__["error_code"] for r in failures] == expected
    assert [r.__dict__["provider"] for r in failures] == [provider.name] * len(plan)
    statuses = [r.__dict__["http_status"] for r in failures]
    assert statuses == [
        {RATE_LIMITED: 429, UNAVAILABLE: 503, TIMEOUT: None}[a[-1][1]] for a in plan
    ]
    attempts = [r.__dict__["status"] for r in records if r.getMessage() == "job attempt failed"]
    assert attempts == ["pending"] * (len(plan) - 1) + ["failed"]
    _no_secret_logged(records, KEY, DOCUMENT_SENTENCE)


# --- notifications: the webhook and SMTP receivers hang ------------------------------------------

SENDER = "docflow@example.test"
RECIPIENTS = ["ops@example.test", "oncall@example.test"]
WEBHOOK_PATH = "/services/T000/B000/FAULT"
NOTIFY_TIMEOUT_SECONDS = 1.0  # PROBE_TIMEOUT_SECONDS: each network step of a delivery


def failing() -> dict[str, Any]:
    raise RuntimeError("the service refused the connection")


def _probe_run(client_for: ClientFor) -> dict[str, Any]:
    """POST /probe_health in a thread; fails the test if the run has not returned within the
    bound (a hang), and returns its report."""
    answer: dict[str, Any] = {}

    def run() -> None:
        response = client_for("probe_health").post("/probe_health", headers=scheduler_headers())
        answer["status"], answer["body"] = response.status_code, response.get_json()

    thread = threading.Thread(target=run, name="probe-run", daemon=True)
    thread.start()
    thread.join(timeout=RUN_BOUND_SECONDS)
    assert not thread.is_alive(), "the probe run hangs"
    assert answer["status"] == 200, answer
    body: dict[str, Any] = answer["body"]
    return body


def _alerts(sql: psycopg.Connection) -> list[dict[str, Any]]:
    with sql.cursor(row_factory=dict_row) as cur:
        return cur.execute("select * from public.alert_events order by id").fetchall()


def test_hanging_notification_receivers_never_stop_a_probe_run_and_are_retried_next_run(
    client_for: ClientFor,
    sql: psycopg.Connection,
    monkeypatch: pytest.MonkeyPatch,
    receivers: Receivers,
    docflow_logs: Callable[[], list[logging.LogRecord]],
) -> None:
    hook_silent, smtp_silent = receivers.silent(), receivers.silent()
    settings: Settings = configure(
        monkeypatch,
        ALERT_WEBHOOK_URL=f"http://127.0.0.1:{hook_silent.port}{WEBHOOK_PATH}",
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(smtp_silent.port),
        SMTP_USERNAME=None,
        SMTP_PASSWORD=None,
        SMTP_STARTTLS="false",
        ALERT_EMAIL_FROM=SENDER,
        ALERT_EMAIL_TO=", ".join(RECIPIENTS),
        ALERT_OPEN_AFTER="1",
        PROBE_TIMEOUT_SECONDS=str(NOTIFY_TIMEOUT_SECONDS),
    )
    assert settings.probe_timeout_seconds == NOTIFY_TIMEOUT_SECONDS
    # Two services that fail: the first run opens two alerts, so two notifications are due.
    monkeypatch.setattr(
        monitoring, "probes", lambda *args, **kw: {"payments": failing, "ledger": failing}
    )

    first = _probe_run(client_for)
    # The run finished: both checks recorded, both alerts opened, and the report shows the
    # notifications it could not deliver.
    assert [(c["service"], c["status"], c["recorded"]) for c in first["checks"]] == [
        ("payments", "down", True),
        ("ledger", "down", True),
    ]
    opened = sorted(a for c in first["checks"] for a in c["alerts_opened"])
    assert len(opened) == 2
    assert first["notifications"] == {"due": 2, "delivered": 0, "failed": 2}
    # Each hanging channel was tried once (one timeout each); the second notification did not
    # wait on them again.
    assert wait_until(lambda: hook_silent.accepted, "the webhook connection") == 1
    assert wait_until(lambda: smtp_silent.accepted, "the SMTP connection") == 1
    alerts = _alerts(sql)
    assert [(a["id"], a["status"], a["notifications"], a["notified_at"]) for a in alerts] == [
        (alert_id, "active", 0, None) for alert_id in opened
    ]

    records = docflow_logs()
    not_delivered = [r.__dict__ for r in records if r.getMessage() == "notification not delivered"]
    timed_out = [(r["channel"], r["error_type"]) for r in not_delivered if "error_type" in r]
    assert timed_out == [("webhook", "ReadTimeout"), ("email", "SMTPServerDisconnected")]
    skipped = [(r["channel"], r["reason"]) for r in not_delivered if "reason" in r]
    assert skipped == [
        ("webhook", "channel_failed_earlier_in_run"),
        ("email", "channel_failed_earlier_in_run"),
    ]
    assert {r["alert_id"] for r in not_delivered} == set(opened)

    # The receivers answer on the same ports: the next run delivers both, on both channels.
    hook_silent.close()
    smtp_silent.close()
    hook = receivers.webhook(hook_silent.port)
    mail = receivers.smtp(smtp_silent.port)
    second = _probe_run(client_for)
    assert second["notifications"] == {"due": 2, "delivered": 2, "failed": 0}
    assert sorted((a["id"], a["kind"]) for a in hook.alerts) == [(i, "opened") for i in opened]
    assert sorted(mail.subjects) == [
        "[docflow] service_down: ledger (opened)",
        "[docflow] service_down: payments (opened)",
    ]
    assert [(a["notifications"], a["notified_at"] is not None) for a in _alerts(sql)] == [
        (1, True),
        (1, True),
    ]

    # Delivered once: the run after that has nothing due and sends nothing.
    third = _probe_run(client_for)
    assert third["notifications"] == {"due": 0, "delivered": 0, "failed": 0}
    assert len(hook.alerts) == 2 and len(mail.subjects) == 2
    _no_secret_logged(docflow_logs(), WEBHOOK_PATH)
