"""The analytics report as plain-text tables, for `docflow analytics` (a terminal, ~100 columns).

`render(report)` takes the dict of `analytics.report()` (the `analytics_report` SQL function) and
returns the text: a header, a summary, the time series with a bar of completed jobs per bucket,
the breakdowns (content type, priority, stage), the most frequent errors and the event counts.
An empty section prints "(none)".
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

WIDTH = 100
INDENT = "  "
BAR_WIDTH = 24
_EIGHTHS = " ▏▎▍▌▋▊▉█"
# The lifecycle order of event types; others follow by name.
_EVENT_ORDER = (
    "upload_started", "enqueued", "processing_started", "retry_scheduled", "stalled_recovered",
    "completed", "failed", "cancelled",
)  # fmt: skip


def when(value: Any) -> str:
    """An ISO timestamp as `YYYY-MM-DD HH:MM` in UTC."""
    return datetime.fromisoformat(str(value)).astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def duration(ms: Any) -> str:
    """Milliseconds below one second, else seconds; `-` when there is no value."""
    if ms is None:
        return "-"
    value = float(ms)
    return f"{value:.1f} ms" if value < 1000 else f"{value / 1000:.2f} s"


def percent(rate: Any) -> str:
    return "-" if rate is None else f"{float(rate) * 100:.2f}%"


def span(seconds: int) -> str:
    for unit, name in ((86400, "day"), (3600, "hour"), (60, "min")):
        if seconds % unit == 0:
            n = seconds // unit
            return f"{n} {name}" + ("s" if n != 1 and name != "min" else "")
    return f"{seconds} s"


def fit(text: Any, width: int) -> str:
    """One line of at most `width` characters (whitespace collapsed, `…` when cut)."""
    line = " ".join(str(text).split())
    return line if len(line) <= width else line[: width - 1].rstrip() + "…"


def bar(value: int, top: int, width: int = BAR_WIDTH) -> str:
    """A horizontal bar of `value` against `top`, in eighths of a character."""
    if top <= 0 or value <= 0:
        return ""
    eighths = max(1, round(value / top * width * 8))
    return ("█" * (eighths // 8) + _EIGHTHS[eighths % 8]).rstrip()


def table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], right: Sequence[str] = ()
) -> list[str]:
    """Aligned columns; the columns whose headers are in `right` are aligned right."""
    if not rows:
        return [INDENT + "(none)"]
    cells = [[str(c) for c in row] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    out = []
    for row in cells:
        parts = [
            c.rjust(w) if h and h in right else c.ljust(w)
            for c, w, h in zip(row, widths, headers, strict=True)
        ]
        out.append((INDENT + "  ".join(parts)).rstrip())
    return out


def _breakdown(key: str, label: str, items: list[dict[str, Any]]) -> list[str]:
    rows = [(fit(i[key], 48), i["created"], i["completed"], i["failed"]) for i in items]
    numbers = ("created", "completed", "failed")
    return table((label, *numbers), rows, numbers)


def _summary(jobs: dict[str, Any], dur: dict[str, Any], wait: dict[str, Any]) -> list[str]:
    pairs = [
        ("created", jobs["created"]),
        ("completed", jobs["completed"]),
        ("failed", jobs["failed"]),
        ("success rate", percent(jobs["success_rate"])),
        ("throughput", f"{float(jobs['throughput_per_hour']):.1f} completed/hour"),
    ]
    figures = ("count", "avg", "p50", "p95", "p99")
    rows = [
        ("duration", dur["count"], *(duration(dur[k]) for k in figures[1:])),
        ("queue wait", wait["count"], duration(wait["avg"]), "-", duration(wait["p95"]), "-"),
    ]
    return [f"{INDENT}{k:<12}  {v}" for k, v in pairs] + ["", *table(("", *figures), rows, figures)]


def _series(series: list[dict[str, Any]]) -> list[str]:
    top = max((int(s["completed"]) for s in series), default=0)
    rows = [
        (when(s["start"]), s["completed"], s["failed"], duration(s["p95_ms"]),
         bar(int(s["completed"]), top))
        for s in series
    ]  # fmt: skip
    numbers = ("completed", "failed", "p95")
    return table(("start (UTC)", *numbers, ""), rows, numbers)


def _errors(errors: list[dict[str, Any]]) -> list[str]:
    """The count, then the message cut to what is left of the line."""
    room = WIDTH - len(INDENT) - max([5, *(len(str(e["count"])) for e in errors)]) - 2
    return table(
        ("count", "message"), [(e["count"], fit(e["message"], room)) for e in errors], ("count",)
    )


def _events(counts: dict[str, int]) -> list[str]:
    order = {name: i for i, name in enumerate(_EVENT_ORDER)}
    events = sorted(counts.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0]))
    return table(("event", "count"), events, ("count",))


def render(report: dict[str, Any]) -> str:
    """The whole report as text (ends with a newline)."""
    stages = [(fit(s["stage"], 48), s["count"], duration(s["avg_ms"])) for s in report["stages"]]
    error = float(report["percentile_relative_error"]) * 100
    sections = [
        [
            f"docflow analytics: window {report['window']}, {when(report['since'])} → "
            f"{when(report['until'])} UTC, {span(int(report['bucket_seconds']))} buckets"
        ],
        ["Summary", *_summary(report["jobs"], report["duration_ms"], report["queue_wait_ms"])],
        ["Per bucket", *_series(report["series"] or [])],
        ["By content type", *_breakdown("content_type", "content type", report["by_content_type"])],
        ["By priority", *_breakdown("priority", "priority", report["by_priority"])],
        ["Stages (completed jobs)", *table(("stage", "count", "avg"), stages, ("count", "avg"))],
        ["Top errors", *_errors(report["top_errors"])],
        ["Event counts", *_events(report["event_counts"])],
        [f"Percentiles (p50, p95, p99) are within {error:g} % of the exact values (histograms)."],
    ]
    return "\n\n".join("\n".join(lines) for lines in sections) + "\n"
