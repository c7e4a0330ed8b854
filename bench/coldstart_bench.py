"""Cold start (issue 14): what a new instance pays before it answers, against a bare
functions-framework app on the same machine.

Measured, in fresh processes, alternating the subjects round by round (the order rotates):

- `import main`: `python -c "import main"` (settings loaded and checked; no target yet) and,
  for context, `import main` plus every target (what `docflow serve` loads);
- first answer: `functions-framework --target NAME --source main.py --port P` (gunicorn, as
  Cloud Functions runs it), from spawn to the first HTTP answer of a GET on the function's
  own path. No database is needed: `GET /uploads` (405, POST only), `GET /jobs` (401, no
  token), `GET /admin/dashboard` (200), `GET /process_jobs`, `/retention`, `/probe_health`
  (405). Each answer comes from the function's router, so the target is loaded and started;
- the same two for a bare app: one `@functions_framework.http` function answering "ok";
- for the breakdown, the same two for the "floor": the bare app that also imports the libraries
  every function needs (pydantic-settings, psycopg, psycopg_pool, PyJWT). Not a target.

The environment is fixed (the tests' settings: DB_TRANSPORT=postgres, STORAGE_BACKEND=local,
no .env). Reported: median wall times (and min, max), the ratio of each to the bare app's,
peak RSS (`ru_maxrss` of the import; the largest VmHWM among the server's processes at its
first answer), and an import-time breakdown from `python -X importtime` (median of a few
runs): per top-level package (self time summed) and the largest cumulative entries.

Targets (issue 14): `import main` within 2.5x of the bare import; the first answer of
uploads, jobs and admin each within 2.5x of the bare app's. Prints JSON; exits 1 when a target
is missed.

With `--before REV`, also measures `import main` and the first answers of uploads, jobs and
admin with the code as it was at git revision REV (`git archive`; the same interpreter and
packages), for the before/after figures.

Usage: python bench/coldstart_bench.py [--runs N] [--importtime-runs K] [--before REV]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TARGET_RATIO = 2.5

ENV = {
    "DOCFLOW_ENV_FILE": "",
    "SUPABASE_JWT_SECRET": "bench-jwt-secret-that-is-long-enough-0123456789",
    "SCHEDULER_SECRET": "bench-scheduler-secret-long-enough-0123456789",
    "DB_TRANSPORT": "postgres",
    "STORAGE_BACKEND": "local",
    "LOG_LEVEL": "WARNING",
    "DB_POOL_MIN": "0",
}
CLEARED = (
    "DATABASE_URL",
    "SUPABASE_URL",
    "SUPABASE_ANON_KEY",
    "SUPABASE_SERVICE_ROLE_KEY",
    "JWKS_URL",
    "K_SERVICE",
    "FUNCTION_TARGET",
)

BARE_APP = """import functions_framework


@functions_framework.http
def bare(request):
    return "ok"
"""
# The bare app plus the libraries every docflow function needs (issue 14: pydantic-settings,
# psycopg and PyJWT; psycopg_pool with them): the floor of what `import main` can cost.
FLOOR_APP = "import jwt, psycopg, psycopg_pool, pydantic_settings\n" + BARE_APP

# target -> (path of the GET, the status its router answers without a token or a database)
FUNCTIONS: dict[str, tuple[str, int]] = {
    "uploads": ("/uploads", 405),
    "jobs": ("/jobs", 401),
    "admin": ("/admin/dashboard", 200),
    "process_jobs": ("/process_jobs", 405),
    "retention": ("/retention", 405),
    "probe_health": ("/probe_health", 405),
}
GATED = ("uploads", "jobs", "admin")
SERVE_TIMEOUT_SECONDS = 30.0


def environment(storage_dir: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    env.update(ENV)
    env["STORAGE_DIR"] = storage_dir
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def timed_run(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, int]:
    """Wall seconds from spawn to exit, and the child's peak RSS in KiB."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {stderr[-2000:]}")
    return elapsed, usage.ru_maxrss


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def process_tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                children = Path(f"/proc/{current}/task/{task}/children").read_text().split()
                todo.extend(int(child) for child in children)
        except OSError:
            continue
    return pids


def peak_rss_kib(pids: list[int]) -> int:
    peak = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        match = re.search(r"^VmHWM:\s+(\d+) kB", status, flags=re.MULTILINE)
        if match:
            peak = max(peak, int(match.group(1)))
    return peak


def first_answer(
    target: str, source: Path, path: str, expected: int, env: dict[str, str]
) -> tuple[float, int]:
    """Seconds from spawning functions-framework to the first HTTP answer, and the peak RSS."""
    port = free_port()
    argv = [
        str(BIN / "functions-framework"),
        *("--target", target, "--source", str(source), "--host", "127.0.0.1"),
        *("--port", str(port)),
    ]
    with tempfile.TemporaryFile() as log:
        started = time.perf_counter()
        proc = subprocess.Popen(
            argv,
            cwd=source.parent,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )
        try:
            while True:
                if proc.poll() is not None:
                    log.seek(0)
                    tail = log.read().decode(errors="replace")[-2000:]
                    raise RuntimeError(f"{target}: the server exited ({proc.returncode}): {tail}")
                if time.perf_counter() - started > SERVE_TIMEOUT_SECONDS:
                    raise RuntimeError(f"{target}: no answer in {SERVE_TIMEOUT_SECONDS} s")
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                    conn.request("GET", path)
                    status = conn.getresponse().status
                    conn.close()
                except OSError:
                    time.sleep(0.002)
                    continue
                elapsed = time.perf_counter() - started
                if status != expected:
                    raise RuntimeError(f"{target}: GET {path} answered {status}, not {expected}")
                return elapsed, peak_rss_kib(process_tree(proc.pid))
        finally:
            os.killpg(proc.pid, 15)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait()


def importtime(code: str, cwd: Path, env: dict[str, str]) -> list[tuple[str, int, int, int]]:
    """`-X importtime` rows: (module, depth, self µs, cumulative µs)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    rows = []
    for line in result.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if match:
            own, cumulative, indent, name = match.groups()
            rows.append((name, (len(indent) - 1) // 2, int(own), int(cumulative)))
    return rows


def breakdown(code: str, cwd: Path, env: dict[str, str], runs: int) -> dict[str, Any]:
    by_package: dict[str, list[int]] = defaultdict(list)
    top_level: dict[str, list[int]] = defaultdict(list)
    totals = []
    for _ in range(runs):
        rows = importtime(code, cwd, env)
        packages: dict[str, int] = defaultdict(int)
        for name, depth, own, cumulative in rows:
            packages[name.split(".")[0]] += own
            if depth == 0:
                top_level[name].append(cumulative)
        for package, own in packages.items():
            by_package[package].append(own)
        totals.append(sum(own for _, _, own, _ in rows))
    medians = {k: statistics.median(v + [0] * (runs - len(v))) for k, v in by_package.items()}
    packages_ms = {
        k: round(v / 1000, 1) for k, v in sorted(medians.items(), key=lambda kv: -kv[1])[:20]
    }
    top = {
        k: round(statistics.median(v) / 1000, 1)
        for k, v in sorted(top_level.items(), key=lambda kv: -statistics.median(kv[1]))[:15]
    }
    return {
        "code": code,
        "total_ms": round(statistics.median(totals) / 1000, 1),
        "self_ms_by_package": packages_ms,
        "top_level_cumulative_ms": top,
    }


def summary(samples: list[tuple[float, int]]) -> dict[str, Any]:
    walls = [s[0] for s in samples]
    return {
        "median_s": round(statistics.median(walls), 4),
        "min_s": round(min(walls), 4),
        "max_s": round(max(walls), 4),
        "peak_rss_mib": round(max(s[1] for s in samples) / 1024, 1),
        "runs": len(walls),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="runs of each subject (default 10)")
    parser.add_argument("--importtime-runs", type=int, default=3)
    parser.add_argument("--before", metavar="REV", help="also measure the code at git REV")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="docflow-coldstart-") as tmp:
        bare_dir = Path(tmp) / "bare"
        bare_dir.mkdir()
        (bare_dir / "bare_app.py").write_text(BARE_APP)
        (bare_dir / "floor_app.py").write_text(FLOOR_APP.replace("def bare", "def floor"))
        env = environment(str(Path(tmp) / "storage"))
        python = sys.executable
        all_targets = "import main; " + "; ".join(f"main.{t}" for t in FUNCTIONS)

        subjects: dict[str, Callable[[], tuple[float, int]]] = {
            "import:bare": lambda: timed_run([python, "-c", "import bare_app"], bare_dir, env),
            "import:main": lambda: timed_run([python, "-c", "import main"], REPO, env),
            "import:main+all_targets": lambda: timed_run([python, "-c", all_targets], REPO, env),
            "import:floor": lambda: timed_run([python, "-c", "import floor_app"], bare_dir, env),
            "serve:bare": lambda: first_answer("bare", bare_dir / "bare_app.py", "/", 200, env),
            "serve:floor": lambda: first_answer("floor", bare_dir / "floor_app.py", "/", 200, env),
        }
        for target, (path, expected) in FUNCTIONS.items():
            subjects[f"serve:{target}"] = lambda target=target, path=path, expected=expected: (
                first_answer(target, REPO / "main.py", path, expected, env)
            )
        if args.before:
            old = Path(tmp) / "before"
            old.mkdir()
            archive = subprocess.run(
                ["git", "archive", args.before], cwd=REPO, capture_output=True, check=True
            ).stdout
            subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
            subjects["import:main@before"] = lambda: timed_run(
                [python, "-c", "import main"], old, env
            )
            for target in GATED:
                path, expected = FUNCTIONS[target]
                subjects[f"serve:{target}@before"] = (
                    lambda target=target, path=path, expected=expected: first_answer(
                        target, old / "main.py", path, expected, env
                    )
                )

        names = list(subjects)
        for name in names:  # warm-up: byte-code caches, page cache; not counted
            subjects[name]()
        samples: dict[str, list[tuple[float, int]]] = {name: [] for name in names}
        for round_no in range(args.runs):
            shift = round_no % len(names)
            for name in names[shift:] + names[:shift]:
                samples[name].append(subjects[name]())

        results = {name: summary(values) for name, values in samples.items()}
        bare_import = results["import:bare"]["median_s"]
        bare_serve = results["serve:bare"]["median_s"]
        for name, result in results.items():
            base = bare_import if name.startswith("import:") else bare_serve
            result["ratio_to_bare"] = round(result["median_s"] / base, 2)

        checks = {"import:main": results["import:main"]["ratio_to_bare"] <= TARGET_RATIO}
        for target in GATED:
            checks[f"serve:{target}"] = results[f"serve:{target}"]["ratio_to_bare"] <= TARGET_RATIO

        k = args.importtime_runs
        breakdowns = {
            "import main": breakdown("import main", REPO, env, k),
            **{
                f"import main; main.{t}": breakdown(f"import main; main.{t}", REPO, env, k)
                for t in GATED
            },
            "bare app": breakdown("import bare_app", bare_dir, env, k),
        }

    report = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "before": args.before,
        "runs": args.runs,
        "target_ratio": TARGET_RATIO,
        "results": results,
        "targets_met": checks,
        "importtime": breakdowns,
    }
    print(json.dumps(report, indent=2))
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
