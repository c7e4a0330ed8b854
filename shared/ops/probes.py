"""Service health probes and queue health; notifications are `shared.ops.alerts`'.

`run_probes()` is what `POST /probe_health` and `docflow probe` run: every probe concurrently,
each with its own timeout, none able to stop the others. Each probe's result becomes a
`service_health_checks` row through `record_health_check()`, which also opens and resolves
alerts in the same transaction (the state machine is in SQL: see the monitoring migration).
Then due notifications are delivered; a failed delivery is logged and retried on the next run.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from shared.jobs.queue import queue_health
from shared.ops import analytics
from shared.ops.alerts import notifier_for, notify_due
from shared.platform import clock
from shared.platform.client import Database
from shared.platform.config import Settings
from shared.platform.log import get_logger
from shared.platform.storage import Storage

log = get_logger("monitoring")

# job_queue health -> check status (contract §3)
QUEUE_STATUS = {"healthy": "healthy", "degraded": "degraded", "unhealthy": "down"}


@dataclass
class ProbeResult:
    service: str
    status: str  # healthy | degraded | down
    latency_ms: int | None
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


Probe = Callable[[], dict[str, Any]]  # returns details; raises on failure


def probes(
    db: Database, storage: Storage, settings: Settings, *, now: datetime | None = None
) -> dict[str, Probe]:
    """The services to probe; the summarizer only when an API provider is configured."""

    def database() -> dict[str, Any]:
        db.call("ping")
        return {}

    def storage_probe() -> dict[str, Any]:
        name = f"probes/health-{uuid.uuid4().hex}"
        storage.put(name, b"ok", "text/plain")
        try:
            if storage.get(name) != b"ok":
                raise RuntimeError("read back different bytes")
        finally:
            storage.delete(name)
        return {}

    def job_queue() -> dict[str, Any]:
        health = queue_health(db, settings, now=now)
        return {
            "queue_health": health["health"],
            "reasons": health["reasons"],
            "status_override": QUEUE_STATUS[health["health"]],
            # The alert's message then says why.
            "error_override": "; ".join(health["reasons"]) or None,
        }

    found: dict[str, Probe] = {
        "database": database,
        "storage": storage_probe,
        "job_queue": job_queue,
    }
    if settings.summarizer in ("anthropic", "openai"):
        found["summarizer"] = _summarizer_probe(settings)
    return found


def _summarizer_probe(settings: Settings) -> Probe:
    """A cheap authenticated request: list the provider's models."""

    def summarizer() -> dict[str, Any]:
        if settings.summarizer == "anthropic":
            assert settings.anthropic_api_key is not None
            url = f"{settings.anthropic_base_url}/v1/models"
            headers = {
                "x-api-key": settings.anthropic_api_key.get_secret_value(),
                "anthropic-version": "2023-06-01",
            }
        else:
            assert settings.openai_api_key is not None
            url = f"{settings.openai_base_url}/models"
            headers = {"Authorization": f"Bearer {settings.openai_api_key.get_secret_value()}"}
        response = httpx.get(url, headers=headers, timeout=settings.probe_timeout_seconds)
        if response.status_code >= 300:  # a redirect means a wrong base URL
            raise RuntimeError(f"{settings.summarizer} answered HTTP {response.status_code}")
        return {"provider": settings.summarizer}

    return summarizer


def _measure(name: str, probe: Probe, thresholds: dict[str, float]) -> ProbeResult:
    started = time.perf_counter()
    try:
        details = probe()
    except Exception as exc:
        latency = round((time.perf_counter() - started) * 1000)
        message = str(exc)[:500] or type(exc).__name__
        return ProbeResult(name, "down", latency, f"{type(exc).__name__}: {message}")
    latency = round((time.perf_counter() - started) * 1000)
    status = details.pop("status_override", None) or "healthy"
    error = details.pop("error_override", None)
    limit = thresholds.get(name)
    if status == "healthy" and limit is not None and latency > limit:
        status = "degraded"
        details["slow"] = f"{latency} ms > {limit:g} ms"
    return ProbeResult(name, status, latency, error if status != "healthy" else None, details)


def run_probes(
    db: Database,
    storage: Storage,
    settings: Settings,
    *,
    only: dict[str, Probe] | None = None,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """Probe every service concurrently, record the checks (alerts follow), return them."""
    chosen = only if only is not None else probes(db, storage, settings, now=now)
    thresholds = settings.probe_thresholds_ms
    timeout = settings.probe_timeout_seconds
    pool = ThreadPoolExecutor(max_workers=max(1, len(chosen)), thread_name_prefix="probe")
    futures = {
        name: pool.submit(_measure, name, probe, thresholds) for name, probe in chosen.items()
    }
    results: list[ProbeResult] = []
    deadline = clock.monotonic() + timeout
    for name, future in futures.items():
        try:
            results.append(future.result(timeout=max(0.0, deadline - clock.monotonic())))
        except FutureTimeout:
            results.append(
                ProbeResult(name, "down", round(timeout * 1000), f"no answer within {timeout:g} s")
            )
    pool.shutdown(wait=False, cancel_futures=True)

    recorded = []
    for result in results:
        try:
            outcome = db.call(
                "record_health_check",
                service_name=result.service,
                status=result.status,
                latency_ms=result.latency_ms,
                error_message=result.error,
                probe_details=result.details,
                open_after=settings.alert_open_after,
                resolve_after=settings.alert_resolve_after,
                now=now,
            )
        except Exception as exc:  # the database itself may be what is down
            log.warning(
                "check not recorded",
                extra={"service": result.service, "reason": type(exc).__name__},
            )
            outcome = None
        recorded.append(
            {
                "service": result.service,
                "status": result.status,
                "latency_ms": result.latency_ms,
                "error": result.error,
                "recorded": outcome is not None,
                "alerts_opened": (outcome or {}).get("opened", []),
                "alerts_resolved": (outcome or {}).get("resolved", []),
            }
        )
    return recorded


def probe_and_notify(
    db: Database, storage: Storage, settings: Settings, *, now: datetime | None = None
) -> dict[str, Any]:
    checks = run_probes(db, storage, settings, now=now)
    analytics.fold(db)  # the probe schedule also keeps the analytics rollups folded
    try:
        notifications = notify_due(db, settings, notifier_for(settings), now=now)
    except Exception as exc:  # notifications never break probing
        log.warning("notifications skipped", extra={"reason": type(exc).__name__})
        notifications = {"due": 0, "delivered": 0, "failed": 0, "error": 1}
    return {"checks": checks, "notifications": notifications}
