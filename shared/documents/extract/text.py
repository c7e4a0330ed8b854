"""Plain text and Markdown: the text as it is."""

from __future__ import annotations

from shared.documents.extract import Extraction
from shared.documents.extract.markdown import escape_inline


def extract_text(text: str) -> Extraction:
    """The Markdown is the text with each line that would start a Markdown construct escaped."""
    markdown = "\n".join(escape_inline(line) for line in text.split("\n"))
    return Extraction(text=text, extractor="text", markdown=markdown)


def extract_markdown(text: str) -> Extraction:
    return Extraction(text=text, extractor="markdown", markdown=text)
