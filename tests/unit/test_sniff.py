"""shared.documents.sniff: content detection from the bytes alone."""

from __future__ import annotations

import inspect
import io
import zipfile

import pytest

from shared.documents import sniff as sniff_module
from shared.documents.sniff import (
    CSV,
    DOCX,
    HTML,
    MARKDOWN,
    PDF,
    SUPPORTED,
    TEXT_PLAIN,
    TEXT_TYPES,
    csv_delimiter,
    decode_text,
    extension_for,
    sniff,
)
from tests.support.data import SAMPLES, zip_bytes

PROSE_WITH_COMMAS = (
    b"The year was strong, and revenue grew eleven percent over the previous one.\n"
    b"We hired, we trained, and we shipped the new sensor line on time.\n"
    b"Costs fell, margins rose, and most customers renewed their contracts.\n"
)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("annual-report.pdf", PDF),
        ("board-minutes.docx", DOCX),
        ("product-faq.html", HTML),
        ("meeting-notes.md", MARKDOWN),
        ("sales-q3.csv", CSV),
        ("quarterly-report.txt", TEXT_PLAIN),
        ("bad/scanned.pdf", PDF),
        ("bad/truncated.pdf", PDF),
        ("bad/bomb.docx", DOCX),
        ("bad/image.png", None),
    ],
)
def test_samples_are_detected(name: str, expected: str | None) -> None:
    assert sniff((SAMPLES / name).read_bytes()) == expected


def test_bomb_is_sniffed_from_the_central_directory_without_inflating(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = (SAMPLES / "bad" / "bomb.docx").read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.getinfo("word/document.xml").file_size > 100 * 1024 * 1024

    def no_member_is_opened(*args: object, **kwargs: object) -> None:
        raise AssertionError("sniff opened a ZIP member")

    monkeypatch.setattr(zipfile.ZipFile, "open", no_member_is_opened)
    assert sniff(data) == DOCX


def test_constants() -> None:
    assert SUPPORTED == (PDF, DOCX, HTML, MARKDOWN, CSV, TEXT_PLAIN)
    assert TEXT_TYPES == (HTML, MARKDOWN, CSV, TEXT_PLAIN)
    assert DOCX == "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    assert [extension_for(t) for t in SUPPORTED] == [
        ".pdf",
        ".docx",
        ".html",
        ".md",
        ".csv",
        ".txt",
    ]


# --- text encodings -------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"\xef\xbb\xbfplain text with a UTF-8 BOM\n",
        b"\xff\xfe" + "plain text in UTF-16 LE\n".encode("utf-16-le"),
        b"\xfe\xff" + "plain text in UTF-16 BE\n".encode("utf-16-be"),
    ],
)
def test_bom_text(data: bytes) -> None:
    text = decode_text(data)
    assert text is not None
    assert text.startswith("plain text") and "\ufeff" not in text
    assert sniff(data) == TEXT_PLAIN


def test_utf16_with_bom_is_classified_like_any_text() -> None:
    markdown = "# Title\n\n- one\n- two\n\n**bold** café\n"
    assert sniff(b"\xff\xfe" + markdown.encode("utf-16-le")) == MARKDOWN
    assert decode_text(b"\xfe\xff" + markdown.encode("utf-16-be")) == markdown


def test_utf8_without_bom() -> None:
    assert decode_text("naïve café, déjà vu\n".encode()) == "naïve café, déjà vu\n"


def test_latin1_fallback() -> None:
    data = "café déjà vu, à la carte".encode("latin-1")
    assert decode_text(data) == "café déjà vu, à la carte"
    assert sniff(data) == TEXT_PLAIN


def test_windows_1252_quotes_in_the_fallback() -> None:
    assert decode_text(b"\x93quoted\x94 text") == "\u201cquoted\u201d text"


def test_text_with_a_stray_control_character_is_text() -> None:
    data = b"a long line of ordinary text " * 20 + b"\x1b[0m\n"
    assert decode_text(data) is not None
    assert sniff(data) == TEXT_PLAIN


@pytest.mark.parametrize(
    "data",
    [
        b"text\x00with a NUL",
        bytes(range(256)) * 4,
        b"\x01\x02\x03\x04abc\x05\x06\x07\x08",
        b"\xff\xfe" + "NUL\x00inside".encode("utf-16-le"),
        b"\xff\xfe\x00\xd8",  # a lone surrogate
    ],
)
def test_binary_is_not_text(data: bytes) -> None:
    assert decode_text(data) is None
    assert sniff(data) is None


def test_empty() -> None:
    assert sniff(b"") is None
    assert decode_text(b"") == ""


# --- binary formats -------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
        b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
        b"GIF89a\x01\x00\x01\x00",
        b"GIF87a plus text that would otherwise decode",
        b"\x7fELF\x02\x01\x01\x00",
        b"MZ\x90\x00\x03\x00\x00\x00",
    ],
)
def test_images_and_executables_are_unsupported(data: bytes) -> None:
    assert sniff(data) is None


def test_docx_is_a_zip_with_word_document_xml() -> None:
    assert (
        sniff(zip_bytes({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<x/>"})) == DOCX
    )


def test_other_zips_are_unsupported() -> None:
    assert sniff(zip_bytes({"readme.txt": b"hello", "data.csv": b"a,b\n1,2\n"})) is None
    # an OpenDocument text or a workbook is not a DOCX either
    assert sniff(zip_bytes({"xl/workbook.xml": b"<workbook/>"})) is None


def test_corrupt_zip_is_unsupported() -> None:
    data = zip_bytes({"word/document.xml": b"<x/>" * 100})
    assert sniff(data[: len(data) // 2]) is None  # no central directory
    assert sniff(b"PK\x03\x04" + b"garbage" * 50) is None
    assert sniff(b"PK\x05\x06" + b"\x00" * 18) is None  # empty archive


def test_pdf_header_within_the_first_kilobyte() -> None:
    assert sniff(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\n%%EOF\n") == PDF
    assert sniff(b"\x00junk\xff" * 100 + b"%PDF-1.4\n") == PDF
    assert sniff(b"\x00" * 1023 + b"%PDF-1.4\n") == PDF


def test_pdf_header_after_the_first_kilobyte_is_not_a_pdf() -> None:
    assert sniff(b"\x00" * 1024 + b"%PDF-1.4\n") is None
    assert sniff(b"x" * 2000 + b"%PDF-1.4\n") == TEXT_PLAIN


def test_the_name_does_not_matter() -> None:
    # A file called minutes.docx that is really text: sniff only ever sees the bytes.
    path_named_docx = b"Minutes of the meeting.\nNothing was decided.\n"
    assert sniff(path_named_docx) == TEXT_PLAIN


# --- text formats ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"<!DOCTYPE html><html><body><p>Hi</p></body></html>",
        b"\n\n  <!doctype HTML>\n<title>x</title>",
        b"<html lang='en'><head><title>t</title></head></html>",
        b"<!-- generated -->\n<html><body>x</body></html>",
        b"<?xml version='1.0'?>\n<html xmlns='http://www.w3.org/1999/xhtml'><body/></html>",
        b"<div class='note'><p>A fragment that starts with a div.</p></div>",
        b"<p>First paragraph</p>\n<p>Second paragraph</p>\n",
        b"<H1>Shouting</H1>\n<TABLE><TR><TD>1</TD></TR></TABLE>",
    ],
)
def test_html(data: bytes) -> None:
    assert sniff(data) == HTML


@pytest.mark.parametrize(
    "data",
    [
        b"<3 this product, it works well\n",
        b"<user@example.com> wrote a short note\n",
        b"<?xml version='1.0'?>\n<order><item>3</item></order>\n",
        b"Text that mentions <div> tags later on.\n",
    ],
)
def test_not_html(data: bytes) -> None:
    assert sniff(data) == TEXT_PLAIN


def test_svg_is_an_image() -> None:
    assert sniff(b'<svg xmlns="http://www.w3.org/2000/svg"><title>logo</title></svg>') is None


def test_markdown_readme_opening_with_an_html_block_stays_markdown() -> None:
    data = b'<p align="center"><img src="logo.png"></p>\n\n# Project\n\n- fast\n- small\n'
    assert sniff(data) == MARKDOWN


@pytest.mark.parametrize(
    "data",
    [
        b"a,b,c\n1,2,3\n4,5,6\n",
        b"name;age;city\nAna;31;Lisboa\nBruno;45;Porto\nChen;28;Leiden\n",
        b"name\tage\tcity\nAna\t31\tLisboa\nBruno\t45\tPorto\n",
        b"id|status\n1|open\n2|closed\n3|open\n",
        b'id,comment\n1,"A long free-text comment with many words, and a comma"\n'
        b'2,"Another long comment that also has quite a few words in it"\n',
        b"region,units\r\nNorth,3\r\n\r\nSouth,4\r\n",
    ],
)
def test_csv(data: bytes) -> None:
    assert sniff(data) == CSV


@pytest.mark.parametrize(
    ("text", "delimiter"),
    [
        ("a,b\n1,2\n", ","),
        ("a;b\n1;2\n", ";"),
        ("a\tb\n1\t2\n", "\t"),
        ("a|b\n1|2\n", "|"),
        ("x;y,z\n1;2,3\n", ","),  # both consistent: the first in , ; tab | order wins
        ("no table here\n", None),
    ],
)
def test_csv_delimiter(text: str, delimiter: str | None) -> None:
    assert csv_delimiter(text) == delimiter


def test_csv_with_a_ragged_line_within_tolerance() -> None:
    rows = [b"a,b,c"] + [b"%d,%d,%d" % (i, i, i) for i in range(18)] + [b"total,54"]
    assert sniff(b"\n".join(rows) + b"\n") == CSV


@pytest.mark.parametrize(
    "data",
    [
        PROSE_WITH_COMMAS,
        b"I came, I saw, I conquered.\nWe left, we rested, we returned.\n",
        b"Dear Ana,\nThanks for the notes, they helped a lot with the plan.\n",
        b"\tAn indented paragraph of ordinary text.\n\tAnother indented line of text.\n",
        b"one,two,three\n",  # a single line is never a table
    ],
)
def test_prose_with_delimiters_is_plain_text(data: bytes) -> None:
    assert sniff(data) == TEXT_PLAIN


@pytest.mark.parametrize(
    "data",
    [
        b"# Title\n\nSome text with a [link](https://example.com).\n",
        b"Intro\n\n- one\n- two\n\n```\ncode\n```\n",
        b"> quoted\n\nAnd **bold** text.\n",
        b"Title\n=====\n\n1. first\n2. second\n",
        b"| a | b |\n|---|---|\n| 1 | 2 |\n\n## Notes\n",
    ],
)
def test_markdown(data: bytes) -> None:
    assert sniff(data) == MARKDOWN


@pytest.mark.parametrize(
    "data",
    [
        b"just one line of text",
        b"A shopping list:\n- milk\n- bread\n",  # a single Markdown signal
        b"   \n\n\t\n",
    ],
)
def test_plain_text(data: bytes) -> None:
    assert sniff(data) == TEXT_PLAIN


def test_classification_looks_at_the_head_only() -> None:
    head = b"a,b\n" + b"1,2\n" * 10
    assert sniff(head + b"free prose follows here. " * 20000) == CSV


def test_large_text_is_plain_text() -> None:
    # How long it takes is a benchmark (bench/redos_bench.py), not a test; that only the
    # bounded prefix is classified is shown in test_sniff_linear.py.
    data = b"An ordinary line of text, nothing special about it at all.\n" * 400_000  # 24 MB
    assert sniff(data) == TEXT_PLAIN


def test_the_name_is_an_optional_keyword_only_hint() -> None:
    # Issue 15: the declared name may settle CSV against plain text (a pipe-delimited .txt),
    # never more; it is keyword-only and optional, so content alone decides by default.
    parameters = inspect.signature(sniff_module.sniff).parameters
    assert list(parameters) == ["data", "name"]
    assert parameters["name"].kind is inspect.Parameter.KEYWORD_ONLY
    assert parameters["name"].default is None
