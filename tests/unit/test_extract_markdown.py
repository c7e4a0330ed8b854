"""The shared Markdown pieces: GFM tables, the page map, and plain text kept literal."""

from __future__ import annotations

from shared.documents.extract import Extraction, mark_pages
from shared.documents.extract.markdown import table
from shared.documents.extract.text import extract_text


def test_a_table_escapes_pipes_collapses_newlines_and_pads_short_rows():
    rows = [["name", "note"], ["a|b", "two\nlines"], ["only one"]]
    assert table(rows) == ("| name | note |\n|---|---|\n| a\\|b | two lines |\n| only one |  |")


def test_a_table_without_a_header_gets_an_empty_one():
    assert table([["1", "2"]], header=False) == "|  |  |\n|---|---|\n| 1 | 2 |"
    assert table([]) == ""


def test_the_page_map_is_written_into_the_markdown():
    extraction = Extraction(
        text="", extractor="pdf", markdown="# A\nfoo\nbar\nbaz", page_starts=[0, 8, 12]
    )
    marked = mark_pages(extraction)
    assert marked.markdown == (
        "<!-- page 1 -->\n# A\nfoo\n<!-- page 2 -->\nbar\n<!-- page 3 -->\nbaz"
    )
    assert [marked.markdown[i:].split("\n")[0] for i in marked.page_starts] == [
        "<!-- page 1 -->",
        "<!-- page 2 -->",
        "<!-- page 3 -->",
    ]


def test_a_page_that_starts_mid_line_still_gets_its_marker_on_a_line_of_its_own():
    marked = mark_pages(Extraction(text="", extractor="pdf", markdown="ab", page_starts=[0, 1]))
    assert marked.markdown == "<!-- page 1 -->\na\n<!-- page 2 -->\nb"


def test_plain_text_that_looks_like_markdown_stays_literal():
    extraction = extract_text("# not a heading\n- not a list\nplain")
    assert extraction.text == "# not a heading\n- not a list\nplain"
    assert extraction.markdown == "\\# not a heading\n\\- not a list\nplain"
