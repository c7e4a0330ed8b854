"""The deployable functions, one module each. `TARGETS` names them; `ROUTES` says which target
serves which first path segment (the gateway config in docs/ mirrors it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flask

ROUTES = {
    "uploads": "uploads",
    "jobs": "jobs",
    "documents": "jobs",
    "process_jobs": "process_jobs",
    "admin": "admin",
    "probe_health": "probe_health",
    "retention": "retention",
}


def targets() -> dict[str, Callable[[flask.Request], Any]]:
    from functions.admin import admin
    from functions.jobs import jobs
    from functions.probe_health import probe_health
    from functions.process_jobs import process_jobs
    from functions.retention import retention
    from functions.uploads import uploads

    return {
        "uploads": uploads,
        "jobs": jobs,
        "process_jobs": process_jobs,
        "admin": admin,
        "probe_health": probe_health,
        "retention": retention,
    }
