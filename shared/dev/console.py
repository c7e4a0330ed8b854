"""What `docflow upload` shows while a batch runs (shared/dev/batch.py), and its summary.

Three views, chosen by `batch_view()`:
- `LiveView`, on a terminal: one live region drawn with rich and redrawn in place: a line per
  file in flight (name, stage, bar, percent), as many as fit, then the totals and any pause
  ("rate limited: sending again in 3 s"). Each file that ends is printed above the region
  for good, so the scrollback reads as the batch's history.
- `PlainView`, anywhere else (a pipe, a file, a CI log, `TERM=dumb`): one plain line per file
  event (skipped, accepted, refused, retrying, completed, failed, cancelled) and one per
  pause; no bars, no escape sequences, no progress steps.
- `JsonView` (`--json`): one JSON object per file on stdout once the file has its outcome;
  pauses and errors go to stderr as plain lines.

`print_summary()` ends every batch: a table of the outcomes with the files counted by error
code, and for a single file its result (type, pages, words, summary, analysis).

rich is imported here only, on the CLI path: the deployed functions never load it.
"""

from __future__ import annotations

import json
import math
import os
import sys
from typing import IO, TYPE_CHECKING, Any

from shared.dev import analysis_view
from shared.dev.batch import OUTCOMES, Batch, Event, Item

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

MAX_LIVE_ROWS = 20
LABEL_WIDTH = 40


def interactive(stream: IO[str]) -> bool:
    """A terminal that can redraw in place."""
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
        return False
    return tty and os.environ.get("TERM", "") not in ("dumb", "unknown")


def batch_view(*, as_json: bool, stdout: IO[str] | None = None, stderr: IO[str] | None = None
               ) -> LiveView | PlainView | JsonView:  # fmt: skip
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    if as_json:
        return JsonView(out, err)
    if interactive(out):
        return LiveView(_console(out))
    return PlainView(out, err)


def _console(stream: IO[str]) -> Console:
    from rich.console import Console

    return Console(file=stream, highlight=False, soft_wrap=False)


# --- the words for a file ----------------------------------------------------------------


def short(label: str, width: int = LABEL_WIDTH) -> str:
    """The label within `width`, cut at the front (the end holds the name and extension)."""
    return label if len(label) <= width else "…" + label[-(width - 1) :]


def _result_words(job: dict[str, Any]) -> str:
    result = job.get("result") or {}
    words = (
        f"{result.get('detected_content_type')}, {result.get('pages')} page(s), "
        f"{result.get('words')} words"
    )
    return words + (" (no text found)" if result.get("outcome") == "no_text" else "")


def ending(item: Item, waited: bool) -> str:
    """The one line that says how a file ended."""
    outcome = item.outcome(waited)
    code, message = item.error()
    if outcome == "completed" and item.job:
        return f"{item.label}: completed (job {item.job_id}), {_result_words(item.job)}"
    if outcome == "failed":
        return f"{item.label}: failed (job {item.job_id}), {code}: {message}"
    if outcome in ("cancelled", "running"):
        return f"{item.label}: {outcome} (job {item.job_id})"
    if outcome == "accepted":
        return f"{item.label}: accepted, job {item.job_id}"
    if outcome == "not_sent":
        return f"{item.label}: not sent" + (f", {message}" if message != "not sent" else "")
    return f"{item.label}: {outcome}, {message}"


def _stage(item: Item) -> tuple[str, int]:
    """What a file in flight is doing, and its percent."""
    if item.state == "sending":
        return "sending", (item.sent * 100 // item.size if item.size else 0)
    if item.state == "waiting":
        return "rate limited", 0
    job = item.job or {}
    status = str(job.get("status") or "pending")
    stage = job.get("stage")
    label = str(stage) if status == "processing" and stage else status
    return label, int(job.get("progress") or 0)


# --- the views ---------------------------------------------------------------------------


class PlainView:
    """A line per file event, for pipes and logs."""

    def __init__(self, out: IO[str], err: IO[str]) -> None:
        self.out, self.err = out, err
        self.batch: Batch | None = None

    def start(self, batch: Batch) -> None:
        self.batch = batch

    def handle(self, event: Event) -> None:
        item, kind = event.item, event.kind
        waited = self.batch is not None and self.batch.options.wait
        line = None
        if kind == "finished" and item is not None:
            outcome = item.outcome(waited)
            if outcome == "not_sent" and item.message in (None, "not sent"):
                pass  # counted in the summary; a line each would bury the rest after Ctrl-C
            elif outcome != "accepted":  # its line was the `accepted` event's
                line = ending(item, waited)
        elif kind == "accepted" and item is not None:
            line = f"{item.label}: accepted, job {item.job_id}"
        elif kind == "retrying" and item is not None:
            line = f"{item.label}: {event.message}, retrying in {event.data:.1f} s"
        elif kind == "rate_limited":
            line = f"rate limited (429): waiting {event.data:g} s before sending more"
        elif kind == "timeout":
            line = f"stopped waiting after {event.data:g} s; the jobs still running go on"
        if line is not None:
            self.out.write(line + "\n")
            self.out.flush()
        _notice(event, self.err)

    def tick(self) -> None:
        pass

    def stop(self) -> None:
        self.out.flush()


def _notice(event: Event, err: IO[str]) -> None:
    """The batch-level errors, on stderr in every view."""
    if event.kind == "fatal":
        err.write(f"docflow: {event.message}\n")
    elif event.kind == "interrupted":
        err.write("docflow: interrupted: no more files are sent; accepted jobs keep running\n")
    else:
        return
    err.flush()


class JsonView:
    """One JSON object per file, for scripts."""

    def __init__(self, out: IO[str], err: IO[str]) -> None:
        self.out, self.err = out, err
        self.batch: Batch | None = None
        self._printed: set[int] = set()

    def start(self, batch: Batch) -> None:
        self.batch = batch

    def handle(self, event: Event) -> None:
        if event.kind == "finished" and event.item is not None:
            self._print(event.item)
        elif event.kind == "rate_limited":
            self.err.write(f"rate limited (429): waiting {event.data:g} s before sending more\n")
        elif event.kind == "retrying" and event.item is not None:
            self.err.write(f"{event.item.label}: {event.message}, retrying in {event.data:.1f} s\n")
        _notice(event, self.err)

    def tick(self) -> None:
        pass

    def stop(self) -> None:
        """Files still running when following stopped get their object too."""
        if self.batch is not None:
            for item in self.batch.items:
                self._print(item)
        self.out.flush()

    def _print(self, item: Item) -> None:
        if id(item) in self._printed or self.batch is None:
            return
        self._printed.add(id(item))
        self.out.write(json.dumps(record(item, self.batch.options.wait)) + "\n")
        self.out.flush()


def record(item: Item, waited: bool) -> dict[str, Any]:
    """A file's outcome as JSON: `file`, `outcome`, `job_id`, `document_id`, `error`
    (`{code, message}` or null), `result` (`{detected_content_type, pages, words}` or null)."""
    code, message = item.error()
    outcome = item.outcome(waited)
    result = (item.job or {}).get("result") if outcome == "completed" else None
    return {
        "file": item.label,
        "outcome": outcome,
        "job_id": item.job_id,
        "document_id": item.document_id,
        "error": None if code is None else {"code": code, "message": message},
        "result": None
        if not isinstance(result, dict)
        else {k: result.get(k) for k in ("detected_content_type", "pages", "words")},
    }


STYLES = {"completed": "green", "failed": "red", "cancelled": "yellow", "refused": "red",
          "skipped": "yellow", "not_sent": "yellow", "running": "cyan"}  # fmt: skip


class LiveView:
    """The live region on a terminal (rich), with each ended file printed above it."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.batch: Batch | None = None
        self.live: Any = None
        self.pause_until = 0.0
        self.stopped_note = ""

    def start(self, batch: Batch) -> None:
        from rich.live import Live

        self.batch = batch
        self.live = Live(
            console=self.console,
            get_renderable=self._render,
            refresh_per_second=8,
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self.live.start()

    def handle(self, event: Event) -> None:
        from rich.text import Text

        item, kind = event.item, event.kind
        if self.batch is None:
            return
        if kind == "finished" and item is not None:
            outcome = item.outcome(self.batch.options.wait)
            if outcome == "not_sent" and item.message in (None, "not sent"):
                return
            line = ending(item, self.batch.options.wait)
            self.console.print(Text(line, style=STYLES.get(outcome, "")), soft_wrap=True)
        elif kind == "retrying" and item is not None:
            self.console.print(
                Text(f"{item.label}: {event.message}, retrying in {event.data:.1f} s", "yellow"),
                soft_wrap=True,
            )
        elif kind == "rate_limited":
            self.pause_until = self.batch.clock() + float(event.data)
        elif kind == "timeout":
            self.stopped_note = f"stopped waiting after {event.data:g} s"
        elif kind in ("fatal", "interrupted"):
            self.live.stop()  # the error line goes below the region, not into it
            _notice(event, sys.stderr)
            self.live.start()

    def tick(self) -> None:
        pass  # the Live thread redraws from _render

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()

    def _render(self) -> RenderableType:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        batch = self.batch
        assert batch is not None
        waited = batch.options.wait
        items = batch.items
        flying = [i for i in items if i.state in ("sending", "waiting")
                  or (waited and i.state == "accepted" and not i.finished)]  # fmt: skip
        rows = max(1, min(MAX_LIVE_ROWS, self.console.height - 4))
        grid = Table.grid(padding=(0, 2))
        grid.add_column(no_wrap=True, max_width=LABEL_WIDTH)
        grid.add_column(no_wrap=True, width=12, overflow="ellipsis")
        grid.add_column(width=24)
        grid.add_column(justify="right", width=4)
        for item in flying[:rows]:
            stage, percent = _stage(item)
            grid.add_row(
                Text(short(item.label)),
                Text(stage, style="cyan"),
                ProgressBar(total=100, completed=min(max(percent, 0), 100), width=24),
                f"{percent}%",
            )
        parts: list[RenderableType] = [grid]
        if len(flying) > rows:
            parts.append(Text(f"… and {len(flying) - rows} more in flight", style="dim"))
        parts.append(Text(self._totals(), style="bold"))
        return Group(*parts)

    def _totals(self) -> str:
        """`87 of 120 done · 80 completed · 3 failed · 2 processing · 28 to send · …`"""
        batch = self.batch
        assert batch is not None
        waited = batch.options.wait
        ended: dict[str, int] = {}
        flying: dict[str, int] = {}
        for item in batch.items:
            if item.finished or (item.state == "accepted" and not waited):
                outcome = item.outcome(waited)
                ended[outcome] = ended.get(outcome, 0) + 1
            else:
                state = item.status if item.state == "accepted" else item.state
                flying[str(state)] = flying.get(str(state), 0) + 1
        parts = [f"{sum(ended.values())} of {len(batch.items)} done"]
        parts += [f"{ended[o]} {o.replace('_', ' ')}" for o in OUTCOMES if ended.get(o)]
        order = ("processing", "pending", "sending", "waiting", "queued")
        names = {"queued": "to send"}
        parts += [f"{flying[s]} {names.get(s, s)}" for s in order if flying.get(s)]
        left = self.pause_until - batch.clock()
        if left > 0:
            parts.append(f"rate limited: sending again in {math.ceil(left)} s")
        if self.stopped_note:
            parts.append(self.stopped_note)
        return " · ".join(parts)


# --- the summary -------------------------------------------------------------------------


def print_summary(batch: Batch, *, as_json: bool = False, stream: IO[str] | None = None) -> None:
    """The outcomes table (stderr with --json, so stdout stays JSON lines), then, for a
    single file, its result."""
    from rich.table import Table
    from rich.text import Text

    out = stream if stream is not None else (sys.stderr if as_json else sys.stdout)
    console = _console(out)
    counts = batch.counts()
    table = Table(title=None, box=None, show_header=True, header_style="bold", pad_edge=False)
    table.add_column("outcome", no_wrap=True)
    table.add_column("files", justify="right")
    table.add_column("by error code", overflow="fold")
    for outcome in OUTCOMES:
        by_code = counts.get(outcome)
        if not by_code:
            continue
        codes = ", ".join(f"{code} {n}" for code, n in sorted(by_code.items(), key=_by_count)
                          if code)  # fmt: skip
        style = STYLES.get(outcome, "") if interactive(out) else ""
        table.add_row(
            Text(outcome.replace("_", " "), style), str(sum(by_code.values())), Text(codes)
        )
    table.add_row(Text("total", "bold"), str(len(batch.items)), "")
    if interactive(out):
        console.print(table)
    else:  # no padding at the ends of the lines
        with console.capture() as captured:
            console.print(table)
        out.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))
    running = [i for i in batch.items if i.outcome(batch.options.wait) == "running"]
    if running:
        console.print(
            f"{len(running)} job(s) still running: `docflow status JOB_ID` follows one "
            f"(e.g. {running[0].job_id})",
            markup=False,
            soft_wrap=True,
        )
    if len(batch.items) == 1 and not as_json:
        item = batch.items[0]
        if item.job and item.outcome(batch.options.wait) == "completed":
            result = item.job.get("result") or {}
            summary = " ".join(str(result.get("summary") or "").split())
            console.print(f"  summary: {summary}", markup=False, soft_wrap=True)
            for line in analysis_view.lines(result.get("analysis")):
                console.print(line, markup=False, soft_wrap=True)


def _by_count(pair: tuple[str, int]) -> tuple[int, str]:
    return (-pair[1], pair[0])
