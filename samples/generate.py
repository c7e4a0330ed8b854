"""Generate the sample documents for the demo and the tests.

    python samples/generate.py [OUTDIR]      (default: this folder)

Deterministic: every run writes the same bytes (fixed dates, no random, no compression of
the PDFs). Only the standard library and python-docx. The PDFs are written by hand (PDF 1.4:
catalog, pages, Helvetica Type1 fonts, uncompressed content streams, an Info dictionary and
a classic xref table).

Good documents (OUTDIR):
    annual-report.pdf   four pages of text, Title/Author metadata
    board-minutes.docx  headings, paragraphs, a bulleted list, a 3x3 table
    product-faq.html    a page with <style> and <script> whose content is not text
    sales-q3.csv        a header and 12 rows, quoted fields with commas
    (meeting-notes.md and quarterly-report.txt are hand-written and not generated)

Bad documents (OUTDIR/bad):
    scanned.pdf         two pages that only draw an image: no text layer
    truncated.pdf       the first 60 % of annual-report.pdf
    bomb.docx           a DOCX whose word/document.xml inflates to 200 MiB
    image.png           a small valid PNG (unsupported content)
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import struct
import sys
import textwrap
import zipfile
import zlib
from pathlib import Path

import docx
from docx.shared import Pt

FIXED_TIME = dt.datetime(2026, 3, 12, 9, 0, 0, tzinfo=dt.UTC)
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
AUTHOR = "Docflow Samples"

BOMB_SIZE = 200 * 1024 * 1024  # bytes of whitespace inside word/document.xml
_CHUNK = 1024 * 1024


# --- PDF ----------------------------------------------------------------------------


def pdf_string(text: str) -> bytes:
    """A PDF literal string: parentheses and backslashes escaped, WinAnsi bytes."""
    escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return b"(" + escaped.encode("cp1252") + b")"


def build_pdf(objects: list[bytes], info: int) -> bytes:
    """A PDF file from its objects (object n is objects[n - 1]; object 1 is the catalog)."""
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n" % (len(objects) + 1)
    out += b"0000000000 65535 f \n"
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info %d 0 R >>\n" % (len(objects) + 1, info)
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def stream(dictionary: bytes, data: bytes) -> bytes:
    return b"<< " + dictionary + b" /Length %d >>\nstream\n" % len(data) + data + b"\nendstream"


def info_dict(title: str, subject: str) -> bytes:
    return (
        b"<< /Title "
        + pdf_string(title)
        + b" /Author "
        + pdf_string(AUTHOR)
        + b" /Subject "
        + pdf_string(subject)
        + b" /Creator (docflow samples/generate.py) /Producer (docflow)"
        + b" /CreationDate (D:20260312090000Z) /ModDate (D:20260312090000Z) >>"
    )


REPORT_PAGES: list[tuple[str, list[str]]] = [
    (
        "Page 1: Overview",
        [
            "Fernhill Instruments had its strongest year since the company was founded in "
            "2009. Revenue reached 48.2 million euros, up 14 percent on the previous year, "
            "and every region grew for the first time in five years.",
            "The growth came from two places. Laboratory customers renewed their service "
            "contracts at a record rate of 93 percent, and the new Fernhill Field line of "
            "portable sensors found buyers well beyond the agricultural market it was "
            "designed for.",
            "This report covers the financial year from January to December 2026. It "
            "describes our results, our operations, the people who made them possible, and "
            "the plans the board approved for the year ahead.",
        ],
    ),
    (
        "Page 2: Financial results",
        [
            "Gross margin improved from 41 to 44 percent (mostly thanks to lower component "
            "costs) while operating expenses grew more slowly than revenue. Operating profit "
            "rose to 6.9 million euros, and the company ended the year with no debt.",
            "Recurring revenue from service contracts and calibration subscriptions now makes "
            "up 38 percent of the total. The board considers this the most important number "
            "in the report, because it keeps the business steady when equipment orders slow "
            "down.",
            "Cash reserves stand at 11.4 million euros. A dividend of 0.30 euros per share "
            "will be proposed at the annual general meeting in May.",
        ],
    ),
    (
        "Page 3: Operations and people",
        [
            "The Leiden assembly plant moved to two shifts in March, which cut the average "
            "delivery time for bench instruments from six weeks to three and a half. "
            "Defects found at final inspection fell by a third.",
            "Headcount grew from 212 to 247. Most of the new colleagues joined the service "
            "organisation, which now has field engineers in nine countries. Staff turnover "
            "was 7 percent, the lowest the company has recorded.",
            "We opened a small research office in Porto to work on low-power radio modules. "
            "Its first prototype extends the battery life of a Field sensor to four years.",
        ],
    ),
    (
        "Page 4: Outlook",
        [
            "For 2027 the board expects revenue growth between 9 and 12 percent. The main "
            "risks are the supply of specialised chips and the pace of public funding for "
            "university laboratories in our largest markets.",
            "Investment will go to three priorities: a second production line for Field "
            "sensors, a customer portal for calibration records, and a training programme "
            "that certifies partner technicians.",
            "We thank our customers, our employees and our shareholders for their trust. The "
            "full accounts are available from the company secretary on request.",
        ],
    ),
]


def annual_report_pdf() -> bytes:
    pages = REPORT_PAGES
    first_page = 5  # 1 catalog, 2 pages, 3 Helvetica, 4 Helvetica-Bold
    info = first_page + 2 * len(pages)
    kids = b" ".join(b"%d 0 R" % (first_page + 2 * i) for i in range(len(pages)))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % len(pages),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>",
    ]
    for index, (heading, paragraphs) in enumerate(pages, start=1):
        content = bytearray()
        content += b"BT /F2 18 Tf 72 720 Td " + pdf_string(heading) + b" Tj ET\n"
        content += b"BT /F1 11 Tf 72 688 Td\n"
        for number, paragraph in enumerate(paragraphs):
            if number:
                content += b"0 -10 Td\n"
            for line in textwrap.wrap(paragraph, width=84):
                content += pdf_string(line) + b" Tj 0 -15 Td\n"
        content += b"ET\n"
        footer = f"Fernhill Instruments - Annual Report 2026 - page {index} of {len(pages)}"
        content += b"BT /F1 9 Tf 72 40 Td " + pdf_string(footer) + b" Tj ET\n"
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792]"
            b" /Resources << /Font << /F1 3 0 R /F2 4 0 R >> >>"
            b" /Contents %d 0 R >>" % (len(objects) + 2)
        )
        objects.append(stream(b"", bytes(content)))
    objects.append(info_dict("Annual Report 2026", "Fernhill Instruments, financial year 2026"))
    assert len(objects) == info
    return build_pdf(objects, info)


def scan_image(width: int, height: int, seed: int) -> bytes:
    """Raw RGB pixels that look like a scanned page: off-white paper, grey lines of "text"."""
    pixels = bytearray()
    for y in range(height):
        band = (y // 3) % 2 == 1 and 4 <= y < height - 4
        for x in range(width):
            inked = band and 4 <= x < width - 4 - ((y * 7 + seed * 13) % 11)
            shade = 70 + (x * 5 + y * 3 + seed) % 30 if inked else 236 + (x + y + seed) % 12
            pixels += bytes((shade, shade, max(shade - 6, 0)))
    return bytes(pixels)


def scanned_pdf() -> bytes:
    width, height = 64, 80
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R 6 0 R] /Count 2 >>",
    ]
    for page in range(2):
        page_obj = len(objects) + 1
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792]"
            b" /Resources << /XObject << /Im1 %d 0 R >> >>"
            b" /Contents %d 0 R >>" % (page_obj + 1, page_obj + 2)
        )
        image = scan_image(width, height, page)
        objects.append(
            stream(
                b"/Type /XObject /Subtype /Image /Width %d /Height %d"
                b" /ColorSpace /DeviceRGB /BitsPerComponent 8" % (width, height),
                image,
            )
        )
        objects.append(stream(b"", b"q 468 0 0 585 72 120 cm /Im1 Do Q\n"))
    objects.append(info_dict("Scanned contract", "an image-only PDF: no text layer"))
    return build_pdf(objects, len(objects))


# --- DOCX ---------------------------------------------------------------------------


def zip_info(name: str, compress_type: int = zipfile.ZIP_DEFLATED) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
    info.compress_type = compress_type
    info.create_system = 3  # the same bytes whatever the platform
    info.external_attr = 0o644 << 16
    return info


def normalized_zip(data: bytes) -> bytes:
    """The same archive, members in the same order, with fixed dates and attributes."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as source,
        zipfile.ZipFile(out, "w") as target,
    ):
        for member in source.infolist():
            target.writestr(zip_info(member.filename), source.read(member), compresslevel=9)
    return out.getvalue()


def board_minutes_docx() -> bytes:
    document = docx.Document()
    core = document.core_properties
    core.title = "Board Minutes, 12 March 2026"
    core.author = AUTHOR
    core.last_modified_by = AUTHOR
    core.subject = "Fernhill Instruments board meeting"
    core.keywords = "board, minutes, budget"
    core.comments = "Sample document generated by samples/generate.py"
    core.created = FIXED_TIME.replace(tzinfo=None)
    core.modified = FIXED_TIME.replace(tzinfo=None)
    core.last_printed = FIXED_TIME.replace(tzinfo=None)
    core.revision = 1

    document.add_heading("Board Minutes, 12 March 2026", level=1)
    document.add_paragraph(
        "The board of Fernhill Instruments met at the Leiden office at 9:00. The chair, "
        "Marta Vos, opened the meeting and confirmed that all five directors were present."
    )
    document.add_paragraph(
        "The minutes of the February meeting were approved without changes. The finance "
        "director presented the results of the first quarter, which were ahead of plan."
    )
    document.add_heading("Decisions", level=2)
    for item in (
        "Approve the budget for the second Field sensor production line.",
        "Open a hiring round for four service engineers in Spain and Portugal.",
        "Propose a dividend of 0.30 euros per share to the annual general meeting.",
    ):
        document.add_paragraph(item, style="List Bullet")
    document.add_heading("Budget by department", level=2)
    rows = (
        ("Department", "Budget 2026", "Owner"),
        ("Production", "2.4 million euros", "Jonas Berg"),
        ("Service", "1.1 million euros", "Ines Carvalho"),
    )
    table = document.add_table(rows=len(rows), cols=len(rows[0]))
    table.style = "Table Grid"
    for row, values in zip(table.rows, rows, strict=True):
        for cell, value in zip(row.cells, values, strict=True):
            cell.text = value
    for cell in table.rows[0].cells:
        for run in cell.paragraphs[0].runs:
            run.bold = True
    closing = document.add_paragraph(
        "The next meeting will be held on 9 April 2026. The chair closed the meeting at 11:30."
    )
    closing.runs[0].font.size = Pt(10)
    buffer = io.BytesIO()
    document.save(buffer)
    return normalized_zip(buffer.getvalue())


CONTENT_TYPES = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    b'<Default Extension="rels" '
    b'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    b'<Default Extension="xml" ContentType="application/xml"/>'
    b'<Override PartName="/word/document.xml" ContentType="application/'
    b'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
    b"</Types>"
)
PACKAGE_RELS = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    b'<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    b'relationships/officeDocument" Target="word/document.xml"/>'
    b"</Relationships>"
)


def write_bomb_docx(path: Path) -> None:
    """A structurally valid DOCX whose main part inflates to BOMB_SIZE bytes of spaces.

    Streamed through zipfile in 1 MiB chunks, so neither this script nor the file (a couple
    of hundred KB) ever holds the inflated text.
    """
    head = (
        b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        b"<w:body>"
    )
    tail = b"<w:p><w:r><w:t>Nothing to see here.</w:t></w:r></w:p></w:body></w:document>"
    chunk = b" " * _CHUNK
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(zip_info("[Content_Types].xml"), CONTENT_TYPES, compresslevel=9)
        archive.writestr(zip_info("_rels/.rels"), PACKAGE_RELS, compresslevel=9)
        with archive.open(zip_info("word/document.xml"), "w") as member:
            member.write(head)
            remaining = BOMB_SIZE
            while remaining:
                size = min(remaining, _CHUNK)
                member.write(chunk[:size])
                remaining -= size
            member.write(tail)


# --- PNG ----------------------------------------------------------------------------


def png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def tiny_png(width: int = 8, height: int = 8) -> bytes:
    """A valid RGB PNG; its zlib stream is one stored block, so no zlib version matters."""
    raw = bytearray()
    for y in range(height):
        raw += b"\x00"  # filter: none
        for x in range(width):
            raw += bytes((32 * x % 256, 32 * y % 256, 160))
    stored = b"\x01" + struct.pack("<HH", len(raw), len(raw) ^ 0xFFFF) + bytes(raw)
    compressed = b"\x78\x01" + stored + struct.pack(">I", zlib.adler32(bytes(raw)))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", compressed)
        + png_chunk(b"IEND", b"")
    )


# --- HTML and CSV -------------------------------------------------------------------

PRODUCT_FAQ_HTML = """\
<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Fernhill Field sensors: frequently asked questions</title>
  <style>
    /* STYLE_SHOULD_NOT_APPEAR */
    body { font-family: system-ui, sans-serif; max-width: 42rem; margin: 2rem auto; }
    h1, h2 { color: #1d3b2a; }
  </style>
  <script>
    // SCRIPT_SHOULD_NOT_APPEAR
    window.dataLayer = window.dataLayer || [];
    document.addEventListener("DOMContentLoaded", function () { console.log("faq ready"); });
  </script>
</head>
<body>
  <header>
    <nav>
      <a href="/">Home</a> | <a href="/products">Products</a> | <a href="/support">Support</a>
    </nav>
  </header>
  <main>
    <h1>Fernhill Field sensors: frequently asked questions</h1>
    <p>Answers to the questions our support team hears most often about the Field line of
    portable soil and climate sensors.</p>

    <h2>How long does the battery last?</h2>
    <p>A Field sensor that reports every fifteen minutes runs for about <strong>two
    years</strong> on its internal battery. Reporting every hour extends that to three.</p>

    <h2>Which networks can the sensors use?</h2>
    <p>Every sensor ships with a radio module for the following networks:</p>
    <ul>
      <li>LoRaWAN, in the EU868 and US915 bands</li>
      <li>NB-IoT, where the local operator supports it</li>
      <li>Bluetooth Low Energy, for setup from a phone</li>
    </ul>

    <h2>Can I export my data?</h2>
    <p>Yes. The dashboard exports any time range as CSV, and the REST API returns the same
    readings as JSON. Exports include the calibration record of each sensor.</p>

    <h2>What does the warranty cover?</h2>
    <p>Three years of parts and labour, including one free recalibration in the second
    year. Damage from flooding beyond the IP68 rating is not covered.</p>
  </main>
  <footer>
    <p>&copy; 2026 Fernhill Instruments. Questions? Write to support@fernhill.example.</p>
  </footer>
  <script>var SCRIPT_SHOULD_NOT_APPEAR_EITHER = true;</script>
</body>
</html>
"""

SALES_ROWS = [
    ("region", "product", "units", "revenue_eur", "notes"),
    ("North", "Field S1", "420", "88200.00", "Strong, repeat orders from co-ops"),
    ("North", "Bench B7", "35", "122500.00", ""),
    ("North", "Calibration plan", "118", "35400.00", "Renewals"),
    ("South", "Field S1", "610", "128100.00", "Drought season, early demand"),
    ("South", "Bench B7", "22", "77000.00", ""),
    ("South", "Calibration plan", "96", "28800.00", "Renewals, two lost to a competitor"),
    ("East", "Field S1", "275", "57750.00", ""),
    ("East", "Bench B7", "41", "143500.00", 'Includes the "Leiden University" tender'),
    ("East", "Calibration plan", "130", "39000.00", "Renewals"),
    ("West", "Field S1", "338", "70980.00", "New distributor, Porto"),
    ("West", "Bench B7", "18", "63000.00", ""),
    ("West", "Calibration plan", "74", "22200.00", "Renewals"),
]


def sales_csv() -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerows(SALES_ROWS)
    return out.getvalue().encode("utf-8")


# --- main ---------------------------------------------------------------------------


def generate(outdir: Path) -> list[Path]:
    """Write every generated sample under `outdir`; the paths written."""
    bad = outdir / "bad"
    bad.mkdir(parents=True, exist_ok=True)
    report = annual_report_pdf()
    files = {
        outdir / "annual-report.pdf": report,
        outdir / "board-minutes.docx": board_minutes_docx(),
        outdir / "product-faq.html": PRODUCT_FAQ_HTML.encode("utf-8"),
        outdir / "sales-q3.csv": sales_csv(),
        bad / "scanned.pdf": scanned_pdf(),
        bad / "truncated.pdf": report[: len(report) * 6 // 10],
        bad / "image.png": tiny_png(),
    }
    for path, data in files.items():
        path.write_bytes(data)
    bomb = bad / "bomb.docx"
    write_bomb_docx(bomb)
    return [*files, bomb]


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        print("usage: python samples/generate.py [OUTDIR]", file=sys.stderr)
        return 2
    outdir = Path(argv[0]) if argv else Path(__file__).resolve().parent
    for path in generate(outdir):
        print(f"{path.stat().st_size:>10}  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
