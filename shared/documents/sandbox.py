"""Run untrusted parsing in a child process with a wall-clock timeout and a memory limit.

Children come from a `forkserver` (started once, single-threaded, with the extraction libraries
preloaded), so they never inherit the worker's threads or connections. Whatever happens in a
child — a hang, a bomb, a crash in C code — the worker gets an `ExtractionError` with a reason
code and lives on:

- `timeout`: no answer within the limit (the child is killed);
- `resource_limit`: MemoryError, the child killed by SIGKILL (the OOM killer), or an
  extractor's own limit (zip bomb, ...);
- `malformed_document`: the parser raised, or the child died on another signal or exited;
- an `ExtractionError` raised by the parser comes back as it was.

One child per document, started ahead of time. Starting a forkserver child cost about 12 ms
(the fork; the child unpickling its preparation data and Process object, importing
`popen_forkserver` and this module), and that start sat on every document's path. Now:

- A *zygote* per memory limit is started once from the forkserver (which preloads the
  extractors and this module, and parses one tiny document of each format so that PDFium's
  init, lazy imports and compiled patterns are inherited; then `gc.freeze()`). The zygote makes
  each child with a plain `os.fork()`, reaps it, and writes its exit status to a pipe of that
  child's: a child costs about 1.5 ms of CPU instead of 4.5.
- A child sets RLIMIT_AS, says it is ready, and waits on its pipe for one `(fn, args)`. It
  acknowledges the job before running it, so a spare killed while idle is replaced without
  failing the document, and a death after that is the document's.
- A keeper thread keeps *spares* ready: one more than the most `run()` calls seen at once (the
  worker's thread pool), at most `MAX_SPARES`, for the most recent memory limit. It starts the
  next one after a document's answer (not before, so its GIL time never delays an answer) and
  reaps finished children off the documents' path.

A child parses exactly one document and exits, so a crash, hang, bomb or memory blow-up fails
only its own document, and no document's data or text is ever in a process that another
document's result comes from. Reusing children (a process pool) would save the fork as well,
but a parser that corrupts state without crashing (C code, a global cache, a leaked buffer)
would then reach the next document; one fork per document is the line we keep. What remains of
the overhead is mostly the fresh process's copy-on-write page faults during the parse.

Spares and the zygote die with the worker: the zygote is a daemon process (terminated at exit)
and reads end-of-file on its control socket if the worker is killed; an idle spare reads
end-of-file on its job pipe, whose only write end the worker holds.
The worker holds three descriptors per live child (job, answer, exit status) and closes them
when the child is reaped.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import gc
import io
import multiprocessing
import os
import resource
import selectors
import signal
import socket
import struct
import sys
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing import connection, spawn
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any, TypeVar

from shared.documents import sniff
from shared.documents.extract import ExtractionError, Limits, extract

T = TypeVar("T")

MAX_SPARES = 8
"""At most this many idle children wait for a document (one per concurrent `run()`)."""

_REAP_GRACE_SECONDS = 5.0
"""A child that answered has this long to exit before it is killed."""

_get_preparation_data = spawn.get_preparation_data
_start_lock = threading.Lock()


def _preparation_without_main(name: str) -> dict[str, Any]:
    data: dict[str, Any] = _get_preparation_data(name)
    data.pop("init_main_from_path", None)
    data.pop("init_main_from_name", None)
    return data


_ctx = multiprocessing.get_context("forkserver")
_ctx.set_forkserver_preload(
    [
        "shared.documents.extract",
        "shared.documents.extract.pdf",
        "shared.documents.extract.docx",
        "shared.documents.extract.html",
        "shared.documents.extract.tabular",
        "shared.documents.extract.text",
        "pypdfium2",
        # The PDF fallbacks import these on use (forms, encryption, CJK): 40-60 ms a child.
        "pypdf",
        "pdfminer.high_level",
        "pdfminer.layout",
        "multiprocessing.popen_forkserver",  # else each child imports it to unpickle its Process
        __name__,  # last: the children's own code (`_serve`), and the server's warm-up below
    ]
)


@dataclass(frozen=True)
class SandboxLimits:
    timeout_seconds: float = 60.0
    memory_bytes: int = 1024 * 1024 * 1024


def run(fn: Callable[..., T], *args: Any, limits: SandboxLimits) -> T:
    """`fn(*args)` in a fresh child process. `fn` must be a module-level function."""
    deadline = _Deadline(limits.timeout_seconds)
    used: list[_Child] = []
    answer = None
    try:
        spare = _pool.take(limits.memory_bytes)
        if spare is not None:
            used.append(spare)
            if spare.await_ready(deadline):
                answer = spare.call(fn, args, deadline)
        if answer is None:
            # No spare, or one that died before it took the job (killed while idle): not this
            # document's doing, so it gets a child of its own.
            child = _Child(limits.memory_bytes)
            used.append(child)
            if child.await_ready(deadline):
                answer = child.call(fn, args, deadline)
            if answer is None:
                raise _NoAnswer(_died(child.exit_code()))
    except _NoAnswer as failure:
        raise failure.error from None
    finally:
        _pool.release(used)
    status, payload = answer
    if status == "ok":
        result: T = payload
        return result
    code, message = payload
    raise ExtractionError(code, message)


@dataclass(frozen=True)
class _Deadline:
    seconds: float
    at: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "at", time.monotonic() + self.seconds)

    def left(self) -> float:
        return max(0.0, self.at - time.monotonic())

    def error(self) -> ExtractionError:
        return ExtractionError(
            "timeout", f"no result within {self.seconds:g} s (the parser was stopped)"
        )


class _NoAnswer(Exception):
    def __init__(self, error: ExtractionError) -> None:
        super().__init__(error.code)
        self.error = error


class _Zygote:
    """The process that forks the children: one, started from the forkserver, per memory limit.

    A forkserver child pays for multiprocessing's start-up (its preparation data and Process
    object unpickled: about 850 page faults and 4 ms of CPU before it can take a job). The
    zygote pays that once; each child is then a plain `os.fork()` of it (about 400 faults,
    1.5 ms). The zygote reaps its children and
    writes each exit status to a pipe of that child's, which the worker reads.
    """

    def __init__(self, memory: int) -> None:
        self.memory = memory
        self.control, theirs = socket.socketpair()
        self.process: BaseProcess = _ctx.Process(
            target=_zygote, args=(theirs, memory), daemon=True, name="sandbox-zygote"
        )
        try:
            with _start_lock:
                # The zygote needs only this module, never the caller's __main__ (a console
                # script, a benchmark): leaving it out of the preparation data saves it from
                # importing that again.
                spawn.get_preparation_data = _preparation_without_main
                try:
                    self.process.start()
                finally:
                    spawn.get_preparation_data = _get_preparation_data
        except BaseException:
            self.control.close()
            raise
        finally:
            theirs.close()
        self.lock = threading.Lock()

    def fork(self) -> tuple[int, list[int]]:
        """A new child: its pid and the worker's ends (jobs, answers, exit status)."""
        with self.lock:
            self.control.sendall(b"f")
            message, fds, _, _ = socket.recv_fds(self.control, 8, 3)
        if len(message) != 8 or len(fds) != 3:
            for fd in fds:
                os.close(fd)
            raise OSError("the sandbox zygote is gone")
        for fd in fds:
            os.set_inheritable(fd, False)  # SCM_RIGHTS gives them without close-on-exec
        return struct.unpack("q", message)[0], fds

    def close(self) -> None:
        self.control.close()  # the zygote reads end-of-file and exits
        self.process.join(_REAP_GRACE_SECONDS)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


_MAX_ZYGOTES = 4
_zygote_lock = threading.Lock()
_zygotes: dict[int, _Zygote] = {}  # by memory limit, least recently used first


def _fork(memory: int) -> tuple[_Zygote, int, list[int]]:
    """A child with `memory` as its RLIMIT_AS, from that limit's zygote (started if needed)."""
    for attempt in (1, 2):
        with _zygote_lock:
            zygote = _zygotes.pop(memory, None)
            if zygote is not None and not zygote.process.is_alive():
                zygote.close()
                zygote = None
            while len(_zygotes) >= _MAX_ZYGOTES:  # a worker uses one limit; tests use a few
                _zygotes.pop(next(iter(_zygotes))).close()
            zygote = _zygotes[memory] = zygote or _Zygote(memory)  # now the most recent
        try:
            return (zygote, *zygote.fork())
        except OSError:
            with _zygote_lock:
                if _zygotes.get(memory) is zygote:
                    del _zygotes[memory]
            zygote.close()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


class _Child:
    """One child process and the worker's ends of its pipes (jobs, answers, exit status)."""

    def __init__(self, memory: int) -> None:
        self.memory = memory
        self.zygote, self.pid, (jobs, answers, status) = _fork(memory)
        self.jobs = Connection(jobs, readable=False)
        self.answers = Connection(answers, writable=False)
        self.status = status
        self.exitcode: int | None = None
        self.ready = False

    def kill(self) -> None:
        if self.join(0) is None:  # never a pid the zygote has reaped (it could be reused)
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)

    def join(self, timeout: float) -> int | None:
        """The exit code (negative: the signal), once the zygote reports it; None if not yet."""
        waiting = self.exitcode is None and self.status >= 0
        if waiting and connection.wait([self.status], timeout):
            data = os.read(self.status, 8)
            os.close(self.status)
            self.status = -1
            if len(data) == 8:
                self.exitcode = os.waitstatus_to_exitcode(struct.unpack("q", data)[0])
        return self.exitcode

    def await_ready(self, deadline: _Deadline) -> bool:
        """True once the child waits for its job (it has set its limit); False if it died."""
        if not self.ready:
            if not self.zygote.process.is_alive():
                return False  # an orphan could not report how it exits
            if not self.answers.poll(deadline.left()):
                self.kill()
                raise _NoAnswer(deadline.error())
            try:
                self.answers.recv()
            except (EOFError, OSError):
                return False
            self.ready = True
        return True

    def call(
        self, fn: Callable[..., Any], args: tuple[Any, ...], deadline: _Deadline
    ) -> tuple[str, Any] | None:
        """Send the one job and wait for the answer; None if the child died before taking it.

        The child acknowledges the job (`True`) before it runs it, so a child that dies
        afterwards (a crash, the OOM killer) fails the document, and one that was dead already
        does not. The child is not used again either way.
        """
        try:
            self.jobs.send((fn, args))
        except OSError:
            pass  # the child is gone, or died reading the job: its answer or exit code says so
        finally:
            self.jobs.close()
        taken = False
        while True:
            if not self.answers.poll(deadline.left()):
                self.kill()
                raise _NoAnswer(deadline.error())
            try:
                answer: tuple[str, Any] | bool = self.answers.recv()
            except (EOFError, OSError):
                if not taken:
                    return None
                raise _NoAnswer(_died(self.exit_code())) from None
            if answer is not True:
                return answer  # type: ignore[return-value]
            taken = True

    def exit_code(self) -> int | None:
        return self.join(_REAP_GRACE_SECONDS)

    def finish(self) -> None:
        """Wait for the child's exit (killing it if it lingers) and release its handles."""
        self.jobs.close()
        self.answers.close()
        if self.status >= 0 and self.join(_REAP_GRACE_SECONDS) is None:
            self.kill()
            self.join(_REAP_GRACE_SECONDS)
        if self.status >= 0:
            os.close(self.status)
            self.status = -1


class _Pool:
    """Ready children for the current memory limit, refilled and reaped by a keeper thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._memory: int | None = None
        self._wanted = 0
        self._running = 0
        self._spares: collections.deque[_Child] = collections.deque()
        self._done: list[_Child] = []
        self._keeper: threading.Thread | None = None
        self._closed = False

    def take(self, memory: int) -> _Child | None:
        """The oldest spare for `memory` (None if there is none); counts the document in."""
        with self._lock:
            if memory != self._memory:
                self._memory = memory
                self._done.extend(self._spares)
                self._spares.clear()
            self._running += 1
            # One spare more than the most documents seen at once: with documents back to back,
            # each spare has had a whole document's time to get ready.
            self._wanted = min(MAX_SPARES, max(self._wanted, self._running + 1))
            return self._spares.popleft() if self._spares else None

    def release(self, used: list[_Child]) -> None:
        """The document is done: its children go to the keeper, to be reaped.

        The keeper is woken here, after the answer, so that starting the next spare (the
        parent's part of it holds the GIL for about a millisecond) does not delay the answer.
        """
        with self._lock:
            self._running -= 1
            self._done.extend(used)
            if self._closed:
                return
            if self._keeper is None or not self._keeper.is_alive():
                self._keeper = threading.Thread(
                    target=self._keep, name="sandbox-keeper", daemon=True
                )
                self._keeper.start()
            self._work.notify()

    def close(self) -> None:
        """At exit: no more spares; the idle ones read end-of-file and exit. A spare the keeper
        is starting is waited for (and finished by it), or the half-started child would read
        end-of-file instead of its start-up data and print a traceback as the worker exits."""
        with self._lock:
            self._closed = True
            spares, self._spares = list(self._spares), collections.deque()
            keeper = self._keeper
            self._work.notify()
        if keeper is not None and keeper is not threading.current_thread():
            keeper.join(timeout=5)
        for spare in spares:
            spare.jobs.close()
            spare.answers.close()

    def _keep(self) -> None:
        while True:
            with self._lock:
                while not self._closed and not self._done and len(self._spares) >= self._wanted:
                    self._work.wait()
                done, self._done = self._done, []
                if self._closed:
                    break

                memory = self._memory if len(self._spares) < self._wanted else None
            if memory is not None:
                try:
                    spare = _Child(memory)
                except Exception:  # `run()` starts its own child then, and raises what fails
                    time.sleep(1.0)
                else:
                    with self._lock:
                        if (
                            not self._closed
                            and memory == self._memory
                            and len(self._spares) < self._wanted
                        ):
                            self._spares.append(spare)
                        else:
                            done.append(spare)
            for child in done:
                child.finish()
        for child in done:  # closed: reap what is left
            child.finish()


def _close_zygotes() -> None:
    """At exit, after the pool: each zygote reads end-of-file on its control socket and exits
    (and the socket is not left for the interpreter to find unclosed)."""
    with _zygote_lock:
        zygotes = list(_zygotes.values())
        _zygotes.clear()
    for zygote in zygotes:
        zygote.close()


_pool = _Pool()
# atexit runs last-registered first: the pool's spares are given back before the zygotes go.
atexit.register(_close_zygotes)
atexit.register(_pool.close)


def _died(exitcode: int | None) -> ExtractionError:
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        if -exitcode == signal.SIGKILL:  # the kernel's OOM killer
            return ExtractionError("resource_limit", f"the parser was killed ({name})")
        return ExtractionError("malformed_document", f"the parser crashed ({name})")
    return ExtractionError("malformed_document", f"the parser exited ({exitcode})")


def _zygote(control: socket.socket, memory: int) -> None:
    """The zygote's loop: fork a child per request, report each child's exit status."""
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    statuses: dict[int, int] = {}  # pid -> the write end of its status pipe
    with selectors.DefaultSelector() as selector:
        selector.register(control, selectors.EVENT_READ)
        selector.register(wake_r, selectors.EVENT_READ)
        while True:
            ready = {key.fileobj for key, _ in selector.select()}
            if wake_r in ready:
                os.read(wake_r, 4096)
                _reap(statuses)
            if control in ready:
                if not control.recv(1):
                    return  # the worker closed its end, or exited
                jobs_r, jobs_w = os.pipe()
                answers_r, answers_w = os.pipe()
                status_r, status_w = os.pipe()
                pid = os.fork()
                if pid == 0:
                    code = 1
                    try:
                        signal.set_wakeup_fd(-1)
                        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                        for fd in (jobs_w, answers_r, status_r, status_w, wake_r, wake_w):
                            os.close(fd)
                        for fd in statuses.values():
                            os.close(fd)
                        control.close()
                        _serve(
                            Connection(jobs_r, writable=False),
                            Connection(answers_w, readable=False),
                            memory,
                        )
                        code = 0
                    finally:
                        os._exit(code)
                statuses[pid] = status_w
                for fd in (jobs_r, answers_w):
                    os.close(fd)
                try:
                    socket.send_fds(control, [struct.pack("q", pid)], [jobs_w, answers_r, status_r])
                finally:
                    for fd in (jobs_w, answers_r, status_r):
                        os.close(fd)
                _reap(statuses)


def _reap(statuses: dict[int, int]) -> None:
    while statuses:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        fd = statuses.pop(pid, None)
        if fd is not None:
            with contextlib.suppress(OSError):
                os.write(fd, struct.pack("q", status))
            os.close(fd)


def _serve(jobs: Connection, answers: Connection, memory: int) -> None:
    """A child's whole life: limit itself, say it is ready, run one job, answer, exit."""
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    message: tuple[str, Any]
    try:
        answers.send(None)
        fn, args = jobs.recv()
    except (EOFError, OSError):
        return  # not needed any more (the parent closed the pipes, or exited)
    except MemoryError:
        message = ("error", ("resource_limit", "the document does not fit in the memory limit"))
    except Exception as exc:
        message = ("error", ("malformed_document", f"the parser failed ({type(exc).__name__})"))
    else:
        try:
            answers.send(True)  # the job is taken: from here on, a death is the document's
        except OSError:
            return
        message = _call(fn, args)
    finally:
        jobs.close()
    try:
        try:
            answers.send(message)
        except MemoryError:
            answers.send(("error", ("resource_limit", "the result is too large")))
    except OSError:
        pass  # the parent stopped waiting (a timeout, or it exited)
    finally:
        answers.close()


def _call(fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[str, Any]:
    try:
        return ("ok", fn(*args))
    except ExtractionError as exc:
        return ("error", (exc.code, exc.message))
    except MemoryError:
        return ("error", ("resource_limit", "the parser ran out of memory"))
    except RecursionError:
        return ("error", ("resource_limit", "the document nests too deeply"))
    except Exception as exc:
        return ("error", ("malformed_document", f"the parser failed ({type(exc).__name__})"))


def _in_forkserver() -> bool:
    """True while the forkserver imports its preload list (this module is the last of it)."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "main" and (
            frame.f_globals.get("__name__") == "multiprocessing.forkserver"
        ):
            return True
        frame = frame.f_back
    return False


def _pdf(text: bytes) -> bytes:
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream"
        % (len(text) + 30, b"BT /F1 12 Tf 72 720 Td (%s) Tj ET" % text),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def _docx(text: str) -> bytes:
    main = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
    relation = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"
    w = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            "[Content_Types].xml",
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
            'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/word/document.xml" ContentType="{main}"/></Types>',
        )
        archive.writestr(
            "_rels/.rels",
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{relation}" Target="word/document.xml"/>'
            "</Relationships>",
        )
        archive.writestr(
            "word/document.xml",
            f'<w:document xmlns:w="{w}"><w:body><w:p><w:r><w:t>{text}</w:t></w:r></w:p>'
            "<w:tbl><w:tr><w:tc><w:p><w:r><w:t>a</w:t></w:r></w:p></w:tc></w:tr></w:tbl>"
            "</w:body></w:document>",
        )
    return buffer.getvalue()


def _warm_up() -> None:
    """Parse one tiny document of each format in the server, before any child is forked.

    A fresh process pays for first use: PDFium's library init, lazy imports, compiled patterns,
    lxml's parser setup (about 3 ms for a PDF, 1 ms for a CSV). Done once here, every child
    inherits it. The documents are these constants, never a user's, so nothing of a user's
    document is in a child before its own job. `gc.freeze()` then keeps the collector of each
    child away from the server's objects (fewer copy-on-write pages touched).
    """
    samples = (
        (sniff.PDF, _pdf(b"Warm up")),
        (sniff.DOCX, _docx("Warm up")),
        (sniff.HTML, b"<!doctype html><title>T</title><h1>Warm</h1><p>up</p><table><tr><td>1"),
        (sniff.CSV, b"a,b\n1,2\n"),
        (sniff.MARKDOWN, b"# Warm\n\n- up\n\n| a |\n|---|\n| 1 |\n"),
        (sniff.TEXT_PLAIN, b"Warm up.\n"),
    )
    for content_type, data in samples:
        with contextlib.suppress(Exception):  # a failed warm-up only leaves children colder
            extract(data, content_type, Limits())
    gc.collect()
    gc.freeze()


if _in_forkserver():
    _warm_up()
