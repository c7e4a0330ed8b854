"""The soak's pure parts: percentiles, trends, RSS growth, job event sequences, the goals.

No database and no docflow import here, so tests/unit/test_soak.py checks it directly.

The job state machine is docs/architecture.md's "State transitions / Jobs" table, read as a
sequence of lifecycle events per job (ordered by event id):

- a job starts `pending` with exactly one `upload_started` (upload) or `enqueued` (retry,
  reanalyze, bulk enqueue) event, and that is its first event;
- `pending`: `processing_started` (claim) -> `processing`; `cancelled` (cancel) -> `cancelled`;
- `processing`: `completed` -> `completed`; `failed` -> `failed`; `cancelled` (heartbeat,
  complete, fail, release or sweep with a cancel requested) -> `cancelled`;
  `retry_scheduled`, `released`, `stalled_recovered` -> `pending`;
- `completed`, `failed` and `cancelled` are terminal: no event follows them.

The last state must be the job row's `status`. A job completed twice shows up here as an event
after a terminal one.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

START_EVENTS = frozenset({"upload_started", "enqueued"})
TERMINAL = frozenset({"completed", "failed", "cancelled"})
TRANSITIONS: dict[str, dict[str, str]] = {
    "pending": {"processing_started": "processing", "cancelled": "cancelled"},
    "processing": {
        "completed": "completed",
        "failed": "failed",
        "cancelled": "cancelled",
        "retry_scheduled": "pending",
        "released": "pending",
        "stalled_recovered": "pending",
    },
    "completed": {},
    "failed": {},
    "cancelled": {},
}

# A trend is "upward" when its slope is this many standard errors above zero (one-sided,
# about 97.5 % for the sample sizes here) and the fitted rise over the span is material.
T_CRITICAL = 2.0


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100), linear between closest ranks (numpy's default); None if
    there are no values."""
    if not values:
        return None
    if not 0 <= q <= 100:
        raise ValueError("q must be between 0 and 100")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Trend:
    """A least-squares line through (x, y): slope per unit of x, its standard error, the
    t statistic (slope / stderr; inf for a perfect rising line), the points and the x span."""

    slope: float
    stderr: float
    t: float
    n: int
    span: float

    @property
    def rise(self) -> float:
        """The fitted change of y over the span."""
        return self.slope * self.span


def linear_trend(xs: Sequence[float], ys: Sequence[float]) -> Trend | None:
    """The least-squares trend of ys over xs; None with fewer than 3 points or no x spread."""
    if len(xs) != len(ys):
        raise ValueError("xs and ys differ in length")
    n = len(xs)
    if n < 3:
        return None
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return None
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    intercept = my - slope * mx
    sse = sum((y - (intercept + slope * x)) ** 2 for x, y in zip(xs, ys, strict=True))
    stderr = math.sqrt(sse / (n - 2) / sxx)
    t = slope / stderr if stderr else (0.0 if slope == 0 else math.copysign(math.inf, slope))
    return Trend(slope=slope, stderr=stderr, t=t, n=n, span=max(xs) - min(xs))


def upward(trend: Trend | None, min_rise: float, t_critical: float = T_CRITICAL) -> bool:
    """True when the trend rises significantly (t > t_critical) by more than min_rise over its
    span. No trend (too few points) is not upward."""
    if trend is None:
        return False
    return trend.t > t_critical and trend.rise > min_rise


@dataclass(frozen=True)
class Growth:
    """RSS at the baseline and at the end (bytes), and the growth in percent."""

    baseline: float
    end: float
    percent: float


def rss_growth(
    samples: Sequence[tuple[float, float]], baseline_at: float, window: float = 30.0
) -> Growth | None:
    """Growth of one process's RSS from `baseline_at` to the end.

    `samples` are (time, rss). The baseline is the median of the samples in
    [baseline_at, baseline_at + window] (the first sample at or after baseline_at when none
    falls inside), the end is the median of the last three samples: one noisy reading does not
    decide. None when there is no sample at or after baseline_at, or the baseline is 0.
    """
    after = sorted((t, v) for t, v in samples if t >= baseline_at)
    if not after:
        return None
    inside = [v for t, v in after if t <= baseline_at + window] or [after[0][1]]
    base = statistics.median(inside)
    end = statistics.median(v for _, v in after[-3:])
    if base <= 0:
        return None
    return Growth(baseline=base, end=end, percent=(end - base) / base * 100)


def check_sequence(events: Sequence[str], status: str | None) -> list[str]:
    """What is wrong with one job's lifecycle events (in order) given its row's `status`
    (None: the row is missing); an empty list when nothing is."""
    problems: list[str] = []
    if status is None:
        problems.append("the job row is missing")
    if not events:
        return [*problems, "no events"]
    if events[0] not in START_EVENTS:
        problems.append(f"starts with {events[0]!r}, not upload_started or enqueued")
        return problems
    state = "pending"
    for index, event in enumerate(events[1:], start=1):
        if event in START_EVENTS:
            problems.append(f"a second start event {event!r} at position {index}")
            continue
        following = TRANSITIONS[state].get(event)
        if following is None:
            if state in TERMINAL:
                problems.append(f"{event!r} after the job was {state} (position {index})")
            else:
                problems.append(f"{event!r} is not a transition from {state} (position {index})")
            continue
        state = following
    if status is not None and state != status:
        problems.append(f"the events end in {state} but the row says {status}")
    return problems


@dataclass(frozen=True)
class Goal:
    name: str
    ok: bool
    detail: str
    enforced: bool = True


def queue_goal(
    times: Sequence[float],
    ages: Sequence[float],
    depths: Sequence[float],
    rate: float,
    min_age_rise: float = 5.0,
) -> tuple[Goal, dict[str, Any]]:
    """Queue lag bounded: over the second half of the steady phase neither the oldest pending
    age nor the depth trends upward, and the final depth is near the start.

    - age: upward when significant and rising more than `min_age_rise` seconds over the half;
    - depth: upward when significant and rising more than max(10, 10 s of uploads) jobs;
    - final depth (the last sample) at most the first half's median plus max(10, 20 s of
      uploads).
    """
    if not times:
        return Goal("queue lag bounded", False, "no samples"), {}
    mid = times[0] + (times[-1] - times[0]) / 2
    second = [i for i, t in enumerate(times) if t >= mid]
    first = [i for i, t in enumerate(times) if t < mid] or second
    age_trend = linear_trend([times[i] for i in second], [ages[i] for i in second])
    depth_trend = linear_trend([times[i] for i in second], [depths[i] for i in second])
    depth_slack = max(10.0, rate * 10)
    final_slack = max(10.0, rate * 20)
    start_depth = statistics.median(depths[i] for i in first)
    final_depth = depths[-1]
    age_up = upward(age_trend, min_age_rise)
    depth_up = upward(depth_trend, depth_slack)
    final_ok = final_depth <= start_depth + final_slack
    problems = []
    if age_up and age_trend is not None:
        problems.append(f"oldest-pending age rises {age_trend.rise:.1f} s (t={age_trend.t:.1f})")
    if depth_up and depth_trend is not None:
        problems.append(f"depth rises {depth_trend.rise:.0f} jobs (t={depth_trend.t:.1f})")
    if not final_ok:
        problems.append(
            f"final depth {final_depth:.0f} > first-half median {start_depth:.0f} "
            f"+ {final_slack:.0f}"
        )
    detail = "; ".join(problems) or (
        f"age slope {_slope_text(age_trend, 's/min')}, depth slope "
        f"{_slope_text(depth_trend, 'jobs/min')}, final depth {final_depth:.0f} "
        f"(first-half median {start_depth:.0f})"
    )
    figures = {
        "age_trend": asdict(age_trend) if age_trend else None,
        "depth_trend": asdict(depth_trend) if depth_trend else None,
        "first_half_median_depth": start_depth,
        "final_depth": final_depth,
        "final_depth_slack": final_slack,
        "min_age_rise_s": min_age_rise,
        "min_depth_rise": depth_slack,
    }
    return Goal("queue lag bounded", not problems, detail), figures


def _slope_text(trend: Trend | None, unit: str) -> str:
    if trend is None:
        return "n/a"
    return f"{trend.slope * 60:+.2f} {unit} (t={trend.t:.1f})"


def rss_goal(growths: Mapping[str, Growth | None], limit_percent: float = 10.0) -> Goal:
    """Every process grew at most `limit_percent` after the baseline."""
    over = {
        name: g.percent
        for name, g in growths.items()
        if g is not None and g.percent > limit_percent
    }
    measured = {name: g for name, g in growths.items() if g is not None}
    if not measured:
        return Goal(f"RSS growth <= {limit_percent:g} %", False, "no process measured")
    worst = max(measured, key=lambda name: measured[name].percent)
    if over:
        detail = ", ".join(f"{name} +{pct:.1f} %" for name, pct in sorted(over.items()))
    else:
        detail = f"worst {worst} {measured[worst].percent:+.1f} % ({len(measured)} processes)"
    return Goal(f"RSS growth <= {limit_percent:g} %", not over, detail)


def intake_goal(p99_ms: float | None, enforced: bool, limit_ms: float = 200.0) -> Goal:
    ok = p99_ms is not None and p99_ms < limit_ms
    shown = "n/a" if p99_ms is None else f"{p99_ms:.0f} ms"
    note = "" if enforced else " (not a goal: RATE was set, the goal holds at the default rate)"
    return Goal(f"intake p99 < {limit_ms:g} ms", ok, f"p99 {shown}{note}", enforced)


def integrity_goal(lost: int, duplicated: int, bad_sequences: int, stale: int) -> Goal:
    ok = lost == 0 and duplicated == 0 and bad_sequences == 0 and stale == 0
    return Goal(
        "0 lost, 0 duplicated",
        ok,
        f"lost {lost}, duplicated {duplicated}, invalid event sequences {bad_sequences}, "
        f"stale completions {stale}",
    )


def retention_goal(expired_left: int, live_removed: int, runs: int) -> Goal:
    ok = expired_left == 0 and live_removed == 0 and runs > 0
    return Goal(
        "retention removed only expired rows",
        ok,
        f"{runs} run(s); seeded expired rows left {expired_left}, live rows or files removed "
        f"{live_removed}",
    )


def passed(goals: Sequence[Goal]) -> bool:
    """Every enforced goal is met."""
    return all(g.ok for g in goals if g.enforced)
