"""The soak's documents, generated before the run: the samples, PDFs and DOCX of 1-20 pages,
and the bad files of samples/bad/ (5 % of the uploads).

PDFs come from bench/pipeline_bench.py's `report_pdf` (English-like prose, ~45 lines a page),
DOCX from python-docx with the same prose and a page break per page.
"""

from __future__ import annotations

import io
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"
BAD = SAMPLES / "bad"


@dataclass(frozen=True)
class Doc:
    name: str
    data: bytes
    bad: bool


def report_docx(pages: int, seed: int) -> bytes:
    """A DOCX of `pages` pages: a title, then per page a heading and ~3 KB of prose."""
    import docx
    from summarize_bench import generate as generate_text

    document = docx.Document()
    document.core_properties.title = f"Soak report {seed}"
    document.add_heading(f"Soak report {seed}", level=1)
    text = generate_text(pages * 3000, seed)
    paragraphs = text.split("\n\n")
    per_page = max(1, len(paragraphs) // pages)
    for page in range(pages):
        if page:
            document.add_page_break()  # type: ignore[no-untyped-call]
        document.add_heading(f"Section {page + 1}", level=2)
        for paragraph in paragraphs[page * per_page : (page + 1) * per_page]:
            document.add_paragraph(paragraph)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def generate(outdir: Path, pdfs: int = 30, docxs: int = 30, seed: int = 17) -> list[Doc]:
    """Write the documents to `outdir` (for a look afterwards) and return them in memory."""
    from pipeline_bench import report_pdf

    rng = random.Random(seed)
    outdir.mkdir(parents=True, exist_ok=True)
    docs: list[Doc] = []
    for path in sorted(SAMPLES.iterdir()):
        if path.is_file() and path.suffix != ".py":
            docs.append(Doc(path.name, path.read_bytes(), bad=False))
    for i in range(pdfs):
        pages = rng.randint(1, 20)
        docs.append(Doc(f"report-{i:02d}-{pages}p.pdf", report_pdf(pages, seed + i), bad=False))
    for i in range(docxs):
        pages = rng.randint(1, 20)
        docs.append(
            Doc(f"memo-{i:02d}-{pages}p.docx", report_docx(pages, seed + 100 + i), bad=False)
        )
    for path in sorted(BAD.iterdir()):
        if path.is_file():
            docs.append(Doc(path.name, path.read_bytes(), bad=True))
    for doc in docs:
        target = outdir / ("bad-" + doc.name if doc.bad else doc.name)
        target.write_bytes(doc.data)
    return docs


def clean(outdir: Path) -> None:
    shutil.rmtree(outdir, ignore_errors=True)
