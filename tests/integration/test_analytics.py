"""Every figure of the analytics report, checked against an independent Python computation.

The data is seeded through the real queue paths (`create_upload`, `claim_jobs`, `complete_jobs`,
`fail_jobs`, `enqueue_jobs`) and, for volume, a few thousand events inserted directly by a seeded
random generator over 35 days, in several statements. The raw rows are then read back through
the `sql` fixture (superuser) and every figure is recomputed here in plain Python (joins, bins,
nearest-rank percentiles with exact ranks, exact log-bucket indices with fractions: nothing calls
the SQL under test), and compared with `analytics_report(window, now)` for the four windows at a
fixed `now`, before, between and after folds. Counts are exact, averages to 3 decimals,
percentiles within the histogram's 1 % bound.

Text values that the report orders by (content types, error messages, priorities) are chosen so
that their order is the same under the C and the usual ICU/glibc collations.
"""

from __future__ import annotations

import math
import random
import threading
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from functools import cache
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from shared.ops import analytics
from shared.platform.client import Database
from shared.platform.errors import Unprocessable
from tests.support.factories import create_upload

# Not aligned to any grain: the newest bucket of every window is partial.
NOW = datetime(2026, 3, 15, 12, 37, 23, 456789, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
WINDOWS = {"1h": (300, 12), "24h": (3600, 24), "7d": (3600, 168), "30d": (86400, 30)}
GRAINS = (300, 3600, 86400)
MS = timedelta(milliseconds=1)
ZERO_BUCKET = -32768
STAGE_ORDER = ["validating", "reading", "parsing", "extracting", "analyzing", "finalizing"]
PRIORITY_ORDER = {"high": 0, "normal": 1, "low": 2}

CONTENT_TYPES = ["application/pdf", "text/plain", "text/markdown", "image/png"]
# Distinct first letters: ties in count order the same under any collation.
ERROR_WORDS = [
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
    "juliet", "kilo", "lima", "mike",
]  # fmt: skip
LONG_ERROR = "zulu " + "the payload was far too large to parse " * 10  # > 300 characters

INSERT_EVENTS = """
insert into public.document_processing_events
  (document_id, user_id, job_id, event_type, duration_ms, error_message, stage, details,
   created_at)
select e.document_id, e.user_id, e.job_id, e.event_type, e.duration_ms, e.error_message,
       e.stage, e.details, e.created_at
  from jsonb_to_recordset(%s) as e(
    document_id uuid, user_id uuid, job_id uuid, event_type text, duration_ms integer,
    error_message text, stage text, details jsonb, created_at timestamptz)
"""


# --- the Python reference ------------------------------------------------------------------


def bin_start(t: datetime, grain: int) -> datetime:
    """The start of the epoch-aligned bucket of `grain` seconds holding `t`."""
    return EPOCH + timedelta(seconds=grain) * ((t - EPOCH) // timedelta(seconds=grain))


def micros(delta: timedelta) -> int:
    return delta // timedelta(microseconds=1)


@cache
def _ratio_pow(k: int) -> Fraction:
    return Fraction(51, 50) ** k


def bucket_index(v: float) -> int:
    """The exact log bucket: the smallest k with 1.02^k >= v (v > 0.001), else the zero bucket."""
    if v <= 0.001:
        return ZERO_BUCKET
    x = Fraction(v)
    k = math.ceil(math.log(v) / math.log(1.02))
    while _ratio_pow(k) < x:
        k += 1
    while _ratio_pow(k - 1) >= x:
        k -= 1
    return k


def nearest_rank(sorted_values: list[float], p: Fraction) -> float | None:
    """The smallest value v such that at least ceil(p·N) values are <= v."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p * len(sorted_values)))  # exact: p is a Fraction
    return sorted_values[rank - 1]


def round_half_up(x: Fraction, places: int) -> Decimal:
    q = Decimal(1).scaleb(-places)
    return (Decimal(x.numerator) / Decimal(x.denominator)).quantize(q, rounding=ROUND_HALF_UP)


def json_text(details: Any, key: str) -> str | None:
    """`details ->> key` for the values these tests use (strings and integers)."""
    if not isinstance(details, dict) or details.get(key) is None:
        return None
    value = details[key]
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def first(*values: str | None) -> str:
    """SQL's coalesce."""
    return next(v for v in values if v is not None)


def stage_times(timings: Any) -> list[tuple[str, float]]:
    """The sane (stage, ms) pairs of a job's `result.timings_ms`."""
    if not isinstance(timings, dict):
        return []
    out = []
    for key, value in timings.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if 0 <= value <= 1e12:
            out.append((key[:50], float(value)))
    return out


@dataclass(frozen=True)
class Fact:
    created_at: datetime
    event_type: str
    priority: str
    content_type: str
    duration_ms: int | None
    wait_ms: float | None
    stages: tuple[tuple[str, float], ...]
    error_message: str | None


@dataclass
class Raw:
    events: list[dict[str, Any]]
    jobs: dict[Any, dict[str, Any]]
    documents: dict[Any, dict[str, Any]]
    facts: list[Fact] = field(default_factory=list)


def read_raw(sql: psycopg.Connection) -> Raw:
    with sql.cursor(row_factory=dict_row) as cur:
        events = cur.execute(
            "select id, created_at, event_type, duration_ms, error_message, details, job_id,"
            "       document_id"
            "  from public.document_processing_events order by id"
        ).fetchall()
        jobs = cur.execute(
            "select id, priority, created_at, result from public.processing_jobs"
        ).fetchall()
        documents = cur.execute("select id, content_type from public.documents").fetchall()
    raw = Raw(events, {j["id"]: j for j in jobs}, {d["id"]: d for d in documents})
    raw.facts = [fact_of(e, raw) for e in events]
    return raw


def fact_of(e: dict[str, Any], raw: Raw) -> Fact:
    job = raw.jobs.get(e["job_id"])
    doc = raw.documents.get(e["document_id"])
    priority = first(json_text(e["details"], "priority"), job and job["priority"], "unknown")
    content_type = first(
        json_text(e["details"], "content_type"), doc and doc["content_type"], "unknown"
    )[:255]
    wait = None
    if (
        e["event_type"] == "processing_started"
        and json_text(e["details"], "attempt") == "1"
        and job is not None
    ):
        wait = max(0, micros(e["created_at"] - job["created_at"])) / 1000
    stages: tuple[tuple[str, float], ...] = ()
    if e["event_type"] == "completed" and job is not None and isinstance(job["result"], dict):
        stages = tuple(stage_times(job["result"].get("timings_ms")))
    return Fact(
        e["created_at"],
        e["event_type"],
        priority,
        content_type,
        e["duration_ms"],
        wait,
        stages,
        e["error_message"],
    )


def durations(facts: Iterable[Fact]) -> list[int]:
    return sorted(
        f.duration_ms
        for f in facts
        if f.event_type == "completed" and f.duration_ms is not None and f.duration_ms >= 0
    )


def expected_report(raw: Raw, window: str, now: datetime) -> dict[str, Any]:
    grain, n = WINDOWS[window]
    width = timedelta(seconds=grain)
    last = bin_start(now, grain)
    since = last - width * (n - 1)
    facts = [f for f in raw.facts if since <= f.created_at < last + width]
    types = Counter(f.event_type for f in facts)
    created = types["upload_started"] + types["enqueued"]
    completed, failed = types["completed"], types["failed"]
    seconds = max(Fraction(micros(now - since), 10**6), 1)

    def groups(key: Callable[[Fact], str]) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for f in facts:
            kind = {"upload_started": "created", "enqueued": "created"}.get(
                f.event_type, f.event_type
            )
            if kind in ("created", "completed", "failed"):
                row = out.setdefault(key(f), {"created": 0, "completed": 0, "failed": 0})
                row[kind] += 1
        return out

    by_type = groups(lambda f: f.content_type)
    by_priority = groups(lambda f: f.priority)
    durs = durations(facts)
    waits = sorted(f.wait_ms for f in facts if f.wait_ms is not None and f.wait_ms >= 0)
    per_bucket: dict[datetime, list[Fact]] = defaultdict(list)
    for f in facts:
        per_bucket[bin_start(f.created_at, grain)].append(f)
    series = []
    for i in range(n):
        start = since + width * i
        in_bucket = per_bucket.get(start, [])
        kinds = Counter(f.event_type for f in in_bucket)
        series.append(
            {
                "start": start,
                "completed": kinds["completed"],
                "failed": kinds["failed"],
                "p95_ms": nearest_rank(durations(in_bucket), Fraction(95, 100)),
            }
        )
    errors = Counter(
        e["error_message"][:300]
        for e in raw.events
        if e["error_message"] is not None and since <= e["created_at"] <= now
    )
    stage_n: Counter[str] = Counter()
    stage_total: dict[str, Fraction] = defaultdict(Fraction)
    for f in facts:
        for stage, ms in f.stages:
            stage_n[stage] += 1
            stage_total[stage] += Fraction(ms)

    def stage_key(s: str) -> tuple[int, str]:
        return (STAGE_ORDER.index(s) if s in STAGE_ORDER else 6, s)

    return {
        "window": window,
        "since": since,
        "until": now,
        "bucket_seconds": grain,
        "event_counts": dict(types),
        "jobs": {
            "created": created,
            "completed": completed,
            "failed": failed,
            "success_rate": (
                round_half_up(Fraction(completed, completed + failed), 4)
                if completed + failed
                else None
            ),
            "throughput_per_hour": round_half_up(completed / seconds * 3600, 3),
        },
        "duration_ms": {
            "count": len(durs),
            "avg": Fraction(sum(durs), len(durs)) if durs else None,
            "p50": nearest_rank(durs, Fraction(50, 100)),
            "p95": nearest_rank(durs, Fraction(95, 100)),
            "p99": nearest_rank(durs, Fraction(99, 100)),
        },
        "queue_wait_ms": {
            "count": len(waits),
            "avg": sum(Fraction(w) for w in waits) / len(waits) if waits else None,
            "p95": nearest_rank(waits, Fraction(95, 100)),
        },
        "by_content_type": [
            {"content_type": k, **v}
            for k, v in sorted(by_type.items(), key=lambda kv: (-kv[1]["created"], kv[0]))
        ],
        "by_priority": [
            {"priority": k, **v}
            for k, v in sorted(
                by_priority.items(), key=lambda kv: (PRIORITY_ORDER.get(kv[0], 3), kv[0])
            )
        ],
        "series": series,
        "top_errors": [
            {"message": m, "count": c}
            for m, c in sorted(errors.items(), key=lambda mc: (-mc[1], mc[0]))[:10]
        ],
        "stages": [
            {"stage": s, "count": stage_n[s], "avg_ms": stage_total[s] / stage_n[s]}
            for s in sorted(stage_n, key=stage_key)
        ],
    }


# --- comparisons ---------------------------------------------------------------------------


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


def assert_avg(actual: float | None, exact: Fraction | None, label: str) -> None:
    if exact is None:
        assert actual is None, label
        return
    assert actual is not None, label
    assert abs(Fraction(actual) - exact) <= Fraction(1, 1000), (label, actual, float(exact))


def assert_percentile(actual: float | None, exact: float | None, label: str) -> None:
    """Within the histogram bound: 1 % relative (plus the 3-decimal rounding of the report)."""
    if exact is None:
        assert actual is None, label
        return
    assert actual is not None, label
    if exact <= 0.001:  # the zero bucket
        assert actual == 0, (label, actual, exact)
        return
    error = abs(actual - exact) - 0.0005  # the report rounds to 3 decimals
    assert error <= 0.02 * exact, (label, actual, exact)  # the bound
    assert error <= 0.0101 * exact, (label, actual, exact)  # the bucket math: ratio 1.02


def assert_report(actual: dict[str, Any], raw: Raw, window: str, now: datetime) -> None:
    exp = expected_report(raw, window, now)
    assert actual["window"] == window
    assert ts(actual["since"]) == exp["since"]
    assert ts(actual["until"]) == exp["until"]
    assert actual["bucket_seconds"] == exp["bucket_seconds"]
    assert actual["percentile_relative_error"] == 0.01
    assert actual["event_counts"] == exp["event_counts"], window

    jobs, ejobs = actual["jobs"], exp["jobs"]
    assert {k: jobs[k] for k in ("created", "completed", "failed")} == {
        k: ejobs[k] for k in ("created", "completed", "failed")
    }, window
    if ejobs["success_rate"] is None:
        assert jobs["success_rate"] is None
    else:
        assert Decimal(str(jobs["success_rate"])) == ejobs["success_rate"], window
    assert abs(Decimal(str(jobs["throughput_per_hour"])) - ejobs["throughput_per_hour"]) <= (
        Decimal("0.001")
    ), window

    dur, edur = actual["duration_ms"], exp["duration_ms"]
    assert dur["count"] == edur["count"], window
    assert_avg(dur["avg"], edur["avg"], f"{window} duration avg")
    for p in ("p50", "p95", "p99"):
        assert_percentile(dur[p], edur[p], f"{window} duration {p}")
    wait, ewait = actual["queue_wait_ms"], exp["queue_wait_ms"]
    assert wait["count"] == ewait["count"], window
    assert_avg(wait["avg"], ewait["avg"], f"{window} queue wait avg")
    assert_percentile(wait["p95"], ewait["p95"], f"{window} queue wait p95")

    assert actual["by_content_type"] == exp["by_content_type"], window
    assert actual["by_priority"] == exp["by_priority"], window

    assert len(actual["series"]) == len(exp["series"]), window
    for got, want in zip(actual["series"], exp["series"], strict=True):
        assert ts(got["start"]) == want["start"]
        assert (got["completed"], got["failed"]) == (want["completed"], want["failed"]), want
        assert_percentile(got["p95_ms"], want["p95_ms"], f"{window} series {want['start']}")

    assert actual["top_errors"] == exp["top_errors"], window
    assert [(s["stage"], s["count"]) for s in actual["stages"]] == [
        (s["stage"], s["count"]) for s in exp["stages"]
    ], window
    for got, want in zip(actual["stages"], exp["stages"], strict=True):
        assert_avg(got["avg_ms"], want["avg_ms"], f"{window} stage {want['stage']}")


# --- seeding -------------------------------------------------------------------------------


def claim_one(db: Database, job_id: str, at: datetime, worker: str = "w1") -> dict:
    (job,) = db.call("claim_jobs", worker_id=worker, max_jobs=5, lease_seconds=900, now=at)
    assert job["id"] == job_id
    return job


def timings(rng: random.Random) -> dict[str, float]:
    stages = rng.sample(STAGE_ORDER, rng.randint(2, 6))
    return {s: round(rng.uniform(0.5, 5000), 3) for s in stages}


def seed_real_paths(db: Database, make_user: Callable[..., Any], rng: random.Random) -> None:
    """Jobs through the queue functions, one at a time (so each claim takes the job meant)."""
    users = [make_user() for _ in range(3)]
    completed_docs = []
    for i in range(24):
        # 10 jobs in the last hour, the others over the last 3 days; all done before NOW.
        back = rng.uniform(700, 3000) if i < 10 else rng.uniform(3600, 3 * 86400)
        t0 = NOW - timedelta(seconds=back)
        outcome = rng.choice(["complete"] * 5 + ["retry", "fail", "exhausted"])
        up = create_upload(
            db,
            rng.choice(users),
            now=t0,
            content_type=rng.choice(CONTENT_TYPES),
            priority=rng.choice(list(PRIORITY_ORDER)),
            max_attempts=1 if outcome == "exhausted" else 4,
        )
        job_id = up["job_id"]
        t = t0 + timedelta(seconds=rng.uniform(0.2, 120))
        claim_one(db, job_id, t)
        message = f"{rng.choice(ERROR_WORDS[:4])} worker error"
        if outcome in ("retry", "fail", "exhausted"):
            t += timedelta(seconds=rng.uniform(0.05, 100))
            out = db.call(
                "fail_jobs",
                worker_id="w1",
                failures=[
                    {
                        "id": job_id,
                        "attempt": 1,
                        "error_code": "parse_error",
                        "error_message": message,
                        "recoverable": outcome != "fail",
                    }
                ],
                now=t,
            )
            status = out["jobs"][job_id]["status"]
            assert status == ("pending" if outcome == "retry" else "failed")
            if outcome != "retry":
                continue
            t += timedelta(seconds=90)  # past the retry delay (at most 60 s)
            assert claim_one(db, job_id, t)["attempts"] == 2
        t += timedelta(seconds=rng.uniform(0.001, 200))
        attempt = 2 if outcome == "retry" else 1
        done = db.call(
            "complete_jobs",
            worker_id="w1",
            completions=[
                {"id": job_id, "attempt": attempt, "result": {"timings_ms": timings(rng)}}
            ],
            now=t,
        )
        assert done["completed"] == [job_id]
        completed_docs.append((up["document_id"], t))

    # Reanalysis of a few documents (enqueued events), claimed and completed as one batch.
    picked = rng.sample(completed_docs, 3)
    t = max(at for _, at in picked) + timedelta(seconds=5)
    new_ids = db.call(
        "enqueue_jobs",
        jobs=[{"document_id": doc, "priority": "high"} for doc, _ in picked],
        now=t,
    )
    claimed = db.call("claim_jobs", worker_id="w2", max_jobs=10, lease_seconds=900, now=t + MS)
    assert sorted(j["id"] for j in claimed) == sorted(new_ids)
    done = db.call(
        "complete_jobs",
        worker_id="w2",
        completions=[
            {"id": j, "attempt": 1, "result": {"timings_ms": timings(rng)}} for j in new_ids
        ],
        now=t + timedelta(seconds=3),
    )
    assert sorted(done["completed"]) == sorted(new_ids)


def random_events(
    rng: random.Random, n: int, jobs: list[Any], documents: list[Any]
) -> list[dict[str, Any]]:
    """`n` events over 35 days (denser recently), every type, wide duration range."""
    types = (
        ["completed"] * 40 + ["failed"] * 8 + ["upload_started"] * 14 + ["enqueued"] * 5
        + ["processing_started"] * 20 + ["retry_scheduled"] * 6 + ["cancelled"] * 3
        + ["stalled_recovered"] * 2 + ["released"] * 2
    )  # fmt: skip
    out = []
    for _ in range(n):
        span = rng.choice([3600, 86400, 7 * 86400, 35 * 86400])
        created = NOW - timedelta(microseconds=rng.randrange(span * 10**6))
        event_type = rng.choice(types)
        details: dict[str, Any] | None = None
        roll = rng.random()
        if roll < 0.15:
            details = {"priority": rng.choice(["high", "normal", "low", "bulk", "urgent"])}
        elif roll < 0.3:
            details = {"content_type": rng.choice([*CONTENT_TYPES, "video/mp4"])}
        elif roll < 0.4:
            details = {"priority": rng.choice(["low", "urgent"]), "content_type": "text/csv"}
        if event_type == "processing_started" and rng.random() < 0.8:
            details = {**(details or {}), "attempt": rng.choice([1, 1, 1, 2, 3])}
        duration = None
        if event_type in ("completed", "failed") and rng.random() > 0.03:
            r = rng.random()
            # 0 ms, then log-uniform from 1 ms to 10 minutes.
            duration = 0 if r < 0.03 else int(math.exp(rng.uniform(0, math.log(600_000))))
        error = None
        if event_type in ("failed", "retry_scheduled", "stalled_recovered") and rng.random() < 0.9:
            r = rng.random()
            if r < 0.05:
                error = LONG_ERROR + str(rng.randrange(10**6))  # grouped by its first 300
            else:
                word = ERROR_WORDS[min(int(rng.expovariate(0.35)), len(ERROR_WORDS) - 1)]
                error = f"{word} went wrong"
        r = rng.random()
        job_id = rng.choice(jobs) if r < 0.5 else (uuid.uuid4() if r < 0.6 else None)
        r = rng.random()
        doc_id = rng.choice(documents) if r < 0.5 else (uuid.uuid4() if r < 0.6 else None)
        out.append(
            {
                "document_id": str(doc_id) if doc_id else None,
                "user_id": None,
                "job_id": str(job_id) if job_id else None,
                "event_type": event_type,
                "duration_ms": duration,
                "error_message": error,
                "stage": None,
                "details": details,
                "created_at": created.isoformat(),
            }
        )
    return out


def insert_events(sql: psycopg.Connection, events: list[dict[str, Any]]) -> None:
    """One statement (the trigger fires once for all of them)."""
    sql.execute(INSERT_EVENTS, (Jsonb(events),))


def ids(sql: psycopg.Connection, table: str) -> list[Any]:
    return [r[0] for r in sql.execute(f"select id from public.{table} order by id").fetchall()]


def fold(sql: psycopg.Connection) -> int:
    row = sql.execute("select public.fold_analytics()").fetchone()
    assert row is not None
    return int(row[0])


# --- the report against the reference -------------------------------------------------------


def test_every_figure_of_every_window_matches_the_python_reference(
    db: Database, make_user, sql
) -> None:
    rng = random.Random(20261123)
    seed_real_paths(db, make_user, rng)
    assert fold(sql) > 0
    jobs, documents = ids(sql, "processing_jobs"), ids(sql, "documents")
    batches = [random_events(rng, size, jobs, documents) for size in (900, 700, 600, 500, 300)]
    for batch in batches[:3]:
        insert_events(sql, batch)
    assert fold(sql) == sum(map(len, batches[:3]))
    for batch in batches[3:]:  # left pending: the report adds them to the rollups
        insert_events(sql, batch)
    # A few one-row statements into buckets the batches already filled.
    for event in rng.sample(batches[0], 20):
        insert_events(sql, [event])

    raw = read_raw(sql)
    assert len(raw.facts) > 3000
    mixed = {w: db.call("analytics_report", window_name=w, now=NOW) for w in WINDOWS}
    for window, report in mixed.items():
        assert_report(report, raw, window, NOW)

    # Everything folded (the route's path): the same figures.
    for window in WINDOWS:
        report = analytics.report(db, window, now=NOW)
        assert_report(report, raw, window, NOW)
        assert report == mixed[window]
    assert sql.execute("select count(*) from public.analytics_pending").fetchone() == (0,)

    # Buckets are epoch-aligned whatever the session's time zone (the 30d window spans the US
    # switch to daylight saving time on 2026-03-08; Kolkata is UTC+05:30).
    for zone in ("America/New_York", "Asia/Kolkata"):
        sql.execute("select set_config('TimeZone', %s, false)", (zone,))
        for window in WINDOWS:
            row = sql.execute("select public.analytics_report(%s, %s)", (window, NOW)).fetchone()
            assert row is not None
            assert_report(row[0], raw, window, NOW)
    sql.execute("reset timezone")

    # The data is rich enough that every figure is exercised in every window.
    for window in WINDOWS:
        exp = expected_report(raw, window, NOW)
        assert exp["jobs"]["completed"] > 10 and exp["jobs"]["failed"] > 0, window
        assert exp["queue_wait_ms"]["count"] > 0 and exp["top_errors"], window
        assert exp["stages"] and len(exp["by_priority"]) > 3, window
    month = expected_report(raw, "30d", NOW)
    assert len(month["top_errors"]) == 10
    assert any(e["message"] == LONG_ERROR[:300] for e in month["top_errors"])
    assert month["duration_ms"]["count"] > 1000


def test_real_queue_paths_attribute_events_to_their_job_and_document(
    db: Database, make_user, sql
) -> None:
    """Priority and content type from the job and document, stages from the completed job's
    result, queue wait from the first claim: the joins the trigger makes at insert time."""
    user = make_user()
    t0 = NOW - timedelta(minutes=30)
    up = create_upload(db, user, now=t0, content_type="application/pdf", priority="low")
    claim_one(db, up["job_id"], t0 + timedelta(seconds=2.5))
    db.call(
        "complete_jobs",
        worker_id="w1",
        completions=[
            {
                "id": up["job_id"],
                "attempt": 1,
                "result": {"timings_ms": {"reading": 10, "parsing": 20.5}},
            }
        ],
        now=t0 + timedelta(seconds=4),
    )
    (again,) = db.call(
        "enqueue_jobs", jobs=[{"document_id": up["document_id"]}], now=t0 + timedelta(seconds=10)
    )
    claim_one(db, again, t0 + timedelta(seconds=11))
    db.call(
        "complete_jobs",
        worker_id="w1",
        completions=[
            {"id": again, "attempt": 1, "result": {"timings_ms": {"reading": 30, "parsing": 1}}}
        ],
        now=t0 + timedelta(seconds=12),
    )
    report = db.call("analytics_report", window_name="1h", now=NOW)
    assert report["event_counts"] == {"upload_started": 1, "enqueued": 1,
                                      "processing_started": 2, "completed": 2}  # fmt: skip
    assert report["by_priority"] == [
        {"priority": "normal", "created": 1, "completed": 1, "failed": 0},  # the reanalysis
        {"priority": "low", "created": 1, "completed": 1, "failed": 0},
    ]
    assert report["by_content_type"] == [
        {"content_type": "application/pdf", "created": 2, "completed": 2, "failed": 0}
    ]
    assert report["queue_wait_ms"]["count"] == 2
    assert report["queue_wait_ms"]["avg"] == 1750.0  # (2500 + 1000) / 2
    assert report["duration_ms"]["count"] == 2
    assert report["duration_ms"]["avg"] == 1250.0  # (1500 + 1000) / 2
    assert report["stages"] == [
        {"stage": "reading", "count": 2, "avg_ms": 20.0},
        {"stage": "parsing", "count": 2, "avg_ms": 10.75},
    ]
    assert_report(report, read_raw(sql), "1h", NOW)


def test_the_newest_bucket_counts_whole_but_errors_stop_at_now(db: Database, sql) -> None:
    """Documented semantics: counts cover whole buckets up to the end of the one holding `now`
    (events after `now` in it included), the error list covers [since, now] exactly."""
    assert bin_start(NOW, 300) == NOW.replace(minute=35, second=0, microsecond=0)
    rows = [
        ("failed", NOW - timedelta(minutes=1), "alpha before now"),
        ("failed", NOW + timedelta(minutes=1), "bravo after now"),  # same 5-minute bucket
        ("failed", NOW + timedelta(minutes=3), "charlie next bucket"),  # 12:40:23
        ("failed", bin_start(NOW, 300) - timedelta(minutes=55), "delta oldest bucket"),
        ("failed", bin_start(NOW, 300) - timedelta(minutes=55, microseconds=1), "echo too old"),
    ]
    insert_events(
        sql,
        [
            {"event_type": t, "duration_ms": 10, "error_message": m, "created_at": at.isoformat()}
            for t, at, m in rows
        ],
    )
    report = db.call("analytics_report", window_name="1h", now=NOW)
    assert report["jobs"]["failed"] == 3  # before now, after now (same bucket), oldest bucket
    assert [e["message"] for e in report["top_errors"]] == [
        "alpha before now",
        "delta oldest bucket",
    ]
    assert report["series"][-1]["failed"] == 2
    assert report["series"][0]["failed"] == 1
    assert_report(report, read_raw(sql), "1h", NOW)


# --- the buckets ---------------------------------------------------------------------------


def test_log_buckets_are_within_one_percent(sql) -> None:
    rng = random.Random(102)
    random_values = sorted(10 ** rng.uniform(-3, 7) for _ in range(5000))
    powers = [1.02**k for k in range(-348, 815, 3)]  # the bucket edges, as floats
    edges = [1.0, 2.0, 3.0, 0.0010001, 0.002, 1e7, 1e12, 123456.789]
    values = random_values + powers + edges
    rows = sql.execute(
        "select b, public.analytics_bucket_value(b)"
        "  from unnest(%s::float8[]) with ordinality as u(v, i),"
        "       lateral (select public.analytics_bucket(v) as b) x"
        " order by i",
        (values,),
    ).fetchall()
    for v, (idx, estimate) in zip(values, rows, strict=True):
        assert abs(estimate - v) <= 0.01 * v * (1 + 1e-9), (v, idx, estimate)
        # The exact bound: a bucket (1.02^(k-1), 1.02^k] reported as its midpoint is off by
        # at most 0.01/1.01 relative.
        assert abs(estimate - v) <= v / 101 * (1 + 1e-9), (v, idx, estimate)
        assert abs(idx - bucket_index(v)) <= 1, v  # float ln may round an exact edge up
    # Away from the edges the index is exactly the smallest k with 1.02^k >= v, so the buckets
    # are monotonic and a nearest-rank bucket holds the exact nearest-rank value.
    random_idx = [idx for idx, _ in rows[: len(random_values)]]
    assert random_idx == [bucket_index(v) for v in random_values]
    assert random_idx == sorted(random_idx)
    assert sql.execute("select public.analytics_bucket(1)").fetchone() == (0,)
    assert sql.execute("select public.analytics_bucket_value(0)").fetchone() == (2 / 2.02,)

    zero = sql.execute(
        "select v, b, public.analytics_bucket_value(b)"
        "  from unnest('{0, -1, -1e9, 1e-9, 0.001}'::float8[]) v,"
        "       lateral (select public.analytics_bucket(v) as b) x"
    ).fetchall()
    # 0 and negatives are 0; so is anything up to 0.001 (one microsecond), by design.
    assert [(idx, est) for _, idx, est in zero] == [(ZERO_BUCKET, 0.0)] * 5
    assert sql.execute(
        "select public.analytics_bucket(null), public.analytics_bucket_value(null)"
    ).fetchone() == (None, None)


# --- the rollups ---------------------------------------------------------------------------


def expected_rollups(raw: Raw) -> tuple[dict, dict, dict]:
    counts: dict[tuple, list] = {}
    hist: Counter[tuple] = Counter()
    hist_total: dict[tuple, Fraction] = defaultdict(Fraction)
    stages: Counter[tuple] = Counter()
    stage_total: dict[tuple, Fraction] = defaultdict(Fraction)
    for f in raw.facts:
        for grain in GRAINS:
            start = bin_start(f.created_at, grain)
            row = counts.setdefault(
                (grain, start, f.event_type, f.priority, f.content_type), [0, 0, 0]
            )
            row[0] += 1
            if f.duration_ms is not None:
                row[1] += 1
                row[2] += f.duration_ms
            measured = []
            if f.event_type == "completed" and f.duration_ms is not None and f.duration_ms >= 0:
                measured.append(("duration", float(f.duration_ms)))
            if f.wait_ms is not None and f.wait_ms >= 0:
                measured.append(("queue_wait", f.wait_ms))
            for metric, value in measured:
                key = (grain, start, metric, bucket_index(value))
                hist[key] += 1
                hist_total[key] += Fraction(value)
            for stage, ms in f.stages:
                stages[(grain, start, stage)] += 1
                stage_total[(grain, start, stage)] += Fraction(ms)
    return (
        {k: tuple(v) for k, v in counts.items()},
        {k: (n, hist_total[k]) for k, n in hist.items()},
        {k: (n, stage_total[k]) for k, n in stages.items()},
    )


def assert_rollups_equal_events(sql: psycopg.Connection, raw: Raw) -> None:
    want_counts, want_hist, want_stages = expected_rollups(raw)
    got_counts = {
        tuple(r[:5]): (r[5], r[6], r[7])
        for r in sql.execute(
            "select grain, bucket_start, event_type, priority, content_type, events,"
            "       duration_n, duration_sum from public.analytics_rollups"
        ).fetchall()
    }
    assert got_counts == want_counts
    got_hist = {
        tuple(r[:4]): (r[4], r[5])
        for r in sql.execute(
            "select grain, bucket_start, metric, idx, n, total from public.analytics_histograms"
        ).fetchall()
    }
    assert {k: v[0] for k, v in got_hist.items()} == {k: v[0] for k, v in want_hist.items()}
    for key, (_, total) in got_hist.items():
        assert math.isclose(total, want_hist[key][1], rel_tol=1e-9, abs_tol=1e-6), key
    got_stages = {
        tuple(r[:3]): (r[3], r[4])
        for r in sql.execute(
            "select grain, bucket_start, stage, n, total_ms from public.analytics_stage_totals"
        ).fetchall()
    }
    assert {k: v[0] for k, v in got_stages.items()} == {k: v[0] for k, v in want_stages.items()}
    for key, (_, total) in got_stages.items():
        assert math.isclose(total, want_stages[key][1], rel_tol=1e-9, abs_tol=1e-6), key


def test_rollups_equal_the_events_at_every_grain(db: Database, make_user, sql) -> None:
    """Many statements and folds land in the same buckets: every rollup, histogram and stage
    total equals its recount from the raw events (no double counting, nothing lost)."""
    rng = random.Random(4242)
    seed_real_paths(db, make_user, rng)
    jobs, documents = ids(sql, "processing_jobs"), ids(sql, "documents")
    batch = random_events(rng, 1500, jobs, documents)
    for i in range(0, len(batch), 300):
        insert_events(sql, batch[i : i + 300])
        if i % 600 == 0:
            fold(sql)
    # The same events again (the same buckets), folded one or two statements at a time.
    again = rng.sample(batch, 60)
    for i, event in enumerate(again):
        insert_events(sql, [event])
        if i % 2:
            fold(sql)
    fold(sql)
    assert sql.execute("select count(*) from public.analytics_pending").fetchone() == (0,)
    raw = read_raw(sql)
    assert_rollups_equal_events(sql, raw)
    # Folding again changes nothing.
    assert fold(sql) == 0
    assert_rollups_equal_events(sql, raw)


# --- concurrency ---------------------------------------------------------------------------


def test_concurrent_writers_and_folds_leave_exact_rollups(database_url: str, sql) -> None:
    """Two connections insert into the same buckets at once (~50 statements each), some in
    transactions that also fold, some followed by a fold: no deadlock, exact rollups."""
    base = bin_start(NOW, 300) - timedelta(minutes=30)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        try:
            with psycopg.connect(database_url, autocommit=True) as conn:
                barrier.wait(timeout=30)
                for i in range(50):
                    events = [
                        {
                            "event_type": rng.choice(["completed", "failed", "upload_started"]),
                            "duration_ms": rng.randrange(0, 5000),
                            "details": {"priority": rng.choice(["high", "low"])},
                            "created_at": (
                                base + timedelta(seconds=rng.choice([1, 2, 299, 301, 3601]))
                            ).isoformat(),
                        }
                        for _ in range(rng.randint(1, 6))
                    ]
                    if i % 10 == 9:
                        with conn.transaction():
                            insert_events(conn, events)
                            fold(conn)
                    else:
                        insert_events(conn, events)
                        if i % 4 == 0:
                            fold(conn)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(seed,)) for seed in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    fold(sql)
    raw = read_raw(sql)
    assert 100 <= len(raw.events) <= 600
    assert_rollups_equal_events(sql, raw)


# --- who may read it -------------------------------------------------------------------------


def test_only_admins_see_the_figures_and_unknown_windows_are_refused(
    db: Database, make_user, sql
) -> None:
    alice, admin = make_user(), make_user(admin=True)
    t0 = NOW - timedelta(minutes=20)
    up = create_upload(db, alice, now=t0, content_type="text/plain")
    claim_one(db, up["job_id"], t0 + timedelta(seconds=1))
    db.call(
        "fail_jobs",
        worker_id="w1",
        failures=[{"id": up["job_id"], "attempt": 1, "error_code": "x",
                   "error_message": "alpha broke", "recoverable": False}],
        now=t0 + timedelta(seconds=2),
    )  # fmt: skip
    raw = read_raw(sql)
    for folded in (False, True):  # from the pending facts, then from the rollups
        if folded:
            fold(sql)
        for window in WINDOWS:
            service = db.call("analytics_report", window_name=window, now=NOW)
            assert_report(service, raw, window, NOW)
            assert service["jobs"]["failed"] == 1 and service["top_errors"]
            assert db.as_user(admin).call("analytics_report", window_name=window, now=NOW) == (
                service
            )
            mine = db.as_user(alice).call("analytics_report", window_name=window, now=NOW)
            assert mine["event_counts"] == {}
            assert mine["jobs"] == {"created": 0, "completed": 0, "failed": 0,
                                    "success_rate": None, "throughput_per_hour": 0}  # fmt: skip
            assert mine["duration_ms"]["count"] == 0 and mine["queue_wait_ms"]["count"] == 0
            assert mine["by_content_type"] == mine["by_priority"] == []
            assert mine["top_errors"] == mine["stages"] == []
            assert [(s["completed"], s["failed"], s["p95_ms"]) for s in mine["series"]] == [
                (0, 0, None)
            ] * WINDOWS[window][1]
            assert (mine["since"], mine["until"]) == (service["since"], service["until"])

    for scope in (db, db.as_user(admin), db.as_user(alice)):
        with pytest.raises(Unprocessable) as exc:
            scope.call("analytics_report", window_name="2h", now=NOW)
        assert exc.value.code == "invalid_window"
    with pytest.raises(Unprocessable) as exc:
        analytics.report(db, "1d", now=NOW)
    assert exc.value.code == "invalid_window"
    assert analytics.report(db.as_user(admin), None, now=NOW)["window"] == "24h"


# --- robustness ------------------------------------------------------------------------------


ODD_RESULTS: list[Any] = [
    {
        "timings_ms": {
            "reading": "12",  # a string
            "parsing": -5,  # negative
            "analyzing": 1e300,  # huge
            "validating": True,  # a boolean
            "finalizing": {"ms": 3},  # an object
            "extracting": 7,  # the one sane value
            "z" * 60: 3,  # a long name: cut to 50 characters
            "ceiling": 1e12,  # the largest accepted
            "over": 1e12 + 1,
            "missing": None,
        }
    },
    {"timings_ms": [1, 2, 3]},
    {"timings_ms": "fast"},
    {"timings_ms": 42},
    {"timings_ms": None},
    {},
    [1, 2],
    "done",
]


def test_odd_stage_timings_and_jobless_events_are_recorded_and_left_out_of_stages(
    db: Database, make_user, sql
) -> None:
    user = make_user()
    t = NOW - timedelta(minutes=40)
    for result in ODD_RESULTS:
        up = create_upload(db, user, now=t, content_type="text/plain")
        claim_one(db, up["job_id"], t + timedelta(seconds=1))
        done = db.call(
            "complete_jobs",
            worker_id="w1",
            completions=[{"id": up["job_id"], "attempt": 1, "result": result}],
            now=t + timedelta(seconds=2),
        )
        assert done["completed"] == [up["job_id"]]
        t += timedelta(seconds=10)
    # Events without a job (none, or one that does not exist), and a first claim without one.
    insert_events(
        sql,
        [
            {"event_type": "completed", "duration_ms": 5, "created_at": t.isoformat()},
            {"event_type": "completed", "job_id": str(uuid.uuid4()), "duration_ms": 6,
             "document_id": str(uuid.uuid4()), "created_at": t.isoformat()},
            {"event_type": "processing_started", "details": {"attempt": 1},
             "job_id": str(uuid.uuid4()), "created_at": t.isoformat()},
        ],
    )  # fmt: skip
    report = db.call("analytics_report", window_name="1h", now=NOW)
    assert report["event_counts"]["completed"] == len(ODD_RESULTS) + 2
    assert report["queue_wait_ms"]["count"] == len(ODD_RESULTS)
    assert report["stages"] == [
        {"stage": "extracting", "count": 1, "avg_ms": 7.0},
        {"stage": "ceiling", "count": 1, "avg_ms": 1e12},
        {"stage": "z" * 50, "count": 1, "avg_ms": 3.0},
    ]
    raw = read_raw(sql)
    assert_report(report, raw, "1h", NOW)
    assert fold(sql) == len(raw.events)
    assert db.call("analytics_report", window_name="1h", now=NOW) == report
    assert_rollups_equal_events(sql, raw)


# --- odd values from other producers never block the fold ----------------------------------


def test_a_tiny_stage_timing_does_not_break_fold_or_report(db: Database, make_user, sql) -> None:
    """1e-400 is valid JSON but below the double range: stage times are rounded to 6 decimals
    before the cast, so it counts as 0."""
    user = make_user()
    t = NOW - timedelta(minutes=10)
    up = create_upload(db, user, now=t, content_type="text/plain")
    claim_one(db, up["job_id"], t + timedelta(seconds=1))
    # Python floats cannot say 1e-400; any other JSON producer can (jsonb keeps it as numeric).
    completions = (
        f'[{{"id": "{up["job_id"]}", "attempt": 1,'
        ' "result": {"timings_ms": {"reading": 1e-400, "parsing": 5}}}]'
    )
    done = db.call("complete_jobs", worker_id="w1", completions=completions, now=t + MS)
    assert done["completed"] == [up["job_id"]]  # the event is recorded
    report = db.call("analytics_report", window_name="1h", now=NOW)
    assert report["event_counts"]["completed"] == 1
    assert {"stage": "parsing", "count": 1, "avg_ms": 5.0} in report["stages"]
    fold(sql)
    assert sql.execute("select count(*) from public.analytics_pending").fetchone() == (0,)


def test_a_long_priority_in_details_does_not_block_the_fold(db: Database, sql) -> None:
    rng = random.Random(5)
    long_priority = "".join(rng.choice("0123456789abcdef") for _ in range(6000))
    at = (NOW - timedelta(minutes=5)).isoformat()
    assert db.call(
        "record_events",
        events=[{"event_type": "completed", "details": {"priority": long_priority},
                 "created_at": at}],
    ) == 1  # fmt: skip
    assert db.call("record_events", events=[{"event_type": "completed", "created_at": at}]) == 1
    # The report still reads the pending facts...
    report = db.call("analytics_report", window_name="1h", now=NOW)
    assert report["event_counts"] == {"completed": 2}
    # ...and the fold goes through (priority is cut to 50 characters).
    assert fold(sql) == 2
    assert sql.execute("select count(*) from public.analytics_pending").fetchone() == (0,)
