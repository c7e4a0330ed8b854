"""Processing one document job: validate, read, sniff, extract (sandboxed), summarize, store.

Stages, reported with progress through the worker's heartbeat: validating, reading, parsing,
extracting, analyzing, finalizing. The full extracted text goes to storage
(`<user_id>/text/<document_id>.txt`), and beside it the same content as GitHub Markdown
(`<user_id>/text/<document_id>.md`), never into the job row; the result carries the figures of the
contract (§5): pages, characters, words, detected type, extractor, summarizer, summary, key
points, the analysis against the job's template (`options.template`, else the
`ANALYSIS_TEMPLATE` setting; see `shared.documents.analysis`), and the time each stage took.
LLM usage and cost in the result are the summary's and the analysis's together.

A job that replaces a document's text (a reanalyze) writes the pair under names of its own
(`<document_id>.<version>.txt` and `.md`) and switches the document to both in one
`set_document_text`, which queues the replaced pair in `storage_deletions`: a failed write
leaves the document on its previous text and Markdown, never a mix. Storage that fails
(`StorageUnavailable`: an I/O error, a 5xx, no connection) while reading or finalizing is
the recoverable `storage_unavailable`: the queue retries the job with backoff and fails it
with that code after its last attempt. A missing upload is `object_missing`, not retried.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from shared.documents import analysis, extract, sandbox, sniff, summarize
from shared.documents.analysis import templates
from shared.jobs.context import Handler, JobContext
from shared.jobs.worker import Worker
from shared.platform.client import Database
from shared.platform.config import Settings
from shared.platform.errors import DocflowError, JobError, NotFound
from shared.platform.log import get_logger
from shared.platform.storage import Storage, StorageUnavailable, get_storage

Extractor = Callable[[bytes, str, Settings], extract.Extraction]
_WORD = re.compile(r"\w+")
log = get_logger("pipeline")


def limits_for(settings: Settings) -> tuple[extract.Limits, sandbox.SandboxLimits]:
    return (
        extract.Limits(
            max_pages=settings.extract_max_pages,
            docx_max_entries=settings.docx_max_entries,
            docx_max_uncompressed_bytes=settings.docx_max_uncompressed_mb * 1024 * 1024,
            docx_max_ratio=settings.docx_max_compression_ratio,
        ),
        sandbox.SandboxLimits(
            timeout_seconds=settings.extract_timeout_seconds,
            memory_bytes=settings.extract_memory_mb * 1024 * 1024,
        ),
    )


def sandboxed_extract(data: bytes, content_type: str, settings: Settings) -> extract.Extraction:
    """Extraction in a child process, under the sandbox's limits."""
    limits, box = limits_for(settings)
    return sandbox.run(extract.extract, data, content_type, limits, limits=box)


def summarizer_config(settings: Settings) -> summarize.SummarizerConfig:
    key = None
    base_url = None
    if settings.summarizer == "anthropic":
        key, base_url = settings.anthropic_api_key, settings.anthropic_base_url
    elif settings.summarizer == "openai":
        key, base_url = settings.openai_api_key, settings.openai_base_url
    return summarize.SummarizerConfig(
        kind=settings.summarizer,
        model=settings.summarizer_model,
        api_key=key.get_secret_value() if key else None,
        base_url=base_url,
        timeout_seconds=settings.summarizer_timeout_seconds,
        max_input_tokens=settings.summarizer_max_input_tokens,
        max_output_tokens=settings.summarizer_max_output_tokens,
        price_input_per_mtok=settings.summarizer_price_input_per_mtok,
        price_output_per_mtok=settings.summarizer_price_output_per_mtok,
    )


@lru_cache(maxsize=4)
def _summarizer(config: summarize.SummarizerConfig) -> summarize.Summarizer:
    return summarize.make_summarizer(config)


def text_path(user_id: str, document_id: str, version: str | None = None) -> str:
    """In a subfolder, so the signed-upload flow (one level only) can never register it.
    `version` names a replacement (a reanalyze); a document's first text has none."""
    suffix = f".{version}" if version else ""
    return f"{user_id}/text/{document_id}{suffix}.txt"


def markdown_path(user_id: str, document_id: str, version: str | None = None) -> str:
    """Beside the text, in the same subfolder."""
    suffix = f".{version}" if version else ""
    return f"{user_id}/text/{document_id}{suffix}.md"


def handler(
    db: Database,
    storage: Storage,
    settings: Settings,
    *,
    extractor: Extractor = sandboxed_extract,
) -> Handler:
    """The worker's handler for document jobs."""

    def run(job: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        return process(job, db, storage, settings, ctx, extractor=extractor)

    return run


def process(
    job: dict[str, Any],
    db: Database,
    storage: Storage,
    settings: Settings,
    ctx: JobContext | None = None,
    *,
    extractor: Extractor = sandboxed_extract,
) -> dict[str, Any]:
    timings: dict[str, float] = {}
    running: list[tuple[str, float]] = []  # the stage being timed

    def stage(name: str | None, progress: int = 0) -> None:
        """Close the running stage's timer; start `name` (None: the end)."""
        now = time.perf_counter()
        if running:
            previous, started = running.pop()
            timings[previous] = round((now - started) * 1000, 3)
        if name is not None:
            running.append((name, now))
            if ctx is not None:
                ctx.report(name, progress)

    stage("validating", 5)
    document = db.call("get_document", document_id=job["document_id"])
    if document is None:
        raise JobError("document_missing", "the document no longer exists")

    stage("reading", 15)
    try:
        data = storage.get(document["storage_path"])
    except NotFound:
        raise JobError("object_missing", "the stored file is missing") from None
    except StorageUnavailable as err:
        raise _storage_down("reading", "could not read the stored file", err) from None

    stage("parsing", 30)
    content_type = sniff.sniff(data, name=document.get("original_filename"))
    if content_type is None:
        raise JobError("unsupported_content", "the file is not a supported document type")

    stage("extracting", 45)
    try:
        extraction = extractor(data, content_type, settings)
    except extract.ExtractionError as err:
        raise JobError(err.code, err.message, recoverable=False) from None
    text = extraction.text
    has_text = bool(text.strip())

    stage("analyzing", 70)
    template = _template(job, settings)
    if has_text:
        config = summarizer_config(settings)
        summary = _summarizer(config).summarize(
            text, title=extraction.title, markdown=extraction.markdown or None
        )
        summary_result = summary.as_result()
        found = analysis.analyze(
            extraction.markdown or text,
            template=template,
            title=extraction.title,
            author=extraction.author,
            config=config,
        )
        _add_usage(summary_result, found.usage)
        analysis_result = found.as_result()
    else:  # a scanned PDF: nothing to summarize (OCR is out of scope); same result shape
        summary_result = summarize.Summary(
            summary="", key_points=[], summarizer=settings.summarizer, model=None, chunks=0
        ).as_result()
        analysis_result = analysis.Analysis(
            template=template, fields=analysis.empty_fields(template), unverified=[]
        ).as_result()

    stage("finalizing", 90)
    _store_text(db, storage, document, text, extraction.markdown)
    stage(None)

    meta = extraction.metadata()
    return {
        "outcome": "ok" if has_text else "no_text",
        "pages": extraction.pages,
        "characters": len(text),
        "words": len(_WORD.findall(text)),
        "detected_content_type": content_type,
        "extractor": extraction.extractor,
        "title": meta["title"],
        "author": meta["author"],
        "truncated": meta["truncated"],
        **meta["details"],
        **summary_result,
        "analysis": analysis_result,
        "timings_ms": timings,
    }


def _store_text(
    db: Database, storage: Storage, document: dict[str, Any], text: str, markdown: str
) -> None:
    """Store the text and its Markdown, then point the document at both at once.

    A document's first text goes to the plain names. A replacement goes to names of its own,
    so the objects the document points at are never touched: `set_document_text` switches to
    the new pair in one update and queues the old pair for deletion. When a write fails, the
    objects this attempt may have written under its own names are deleted again (best effort;
    the plain names are left, since a retry overwrites them and nothing points at them yet).
    """
    user_id, document_id = str(document["user_id"]), str(document["id"])
    replacing = bool(document.get("text_path") or document.get("markdown_path"))
    version = uuid.uuid4().hex[:12] if replacing else None
    path = text_path(user_id, document_id, version)
    md_path = markdown_path(user_id, document_id, version)
    try:
        storage.put(path, text.encode("utf-8"), "text/plain; charset=utf-8", overwrite=True)
        storage.put(
            md_path, markdown.encode("utf-8"), "text/markdown; charset=utf-8", overwrite=True
        )
    except DocflowError as err:
        if version is not None:  # a failed upload may still have stored its object
            _discard(storage, [path, md_path], document_id)
        if isinstance(err, StorageUnavailable):
            raise _storage_down("finalizing", "could not store the extracted text", err) from None
        raise
    db.call("set_document_text", document_id=document_id, text_path=path, markdown_path=md_path)


def _discard(storage: Storage, names: list[str], document_id: str) -> None:
    """Delete objects no document points at; one left behind is only an unreferenced file."""
    try:
        storage.delete_many(names)
    except DocflowError as err:
        log.warning(
            "could not delete an unused text object",
            extra={"document_id": document_id, "objects": len(names), "error": type(err).__name__},
        )


def _storage_down(stage: str, message: str, err: Exception) -> JobError:
    """The recoverable job error for a storage backend that failed during `stage`."""
    log.warning("storage failed during a job", extra={"stage": stage, "error": type(err).__name__})
    return JobError("storage_unavailable", f"{message}; storage is unavailable", recoverable=True)


def _template(job: dict[str, Any], settings: Settings) -> str:
    """The job's template; one no longer in the registry (a job queued before a template was
    removed) fails the job rather than running another."""
    options = job.get("options") or {}
    name = options.get("template") if isinstance(options, dict) else None
    name = name or settings.analysis_template
    if name not in templates.TEMPLATES:
        raise JobError("unknown_template", f"no analysis template {name!r}", recoverable=False)
    return str(name)


def _add_usage(result: dict[str, Any], usage: analysis.Usage) -> None:
    result["input_tokens"] += usage.input_tokens
    result["output_tokens"] += usage.output_tokens
    result["requests"] += usage.requests
    result["cost_usd"] = round(result["cost_usd"] + usage.cost_usd, 8)


def document_worker(db: Database, settings: Settings, *, concurrency: int | None = None) -> Worker:
    """The worker for document jobs, with LISTEN when the transport is direct Postgres."""
    listen_url = None
    if settings.db_transport == "postgres" and settings.worker_listen:
        listen_url = settings.effective_database_url()
    return Worker(
        db,
        settings,
        handler(db, get_storage(), settings),
        concurrency=concurrency,
        listen_url=listen_url,
    )
