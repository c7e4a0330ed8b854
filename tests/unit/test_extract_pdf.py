"""PDF extraction on PDFs generated here: PDFium for text, pypdf for the empty-owner-password
fallback and form fields, pdfminer.six for CJK fonts that are not embedded, and the
Markdown structure (headings, paragraphs, page headers and footers, page map)."""

from __future__ import annotations

import ctypes
import io
import re

import pypdf
import pypdfium2 as pdfium
import pypdfium2.raw as raw
import pytest

from shared.documents.extract import Extraction, ExtractionError, Limits
from shared.documents.extract.pdf import extract_pdf

Item = tuple[float, float, float, str, str]  # x, y, font size, text, standard font name


def make_pdf(pages: list[list[Item]]) -> bytes:
    """A PDF written by PDFium, text in the standard fonts at the given positions."""
    pdf = pdfium.PdfDocument.new()
    for items in pages:
        page = pdf.new_page(612, 792)
        for x, y, size, text, font in items:
            obj = raw.FPDFPageObj_NewTextObj(pdf.raw, font.encode(), ctypes.c_float(size))
            encoded = (text + "\0").encode("utf-16-le")
            buffer = ctypes.create_string_buffer(encoded, len(encoded))
            raw.FPDFText_SetText(obj, ctypes.cast(buffer, ctypes.POINTER(ctypes.c_ushort)))
            raw.FPDFPageObj_Transform(obj, 1, 0, 0, 1, x, y)
            raw.FPDFPage_InsertObject(page.raw, obj)
        raw.FPDFPage_GenerateContent(page.raw)
        page.close()
    out = io.BytesIO()
    pdf.save(out)
    pdf.close()
    return out.getvalue()


def raw_pdf(objects: list[bytes]) -> bytes:
    """A PDF from object bodies (object 1 is the catalog), with a correct xref table."""
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def stream(content: bytes) -> bytes:
    return b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream"


LIMITS = Limits()


def read(data: bytes, limits: Limits = LIMITS) -> Extraction:
    return extract_pdf(data, limits)


def simple() -> bytes:
    return make_pdf([[(72, 700, 12, "Quarterly figures for the Leiden office", "Helvetica")]])


# Encryption


class _PresentEmpty(str):
    """An empty password pypdf does not replace by the user password (it tests truthiness),
    so the file gets a real empty *owner* password beside a user password."""

    def __bool__(self) -> bool:
        return True


def encrypted(data: bytes, user: str, owner: str, algorithm: str) -> bytes:
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(data)))
    writer.encrypt(
        user_password=user,
        owner_password=_PresentEmpty(owner) if owner == "" else owner,
        algorithm=algorithm,
    )
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.mark.parametrize("algorithm", ["AES-256", "AES-128", "RC4-128"])
def test_password_protected_pdf_is_encrypted_document(algorithm: str) -> None:
    data = encrypted(simple(), "secret", "also-secret", algorithm)
    with pytest.raises(ExtractionError) as caught:
        read(data)
    assert caught.value.code == "encrypted_document"


@pytest.mark.parametrize("algorithm", ["AES-256", "AES-256-R5"])
def test_empty_owner_password_is_decrypted_through_pypdf(algorithm: str) -> None:
    data = encrypted(simple(), "secret", "", algorithm)
    with pytest.raises(pdfium.PdfiumError):
        pdfium.PdfDocument(data)  # PDFium alone refuses it
    result = read(data)
    assert "Quarterly figures for the Leiden office" in result.text
    assert result.details["decrypted"] is True


def test_empty_user_password_is_read_by_pdfium_directly() -> None:
    result = read(encrypted(simple(), "", "owner", "AES-256"))
    assert "Quarterly figures" in result.text
    assert "decrypted" not in result.details


def test_unreadable_pdf_stays_malformed() -> None:
    with pytest.raises(ExtractionError) as caught:
        read(b"%PDF-1.7\nnot a pdf at all")
    assert caught.value.code == "malformed_document"


# Leading junk


@pytest.mark.parametrize("junk", [200, 5000, 60_000])
def test_leading_junk_before_the_header_is_skipped(junk: int) -> None:
    data = b"X-Mailer: junk\r\n" * (junk // 16) + simple()
    result = read(data)
    assert "Quarterly figures for the Leiden office" in result.text
    assert result.details["leading_bytes_skipped"] == data.index(b"%PDF-")


def test_leading_junk_with_offsets_counted_from_the_file_start() -> None:
    """Some writers count xref offsets from the first byte of the file, junk included: after
    the junk is cut they are wrong by its length, and PDFium rebuilds the xref."""
    junk = b"J" * 5000
    head, table = raw_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
            b" /Resources << /Font << /F1 5 0 R >> >> >>",
            stream(b"BT /F1 12 Tf 72 720 Td (Absolute offsets) Tj ET"),
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        ]
    ).split(b"xref\n", 1)
    table = re.sub(
        rb"(?m)^(\d{10})(?= 00000 n)", lambda m: b"%010d" % (int(m[1]) + len(junk)), table
    )
    table = re.sub(
        rb"startxref\n(\d+)", lambda m: b"startxref\n%d" % (int(m[1]) + len(junk)), table
    )
    result = read(junk + head + b"xref\n" + table)
    assert result.text == "Absolute offsets"


def test_header_beyond_the_window_is_not_searched() -> None:
    with pytest.raises(ExtractionError) as caught:
        read(b"\0" * (70 * 1024) + simple())
    assert caught.value.code == "malformed_document"


# Form fields


def form_pdf(value: bytes) -> bytes:
    content = b"BT /F1 12 Tf 72 720 Td (Application form) Tj ET"
    return raw_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R"
            b" /AcroForm << /Fields [5 0 R 6 0 R 8 0 R 9 0 R 10 0 R] >> >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
            b" /Resources << /Font << /F1 7 0 R >> >> /Annots [5 0 R 6 0 R] >>",
            stream(content),
            b"<< /FT /Tx /T (applicant) /TU (Applicant name) /V "
            + value
            + b" /Type /Annot /Subtype /Widget"
            b" /Rect [72 600 300 620] /P 3 0 R >>",
            b"<< /FT /Btn /T (member) /V /Yes /Type /Annot /Subtype /Widget"
            b" /Rect [72 560 90 578] /P 3 0 R >>",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
            # A signed signature field: its value is a dictionary of binary data, not text.
            b"<< /FT /Sig /T (signature) /V << /Type /Sig /Filter /Adobe.PPKLite"
            b" /Contents <0badc0de> /ByteRange [0 10 20 30] >> >>",
            # A list box shows its options on the page; a drop-down (combo) does not.
            b"<< /FT /Ch /T (office) /Opt [(Leiden) [(ams) (Amsterdam)]] /V () >>",
            b"<< /FT /Ch /Ff 131072 /T (country) /Opt [(Netherlands) (Belgium)] /V (Belgium) >>",
        ]
    )


def test_filled_form_fields_are_in_text_and_markdown() -> None:
    result = read(form_pdf(b"(Margaretha Jansen)"))
    assert "Application form" in result.text
    assert "Applicant name: Margaretha Jansen" in result.text
    assert "member: Yes" in result.text
    assert "## Form fields\n\n- Applicant name: Margaretha Jansen\n- member: Yes" in result.markdown
    assert "office (list): Leiden, Amsterdam" in result.text
    assert "country: Belgium" in result.text and "Netherlands" not in result.text
    assert result.details["form_fields"] == 4
    assert "signature" not in result.text and "ByteRange" not in result.text


def test_document_without_form_has_no_form_section() -> None:
    result = read(simple())
    assert "Form fields" not in result.text and "form_fields" not in result.details


# CJK with a font that is not embedded


# Adobe-Japan1 CIDs of 日本語の文書です: what a Japanese producer writes with Identity-H.
JAPAN1_CIDS = [3284, 3722, 1952, 887, 3592, 2427, 880, 866]


def cjk_pdf() -> bytes:
    """Page 1: vertical Japanese in Ryumin-Light, not embedded, Identity-V, no ToUnicode (as
    in Japanese government gazettes), which PDFium drops. Page 2: Latin text."""
    cids = b"".join(cid.to_bytes(2, "big") for cid in JAPAN1_CIDS)
    content = b"BT /F1 14 Tf 72 720 Td <" + cids.hex().encode() + b"> Tj ET"
    return raw_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R 9 0 R] /Count 2 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
            b" /Resources << /Font << /F1 5 0 R >> >> >>",
            stream(content),
            b"<< /Type /Font /Subtype /Type0 /BaseFont /Ryumin-Light-Identity-V"
            b" /Encoding /Identity-V /DescendantFonts [6 0 R] >>",
            b"<< /Type /Font /Subtype /CIDFontType0 /BaseFont /Ryumin-Light /DW 1000"
            b" /CIDSystemInfo << /Registry (Adobe) /Ordering (Japan1) /Supplement 2 >>"
            b" /FontDescriptor 7 0 R >>",
            b"<< /Type /FontDescriptor /FontName /Ryumin-Light /Flags 6 /FontBBox [0 -141 1000 859]"
            b" /ItalicAngle 0 /Ascent 859 /Descent -141 /CapHeight 709 /StemV 69 >>",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 10 0 R"
            b" /Resources << /Font << /F2 8 0 R >> >> >>",
            stream(b"BT /F2 12 Tf 72 680 Td (Page two in Latin) Tj ET"),
        ]
    )


def test_cjk_page_with_font_not_embedded_is_read_with_cmaps() -> None:
    data = cjk_pdf()
    pdf = pdfium.PdfDocument(data)
    assert "日本語" not in pdf[0].get_textpage().get_text_range()  # PDFium alone loses it
    pdf.close()
    result = read(data)
    assert "日本語の文書です" in result.text and "Page two in Latin" in result.text
    assert "日本語の文書です" in result.markdown
    assert result.details["pages_read_by_pdfminer"] == 1  # page 2 is not read again
    assert result.details["pages_text_from_pdfminer"] == 1


@pytest.mark.parametrize("font", [b"Helvetica", b"FranklinGothic-Medium", b"CenturyGothic"])
def test_western_fonts_not_embedded_do_not_use_the_fallback(font: bytes) -> None:
    data = raw_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
            b" /Resources << /Font << /F1 5 0 R >> >> >>",
            stream(b"BT /F1 12 Tf 72 720 Td (Minutes of the meeting) Tj ET"),
            b"<< /Type /Font /Subtype /TrueType /BaseFont /"
            + font
            + b" /Encoding /WinAnsiEncoding >>",
        ]
    )
    result = read(data)
    assert result.text == "Minutes of the meeting"
    assert "pages_read_by_pdfminer" not in result.details


# Structure


def test_bigger_font_line_becomes_a_heading_and_bold_line_a_subheading() -> None:
    body = "Body text in the normal size of this document, long enough to be the body."
    data = make_pdf(
        [
            [
                (72, 720, 24, "Annual Report", "Helvetica"),
                (72, 690, 11, body, "Helvetica"),
                (72, 660, 11, "Results", "Helvetica-Bold"),
                (72, 640, 11, body, "Helvetica"),
            ]
        ]
    )
    result = read(data)
    assert result.markdown.startswith("# Annual Report\n\n" + body + "\n\n## Results\n\n")
    assert result.text.startswith("Annual Report\n")


def test_pages_set_in_one_size_keep_headings_and_paragraphs() -> None:
    # Every text object on each page is set alike (one font, one size): the title page's
    # lines are headings by their size, the body page's lines one paragraph per gap.
    body = [
        "The survey covered every office in the region and asked the staff about",
        "their work, their tools and the training they had received over the last",
        "two years, and it was answered by nearly all of them.",
        "The second part of the survey asked about the buildings themselves, the",
        "heating and the light, and the answers were far more varied.",
    ]
    data = make_pdf(
        [
            [
                (72, 700, 24, "Annual Report", "Helvetica"),
                (72, 560, 24, "Fernhill Instruments", "Helvetica"),
            ],
            [
                (72, 700, 11, body[0], "Helvetica"),
                (72, 687, 11, body[1], "Helvetica"),
                (72, 674, 11, body[2], "Helvetica"),
                (72, 640, 11, body[3], "Helvetica"),
                (72, 627, 11, body[4], "Helvetica"),
            ],
        ]
    )
    result = read(data)
    assert result.markdown == "\n\n".join(
        [
            "# Annual Report",
            "# Fernhill Instruments",
            " ".join(body[:3]),
            " ".join(body[3:]),
        ]
    )
    assert result.page_starts == [0, result.markdown.index("The survey")]
    assert result.text.split("\n") == [
        "Annual Report",
        "Fernhill Instruments",
        "",
        *body,
    ]


def test_paragraph_lines_are_joined_and_hyphenation_undone() -> None:
    data = make_pdf(
        [
            [
                (
                    72,
                    700,
                    11,
                    "The instruments were calibrated in the spring and every exam-",
                    "Helvetica",
                ),
                (
                    72,
                    687,
                    11,
                    "ple was measured twice before the results were written down in",
                    "Helvetica",
                ),
                (72, 674, 11, "the lab book.", "Helvetica"),
                (72, 640, 11, "A second paragraph starts after a blank line.", "Helvetica"),
            ]
        ]
    )
    result = read(data)
    assert (
        "every example was measured twice before the results were written down in the lab book."
        in result.markdown
    )
    assert "lab book.\n\nA second paragraph" in result.markdown
    words = result.text.split()
    assert "exam-" in words and "ple" in words  # the plain text keeps the lines as printed


TOPICS = ["", "calibration", "shipping", "invoices", "staffing"]


def page_items(n: int) -> list[Item]:
    return [
        (72, 760, 9, "Fernhill Instruments - Confidential", "Helvetica"),
        (72, 700, 11, f"Content of page {n} about {TOPICS[n]}.", "Helvetica"),
        (300, 40, 9, f"Page {n} of 3", "Helvetica"),
    ]


def test_repeated_header_and_footer_are_removed_from_markdown_only() -> None:
    result = read(make_pdf([page_items(n) for n in (1, 2, 3)]))
    assert "Confidential" not in result.markdown and "of 3" not in result.markdown
    assert result.text.count("Fernhill Instruments - Confidential") == 3
    assert "Page 2 of 3" in result.text
    for n in (1, 2, 3):
        assert f"Content of page {n} about {TOPICS[n]}." in result.markdown


def test_page_starts_point_at_each_page() -> None:
    result = read(make_pdf([page_items(n) for n in (1, 2, 3)]))
    assert result.pages == 3 and len(result.page_starts) == 3
    for n, start in enumerate(result.page_starts, start=1):
        assert result.markdown[start:].startswith(f"Content of page {n} ")


def test_page_starts_with_an_empty_page_and_a_page_cap() -> None:
    data = make_pdf([page_items(1), [], page_items(3), page_items(4)])
    result = read(data, Limits(max_pages=3))
    assert result.truncated and result.pages == 4 and len(result.page_starts) == 3
    assert result.page_starts[1] == result.page_starts[2]
    first, third = (
        result.markdown[: result.page_starts[2]],
        result.markdown[result.page_starts[2] :],
    )
    assert "calibration" in first and "invoices" not in first
    assert third.startswith("Fernhill Instruments") and "invoices" in third


def test_text_drawn_by_an_annotation_is_kept() -> None:
    """A FreeText annotation (a reviewer's note drawn on the page) is not in PDFium's page
    text; it is read from the flattened page."""
    appearance = b"BT /F1 10 Tf 2 4 Td (Reviewed by Anna Visser) Tj ET"
    data = raw_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
            b" /Resources << /Font << /F1 5 0 R >> >> /Annots [6 0 R] >>",
            stream(b"BT /F1 12 Tf 72 720 Td (Budget for the new laboratory) Tj ET"),
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
            b"<< /Type /Annot /Subtype /FreeText /Rect [72 600 272 620] /DA (/F1 10 Tf)"
            b" /Contents (Reviewed by Anna Visser) /AP << /N 7 0 R >> >>",
            b"<< /Type /XObject /Subtype /Form /BBox [0 0 200 20]"
            b" /Resources << /Font << /F1 5 0 R >> >> /Length %d >>\nstream\n"
            % len(appearance)
            + appearance
            + b"\nendstream",
        ]
    )
    result = read(data)
    assert result.text.startswith("Budget for the new laboratory")
    assert "Reviewed by Anna Visser" in result.text and "Reviewed by Anna Visser" in result.markdown
    assert result.details["pages_with_annotation_text"] == 1


def test_link_annotations_do_not_trigger_flattening() -> None:
    data = raw_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
            b" /Resources << /Font << /F1 5 0 R >> >> /Annots [6 0 R] >>",
            stream(b"BT /F1 12 Tf 72 720 Td (See the website) Tj ET"),
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
            b"<< /Type /Annot /Subtype /Link /Rect [72 715 200 735]"
            b" /A << /S /URI /URI (https://example.org) >> >>",
        ]
    )
    result = read(data)
    assert result.text == "See the website"
    assert "pages_with_annotation_text" not in result.details


def test_fake_bold_doubled_glyphs_are_read_once() -> None:
    data = make_pdf(
        [[(72, 700, 12, "MMuunniicciippaalliittéé ddee SSaaiinntt--SSaauuvveeuurr", "Helvetica")]]
    )
    result = read(data)
    assert "Municipalité" in result.text and "Saint-Sauveur" in result.text
    assert "ddee" in result.text  # two pairs only: too short to tell from a real word


def test_page_numbers_alternating_sides_are_removed_as_footers() -> None:
    pages = []
    for n, topic in enumerate(["calibration", "shipping", "invoices", "staffing"], start=1):
        footer = f"{n} \u00a9 Fernhill 2026" if n % 2 == 0 else f"\u00a9 Fernhill 2026 {n}"
        pages.append(
            [
                (72, 700, 11, f"Report on {topic} for the board.", "Helvetica"),
                (72, 40, 9, footer, "Helvetica"),
                (300, 20, 9, str(n), "Helvetica"),
            ]
        )
    result = read(make_pdf(pages))
    assert "Fernhill" not in result.markdown
    assert [line for line in result.markdown.split("\n\n")] == [
        "Report on calibration for the board.",
        "Report on shipping for the board.",
        "Report on invoices for the board.",
        "Report on staffing for the board.",
    ]
    assert result.text.count("Fernhill 2026") == 4


def test_document_set_all_in_bold_has_no_bold_headings() -> None:
    rows = [f"Item {n}: part number {n * 11}" for n in range(1, 7)]
    data = make_pdf([[(72, 700 - 14 * i, 11, row, "Helvetica-Bold") for i, row in enumerate(rows)]])
    result = read(data)
    assert "#" not in result.markdown
    assert all(row in result.markdown for row in rows)


def test_first_line_indent_starts_a_paragraph() -> None:
    lines = [
        (72, "The first paragraph runs across the whole width of the column here and"),
        (72, "ends on a full line too, so only the indent below marks the next one."),
        (90, "The second paragraph starts with an indent, as books and reports do it"),
        (72, "and continues at the left margin."),
    ]
    data = make_pdf(
        [[(x, 700 - 13 * i, 11, text, "Helvetica") for i, (x, text) in enumerate(lines)]]
    )
    blocks = read(data).markdown.split("\n\n")
    assert blocks == [
        lines[0][1] + " " + lines[1][1],
        lines[2][1] + " " + lines[3][1],
    ]
