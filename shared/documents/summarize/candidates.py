"""Markdown to candidate sentences for the extractive summarizer, and the filters.

`parse()` reads the Markdown once, line by line (linear in its size), and keeps:

- the prose blocks, paragraphs and list items (list markers stripped), each with its section
  (the headings before it) and page (`<!-- page N -->` markers of PDF Markdown);
- the headings, as sections; the GFM tables, as `tables.Table`s (never as candidates);
- how many characters are prose and how many are tables (is the document tabular?).

What is never a candidate: headings (ATX, setext, and a paragraph that is only bold text);
code fences and their content; HTML blocks and comments; GFM tables and any `|` row; link
reference definitions; thematic breaks; table-of-contents lines (dot leaders, a short line
ending in a page number, everything in a "Contents" section up to the next heading); and any
line repeated three or more times in the document (compared lowercased, digits and runs of
whitespace ignored): page headers and footers.

`candidates()` then takes at most `max_blocks` blocks evenly across the sections, removes the
inline markup (images and badges dropped, links to their text, code spans, emphasis, HTML tags
and comments, backslash escapes), splits them into sentences and keeps the sentences that read
as prose (`is_prose`): at least five words with letters and some lowercase words, no table
row, no leftover markup, no dot leaders, not mostly digits, symbols or URLs.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import TypeVar

from shared.documents.summarize.tables import Table, is_delimiter_row, split_row

# Bounds: a block longer than this is cut before cleaning, a table keeps this many rows.
MAX_BLOCK_CHARS = 20_000
MAX_TABLE_ROWS = 100_000
REPEATED = 3  # a line seen this many times is a page header or footer
MAX_REPEATED_KEPT = 1_000  # repeated lines whose sentences are kept out of the candidates

T = TypeVar("T")

_PAGE_MARKER = re.compile(r"<!-- page \d+ -->")
_FENCE = re.compile(r"[ \t]*(`{3,}|~{3,})")
_ATX = re.compile(r" {0,3}(#{1,6})(?:[ \t]+|$)")
_SETEXT = re.compile(r" {0,3}(=+|-+)[ \t]*")
_BREAK = re.compile(r" {0,3}(?:(?:\*[ \t]*){3,}|(?:-[ \t]*){3,}|(?:_[ \t]*){3,})")
_LIST = re.compile(r"[ \t]*(?:[-+*\u2022\u25aa\u25cf\u2013]|\d{1,9}[.)])[ \t]+(?:\[[ xX]\][ \t]+)?")
_QUOTE = re.compile(r"[ \t]*(?:>[ \t]?)+")
_HTML_BLOCK = re.compile(r" {0,3}</?[A-Za-z][\w-]*(?:[\s/>]|$)")
_LINK_DEFINITION = re.compile(r" {0,3}\[[^\]\n]{1,999}\]:[ \t]*\S")
_BOLD_LINE = re.compile(r"(\*\*|__)[^*_\n]{1,300}\1:?|\*[^*\n]{1,300}\*:?")
_CONTENTS = re.compile(
    r"\W*(?:table of contents|contents|content|index|inhaltsverzeichnis|inhalt|sommaire|"
    r"table des mati\u00e8res|\u00edndice|indice|innhold|inneh\u00e5ll|indhold)\W*",
    re.IGNORECASE,
)
# Dot leaders: "Introduction ........ 4", "Scope . . . . 7", "Terms \u2026\u2026 9".
_DOT_LEADERS = re.compile(r"\.{4,}|(?:\. ){3,}\.|\u2026{2,}|\u00b7{4,}|(?:_ ){3,}|_{4,}")
# A short line ending in a page number (arabic or roman), without sentence punctuation.
_ENDS_IN_PAGE = re.compile(r"\s(?:\d{1,4}|[ivxlcdm]{1,7}|[IVXLCDM]{1,7})$")
_LETTER = re.compile(r"[^\W\d_]")
_SENTENCE_INSIDE = re.compile(r"[.!?:;][\"'\u201d\u2019)\]]*\s")
_WS = re.compile(r"[ \t\f\v\u00a0]+")
_DIGITS = str.maketrans("", "", "0123456789")


@dataclass
class Section:
    level: int  # 1-6 for `#` headings, 7 for a bold line standing as a heading, 0 before any
    title: str
    prose_chars: int = 0


@dataclass
class Block:
    text: str  # raw Markdown, lines joined with spaces
    section: int
    page: int
    position: int
    item: bool = False  # a list item (may be a phrase), not a paragraph


@dataclass
class Parsed:
    blocks: list[Block] = field(default_factory=list)
    sections: list[Section] = field(default_factory=lambda: [Section(0, "")])
    tables: list[Table] = field(default_factory=list)
    prose_chars: int = 0
    table_chars: int = 0
    pages: int = 1
    repeated: list[str] = field(default_factory=list)  # one of each repeated line


@dataclass
class Candidate:
    text: str  # the sentence as shown: markup removed, whitespace collapsed
    section: int
    page: int
    position: int  # order in the document
    closed: bool = True  # ends like a sentence: . ! ? or a closing quote or bracket


def line_key(line: str) -> str:
    """How lines are compared for repetition: lowercased, digits and spacing ignored."""
    return " ".join(line.lower().translate(_DIGITS).split())


def has_dot_leaders(text: str) -> bool:
    if ".." in text or ". ." in text or "__" in text or "_ _" in text:
        return bool(_DOT_LEADERS.search(text))
    return "\u2026\u2026" in text or "\u00b7\u00b7\u00b7\u00b7" in text


def is_toc_line(line: str) -> bool:
    """A table-of-contents line: dot leaders, or a short title ending in a page number."""
    if has_dot_leaders(line):
        return True
    line = line.strip()
    if len(line) > 160 or line[-1:] in ".!?:;,":
        return False
    match = _ENDS_IN_PAGE.search(line)
    return (
        match is not None
        and bool(_LETTER.search(line, 0, match.start()))
        and not _SENTENCE_INSIDE.search(line)
    )


def parse(markdown: str) -> Parsed:
    """Blocks, sections and tables of a Markdown document; see the module docstring."""
    parsed = Parsed()
    lines = markdown.split("\n")
    # Repetition: the keys of the lines, table rows aside, counted over the document.
    keys = [line_key(raw) if raw.lstrip()[:1] != "|" else "" for raw in lines]
    repeated = {key for key, n in Counter(keys).items() if n >= REPEATED and key}
    kept: set[str] = set()

    sections, blocks, tables = parsed.sections, parsed.blocks, parsed.tables
    paragraph: list[str] = []
    page = 1
    fence: str | None = None
    in_comment = False
    in_contents = False
    table: Table | None = None
    in_table = False
    delimiter_next = False
    carry = False
    item = False
    position = 0

    def flush() -> None:
        nonlocal position, item
        if not paragraph:
            return
        text = " ".join(paragraph)
        paragraph.clear()
        if len(text) > MAX_BLOCK_CHARS:
            text = " ".join(text.split())[:MAX_BLOCK_CHARS]
        blocks.append(Block(text, len(sections) - 1, page, position, item))
        item = False
        position += 1
        sections[-1].prose_chars += len(text)
        parsed.prose_chars += len(text)

    def start_section(level: int, title: str) -> None:
        nonlocal in_contents
        flush()
        title = " ".join(title.split())
        sections.append(Section(level, title))
        in_contents = bool(_CONTENTS.fullmatch(title))

    count = len(lines)
    for index in range(count):
        line = lines[index]
        if fence is not None:
            stripped = line.strip()
            if stripped.startswith(fence) and not stripped.strip(fence[0]):
                fence = None
            continue
        if in_comment:
            if "-->" in line:
                in_comment = False
            continue
        if not line or line.isspace():
            flush()
            in_table = False
            continue
        if in_table:
            if "|" in line:
                if delimiter_next:
                    delimiter_next = False
                    continue
                parsed.table_chars += len(line)
                if table is not None:
                    table.row_count += 1
                    if len(table.rows) < MAX_TABLE_ROWS:
                        table.rows.append(split_row(line))
                continue
            in_table = False
        stripped = line.strip()
        first = stripped[0]
        if first == "\\" and len(stripped) > 1 and not stripped[1].isspace():
            # A line the text extractor escaped ("\\# 1", "\\- a"): the rest is literal text.
            line = stripped = stripped[1:]
            first = stripped[0]
            if first in "#|`~>[<":
                paragraph.append(stripped)
                continue
        carried, carry = carry, False
        if first == "<":
            if _PAGE_MARKER.fullmatch(stripped):
                page = int(stripped[10:-4])
                parsed.pages = max(parsed.pages, page)
                # A paragraph cut by the page break may go on on the next page.
                carry = not paragraph and bool(blocks) and blocks[-1].text[-1:] not in ".!?:"
                continue
            if stripped.startswith("<!--"):
                flush()
                in_comment = "-->" not in stripped
                continue
            if _HTML_BLOCK.match(line):
                flush()
                continue
        if first == "|" or (
            "|" in stripped and index + 1 < count and is_delimiter_row(lines[index + 1])
        ):
            flush()
            parsed.table_chars += len(line)
            if index + 1 < count and is_delimiter_row(lines[index + 1]):
                table = Table(header=split_row(line))
                tables.append(table)
                delimiter_next = True
            else:
                table = None
            in_table = True
            continue
        if first in "`~":
            match = _FENCE.match(line)
            if match:
                flush()
                fence = match.group(1)
                continue
        if first == "#":
            match = _ATX.match(line)
            if match:
                title = line[match.end() :].strip().rstrip("#").strip()
                start_section(len(match.group(1)), title)
                continue
        if first in "=-" and paragraph and _SETEXT.fullmatch(line):
            title = " ".join(paragraph)
            paragraph.clear()
            start_section(1 if first == "=" else 2, title)
            continue
        if first in "*-_" and _BREAK.fullmatch(line):
            flush()
            continue
        if first == "[" and _LINK_DEFINITION.match(line):
            flush()
            continue
        if first in "*_" and _BOLD_LINE.fullmatch(stripped):
            start_section(7, stripped.strip("*_: "))
            continue
        if first == ">":
            line = _QUOTE.sub("", line, count=1)
            stripped = line.strip()
            if not stripped:
                flush()
                continue
        key = keys[index]
        if key in repeated:
            flush()  # a page header or footer, or boilerplate repeated all over
            carry = carried
            if key not in kept and len(kept) < MAX_REPEATED_KEPT:
                kept.add(key)
                parsed.repeated.append(stripped[:MAX_BLOCK_CHARS])
            continue
        if in_contents:
            if is_toc_line(stripped) or len(stripped) < 120 or not _SENTENCE_INSIDE.search(line):
                continue
            in_contents = False  # real prose: the contents section is over
        if is_toc_line(stripped):
            flush()
            continue
        if _CONTENTS.fullmatch(stripped):
            flush()
            in_contents = True
            continue
        match = _LIST.match(line)
        if match:
            flush()
            stripped = line[match.end() :].strip()
            if not stripped:
                continue
            item = True
        elif carried and not paragraph and first.islower():
            resumed = blocks.pop()  # the same paragraph, across the page break
            sections[resumed.section].prose_chars -= len(resumed.text)
            parsed.prose_chars -= len(resumed.text)
            position -= 1
            paragraph.append(resumed.text)
        paragraph.append(stripped)
    flush()
    return parsed


# --- inline markup --------------------------------------------------------------------------

# Links, images, autolinks and `**strong**` are found by scanners (below), not by patterns that
# look far ahead from every `[`, `<` or `**`: in Python's `re` those took 60 ms for 16 KB of `[`
# (each start read 500 characters on), and a block may be 20 KB.
_TAG = re.compile(r"</?[A-Za-z][\w-]{0,30}(?:\s[^<>\n]{0,500})?/?>")
_EMPHASIS = re.compile(r"(?<![\w*\\])([*_])(?=\S)([^\n*_]{0,500}?\S)\1(?![\w*])")
_STRIKE = re.compile(r"~~(?=\S)([^\n~]{0,500}?\S)~~")
_CITATION = re.compile(r"\[(?:\d{1,4}|[a-z]|citation needed|note \d{1,3})\]")
_TICKS = re.compile("`+")
_LINK_END = re.compile(r"[\]\n]")  # where a link's text ends
_PAREN_END = re.compile(r"[)\n]")
_NOT_SPACE = re.compile(r"\S")
_AUTOLINK = re.compile(r"<(?:https?|ftp|mailto):")
_AUTOLINK_END = re.compile(r"[>\s]")
_STRONG = re.compile(r"(?=(?:\*\*|__)\S)")
_CLOSES = {"**": re.compile(r"(?<=\S)\*\*"), "__": re.compile(r"(?<=\S)__")}
_NEWLINE = re.compile("\n")
_ROLE = re.compile(r"\{[a-z][\w:-]{0,30}\}(?=`|~)|(?<=`)~")
_SPACE_BEFORE = re.compile(r"(?<=\w) ([,;:.!?])(?=\s|$)")
_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")
_URL = re.compile(r"(?:https?://|ftp://|www\.)\S+", re.IGNORECASE)


def _drop_comments(text: str) -> str:
    """HTML comments removed; an unclosed one runs to the end. Linear (str.find)."""
    out, start = [], 0
    while True:
        begin = text.find("<!--", start)
        if begin < 0:
            out.append(text[start:])
            return "".join(out)
        out.append(text[start:begin])
        end = text.find("-->", begin + 4)
        if end < 0:
            return "".join(out)
        out.append(" ")
        start = end + 3


def _code_spans(text: str) -> str:
    r"""Code spans replaced by their text: what `(`+)([^`\n]{1,500}?)\1` substitutes with
    `\2`, in linear time (the pattern took 1.5 s for 16 KB of backticks: it tried every
    position of a run).

    The text of a span holds no backtick, so an opening run at `a..b` (`b` its end) is followed
    by the text up to the next backtick `e` (1-500 characters, no newline) and a closing run of
    `m` backticks. The leftmost match starts where the opener is no longer than the closer,
    at `max(a, b - m)`, and ends after as many closing backticks; scanning goes on there."""
    out: list[str] = []
    last = pos = 0
    while (a := text.find("`", pos)) >= 0:
        b = _TICKS.match(text, a).end()  # type: ignore[union-attr]
        e = text.find("`", b, b + 501)
        if e < 0 or "\n" in text[b:e]:
            pos = b  # no span starts in this run
            continue
        f = _TICKS.match(text, e).end()  # type: ignore[union-attr]
        start = max(a, b - (f - e))
        out += (text[last:start], text[b:e])
        last = pos = e + (b - start)
    out.append(text[last:])
    return "".join(out)


class _Next:
    """Where the next match of `pattern` at or after a position starts (`len(text)` if none).
    Asked at positions that never go back, it reads the text once: a scan that tries every `[`
    of a line does not read the line again from each."""

    def __init__(self, text: str, pattern: re.Pattern[str]) -> None:
        self.text, self.pattern, self.found = text, pattern, -1

    def __call__(self, at: int) -> int:
        if self.found < at:
            match = self.pattern.search(self.text, at)
            self.found = match.start() if match else len(self.text)
        return self.found


def _links(text: str, opener: str, replace: Callable[[str], str], *, empty: bool = False) -> str:
    r"""Links (`[text](url)`, `[text][ref]`) replaced by `replace(text)`, in linear time:
    `re.sub` of `\[([^\]\n]{0,500})\](?:\([^)\n]{0,2000}\)|\[[^\]\n]{0,200}\])` (`opener`
    "![" for images). `empty`: only `[` with at most 50 whitespace `](url)`.

    The text runs from the opener to the first `]` or newline (`q`), so every opener before `q`
    has the same end and the same target after it: when that fails they all do, and the first
    to match is the leftmost one within 500 (50) characters of `q`."""
    n = len(text)
    longest = 50 if empty else 500
    text_end = _Next(text, _NOT_SPACE if empty else _LINK_END)
    paren_end, ref_end = _Next(text, _PAREN_END), _Next(text, _LINK_END)
    target_q, target = -1, -1

    def target_end(q: int) -> int:
        """The end of the `(url)` or `[ref]` after the `]` at `q`; -1 if there is none."""
        after = text[q + 1 : q + 2]
        if after == "(":
            r = paren_end(q + 2)
            if r < n and text[r] == ")" and r - (q + 2) <= 2000:
                return r + 1
        elif after == "[" and not empty:
            r = ref_end(q + 2)
            if r < n and text[r] == "]" and r - (q + 2) <= 200:
                return r + 1
        return -1

    out: list[str] = []
    last = pos = 0
    while (p := text.find(opener, pos)) >= 0:
        start = p + len(opener)
        q = text_end(start)
        if q != target_q:
            target_q, target = q, (target_end(q) if q < n and text[q] == "]" else -1)
        if target < 0:
            pos = max(q, p + 1)  # no opener before q starts a link
        elif q - start > longest:
            pos = q - longest - len(opener)  # the first opener close enough to q
        else:
            out += (text[last:p], replace(text[start:q]))
            last = pos = target
    out.append(text[last:])
    return "".join(out)


def _autolinks(text: str) -> str:
    r"""`<https://...>` to the address: `re.sub` of `<((?:https?|ftp|mailto):[^>\s]{1,2000})>`
    with `\1`, in linear time (the address may hold `<`, so every opener before the same `>`
    or space ends there)."""
    end = _Next(text, _AUTOLINK_END)
    out: list[str] = []
    last = pos = 0
    while (match := _AUTOLINK.search(text, pos)) is not None:
        p, start = match.start(), match.end()
        q = end(start)
        if q < len(text) and text[q] == ">" and 1 <= q - start <= 2000:
            out += (text[last:p], text[p + 1 : q])
            last = pos = q + 1
        else:
            pos = p + 1
    out.append(text[last:])
    return "".join(out)


def _strong(text: str) -> str:
    r"""`**strong**` and `__strong__` to their text: `re.sub` of
    `(\*\*|__)(?=\S)([^\n]{0,500}?\S)\1` with `\2`, in linear time: the shortest text is
    the one up to the first closing `**` (`__`) after a non-space, within 501 characters and on
    the same line."""
    closes = {d: _Next(text, pattern) for d, pattern in _CLOSES.items()}
    newline = _Next(text, _NEWLINE)
    out: list[str] = []
    last = pos = 0
    while (match := _STRONG.search(text, pos)) is not None:
        p = match.start()
        j = closes[text[p : p + 2]](p + 3)
        if j < len(text) and j - (p + 2) <= 501 and j <= newline(p + 2):
            out += (text[last:p], text[p + 2 : j])
            last = pos = j + 2
        else:
            pos = p + 1
    out.append(text[last:])
    return "".join(out)


def _space(link_text: str) -> str:
    return " "


def clean_inline(text: str) -> str:
    """The text a reader sees: images and badges dropped, links to their text, code spans,
    emphasis, HTML tags and comments and backslash escapes removed, whitespace collapsed."""
    if "<!--" in text:
        text = _drop_comments(text)
    if "{" in text:
        text = _ROLE.sub("", text)
    if "[" in text:
        text = _CITATION.sub("", text)
        text = _links(text, "![", _space)
        text = _links(text, "![", _space)  # a badge: an image inside a link, inside a link
        text = _links(text, "[", _space, empty=True)
        text = _links(text, "[", str)
    if "<" in text:
        text = _autolinks(text)
        text = _TAG.sub(" ", text)
    if "`" in text:
        text = _code_spans(text)
    if "*" in text or "_" in text:
        if "**" in text or "__" in text:
            text = _strong(text)
        text = _EMPHASIS.sub(r"\2", text)
    if "~~" in text:
        text = _STRIKE.sub(r"\1", text)
    if "\\" in text:
        text = _ESCAPE.sub(r"\1", text)
    text = " ".join(text.split())
    return _SPACE_BEFORE.sub(r"\1", text) if " " in text else text


# --- sentences ------------------------------------------------------------------------------

_END = re.compile(r"[.!?\u2026][\"'\u201d\u2019)\]]*\s+|[\u3002\uff01\uff1f]\s*")
_ABBREVIATIONS = frozenset(
    [
        "e.g",
        "i.e",
        "etc",
        "vs",
        "cf",
        "al",
        "fig",
        "figs",
        "no",
        "nos",
        "dr",
        "mr",
        "mrs",
        "ms",
        "prof",
        "st",
        "inc",
        "ltd",
        "co",
        "corp",
        "jr",
        "sr",
        "approx",
        "dept",
        "est",
        "sec",
        "art",
        "para",
        "p",
        "pp",
        "vol",
        "ch",
        "eq",
        "ref",
        "resp",
        "incl",
        "excl",
        "min",
        "max",
        "ca",
    ]
)


def split_sentences(text: str) -> list[str]:
    """Sentences of a cleaned block: at end punctuation and whitespace, not after a known
    abbreviation or an initial ("e.g.", "Dr.", "J. Smith"), nor before a lowercase word."""
    out: list[str] = []
    start = 0
    for match in _END.finditer(text):
        end = match.end()
        if text[match.start()] == ".":
            word = text[text.rfind(" ", start, match.start()) + 1 : match.start()]
            bare = word.lstrip("(\"'\u201c\u2018[").lower()
            if bare in _ABBREVIATIONS or (len(bare) == 1 and bare.isalpha()) or "." in bare:
                continue
        if end < len(text) and text[end].islower():
            continue
        out.append(text[start : match.start() + len(match.group().rstrip())].strip())
        start = end
    if start < len(text):
        out.append(text[start:].strip())
    return [s for s in out if s]


# --- filters ----------------------------------------------------------------------------------

_WORDS = re.compile(r"[^\W\d_]+(?:['\u2019-][^\W\d_]+)*")
_MARKUP_LEFT = re.compile(r"\]\(|!\[|\[!|```|~~~|</?[A-Za-z][\w-]{0,30}[\s/>]|-->|\{\{|\}\}")
_TABLE_LIKE = re.compile(r"\|[^|]*\|")
_CODE_CHARS = str.maketrans("", "", "{}[]<>=;\\|^~$#@*")
_DIGIT = re.compile(r"\d")
_BROKEN = re.compile(r"(?<!\S)[^\W\d_AI](?!\S)")
_CASED = re.compile(r"[^\W\d_]")
# A token of source code: a call, an assignment, a dotted or snake_case name, brackets.
_CODE_TOKEN = re.compile(
    r"(?<!\S)(?:[a-z_]+\.[a-z_]+(?:\.[a-z_]+)*(?!\S)"
    r"|\S*?(?:[={}\[\]<>]|;\S|\w\(|[A-Za-z]_[A-Za-z])\S*)"
)


def is_prose(sentence: str) -> bool:
    """A sentence worth showing: see the module docstring."""
    if len(sentence) < 10 or has_dot_leaders(sentence) or _TABLE_LIKE.search(sentence):
        return False
    if _MARKUP_LEFT.search(sentence):
        return False
    words = _WORDS.findall(sentence)
    cased = [w for w in words if w.lower() != w.upper()]
    if not cased:
        # An uncased script (Chinese, Japanese, ...): judge by letters, not words.
        letters = len(_CASED.findall(sentence))
        return letters >= 8 and letters >= 0.5 * len(sentence.replace(" ", ""))
    tokens = sentence.split()
    worded = [t for t in tokens if _CASED.search(t)]
    if len(words) < 5 or len(worded) < 5:
        return False
    lower = sum(1 for w in cased if w.islower())
    if lower < 2 or lower < 0.3 * len(cased):
        return False  # a title, a name list, SHOUTING
    body = sentence.replace(" ", "")
    letters = sum(len(w) for w in words)
    if letters < 0.6 * len(body):
        return False  # mostly digits, symbols or codes
    # Tokens with a digit (not `\S*\d\S*`, which rescans a long token from each position).
    if sum(1 for t in tokens if _DIGIT.search(t)) > 0.3 * len(tokens):
        return False  # figures and codes: a specification, a form, a list of numbers
    if len(body) - len(body.translate(_CODE_CHARS)) > max(2, 0.03 * len(body)):
        return False  # markup
    if len(tokens) >= 10 and len({t.lower() for t in tokens}) < 0.3 * len(tokens):
        return False  # the same few words over and over
    if len(tokens) >= 8 and len(_BROKEN.findall(sentence)) > 0.25 * len(tokens):
        return False  # words broken into letters: a garbled text layer
    code = len(_CODE_TOKEN.findall(sentence))
    if (code >= 2 and code > 0.2 * len(tokens)) or code > 0.5 * len(tokens):
        return False  # source code: calls, assignments, dotted or snake_case names
    urls = _URL.findall(sentence)
    return not (urls and sum(map(len, urls)) > 0.3 * len(sentence))


def word_count(sentence: str) -> int:
    return len(_WORDS.findall(sentence))


# A bullet or an enumerator left at a sentence's start ("2. ", "(b) ", ".1 ", "• ").
_LEADING_MARK = re.compile(r"^(?:[-*+\u2022\u00b7]|\(?\d{1,3}[.)]|\(?[a-z][.)]|\.\d{1,2})\s+")
_FINAL = frozenset(".!?\u2026\"'\u201d\u2019)\u3002\uff01\uff1f")


def candidates(parsed: Parsed, max_blocks: int) -> list[Candidate]:
    """Prose sentences of at most `max_blocks` blocks, chosen evenly across the sections.

    A sentence that is also in a repeated line (a footer, a disclaimer on every page) is left
    out, as is every later copy of a sentence."""
    titles = {line_key(s.title) for s in parsed.sections if s.title}
    seen = {
        line_key(sentence)
        for line in parsed.repeated
        for sentence in split_sentences(clean_inline(line))
    }
    out: list[Candidate] = []
    for block in spread(parsed.blocks, max_blocks, lambda b: b.section):
        for sentence in split_sentences(clean_inline(block.text)):
            sentence = _LEADING_MARK.sub("", sentence)
            key = line_key(sentence)
            if key in seen or key.rstrip(".:") in titles or not is_prose(sentence):
                continue
            if sentence.endswith(":"):
                continue  # it introduces what follows (a list, a table) and says little alone
            closed = sentence[-1] in _FINAL
            if not (closed or block.item) and word_count(sentence) < 8:
                continue  # a label, a caption, a cut line: not a sentence
            seen.add(key)
            out.append(Candidate(sentence, block.section, block.page, block.position, closed))
    return out


def spread(items: list[T], limit: int, group: Callable[[T], Hashable]) -> list[T]:
    """At most `limit` items, deterministically and evenly across groups (`group(item)`),
    each group's share evenly spaced through it; document order kept."""
    if len(items) <= limit:
        return items
    groups: dict[Hashable, list[int]] = {}
    for i, item in enumerate(items):
        groups.setdefault(group(item), []).append(i)
    quota = dict.fromkeys(groups, 0)
    left = limit
    active = list(groups)
    # Water-filling: equal shares; a group smaller than its share gives the rest away.
    while left > 0 and active:
        share = left // len(active)
        if share == 0:
            for g in active[:left]:
                quota[g] += 1
            break
        still = []
        for g in active:
            take = min(share, len(groups[g]) - quota[g])
            quota[g] += take
            left -= take
            if quota[g] < len(groups[g]):
                still.append(g)
        active = still
    chosen: list[int] = []
    for g, members in groups.items():
        n = quota[g]
        if n:
            step = len(members) / n
            chosen += [members[int(k * step)] for k in range(n)]
    return [items[i] for i in sorted(chosen)]
