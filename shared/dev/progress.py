"""Tiny terminal progress bars for the CLI, without dependencies.

`BytesBar` follows an upload (bytes sent of the total); `JobBars` shows one line per job (stage
and percent). On a terminal they redraw in place: a carriage return for one line, cursor-up for
several. Anywhere else (a pipe, a CI log, TERM=dumb) they print plain lines instead, and only
updates worth a line: a bytes bar at every quarter, a job bar whenever its status, stage or
percent changes. So a CI log reads as a short history, not a smear of carriage returns.
"""

from __future__ import annotations

import os
import shutil
import sys
from typing import TextIO

BAR_WIDTH = 20
LABEL_WIDTH = 28  # at most; shorter labels take less


def is_interactive(stream: TextIO) -> bool:
    """A terminal that understands carriage returns and cursor movement."""
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
        return False
    return tty and os.environ.get("TERM", "") != "dumb"


def bar(fraction: float, width: int = BAR_WIDTH) -> str:
    """`[#########---------]`; full only at 1.0."""
    fraction = min(max(fraction, 0.0), 1.0)
    filled = int(fraction * width)
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def human_bytes(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    value = n / 1024
    for unit in ("KiB", "MiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def label_column(label: str, width: int = LABEL_WIDTH) -> str:
    """The label padded (or shortened, keeping its end: the extension) to a fixed width."""
    if len(label) > width:
        label = "..." + label[-(width - 3) :]
    return label.ljust(width)


def _columns(stream: TextIO) -> int:
    try:
        columns = os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError):
        columns = 0
    return columns if columns > 0 else shutil.get_terminal_size().columns  # COLUMNS, or 80


class BytesBar:
    """`report.pdf  [########----]  66%  1.6 MiB / 2.4 MiB` for one upload."""

    def __init__(
        self,
        label: str,
        *,
        label_width: int | None = None,
        stream: TextIO | None = None,
        interactive: bool | None = None,
    ) -> None:
        self.label = label
        self.label_width = label_width or min(len(label), LABEL_WIDTH)
        self.stream = stream if stream is not None else sys.stderr
        self.tty = is_interactive(self.stream) if interactive is None else interactive
        self.done = 0
        self.total = 0
        self._drawn = ""  # the line last drawn (tty) or printed (plain)
        self._quarter = -1
        self._open = False  # a tty line without its newline yet

    def percent(self) -> int:
        if self.total <= 0:
            return 100 if self.done else 0
        return min(100, self.done * 100 // self.total)

    def render(self, note: str = "") -> str:
        fraction = self.done / self.total if self.total > 0 else 0.0
        line = (
            f"{label_column(self.label, self.label_width)}  {bar(fraction)} {self.percent():>3}%  "
            f"{human_bytes(self.done)} / {human_bytes(self.total)}"
        )
        return f"{line}  {note}" if note else line

    def update(self, done: int, total: int | None = None) -> None:
        """The progress callback: `done` of `total` bytes sent."""
        if total is not None:
            self.total = total
        self.done = done
        if self.tty:
            self._draw(self.render())
            return
        quarter = self.percent() // 25
        if quarter != self._quarter and quarter < 4:  # the 100% line is finish()'s
            self._quarter = quarter
            self._print(self.render())

    def finish(self, note: str = "") -> None:
        """End the bar's line, with a note (`sent`, `failed`); call it once, at the end."""
        if not self._drawn:
            return  # never started (the file could not be read, the server not reached)
        line = self.render(note)
        if self.tty:
            self._draw(line)
            self.stream.write("\n")
            self._open = False
        elif line != self._drawn:
            self._print(line)
        self.stream.flush()

    def _draw(self, line: str) -> None:
        line = line[: max(_columns(self.stream) - 1, 20)]  # a wrapped line cannot be redrawn
        if line != self._drawn or not self._open:
            self.stream.write("\r\x1b[2K" + line)
            self.stream.flush()
            self._drawn, self._open = line, True

    def _print(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()
        self._drawn = line


class JobBars:
    """One line per job: `report.pdf  [######------]  45%  processing: extracting`."""

    def __init__(
        self,
        labels: dict[str, str],
        *,
        stream: TextIO | None = None,
        interactive: bool | None = None,
    ) -> None:
        self.labels = dict(labels)  # key (job id) -> label, in display order
        self.label_width = min(max((len(v) for v in labels.values()), default=1), LABEL_WIDTH)
        self.stream = stream if stream is not None else sys.stderr
        self.tty = is_interactive(self.stream) if interactive is None else interactive
        self.lines = {key: self._render(label, 0, "waiting") for key, label in labels.items()}
        self._printed: dict[str, str] = {}
        self._drawn_rows = 0

    def _render(self, label: str, percent: int, state: str) -> str:
        percent = min(max(percent, 0), 100)
        column = label_column(label, self.label_width)
        return f"{column}  {bar(percent / 100)} {percent:>3}%  {state}"

    def update(self, key: str, percent: int, status: str, stage: str | None = None) -> None:
        """Show a job's status (`processing`), stage (`extracting`) and percent."""
        state = f"{status}: {stage}" if stage and status == "processing" else status
        line = self._render(self.labels.setdefault(key, key), percent, state)
        changed = self.lines.get(key) != line
        self.lines[key] = line
        if self.tty:
            if changed or not self._drawn_rows:
                self._redraw()
        elif self._printed.get(key) != line:
            self._printed[key] = line
            self.stream.write(line + "\n")
            self.stream.flush()

    def close(self) -> None:
        """Leave the final lines on screen (tty); print what was never printed (plain)."""
        if self.tty:
            if not self._drawn_rows:
                self._redraw()
            return
        for key, line in self.lines.items():
            if self._printed.get(key) != line:
                self._printed[key] = line
                self.stream.write(line + "\n")
        self.stream.flush()

    def _redraw(self) -> None:
        width = max(_columns(self.stream) - 1, 20)
        out = [f"\x1b[{self._drawn_rows}A"] if self._drawn_rows else []
        for key in self.labels:
            out.append("\r\x1b[2K" + self.lines[key][:width] + "\n")
        self.stream.write("".join(out))
        self.stream.flush()
        self._drawn_rows = len(self.labels)
