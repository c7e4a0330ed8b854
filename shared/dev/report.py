"""The analytics report as text tables drawn by `rich`, for `docflow analytics` (100 columns).

`render(report)` takes the dict of `analytics.report()` (the `analytics_report` SQL function) and
returns the text: a header, a summary, the time series with a bar of completed jobs per bucket,
the breakdowns (content type, priority, stage), the most frequent errors and the event counts.
An empty section prints "(none)". Values from the data are printed literally (no rich markup or
emoji codes, control characters replaced) on one line each, cut with `…` to the room left. The
text is plain unless `color` is set (for a terminal). Only `docflow analytics` imports this module,
so the deployed functions never load rich.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from rich.bar import Bar
from rich.console import Console, Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

WIDTH = 100
BAR_WIDTH = 24
NAME_WIDTH = 48  # at most, for a content type or a stage name
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


def _line(value: Any) -> Text:
    """A value from the data as one literal line (whitespace collapsed), cut with `…` to fit."""
    text = "".join(c if c.isprintable() else "\ufffd" for c in " ".join(str(value).split()))
    return Text(text, no_wrap=True, overflow="ellipsis")


def _table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    right: Sequence[str] = (),
    first_width: int | None = None,
) -> RenderableType:
    """Columns two spaces apart under bold headers; those in `right` are aligned right, and the
    first is at most `first_width` wide."""
    if not rows:
        return Text("(none)")
    table = Table(box=None, padding=(0, 2, 0, 0), pad_edge=False, header_style="bold")
    for header in headers:
        table.add_column(header, justify="right" if header and header in right else "left")
    table.columns[0].max_width = first_width
    for row in rows:
        table.add_row(*(c if isinstance(c, Bar) else _line(c) for c in row))
    return table


def _breakdown(key: str, label: str, items: list[dict[str, Any]]) -> RenderableType:
    numbers = ("created", "completed", "failed")
    rows = [[i[k] for k in (key, *numbers)] for i in items]
    return _table((label, *numbers), rows, numbers, NAME_WIDTH)


def _summary(jobs: dict[str, Any], dur: dict[str, Any], wait: dict[str, Any]) -> RenderableType:
    pairs = Table.grid(padding=(0, 2))
    for pair in (
        ("created", jobs["created"]),
        ("completed", jobs["completed"]),
        ("failed", jobs["failed"]),
        ("success rate", percent(jobs["success_rate"])),
        ("throughput", f"{float(jobs['throughput_per_hour']):.1f} completed/hour"),
    ):
        pairs.add_row(*map(_line, pair))
    figures = ("count", "avg", "p50", "p95", "p99")
    rows = [
        ("duration", dur["count"], *(duration(dur[k]) for k in figures[1:])),
        ("queue wait", wait["count"], duration(wait["avg"]), "-", duration(wait["p95"]), "-"),
    ]
    return Group(pairs, "", _table(("", *figures), rows, figures))


def _series(series: list[dict[str, Any]], color: bool) -> RenderableType:
    """A row per bucket; the bar is the bucket's completed jobs against the busiest bucket's."""
    top = max((int(s["completed"]) for s in series), default=0)
    eighths = BAR_WIDTH * 8

    def bar(done: int) -> Bar:
        # In whole eighths of a character, so that any completed job shows. An empty bar is
        # blank, not absent: a column with no text at all upsets rich's column widths.
        end = 0 if done <= 0 else max(1, round(done / top * eighths))
        return Bar(eighths, 0, end, width=BAR_WIDTH, color="green" if color else "default")

    rows = [
        (when(s["start"]), s["completed"], s["failed"], duration(s["p95_ms"]),
         bar(int(s["completed"])))
        for s in series
    ]  # fmt: skip
    numbers = ("completed", "failed", "p95")
    return _table(("start (UTC)", *numbers, ""), rows, numbers)


def _events(counts: dict[str, int]) -> RenderableType:
    order = {name: i for i, name in enumerate(_EVENT_ORDER)}
    events = sorted(counts.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0]))
    return _table(("event", "count"), events, ("count",))


def render(report: dict[str, Any], *, color: bool = False) -> str:
    """The whole report as text (ends with a newline); with ANSI styles when `color`."""
    stages = [(s["stage"], s["count"], duration(s["avg_ms"])) for s in report["stages"]]
    errors = [(e["count"], e["message"]) for e in report["top_errors"]]
    sections = {
        "Summary": _summary(report["jobs"], report["duration_ms"], report["queue_wait_ms"]),
        "Per bucket": _series(report["series"] or [], color),
        "By content type": _breakdown("content_type", "content type", report["by_content_type"]),
        "By priority": _breakdown("priority", "priority", report["by_priority"]),
        "Stages (completed jobs)": _table(
            ("stage", "count", "avg"), stages, ("count", "avg"), NAME_WIDTH
        ),
        "Top errors": _table(("count", "message"), errors, ("count",)),
        "Event counts": _events(report["event_counts"]),
    }
    out = io.StringIO()
    console = Console(
        file=out,
        width=WIDTH,
        color_system="standard" if color else None,
        force_terminal=color,
        markup=False,  # the data goes in as literal Text; our own strings are literal too
        emoji=False,
        highlight=False,
    )
    console.print(
        f"docflow analytics: window {report['window']}, {when(report['since'])} → "
        f"{when(report['until'])} UTC, {span(int(report['bucket_seconds']))} buckets"
    )
    for title, body in sections.items():
        console.print()
        console.print(title, style="bold")
        console.print(Padding.indent(body, 2))
    error = float(report["percentile_relative_error"]) * 100
    console.print()
    console.print(
        f"Percentiles (p50, p95, p99) are within {error:g} % of the exact values (histograms)."
    )
    return "".join(line.rstrip() + "\n" for line in out.getvalue().splitlines())
