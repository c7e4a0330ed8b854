"""The grounding check: is a quote really in the document, and where.

A quote and the document are compared after the same normalization: Unicode NFKC, curly
quotes and dashes made plain, Markdown markup (emphasis, headings, table pipes, link targets,
backslash escapes, HTML comments) removed, case folded and white space collapsed. A quote
found that way gets its place: the page (from the Markdown's `<!-- page N -->` markers) and the
nearest heading above it. A quote not found is not evidence, and its value goes to
`unverified`, never to `fields`.

Work is linear in the document: it is normalized once, a line at a time, and a table of line
starts (one int a line) maps an offset back to its page and heading.
"""

from __future__ import annotations

import bisect
import re
import unicodedata

_PAGE = re.compile(r"^<!-- page (\d+) -->$")
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")
_COMMENT = re.compile(r"<!--.*?-->")
_LINK = re.compile(r"!?\[([^\]\n]*)\]\([^)\s]*\)")
_MARKUP = re.compile(r"\\(?=[^\w\s])|[*_`|#>~]+")
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
    text = unicodedata.normalize("NFKC", text).translate(_PLAIN)
    text = _LINK.sub(r"\1", _COMMENT.sub(" ", text))
    text = _MARKUP.sub(" ", text)
    return _SPACE.sub(" ", text).strip().casefold()


class Locator:
    """The document normalized once; `find(quote)` answers where a quote is."""

    def __init__(self, markdown: str) -> None:
        parts: list[str] = []
        self._starts: list[int] = []  # normalized offset where each kept line starts
        self._places: list[tuple[int | None, str | None]] = []  # (page, heading) of that line
        page: int | None = None
        section: str | None = None
        offset = 0
        for line in markdown.split("\n"):
            stripped = line.strip()
            marker = _PAGE.match(stripped)
            if marker:
                page = int(marker.group(1))
                continue
            heading = _HEADING.match(stripped)
            if heading:
                section = " ".join(_MARKUP.sub(" ", heading.group(1)).split())[:300] or section
            norm = normalize(line)
            if not norm:
                continue
            self._starts.append(offset)
            self._places.append((page, section))
            parts.append(norm)
            offset += len(norm) + 1
        self.text = " ".join(parts)

    def find(self, quote: str) -> tuple[int | None, str | None] | None:
        """(page, section) of the first place the quote is found, or None when it is not in
        the document (or is empty once normalized)."""
        needle = normalize(quote)
        if not needle:
            return None
        at = self.text.find(needle)
        if at < 0:
            return None
        return self._places[bisect.bisect_right(self._starts, at) - 1]

    def contains(self, text: str) -> bool:
        return self.find(text) is not None
