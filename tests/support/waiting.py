"""Waiting on a condition. The limit bounds a hang; it is never a timing assertion."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import pytest

PATIENCE = 30.0
T = TypeVar("T")


def wait_until(condition: Callable[[], T], what: str, limit: float = PATIENCE) -> T:
    """Poll until `condition()` is truthy and return it; fail naming `what` if it never is."""
    deadline = time.monotonic() + limit
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {limit} s waiting for {what}")
        time.sleep(0.02)
