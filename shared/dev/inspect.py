"""`docflow inspect FILE|DIR`: what docflow makes of your documents, locally.

Each file goes through what an upload and its job would do, with no database, no storage and no
settings: the intake's checks on the bytes and the name (`sniff` and `check_declared`, so a file
the API would refuse with 400/415 shows as `rejected` with the intake's code), then extraction
in the sandbox (`shared.documents.sandbox.run`, default `Limits()` and `SandboxLimits()`), or in
this process with `--no-sandbox`. A directory is walked recursively (hidden entries skipped).

Per file it reports the detected type, the outcome (`ok`, `no_text`, or the error code), pages,
words (as the job result counts them) and the time of detection plus extraction. The totals give
files, completed, failures by code, pages, words and pages/s (pages over the summed time).

`--compare pdftotext` adds, for each PDF, the recall of docflow's text against pdftotext's:
the share of pdftotext's tokens (NFKC, lower-case runs of letters and digits, counted as a
multiset) that docflow's text also has. When most of pdftotext's letters are CJK, words mean
nothing there, so the recall is over characters (letters and digits) instead; `recall_kind`
says which. A PDF docflow failed on scores 0 when pdftotext read it.

Document text is never printed: only counts, codes and the library's error messages.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from shared.documents import extract, intake, sandbox, sniff
from shared.platform.errors import DocflowError

# What the job result counts as words (`pipeline._WORD`).
_WORD = re.compile(r"\w+")
# Recall tokens: runs of letters and digits (no underscore).
_TOKEN = re.compile(r"[^\W_]+")
# pdftotext is given this long per file.
PDFTOTEXT_TIMEOUT_SECONDS = 60.0
# Text is "mostly CJK" when at least this share of its letters and digits are CJK.
_CJK_SHARE = 0.5
_CJK_RANGES = (
    (0x1100, 0x11FF),  # Hangul Jamo
    (0x2E80, 0x2FDF),  # CJK radicals, Kangxi radicals
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x3100, 0x31FF),  # Bopomofo, Hangul compatibility Jamo, Katakana extensions
    (0x3400, 0x4DBF),  # CJK Extension A
    (0x4E00, 0x9FFF),  # CJK Unified Ideographs
    (0xAC00, 0xD7AF),  # Hangul syllables
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFF66, 0xFF9F),  # half-width Katakana
    (0x20000, 0x3134F),  # CJK Extensions B-G
)
_SHORT_TYPES = {
    sniff.PDF: "pdf",
    sniff.DOCX: "docx",
    sniff.HTML: "html",
    sniff.MARKDOWN: "md",
    sniff.CSV: "csv",
    sniff.TEXT_PLAIN: "txt",
}
_PATH_WIDTH = 48


class InspectError(Exception):
    """A bad invocation: a missing path, or a comparison tool that is not installed."""


@dataclass
class FileReport:
    """One file's outcome. `outcome` is `ok`, `no_text` (extracted, no text: a scan),
    `failed` (extraction raised; `error` is its code) or `rejected` (the intake refuses it;
    `error` is the intake's code)."""

    path: str
    bytes: int
    type: str | None
    outcome: str
    error: str | None = None
    message: str | None = None
    extractor: str | None = None
    pages: int | None = None
    words: int | None = None
    characters: int | None = None
    truncated: bool | None = None
    ms: float = 0.0
    recall: float | None = None
    recall_kind: str | None = None

    @property
    def completed(self) -> bool:
        return self.outcome in ("ok", "no_text")


# --- files ----------------------------------------------------------------------------


def collect(paths: Sequence[str | Path]) -> list[tuple[Path, str]]:
    """The files to inspect and how to show each: a file as given, a directory's files
    (recursively, sorted, hidden entries skipped) relative to it."""
    found: list[tuple[Path, str]] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if not name.startswith("."):
                        full = Path(root) / name
                        found.append((full, str(full.relative_to(path))))
        elif path.is_file():
            found.append((path, str(given)))
        else:
            raise InspectError(f"no such file or directory: {given}")
    return found


# --- detection and extraction -----------------------------------------------------------


def detect(name: str, data: bytes) -> str:
    """The content type, as the intake detects it; raises the intake's DocflowError for a file
    it would refuse (empty, unsupported content, an extension that disagrees)."""
    if not data:
        raise DocflowError("the file is empty", code="empty_file")
    content_type = sniff.sniff(data)
    if content_type is None:
        raise DocflowError(
            "unsupported file type (detected from its content)", code="unsupported_content"
        )
    intake.check_declared(name, None, content_type)
    return content_type


def extract_sandboxed(data: bytes, content_type: str) -> extract.Extraction:
    """What the job does: extraction in a sandboxed child, default limits."""
    return sandbox.run(
        extract.extract, data, content_type, extract.Limits(), limits=sandbox.SandboxLimits()
    )


def warm_up() -> None:
    """Start the sandbox's forkserver (once per process, ~0.2 s) so that the first file's
    time is its own."""
    with contextlib.suppress(Exception):  # each file reports its own failure
        extract_sandboxed(b"warm-up", sniff.TEXT_PLAIN)


def extract_in_process(data: bytes, content_type: str) -> extract.Extraction:
    """Extraction in this process; errors mapped as the sandbox maps them."""
    try:
        return extract.extract(data, content_type, extract.Limits())
    except extract.ExtractionError:
        raise
    except MemoryError:
        raise extract.ExtractionError("resource_limit", "the parser ran out of memory") from None
    except RecursionError:
        raise extract.ExtractionError("resource_limit", "the document nests too deeply") from None
    except Exception as exc:
        raise extract.ExtractionError(
            "malformed_document", f"the parser failed ({type(exc).__name__})"
        ) from None


Extractor = Callable[[bytes, str], extract.Extraction]


def inspect_file(
    path: Path,
    label: str,
    *,
    extractor: Extractor = extract_sandboxed,
    compare: Callable[[Path], str | None] | None = None,
) -> FileReport:
    """Detect and extract one file; with `compare`, the recall against its text for PDFs."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return FileReport(label, 0, None, "failed", "unreadable", exc.strerror or str(exc))
    started = time.perf_counter()
    try:
        content_type = detect(path.name, data)
    except DocflowError as exc:
        ms = (time.perf_counter() - started) * 1000
        return FileReport(label, len(data), None, "rejected", exc.code, exc.message, ms=ms)
    report = FileReport(label, len(data), content_type, "ok")
    text = ""
    try:
        result = extractor(data, content_type)
    except extract.ExtractionError as exc:
        report.outcome, report.error, report.message = "failed", exc.code, exc.message
    except Exception as exc:  # the sandbox itself broke (not the document): say so, go on
        report.outcome, report.error = "failed", "internal"
        report.message = f"extraction did not run ({type(exc).__name__})"
    else:
        text = result.text
        report.outcome = "ok" if text.strip() else "no_text"
        report.extractor = result.extractor
        report.pages = result.pages
        report.words = len(_WORD.findall(text))
        report.characters = len(text)
        report.truncated = result.truncated
    report.ms = (time.perf_counter() - started) * 1000
    if compare is not None and content_type == sniff.PDF:
        reference = compare(path)
        if reference is not None:
            measured = recall(reference, text)
            if measured is not None:
                report.recall, report.recall_kind = measured
    return report


# --- recall against pdftotext ---------------------------------------------------------


def pdftotext_available() -> bool:
    return shutil.which("pdftotext") is not None


def pdftotext(path: Path) -> str | None:
    """pdftotext's text of a PDF (UTF-8, reading order), or None when it cannot read it."""
    try:
        done = subprocess.run(
            ["pdftotext", "-q", "-enc", "UTF-8", str(path), "-"],
            capture_output=True,
            timeout=PDFTOTEXT_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.decode("utf-8", "replace")


def _is_cjk(ch: str) -> bool:
    point = ord(ch)
    return any(low <= point <= high for low, high in _CJK_RANGES)


def mostly_cjk(text: str) -> bool:
    letters = [ch for ch in text if ch.isalnum()]
    return bool(letters) and sum(map(_is_cjk, letters)) >= _CJK_SHARE * len(letters)


def _normal(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


def recall(reference: str, text: str) -> tuple[float, str] | None:
    """The share of `reference`'s tokens (a multiset) found in `text`, and the kind of token:
    `words`, or `characters` when the reference is mostly CJK. None: the reference is empty.

    Letter-spaced text, which pdftotext often gives for tracked headings ("H e l l o"), is
    a run of one-character tokens: such a run also counts as found when `text` has its
    characters joined ("hello"), as a reader of it would want."""
    reference, text = _normal(reference), _normal(text)
    if mostly_cjk(reference):
        wanted = Counter(ch for ch in reference if ch.isalnum())
        have = Counter(ch for ch in text if ch.isalnum())
        total = sum(wanted.values())
        found = sum(min(count, have[ch]) for ch, count in wanted.items())
        return (found / total, "characters") if total else None
    total = 0
    words: Counter[str] = Counter()
    spaced: Counter[str] = Counter()  # letter-spaced runs (within a line), joined
    for line in reference.splitlines():
        tokens = _TOKEN.findall(line)
        total += len(tokens)
        run: list[str] = []
        for token in [*tokens, ""]:  # "" ends the last run
            if len(token) == 1:
                run.append(token)
                continue
            if len(run) >= 2:
                spaced["".join(run)] += 1
            else:
                words.update(run)
            run = []
            if token:
                words[token] += 1
    if total == 0:
        return None
    have = Counter(_TOKEN.findall(text))
    found = sum(min(count, have[token]) for token, count in words.items())
    squashed = "".join(_TOKEN.findall(text))
    for joined, count in spaced.items():
        joined_found = min(count, squashed.count(joined))
        if joined_found:
            found += len(joined) * joined_found
        else:  # not joined in `text`: its letters one by one, as single tokens
            found += sum(min(n, have[ch]) for ch, n in Counter(joined * count).items())
    return found / total, "words"


# --- totals and output ----------------------------------------------------------------


def percentile(values: Sequence[float], share: float) -> float:
    """The `share` percentile (0..1) by linear interpolation between closest ranks."""
    ordered = sorted(values)
    at = share * (len(ordered) - 1)
    low = int(at)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (at - low)


def totals(reports: Sequence[FileReport]) -> dict[str, Any]:
    """Files, completed (`ok`, of which `no_text`), failures by code, pages, words, time,
    pages/s, and the recall summary when there is any."""
    failed = Counter(r.error or r.outcome for r in reports if not r.completed)
    pages = sum(r.pages or 0 for r in reports)
    ms = sum(r.ms for r in reports)
    summary: dict[str, Any] = {
        "files": len(reports),
        "ok": sum(1 for r in reports if r.completed),
        "no_text": sum(1 for r in reports if r.outcome == "no_text"),
        "rejected": sum(1 for r in reports if r.outcome == "rejected"),
        "failed": dict(sorted(failed.items())),
        "pages": pages,
        "words": sum(r.words or 0 for r in reports),
        "ms": round(ms, 1),
        "pages_per_second": round(pages / (ms / 1000), 1) if ms > 0 else None,
    }
    for kind in ("words", "characters"):
        values = [r.recall for r in reports if r.recall is not None and r.recall_kind == kind]
        if values:
            summary[f"recall_{kind}"] = {
                "files": len(values),
                "median": round(statistics.median(values), 4),
                "p10": round(percentile(values, 0.10), 4),
                "min": round(min(values), 4),
            }
    return summary


def _fit_path(label: str, width: int) -> str:
    return label if len(label) <= width else "…" + label[-(width - 1) :]


def _outcome(report: FileReport) -> str:
    if report.completed:
        return report.outcome
    return f"{report.outcome} {report.error}"


def _recall_cell(report: FileReport) -> str:
    if report.recall is None:
        return "-"
    return f"{report.recall:.3f}" + (" chars" if report.recall_kind == "characters" else "")


class Table:
    """The per-file table, printed a row at a time as files finish."""

    def __init__(self, labels: Iterable[str], *, compare: bool, out: Any) -> None:
        self.width = max([len("file"), *(min(len(label), _PATH_WIDTH) for label in labels)])
        self.compare = compare
        self.out = out

    def _line(self, cells: Sequence[str]) -> None:
        path, kind, outcome, pages, words, ms, *rest = cells
        line = f"{path:<{self.width}}  {kind:<5} {outcome:<30} {pages:>6} {words:>9} {ms:>9}"
        if self.compare:
            line += f"  {rest[0]:>11}"
        print(line.rstrip(), file=self.out, flush=True)

    def header(self) -> None:
        recall = ["recall"] if self.compare else []
        self._line(["file", "type", "outcome", "pages", "words", "ms", *recall])

    def row(self, report: FileReport) -> None:
        def number(value: int | None) -> str:
            return "-" if value is None else f"{value:,}"

        self._line(
            [
                _fit_path(report.path, self.width),
                _SHORT_TYPES.get(report.type or "", "-"),
                _outcome(report),
                number(report.pages),
                number(report.words),
                f"{report.ms:,.1f}",
                _recall_cell(report),
            ]
        )


def print_totals(summary: dict[str, Any], reports: Sequence[FileReport], out: Any) -> None:
    failed = ", ".join(f"{code} {n}" for code, n in summary["failed"].items()) or "none"
    rate = summary["pages_per_second"]
    problems = [r for r in reports if not r.completed]
    if problems:  # before the totals, so that the totals end the output
        print(file=out)
        for report in problems:
            print(f"{report.path}: {report.error}: {report.message}", file=out)
    print(file=out)
    print(
        f"files {summary['files']}  ok {summary['ok']} (no text {summary['no_text']})  "
        f"failed {summary['files'] - summary['ok']} ({failed})",
        file=out,
    )
    print(
        f"pages {summary['pages']:,}  words {summary['words']:,}  "
        f"time {summary['ms'] / 1000:,.2f} s  "
        f"pages/s {'-' if rate is None else f'{rate:,.1f}'}",
        file=out,
    )
    for kind in ("words", "characters"):
        stats = summary.get(f"recall_{kind}")
        if stats:
            print(
                f"recall vs pdftotext ({kind}, {stats['files']} PDF"
                f"{'' if stats['files'] == 1 else 's'}): median "
                f"{stats['median']:.3f}  p10 {stats['p10']:.3f}  min {stats['min']:.3f}",
                file=out,
            )


def run(
    paths: Sequence[str],
    *,
    compare: str | None = None,
    as_json: bool = False,
    sandboxed: bool = True,
    out: Any = None,
) -> int:
    """The command: 0 when every file was extracted, 1 when any failed or was refused.
    Raises InspectError for a bad invocation."""
    out = out or sys.stdout
    if compare is not None and compare != "pdftotext":
        raise InspectError(f"--compare knows only pdftotext, not {compare!r}")
    if compare == "pdftotext" and not pdftotext_available():
        raise InspectError(
            "--compare pdftotext needs pdftotext on PATH (poppler-utils); it was not found"
        )
    files = collect(paths)
    extractor = extract_sandboxed if sandboxed else extract_in_process
    if sandboxed and files:
        warm_up()
    reference = pdftotext if compare == "pdftotext" else None
    table = None
    if not as_json:
        table = Table((label for _, label in files), compare=reference is not None, out=out)
        table.header()
    reports = []
    for path, label in files:
        report = inspect_file(path, label, extractor=extractor, compare=reference)
        reports.append(report)
        if table is not None:
            table.row(report)
    summary = totals(reports)
    if as_json:
        document = {
            "compare": compare,
            "sandboxed": sandboxed,
            "files": [
                {k: round(v, 3) if k == "ms" else v for k, v in asdict(r).items()} for r in reports
            ],
            "totals": summary,
        }
        print(json.dumps(document, indent=2), file=out)
    else:
        print_totals(summary, reports, out)
    return 0 if all(r.completed for r in reports) else 1
