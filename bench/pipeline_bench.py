"""The document pipeline's benchmark (part of `make bench`).

1. PDF text extraction, pages/s: docflow's extractor (pypdfium2) against pypdf, each called
   in-process on the same files in the same run (a 4-page sample, generated 100- and 300-page
   reports), and PDFium's own part alone (pages loaded, text pages built and read): the
   floor under any extractor built on it.
2. The sandbox's own overhead per document: the same extraction through `sandbox.run` (a
   forkserver child with limits) minus in-process, median over many documents.
3. The extractive summarizer's throughput in MB of text per second.

Usage: python bench/pipeline_bench.py [--runs N]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from summarize_bench import generate as generate_text  # noqa: E402

from samples.generate import build_pdf, pdf_string, stream  # noqa: E402
from shared.documents import extract, sandbox, sniff  # noqa: E402
from shared.documents.extract.pdf import extract_pdf  # noqa: E402
from shared.documents.summarize import SummarizerConfig, make_summarizer  # noqa: E402

LIMITS = extract.Limits()
BOX = sandbox.SandboxLimits(timeout_seconds=60, memory_bytes=1024 * 1024 * 1024)


def report_pdf(pages: int, seed: int) -> bytes:
    """A text PDF of `pages` pages of English-like prose (Helvetica, ~45 lines a page)."""
    text = generate_text(pages * 3200, seed)
    lines = textwrap.wrap(text, width=90)
    per_page = 45
    first = 4  # 1 catalog, 2 pages, 3 font
    kids = b" ".join(b"%d 0 R" % (first + 2 * i) for i in range(pages))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % pages,
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    for index in range(pages):
        chunk = lines[index * per_page : (index + 1) * per_page] or ["(blank)"]
        content = bytearray(b"BT /F1 10 Tf 54 750 Td\n")
        for line in chunk:
            content += pdf_string(line) + b" Tj 0 -15 Td\n"
        content += b"ET\n"
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792]"
            b" /Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (len(objects) + 2)
        )
        objects.append(stream(b"", bytes(content)))
    objects.append(b"<< /Title (Benchmark report) /Author (docflow bench) >>")
    return build_pdf(objects, len(objects))


def pypdf_pages(data: bytes) -> int:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    for page in reader.pages:
        page.extract_text()
    return len(reader.pages)


def pdfium_pages(data: bytes) -> int:
    return extract_pdf(data, LIMITS).pages


def textpage_floor(data: bytes) -> int:
    """PDFium's own part alone: each page loaded and its text page built and read, nothing
    else. docflow's extractor cannot be faster than this."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(data)
    try:
        for page in pdf:
            textpage = page.get_textpage()
            textpage.get_text_range()
            textpage.close()
            page.close()
        return len(pdf)
    finally:
        pdf.close()


def best_rate(fn, data: bytes, runs: int) -> float:  # type: ignore[no-untyped-def]
    rates = []
    for _ in range(runs):
        started = time.perf_counter()
        pages = fn(data)
        rates.append(pages / (time.perf_counter() - started))
    return max(rates)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sandbox-docs", type=int, default=40)
    args = parser.parse_args()
    out: dict[str, object] = {}

    files = {
        "samples/annual-report.pdf (4 pages)": (
            REPO / "samples" / "annual-report.pdf"
        ).read_bytes(),
        "generated report (100 pages)": report_pdf(100, 11),
        "generated report (300 pages)": report_pdf(300, 12),
    }
    print(f"PDF text extraction, in-process, pages/s (best of {args.runs}):")
    pdf_rows = []
    for name, data in files.items():
        ours = best_rate(pdfium_pages, data, args.runs)
        floor = best_rate(textpage_floor, data, args.runs)
        theirs = best_rate(pypdf_pages, data, args.runs)
        pdf_rows.append(
            {"file": name, "pypdfium2": ours, "pdfium_text_only": floor, "pypdf": theirs}
        )
        print(
            f"  {name:<38} docflow {ours:>7,.0f} ({ours / theirs:4.1f}x)"
            f"   PDFium text page alone {floor:>7,.0f} ({floor / theirs:4.1f}x)"
            f"   pypdf {theirs:>5,.0f}"
        )
    out["pdf"] = pdf_rows

    small = (REPO / "samples" / "quarterly-report.txt").read_bytes()
    pdf = files["samples/annual-report.pdf (4 pages)"]
    sandbox.run(extract.extract, small, sniff.TEXT_PLAIN, LIMITS, limits=BOX)  # start the server
    overheads = {}
    for label, data, kind in (
        ("text file", small, sniff.TEXT_PLAIN),
        ("4-page PDF", pdf, sniff.PDF),
    ):
        inside, outside = [], []
        for _ in range(args.sandbox_docs):
            started = time.perf_counter()
            extract.extract(data, kind, LIMITS)
            inside.append(time.perf_counter() - started)
            started = time.perf_counter()
            sandbox.run(extract.extract, data, kind, LIMITS, limits=BOX)
            outside.append(time.perf_counter() - started)
        overhead = (statistics.median(outside) - statistics.median(inside)) * 1000
        overheads[label] = overhead
        print(
            f"sandbox overhead per document ({label}): {overhead:.1f} ms "
            f"(in-process {statistics.median(inside) * 1000:.2f} ms, sandboxed "
            f"{statistics.median(outside) * 1000:.2f} ms; median of {args.sandbox_docs})"
        )
    out["sandbox_overhead_ms"] = overheads

    text = generate_text(4_000_000, 7)
    megabytes = len(text.encode()) / 1_000_000
    summarizer = make_summarizer(SummarizerConfig(kind="extractive"))
    summarizer.summarize(text[:100_000])
    rates = []
    for _ in range(args.runs):
        started = time.perf_counter()
        summarizer.summarize(text)
        rates.append(megabytes / (time.perf_counter() - started))
    out["extractive_mb_per_s"] = max(rates)
    print(
        f"extractive summarizer: {max(rates):.1f} MB/s on {megabytes:.1f} MB of text "
        f"(best of {args.runs}; median {statistics.median(rates):.1f})"
    )
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
