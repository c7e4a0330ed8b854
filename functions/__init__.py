"""The deployable functions, one module each. `TARGETS` names them; `ROUTES` says which target
serves which first path segment (the gateway config in docs/ mirrors it).

`load(target)` is the composition root of one function: it imports that function's module (and
so only what its routes need) and starts the process's `App` (`shared.platform.app`), which
builds what the settings choose (database transport, storage backend, JWKS client). main.py
calls it when functions-framework looks the target up, before the first request.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import flask

TARGETS = ("uploads", "jobs", "process_jobs", "admin", "probe_health", "retention")

ROUTES = {
    "uploads": "uploads",
    "jobs": "jobs",
    "documents": "jobs",
    "templates": "jobs",
    "process_jobs": "process_jobs",
    "admin": "admin",
    "probe_health": "probe_health",
    "retention": "retention",
}

Function = Callable[[flask.Request], Any]


def load(target: str) -> Function:
    """The function `target` (one of `TARGETS`), its module imported and the App started."""
    if target not in TARGETS:
        raise KeyError(target)
    from shared.platform.app import get_app

    module = importlib.import_module(f"functions.{target}")
    get_app().start()
    function: Function = getattr(module, target)
    return function


def targets() -> dict[str, Function]:
    """Every function, by target name (`docflow serve` serves them all on one port)."""
    return {target: load(target) for target in TARGETS}
