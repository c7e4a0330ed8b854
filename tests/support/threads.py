"""Code under test run in a thread: `Background` returns its result or re-raises its error on
`join()`, and fails there if the thread still runs after the limit (a hang); `started_threads()`
starts them for a test and, at its end, sets the events they may wait on and joins them, so no
thread outlives its test."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from tests.support.waiting import PATIENCE


class Background:
    def __init__(self, target: Callable[..., Any], *args: Any) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(target, args), daemon=True)
        self.thread.start()

    def _run(self, target: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            self.result = target(*args)
        except BaseException as exc:
            self.error = exc

    def join(self, limit: float = PATIENCE) -> Any:
        self.thread.join(limit)
        assert not self.thread.is_alive(), f"no return within {limit} s: it hangs"
        if self.error is not None:
            raise self.error
        return self.result


Start = Callable[..., Background]


@contextmanager
def started_threads() -> Iterator[Start]:
    """`start(target, *args, unblock=(events...))`; on exit the events are set and every
    thread joined."""
    started: list[tuple[Background, tuple[threading.Event, ...]]] = []

    def start(
        target: Callable[..., Any], *args: Any, unblock: tuple[threading.Event, ...] = ()
    ) -> Background:
        runner = Background(target, *args)
        started.append((runner, unblock))
        return runner

    try:
        yield start
    finally:
        for runner, unblock in started:
            for event in unblock:
                event.set()
            runner.thread.join(PATIENCE)
