"""Text extraction per format. Runs inside the sandbox (`sandbox.py`), never in the worker.

One module per format (`pdf`, `docx`, `html`, `tabular` for CSV); this module holds what they
share and `extract()`, which picks one by content type. Each extractor takes the file's bytes
(or decoded text) and returns an `Extraction`: the plain text, the same content as GitHub
Markdown, and a page map; a document it cannot read raises `ExtractionError` with a reason code
(`malformed_document`, `encrypted_document`, `resource_limit`, `unsupported_content`). The
content type comes from `shared.documents.sniff`, i.e. from the bytes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
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
    """What an extractor returns.

    - `text`: plain text, what the text route serves and the summarizer reads.
    - `markdown`: the same content as GitHub Markdown (headings, lists, GFM tables).
    - `pages`: the page count when the format has one (PDF; DOCX when Word saved it), else
      None; text formats count as 1.
    - `page_starts`: for paged formats, the offset in `markdown` where each page read begins
      (page i + 1 starts at `page_starts[i]`); empty otherwise.
    """

    text: str
    extractor: str
    markdown: str = ""
    pages: int | None = 1
    page_starts: list[int] = field(default_factory=list)
    title: str | None = None
    author: str | None = None
    truncated: bool = False
    details: dict[str, Any] = field(default_factory=dict)

    def metadata(self) -> dict[str, Any]:
        """Everything but the text and the Markdown."""
        data = asdict(self)
        data.pop("text")
        data.pop("markdown")
        data.pop("page_starts")
        return data


def extract(data: bytes, content_type: str, limits: Limits) -> Extraction:
    # The format modules import this one (for Extraction, Limits, ExtractionError).
    from shared.documents.extract import docx, html, pdf, tabular, text

    if content_type == sniff.PDF:
        return mark_pages(pdf.extract_pdf(data, limits))
    if content_type == sniff.DOCX:
        return docx.extract_docx(data, limits)
    decoded = sniff.decode_text(data)
    if decoded is None:
        raise ExtractionError("unsupported_content", "the file is not text")
    decoded = normalize_newlines(decoded)
    if content_type == sniff.HTML:
        return html.extract_html(decoded)
    if content_type == sniff.CSV:
        return tabular.extract_csv(decoded)
    if content_type == sniff.MARKDOWN:
        return text.extract_markdown(decoded)
    if content_type == sniff.TEXT_PLAIN:
        return text.extract_text(decoded)
    raise ExtractionError("unsupported_content", f"no extractor for {content_type}")


def normalize_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def mark_pages(extraction: Extraction) -> Extraction:
    """Record the page map in the Markdown itself: a `<!-- page N -->` line where each page
    starts (an HTML comment, invisible when rendered). `page_starts` then points at the
    markers."""
    if not extraction.page_starts:
        return extraction
    markdown, parts, starts, previous = extraction.markdown, [], [], 0
    length = 0
    for number, start in enumerate(extraction.page_starts, 1):
        chunk = markdown[previous:start]
        parts.append(chunk)
        length += len(chunk)
        if length and not parts[-1].endswith("\n"):
            parts.append("\n")
            length += 1
        starts.append(length)
        marker = f"<!-- page {number} -->\n"
        parts.append(marker)
        length += len(marker)
        previous = start
    parts.append(markdown[previous:])
    extraction.markdown = "".join(parts)
    extraction.page_starts = starts
    return extraction
