"""The extraction sandbox: every way a parser can go wrong becomes a reason code, and the
calling process carries on."""

from __future__ import annotations

import os

import pytest

from shared.documents.extract import ExtractionError
from shared.documents.sandbox import SandboxLimits, run
from tests.support import sandbox_targets as targets

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
