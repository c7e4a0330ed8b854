"""PDF structure: from the lines PDFium reads on each page to GitHub Markdown.

`pdf.py` gives each line its text, its position (from the boxes of its first and last
character) and the font size and weight of the text object its first character belongs to:
one query per text object, never per character. From those, here:

- lines that repeat among the first or last two lines of most pages (numbers ignored, so
  "Page 3 of 9" matches "Page 4 of 9", and a bare page number matches another) are page
  headers and footers, and left out of the Markdown;
- a short line in a font clearly larger than the body text is a heading (the largest size is
  level 1, then 2, 3); a short bold line at body size is a heading one level below those;
- the lines of a paragraph are joined, and a word hyphenated across a line break is joined
  again (`exam-` + `ple` -> `example`); a paragraph ends at a vertical gap, a change of font
  size, a short line, or a list bullet.

Only the Markdown is restructured; the plain text stays PDFium's, line for line.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

from shared.documents.extract.markdown import escape_inline, heading


@dataclass(slots=True)
class Line:
    text: str
    size: float = 0.0  # effective font size in points; 0 when unknown
    bold: bool = False
    x0: float = 0.0
    x1: float = 0.0
    base0: float = 0.0  # baseline of the first character
    base1: float = 0.0  # baseline of the last (a line PDFium joined at a hyphen spans two)
    positioned: bool = False


_DIGITS = re.compile(r"\d+")
_SPACES = re.compile(r"\s+")
_LETTER = re.compile(r"[^\W\d_]")
_ROMAN_EDGES = re.compile(r"^[ivxlc]+\b|\b[ivxlc]+$")
_ROMAN = frozenset("ivxlc")
_BULLET = re.compile(r"^[•●▪◦‣∙·■□◆►➢✓\uf0b7\uf0a7*\u2013-]\s+")
# PDFium joins a word hyphenated at a line end into one line, the hyphen as U+FFFE.
_HYPHEN_BREAK = re.compile(r"(?<=[^\W\d_])\ufffe(?=([^\W\d_]))")
_HYPHENS = ("-", "\u00ad", "\x02")
_CJK = re.compile(r"[\u3000-\u30ff\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]")
_MAX_HEADING_CHARS = 120
_MAX_HEADING_WORDS = 16


def _key(text: str) -> str:
    """What a running header or footer keeps from page to page: the text without its
    numbers (arabic anywhere, roman at either end), so "2 © ACME" matches "© ACME 3"."""
    key = " ".join(_DIGITS.sub(" ", text.lower()).split())
    if key and (key[0] in _ROMAN or key[-1] in _ROMAN):
        key = _ROMAN_EDGES.sub("", key).strip()
    key = key.strip(" -\u2013\u2014|.:/")
    return key or "#"


def repeated_margins(pages: list[list[Line]]) -> set[str]:
    """Keys of lines found among the first or last two lines of more than half the pages
    (at least 3 pages): running headers, footers, page numbers."""
    if len(pages) < 3:
        return set()
    seen: Counter[str] = Counter()
    for lines in pages:
        edge = lines[:2] + lines[-2:]
        seen.update({_key(line.text) for line in edge if line.text.strip()})
    return {key for key, count in seen.items() if count >= 3 and count * 2 > len(pages)}


def body_size(pages: list[list[Line]], margins: set[str]) -> float:
    """The font size carrying most characters, page headers and footers left out."""
    sizes: Counter[float] = Counter()
    for lines in pages:
        for line in lines:
            if line.size > 0 and not (margins and _key(line.text) in margins):
                sizes[round(line.size * 2) / 2] += len(line.text)
    return sizes.most_common(1)[0][0] if sizes else 0.0


def document_style(pages: list[list[Line]], margins: set[str]) -> tuple[float, list[float], bool]:
    """(body size, heading sizes, whether bold is rare), from one pass over the lines:

    - heading sizes: up to three font sizes, largest first, clearly above the body size,
      used by short lines only and carrying less than a fifth of the text (a size that
      common is body text of another kind, such as a table);
    - bold is rare when bold lines carry under a fifth of the text: only then does a short
      bold line stand out as a heading (in a document set all in bold, none does).

    The body size is the size carrying most characters; `body_size` leaves running headers
    and footers out when there are any."""
    chars: dict[float, int] = {}
    by_size: dict[float, list[Line]] = {}
    bold = total = 0
    for lines in pages:
        for line in lines:
            n = len(line.text)
            total += n
            if line.bold:
                bold += n
            if line.size > 0:
                rounded = round(line.size * 2) / 2
                if rounded in chars:
                    chars[rounded] += n
                    by_size[rounded].append(line)
                else:
                    chars[rounded] = n
                    by_size[rounded] = [line]
    if margins:
        body = body_size(pages, margins)
    else:
        body = max(chars.items(), key=lambda item: item[1])[0] if chars else 0.0
    sizes: list[float] = []
    if body > 0:
        every = sum(chars.values())
        sizes = sorted(
            (
                size
                for size, count in chars.items()
                if size >= body * 1.15
                and count * 5 < every
                and all(_short(line.text) for line in by_size[size])
            ),
            reverse=True,
        )[:3]
    return body, sizes, bold * 5 < total


def _short(text: str) -> bool:
    stripped = text.strip()
    return (
        0 < len(stripped) <= _MAX_HEADING_CHARS
        and len(stripped.split()) <= _MAX_HEADING_WORDS
        and _LETTER.search(stripped) is not None
    )


def _heading_level(line: Line, body: float, sizes: list[float], bold_ok: bool) -> int:
    if not (line.positioned and (line.bold or line.size >= body * 1.15)):
        return 0
    if not _short(line.text):
        return 0
    rounded = round(line.size * 2) / 2
    if rounded in sizes:
        return sizes.index(rounded) + 1
    stripped = line.text.strip()
    if (
        bold_ok
        and line.bold
        and body > 0
        and abs(line.size - body) <= body * 0.15
        and len(stripped) <= 80
        and not stripped.endswith((".", ",", ";"))
    ):
        return len(sizes) + 1
    return 0


def _unhyphenate(match: re.Match[str]) -> str:
    return "" if match.group(1).islower() else "-"


def _join(left: str, right: str) -> str:
    if not left:
        return right
    if left.endswith(_HYPHENS) and len(left) > 1 and left[-2].isalpha() and right[:1].islower():
        return left[:-1] + right
    if left.endswith("\x02"):  # PDFium's mark for a hyphen at a line end
        left = left[:-1] + "-"
    if left[-1] >= "\u3000" and _CJK.match(left[-1]) and _CJK.match(right[:1] or " "):
        return left + right
    return left + " " + right


# First characters that cannot start a bullet or a numbered item (checked before the regex).
_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ \"'(")
_NUMBERED = re.compile(r"^\d{1,3}[.)]\s")


def _list_item(text: str) -> bool:
    return _BULLET.match(text) is not None or _NUMBERED.match(text) is not None


def _breaks(prev: Line, cur: Line, col_right: float) -> bool:
    first = cur.text[:1]
    if first and (first.isdigit() or first not in _PLAIN) and _list_item(cur.text):
        return True
    if not (prev.positioned and cur.positioned):
        return True
    size = max(prev.size, cur.size, 1.0)
    if abs(prev.size - cur.size) > 0.1 * size or prev.bold != cur.bold:
        return True
    drop = prev.base1 - cur.base0
    if drop > 1.7 * size or drop < -0.5 * size:  # a blank line, or up to a new column
        return True
    if cur.x0 > prev.x0 + 0.8 * size or cur.x0 < prev.x0 - 3 * size:  # an indent, a column
        return True
    width = col_right - prev.x0
    return width > 0 and prev.x1 < col_right - 0.2 * width


def _column_rights(lines: list[Line]) -> dict[int, float]:
    """The right edge of the text in each 20-point band of left edges (a column): the 75th
    percentile of the lines' right edges there, so a title spanning columns does not count."""
    ends: dict[int, list[float]] = {}
    for line in lines:
        if line.positioned:
            ends.setdefault(int(line.x0 // 20), []).append(line.x1)
    rights: dict[int, float] = {}
    for band in ends:
        near = sorted(ends.get(band - 1, []) + ends[band] + ends.get(band + 1, []))
        rights[band] = near[(len(near) * 3) // 4]
    return rights


def _column_right(rights: dict[int, float], line: Line) -> float:
    return rights.get(int(line.x0 // 20), line.x1)


def page_markdown(
    lines: list[Line], margins: set[str], body: float, sizes: list[float], bold_ok: bool
) -> str:
    """One page as Markdown blocks separated by blank lines. The loop is `_breaks` and
    `_join` written out, with the paragraph kept as a list of lines until it ends."""
    kept = [line for line in lines if line.text and not line.text.isspace()]
    n = len(kept)
    if margins:
        kept = [
            line
            for i, line in enumerate(kept)
            if not ((i < 2 or i >= n - 2) and _key(line.text) in margins)
        ]
    rights = _column_rights(kept)
    big = body * 1.15
    blocks: list[str] = []
    parts: list[str] = []  # the paragraph's lines, joined at its end
    prev: Line | None = None
    pending_heading: tuple[int, str] | None = None

    def flush() -> None:
        nonlocal pending_heading
        if pending_heading:
            blocks.append(heading(pending_heading[1], pending_heading[0]))
            pending_heading = None
        if parts:
            paragraph = " ".join(parts)
            parts.clear()
            bullet = _BULLET.match(paragraph)
            if bullet:
                blocks.append("- " + escape_inline(paragraph[bullet.end() :]))
            else:
                blocks.append(escape_inline(paragraph))

    for line in kept:
        raw = line.text
        text = raw
        if "\ufffe" in text:
            text = _HYPHEN_BREAK.sub(_unhyphenate, text).replace("\ufffe", "-")
        # Runs of spaces and other white space made one space (printable text with single
        # inner spaces, the common line, is left as it is).
        if not text.isprintable() or "  " in text or text[0] == " " or text[-1] == " ":
            text = " ".join(text.split())
        level = _heading_level(line, body, sizes, bold_ok) if line.bold or line.size >= big else 0
        if level:
            if parts:
                flush()
            if (
                pending_heading
                and pending_heading[0] == level
                and prev
                and not _breaks_gap(prev, line)
                and len(pending_heading[1]) + len(text) <= _MAX_HEADING_CHARS
            ):
                pending_heading = (level, pending_heading[1] + " " + text)  # a wrapped heading
            else:
                flush()
                pending_heading = (level, text)
            prev = line
            continue
        if pending_heading:
            flush()
        elif parts and prev is not None:
            # _breaks(prev, line, column right of prev), written out
            first = raw[0]
            if not (prev.positioned and line.positioned) or (
                (first.isdigit() or first not in _PLAIN) and _list_item(raw)
            ):
                flush()
            else:
                size = prev.size if prev.size > line.size else line.size
                if size < 1.0:
                    size = 1.0
                x0 = prev.x0
                drop = prev.base1 - line.base0
                if (
                    abs(prev.size - line.size) > 0.1 * size
                    or prev.bold != line.bold
                    or drop > 1.7 * size
                    or drop < -0.5 * size  # a blank line, or up to a new column
                    or line.x0 > x0 + 0.8 * size  # an indent
                    or line.x0 < x0 - 3 * size  # a column to the left
                ):
                    flush()
                else:
                    right = rights.get(int(x0 // 20), prev.x1)
                    width = right - x0
                    if width > 0 and prev.x1 < right - 0.2 * width:  # a short line
                        flush()
        # _join(paragraph, text), written out on the paragraph's last line
        if not parts:
            parts.append(text)
        else:
            last = parts[-1]
            if (
                last.endswith(_HYPHENS)
                and len(last) > 1
                and last[-2].isalpha()
                and text[:1].islower()
            ):
                parts[-1] = last[:-1] + text
            else:
                if last.endswith("\x02"):  # PDFium's mark for a hyphen at a line end
                    parts[-1] = last = last[:-1] + "-"
                if last[-1] >= "\u3000" and _CJK.match(last[-1]) and _CJK.match(text[:1] or " "):
                    parts[-1] = last + text
                else:
                    parts.append(text)
        prev = line
    flush()
    return "\n\n".join(blocks)


def _breaks_gap(prev: Line, cur: Line) -> bool:
    size = max(prev.size, cur.size, 1.0)
    drop = prev.base1 - cur.base0
    return drop > 1.7 * size or drop < -0.5 * size


def plain_markdown(text: str) -> str:
    """Markdown for text without positions (the fallback extractor's): lines joined into
    paragraphs at blank lines; between CJK characters a line break is dropped."""
    blocks = []
    for chunk in re.split(r"\n\s*\n", text):
        lines = [line.strip() for line in chunk.split("\n") if line.strip()]
        paragraph = ""
        for line in lines:
            paragraph = _join(paragraph, line)
        if paragraph:
            blocks.append(escape_inline(paragraph))
    return "\n\n".join(blocks)


def effective_size(size: float, a: float, b: float, c: float, d: float) -> float:
    return size * math.sqrt(abs(a * d - b * c))
