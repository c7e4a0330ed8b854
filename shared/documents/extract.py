"""Text extraction per format. Runs inside the sandbox (`sandbox.py`), never in the worker.

Each extractor takes the file's bytes and returns an `Extraction`; a document it cannot read
raises `ExtractionError` with a reason code (`malformed_document`, `resource_limit`,
`unsupported_content`). The content type comes from `shared.documents.sniff`, i.e. from the bytes.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from dataclasses import asdict, dataclass, field
from html.parser import HTMLParser
from typing import Any

from shared.documents import sniff


class ExtractionError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Limits:
    max_pages: int = 1000
    docx_max_entries: int = 1000
    docx_max_uncompressed_bytes: int = 100 * 1024 * 1024
    docx_max_ratio: float = 100.0


@dataclass
class Extraction:
    text: str
    extractor: str
    pages: int = 1
    title: str | None = None
    author: str | None = None
    truncated: bool = False
    details: dict[str, Any] = field(default_factory=dict)

    def metadata(self) -> dict[str, Any]:
        """Everything but the text."""
        data = asdict(self)
        data.pop("text")
        return data


def extract(data: bytes, content_type: str, limits: Limits) -> Extraction:
    if content_type == sniff.PDF:
        return extract_pdf(data, limits)
    if content_type == sniff.DOCX:
        return extract_docx(data, limits)
    text = sniff.decode_text(data)
    if text is None:
        raise ExtractionError("unsupported_content", "the file is not text")
    text = _normalize_newlines(text)
    if content_type == sniff.HTML:
        return extract_html(text)
    if content_type == sniff.CSV:
        return extract_csv(text)
    if content_type == sniff.MARKDOWN:
        return Extraction(text=text, extractor="markdown")
    if content_type == sniff.TEXT_PLAIN:
        return Extraction(text=text, extractor="text")
    raise ExtractionError("unsupported_content", f"no extractor for {content_type}")


def _normalize_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


# --- PDF --------------------------------------------------------------------------------------


def extract_pdf(data: bytes, limits: Limits) -> Extraction:
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        raise ExtractionError("malformed_document", f"unreadable PDF ({exc})") from None
    try:
        page_count = len(pdf)
        take = min(page_count, limits.max_pages)
        pages: list[str] = []
        for index in range(take):
            page = pdf[index]
            try:
                textpage = page.get_textpage()
                try:
                    pages.append(_normalize_newlines(textpage.get_text_range()).strip())
                finally:
                    textpage.close()
            finally:
                page.close()
        meta = pdf.get_metadata_dict(skip_empty=True)
    except pdfium.PdfiumError as exc:
        raise ExtractionError("malformed_document", f"unreadable PDF page ({exc})") from None
    finally:
        pdf.close()
    return Extraction(
        text="\n\n".join(p for p in pages if p),
        extractor="pypdfium2",
        pages=page_count,
        title=meta.get("Title") or None,
        author=meta.get("Author") or None,
        truncated=take < page_count,
        details={"pages_with_text": sum(1 for p in pages if p), "pages_read": take},
    )


# --- DOCX -------------------------------------------------------------------------------------


def check_zip(data: bytes, limits: Limits) -> None:
    """Zip-bomb limits from the central directory, before anything is decompressed."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, ValueError) as exc:
        raise ExtractionError("malformed_document", f"unreadable ZIP container ({exc})") from None
    if len(infos) > limits.docx_max_entries:
        raise ExtractionError(
            "resource_limit", f"{len(infos)} entries (limit {limits.docx_max_entries})"
        )
    total = sum(i.file_size for i in infos)
    if total > limits.docx_max_uncompressed_bytes:
        raise ExtractionError(
            "resource_limit",
            f"{total} bytes uncompressed (limit {limits.docx_max_uncompressed_bytes})",
        )
    for info in infos:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > 1024 * 1024 and ratio > limits.docx_max_ratio:
            raise ExtractionError(
                "resource_limit",
                f"{info.filename} expands {ratio:.0f}x (limit {limits.docx_max_ratio:g}x)",
            )


def extract_docx(data: bytes, limits: Limits) -> Extraction:
    check_zip(data, limits)
    import docx
    from docx.table import Table

    try:
        document = docx.Document(io.BytesIO(data))
    except MemoryError:
        raise  # the sandbox reports it as resource_limit
    except Exception as exc:  # python-docx raises a variety of errors on bad packages
        raise ExtractionError(
            "malformed_document", f"unreadable DOCX ({type(exc).__name__})"
        ) from None
    lines: list[str] = []
    headings = tables = 0
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            tables += 1
            for row in block.rows:
                cells = [" ".join(c.text.split()) for c in row.cells]
                lines.append(" | ".join(cells))
            lines.append("")
            continue
        text = block.text.strip()
        if not text:
            continue
        style = (block.style.name if block.style is not None else "") or ""
        if style.lower().startswith(("heading", "title")):
            headings += 1
            lines.append("")
        lines.append(text)
    props = document.core_properties
    return Extraction(
        text="\n".join(lines).strip(),
        extractor="python-docx",
        pages=_docx_pages(data),
        title=props.title or None,
        author=props.author or None,
        details={"headings": headings, "tables": tables},
    )


def _docx_pages(data: bytes) -> int:
    """The page count Word saved in docProps/app.xml, when it did (DOCX has no pages as such)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            app = archive.read("docProps/app.xml")[:65536].decode("utf-8", "ignore")
    except (KeyError, zipfile.BadZipFile):
        return 1
    match = re.search(r"<Pages>(\d+)</Pages>", app)
    return max(1, int(match.group(1))) if match else 1


# --- HTML -------------------------------------------------------------------------------------

_SKIP = {"script", "style", "noscript", "template", "svg", "head"}
_BLOCK = {
    "p",
    "div",
    "br",
    "li",
    "ul",
    "ol",
    "tr",
    "table",
    "section",
    "article",
    "header",
    "footer",
    "nav",
    "aside",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "pre",
    "blockquote",
    "dt",
    "dd",
    "hr",
    "main",
    "figure",
    "figcaption",
}


class _TextParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title: list[str] = []
        self.skip = 0
        self.in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self.in_title = True
        elif tag in _SKIP:
            self.skip += 1
        elif tag in _BLOCK:
            self.parts.append("\n")
        if tag == "li" and not self.skip:
            self.parts.append("- ")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
        elif tag in _SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in _BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title.append(data)
        elif not self.skip:
            self.parts.append(data)


def extract_html(text: str) -> Extraction:
    parser = _TextParser()
    parser.feed(text)
    parser.close()
    raw = "".join(parser.parts)
    lines = [" ".join(line.split()) for line in raw.split("\n")]
    body = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    title = " ".join("".join(parser.title).split()) or None
    return Extraction(text=body, extractor="html", title=title)


# --- CSV --------------------------------------------------------------------------------------


_HEADER_SAMPLE_ROWS = 20


def _has_header(rows: list[list[str]]) -> bool:
    """`csv.Sniffer.has_header`'s rule, on rows parsed with the delimiter we detected.

    The first row is a header when, over the next 20 rows, the columns whose type (a number)
    or length is the same in every row mostly disagree with it. Sniffer itself re-detects the
    dialect first with regexes that backtrack (a crafted 63 KB file took 11 s); this does not.
    """
    if len(rows) < 2:
        return True
    header, width = rows[0], len(rows[0])
    kinds: dict[int, type | int | None] = dict.fromkeys(range(width))
    for row in rows[1 : _HEADER_SAMPLE_ROWS + 2]:
        if len(row) != width:
            continue
        for col in list(kinds):
            kind: type | int
            try:
                complex(row[col])
                kind = complex
            except (ValueError, OverflowError):
                kind = len(row[col])
            if kinds[col] is None:
                kinds[col] = kind
            elif kinds[col] != kind:
                del kinds[col]
    score = 0
    for col, seen in kinds.items():
        if seen is None:
            continue
        if isinstance(seen, int):
            score += 1 if len(header[col]) != seen else -1
        else:
            try:
                complex(header[col])
            except (ValueError, OverflowError):
                score += 1
            else:
                score -= 1
    return score > 0


def extract_csv(text: str) -> Extraction:
    delimiter = sniff.csv_delimiter(text) or ","  # the same rule that called the file CSV
    csv.field_size_limit(max(len(text), 131072))  # one field may be the whole file
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    rows = [r for r in reader if any(c.strip() for c in r)]
    columns = max((len(r) for r in rows), default=0)
    header = rows[0] if rows and _has_header(rows) else None
    body = rows[1:] if header else rows
    lines = []
    if header:
        lines.append(" | ".join(c.strip() for c in header))
    lines += [" | ".join(c.strip() for c in r) for r in body]
    return Extraction(
        text="\n".join(lines),
        extractor="csv",
        details={"rows": len(body), "columns": columns, "header": header, "delimiter": delimiter},
    )
