"""Issue 15 detection: PDFs with leading junk, DOCX found through its package relationships
(Word Online, ISO 29500 Strict), small and ragged CSVs, and the declared name's narrow say."""

from __future__ import annotations

import io
import zipfile

import pytest

from shared.documents.extract import Limits
from shared.documents.extract.docx import extract_docx
from shared.documents.sniff import (
    CSV,
    DOCX,
    MARKDOWN,
    PDF,
    TEXT_PLAIN,
    csv_delimiter,
    pdf_header_offset,
    sniff,
)
from tests.support.data import zip_bytes

# --- PDF with leading junk ---------------------------------------------------------------

PDF_BODY = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\ntrailer <<>>\nstartxref\n9\n%%EOF\n"
# A compressed stream: binary, and the file need not end as a PDF ends.
BINARY_PDF_BODY = b"%PDF-1.7\n1 0 obj <</Length 8>> stream\n\x00\x01\x02\x03" * 30 + (
    b"\nendstream endobj\n%%EOF\n\x00trailing junk"
)


@pytest.mark.parametrize("junk", [2000, 10_000, 60_000])
def test_pdf_header_past_the_first_kilobyte_at_a_line_start(junk: int) -> None:
    data = b"X-Mailer: junk before the document\r\n" * (junk // 36) + PDF_BODY
    assert sniff(data) == PDF
    offset = pdf_header_offset(data)
    assert offset is not None and data[offset:].startswith(b"%PDF-1.4")


def test_a_binary_pdf_far_in_needs_no_trailer_at_the_end() -> None:
    data = b"Content-Type: application/pdf\r\n" * 100 + BINARY_PDF_BODY
    assert sniff(data) == PDF


def test_a_markdown_tutorial_quoting_pdf_syntax_stays_text() -> None:
    data = (
        b"# How a PDF file is laid out\n\n"
        + b"Some prose about the format.\n" * 100
        + b"\n```\n%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\nstartxref\n9\n%%EOF\n```\n"
        + b"\n- the header\n- the trailer\n"
    )
    assert sniff(data) == MARKDOWN
    assert pdf_header_offset(data) is None


def test_pdf_header_in_the_first_kilobyte_reports_its_offset() -> None:
    assert pdf_header_offset(PDF_BODY) == 0
    assert pdf_header_offset(b"junk" * 10 + PDF_BODY) == 40


@pytest.mark.parametrize(
    "data",
    [
        b"x\n" * 40_000 + PDF_BODY,  # beyond the 64 KiB window
        b"x" * 2000 + b"\n%PDF-1.4\n no end of file marker\n",  # no %%EOF after it
        b"x" * 2000 + b" %PDF-1.4\n%%EOF\n",  # not at a line start
        b"x" * 2000 + b"\n%PDF-x.y\n%%EOF\n",  # no version
        b"%%EOF\n" + b"x" * 2000 + b"\n%PDF-1.4\n",  # the %%EOF is before it
    ],
)
def test_a_far_header_needs_a_line_start_a_version_and_an_eof_after_it(data: bytes) -> None:
    assert pdf_header_offset(data) is None
    assert sniff(data) != PDF


def test_text_that_quotes_a_pdf_header_later_on_stays_text() -> None:
    data = b"Notes on the PDF format, which begins with a header line.\n" * 40 + (
        b"For example: %PDF-1.7 and it ends with %%EOF.\n"
    )
    assert sniff(data) == TEXT_PLAIN


# --- DOCX through the package relationships ------------------------------------------------

TRANSITIONAL_REL = (
    "http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"
)
STRICT_REL = "http://purl.oclc.org/ooxml/officeDocument/relationships/officeDocument"
MAIN_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
STRICT_BODY = (
    b'<w:document xmlns:w="http://purl.oclc.org/ooxml/wordprocessingml/main">'
    b"<w:body><w:p><w:r><w:t>Strict</w:t></w:r></w:p></w:body></w:document>"
)


DTD = b'?><!DOCTYPE Relationships [<!ENTITY a "aaaa">]>'


def rels(target: str, rel_type: str = TRANSITIONAL_REL, mode: str = "") -> bytes:
    mode_attr = f' TargetMode="{mode}"' if mode else ""
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/'
        'relationships/metadata/core-properties" Target="docProps/core.xml"/>'
        f'<Relationship Id="rId1" Type="{rel_type}" Target="{target}"{mode_attr}/>'
        "</Relationships>"
    ).encode()


def content_types(part: str, content_type: str = MAIN_TYPE) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" '
        'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/{part}" ContentType="{content_type}"/>'
        "</Types>"
    ).encode()


def package(part: str, **overrides: bytes) -> bytes:
    members = {
        "[Content_Types].xml": content_types(part),
        "_rels/.rels": rels(part),
        part: b"<w:document/>",
        "docProps/core.xml": b"<cp:coreProperties/>",
    }
    members.update(overrides)
    return zip_bytes(members)


def test_word_online_main_part_named_by_the_relationships() -> None:
    assert sniff(package("word/document2.xml")) == DOCX


def test_relationship_target_with_a_leading_slash_and_other_case() -> None:
    data = package("word/document2.xml", **{"_rels/.rels": rels("/Word/Document2.xml")})
    assert sniff(data) == DOCX


def test_strict_ooxml_is_a_docx() -> None:
    with_usual_name = zip_bytes(
        {
            "[Content_Types].xml": content_types("word/document.xml"),
            "_rels/.rels": rels("word/document.xml", STRICT_REL),
            "word/document.xml": STRICT_BODY,
        }
    )
    assert sniff(with_usual_name) == DOCX
    renamed = package("word/main.xml", **{"_rels/.rels": rels("word/main.xml", STRICT_REL)})
    assert sniff(renamed) == DOCX


def test_main_part_typed_by_the_default_for_its_extension() -> None:
    types = (
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        f'<Default Extension="xml" ContentType="{MAIN_TYPE}"/></Types>'
    ).encode()
    assert sniff(package("word/document2.xml", **{"[Content_Types].xml": types})) == DOCX


@pytest.mark.parametrize(
    "overrides",
    [
        # the relationship names a part that is not there
        {"_rels/.rels": rels("word/missing.xml")},
        # the main part is a workbook, not a Word document
        {
            "[Content_Types].xml": content_types(
                "word/document2.xml",
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
            )
        },
        # an external target is not a part of the package
        {"_rels/.rels": rels("word/document2.xml", mode="External")},
        # another relationship type
        {"_rels/.rels": rels("word/document2.xml", rel_type="http://example.com/other")},
        # not XML
        {"_rels/.rels": b"<Relationships"},
        # a DTD (entity expansion) in a package part is refused
        {"_rels/.rels": rels("word/document2.xml").replace(b"?>", DTD, 1)},
        # a package part larger than the cap is not read
        {"_rels/.rels": rels("word/document2.xml") + b" " * (64 * 1024)},
    ],
)
def test_packages_that_do_not_name_a_word_main_part(overrides: dict[str, bytes]) -> None:
    assert sniff(package("word/document2.xml", **overrides)) is None


def test_without_relationships_or_content_types() -> None:
    members = {"[Content_Types].xml": content_types("word/document2.xml")}
    members["word/document2.xml"] = b"<w:document/>"
    assert sniff(zip_bytes(members)) is None


def test_only_the_two_package_parts_are_opened(monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[str] = []
    real_open = zipfile.ZipFile.open

    def recording_open(self: zipfile.ZipFile, name: object, *args: object, **kw: object) -> object:
        opened.append(name.filename if isinstance(name, zipfile.ZipInfo) else str(name))
        return real_open(self, name, *args, **kw)  # type: ignore[arg-type]

    data = package("word/document2.xml", **{"word/document2.xml": b"<w:document/>" * 10_000})
    monkeypatch.setattr(zipfile.ZipFile, "open", recording_open)
    assert sniff(data) == DOCX
    assert sorted(opened) == ["[Content_Types].xml", "_rels/.rels"]


def test_a_compressed_package_part_is_read_only_up_to_the_cap() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", content_types("word/document2.xml"))
        archive.writestr("_rels/.rels", b"<Relationships>" + b" " * 50_000_000 + b"</x>")
        archive.writestr("word/document2.xml", b"<w:document/>")
    assert sniff(buffer.getvalue()) is None


# --- CSV: small and ragged tables ------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"4,5,6\n",  # one line of numbers
        b"3.5;-2;1e3\n",
        b"a,b,c,d,e,f\n,,,,,\n",  # a header over a row of empty fields
        b"a,b,c\n,,,\n",  # ragged: the empty row is longer
        b"a,b,c\n1,b\n2\n3,b,c\n",  # ragged, one row without a delimiter
        b'column_a,column_b,column_c\n1,27,,"I\'m too long!"\n,"I\'m too short!"\n'
        b"0,mixed types.... uh oh,17\n",
        b'\n\n\ncolumn_a,column_b,column_c\n1,27,,"long"\n,"short"\n0,x,17\n',  # blank lead
        b"name\tage\tcity\nAna\t31\nBruno\t45\tPorto\textra\n",
    ],
)
def test_small_or_ragged_csv_is_csv(data: bytes) -> None:
    assert sniff(data) == CSV
    assert sniff(data, name="table.csv") == CSV


@pytest.mark.parametrize(
    "data",
    [
        b"one,two,three\n",  # a single line of words: a list in a sentence
        b"nan,inf\n",
        b"Hello,world\n",
        b"Apples, pears, plums\nand more, as you like\nthe end\n",  # spaces after commas
        b"Dear team,,\nThe meeting moved to Tuesday afternoon at the usual place,\nBest\n",
        b"a,b,c\nThis row has a single long field of many words in it and more\nx\ny\n",
        b"x|y|z\n1|2\n3\n",  # `|` never takes the ragged path
    ],
)
def test_small_texts_with_delimiters_stay_text(data: bytes) -> None:
    assert sniff(data) == TEXT_PLAIN


def test_a_large_consistent_csv_is_csv() -> None:
    rows = [b"id,name,amount"] + [b"%d,item %d,%d.50" % (i, i, i) for i in range(50_000)]
    assert sniff(b"\n".join(rows) + b"\n") == CSV


def test_the_consistent_rule_still_wins_over_the_ragged_one() -> None:
    # Both `;` (consistent) and `,` (ragged) could be read; the consistent table wins.
    assert csv_delimiter("a;b,c;d\n1;2;3\n4;5;6\n") == ";"


# --- the declared name ----------------------------------------------------------------------

PIPES = b"Event|No|Site|\nPower Reactor|46521|PILGRIM|\nFuel Cycle|46522|HANFORD|\n"


def test_pipe_delimited_text_is_csv_unless_named_txt() -> None:
    assert sniff(PIPES) == CSV
    assert sniff(PIPES, name="events.csv") == CSV
    assert sniff(PIPES, name="events.psv") == CSV
    assert sniff(PIPES, name="events.txt") == TEXT_PLAIN
    assert sniff(PIPES, name="EVENTS.TXT") == TEXT_PLAIN
    assert sniff(PIPES, name="events.md") == MARKDOWN


@pytest.mark.parametrize(
    "data",
    [b"a,b,c\n1,2,3\n4,5,6\n", b"a;b;c\n1;2;3\n", b"a\tb\tc\n1\t2\t3\n"],
)
def test_comma_semicolon_and_tab_tables_named_txt_stay_csv(data: bytes) -> None:
    assert sniff(data, name="export.txt") == CSV


def test_a_markdown_name_makes_plain_text_markdown() -> None:
    data = b"Please include:\n* a minimal example\n* the expected output\n"
    assert sniff(data) == TEXT_PLAIN
    assert sniff(data, name="ISSUE_TEMPLATE.md") == MARKDOWN
    assert sniff(data, name="notes.markdown") == MARKDOWN


@pytest.mark.parametrize("name", ["report.txt", "report.md", "report.csv", "report.pdf", "x"])
def test_the_name_never_changes_binary_detection(name: str) -> None:
    assert sniff(PDF_BODY, name=name) == PDF
    assert sniff(b"\x89PNG\r\n\x1a\n" + bytes(100), name=name) is None
    assert sniff(package("word/document2.xml"), name=name) == DOCX
    assert sniff(b"<html><body><p>Hi</p></body></html>", name=name) != TEXT_PLAIN


def test_a_percent_encoded_main_part_is_read_by_the_sniffer_and_the_extractor_alike() -> None:
    """OPC relationship targets are URIs: `word/main%20document.xml` names the part
    `word/main document.xml`. The upload's check and the extractor resolve the main part with
    one function, so such a file is neither refused at upload nor unreadable to the job."""
    part = "word/main document.xml"
    body = (
        b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        b"<w:body><w:p><w:r><w:t>Encoded main part</w:t></w:r></w:p></w:body></w:document>"
    )
    data = package(
        part,
        **{
            "_rels/.rels": rels("word/main%20document.xml"),
            "[Content_Types].xml": content_types("word/main%20document.xml"),
            part: body,
        },
    )
    assert sniff(data) == DOCX
    assert extract_docx(data, Limits()).text == "Encoded main part"
