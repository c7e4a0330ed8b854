"""`make demo`: the walking skeleton end to end, over HTTP.

Starts every function on a free local port, uploads the bundled samples as a fresh user,
runs `process_jobs` as the scheduler would, prints each job's result and the analytics counts.
Exits non-zero if any job did not complete.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from pathlib import Path

import httpx
from werkzeug.serving import make_server

from shared.dev import analysis_view, localdb
from shared.dev.server import create_app
from shared.platform.auth import mint_token
from shared.platform.config import REPO_ROOT, Settings

SAMPLES = REPO_ROOT / "samples"


def run_demo(settings: Settings, database_url: str) -> int:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log in the walkthrough
    logging.getLogger("docflow").setLevel(logging.WARNING)
    server = make_server("127.0.0.1", 0, create_app(), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        return _walkthrough(settings, database_url, base)
    finally:
        server.shutdown()


def _walkthrough(settings: Settings, database_url: str, base: str) -> int:
    user_id, admin_id = str(uuid.uuid4()), str(uuid.uuid4())
    localdb.ensure_auth_user(database_url, user_id, "demo@example.test", False)
    localdb.ensure_auth_user(database_url, admin_id, "admin@example.test", True)
    user = {"Authorization": f"Bearer {mint_token(settings, user_id)}"}
    admin = {"Authorization": f"Bearer {mint_token(settings, admin_id, admin=True)}"}
    scheduler = {"X-Scheduler-Secret": settings.scheduler_secret.get_secret_value()}
    samples = sample_paths()

    with httpx.Client(base_url=base, timeout=60) as http:
        print(f"docflow demo against {base}\n")
        job_ids: dict[str, str] = {}
        for path in samples:
            response = http.post(
                "/uploads",
                headers=user,
                files={"file": (path.name, path.read_bytes(), "application/octet-stream")},
                data={"priority": "normal"},
            )
            _check(response, 202)
            job_ids[path.name] = response.json()["job_id"]
            print(f"uploaded {path.name}: job {job_ids[path.name]}")

        response = http.post("/process_jobs", headers=scheduler, json={"max_seconds": 30})
        _check(response, 200)
        print(f"\nprocess_jobs: {response.json()}\n")

        ok = True
        for name, job_id in job_ids.items():
            response = http.get(f"/jobs/{job_id}", headers=user)
            _check(response, 200)
            job = response.json()
            ok = ok and job["status"] == "completed"
            result = job.get("result") or {}
            print(f"{name}: {job['status']} in {job['duration_ms']} ms")
            print(
                f"  {result.get('detected_content_type')} via {result.get('extractor')}: "
                f"{result.get('pages')} page(s), {result.get('words')} words, "
                f"{result.get('characters')} characters"
            )
            print(f"  summary: {result.get('summary')}")
            for point in result.get("key_points") or []:
                print(f"    - {point}")
            for line in analysis_view.lines(result.get("analysis")):
                print(line)
            print()

        response = http.get("/admin/analytics", params={"window": "1h"}, headers=admin)
        _check(response, 200)
        print("analytics (last hour):")
        print(json.dumps(response.json()["event_counts"], indent=2, sort_keys=True))
    return 0 if ok else 1


def _check(response: httpx.Response, status: int) -> None:
    if response.status_code != status:
        raise SystemExit(
            f"demo: {response.request.method} {response.request.url.path} answered "
            f"{response.status_code}: {response.text}"
        )


def sample_paths() -> list[Path]:
    """The readable samples (samples/bad/ holds the ones that must fail)."""
    return sorted(p for p in SAMPLES.iterdir() if p.is_file() and p.suffix != ".py")
