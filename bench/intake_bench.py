"""Upload intake latency and throughput (part of `make bench`).

POST /uploads of a ~100 KB and a ~5 MB PDF (generated text PDFs), each request doing the full
intake: token check, multipart parsing within the limit, content sniffing, OWASP checks,
sha256, storage write, and the document + job + event transaction.

- in-process: the `uploads` target through functions-framework's own app (Flask test client);
- through `docflow serve` (a subprocess on a local port) with httpx;
- uploads/s with 4 concurrent clients through `docflow serve` (100 KB file).

Usage: python bench/intake_bench.py [--requests N]
"""

from __future__ import annotations

import argparse
import json
import os
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
sys.path.insert(0, str(REPO / "bench"))

from pipeline_bench import report_pdf  # noqa: E402

from shared.dev import localdb, migrate  # noqa: E402
from shared.platform.auth import mint_token  # noqa: E402
from shared.platform.config import load_settings, reset_settings  # noqa: E402

DB = "docflow_bench_intake"


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p95 * 1000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--concurrent-requests", type=int, default=200)
    args = parser.parse_args()

    admin = localdb.admin_url(load_settings())
    url = localdb.service_url(admin, DB)
    localdb.recreate_database(admin, DB)
    migrate.migrate(url)
    storage_dir = tempfile.mkdtemp(prefix="docflow-intake-bench-")
    env = {
        "DATABASE_URL": url,
        "STORAGE_DIR": storage_dir,
        "UPLOAD_RATE_LIMIT_PER_MINUTE": "0",
        "LOG_LEVEL": "ERROR",
        "DB_POOL_MAX": "8",
    }
    os.environ.update(env)
    reset_settings()
    settings = load_settings()
    user = str(uuid.uuid4())
    localdb.ensure_auth_user(url, user, None, False)
    headers = {"Authorization": f"Bearer {mint_token(settings, user, ttl_seconds=7200)}"}
    files = {"100 KB": report_pdf(30, 1), "5 MB": report_pdf(1500, 2)}
    out: dict[str, Any] = {}

    import functions_framework

    app: Any = functions_framework.create_app(target="uploads", source=str(REPO / "main.py"))
    client = app.test_client()
    for label, data in files.items():
        n = args.requests if label == "100 KB" else max(10, args.requests // 2)
        times = []
        for _ in range(n):
            started = time.perf_counter()
            response = client.post(
                "/uploads",
                data={"file": (__import__("io").BytesIO(data), "report.pdf")},
                headers=headers,
                content_type="multipart/form-data",
            )
            times.append(time.perf_counter() - started)
            assert response.status_code == 202, response.get_data(as_text=True)
        p50, p95 = _percentiles(times)
        out[f"in_process_{label}"] = {"p50_ms": p50, "p95_ms": p95, "requests": n}
        print(f"intake in-process, {label} PDF: p50 {p50:.1f} ms, p95 {p95:.1f} ms ({n} uploads)")

    port = _free_port()
    server = subprocess.Popen(
        [str(REPO / ".venv" / "bin" / "docflow"), "serve", "--port", str(port)],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
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
        with httpx.Client(base_url=base, timeout=60) as http:
            for label, data in files.items():
                n = args.requests if label == "100 KB" else max(10, args.requests // 2)
                times = []
                for _ in range(n):
                    started = time.perf_counter()
                    response = http.post(
                        "/uploads", headers=headers, files={"file": ("report.pdf", data)}
                    )
                    times.append(time.perf_counter() - started)
                    assert response.status_code == 202, response.text
                p50, p95 = _percentiles(times)
                out[f"serve_{label}"] = {"p50_ms": p50, "p95_ms": p95, "requests": n}
                print(
                    f"intake through docflow serve, {label} PDF: p50 {p50:.1f} ms, "
                    f"p95 {p95:.1f} ms ({n} uploads)"
                )

        data = files["100 KB"]
        total = args.concurrent_requests
        per_client = total // 4
        errors: list[str] = []

        def client_loop() -> None:
            with httpx.Client(base_url=base, timeout=60) as http:
                for _ in range(per_client):
                    r = http.post("/uploads", headers=headers, files={"file": ("r.pdf", data)})
                    if r.status_code != 202:
                        errors.append(r.text)

        threads = [threading.Thread(target=client_loop) for _ in range(4)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        rate = per_client * 4 / (time.perf_counter() - started)
        out["serve_concurrent_uploads_per_s"] = rate
        print(
            f"uploads/s through docflow serve, 4 concurrent clients, 100 KB PDF: {rate:.0f} "
            f"({per_client * 4} uploads, {len(errors)} errors)"
        )
    finally:
        server.terminate()
        server.wait(10)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
