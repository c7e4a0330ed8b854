"""`docflow inspect`: detection and sandboxed extraction of local files, no database.

`shared.dev.cli.main([...])` runs in-process on files generated in `tmp_path`: a text file, a
CSV, a two-page PDF built with pypdfium2 (standard Helvetica text objects) and a binary that
the intake refuses. Checked: the table (a row per file, totals), `--json` (per-file fields and
totals), exit codes (0 all extracted, 1 some failed or refused, 2 a bad invocation), the intake's
codes for refused files, that no document text is printed, that the command needs no valid
settings, and `--compare pdftotext` (skipped when poppler is not installed).
"""

from __future__ import annotations

import ctypes
import io
import json
import shutil
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
import pytest

from shared.dev import inspect
from tests.support.cli import run_cli

# Words that appear only inside the documents: the output must never contain them.
SECRET = "zanzibarquokka"
PDF_PAGES = [
    ["Quarterly revenue grew by twelve percent", f"Margins held steady {SECRET}"],
    ["The second page lists the board members"],
]
TEXT = f"Meeting notes for the product review.\nDecision: ship on Friday {SECRET}.\n"
CSV_TEXT = "region,quarter,revenue\nnorth,Q1,1200\nsouth,Q1,950\neast,Q1,1010\n"
# An ELF header then noise: refused at upload (`unsupported_content`).
BINARY = b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4

needs_pdftotext = pytest.mark.skipif(
    shutil.which("pdftotext") is None, reason="pdftotext (poppler-utils) is not installed"
)


@pytest.fixture(autouse=True)
def _restore_logging(cli_logging: None) -> None:
    """`cli.main` may configure the `docflow` logger."""


def text_pdf(pages: list[list[str]]) -> bytes:
    """A PDF with one Helvetica text object per line (real text, extractable by any reader)."""
    pdf = pdfium.PdfDocument.new()
    for lines in pages:
        page = pdf.new_page(612, 792)
        y = 720.0
        for line in lines:
            obj = pdfium_c.FPDFPageObj_NewTextObj(pdf.raw, b"Helvetica", ctypes.c_float(12))
            buffer = ctypes.create_string_buffer((line + "\x00").encode("utf-16-le"))
            pdfium_c.FPDFText_SetText(obj, ctypes.cast(buffer, ctypes.POINTER(pdfium_c.FPDF_WCHAR)))
            pdfium_c.FPDFPageObj_Transform(obj, 1, 0, 0, 1, 72, y)
            pdfium_c.FPDFPage_InsertObject(page.raw, obj)
            y -= 18
        pdfium_c.FPDFPage_GenerateContent(page.raw)
        page.close()
    out = io.BytesIO()
    pdf.save(out)
    pdf.close()
    return out.getvalue()


def _words(lines: list[str]) -> int:
    return sum(len(line.split()) for line in lines)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Three readable files (text, CSV, PDF) in a folder, one of them in a subfolder."""
    docs = tmp_path / "docs"
    (docs / "reports").mkdir(parents=True)
    (docs / "notes.txt").write_text(TEXT)
    (docs / "sales.csv").write_text(CSV_TEXT)
    (docs / "reports" / "quarter.pdf").write_bytes(text_pdf(PDF_PAGES))
    (docs / ".hidden.txt").write_text("not inspected\n")
    return docs


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code, out, _ = run_cli(capsys, "inspect", "--json", *argv)
    return code, json.loads(out)


def _by_path(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["path"]: entry for entry in report["files"]}


def test_table_lists_each_file_and_the_totals(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(capsys, "inspect", str(folder))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["file", "type", "outcome", "pages", "words", "ms"]
    rows = {line.split()[0]: line.split() for line in lines[1:4]}
    assert set(rows) == {"notes.txt", "reports/quarter.pdf", "sales.csv"}
    pdf_words = _words(PDF_PAGES[0] + PDF_PAGES[1])
    assert rows["reports/quarter.pdf"][1:5] == ["pdf", "ok", "2", str(pdf_words)]
    assert rows["notes.txt"][1:3] == ["txt", "ok"]
    assert rows["sales.csv"][1:3] == ["csv", "ok"]
    assert "files 3  ok 3 (no text 0)  failed 0 (none)" in out
    assert "pages/s" in out
    assert ".hidden" not in out
    assert SECRET not in out and SECRET not in err


def test_refused_file_shows_the_intake_code_and_exits_1(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (folder / "program.bin").write_bytes(BINARY)
    code, out, _ = run_cli(capsys, "inspect", str(folder))
    assert code == 1
    row = next(line for line in out.splitlines() if line.startswith("program.bin"))
    assert row.split()[1:4] == ["-", "rejected", "unsupported_content"]
    assert "failed 1 (unsupported_content 1)" in out
    assert "program.bin: unsupported_content:" in out


def test_json_has_every_file_and_the_totals(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (folder / "program.bin").write_bytes(BINARY)
    # A PDF named .txt: the intake refuses it (the extension disagrees with the bytes).
    (folder / "disguised.txt").write_bytes(text_pdf([["hello"]]))
    (folder / "empty.md").write_bytes(b"")
    code, report = _json(capsys, str(folder))
    assert code == 1
    files = _by_path(report)
    assert set(files) == {
        "disguised.txt",
        "empty.md",
        "notes.txt",
        "program.bin",
        "reports/quarter.pdf",
        "sales.csv",
    }
    pdf = files["reports/quarter.pdf"]
    assert pdf["type"] == "application/pdf"
    assert (pdf["outcome"], pdf["error"], pdf["pages"]) == ("ok", None, 2)
    assert pdf["words"] == _words(PDF_PAGES[0] + PDF_PAGES[1])
    assert pdf["extractor"] and pdf["ms"] > 0 and pdf["recall"] is None
    assert files["sales.csv"]["type"] == "text/csv"
    assert files["notes.txt"]["words"] == len(TEXT.replace(".", " ").replace(":", " ").split())
    refused = {
        name: (files[name]["outcome"], files[name]["error"])
        for name in ("program.bin", "disguised.txt", "empty.md")
    }
    assert refused == {
        "program.bin": ("rejected", "unsupported_content"),
        "disguised.txt": ("rejected", "extension_mismatch"),
        "empty.md": ("rejected", "empty_file"),
    }
    totals = report["totals"]
    assert (totals["files"], totals["ok"], totals["rejected"]) == (6, 3, 3)
    assert totals["failed"] == {
        "empty_file": 1,
        "extension_mismatch": 1,
        "unsupported_content": 1,
    }
    assert totals["pages"] == 2 + 1 + 1  # the PDF's pages, one for each text file
    assert totals["words"] == sum(f["words"] or 0 for f in files.values())
    assert totals["pages_per_second"] > 0
    assert report["sandboxed"] is True and report["compare"] is None
    assert SECRET not in json.dumps(report)


def test_in_process_extraction_gives_the_same_figures(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, boxed = _json(capsys, str(folder))
    code, local = _json(capsys, "--no-sandbox", str(folder))
    assert code == 0 and local["sandboxed"] is False

    def figures(report: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
        return {
            path: (f["type"], f["outcome"], f["pages"], f["words"], f["characters"])
            for path, f in _by_path(report).items()
        }

    assert figures(local) == figures(boxed)


def test_a_single_file_is_shown_as_given(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    given = str(folder / "sales.csv")
    code, report = _json(capsys, given)
    assert code == 0
    assert [f["path"] for f in report["files"]] == [given]


def test_needs_no_valid_settings(
    folder: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Settings that would stop every other command (a fresh checkout, a broken `.env`)."""
    from shared.platform.config import reset_settings

    monkeypatch.setenv("DB_TRANSPORT", "no-such-transport")
    reset_settings()
    assert run_cli(capsys, "probe")[0] == 1  # the other commands do read them
    code, _, err = run_cli(capsys, "inspect", str(folder / "notes.txt"))
    assert code == 0, err


def test_bad_invocations_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = run_cli(capsys, "inspect", str(tmp_path / "missing.pdf"))
    assert (code, out) == (2, "")
    assert "no such file or directory" in err

    (tmp_path / "a.txt").write_text("hello\n")
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    code, out, err = run_cli(capsys, "inspect", "--compare", "pdftotext", str(tmp_path))
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and "pdftotext" in err and "not found" in err


def test_empty_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = _json(capsys, str(tmp_path))
    assert code == 0
    assert report["files"] == [] and report["totals"]["files"] == 0
    assert report["totals"]["pages_per_second"] is None


@needs_pdftotext
def test_compare_pdftotext_adds_word_recall_for_pdfs(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(capsys, "inspect", "--compare", "pdftotext", str(folder))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[-1] == "recall"
    rows = {line.split()[0]: line.split() for line in lines[1:4]}
    assert rows["reports/quarter.pdf"][-1] == "1.000"
    assert rows["notes.txt"][-1] == "-"  # PDFs only
    assert "recall vs pdftotext (words, 1 PDF): median 1.000" in out

    code, report = _json(capsys, "--compare", "pdftotext", str(folder))
    pdf = _by_path(report)["reports/quarter.pdf"]
    assert (pdf["recall"], pdf["recall_kind"]) == (1.0, "words")
    assert report["compare"] == "pdftotext"
    assert report["totals"]["recall_words"]["median"] == 1.0


def test_recall_counts_words_as_a_multiset_and_cjk_by_character() -> None:
    assert inspect.recall("the cat the hat", "the cat hat") == (0.75, "words")
    # NFKC on both sides: full-width letters, the "fi" ligature.
    assert inspect.recall("\uff26\uff49\uff4c\uff45 \ufb01le", "file file") == (1.0, "words")
    # Letter-spaced reference text counts as found when the letters are joined.
    assert inspect.recall("H e l l o\nworld", "hello world") == (1.0, "words")
    assert inspect.recall("H e l l o\nworld", "world") == (1 / 6, "words")
    assert inspect.recall("日本語のテキスト", "日本語") == (3 / 8, "characters")
    assert inspect.recall("。、 \n", "anything") is None
