"""Analytics: events are appended as facts by a trigger, folded into rollups by
`fold_analytics()` (here, before every report, and at every probe run), and reported by one SQL
call (`analytics_report`, which also counts what is not folded yet). Python only checks the
window name."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.platform.client import Database, UserScope
from shared.platform.errors import Unprocessable
from shared.platform.log import get_logger

log = get_logger("analytics")

WINDOWS = ("1h", "24h", "7d", "30d")


def check_window(window: str | None) -> str:
    window = window or "24h"
    if window not in WINDOWS:
        raise Unprocessable(f"window must be one of {', '.join(WINDOWS)}", code="invalid_window")
    return window


def fold(db: Database) -> int | None:
    """Move pending facts into the rollups (service). Never raises: the report is exact without
    it, only slower; answers how many facts were folded, or None when it failed."""
    try:
        folded: int = db.call("fold_analytics")
        return folded
    except Exception as exc:
        log.warning("analytics fold skipped", extra={"reason": type(exc).__name__})
        return None


def report(
    scope: Database | UserScope, window: str | None, *, now: datetime | None = None
) -> dict[str, Any]:
    """The report for `window`, read as `scope` (an admin's scope, or the service)."""
    window = check_window(window)
    fold(scope if isinstance(scope, Database) else scope.db)
    result: dict[str, Any] = scope.call("analytics_report", window_name=window, now=now)
    return result
