"""CSV extraction (issue 15): the whole table as a GFM table, the text as before."""

from __future__ import annotations

from shared.documents import sniff
from shared.documents.extract import Extraction, Limits, extract

LIMITS = Limits()


def extracted(data: bytes) -> Extraction:
    content_type = sniff.sniff(data)
    assert content_type == sniff.CSV
    return extract(data, content_type, LIMITS)


def test_header_row_becomes_the_gfm_header() -> None:
    result = extracted(b"region,units,price\nNorth,3,9.50\nSouth,4,7.25\n")
    assert result.markdown == (
        "| region | units | price |\n|---|---|---|\n| North | 3 | 9.50 |\n| South | 4 | 7.25 |"
    )
    assert result.text == "region | units | price\nNorth | 3 | 9.50\nSouth | 4 | 7.25"
    assert result.details["header"] == ["region", "units", "price"]


def test_without_a_header_the_gfm_header_row_is_empty() -> None:
    result = extracted(b"1,2,3\n4,5,6\n7,8,9\n")
    assert result.details["header"] is None
    lines = result.markdown.split("\n")
    assert lines[:2] == ["|  |  |  |", "|---|---|---|"]
    assert lines[2:] == ["| 1 | 2 | 3 |", "| 4 | 5 | 6 |", "| 7 | 8 | 9 |"]


def test_every_row_is_in_the_markdown() -> None:
    rows = [b"id,name"] + [b"%d,name %d" % (i, i) for i in range(5000)]
    result = extracted(b"\n".join(rows) + b"\n")
    lines = result.markdown.split("\n")
    assert len(lines) == 2 + 5000
    assert lines[-1] == "| 4999 | name 4999 |"


def test_ragged_rows_are_padded_and_pipes_escaped() -> None:
    result = extracted(b'id,comment,score\n1,"x|y"\n2\n3,fine,10\n4,good,20\n')
    assert result.markdown.split("\n") == [
        "| id | comment | score |",
        "|---|---|---|",
        "| 1 | x\\|y |  |",
        "| 2 |  |  |",
        "| 3 | fine | 10 |",
        "| 4 | good | 20 |",
    ]


def test_quoted_newlines_and_other_delimiters() -> None:
    result = extracted(b'name;note\nAna;"first line\nsecond line"\nBruno;short\n')
    assert result.details["delimiter"] == ";"
    assert "| Ana | first line second line |" in result.markdown.split("\n")
    tsv = extracted(b"k\tv\nalpha\t1\nbeta\t2\n")
    assert tsv.markdown.split("\n")[0] == "| k | v |"


def test_small_corpus_like_csv_has_a_table() -> None:
    result = extracted(b"a,b,c,d,e,f\n,,,,,\n")
    assert result.markdown.split("\n")[0] == "| a | b | c | d | e | f |"
    one_line = extracted(b"4,5,6\n")
    assert one_line.markdown.split("\n")[-1] == "| 4 | 5 | 6 |"
