"""Decoding JSON that came from outside: request bodies, list cursors.

`json.loads` recurses once per nesting level, so `[[[[...` a few thousand levels deep raises
`RecursionError`, which is not a `ValueError` and would surface as a 500. `loads` turns it into
a `ValueError` like any other malformed input, and also refuses documents nested deeper than
`MAX_DEPTH`, so that nothing downstream (validation, `json.dumps`, a jsonb parameter) meets a
structure deep enough to exhaust its own stack. Callers keep catching `ValueError`.
"""

from __future__ import annotations

import json
from typing import Any

# Objects and arrays, counted from the top-level value (1). docflow's bodies are flat; 64 leaves
# room for any reasonable client while staying far below the interpreter's recursion limit.
MAX_DEPTH = 64


class TooDeep(ValueError):
    """The document nests objects or arrays deeper than allowed."""


def loads(raw: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """`json.loads`, raising `ValueError` for malformed input and for nesting past `max_depth`."""
    try:
        value = json.loads(raw)
    except RecursionError:
        raise TooDeep(f"JSON nested deeper than {max_depth} levels") from None
    if depth_exceeds(value, max_depth):
        raise TooDeep(f"JSON nested deeper than {max_depth} levels")
    return value


def depth_exceeds(value: Any, max_depth: int) -> bool:
    """Whether `value` nests dicts and lists deeper than `max_depth` (iterative, no recursion)."""
    stack: list[tuple[dict[str, Any] | list[Any], int]] = []
    if isinstance(value, dict | list):
        stack.append((value, 1))
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False
