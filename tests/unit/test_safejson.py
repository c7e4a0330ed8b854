"""shared.platform.safejson: untrusted JSON decodes or raises ValueError, never RecursionError."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from shared.platform import safejson


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


@pytest.mark.parametrize(
    "raw",
    [
        "[" * 100_000,
        "[" * 100_000 + "]" * 100_000,
        '{"a":' * 100_000 + "1" + "}" * 100_000,
        "[" * (safejson.MAX_DEPTH + 1) + "]" * (safejson.MAX_DEPTH + 1),
    ],
    ids=["unclosed", "arrays", "objects", "one-past-the-limit"],
)
def test_too_deep_is_a_value_error(raw: str) -> None:
    with pytest.raises(safejson.TooDeep):
        safejson.loads(raw)
    with pytest.raises(ValueError):
        safejson.loads(raw.encode())


def test_malformed_is_a_value_error_and_valid_json_decodes() -> None:
    with pytest.raises(ValueError):
        safejson.loads(b"{nope")
    with pytest.raises(ValueError):
        safejson.loads(b"\xff\xfe")
    assert safejson.loads(b'{"a": [1, {"b": "[[[{"}]}') == {"a": [1, {"b": "[[[{"}]}
    assert safejson.loads("3") == 3
    at_limit = "[" * safejson.MAX_DEPTH + "]" * safejson.MAX_DEPTH
    assert _depth(safejson.loads(at_limit)) == safejson.MAX_DEPTH


def test_max_depth_counts_objects_and_arrays_from_the_top() -> None:
    assert safejson.loads('["a", "b"]', max_depth=1) == ["a", "b"]
    with pytest.raises(safejson.TooDeep):
        safejson.loads('[["a"], "b"]', max_depth=1)
    with pytest.raises(safejson.TooDeep):
        safejson.loads('{"a": {}}', max_depth=1)


def test_depth_exceeds_agrees_with_a_recursive_count() -> None:
    rng = random.Random(13)

    def make(levels: int) -> Any:
        if levels == 0 or rng.random() < 0.25:
            return rng.choice([1, "x", None, True, 2.5])
        if rng.random() < 0.5:
            return [make(levels - 1) for _ in range(rng.randint(0, 3))]
        return {f"k{i}": make(levels - 1) for i in range(rng.randint(0, 3))}

    for _ in range(500):
        value = make(rng.randint(0, 10))
        depth = _depth(value)
        for limit in range(0, 12):
            assert safejson.depth_exceeds(value, limit) == (depth > limit), json.dumps(value)
