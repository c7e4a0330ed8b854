"""Content sniffing under adversarial input (issue 13, ReDoS), over real HTTP.

`docflow serve` runs on a local port (every function in one process, one GIL), in two set-ups:

- `worker_in_another_process`: the worker is a separate `docflow worker` process, as deployed
  (the uploads function and the worker never share a process);
- `worker_in_the_server_process`: `docflow serve --worker`, as in `make dev`, where the
  worker's CPU work (summarizing 5 MiB texts) shares the GIL with the requests.

In each:

1. another user (the bystander) polls `GET /jobs` for a few seconds at rest;
2. an attacker uploads every adversarial input, one after another: runs of `[a](`, `[`, `<`,
   `a|`, `*a` and `#` of 64 KiB and of 5 MiB, named `.txt` and `.md`, and 5 MiB of `[a](`
   named `x.exe` (refused with 415 before it is read). The worker processes the accepted ones
   as they come. The bystander keeps polling `GET /jobs` until the last job has finished.

Reports each upload's answer time, the bystander's `GET /jobs` latency (p50, p95, max) at rest
and under attack, and from the job results the parsing stage (the worker's sniff) per job.
With `--before REV`, also times `sniff()` on 64 KiB of `[a](` with shared/sniff.py as it was
at git revision REV (be23194 is the backtracking one, about 17 s), next to today's.

Usage: python bench/redos_bench.py [--before REV] [--rest-seconds S]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from shared.dev import localdb, migrate  # noqa: E402
from shared.platform.auth import mint_token  # noqa: E402
from shared.platform.config import load_settings, reset_settings  # noqa: E402

DB = "docflow_bench_redos"
UNITS = ("[a](", "[", "<", "a|", "*a", "#")
SIZES = (64 * 1024, 5 * 1024 * 1024)
NAMES = ("adversarial.txt", "adversarial.md")
POLL_INTERVAL_SECONDS = 0.05


def adversarial(unit: str, size: int) -> bytes:
    return (unit * (size // len(unit) + 1)).encode()[:size]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _latency(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "requests": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(p95 * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


class Bystander:
    """Another user polling GET /jobs in a thread, recording each answer's latency."""

    def __init__(self, base: str, headers: dict[str, str]) -> None:
        self.base, self.headers = base, headers
        self.samples: list[float] = []
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        with httpx.Client(base_url=self.base, timeout=120) as http:
            while not self._stop.is_set():
                started = time.perf_counter()
                response = http.get("/jobs", params={"limit": 20}, headers=self.headers)
                self.samples.append(time.perf_counter() - started)
                if response.status_code != 200:
                    self.errors += 1
                self._stop.wait(POLL_INTERVAL_SECONDS)

    def __enter__(self) -> Bystander:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(130)


def _sniff_seconds(source: Path, data: bytes) -> float:
    spec = importlib.util.spec_from_file_location("sniff_under_test", source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    started = time.perf_counter()
    module.sniff(data)
    return time.perf_counter() - started


def before_after(revision: str) -> dict[str, Any]:
    """sniff() on 64 KiB of `[a](`: shared/sniff.py at `revision`, and today's."""
    data = adversarial("[a](", 64 * 1024)
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "sniff_before.py"
        old.write_bytes(
            subprocess.run(
                ["git", "show", f"{revision}:shared/sniff.py"],
                cwd=REPO,
                check=True,
                capture_output=True,
            ).stdout
        )
        before = _sniff_seconds(old, data)
    after = _sniff_seconds(REPO / "shared" / "documents" / "sniff.py", data)
    return {"input": "[a]( x 64 KiB", "revision": revision, "before_s": before, "after_s": after}


def scenario(admin: str, worker_in_server: bool, rest_seconds: float) -> dict[str, Any]:
    url = localdb.service_url(admin, DB)
    localdb.recreate_database(admin, DB)
    migrate.migrate(url)
    storage_dir = tempfile.mkdtemp(prefix="docflow-redos-bench-")
    env = {
        "DATABASE_URL": url,
        "STORAGE_DIR": storage_dir,
        "UPLOAD_RATE_LIMIT_PER_MINUTE": "0",
        "LOG_LEVEL": "ERROR",
        "WORKER_POLL_SECONDS": "0.2",
    }
    os.environ.update(env)
    reset_settings()
    settings = load_settings()
    attacker, bystander = str(uuid.uuid4()), str(uuid.uuid4())
    for user in (attacker, bystander):
        localdb.ensure_auth_user(url, user, None, False)
    attack = {"Authorization": f"Bearer {mint_token(settings, attacker, ttl_seconds=7200)}"}
    watch = {"Authorization": f"Bearer {mint_token(settings, bystander, ttl_seconds=7200)}"}

    docflow = str(REPO / ".venv" / "bin" / "docflow")
    port = _free_port()
    serve = [docflow, "serve", "--port", str(port)] + (["--worker"] if worker_in_server else [])
    processes = [
        subprocess.Popen(
            command,
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for command in [serve] + ([] if worker_in_server else [[docflow, "worker"]])
    ]
    base = f"http://127.0.0.1:{port}"
    out: dict[str, Any] = {}
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base}/jobs", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        with httpx.Client(base_url=base, timeout=120) as http:
            for i in range(3):  # the bystander has a few jobs of its own to list
                text = f"Report {i}. Revenue grew.\n".encode()
                response = http.post("/uploads", headers=watch, files={"file": ("r.txt", text)})
                assert response.status_code == 202, response.text

            with Bystander(base, watch) as at_rest:
                time.sleep(rest_seconds)

            cases = [(name, unit, size) for size in SIZES for unit in UNITS for name in NAMES]
            cases.append(("x.exe", "[a](", SIZES[-1]))
            uploads: list[dict[str, Any]] = []
            job_ids: list[str] = []
            finished: dict[str, dict[str, Any]] = {}
            with Bystander(base, watch) as under_attack:
                attack_started = time.perf_counter()
                for name, unit, size in cases:
                    data = adversarial(unit, size)
                    started = time.perf_counter()
                    response = http.post("/uploads", headers=attack, files={"file": (name, data)})
                    elapsed = time.perf_counter() - started
                    body = response.json()
                    uploads.append(
                        {
                            "input": unit,
                            "bytes": size,
                            "name": name,
                            "status": response.status_code,
                            "code": body.get("error", {}).get("code"),
                            "answer_ms": round(elapsed * 1000, 1),
                        }
                    )
                    if response.status_code == 202:
                        job_ids.append(body["job_id"])
                uploads_done = time.perf_counter() - attack_started
                deadline = time.monotonic() + 300
                while len(finished) < len(job_ids) and time.monotonic() < deadline:
                    for job_id in job_ids:
                        if job_id not in finished:
                            job = http.get(f"/jobs/{job_id}", headers=attack).json()
                            if job["status"] in ("completed", "failed", "cancelled"):
                                finished[job_id] = job
                    time.sleep(0.2)
                jobs_done = time.perf_counter() - attack_started
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(30)
        shutil.rmtree(storage_dir, ignore_errors=True)
        localdb.drop_database(admin, DB)

    parsing = [job["result"]["timings_ms"]["parsing"] for job in finished.values()]
    processing = [sum(job["result"]["timings_ms"].values()) for job in finished.values()]
    out["get_jobs_at_rest"] = _latency(at_rest.samples)
    out["get_jobs_under_attack"] = _latency(under_attack.samples)
    out["get_jobs_errors"] = at_rest.errors + under_attack.errors
    out["uploads"] = uploads
    out["uploads_seconds_total"] = round(sum(u["answer_ms"] for u in uploads) / 1000, 3)
    out["upload_answer_ms_max"] = max(u["answer_ms"] for u in uploads)
    out["jobs"] = {
        "accepted": len(job_ids),
        "completed": sum(1 for job in finished.values() if job["status"] == "completed"),
        "detected": sorted({job["result"]["detected_content_type"] for job in finished.values()}),
        "parsing_ms_max": max(parsing),
        "parsing_ms_total": round(sum(parsing), 1),
        "processing_ms_max": round(max(processing), 1),
        "all_uploaded_after_s": round(uploads_done, 2),
        "all_finished_after_s": round(jobs_done, 2),
    }
    return out


def _print(figures: dict[str, Any]) -> None:
    for upload in figures["uploads"]:
        print(
            f"{upload['input']!r:7} {upload['bytes']:>8} B as {upload['name']:16}"
            f" -> {upload['status']} in {upload['answer_ms']:7.1f} ms",
            file=sys.stderr,
        )
    for label in ("get_jobs_at_rest", "get_jobs_under_attack"):
        latency = figures[label]
        print(
            f"GET /jobs {label[9:].replace('_', ' ')}: p50 {latency['p50_ms']} ms,"
            f" p95 {latency['p95_ms']} ms, max {latency['max_ms']} ms ({latency['requests']})",
            file=sys.stderr,
        )
    jobs = figures["jobs"]
    print(
        f"worker: {jobs['completed']}/{jobs['accepted']} completed, parsing stage max"
        f" {jobs['parsing_ms_max']} ms, whole job max {jobs['processing_ms_max']} ms",
        file=sys.stderr,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", metavar="REV", help="also time sniff() as of git REV")
    parser.add_argument("--rest-seconds", type=float, default=3.0)
    args = parser.parse_args()

    out: dict[str, Any] = {}
    if args.before:
        out["sniff_before_after"] = before_after(args.before)
        figures = out["sniff_before_after"]
        print(
            f"sniff() on 64 KiB of '[a](': {figures['before_s']:.2f} s at {args.before}, "
            f"{figures['after_s'] * 1000:.1f} ms now",
            file=sys.stderr,
        )

    admin = localdb.admin_url(load_settings())  # before a scenario points DATABASE_URL at its db
    for label, in_server in (
        ("worker_in_another_process", False),
        ("worker_in_the_server_process", True),
    ):
        out[label] = scenario(admin, in_server, args.rest_seconds)
        print(f"-- {label}", file=sys.stderr)
        _print(out[label])
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
