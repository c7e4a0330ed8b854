"""samples/generate.py: deterministic, and the committed samples are its output.

Regenerate after changing the script: `python samples/generate.py`.
"""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path

import docx
import pypdfium2 as pdfium
import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples"
SCRIPT = SAMPLES / "generate.py"

GENERATED = {
    "annual-report.pdf",
    "board-minutes.docx",
    "product-faq.html",
    "sales-q3.csv",
    "bad/scanned.pdf",
    "bad/truncated.pdf",
    "bad/bomb.docx",
    "bad/image.png",
}
HAND_WRITTEN = {"meeting-notes.md", "quarterly-report.txt"}


def _generate(outdir: Path) -> dict[str, bytes]:
    subprocess.run(
        [sys.executable, str(SCRIPT), str(outdir)], check=True, capture_output=True, timeout=120
    )
    return {
        path.relative_to(outdir).as_posix(): path.read_bytes()
        for path in sorted(outdir.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    return _generate(tmp_path_factory.mktemp("samples"))


def _zip_members(data: bytes) -> list[tuple[str, int, int]]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return [(i.filename, i.CRC, i.file_size) for i in archive.infolist()]


def test_generates_the_expected_files(fresh: dict[str, bytes]) -> None:
    assert set(fresh) == GENERATED
    assert not GENERATED & HAND_WRITTEN


def test_generation_is_deterministic(fresh: dict[str, bytes], tmp_path: Path) -> None:
    again = _generate(tmp_path)
    assert again.keys() == fresh.keys()
    for name, data in fresh.items():
        assert again[name] == data, f"{name} differs between two runs"


def test_committed_samples_match_a_fresh_generation(fresh: dict[str, bytes]) -> None:
    for name, data in fresh.items():
        committed = SAMPLES / name
        assert committed.is_file(), f"samples/{name} is missing: run samples/generate.py"
        if name.endswith(".docx"):
            # Deflate output may differ between zlib builds: compare what the archive holds.
            assert _zip_members(committed.read_bytes()) == _zip_members(data), name
        else:
            assert committed.read_bytes() == data, f"samples/{name} was edited by hand"
    for name in HAND_WRITTEN:
        assert (SAMPLES / name).is_file()


def test_annual_report_has_text_and_metadata() -> None:
    pdf = pdfium.PdfDocument(SAMPLES / "annual-report.pdf")
    try:
        assert len(pdf) >= 3
        metadata = pdf.get_metadata_dict()
        assert metadata["Title"] == "Annual Report 2026"
        assert metadata["Author"] == "Docflow Samples"
        texts = []
        for index in range(len(pdf)):
            page = pdf[index]
            textpage = page.get_textpage()
            texts.append(textpage.get_text_range())
            textpage.close()
            page.close()
    finally:
        pdf.close()
    for number, text in enumerate(texts, start=1):
        assert text.startswith(f"Page {number}: ")
        assert len(text.split()) > 80
    assert len(set(texts)) == len(texts)
    assert "(mostly thanks to lower component costs)" in " ".join(texts[1].split())


def test_scanned_pdf_has_pages_but_no_text() -> None:
    pdf = pdfium.PdfDocument(SAMPLES / "bad" / "scanned.pdf")
    try:
        assert len(pdf) == 2
        for index in range(len(pdf)):
            page = pdf[index]
            textpage = page.get_textpage()
            assert textpage.get_text_range().strip() == ""
            textpage.close()
            page.close()
    finally:
        pdf.close()


def test_truncated_pdf_does_not_open() -> None:
    data = (SAMPLES / "bad" / "truncated.pdf").read_bytes()
    assert data == (SAMPLES / "annual-report.pdf").read_bytes()[: len(data)]
    with pytest.raises(pdfium.PdfiumError):
        pdfium.PdfDocument(data)


def test_board_minutes_structure() -> None:
    document = docx.Document(str(SAMPLES / "board-minutes.docx"))
    styles = [p.style.name for p in document.paragraphs if p.style is not None]
    assert "Heading 1" in styles and "Heading 2" in styles and "List Bullet" in styles
    assert len(document.tables) == 1
    table = document.tables[0]
    assert len(table.rows) == 3 and len(table.columns) == 3
    assert table.rows[0].cells[0].text == "Department"
    assert document.core_properties.title == "Board Minutes, 12 March 2026"
    assert document.core_properties.author == "Docflow Samples"


def test_bomb_is_small_on_disk_and_huge_inflated() -> None:
    path = SAMPLES / "bad" / "bomb.docx"
    assert path.stat().st_size < 512 * 1024
    with zipfile.ZipFile(path) as archive:
        assert "[Content_Types].xml" in archive.namelist()
        info = archive.getinfo("word/document.xml")
    assert info.file_size >= 200 * 1024 * 1024
    assert info.compress_type == zipfile.ZIP_DEFLATED


def test_html_hides_its_tokens_in_script_and_style() -> None:
    html = (SAMPLES / "product-faq.html").read_text(encoding="utf-8")
    assert "SCRIPT_SHOULD_NOT_APPEAR" in html and "STYLE_SHOULD_NOT_APPEAR" in html
    for token in ("SCRIPT_SHOULD_NOT_APPEAR", "STYLE_SHOULD_NOT_APPEAR"):
        before = html[: html.index(token)]
        assert before.rfind("<script") > before.rfind("</script") or before.rfind(
            "<style"
        ) > before.rfind("</style")
