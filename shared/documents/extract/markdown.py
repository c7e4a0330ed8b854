"""GitHub Markdown building blocks shared by the extractors.

Tables are GFM tables. A merged cell (a span across columns or rows) keeps its value in the
first cell of the span, top left, and the other cells of the span are empty: every row has the
same number of cells, and no text is repeated.
"""

from __future__ import annotations

import re

_SPACES = re.compile(r"\s+")


def cell(text: str) -> str:
    """One table cell: whitespace (newlines included) collapsed, pipes escaped."""
    return _SPACES.sub(" ", text).strip().replace("|", "\\|")


def table(rows: list[list[str]], *, header: bool = True) -> str:
    """A GFM table. Without a header row, an empty header is written (GFM requires one).
    Short rows are padded with empty cells."""
    rows = [r for r in rows if r]
    if not rows:
        return ""
    width = max(len(r) for r in rows)
    padded = [[cell(c) for c in r] + [""] * (width - len(r)) for r in rows]
    head, body = (padded[0], padded[1:]) if header else ([""] * width, padded)
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * width) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in body]
    return "\n".join(lines)


def heading(text: str, level: int) -> str:
    return "#" * min(max(level, 1), 6) + " " + _SPACES.sub(" ", text).strip()


def escape_inline(text: str) -> str:
    """Text that would otherwise start a Markdown construct at the start of a line."""
    if re.match(r"^(#{1,6}\s|[-+*]\s|\d+[.)]\s|>|```|\|)", text):
        return "\\" + text
    return text
