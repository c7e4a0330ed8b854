"""Extraction over a corpus of real files: docflow against pdftotext, pypdf and pdfminer.six.

One run, one pass per extractor over the same files, one after the other (not in parallel):

- docflow sandboxed: `docflow inspect`'s path, i.e. the job's (the intake's detection, then
  `sandbox.run(extract, ...)` with default limits), over the PDFs and over every file;
- docflow in-process: the same without the child process;
- pdftotext: a subprocess per PDF (`pdftotext -q -enc UTF-8 FILE -`);
- pypdf: `PdfReader(...).pages[i].extract_text()` for every page (an empty password tried);
- pdfminer.six: `high_level.extract_text`.

pages/s is the PDFs' pages (counted once per file with pypdfium2, else pypdf) over the summed
wall time of each tool on them, failures included, so every tool has the same numerator. With
`--rounds N` every extractor makes N passes, alternated with the others (a machine shared with
other work slows them alike), and each file counts with its median time. The sandbox overhead
is the median over files of (sandboxed - in-process) time. Recall is docflow's
text against pdftotext's, as `docflow inspect --compare pdftotext` measures it (words; character
recall for mostly-CJK PDFs, reported apart). Each tool gets `--timeout` seconds per file
(pdftotext through subprocess, the Python libraries through SIGALRM). Prints a table, docflow's
failures by code, then one JSON line.

Usage: python bench/corpus_bench.py [--dir ../shared/corpus] [--rounds 1] [--timeout 60]
         [--tools docflow,pdftotext,pypdf,pdfminer]
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import signal
import statistics
import subprocess
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from shared.dev import inspect  # noqa: E402
from shared.documents import sniff  # noqa: E402

DEFAULT_DIR = REPO.parent / "shared" / "corpus"
TOOLS = ("docflow", "pdftotext", "pypdf", "pdfminer")


class _Timeout(Exception):
    pass


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    def expire(signum: int, frame: Any) -> None:
        raise _Timeout

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def page_count(data: bytes) -> int:
    """The PDF's page count (pypdfium2, else pypdf with the empty password), 0 if neither."""
    import pypdf
    import pypdfium2

    try:
        document = pypdfium2.PdfDocument(data)
        try:
            return len(document)
        finally:
            document.close()
    except Exception:  # noqa: S110 (pypdf is the fallback)
        pass
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            reader.decrypt("")
        return len(reader.pages)
    except Exception:
        return 0


def run_pypdf(data: bytes) -> str:
    import pypdf

    reader = pypdf.PdfReader(io.BytesIO(data))
    if reader.is_encrypted:
        reader.decrypt("")
    return "\n".join(page.extract_text() or "" for page in reader.pages)


def run_pdfminer(data: bytes) -> str:
    from pdfminer import high_level

    text: str = high_level.extract_text(io.BytesIO(data))
    return text


def timed_library(
    fn: Callable[[bytes], str], files: list[tuple[Path, bytes]], timeout: float
) -> tuple[dict[Path, float], Counter[str]]:
    """Seconds per file, and failures by kind (exception name or `timeout`)."""
    failures: Counter[str] = Counter()
    seconds: dict[Path, float] = {}
    for path, data in files:
        started = time.perf_counter()
        try:
            with _deadline(timeout):
                fn(data)
        except _Timeout:
            failures["timeout"] += 1
        except Exception as exc:
            failures[type(exc).__name__] += 1
        seconds[path] = time.perf_counter() - started
    return seconds, failures


def timed_pdftotext(
    files: list[tuple[Path, bytes]], timeout: float
) -> tuple[dict[Path, float], Counter[str], dict[Path, str]]:
    """Seconds per file, failures by kind, and the text of each PDF it read."""
    failures: Counter[str] = Counter()
    texts: dict[Path, str] = {}
    seconds: dict[Path, float] = {}
    for path, _ in files:
        started = time.perf_counter()
        try:
            done = subprocess.run(
                ["pdftotext", "-q", "-enc", "UTF-8", str(path), "-"],
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            failures["timeout"] += 1
        else:
            if done.returncode == 0:
                texts[path] = done.stdout.decode("utf-8", "replace")
            else:
                failures[f"exit {done.returncode}"] += 1
        seconds[path] = time.perf_counter() - started
    return seconds, failures, texts


def timed_docflow(
    files: list[tuple[Path, bytes]], extractor: inspect.Extractor
) -> tuple[dict[Path, float], dict[Path, str], dict[Path, str | None], dict[Path, int]]:
    """Per file: seconds (detection + extraction), the error code or outcome, the text
    (None on failure) and the pages docflow reported."""
    seconds: dict[Path, float] = {}
    outcome: dict[Path, str] = {}
    texts: dict[Path, str | None] = {}
    pages: dict[Path, int] = {}
    for path, data in files:
        started = time.perf_counter()
        try:
            content_type = inspect.detect(path.name, data)
            result = extractor(data, content_type)
        except Exception as exc:  # DocflowError (refused) or ExtractionError
            outcome[path] = str(getattr(exc, "code", type(exc).__name__))
            texts[path] = None
        else:
            outcome[path] = "ok" if result.text.strip() else "no_text"
            texts[path] = result.text
            pages[path] = result.pages or 0
        seconds[path] = time.perf_counter() - started
    return seconds, outcome, texts, pages


def _rate(pages: int, seconds: float) -> float | None:
    return round(pages / seconds, 1) if seconds > 0 else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--tools", default=",".join(TOOLS), help=f"any of {', '.join(TOOLS)}")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per file and tool")
    parser.add_argument(
        "--rounds", type=int, default=1, help="passes per extractor, alternated (median per file)"
    )
    args = parser.parse_args()
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = set(tools) - set(TOOLS)
    if unknown or not args.dir.is_dir():
        parser.error(f"unknown tools {sorted(unknown)}" if unknown else f"no directory {args.dir}")
    if "pdftotext" in tools and not inspect.pdftotext_available():
        parser.error("pdftotext is not on PATH (poppler-utils)")
    logging.getLogger("pdfminer").setLevel(logging.ERROR)
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    warnings.simplefilter("ignore")

    every = [(path, path.read_bytes()) for path, _ in inspect.collect([args.dir])]
    pdfs = [(path, data) for path, data in every if sniff.sniff(data) == sniff.PDF]
    pdf_paths = {path for path, _ in pdfs}
    pdf_pages = {path: page_count(data) for path, data in pdfs}
    total_pdf_pages = sum(pdf_pages.values())
    print(
        f"corpus {args.dir}: {len(every)} files, {len(pdfs)} PDFs ({total_pdf_pages} pages)",
        flush=True,
    )

    report: dict[str, Any] = {"dir": str(args.dir), "files": len(every), "pdfs": len(pdfs)}
    report["pdf_pages"] = total_pdf_pages
    report["rounds"] = args.rounds
    # Per pass (extractor), the seconds of each file in each round.
    times: dict[str, list[dict[Path, float]]] = {}
    failures: dict[str, Counter[str]] = {}
    docflow_outcome: dict[Path, str] = {}
    docflow_texts: dict[Path, str | None] = {}
    docflow_pages: dict[Path, int] = {}
    reference: dict[Path, str] = {}
    if "docflow" in tools:
        inspect.warm_up()
        import shared.documents.extract.pdf  # noqa: F401  (imported before timing)
    for round_ in range(args.rounds):
        if "docflow" in tools:
            boxed, docflow_outcome, docflow_texts, docflow_pages = timed_docflow(
                every, inspect.extract_sandboxed
            )
            times.setdefault("docflow sandboxed", []).append(boxed)
            local = timed_docflow(every, inspect.extract_in_process)[0]
            times.setdefault("docflow in-process", []).append(local)
        if "pdftotext" in tools:
            seconds, failures["pdftotext"], reference = timed_pdftotext(pdfs, args.timeout)
            times.setdefault("pdftotext", []).append(seconds)
        if "pypdf" in tools:
            seconds, failures["pypdf"] = timed_library(run_pypdf, pdfs, args.timeout)
            times.setdefault("pypdf", []).append(seconds)
        if "pdfminer" in tools:
            seconds, failures["pdfminer.six"] = timed_library(run_pdfminer, pdfs, args.timeout)
            times.setdefault("pdfminer.six", []).append(seconds)
        print(f"  round {round_ + 1} of {args.rounds} done", file=sys.stderr, flush=True)

    def per_file(name: str) -> dict[Path, float]:
        """Each file's median time over the rounds."""
        passes = times[name]
        return {path: statistics.median(p[path] for p in passes) for path in passes[0]}

    rows: list[dict[str, Any]] = []

    def row(name: str, paths: Iterable[Path], pages: int, seconds: float, failed: int) -> None:
        rows.append(
            {
                "extractor": name,
                "files": len(list(paths)),
                "pages": pages,
                "seconds": round(seconds, 3),
                "pages_per_second": _rate(pages, seconds),
                "failed": failed,
            }
        )

    if "docflow" in tools:
        boxed, local = per_file("docflow sandboxed"), per_file("docflow in-process")
        bad = {path for path, code in docflow_outcome.items() if code not in ("ok", "no_text")}
        for name, spent in (("docflow sandboxed", boxed), ("docflow in-process", local)):
            on_pdfs = sum(spent[path] for path in pdf_paths)
            row(name, pdf_paths, total_pdf_pages, on_pdfs, len(bad & pdf_paths))
        all_pages = sum(docflow_pages.values())
        for name, spent in (("docflow sandboxed", boxed), ("docflow in-process", local)):
            row(f"{name}, all files", spent, all_pages, sum(spent.values()), len(bad))
        overhead = [(boxed[path] - local[path]) * 1000 for path in boxed]
        report["sandbox_overhead_ms_median"] = round(statistics.median(overhead), 2)
        codes = Counter(code for code in docflow_outcome.values() if code != "ok")
        report["docflow_outcomes"] = dict(sorted(codes.items()))
    for name in ("pdftotext", "pypdf", "pdfminer.six"):
        if name in times:
            spent = per_file(name)
            row(name, spent, total_pdf_pages, sum(spent.values()), sum(failures[name].values()))
            report[f"{name}_failures"] = dict(failures[name])
    report["extractors"] = rows

    if docflow_texts and reference:
        by_kind: dict[str, list[tuple[float, str]]] = {"words": [], "characters": []}
        for path, ref in reference.items():
            measured = inspect.recall(ref, docflow_texts.get(path) or "")
            if measured is not None:
                by_kind[measured[1]].append((measured[0], path.name))
        for kind, scored in by_kind.items():
            if scored:
                values = [value for value, _ in scored]
                report[f"recall_{kind}"] = {
                    "pdfs": len(values),
                    "median": round(statistics.median(values), 4),
                    "p10": round(inspect.percentile(values, 0.10), 4),
                    "min": round(min(values), 4),
                    "lowest": [
                        {"file": name, "recall": round(value, 4)}
                        for value, name in sorted(scored)[:5]
                    ],
                }

    print()
    print(
        f"{'extractor':<31} {'files':>5} {'pages':>6} {'seconds':>8} {'pages/s':>8} {'failed':>6}"
    )
    for r in rows:
        rate = "-" if r["pages_per_second"] is None else f"{r['pages_per_second']:,.1f}"
        print(
            f"{r['extractor']:<31} {r['files']:>5} {r['pages']:>6} {r['seconds']:>8.2f} "
            f"{rate:>8} {r['failed']:>6}"
        )
    if "sandbox_overhead_ms_median" in report:
        print(f"\nsandbox overhead: median {report['sandbox_overhead_ms_median']:.2f} ms per file")
    for kind in ("words", "characters"):
        stats = report.get(f"recall_{kind}")
        if stats:
            print(
                f"docflow recall vs pdftotext ({kind}, {stats['pdfs']} PDFs): median "
                f"{stats['median']:.3f}, p10 {stats['p10']:.3f}, min {stats['min']:.3f}"
            )
    if "docflow_outcomes" in report:
        outcomes = ", ".join(f"{k} {v}" for k, v in report["docflow_outcomes"].items())
        print(f"docflow, all files: other than ok: {outcomes or 'none'}")
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
