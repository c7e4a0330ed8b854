"""The repository's paths and the small documents tests upload."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

from shared.dev import beside_checkout

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLES = REPO_ROOT / "samples"
# The real documents (public test suites; origins and licenses in its SOURCES.tsv):
# DOCFLOW_CORPUS, else `../shared/corpus` beside this checkout or beside its origin.
CORPUS = Path(os.environ.get("DOCFLOW_CORPUS") or beside_checkout("shared", "corpus"))
NO_CORPUS = f"no corpus at {CORPUS} (set DOCFLOW_CORPUS to a directory of pdf/, docx/, ... files)"

# A short plain-text report: what a test uploads when the content does not matter.
TEXT = (
    b"Quarterly report for the harbour office. Revenue grew by nine percent. "
    b"The new crane arrives in March. Staff turnover stayed low.\n"
    b"Second paragraph with more words about logistics and planning.\n"
)
# The PNG signature and nothing else: binary content the intake refuses.
PNG = b"\x89PNG\r\n\x1a\n" + bytes(100)


def zip_bytes(members: dict[str, bytes]) -> bytes:
    """A deflated zip archive of these members (a DOCX is one, with word/document.xml)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()
