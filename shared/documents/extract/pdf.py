"""PDF: text through PDFium (pypdfium2)."""

from __future__ import annotations

from shared.documents.extract import Extraction, ExtractionError, Limits, normalize_newlines


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
                    pages.append(normalize_newlines(textpage.get_text_range()).strip())
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
