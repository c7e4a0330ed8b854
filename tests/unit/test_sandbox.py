"""The extraction sandbox: every way a parser can go wrong becomes a reason code, and the
calling process carries on."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import pytest

from shared.documents.extract import ExtractionError
from shared.documents.sandbox import SandboxLimits, run
from tests.support import sandbox_targets as targets

T = TypeVar("T")

LIMITS = SandboxLimits(timeout_seconds=20, memory_bytes=512 * 1024 * 1024)


def test_a_result_comes_back_from_another_process() -> None:
    assert run(targets.echo, {"text": "hello", "pages": 2}, limits=LIMITS) == {
        "text": "hello",
        "pages": 2,
    }
    assert run(targets.pid, limits=LIMITS) != os.getpid()


def test_a_hang_is_stopped_with_timeout() -> None:
    with pytest.raises(ExtractionError) as caught:
        run(targets.hang, 3600, limits=SandboxLimits(timeout_seconds=0.5))
    assert caught.value.code == "timeout"


def test_memory_beyond_the_limit_is_resource_limit() -> None:
    with pytest.raises(ExtractionError) as caught:
        run(targets.hog_memory, 2048, limits=SandboxLimits(memory_bytes=256 * 1024 * 1024))
    assert caught.value.code == "resource_limit"


def test_a_crash_in_the_parser_is_malformed_document() -> None:
    with pytest.raises(ExtractionError) as caught:
        run(targets.crash, limits=LIMITS)
    assert caught.value.code == "malformed_document"
    assert "SIGSEGV" in caught.value.message


def test_a_parser_exception_is_malformed_document() -> None:
    with pytest.raises(ExtractionError) as caught:
        run(targets.fail, limits=LIMITS)
    assert caught.value.code == "malformed_document"
    assert "ValueError" in caught.value.message


def test_the_caller_carries_on_after_each_failure() -> None:
    for target, args, limits in (
        (targets.hang, (3600,), SandboxLimits(timeout_seconds=0.3)),
        (targets.crash, (), LIMITS),
        (targets.hog_memory, (2048,), SandboxLimits(memory_bytes=256 * 1024 * 1024)),
    ):
        with pytest.raises(ExtractionError):
            run(target, *args, limits=limits)
        assert run(targets.echo, "still here", limits=LIMITS) == "still here"


def test_each_document_gets_a_child_of_its_own() -> None:
    pids = [run(os.getpid, limits=LIMITS) for _ in range(4)]
    assert len(set(pids)) == 4
    assert os.getpid() not in pids


def test_a_crash_does_not_touch_the_next_document() -> None:
    with pytest.raises(ExtractionError) as caught:
        run(targets.crash, limits=LIMITS)
    assert caught.value.code == "malformed_document"
    assert run(targets.echo, {"text": "next"}, limits=LIMITS) == {"text": "next"}


def test_concurrent_documents_each_get_their_own_result() -> None:
    def one(index: int) -> tuple[object, int]:
        return run(targets.echo, f"document {index}", limits=LIMITS), run(os.getpid, limits=LIMITS)

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(one, range(24)))
    assert [text for text, _ in results] == [f"document {index}" for index in range(24)]
    assert len({pid for _, pid in results}) == 24


def test_a_spare_child_has_the_memory_limit_of_its_call() -> None:
    small = SandboxLimits(timeout_seconds=20, memory_bytes=256 * 1024 * 1024)
    large = SandboxLimits(timeout_seconds=20, memory_bytes=768 * 1024 * 1024)
    for _ in range(3):  # the later calls take spares started for this limit
        assert run(resource.getrlimit, resource.RLIMIT_AS, limits=small) == (
            small.memory_bytes,
            small.memory_bytes,
        )
    with pytest.raises(ExtractionError) as caught:
        run(targets.hog_memory, 512, limits=small)
    assert caught.value.code == "resource_limit"
    for _ in range(3):  # a spare for the small limit never serves a call with another limit
        assert run(resource.getrlimit, resource.RLIMIT_AS, limits=large) == (
            large.memory_bytes,
            large.memory_bytes,
        )


def test_concurrent_documents_under_different_limits_each_get_their_own() -> None:
    limits = [
        SandboxLimits(timeout_seconds=20, memory_bytes=megabytes * 1024 * 1024)
        for megabytes in (384, 640)
    ]

    def one(index: int) -> tuple[int, int]:
        return run(resource.getrlimit, resource.RLIMIT_AS, limits=limits[index % 2])

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(one, range(16)))
    assert results == [(limits[i % 2].memory_bytes,) * 2 for i in range(16)]


def test_a_spare_that_died_idle_does_not_fail_the_document() -> None:
    run(targets.echo, "start the spares", limits=LIMITS)
    killed = 0
    for pid in _wait_for(_spares):
        with contextlib.suppress(ProcessLookupError):  # the keeper may have reaped it already
            os.kill(pid, signal.SIGKILL)
            killed += 1
    assert killed
    assert run(targets.echo, "still served", limits=LIMITS) == "still served"


def test_a_dead_zygote_is_replaced() -> None:
    run(targets.echo, "start the zygote", limits=LIMITS)
    for zygote in multiprocessing.active_children():
        zygote.kill()
        zygote.join()
    assert run(targets.echo, "still served", limits=LIMITS) == "still served"
    assert run(targets.echo, "and again", limits=LIMITS) == "and again"


def test_a_parser_killed_outright_is_resource_limit() -> None:
    with pytest.raises(ExtractionError) as caught:
        run(signal.raise_signal, signal.SIGKILL, limits=LIMITS)
    assert caught.value.code == "resource_limit"
    assert "SIGKILL" in caught.value.message


def test_no_file_descriptors_leak() -> None:
    for _ in range(3):
        run(targets.echo, "warm", limits=LIMITS)
    before = len(os.listdir("/proc/self/fd"))
    for index in range(30):
        run(targets.echo, index, limits=LIMITS)
    with pytest.raises(ExtractionError):
        run(targets.crash, limits=LIMITS)
    # A leak of even one descriptor a document would show as 30 or more.
    assert len(os.listdir("/proc/self/fd")) - before < 12


def test_spares_exit_with_the_worker() -> None:
    script = (
        "import os, sys, time\n"
        "from shared.documents.sandbox import SandboxLimits, run\n"
        "from tests.unit.test_sandbox import _spares, _wait_for\n"
        "run(os.getpid, limits=SandboxLimits())\n"
        "print(' '.join(str(pid) for pid in _wait_for(_spares)), flush=True)\n"
        "if sys.argv[1] == 'kill':\n"
        "    os.kill(os.getpid(), 9)\n"
    )
    for how in ("exit", "kill"):
        finished = subprocess.run(
            [sys.executable, "-c", script, how], capture_output=True, text=True, timeout=60
        )
        pids = [int(pid) for pid in finished.stdout.split()]
        assert pids, finished.stderr
        _wait_for(lambda pids=pids: not any(_alive(pid) for pid in pids))  # type: ignore[misc]


def _spares() -> list[int]:
    """The idle children: the processes whose parent is the sandbox's zygote."""
    zygotes = {child.pid for child in multiprocessing.active_children()}
    spares = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and _alive(int(entry)):
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            except FileNotFoundError:
                continue
            if parent in zygotes:
                spares.append(int(entry))
    return spares


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _wait_for(condition: Callable[[], T]) -> T:
    """Polls `condition` until it is truthy (at most 20 s); fails the test if it never is."""
    for _ in range(400):
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail("the condition never held")
