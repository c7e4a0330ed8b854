"""Processing one job: read the stored file, extract its text, summarize, build the result.

The walking skeleton handles plain text: statistics and an extractive summary (the first
sentences). Every step is timed; the result carries the fields of the contract (§5).
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

from shared.client import Database
from shared.errors import JobError, NotFound
from shared.sniff import decode_text, sniff
from shared.storage import Storage

if TYPE_CHECKING:
    from shared.worker import Handler, JobContext

_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def summarize(text: str, max_sentences: int = 3, max_chars: int = 600) -> tuple[str, list[str]]:
    sentences = [s.strip() for s in _SENTENCE.split(" ".join(text.split())) if s.strip()]
    summary = " ".join(sentences[:max_sentences])[:max_chars]
    key_points = [s[:200] for s in sentences[:5]]
    return summary, key_points


def handler(db: Database, storage: Storage) -> Handler:
    """The worker's handler for document jobs."""

    def run(job: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        return process(job, db, storage, ctx)

    return run


def process(
    job: dict[str, Any], db: Database, storage: Storage, ctx: JobContext | None = None
) -> dict[str, Any]:
    timings: dict[str, float] = {}

    def stage(name: str, progress: int) -> float:
        if ctx is not None:
            ctx.report(name, progress)
        return time.perf_counter()

    def timed(name: str, started: float) -> None:
        timings[name] = round((time.perf_counter() - started) * 1000, 3)

    t = stage("validating", 5)
    document = db.call("get_document", document_id=job["document_id"])
    if document is None:
        raise JobError("document_missing", "the document no longer exists")
    timed("validating", t)

    t = stage("reading", 20)
    try:
        data = storage.get(document["storage_path"])
    except NotFound:
        raise JobError("object_missing", "the stored file is missing") from None
    timed("reading", t)

    t = stage("parsing", 40)
    detected = sniff(data)
    if detected is None:
        raise JobError("unsupported_content", "the file is not a supported document type")
    text = decode_text(data) or ""
    timed("parsing", t)

    t = stage("extracting", 60)
    words = len(text.split())
    timed("extracting", t)

    t = stage("analyzing", 80)
    summary, key_points = summarize(text)
    timed("analyzing", t)
    stage("finalizing", 95)

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
