"""Extraction per format, checked on content (not only "no error"), and per failure reason."""

from __future__ import annotations

import csv

import pytest

from shared.documents import sniff
from shared.documents.extract import ExtractionError, Limits, extract
from shared.documents.extract.html import extract_html
from shared.documents.extract.tabular import extract_csv
from tests.support.data import SAMPLES, zip_bytes

LIMITS = Limits()


def run(name: str, limits: Limits = LIMITS):
    data = (SAMPLES / name).read_bytes()
    return extract(data, sniff.sniff(data) or "", limits)


def test_pdf_pages_text_and_metadata() -> None:
    result = run("annual-report.pdf")
    assert result.extractor == "pypdfium2"
    assert result.pages == 4
    assert (result.title, result.author) == ("Annual Report 2026", "Docflow Samples")
    for n in range(1, 5):
        assert f"Page {n}:" in result.text
    assert "Fernhill Instruments had its strongest year" in result.text
    assert result.text.index("Page 1:") < result.text.index("Page 4:")
    assert result.details == {"pages_with_text": 4, "pages_read": 4}
    assert not result.truncated


def test_pdf_page_cap_reads_only_the_first_pages() -> None:
    result = run("annual-report.pdf", Limits(max_pages=2))
    assert result.pages == 4 and result.truncated
    assert "Page 2:" in result.text and "Page 3:" not in result.text


def test_scanned_pdf_has_pages_but_no_text() -> None:
    result = run("bad/scanned.pdf")
    assert (result.pages, result.text, result.details["pages_with_text"]) == (2, "", 0)


def test_truncated_pdf_is_malformed() -> None:
    with pytest.raises(ExtractionError) as caught:
        run("bad/truncated.pdf")
    assert caught.value.code == "malformed_document"


def test_docx_paragraphs_headings_and_tables() -> None:
    result = run("board-minutes.docx")
    assert result.extractor == "docx"
    assert result.title == "Board Minutes, 12 March 2026"
    assert result.details == {"headings": 3, "tables": 1, "parts": ["body"]}
    assert "The board of Fernhill Instruments met at the Leiden office" in result.text
    table_rows = [line for line in result.text.splitlines() if line.count(" | ") == 2]
    assert len(table_rows) == 3  # a 3x3 table, one line per row, cells in order


def test_docx_zip_bomb_is_refused_before_parsing() -> None:
    with pytest.raises(ExtractionError) as caught:
        run("bad/bomb.docx")
    assert caught.value.code == "resource_limit"
    assert "uncompressed" in caught.value.message


def test_docx_limits_entries_and_ratio() -> None:
    many = zip_bytes({f"word/f{i}.xml": b"x" for i in range(20)} | {"word/document.xml": b""})
    with pytest.raises(ExtractionError, match="entries") as caught:
        extract(many, sniff.DOCX, Limits(docx_max_entries=10))
    assert caught.value.code == "resource_limit"
    dense = zip_bytes({"word/document.xml": b" " * (4 * 1024 * 1024)})
    with pytest.raises(ExtractionError, match="expands") as caught:
        extract(dense, sniff.DOCX, Limits(docx_max_ratio=50))
    assert caught.value.code == "resource_limit"


def test_a_zip_that_is_not_a_word_document_is_malformed() -> None:
    broken = zip_bytes({"word/document.xml": b"<not-xml"})
    with pytest.raises(ExtractionError) as caught:
        extract(broken, sniff.DOCX, LIMITS)
    assert caught.value.code == "malformed_document"


def test_html_readable_text_without_scripts_or_styles() -> None:
    result = run("product-faq.html")
    assert result.extractor == "html"
    assert result.title == "Fernhill Field sensors: frequently asked questions"
    assert "Answers to the questions our support team" in result.text
    assert "SCRIPT_SHOULD_NOT_APPEAR" not in result.text
    assert "STYLE_SHOULD_NOT_APPEAR" not in result.text and "font-family" not in result.text


def test_html_entities_blocks_and_lists() -> None:
    result = extract_html(
        "<html><head><title>T &amp; C</title><style>p{}</style></head><body>"
        "<h1>Terms</h1><p>Fees &lt; 5&nbsp;%</p><ul><li>one</li><li>two</li></ul>"
        "<script>alert(1)</script></body></html>"
    )
    assert result.title == "T & C"
    assert result.text.splitlines()[0] == "Terms"
    assert "Fees < 5 %" in result.text  # entities decoded, whitespace normalized
    assert "- one" in result.text and "- two" in result.text
    assert "alert" not in result.text


def test_csv_rendering_and_counts() -> None:
    result = run("sales-q3.csv")
    assert result.extractor == "csv"
    assert (result.details["rows"], result.details["columns"]) == (12, 5)
    assert result.details["header"] == ["region", "product", "units", "revenue_eur", "notes"]
    lines = result.text.splitlines()
    assert lines[0] == "region | product | units | revenue_eur | notes"
    assert "Strong, repeat orders from co-ops" in lines[1]  # a quoted field keeps its comma


def test_semicolon_csv() -> None:
    data = b"name;city;score\nAna;Lisbon;3\nBruno;Porto;4\n"
    result = extract(data, sniff.sniff(data) or "", LIMITS)
    assert (result.details["rows"], result.details["columns"]) == (2, 3)
    assert "Ana | Lisbon | 3" in result.text


def test_text_and_markdown_are_kept_as_they_are() -> None:
    text = (SAMPLES / "quarterly-report.txt").read_text()
    assert run("quarterly-report.txt").text == text
    md = run("meeting-notes.md")
    assert md.extractor == "markdown"
    assert md.text == (SAMPLES / "meeting-notes.md").read_text()


def test_utf16_and_latin1_text_are_decoded() -> None:
    for data in ("Grüße aus Köln".encode("utf-16"), "café déjà vu".encode("latin-1")):
        result = extract(data, sniff.sniff(data) or "", LIMITS)
        assert result.text in ("Grüße aus Köln", "café déjà vu")


def test_windows_newlines_are_normalized() -> None:
    result = extract(b"one\r\ntwo\rthree", sniff.TEXT_PLAIN, LIMITS)
    assert result.text == "one\ntwo\nthree"


def test_unknown_type_is_unsupported() -> None:
    with pytest.raises(ExtractionError) as caught:
        extract(b"\x89PNG\r\n", "image/png", LIMITS)
    assert caught.value.code == "unsupported_content"


# --- the CSV header rule: Sniffer's rule without Sniffer's backtracking dialect regexes -------

_CRAFTED_CSV = "a,b\n" + "1,2\n" * 25 + ",'a" * 21000  # csv.Sniffer took 11 s on this


def test_csv_header_detection_does_not_use_csv_sniffer(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("csv.Sniffer's dialect regexes backtrack on crafted input")

    monkeypatch.setattr(csv.Sniffer, "sniff", refuse)
    monkeypatch.setattr(csv.Sniffer, "has_header", refuse)
    result = extract_csv(_CRAFTED_CSV)
    assert result.details["header"] == ["a", "b"]


@pytest.mark.parametrize(
    "text",
    [
        "name,amount\nalice,10\nbob,20\ncarol,30\n",
        "1,2\n3,4\n5,6\n",
        "id,label\n1,x\n2,y\n3,z\n",
        "code,city\nAB,Paris\nCD,Rome\nEF,Oslo\n",
        "aa,bb\ncc,dd\nee,ff\n",
    ],
)
def test_csv_header_rule_agrees_with_csv_sniffer_on_ordinary_files(text: str) -> None:
    assert (extract_csv(text).details["header"] is not None) == csv.Sniffer().has_header(text)
