"""shared.documents.sniff in linear time: RE2 patterns that match what the earlier `re` patterns
matched,
and classifiers that only ever see the bounded sample.

The timing side (the adversarial inputs through the upload route and the worker) is in
tests/acceptance/test_redos.py; here everything is about *what* is matched and *what* is read.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import re2
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.documents import sniff as sniff_module
from shared.documents.sniff import CSV, HTML, MARKDOWN, TEXT_PLAIN, classify_text, sniff

SAMPLE = sniff_module._SAMPLE_CHARS
# Shapes that made the backtracking patterns take seconds (issue 13), at 64 KiB and 5 MiB.
ADVERSARIAL_UNITS = ("[a](", "[", "<", "a|", "*a", "#")


def _run(unit: str, size: int) -> bytes:
    return (unit * (size // len(unit) + 1)).encode()[:size]


@pytest.fixture(scope="module")
def every_char() -> str:
    """Every code point Python can put in a str that RE2 can read (no lone surrogates)."""
    return "".join(chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF)


# --- the building blocks mean what Python's `re` meant -------------------------------------


def test_the_space_class_is_pythons_backslash_s(every_char: str) -> None:
    spelled = re2.compile(f"[{sniff_module._SPACE}]")
    assert spelled.findall(every_char) == re.findall(r"\s", every_char)


def test_unicode_decimal_digits_are_pythons_backslash_d(every_char: str) -> None:
    """`\\p{Nd}` is Python's `\\d`, give or take digits that this Python's Unicode tables do
    not know yet (RE2's tables may be newer): no text this Python decodes can tell them apart."""
    python = set(re.findall(r"\d", every_char))
    rre2 = set(re2.findall(r"\p{Nd}", every_char))
    assert python <= rre2
    assert all(unicodedata.category(ch) == "Cn" for ch in rre2 - python)


def test_case_insensitive_letters_match_what_re_ignorecase_matches(every_char: str) -> None:
    for letter in "abcdefghijklmnopqrstuvwxyz":
        expected = re.findall(letter, every_char, re.IGNORECASE)
        assert re2.findall(sniff_module._ci(letter), every_char) == expected, letter


def test_word_characters_are_pythons_backslash_w(every_char: str) -> None:
    words = [ch for ch in every_char if sniff_module._is_word_char(ch)]
    assert words == re.findall(r"\w", every_char)


# --- the patterns match what the `re` patterns matched --------------------------------------

# The patterns as they were, for Python's backtracking `re` (2026-11 to issue 13).
_OLD_MARKDOWN = (
    re.compile(r"^#{1,6}[ \t]+\S|^[^\s].*\n(?:={3,}|-{3,})[ \t]*$", re.M),
    re.compile(r"^[ \t]*(?:[-*+]|\d{1,9}[.)])[ \t]+\S", re.M),
    re.compile(r"^[ \t]{0,3}(?:```|~~~)", re.M),
    re.compile(r"!?\[[^\]\n]+\]\([^)\s]+(?:[ \t]+\"[^\"\n]*\")?\)"),
    re.compile(r"\*\*[^*\s](?:[^*\n]*[^*\s])?\*\*|__[^_\s](?:[^_\n]*[^_\s])?__"),
    re.compile(r"^[ \t]{0,3}>[ \t]", re.M),
    re.compile(
        r"^[ \t]*\|?[ \t]*:?-{3,}:?[ \t]*(?:\|[ \t]*:?-{3,}:?[ \t]*)+\|?[ \t]*$", re.MULTILINE
    ),
)
_OLD_HTML_DOCUMENT = re.compile(r"<!doctype\s+html\b|<html\b", re.IGNORECASE)
_OLD_HTML_TAG = re.compile(
    r"</?(?:html|head|body|title|meta|link|style|script|div|span|p|a|br|hr|img|"
    r"h[1-6]|table|thead|tbody|tr|td|th|ul|ol|li|dl|dt|dd|section|article|header|"
    r"footer|nav|main|aside|form|pre|code|blockquote|em|strong|b|i|u)(?=[\s/>])",
    re.IGNORECASE,
)
_OLD_SVG_ROOT = re.compile(r"<svg\b", re.IGNORECASE)
_OLD_SENTENCE_END = re.compile(r"[.!?][\"')\]]*$")


def _old_quoted(delimiter: str) -> re.Pattern[str]:
    d = re.escape(delimiter)
    return re.compile(rf'(?:^|{d})"[^"\n]*"(?:{d}|$)', re.MULTILINE)


# Characters the patterns care about, plus the ones where RE2 and `re` differ by default:
# Unicode spaces, a non-ASCII digit, the letters re.IGNORECASE folds specially, a non-ASCII
# word character.
_ALPHABET = (
    " \t\n\r\x0b\x0c\x1c\x85\xa0\u2028\u3000"
    "#=-*+_[]()!\"'|:>~`<?/.,;"
    "aAbdehilmoprstvgy1\u0663"
    "\u0130\u0131\u212a\u017f\xe9"
)
_TEXT = st.text(alphabet=_ALPHABET, max_size=40)
# Markdown-ish lines, so that multi-character constructs come up often.
_PIECES = st.sampled_from(
    [
        "# ",
        "## h",
        "===",
        "---",
        "- ",
        "1. ",
        "\u0661) ",
        "```",
        "~~~",
        "> ",
        "[a](b)",
        '[a](b "t")',
        "](",
        "**b**",
        "__u__",
        "| --- | --- |",
        "|:---:|",
        "<html",
        "<!doctype html>",
        "<D\u0130V ",
        "<svg",
        "<\u017fvg>",
        '"q",',
        ",",
        ".)",
        "\n",
        " ",
        "\t",
        "\xa0",
        "\u2028",
        "a",
    ]
)
_MARKDOWNISH = st.lists(st.one_of(_PIECES, _TEXT), max_size=12).map("".join)
_SAMPLES = st.one_of(_TEXT, _MARKDOWNISH)


@settings(max_examples=600, deadline=None)
@given(_SAMPLES)
def test_markdown_signals_match_the_old_patterns(text: str) -> None:
    for old, new in zip(_OLD_MARKDOWN, sniff_module._MARKDOWN_SIGNALS, strict=True):
        assert bool(old.search(text)) == bool(new.search(text)), (old.pattern, text)


@settings(max_examples=600, deadline=None)
@given(_SAMPLES)
def test_html_patterns_match_the_old_patterns(text: str) -> None:
    assert bool(_OLD_HTML_DOCUMENT.match(text)) == sniff_module._word_ends(
        sniff_module._HTML_DOCUMENT, text
    )
    assert bool(_OLD_SVG_ROOT.match(text)) == sniff_module._word_ends(sniff_module._SVG_ROOT, text)
    assert bool(_OLD_HTML_TAG.search(text)) == bool(sniff_module._HTML_TAG.search(text))


@settings(max_examples=600, deadline=None)
@given(_SAMPLES)
def test_csv_patterns_match_the_old_patterns(text: str) -> None:
    stripped = text.rstrip()
    assert bool(_OLD_SENTENCE_END.search(stripped)) == bool(
        sniff_module._SENTENCE_END.search(stripped)
    )
    for delimiter in sniff_module._CSV_DELIMITERS:
        assert bool(_old_quoted(delimiter).search(text)) == bool(
            sniff_module._QUOTED_FIELD[delimiter].search(text)
        ), (delimiter, text)


# Python's whitespace that RE2's `\\s` lacks, and templates that put it where a pattern
# looks for space or non-space.
_UNICODE_SPACES = "\x0b\x1c\x1f\x85\xa0\u1680\u2000\u2028\u2029\u202f\u205f\u3000"
_SPACE_TEMPLATES = (
    "# {w}",
    "#{w}x",
    "{w}x\n===",
    "x{w}\n---",
    "- {w}",
    "-{w}x",
    "1. {w}x",
    "[a]({w})",
    "[a](b{w})",
    '[a](b{w}"t")',
    "**{w}x**",
    "**x{w}**",
    "__{w}x__",
    "__x{w}__",
    "> {w}",
)


@pytest.mark.parametrize("template", _SPACE_TEMPLATES)
def test_unicode_spaces_in_markdown_by_hand(template: str) -> None:
    for space in _UNICODE_SPACES:
        text = template.format(w=space)
        for old, new in zip(_OLD_MARKDOWN, sniff_module._MARKDOWN_SIGNALS, strict=True):
            assert bool(old.search(text)) == bool(new.search(text)), (old.pattern, text)


@pytest.mark.parametrize(
    "text",
    [
        "<html>",
        "<HTML lang=en>",
        "<htmlx>",
        "<html_x>",
        "<html\xe9>",
        "<html\u0663>",
        "<html",
        "<!DOCTYPE\u3000html>",
        "<!doctype\xa0html\xe9>",
        "<d\u0130v class=x>",
        "<d\u0131v>",
        "<\u017fvg>",
        "<svg\u2028",
        "<Svg\xe9>",
    ],
)
def test_word_boundaries_and_folding_by_hand(text: str) -> None:
    assert bool(_OLD_HTML_DOCUMENT.match(text)) == sniff_module._word_ends(
        sniff_module._HTML_DOCUMENT, text
    )
    assert bool(_OLD_SVG_ROOT.match(text)) == sniff_module._word_ends(sniff_module._SVG_ROOT, text)
    assert bool(_OLD_HTML_TAG.search(text)) == bool(sniff_module._HTML_TAG.search(text))


def test_no_backtracking_engine_is_left_in_sniff() -> None:
    source = Path(sniff_module.__file__).read_text()
    assert "import re\n" not in source
    assert not [name for name, value in vars(sniff_module).items() if isinstance(value, re.Pattern)]


# --- only the bounded sample is read ---------------------------------------------------------

_PLAIN_LINE = "An ordinary line of prose, with nothing special about it at all.\n"


def _plain(chars: int) -> str:
    return (_PLAIN_LINE * (chars // len(_PLAIN_LINE) + 1))[:chars]


_MARKDOWN_TAIL = "# A heading\n\n- one\n- two\n\n> a quote with a [link](https://example.com)\n"


def test_markdown_past_the_sample_does_not_count() -> None:
    head = _plain(SAMPLE)
    assert sniff((head + _MARKDOWN_TAIL).encode()) == TEXT_PLAIN
    assert sniff((_MARKDOWN_TAIL + head).encode()) == MARKDOWN
    # Just inside the sample it counts: the boundary is the sample, not some other limit.
    inside = _plain(SAMPLE - 4096)
    assert sniff((inside + _MARKDOWN_TAIL + _plain(5 * 1024 * 1024)).encode()) == MARKDOWN


def test_a_table_past_the_sample_does_not_count() -> None:
    table = "a,b,c\n1,2,3\n4,5,6\n"
    assert sniff((table * 10 + _plain(5 * 1024 * 1024)).encode()) == CSV
    assert sniff((_plain(SAMPLE) + table * 10).encode()) == TEXT_PLAIN


def test_html_tags_past_the_head_do_not_count() -> None:
    """An unknown XML element opens the file; a known HTML tag only 2 KiB later is not seen."""
    late = "<note>\n" + "x" * sniff_module._HTML_HEAD_CHARS + "\n<div class='a'>b</div>\n"
    assert sniff(late.encode()) == TEXT_PLAIN
    early = "<note>\n<div class='a'>b</div>\n" + "x" * sniff_module._HTML_HEAD_CHARS
    assert sniff(early.encode()) == HTML


class _Recorder:
    """Wraps a compiled RE2 pattern and records the length of every text it is given."""

    def __init__(self, pattern: Any, seen: list[int]) -> None:
        self._pattern, self._seen = pattern, seen

    def search(self, text: str) -> Any:
        self._seen.append(len(text))
        return self._pattern.search(text)

    def match(self, text: str) -> Any:
        self._seen.append(len(text))
        return self._pattern.match(text)


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Every RE2 pattern in the sniffer, wrapped: the lengths of all the texts they search."""
    seen: list[int] = []
    compiled = type(re2.compile(""))

    def wrap(value: Any) -> Any:
        if isinstance(value, compiled):
            return _Recorder(value, seen)
        if isinstance(value, tuple):
            return tuple(wrap(v) for v in value)
        if isinstance(value, dict):
            return {k: wrap(v) for k, v in value.items()}
        return value

    for name, value in list(vars(sniff_module).items()):
        wrapped = wrap(value)
        if wrapped != value:
            monkeypatch.setattr(sniff_module, name, wrapped)
    yield seen


@pytest.mark.parametrize("unit", [*ADVERSARIAL_UNITS, "a,b\n1,2\n", "<p>x</p>\n", "- a\n# b\n"])
def test_every_pattern_sees_at_most_the_sample_of_a_5_mib_file(
    recorded: list[int], unit: str
) -> None:
    big = _run(unit, 5 * 1024 * 1024)
    result = sniff(big)
    assert recorded, (
        "no pattern ran: the recorder no longer wraps shared.documents.sniff's patterns"
    )
    assert max(recorded) <= SAMPLE
    # ...and so the answer is the one the sample alone gives.
    recorded.clear()
    assert result == sniff(big[:SAMPLE])


@pytest.mark.parametrize("unit", ADVERSARIAL_UNITS)
@pytest.mark.parametrize("size", [64 * 1024, 5 * 1024 * 1024])
def test_the_adversarial_shapes_are_plain_text(unit: str, size: int) -> None:
    assert sniff(_run(unit, size)) == TEXT_PLAIN
    assert classify_text(_run(unit, size).decode()) == TEXT_PLAIN


def test_the_pdf_header_scan_is_the_old_pattern() -> None:
    """`%PDF-` and a digit starting within the first 1024 bytes, as `re` found it in the first
    1032 bytes."""
    old = re.compile(rb"%PDF-\d")
    for at in range(1010, 1035):
        for tail in (b"1.7", b"x1.7", b"%PDF-1.4"):
            for lead in (b"x", b"%PDF-x"):
                data = lead + b"\x00" * (at - len(lead)) + b"%PDF-" + tail
                found = old.search(data[:1032])
                expected = found is not None and found.start() < 1024
                assert sniff_module._has_pdf_header(data) == expected, (at, tail, lead)
