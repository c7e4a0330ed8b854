"""`docflow upload`'s file collection (shared/dev/batch.py `collect`): what goes, what is
skipped and why, in a real directory tree."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shared.dev.batch import Item, backoff, collect


def _tree(root: Path) -> None:
    (root / "room" / "legal").mkdir(parents=True)
    (root / "room" / "b.pdf").write_bytes(b"%PDF-1.4")
    (root / "room" / "a.txt").write_text("a")
    (root / "room" / ".DS_Store").write_bytes(b"\0")
    (root / "room" / ".git").mkdir()
    (root / "room" / ".git" / "config").write_text("x")
    (root / "room" / "legal" / "nda.docx").write_bytes(b"PK")
    (root / "room" / "legal" / "empty.md").write_text("")


def _states(items: list[Item]) -> list[tuple[str, str, str | None]]:
    return [(item.label, item.state, item.code) for item in items]


def test_a_directory_gives_its_files_sorted_and_skips_subdirectories(tmp_path: Path) -> None:
    _tree(tmp_path)
    room = str(tmp_path / "room")
    items = collect([room])
    assert _states(items) == [
        (f"{room}/a.txt", "queued", None),
        (f"{room}/b.pdf", "queued", None),
        (f"{room}/legal", "skipped", "directory"),
    ]
    assert items[2].message == "a directory (add --recursive)"
    assert [item.size for item in items[:2]] == [1, 8]


def test_recursive_descends_and_hidden_names_are_ignored(tmp_path: Path) -> None:
    _tree(tmp_path)
    room = str(tmp_path / "room")
    labels = [item.label for item in collect([room], recursive=True)]
    assert labels == [
        f"{room}/a.txt",
        f"{room}/b.pdf",
        f"{room}/legal/empty.md",  # empty files go: the server says what it thinks of them
        f"{room}/legal/nda.docx",
    ]


def test_files_are_taken_once_in_the_order_given(tmp_path: Path) -> None:
    _tree(tmp_path)
    a = tmp_path / "room" / "a.txt"
    link = tmp_path / "alias.txt"
    link.symlink_to(a)
    items = collect([str(tmp_path / "room" / "b.pdf"), str(a), str(link), str(tmp_path / "room")])
    assert [item.label for item in items] == [
        str(tmp_path / "room" / "b.pdf"),
        str(a),
        str(tmp_path / "room" / "legal"),  # skipped: a directory
    ]


def test_what_cannot_be_sent_is_skipped_with_its_reason(tmp_path: Path) -> None:
    _tree(tmp_path)
    fifo = tmp_path / "room" / "pipe"
    os.mkfifo(fifo)
    (tmp_path / "room" / "loop").symlink_to(tmp_path / "room", target_is_directory=True)
    missing = str(tmp_path / "nope.pdf")
    items = collect([missing, str(fifo), str(tmp_path / "room")], recursive=True)
    skipped = [(i.label, i.code, i.message) for i in items if i.state == "skipped"]
    assert skipped == [
        (missing, "missing", "no such file or directory"),
        (str(fifo), "not_a_file", "not a regular file"),
        (f"{tmp_path}/room/loop", "symlink", "a link to a directory (not followed)"),
    ]
    assert [i.state for i in items].count("queued") == 4  # the symlinked directory: not again


@pytest.mark.parametrize(("attempt", "low", "high"), [(1, 0.9, 1.1), (3, 3.6, 4.4), (9, 27, 33)])
def test_backoff_doubles_with_jitter_up_to_the_cap(attempt: int, low: float, high: float) -> None:
    delays = [backoff(attempt) for _ in range(200)]
    assert all(low <= d <= high for d in delays)
    assert len(set(delays)) > 1  # jittered


def test_backoff_never_comes_back_before_the_servers_retry_after() -> None:
    assert all(backoff(1, retry_after=5) == 5 for _ in range(50))
    assert all(backoff(6, retry_after=5) >= 27 for _ in range(50))
