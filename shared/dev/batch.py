"""`docflow upload`: a batch of files through `POST /uploads`, carried to the end.

The engine, without any terminal code. It
- collects the files: files as named, directories' files (`recursive` descends), hidden names
  inside a directory ignored, anything it cannot send skipped with the reason;
- sends them on `parallel` threads, each file with its own Idempotency-Key, so a retry can
  never create a second job;
- waits out 429: every sender pauses until the answer's Retry-After has passed (one shared
  pause, so the batch does not hammer a limited user), then the file goes again;
- retries 502/503/504 with exponential backoff and jitter (at least the server's Retry-After),
  `UNAVAILABLE_ATTEMPTS` times, and so an API that answered earlier in the batch and cannot
  be reached now (restarting); a file refused for itself (400, 409, 413, 415, 422) is
  `refused` and the others go on; any other error (401, 403, an API never reached) would hit
  every file, so sending stops there;
- with `wait`, follows the accepted jobs while the rest are still being sent, until each is
  completed, failed or cancelled, or `timeout` seconds after the last file went.

Every step is an `Event` handed to the view (shared/dev/console.py) in the calling thread, one
at a time, so views draw without locks; the engine's threads only send and poll. Ctrl-C (a
KeyboardInterrupt in the calling thread) stops sending: uploads already on the wire finish
(their answers say whether a job exists), files not yet sent are `not_sent`, and accepted jobs
keep running on the server.
"""

from __future__ import annotations

import os
import queue
import random
import stat
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from shared.dev.apiclient import (
    TERMINAL_STATUSES,
    ApiClient,
    ApiError,
    ApiUnreachable,
    FileUnreadable,
)

# Answers about the file itself: that file is refused, the others still go.
FILE_ERRORS = (400, 409, 413, 415, 422)
# Answers that mean "the service is busy or restarting": retried with backoff.
UNAVAILABLE = (502, 503, 504)
UNAVAILABLE_ATTEMPTS = 5
BACKOFF_BASE_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 30.0
POLL_INTERVAL_SECONDS = 0.5
# Polls of the jobs that may fail in a row (unreachable, 429, 5xx) before following stops.
POLL_TROUBLES_IN_A_ROW = 5

# The outcomes of a file, in the order the summary lists them.
OUTCOMES = ("completed", "failed", "cancelled", "running", "accepted", "refused", "skipped",
            "not_sent")  # fmt: skip
# Outcomes that make the exit status non-zero (with `wait`, `accepted` cannot occur).
BAD_OUTCOMES = frozenset({"failed", "cancelled", "running", "refused", "skipped", "not_sent"})


@dataclass(eq=False)
class Item:
    """One file of the batch and what became of it."""

    path: Path
    label: str  # as the user named it: the argument, or the directory argument + relative path
    state: str = "queued"  # queued, sending, waiting, accepted, refused, skipped, not_sent
    size: int = 0
    sent: int = 0  # bytes of the file on the wire so far
    job_id: str | None = None
    document_id: str | None = None
    job: dict[str, Any] | None = None  # the latest GET /jobs/{id}
    code: str | None = None  # why it was refused or skipped (an error code)
    message: str | None = None

    @property
    def status(self) -> str | None:
        """The job's status once accepted (`pending` until the first poll)."""
        if self.job_id is None:
            return None
        return str(self.job.get("status")) if self.job else "pending"

    @property
    def finished(self) -> bool:
        return self.state in ("refused", "skipped", "not_sent") or (
            self.status in TERMINAL_STATUSES
        )

    def outcome(self, waited: bool) -> str:
        """completed / failed / cancelled / running (followed, not ended) / accepted (not
        followed) / refused / skipped / not_sent."""
        if self.state != "accepted":
            return self.state if self.state in OUTCOMES else "not_sent"
        status = self.status
        if status in TERMINAL_STATUSES:
            return str(status)
        return "running" if waited else "accepted"

    def error(self) -> tuple[str | None, str | None]:
        """The error code and message of a refusal, a skip or a failed job."""
        if self.job and isinstance(self.job.get("error"), dict):
            return self.job["error"].get("code"), self.job["error"].get("message")
        return self.code, self.message


@dataclass(frozen=True)
class Event:
    """Something that happened, for the view. `kind` is one of:

    skipped, sending, bytes, accepted, refused, rate_limited (data: seconds; once per pause),
    waiting (the item waits out the pause), retrying (data: seconds), not_sent, job (the
    item's job changed), finished (the item reached its outcome), fatal (message: sending
    stops), timeout (following gave up), interrupted.
    """

    kind: str
    item: Item | None = None
    data: Any = None
    message: str = ""


class View(Protocol):
    def start(self, batch: Batch) -> None: ...
    def handle(self, event: Event) -> None: ...
    def tick(self) -> None: ...
    def stop(self) -> None: ...


@dataclass(frozen=True)
class Options:
    priority: str | None = None
    template: str | None = None
    parallel: int = 4
    wait: bool = False
    timeout: float = 600.0  # with wait: seconds after the last file went


# --- collecting ----------------------------------------------------------------------------


def collect(paths: Sequence[str], *, recursive: bool = False) -> list[Item]:
    """The files to send, in the order given (a directory's files sorted by path), each once;
    what cannot be sent is already `skipped` with its reason."""
    items: list[Item] = []
    seen: set[Path] = set()

    def skip(label: str, code: str, message: str) -> None:
        key = Path(label).absolute()
        if key not in seen:
            seen.add(key)
            items.append(Item(Path(label), label, state="skipped", code=code, message=message))

    def add(path: Path, label: str, info: os.stat_result) -> None:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            items.append(Item(path, label, size=info.st_size))

    def walk(directory: Path, label: str) -> None:
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            skip(label, "unreadable", f"cannot list the directory: {exc.strerror or exc}")
            return
        for entry in entries:
            if entry.name.startswith("."):
                continue  # .DS_Store, .git: not documents
            child, child_label = Path(entry.path), os.path.join(label, entry.name)
            try:
                info = entry.stat()
            except OSError as exc:
                skip(child_label, "unreadable", exc.strerror or str(exc))
                continue
            if stat.S_ISDIR(info.st_mode):
                if entry.is_symlink():
                    skip(child_label, "symlink", "a link to a directory (not followed)")
                elif recursive:
                    walk(child, child_label)
                else:
                    skip(child_label, "directory", "a directory (add --recursive)")
            elif stat.S_ISREG(info.st_mode):
                add(child, child_label, info)
            else:
                skip(child_label, "not_a_file", "not a regular file")

    for arg in paths:
        path = Path(arg)
        try:
            info = path.stat()
        except FileNotFoundError:
            skip(arg, "missing", "no such file or directory")
            continue
        except OSError as exc:
            skip(arg, "unreadable", exc.strerror or str(exc))
            continue
        if stat.S_ISDIR(info.st_mode):
            walk(path, arg)
        elif stat.S_ISREG(info.st_mode):
            add(path, arg, info)
        else:
            skip(arg, "not_a_file", "not a regular file")
    return items


# --- running -------------------------------------------------------------------------------


class RatePause:
    """The pause every sender keeps after a 429: nothing is sent before `until`."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.until = 0.0

    def extend(self, seconds: float) -> bool:
        """Pause for `seconds` from now; True when this starts a new pause (none was on)."""
        with self._lock:
            now = self._clock()
            fresh = self.until <= now
            self.until = max(self.until, now + seconds)
            return fresh

    def wait(self, stop: threading.Event) -> bool:
        """Block until the pause is over; False when `stop` was set meanwhile."""
        while (left := self.until - self._clock()) > 0:
            if stop.wait(left):
                return False
        return not stop.is_set()


def backoff(attempt: int, retry_after: float | None = None) -> float:
    """1 s, 2 s, 4 s … (cap 30 s) with ±10 % jitter; never less than the server's Retry-After."""
    delay = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempt - 1))
    delay *= 1 + random.uniform(-0.1, 0.1)  # noqa: S311 - jitter, not a secret
    return float(max(delay, float(retry_after or 0)))


@dataclass
class Batch:
    """A batch upload: `run()` sends, follows and returns; then read `items` and `counts()`."""

    api: ApiClient
    items: list[Item]
    options: Options = field(default_factory=Options)
    clock: Callable[[], float] = time.monotonic
    interrupted: bool = False
    fatal: str | None = None
    timed_out: bool = False

    def __post_init__(self) -> None:
        self._events: queue.Queue[Event] = queue.Queue()
        self._stop_sending = threading.Event()
        self._stop_following = threading.Event()
        self._pause = RatePause(self.clock)
        self._watch_lock = threading.Lock()
        self._watching: dict[str, Item] = {}  # job id -> item, accepted and not yet ended
        self._sending_done = threading.Event()
        self._reached = threading.Event()  # the API has answered at least once

    # --- the calling thread ---------------------------------------------------------------

    def run(self, view: View) -> Batch:
        view.start(self)
        for item in self.items:
            if item.state == "skipped":
                view.handle(Event("skipped", item))
                view.handle(Event("finished", item))
        to_send = [item for item in self.items if item.state == "queued"]
        pool = ThreadPoolExecutor(
            max_workers=max(1, self.options.parallel), thread_name_prefix="docflow-upload"
        )
        follower: threading.Thread | None = None
        try:
            futures = [pool.submit(self._send, item) for item in to_send]
            if self.options.wait:
                follower = threading.Thread(target=self._follow, name="docflow-follow", daemon=True)
                follower.start()
            self._pump(view, futures, follower)
        except KeyboardInterrupt:
            self.interrupted = True
            self._stop_sending.set()
            self._stop_following.set()
            pool.shutdown(wait=False, cancel_futures=True)
            view.handle(Event("interrupted"))
            # The uploads on the wire finish: their answers say whether a job exists.
            self._pump(view, futures, None)
        finally:
            self._stop_sending.set()
            self._stop_following.set()
            pool.shutdown(wait=True, cancel_futures=True)
            if follower is not None:
                follower.join(timeout=10)
            self._drain(view)
            for item in self.items:
                if item.state in ("queued", "sending", "waiting"):
                    item.state = "not_sent"
                    view.handle(Event("finished", item))
            view.stop()
        return self

    def _pump(
        self, view: View, futures: list[Future[None]], follower: threading.Thread | None
    ) -> None:
        """Hand events to the view until sending (and following) are over."""
        while True:
            try:
                event = self._events.get(timeout=0.1)
            except queue.Empty:
                view.tick()
                sending = not all(f.done() for f in futures)
                if not sending and not self._sending_done.is_set():
                    self._sending_done.set()
                following = follower is not None and follower.is_alive()
                if not sending and not following and self._events.empty():
                    return
                continue
            self._apply(event, view)

    def _drain(self, view: View) -> None:
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                return
            self._apply(event, view)

    def _apply(self, event: Event, view: View) -> None:
        """Record the event on its item (only this thread writes items), then show it."""
        item, kind = event.item, event.kind
        if item is not None:
            if kind == "sending":
                item.state, item.sent = "sending", 0
            elif kind == "waiting":
                item.state = "waiting"
            elif kind == "bytes":
                item.sent, item.size = event.data
            elif kind == "accepted":
                item.state = "accepted"
                item.job_id = str(event.data["job_id"])
                item.document_id = event.data.get("document_id")
                if self.options.wait:
                    with self._watch_lock:
                        self._watching[item.job_id] = item
            elif kind in ("refused", "not_sent"):
                item.state = kind
                item.code, item.message = event.data, event.message
            elif kind == "job":
                item.job = event.data
        elif kind == "fatal":
            self.fatal = event.message
        elif kind == "timeout":
            self.timed_out = True
        view.handle(event)
        ends = kind in ("refused", "not_sent", "job", "accepted")
        if item is not None and ends and (item.finished or not self.options.wait):
            view.handle(Event("finished", item))

    # --- the sending threads ----------------------------------------------------------------

    def _emit(
        self, kind: str, item: Item | None = None, data: Any = None, message: str = ""
    ) -> None:
        self._events.put(Event(kind, item, data, message))

    def _send(self, item: Item) -> None:
        key = str(uuid.uuid4())  # the same on every retry: the server answers a replay
        unavailable = 0
        while self._pause.wait(self._stop_sending):
            self._emit("sending", item)
            try:
                answer = self.api.upload(
                    item.path,
                    self.options.priority,
                    idempotency_key=key,
                    template=self.options.template,
                    on_progress=lambda done, total: self._emit("bytes", item, (done, total)),
                )
            except FileUnreadable as exc:
                self._emit("refused", item, exc.code, exc.message)
                return
            except ApiUnreachable as exc:
                # An API that answered earlier in this batch and is gone now is restarting
                # (`make dev`, a deploy): wait for it as for a 503. One never reached: fatal.
                if not self._reached.is_set():
                    self._fatal(item, str(exc))
                    return
                trouble, retry_after = str(exc), None
            except ApiError as exc:
                self._reached.set()
                status = exc.http_status
                if status == 429:
                    seconds = float(exc.retry_after or 1)
                    if self._pause.extend(seconds):
                        self._emit("rate_limited", item, seconds, exc.message)
                    self._emit("waiting", item)
                    continue
                if status in FILE_ERRORS:
                    self._emit("refused", item, exc.code, f"{status} {exc.code}: {exc.message}")
                    return
                if status not in UNAVAILABLE:
                    self._fatal(item, str(exc))
                    return
                trouble, retry_after = str(exc), exc.retry_after
            else:
                self._reached.set()
                self._emit("accepted", item, answer)
                return
            # busy or restarting: back off and send it again, UNAVAILABLE_ATTEMPTS times at most
            unavailable += 1
            if unavailable >= UNAVAILABLE_ATTEMPTS:
                self._fatal(item, trouble)
                return
            delay = backoff(unavailable, retry_after)
            self._emit("retrying", item, delay, trouble)
            if self._stop_sending.wait(delay):
                break
        self._emit("not_sent", item, "not_sent", "not sent")

    def _fatal(self, item: Item, message: str) -> None:
        """An answer that every other file would get too: stop sending."""
        self._stop_sending.set()
        self._emit("not_sent", item, "not_sent", message)
        self._emit("fatal", None, None, message)

    # --- the following thread ---------------------------------------------------------------

    def _follow(self) -> None:
        """Poll the accepted jobs until each ends, or `timeout` after the last file went.

        A round asks for the user's `processing` and `pending` jobs (a page holds 200), which
        gives the stage and progress of every job still running in a request or two however
        large the batch; a watched job in neither list has ended (or moved meanwhile) and is
        read once on its own, with its result."""
        deadline: float | None = None
        troubles = 0
        while not self._stop_following.is_set():
            if deadline is None and self._sending_done.is_set():
                deadline = self.clock() + self.options.timeout
            with self._watch_lock:
                watching = dict(self._watching)
            if not watching and self._sending_done.is_set():
                return
            if deadline is not None and self.clock() >= deadline:
                self._emit("timeout", None, self.options.timeout)
                return
            try:
                if watching:
                    self._poll(watching)
            except (ApiUnreachable, ApiError) as exc:
                transient = isinstance(exc, ApiUnreachable) or exc.http_status in (
                    429,
                    *UNAVAILABLE,
                )
                troubles += 1
                if not transient or troubles >= POLL_TROUBLES_IN_A_ROW:
                    self._emit("fatal", None, None, f"following the jobs stopped: {exc}")
                    return
            else:
                troubles = 0
            self._stop_following.wait(POLL_INTERVAL_SECONDS)

    def _poll(self, watching: dict[str, Item]) -> None:
        """One round: the running jobs from the lists, the others one by one."""
        running = {
            str(job.get("id")): job
            for status in ("processing", "pending")
            for job in self.api.jobs(status)
            if job.get("id") in watching
        }
        for job_id, item in watching.items():
            if self._stop_following.is_set():
                return
            job = running.get(job_id) or self.api.job(job_id)
            if job.get("status") in TERMINAL_STATUSES:
                with self._watch_lock:
                    self._watching.pop(job_id, None)
            self._emit("job", item, job)

    # --- the outcome ----------------------------------------------------------------------

    def counts(self) -> dict[str, Counter[str]]:
        """Per outcome, the files counted by error code (`""` when there is none)."""
        out: dict[str, Counter[str]] = {}
        for item in self.items:
            outcome = item.outcome(self.options.wait)
            code = item.error()[0] if outcome in ("failed", "refused", "skipped") else None
            out.setdefault(outcome, Counter())[code or ""] += 1
        return out

    def exit_status(self) -> int:
        if self.interrupted:
            return 130
        if self.fatal is not None:
            return 1
        bad = any(item.outcome(self.options.wait) in BAD_OUTCOMES for item in self.items)
        return 1 if bad else 0
