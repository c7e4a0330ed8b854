"""`docflow analytics`: the analytics report on the terminal, read as the service.

`shared.dev.cli.main([...])` runs in-process against this test's fresh database (DATABASE_URL, set
by the `db` fixture). Events are seeded through the `sql` fixture a minute before now, inside
every window; the rollup trigger records their facts. The JSON output is compared with
`analytics.report()` at the same `now`; the tables are checked for the seeded figures. The
rendering (rich tables) is also checked without a database: a full report (every section, long
values), text from the data printed literally, a bar for any completed job, colour only on request.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

import psycopg
import pytest

from shared.dev import cli
from shared.dev.report import WIDTH, render
from shared.ops import analytics
from shared.platform.client import Database
from tests.support.cli import run_cli
from tests.support.env import database_down

ERROR = "extractor crashed: unexpected end of stream"
# 5 created (3 PDF high, 2 text normal), 3 completed (120 ms, 450 ms, 2.5 s), 2 failed.
SEED = """
insert into public.document_processing_events
  (event_type, duration_ms, error_message, details, created_at)
select e.event_type, e.duration_ms, e.error_message, e.details::jsonb, now() - interval '1 minute'
  from (values
    ('upload_started', null, null, '{"priority": "high", "content_type": "application/pdf"}'),
    ('upload_started', null, null, '{"priority": "high", "content_type": "application/pdf"}'),
    ('upload_started', null, null, '{"priority": "high", "content_type": "application/pdf"}'),
    ('upload_started', null, null, '{"priority": "normal", "content_type": "text/plain"}'),
    ('upload_started', null, null, '{"priority": "normal", "content_type": "text/plain"}'),
    ('completed', 120, null, '{"priority": "high", "content_type": "application/pdf"}'),
    ('completed', 450, null, '{"priority": "high", "content_type": "application/pdf"}'),
    ('completed', 2500, null, '{"priority": "normal", "content_type": "text/plain"}'),
    ('failed', null, %(error)s, '{"priority": "high", "content_type": "application/pdf"}'),
    ('failed', null, %(error)s, '{"priority": "normal", "content_type": "text/plain"}')
  ) as e(event_type, duration_ms, error_message, details)
"""
_BUCKET_ROW = re.compile(r"^  \d{4}-\d{2}-\d{2} \d{2}:\d{2}  ", re.MULTILINE)


@pytest.fixture(autouse=True)
def _restore_logging(cli_logging: None) -> None:
    """Every test here runs `cli.main`, which configures the `docflow` logger."""


@pytest.fixture
def seeded(db: Database, sql: psycopg.Connection) -> Database:
    sql.execute(SEED, {"error": ERROR})
    return db


def _section(out: str, title: str) -> list[str]:
    """The lines of one section: after its title, up to the next blank line."""
    lines = out.splitlines()
    start = lines.index(title) + 1
    end = lines.index("", start) if "" in lines[start:] else len(lines)
    return lines[start:end]


def _row(lines: list[str], first: str) -> list[str]:
    """The cells of the row whose first cell is `first` (cells: split on 2+ spaces)."""
    for line in lines:
        cells = re.split(r"\s{2,}", line.strip())
        if cells[0] == first:
            return cells
    raise AssertionError(f"no row {first!r} in {lines}")


@pytest.mark.parametrize("window", ["24h", "1h"])
def test_json_is_the_report_as_the_service_reads_it(
    seeded: Database, capsys: pytest.CaptureFixture[str], window: str
) -> None:
    code, out, err = run_cli(capsys, "analytics", "--window", window, "--json")
    assert (code, err) == (0, "")
    printed = json.loads(out)
    assert out.startswith('{\n  "')  # indented
    now = datetime.fromisoformat(printed["until"])
    expected = analytics.report(seeded, window, now=now)
    assert printed == json.loads(json.dumps(expected))
    assert printed["jobs"]["created"] == 5
    assert (printed["jobs"]["completed"], printed["jobs"]["failed"]) == (3, 2)
    assert printed["top_errors"] == [{"message": ERROR, "count": 2}]


def test_the_default_window_is_24h(seeded: Database, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "analytics", "--json")
    assert code == 0
    assert json.loads(out)["window"] == "24h"


@pytest.mark.parametrize(("window", "buckets"), [("24h", 24), ("1h", 12)])
def test_tables_show_the_seeded_figures(
    seeded: Database, capsys: pytest.CaptureFixture[str], window: str, buckets: int
) -> None:
    code, out, err = run_cli(capsys, "analytics", "--window", window)
    assert (code, err) == (0, "")
    assert out.startswith(f"docflow analytics: window {window}, ")
    assert ("5 min buckets" if window == "1h" else "1 hour buckets") in out.splitlines()[0]

    summary = _section(out, "Summary")
    assert _row(summary, "created")[1:] == ["5"]
    assert _row(summary, "completed")[1:] == ["3"]
    assert _row(summary, "failed")[1:] == ["2"]
    assert _row(summary, "success rate")[1:] == ["60.00%"]
    durations = out.split("\n\n")[2].splitlines()  # the table under the summary
    assert _row(durations, "duration")[1] == "3"
    assert _row(durations, "queue wait")[1:] == ["0", "-", "-", "-", "-"]

    series = _section(out, "Per bucket")
    assert series[0].split() == ["start", "(UTC)", "completed", "failed", "p95"]
    assert len(_BUCKET_ROW.findall("\n".join(series))) == buckets
    assert sum(int(re.split(r"\s{2,}", r.strip())[1]) for r in series[1:]) == 3
    assert sum(int(re.split(r"\s{2,}", r.strip())[2]) for r in series[1:]) == 2
    assert sum("█" in r for r in series) == 1  # one bucket holds every completed job

    assert _row(_section(out, "By content type"), "application/pdf")[1:] == ["3", "2", "1"]
    assert _row(_section(out, "By content type"), "text/plain")[1:] == ["2", "1", "1"]
    assert _row(_section(out, "By priority"), "high")[1:] == ["3", "2", "1"]
    assert _row(_section(out, "By priority"), "normal")[1:] == ["2", "1", "1"]
    assert _section(out, "Top errors")[1].split(None, 1) == ["2", ERROR]
    events = _section(out, "Event counts")
    assert [_row(events, e)[1] for e in ("upload_started", "completed", "failed")] == [
        "5",
        "3",
        "2",
    ]
    assert _section(out, "Stages (completed jobs)") == ["  (none)"]  # jobless events
    assert out.endswith("are within 1 % of the exact values (histograms).\n")
    assert all(len(line) <= WIDTH for line in out.splitlines())


def test_an_empty_database_prints_none_sections(
    db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(capsys, "analytics")
    assert (code, err) == (0, "")
    for title in ("By content type", "By priority", "Stages (completed jobs)", "Top errors"):
        assert _section(out, title) == ["  (none)"], title
    assert _section(out, "Event counts") == ["  (none)"]
    assert _row(_section(out, "Summary"), "success rate")[1:] == ["-"]
    assert len(_BUCKET_ROW.findall(out)) == 24
    assert "█" not in out


def test_an_unknown_window_is_refused_by_argparse(
    db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["analytics", "--window", "2h"])
    assert exc.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "invalid choice: '2h'" in err


def test_an_unreachable_database_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    database_down(monkeypatch)
    code, out, err = run_cli(capsys, "analytics")
    assert (code, out) == (1, "")
    assert err.startswith("docflow: database ") and err.count("\n") == 1, err


# --- the rendering alone ----------------------------------------------------------------------

LONG = "the payload was far too large to parse, " * 8


def _full_report() -> dict[str, Any]:
    series = [
        {"start": f"2026-03-15T{h:02d}:00:00+00:00", "completed": c, "failed": 1, "p95_ms": p}
        for h, c, p in [(10, 0, None), (11, 20, 31781.078), (12, 7, 950.5)]
    ]
    return {
        "window": "24h",
        "since": "2026-03-14T13:00:00+00:00",
        "until": "2026-03-15T13:37:23.456789+01:00",
        "bucket_seconds": 3600,
        "percentile_relative_error": 0.01,
        "event_counts": {"failed": 110, "completed": 218, "upload_started": 328, "zzz": 1},
        "jobs": {
            "created": 328,
            "completed": 218,
            "failed": 110,
            "success_rate": 0.6646,
            "throughput_per_hour": 232.963,
        },
        "duration_ms": {"count": 218, "avg": 1234.5, "p50": 800.1, "p95": 31781.078, "p99": 5e4},
        "queue_wait_ms": {"count": 200, "avg": 12.3, "p95": 40.1},
        "by_content_type": [
            {"content_type": "application/pdf", "created": 40, "completed": 35, "failed": 5},
            {"content_type": "x/" + "y" * 200, "created": 1, "completed": 0, "failed": 1},
        ],
        "by_priority": [{"priority": "high", "created": 9, "completed": 8, "failed": 1}],
        "series": series,
        "top_errors": [{"message": "short", "count": 1038}, {"message": LONG, "count": 7}],
        "stages": [{"stage": "extracting", "count": 182, "avg_ms": 314.97}],
    }


def test_every_section_renders_within_the_width() -> None:
    out = render(_full_report())
    lines = out.splitlines()
    assert all(len(line) <= WIDTH for line in lines), max(lines, key=len)
    assert lines[0] == (
        "docflow analytics: window 24h, 2026-03-14 13:00 → 2026-03-15 12:37 UTC, 1 hour buckets"
    )
    assert _row(_section(out, "Summary"), "success rate")[1:] == ["66.46%"]
    assert _row(_section(out, "Summary"), "throughput")[1:] == ["233.0 completed/hour"]
    durations = out.split("\n\n")[2].splitlines()
    assert _row(durations, "duration")[1:] == ["218", "1.23 s", "800.1 ms", "31.78 s", "50.00 s"]
    assert _row(durations, "queue wait")[1:] == ["200", "12.3 ms", "-", "40.1 ms", "-"]
    series = _section(out, "Per bucket")
    assert _row(series, "2026-03-15 10:00")[1:] == ["0", "1", "-"]
    assert _row(series, "2026-03-15 11:00")[1:] == ["20", "1", "31.78 s", "█" * 24]
    assert _row(series, "2026-03-15 12:00")[1:4] == ["7", "1", "950.5 ms"]
    assert _row(_section(out, "Stages (completed jobs)"), "extracting")[1:] == ["182", "315.0 ms"]
    errors = _section(out, "Top errors")
    assert _row(errors, "1038")[1:] == ["short"]
    cut = _row(errors, "7")[1]
    assert cut.endswith("…") and LONG.startswith(cut[:-1])
    assert _row(_section(out, "By content type"), "application/pdf")[1:] == ["40", "35", "5"]
    events = [line.split()[0] for line in _section(out, "Event counts")[1:]]
    assert events == ["upload_started", "completed", "failed", "zzz"]


def test_text_from_the_data_is_printed_literally() -> None:
    """Rich markup, emoji codes, escape sequences and line breaks in the data are not obeyed."""
    report = _full_report()
    report["by_content_type"][0]["content_type"] = "[bold]x/y[/bold]"
    report["stages"][0]["stage"] = "[link=https://example.com]ocr[/link]"
    report["top_errors"][0]["message"] = "[red]boom[/red] :smile:\n\x1b[2Jnext line"
    out = render(report)
    assert "\x1b" not in out
    assert _row(_section(out, "By content type"), "[bold]x/y[/bold]")[1:] == ["40", "35", "5"]
    assert _row(_section(out, "Stages (completed jobs)"), "[link=https://example.com]ocr[/link]")
    assert _row(_section(out, "Top errors"), "1038")[1:] == [
        "[red]boom[/red] :smile: \ufffd[2Jnext line"
    ]


def test_any_completed_job_gets_a_bar_as_long_as_its_share() -> None:
    report = _full_report()
    report["series"] = [
        {"start": f"2026-03-15T{h:02d}:00:00+00:00", "completed": c, "failed": 0, "p95_ms": 1.0}
        for h, c in [(10, 0), (11, 1), (12, 500), (13, 1000)]
    ]
    series = _section(render(report), "Per bucket")
    assert _row(series, "2026-03-15 10:00")[1:] == ["0", "0", "1.0 ms"]  # no bar
    assert _row(series, "2026-03-15 11:00")[4] == "▏"  # 1/1000 of 24 characters: one eighth
    assert _row(series, "2026-03-15 12:00")[4] == "█" * 12
    assert _row(series, "2026-03-15 13:00")[4] == "█" * 24


def test_colour_only_when_asked() -> None:
    plain = render(_full_report())
    coloured = render(_full_report(), color=True)
    assert "\x1b[" not in plain
    assert "\x1b[1mSummary\x1b[0m" in coloured
    stripped = re.sub(r"\x1b\[[0-9;]*m", "", coloured)
    assert [line.rstrip() for line in stripped.splitlines()] == plain.splitlines()
