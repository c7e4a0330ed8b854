"""Fire-and-forget processing events from Python (`record_processing_event`).

Lifecycle events of the queue are written by the SQL transitions themselves, in the same
transaction. This module is for ad-hoc events: `record_processing_event()` only appends to an
in-memory buffer, so it returns `None` at once, never raises and never blocks. A background
thread sends batches through `record_events()`; `flush()` (called by the HTTP layer and the
worker before an invocation returns) waits at most 0.5 s. What
cannot be delivered (database down, buffer full) is dropped and counted in the logs.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from shared.platform import clock
from shared.platform.log import get_logger

log = get_logger("events")

MAX_BUFFER = 10_000
BATCH = 500


class EventRecorder:
    def __init__(self) -> None:
        self._queue: deque[dict[str, Any]] = deque()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._sending = 0
        self._inflight: dict[int, int] = {}  # batch number -> size, while being sent
        self._abandoned: set[int] = set()  # in-flight batches a flush already counted as dropped
        self._batch_no = 0
        self._thread: threading.Thread | None = None
        self.dropped = 0
        self.delivered = 0

    def record(self, event: dict[str, Any]) -> None:
        with self._lock:
            if len(self._queue) >= MAX_BUFFER:
                self.dropped += 1
                return
            self._queue.append(event)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="docflow-events", daemon=True
                )
                self._thread.start()
            if len(self._queue) >= BATCH:
                self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait(0.2)
            self._wake.clear()
            self._send_pending()

    def _send_pending(self) -> None:
        while True:
            with self._lock:
                if not self._queue:
                    self._idle.notify_all()
                    return
                batch = [self._queue.popleft() for _ in range(min(BATCH, len(self._queue)))]
                self._sending += 1
                self._batch_no += 1
                number = self._batch_no
                self._inflight[number] = len(batch)
            ok = False
            try:
                from shared.platform.client import get_db

                get_db().call("record_events", events=batch)
                ok = True
            except Exception as exc:
                log.warning(
                    "processing events dropped",
                    extra={"dropped": len(batch), "reason": type(exc).__name__},
                )
            with self._lock:
                self._sending -= 1
                del self._inflight[number]
                counted = number in self._abandoned
                self._abandoned.discard(number)
                if ok:
                    self.delivered += len(batch)
                    if counted:  # delivered after all, late: take back the drop
                        self.dropped -= len(batch)
                elif not counted:
                    self.dropped += len(batch)
                self._idle.notify_all()

    def flush(self, timeout: float = 0.5) -> None:
        """Wait (at most `timeout`) until buffered events are sent; drop what is left."""
        with self._lock:
            if not self._queue and not self._sending:
                return
        self._wake.set()
        with self._lock:
            self._idle.wait_for(lambda: not self._queue and not self._sending, timeout=timeout)
            left = len(self._queue)
            self._queue.clear()
            for number, size in self._inflight.items():
                if number not in self._abandoned:  # still in flight: count it now
                    self._abandoned.add(number)
                    left += size
            self.dropped += left
        if left:
            log.warning("processing events dropped at flush", extra={"dropped": left})


_recorder = EventRecorder()


def record_processing_event(
    event_type: str,
    *,
    document_id: str | None = None,
    user_id: str | None = None,
    job_id: str | None = None,
    duration_ms: int | None = None,
    error_message: str | None = None,
    stage: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Queue one event for `document_processing_events`. Never raises, never blocks."""
    try:
        _recorder.record(
            {
                "event_type": event_type,
                "document_id": document_id,
                "user_id": user_id,
                "job_id": job_id,
                "duration_ms": duration_ms,
                "error_message": error_message[:2000] if error_message else None,
                "stage": stage,
                "details": details,
                "created_at": clock.now().isoformat(),
            }
        )
    except Exception:  # an event must never hurt the caller
        _recorder.dropped += 1


def flush(timeout: float = 0.5) -> None:
    try:
        _recorder.flush(timeout)
    except Exception:
        log.warning("event flush failed", exc_info=True)


def recorder() -> EventRecorder:
    return _recorder
