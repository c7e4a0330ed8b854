"""Run untrusted parsing in a child process with a wall-clock timeout and a memory limit.

Children come from a `forkserver` (started once, single-threaded, with the extraction libraries
preloaded), so a child starts in milliseconds and never inherits the worker's threads or
connections. The child sets RLIMIT_AS before it parses anything. Whatever happens in it — a
hang, a bomb, a crash in C code — the worker gets an `ExtractionError` with a reason code and
lives on:

- `timeout`: no answer within the limit (the child is killed);
- `resource_limit`: MemoryError, or an extractor's own limit (zip bomb, ...);
- `malformed_document`: the parser raised, or the child died on a signal.
"""

from __future__ import annotations

import multiprocessing
import resource
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing import spawn
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from shared.documents.extract import ExtractionError

T = TypeVar("T")

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
        "docx",
    ]
)


@dataclass(frozen=True)
class SandboxLimits:
    timeout_seconds: float = 60.0
    memory_bytes: int = 1024 * 1024 * 1024


def run(fn: Callable[..., T], *args: Any, limits: SandboxLimits) -> T:
    """`fn(*args)` in a fresh child process. `fn` must be a module-level function."""
    receiver, sender = _ctx.Pipe(duplex=False)
    child = _ctx.Process(target=_child, args=(sender, fn, args, limits.memory_bytes), daemon=True)
    with _start_lock:
        # The child needs only `fn`'s module, never the caller's __main__ (a console script, a
        # benchmark): leaving it out of the preparation data saves the child from importing
        # it again, which was most of the cost of a sandboxed document.
        spawn.get_preparation_data = _preparation_without_main
        try:
            child.start()
        finally:
            spawn.get_preparation_data = _get_preparation_data
    sender.close()
    try:
        if not receiver.poll(limits.timeout_seconds):
            child.kill()
            raise ExtractionError(
                "timeout", f"no result within {limits.timeout_seconds:g} s (the parser was stopped)"
            )
        try:
            status, payload = receiver.recv()
        except (EOFError, OSError):
            child.join(5)
            raise _died(child.exitcode) from None
    finally:
        receiver.close()
        child.join(5)
        if child.is_alive():
            child.kill()
            child.join(5)
    if status == "ok":
        result: T = payload
        return result
    code, message = payload
    raise ExtractionError(code, message)


def _died(exitcode: int | None) -> ExtractionError:
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        if -exitcode == signal.SIGKILL:  # the kernel's OOM killer
            return ExtractionError("resource_limit", f"the parser was killed ({name})")
        return ExtractionError("malformed_document", f"the parser crashed ({name})")
    return ExtractionError("malformed_document", f"the parser exited ({exitcode})")


def _child(sender: Connection, fn: Callable[..., Any], args: tuple[Any, ...], memory: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    try:
        try:
            message: tuple[str, Any] = ("ok", fn(*args))
        except ExtractionError as exc:
            message = ("error", (exc.code, exc.message))
        except MemoryError:
            message = ("error", ("resource_limit", "the parser ran out of memory"))
        except RecursionError:
            message = ("error", ("resource_limit", "the document nests too deeply"))
        except Exception as exc:
            message = ("error", ("malformed_document", f"the parser failed ({type(exc).__name__})"))
        sender.send(message)
    except MemoryError:
        sender.send(("error", ("resource_limit", "the result is too large")))
    finally:
        sender.close()
