"""What `docflow upload` draws (shared/dev/console.py), from batch states set by hand: the live
region on a terminal, the view chosen for each kind of output, and the summary table."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from shared.dev import console
from shared.dev.apiclient import ApiClient
from shared.dev.batch import Batch, Event, Item, Options


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _item(label: str, state: str = "queued", **fields: Any) -> Item:
    return Item(Path(label), label, state=state, **fields)


def _batch(items: list[Item], *, wait: bool = True) -> Batch:
    api = ApiClient("http://127.0.0.1:9", "token")  # never called: nothing is run
    return Batch(api, items, Options(wait=wait), clock=lambda: 100.0)


def _job(status: str, stage: str | None = None, progress: int = 0, **more: Any) -> dict[str, Any]:
    return {"status": status, "stage": stage, "progress": progress, **more}


def _plain(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)


def test_the_live_region_shows_each_file_in_flight_then_the_totals() -> None:
    items = [
        _item("room/a.pdf", "sending", size=1000, sent=450),
        _item("room/b.txt", "waiting"),
        _item("room/c.md", "accepted", job_id="j3", job=_job("processing", "extracting", 30)),
        _item("room/d.csv", "accepted", job_id="j4"),  # no poll yet: pending
        _item("room/e.html", "accepted", job_id="j5", job=_job("completed", progress=100)),
        _item("room/f.png", "refused", code="extension_not_allowed", message="415 …"),
        _item("room/g.txt"),
    ]
    view = console.LiveView(Console(file=_Tty(), width=100, height=30, force_terminal=True))
    view.batch = _batch(items)
    view.pause_until = 102.5  # a 429's pause, 2.5 s to go on the batch's clock
    out = io.StringIO()
    Console(file=out, width=200, height=30).print(view._render())
    lines = out.getvalue().splitlines()
    rows = {line.split()[0]: line.split()[1:] for line in lines[:-1]}
    assert rows["room/a.pdf"][0] == "sending" and rows["room/a.pdf"][-1] == "45%"
    assert rows["room/b.txt"][:2] == ["rate", "limited"]
    assert rows["room/c.md"][0] == "extracting" and rows["room/c.md"][-1] == "30%"
    assert rows["room/d.csv"][0] == "pending"
    assert not {"room/e.html", "room/f.png", "room/g.txt"} & set(rows)  # ended, or not sent yet
    assert lines[-1] == (
        "2 of 7 done · 1 completed · 1 refused · 1 processing · 1 pending · 1 sending · "
        "1 waiting · 1 to send · rate limited: sending again in 3 s"
    )


def test_the_live_region_keeps_to_the_terminals_height() -> None:
    items = [_item(f"f{i:02}.txt", "accepted", job_id=f"j{i}") for i in range(40)]
    view = console.LiveView(Console(file=_Tty(), width=100, height=12, force_terminal=True))
    view.batch = _batch(items)
    out = io.StringIO()
    Console(file=out, width=100).print(view._render())
    lines = out.getvalue().splitlines()
    assert len(lines) == 8 + 2  # height - 4 rows, then "… and N more", then the totals
    assert lines[-2] == "… and 32 more in flight"


def test_a_long_label_is_cut_at_the_front() -> None:
    label = "a/very/long/path/to/the/data/room/of/the/deal/" + "x" * 30 + "/report-2025.pdf"
    assert console.short(label).endswith("/report-2025.pdf")
    assert len(console.short(label)) == console.LABEL_WIDTH


@pytest.mark.parametrize(
    ("as_json", "tty", "term", "expected"),
    [
        (False, True, "xterm", console.LiveView),
        (False, True, "dumb", console.PlainView),
        (False, False, "xterm", console.PlainView),
        (True, True, "xterm", console.JsonView),
    ],
)
def test_the_view_follows_the_output(
    as_json: bool, tty: bool, term: str, expected: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TERM", term)
    stdout = _Tty() if tty else io.StringIO()
    view = console.batch_view(as_json=as_json, stdout=stdout, stderr=io.StringIO())
    assert type(view) is expected


def test_plain_lines_say_each_file_event_once_and_nothing_of_progress() -> None:
    item = _item("room/a.pdf")
    batch = _batch([item])
    out, err = io.StringIO(), io.StringIO()
    view = console.PlainView(out, err)
    view.start(batch)
    item.state, item.sent, item.size = "sending", 0, 10
    for event in (Event("sending", item), Event("bytes", item, (5, 10)), Event("waiting", item)):
        view.handle(event)
    view.handle(Event("rate_limited", item, 2.0))
    item.state, item.job_id = "accepted", "j1"
    view.handle(Event("accepted", item))
    item.job = _job("processing", "extracting", 40)
    view.handle(Event("job", item))
    item.job = _job(
        "completed",
        progress=100,
        result={"detected_content_type": "application/pdf", "pages": 3, "words": 9},
    )
    view.handle(Event("job", item))
    view.handle(Event("finished", item))  # fmt: skip
    assert out.getvalue().splitlines() == [
        "rate limited (429): waiting 2 s before sending more",
        "room/a.pdf: accepted, job j1",
        "room/a.pdf: completed (job j1), application/pdf, 3 page(s), 9 words",
    ]
    assert err.getvalue() == ""


def test_the_summary_counts_outcomes_by_error_code() -> None:
    failed = {"status": "failed", "error": {"code": "malformed_document", "message": "bad"}}
    items = [
        _item("a", "accepted", job_id="1", job={"status": "completed"}),
        _item("b", "accepted", job_id="2", job={"status": "completed"}),
        _item("c", "accepted", job_id="3", job=failed),
        _item("d", "refused", code="extension_not_allowed", message="415"),
        _item("e", "refused", code="extension_not_allowed", message="415"),
        _item("f", "refused", code="too_large", message="413"),
        _item("g", "skipped", code="directory", message="a directory"),
        _item("h", "accepted", job_id="4", job={"status": "processing"}),
        _item("i", "not_sent"),
    ]
    out = io.StringIO()
    batch = _batch(items)
    console.print_summary(batch, stream=out)
    assert out.getvalue().splitlines() == [
        "outcome    files  by error code",
        "completed      2",
        "failed         1  malformed_document 1",
        "running        1",
        "refused        3  extension_not_allowed 2, too_large 1",
        "skipped        1  directory 1",
        "not sent       1",
        "total          9",
        "1 job(s) still running: `docflow status JOB_ID` follows one (e.g. 4)",
    ]
    assert batch.exit_status() == 1
    assert _batch(items[:2]).exit_status() == 0
