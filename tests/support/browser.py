"""Whether the dashboard's browser test may run: Chromium and its driver on PATH."""

from __future__ import annotations

import os


def running_under_ci() -> bool:
    """CI=true (or 1, yes): every test must run, none may skip for a missing tool."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def browser_unavailable(
    chromium: str | None, chromedriver: str | None, *, as_root: bool, ci: bool
) -> tuple[bool, str] | None:
    """None when both are found; else (may skip, reason). Only a run that is neither root
    nor CI may skip: root could have installed them, and CI must run every test."""
    if chromium and chromedriver:
        return None
    missing = " and ".join(
        package
        for package, found in (("chromium", chromium), ("chromium-driver", chromedriver))
        if not found
    )
    reason = (
        f"the dashboard's browser test needs Chromium and its driver on PATH ({missing} "
        f"missing: chromium={chromium}, chromedriver={chromedriver}). Install them as root: "
        "apt-get update && apt-get install -y chromium chromium-driver "
        "(`make test` run as root does it)"
    )
    if as_root or ci:
        return False, f"{reason}; a missing browser fails the test as root and under CI=true"
    return True, f"{reason}; skipped: not running as root, so they could not be installed"
