"""Module-level functions for the sandbox tests (a forkserver child imports them by name)."""

from __future__ import annotations

import os
import signal
import time


def echo(value: object) -> object:
    return value


def hang(seconds: float) -> None:
    time.sleep(seconds)


def hog_memory(megabytes: int) -> int:
    blocks = [bytearray(1024 * 1024) for _ in range(megabytes)]
    return len(blocks)


def crash() -> None:
    os.kill(os.getpid(), signal.SIGSEGV)


def fail() -> None:
    raise ValueError("the parser choked")


def pid() -> int:
    return os.getpid()
