"""Local tooling, never deployed: the docflow CLI, the embedded cluster, the migrator, the
local server and the real Storage API."""

from __future__ import annotations

import subprocess
from pathlib import Path

from shared.platform.config import REPO_ROOT


def beside_checkout(*parts: str) -> Path:
    """`../<parts>` beside this checkout; for a clone made elsewhere (CI clones into a fresh
    directory), beside the local repository it was cloned from when that has it."""
    here = REPO_ROOT.parent.joinpath(*parts)
    if here.exists():
        return here
    origin = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "config", "--get", "remote.origin.url"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    if origin and Path(origin).is_dir():
        there = Path(origin).resolve().parent.joinpath(*parts)
        if there.exists():
            return there
    return here
