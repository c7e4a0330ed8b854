"""Fixed times for the SQL functions that take `now`: no test reads the wall clock for them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def at(seconds: float, start: datetime = T0) -> datetime:
    """`seconds` after `start` (T0 unless a test keeps its own epoch)."""
    return start + timedelta(seconds=seconds)
