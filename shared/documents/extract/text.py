"""Plain text and Markdown: the text as it is."""

from __future__ import annotations

from shared.documents.extract import Extraction


def extract_text(text: str) -> Extraction:
    return Extraction(text=text, extractor="text", markdown=text)


def extract_markdown(text: str) -> Extraction:
    return Extraction(text=text, extractor="markdown", markdown=text)
