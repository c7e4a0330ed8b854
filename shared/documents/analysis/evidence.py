"""The grounding check: is a quote really in the document, and where.

A quote and the document are compared after the same normalization: Unicode NFKC, curly
quotes and dashes made plain, Markdown markup (emphasis, headings, table pipes, link targets,
backslash escapes, HTML comments) removed, case folded and white space collapsed. A quote
stays within one table row: the cells of a row are one line, the rows apart. A quote
found that way gets its place: the page (from the Markdown's `<!-- page N -->` markers) and the
nearest heading above it. A quote not found is not evidence, and its value goes to
`unverified`, never to `fields`.

Work is linear in the document: it is normalized once, a segment between two headings or page
markers at a time, with patterns that cannot backtrack, and a table of segment starts maps an
offset back to its page and heading.
"""

from __future__ import annotations

import bisect
import re
import unicodedata

import re2

_PAGE = re.compile(r"^<!-- page (\d+) -->$")
# A line that may change the place: a page marker or an ATX heading.
_PLACE_LINE = re.compile(r"(?m)^[ \t]*(?:<!-- page \d+ -->|#{1,6}(?![^ \t\n]))[^\n]*$")
# RE2 (linear time): with a backtracking engine these two take quadratic time on a line of
# `[` or `<!--` (64 KiB of `[`: 16 s).
_COMMENT = re2.compile(r"(?s)<!--.*?-->")
_LINK = re2.compile(r"!?\[([^\]\n]*)\]\([^)\s]*\)")
_MARKUP = re.compile(r"\\(?=[^\w\s])|[*_`|#>~]+")
# A GFM table row: a line that starts with a pipe.
_TABLE_ROW = re.compile(r"(?m)^[ \t]*\|[^\n]*$")
_DELIMITER_CELLS = frozenset(" \t|:-")
_SPACE = re.compile(r"\s+")
_PLAIN = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2212": "-",
        "\u00a0": " ",
        "\u00ad": "",
    }
)


def normalize(text: str) -> str:
    """The form in which quotes and the document are compared."""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text).translate(_PLAIN)
    if "<!--" in text:
        text = _COMMENT.sub(" ", text)
    if "[" in text:
        text = _LINK.sub(r"\1", text)
    text = _MARKUP.sub(" ", text)
    return _SPACE.sub(" ", text).strip().casefold()


def _normalized(segment: str) -> str:
    """A stretch of the document normalized, each table row on a line of its own: a quote
    (normalized, so without a line break) cannot run from one row into the next, where a
    row's label would stand beside the next row's figure. Delimiter rows (`|---|`) go."""
    if "|" not in segment:
        return normalize(segment)
    pieces = []
    done = 0
    for row in _TABLE_ROW.finditer(segment):
        pieces.append(normalize(segment[done : row.start()]))
        line = row.group()
        if not (set(line) <= _DELIMITER_CELLS and "-" in line):
            pieces.append(normalize(line))
        done = row.end()
    pieces.append(normalize(segment[done:]))
    return "\n".join(piece for piece in pieces if piece)


MAX_OCCURRENCES = 100  # places a quote is tried at before it counts as not found


def _bounded(text: str, start: int, end: int) -> bool:
    """Whether a match is not a piece of a longer number: "5%" is not in "25%", "$10" not in
    "$102", "$10.5" or "$10k". Words are not checked: extracted text can glue a word to the
    next ("WEBJan 10, 2020"), and a piece of a word states no figure."""
    if start > 0 and text[start].isdigit():
        before = text[start - 1]
        if before.isdigit() or (before in ".," and start > 1 and text[start - 2].isdigit()):
            return False
    if end < len(text) and text[end - 1].isdigit():
        after = text[end]
        if after.isalnum() or (after in ".," and end + 1 < len(text) and text[end + 1].isdigit()):
            return False
    return True


def _heading(line: str) -> str | None:
    """The text of an ATX heading line (`## Title ##`), or None; string methods only, so a
    long line of `#` and spaces costs linear time."""
    if not line.startswith("#"):
        return None
    level = len(line) - len(line.lstrip("#"))
    if level > 6 or (len(line) > level and line[level] not in " \t"):
        return None
    return line[level:].strip().rstrip("#").strip()


class Locator:
    """The document normalized once; `find(quote)` answers where a quote is."""

    def __init__(self, markdown: str) -> None:
        self._parts: list[str] = []
        self._starts: list[int] = []  # normalized offset where each kept segment starts
        self._places: list[tuple[int | None, str | None]] = []  # (page, heading) of it
        self._length = 0
        page: int | None = None
        section: str | None = None
        # Only page markers and headings change the place: the text between two of them is
        # normalized in one call, however many lines it has.
        done = 0
        for found in _PLACE_LINE.finditer(markdown):
            self._add(markdown[done : found.start()], page, section)
            done = found.end()
            line = found.group().strip()
            marker = _PAGE.match(line)
            if marker:
                page = int(marker.group(1))
                continue
            heading = _heading(line)
            if heading is not None:
                section = " ".join(_MARKUP.sub(" ", heading).split())[:300] or section
            self._add(line, page, section)
        self._add(markdown[done:], page, section)
        self.text = " ".join(self._parts)

    def _add(self, segment: str, page: int | None, section: str | None) -> None:
        norm = _normalized(segment)
        if norm:
            self._starts.append(self._length)
            self._places.append((page, section))
            self._parts.append(norm)
            self._length += len(norm) + 1

    def find(self, quote: str) -> tuple[int | None, str | None] | None:
        """(page, section) of the first place the quote is found, or None when it is not in
        the document (or is empty once normalized)."""
        needle = normalize(quote)
        if not needle:
            return None
        text = self.text
        at = text.find(needle)
        for _ in range(MAX_OCCURRENCES):
            if at < 0:
                return None
            if _bounded(text, at, at + len(needle)):
                return self._places[bisect.bisect_right(self._starts, at) - 1]
            at = text.find(needle, at + 1)
        return None

    def contains(self, text: str) -> bool:
        return self.find(text) is not None
