"""Every relative link in README.md and docs/*.md resolves.

A link `[text](path#anchor)` must name a file or directory that exists, and when the target
is a Markdown file and the link has an anchor, the anchor must be the GitHub slug of one of
that file's headings. Links inside fenced code blocks and inline code are not links, and
neither are URLs with a scheme (`https:`, `mailto:`).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from urllib.parse import unquote

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted([REPO_ROOT / "README.md", *(REPO_ROOT / "docs").glob("*.md")])

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def prose_lines(path: Path) -> list[tuple[int, str]]:
    """The file's lines outside fenced code blocks, numbered from 1."""
    found: list[tuple[int, str]] = []
    fence: str | None = None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        match = FENCE.match(line)
        if match:
            marker = match.group(1)
            if fence is None:
                fence = marker
            elif marker == fence:
                fence = None
            continue
        if fence is None:
            found.append((number, line))
    return found


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lower case, punctuation removed."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    """Every heading anchor of a Markdown file, numbered as GitHub numbers repeats."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    for _, line in prose_lines(path):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return frozenset(found)


def links(path: Path) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for number, line in prose_lines(path):
        for match in LINK.finditer(INLINE_CODE.sub("", line)):
            found.append((number, match.group(1)))
    return found


def broken(path: Path, target: str) -> str | None:
    """Why a link from `path` does not resolve, or None when it does."""
    if SCHEME.match(target) or target.startswith("//"):
        return None
    file_part, _, anchor = target.partition("#")
    dest = (path.parent / unquote(file_part)).resolve() if file_part else path
    if not dest.exists():
        return f"no file {dest.relative_to(REPO_ROOT) if dest.is_relative_to(REPO_ROOT) else dest}"
    if anchor and dest.suffix == ".md" and unquote(anchor) not in anchors(dest):
        return f"no heading #{anchor} in {dest.relative_to(REPO_ROOT)}"
    return None


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_relative_links_resolve(path: Path) -> None:
    problems = [
        f"{path.relative_to(REPO_ROOT)}:{number}: ({target}) {reason}"
        for number, target in links(path)
        if (reason := broken(path, target)) is not None
    ]
    assert problems == [], "\n".join(problems)


def test_the_docs_have_links() -> None:
    """The parser finds links at all (a regex that matched nothing would pass everything)."""
    readme = REPO_ROOT / "README.md"
    assert len(links(readme)) >= 5
    assert any("#" in target for _, target in links(readme))


@pytest.mark.parametrize(
    ("heading", "expected"),
    [
        ("`POST /uploads` (function `uploads`; user)", "post-uploads-function-uploads-user"),
        ("Checks, in order", "checks-in-order"),
        ("7. Schedule `probe_health`", "7-schedule-probe_health"),
        ("Crash harness (`make crash`)", "crash-harness-make-crash"),
        (
            "`GET /documents/{document_id}/text` (function `jobs`; owner or admin)",
            "get-documentsdocument_idtext-function-jobs-owner-or-admin",
        ),
        ("Following a job live (Supabase Realtime)", "following-a-job-live-supabase-realtime"),
    ],
)
def test_slug_follows_github(heading: str, expected: str) -> None:
    assert slug(heading) == expected
