"""Analytics queries, computed in SQL; Python only picks the window and shapes the answer."""

from __future__ import annotations

from typing import Any

from shared.client import UserScope
from shared.errors import Unprocessable

WINDOWS = {"1h": 3600, "24h": 86_400, "7d": 7 * 86_400, "30d": 30 * 86_400}


def window_seconds(window: str | None) -> int:
    window = window or "24h"
    if window not in WINDOWS:
        raise Unprocessable(f"window must be one of {', '.join(WINDOWS)}", code="invalid_window")
    return WINDOWS[window]


def report(scope: UserScope, window: str | None) -> dict[str, Any]:
    seconds = window_seconds(window)
    data: dict[str, Any] = scope.call("analytics_event_counts", window_seconds=seconds)
    return {"window": window or "24h", **data}
