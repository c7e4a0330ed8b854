"""Processing one job: read the stored file, extract its text, summarize, build the result.

The walking skeleton handles plain text: statistics and an extractive summary (the first
sentences). Every step is timed; the result carries the fields of the contract (§5).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from shared.client import Database
from shared.errors import NotFound
from shared.sniff import decode_text, sniff
from shared.storage import Storage

_SENTENCE = re.compile(r"(?<=[.!?])\s+")


@dataclass
class JobError(Exception):
    """A processing failure with a reason code; recoverable ones are retried with backoff."""

    code: str
    message: str
    recoverable: bool = False

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def summarize(text: str, max_sentences: int = 3, max_chars: int = 600) -> tuple[str, list[str]]:
    sentences = [s.strip() for s in _SENTENCE.split(" ".join(text.split())) if s.strip()]
    summary = " ".join(sentences[:max_sentences])[:max_chars]
    key_points = [s[:200] for s in sentences[:5]]
    return summary, key_points


def process(job: dict[str, Any], db: Database, storage: Storage) -> dict[str, Any]:
    timings: dict[str, float] = {}

    def timed(stage: str, started: float) -> None:
        timings[stage] = round((time.perf_counter() - started) * 1000, 3)

    t = time.perf_counter()
    document = db.call("get_document", document_id=job["document_id"])
    if document is None:
        raise JobError("document_missing", "the document no longer exists")
    timed("validating", t)

    t = time.perf_counter()
    try:
        data = storage.get(document["storage_path"])
    except NotFound:
        raise JobError("object_missing", "the stored file is missing") from None
    timed("reading", t)

    t = time.perf_counter()
    detected = sniff(data)
    if detected is None:
        raise JobError("unsupported_content", "the file is not a supported document type")
    text = decode_text(data) or ""
    timed("parsing", t)

    t = time.perf_counter()
    words = len(text.split())
    timed("extracting", t)

    t = time.perf_counter()
    summary, key_points = summarize(text)
    timed("analyzing", t)

    return {
        "outcome": "ok" if text.strip() else "no_text",
        "pages": 1,
        "characters": len(text),
        "words": words,
        "lines": text.count("\n") + (1 if text and not text.endswith("\n") else 0),
        "detected_content_type": detected,
        "extractor": "text",
        "summarizer": "extractive",
        "summary": summary,
        "key_points": key_points,
        "timings_ms": timings,
    }
