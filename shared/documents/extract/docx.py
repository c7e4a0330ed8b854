"""DOCX: the body through python-docx."""

from __future__ import annotations

import io
import re
import zipfile

from shared.documents.extract import Extraction, ExtractionError, Limits


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
