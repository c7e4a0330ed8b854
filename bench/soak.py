"""Soak run (`make soak`, `make soak MINUTES=N RATE=R`): mixed traffic for N minutes against
`docflow serve` and two long-running `docflow worker` processes, then a Jepsen-style check.

Setup (like bench/crash.py): its own database `docflow_soak` on the embedded cluster (started
when it is not running; never stopped here), migrated; its own storage directory; 50 users and
an admin. Rows older than each retention period are seeded (and just-inside ones that must
stay), with files for the seeded documents. Then:

- `docflow serve --schedules --probe-every 60 --retention-every 300` (all functions; probes
  every minute, retention at start and every 5 minutes, RETENTION_DELETE_DOCUMENTS=true) and
  two `docflow worker` processes, as subprocesses; an analytics reader calls
  GET /admin/analytics every 5 s.
- Warm-up: a burst of uploads measures capacity (jobs finished per second); the default RATE
  is half of it.
- Steady phase, MINUTES long, in parallel: uploads from 50 users at RATE (the samples, PDFs and
  DOCX of 1-20 pages, 5 % bad files), and about one action per 20 uploads: cancels, retries of
  failed jobs, reanalyzes. A second wave of expired rows is seeded when a retention run falls
  inside the phase.
- Every 10 s: intake latency p50/p99 of the uploads answered in that window, queue depth and
  oldest-pending age, completions/s, RSS of the server, each worker and its sandbox processes
  (from /proc), PostgreSQL connections, table and index sizes, the load average.
- Drain (uploads stopped; the queue empties, with a timeout), then the checks: every accepted
  upload (and every retry and reanalyze job) reached a terminal state, no job completed twice,
  every job's event sequence is valid (bench/soak_verdict.py has the state machine), the API
  agrees with the database, retention removed every seeded expired row and no live one.

Writes a JSON report and a PNG chart (matplotlib, the `bench` extra; without it the JSON is
still written) to /tmp/docflow-soak/<timestamp>/ (outside the repository; --out elsewhere,
with the processes' logs and the generated documents; the stored files are deleted after the
checks unless --keep-storage; the database `docflow_soak` stays until the next run),
prints the verdict, and exits 1 when a goal is missed (2 when the run could not be set up).
Goals: RSS growth after the first 2 minutes <= 10 % per long-lived process; queue lag bounded
(no upward trend); intake p99 < 200 ms at the default rate; 0 lost, 0 duplicated; retention
removed only expired rows.

Usage: python bench/soak.py [--minutes 15] [--rate R] [--out DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import soak_chart  # noqa: E402
import soak_docs  # noqa: E402
import soak_verdict as sv  # noqa: E402

from shared.dev import localdb, migrate  # noqa: E402
from shared.platform.auth import mint_token  # noqa: E402
from shared.platform.config import Settings, load_settings  # noqa: E402
from shared.platform.storage import LocalStorage  # noqa: E402

DB = "docflow_soak"
SAMPLE_EVERY = 10.0
ANALYTICS_EVERY = 5.0
PROBE_EVERY = 60.0
RETENTION_EVERY = 300.0
BAD_FRACTION = 0.05
ACTION_FRACTION = 0.05  # one cancel, retry or reanalyze per 20 uploads
BASELINE_AFTER = 120.0  # RSS growth is measured from 2 minutes into the steady phase
PRIORITIES = ("normal",) * 8 + ("high", "low")
TABLES = (
    "documents",
    "processing_jobs",
    "document_processing_events",
    "job_status_counts",
    "analytics_pending",
    "analytics_rollups",
    "analytics_histograms",
    "analytics_stage_totals",
    "service_health_checks",
    "alert_events",
    "storage_deletions",
)


class SetupError(Exception):
    """The run could not start (exit status 2)."""


def log(message: str) -> None:
    print(f"{datetime.now(UTC).strftime('%H:%M:%S')}  {message}", flush=True)


# --- processes ------------------------------------------------------------------------------


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the soak dies (PR_SET_PDEATHSIG), so a killed
    soak leaves no server or worker behind."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


@dataclass
class Processes:
    logs: Path
    running: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        out = (self.logs / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "shared.dev.cli", *args],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the soak only; it stops them in order
            preexec_fn=_die_with_parent,
        )
        out.close()
        self.running[name] = proc
        return proc

    def stop_all(self, timeout: float = 30.0) -> dict[str, int | None]:
        """SIGTERM every process, wait up to `timeout` for all, SIGKILL what is left."""
        for proc in self.running.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        codes: dict[str, int | None] = {}
        for name, proc in self.running.items():
            try:
                codes[name] = proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                codes[name] = proc.wait()
                log(f"{name} did not stop within {timeout:g} s: killed")
        return codes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def read_rss_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return 0  # a zombie has no VmRSS


def parent_map() -> dict[int, list[int]]:
    """Every live process's children, from /proc/<pid>/stat (no psutil)."""
    children: dict[int, list[int]] = defaultdict(list)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                text = stat.read()
        except OSError:
            continue
        ppid = int(text.rsplit(")", 1)[1].split()[1])
        children[ppid].append(int(entry))
    return children


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def process_tree(roots: dict[str, int]) -> dict[str, tuple[int, int]]:
    """label -> (pid, RSS in kB) for each root and its long-lived descendants (forkserver,
    zygote, resource tracker: `<root>/<kind>[pid]`), and `<root>/children`: the per-document
    sandbox children, summed (pid 0; their count is in the label's own entry
    `<root>/children#`)."""
    tree = parent_map()
    out: dict[str, tuple[int, int]] = {}
    for root, pid in roots.items():
        rss = read_rss_kb(pid)
        if rss is None:
            continue
        out[root] = (pid, rss)
        docs_rss, docs_n = 0, 0
        stack = [(child, pid, 1) for child in tree.get(pid, [])]
        kinds: dict[int, str] = {pid: "root"}
        while stack:
            child, parent, depth = stack.pop()
            line = cmdline(child)
            if "resource_tracker" in line:
                kind = "resource_tracker"
            elif "forkserver" in line and kinds.get(parent) == "root":
                kind = "forkserver"
            elif kinds.get(parent) == "forkserver":
                kind = "zygote"
            else:
                kind = "child"
            kinds[child] = kind
            child_rss = read_rss_kb(child)
            if child_rss is not None:
                if kind == "child":
                    docs_rss += child_rss
                    docs_n += 1
                else:
                    out[f"{root}/{kind}[{child}]"] = (child, child_rss)
            stack.extend((grandchild, child, depth + 1) for grandchild in tree.get(child, []))
        out[f"{root}/children"] = (0, docs_rss)
        out[f"{root}/children#"] = (0, docs_n)
    return out


# --- the database -----------------------------------------------------------------------------


def connect(url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(url, autocommit=True, connect_timeout=10)


def rows(conn: psycopg.Connection[Any], query: str, *params: Any) -> list[tuple[Any, ...]]:
    return conn.execute(query.encode(), params).fetchall()


def one(conn: psycopg.Connection[Any], query: str, *params: Any) -> Any:
    found = rows(conn, query, *params)
    return found[0][0] if found else None


@dataclass
class Seeds:
    """Back-dated rows: `expired` must be gone after retention, `live` must stay. Keys are
    tables; values the rows' ids (rollup keys for the analytics tables, object paths for files)."""

    expired: dict[str, list[Any]] = field(default_factory=lambda: defaultdict(list))
    live: dict[str, list[Any]] = field(default_factory=lambda: defaultdict(list))


def seed_expired(
    conn: psycopg.Connection[Any],
    storage: LocalStorage,
    settings: Settings,
    seeds: Seeds,
    wave: int,
) -> None:
    """One wave of back-dated rows for every table retention cleans, each just past its
    retention (expired) and just inside it (live), plus rows that never expire (an old active
    alert, an old document with a live job)."""
    user = str(uuid.uuid4())
    conn.execute(
        "insert into auth.users (id, email) values (%s, %s)", (user, f"seed{wave}@soak.test")
    )
    seeds.live["seed_users"].append(user)
    ev, hc, al = (
        settings.retention_events_days,
        settings.retention_health_checks_days,
        settings.retention_alerts_days,
    )
    jobs, rollup_days = settings.retention_jobs_days, settings.retention_rollups_days

    def days(n: float) -> str:
        return f"{n} days"

    def document(age_days: float, name: str, expired: bool) -> str:
        doc_id = str(uuid.uuid4())
        path, text = f"{user}/seed-{doc_id}.txt", f"{user}/text/{doc_id}.txt"
        storage.put(path, b"seeded soak document\n", "text/plain")
        storage.put(text, b"seeded soak document\n", "text/plain")
        conn.execute(
            "insert into documents (id, user_id, original_filename, content_type, size_bytes,"
            " sha256, storage_path, text_path, created_at, updated_at)"
            " values (%s, %s, %s, 'text/plain', 21, repeat('c', 64), %s, %s,"
            " now() - %s::interval, now() - %s::interval)",
            (doc_id, user, name, path, text, days(age_days), days(age_days)),
        )
        (seeds.expired if expired else seeds.live)["documents"].append(doc_id)
        (seeds.expired if expired else seeds.live)["files"].extend([path, text])
        return doc_id

    def job(doc_id: str, status: str, age_days: float, expired: bool) -> str:
        job_id = str(uuid.uuid4())
        conn.execute(
            "insert into processing_jobs (id, document_id, user_id, status, attempts,"
            " created_at, started_at, completed_at, updated_at, run_at, duration_ms)"
            " values (%s, %s, %s, %s, 1, now() - %s::interval, now() - %s::interval,"
            " now() - %s::interval, now() - %s::interval, now() - %s::interval, 10)",
            (job_id, doc_id, user, status, *([days(age_days + 0.01)] * 2), *([days(age_days)] * 3)),
        )
        (seeds.expired if expired else seeds.live)["processing_jobs"].append(job_id)
        return job_id

    if jobs > 2:
        old = jobs + 2
        gone = document(old, f"expired-{wave}.txt", expired=True)
        for status in ("completed", "failed", "cancelled"):
            job(gone, status, old, expired=True)
        document(old, f"expired-nojob-{wave}.txt", expired=True)
        kept = document(old, f"old-with-live-job-{wave}.txt", expired=False)
        job(kept, "completed", jobs - 2, expired=False)
        job(kept, "failed", old, expired=True)  # an expired job of a kept document goes
    recent = document(1, f"recent-{wave}.txt", expired=False)
    job(recent, "completed", 1, expired=False)

    def events(age_days: float, n: int, expired: bool) -> None:
        found = rows(
            conn,
            "insert into document_processing_events (user_id, event_type, created_at, details)"
            " select %s, 'upload_rejected', now() - %s::interval, '{\"soak_seed\": true}'"
            " from generate_series(1, %s) returning id",
            user,
            days(age_days),
            n,
        )
        (seeds.expired if expired else seeds.live)["document_processing_events"].extend(
            r[0] for r in found
        )

    if ev > 2:
        events(ev + 2, 50, expired=True)
        events(ev - 2, 5, expired=False)

    def health(age_days: float, n: int, expired: bool) -> None:
        found = rows(
            conn,
            "insert into service_health_checks (service_name, status, latency_ms, checked_at,"
            " created_at) select %s, 'healthy', 1, now() - %s::interval, now() - %s::interval"
            " from generate_series(1, %s) returning id",
            f"soak-seed-{wave}",
            days(age_days),
            days(age_days),
            n,
        )
        (seeds.expired if expired else seeds.live)["service_health_checks"].extend(
            r[0] for r in found
        )

    if hc > 2:
        health(hc + 2, 20, expired=True)
        health(hc - 2, 3, expired=False)

    def alert(status: str, age_days: float, expired: bool, alert_type: str) -> None:
        resolved = "now() - %s::interval" if status == "resolved" else "null"
        found = one(
            conn,
            "insert into alert_events (service_name, alert_type, status, message, created_at,"
            f" resolved_at) values (%s, %s, %s, 'seeded by the soak', now() - %s::interval,"
            f" {resolved}) returning id",
            f"soak-seed-{wave}",
            alert_type,
            status,
            days(age_days + 1),
            *([days(age_days)] if status == "resolved" else []),
        )
        (seeds.expired if expired else seeds.live)["alert_events"].append(found)

    if al > 2:
        alert("resolved", al + 2, expired=True, alert_type="service_down")
        alert("resolved", al + 3, expired=True, alert_type="recovery")
        alert("resolved", al - 2, expired=False, alert_type="service_degraded")
    alert("active", 400, expired=False, alert_type="service_down")  # never expires

    content = f"soak/seed-{wave}"
    daily_cutoffs = [(rollup_days + 2, True), (rollup_days - 2, False)] if rollup_days > 2 else []
    for grain, age, expired in [
        (300, 3, True),
        (300, 1, False),
        (3600, 9, True),
        (3600, 7, False),
        *[(86400, a, e) for a, e in daily_cutoffs],
    ]:
        start = one(
            conn,
            "select date_bin(make_interval(secs => %s), now() - %s::interval,"
            " timestamptz '2000-01-01')",
            grain,
            days(age),
        )
        conn.execute(
            "insert into analytics_rollups (grain, bucket_start, event_type, priority,"
            " content_type, events, duration_n, duration_sum)"
            " values (%s, %s, 'completed', 'normal', %s, 1, 1, 10)",
            (grain, start, content),
        )
        conn.execute(
            "insert into analytics_histograms (grain, bucket_start, metric, idx, n, total)"
            " values (%s, %s, %s, 0, 1, 10)",
            (grain, start, content),
        )
        conn.execute(
            "insert into analytics_stage_totals (grain, bucket_start, stage, n, total_ms)"
            " values (%s, %s, %s, 1, 10)",
            (grain, start, content),
        )
        (seeds.expired if expired else seeds.live)["analytics"].append(
            [grain, start.isoformat(), content]
        )


def storage_audit(conn: psycopg.Connection[Any], bucket: Path) -> dict[str, Any]:
    """Every file a document points at (upload, text, Markdown) is in storage, and every stored
    file is one a document points at or one queued for deletion (no leak)."""
    referenced = {
        str(path)
        for row in rows(conn, "select storage_path, text_path, markdown_path from documents")
        for path in row
        if path
    }
    queued = {str(r[0]) for r in rows(conn, "select object_path from storage_deletions")}
    stored = {
        str(path.relative_to(bucket))
        for path in bucket.rglob("*")
        if path.is_file() and not path.name.startswith(".upload-")
    }
    missing = sorted(referenced - stored)
    orphans = sorted(stored - referenced - queued)
    return {
        "referenced": len(referenced),
        "stored": len(stored),
        "queued_for_deletion": len(queued),
        "live_missing": len(missing),
        "live_missing_examples": missing[:10],
        "orphans": len(orphans),
        "orphan_examples": orphans[:10],
    }


def check_seeds(
    conn: psycopg.Connection[Any], storage: LocalStorage, seeds: Seeds
) -> dict[str, dict[str, int]]:
    """Per table: seeded expired rows still there, live seeded rows gone."""
    id_tables = {
        "documents": "uuid",
        "processing_jobs": "uuid",
        "document_processing_events": "bigint",
        "service_health_checks": "bigint",
        "alert_events": "bigint",
    }

    def present(table: str, ids: list[Any]) -> int:
        if not ids:
            return 0
        if table in id_tables:
            return int(
                one(
                    conn,
                    f"select count(*) from {table} where id = any(%s::{id_tables[table]}[])",
                    [str(i) for i in ids],
                )
            )
        if table == "files":
            return sum(storage.exists(path) for path in ids)
        if table == "analytics":
            total = 0
            for grain, start, key in ids:
                total += int(
                    one(
                        conn,
                        "select (select count(*) from analytics_rollups where grain = %s"
                        " and bucket_start = %s and content_type = %s)"
                        " + (select count(*) from analytics_histograms where grain = %s"
                        " and bucket_start = %s and metric = %s)"
                        " + (select count(*) from analytics_stage_totals where grain = %s"
                        " and bucket_start = %s and stage = %s)",
                        *([grain, start, key] * 3),
                    )
                )
            return total
        return 0

    multiplier = {"analytics": 3}
    out: dict[str, dict[str, int]] = {}
    for table in sorted(set(seeds.expired) | set(seeds.live)):
        if table == "seed_users":
            continue
        expired = seeds.expired.get(table, [])
        live = seeds.live.get(table, [])
        out[table] = {
            "expired_seeded": len(expired),
            "expired_left": present(table, expired),
            "live_seeded": len(live),
            "live_removed": len(live) * multiplier.get(table, 1) - present(table, live),
        }
    return out


# --- load ------------------------------------------------------------------------------------


@dataclass
class Answer:
    t: float  # seconds since the soak started, when the answer came
    latency_ms: float
    status: int  # 0: no answer (timeout, connection error)
    phase: str
    send_lag_ms: float = 0.0


@dataclass
class Run:
    """Everything the threads record, under one lock."""

    started: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)
    phase: str = "setup"
    uploads: list[Answer] = field(default_factory=list)
    analytics: list[Answer] = field(default_factory=list)
    # job id -> (kind, user index): every job a 202 told us about
    accepted: dict[str, tuple[str, int]] = field(default_factory=dict)
    recent: list[str] = field(default_factory=list)  # upload job ids, newest last
    actions: dict[str, dict[str, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int))
    )
    upload_codes: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    unanswered: int = 0
    samples: list[dict[str, Any]] = field(default_factory=list)

    def now(self) -> float:
        return time.monotonic() - self.started


class Client:
    """HTTP as the soak's users: one httpx client per thread."""

    def __init__(self, base: str, tokens: list[str], admin: str) -> None:
        self.base, self.tokens, self.admin = base, tokens, admin
        self._local = threading.local()
        self._all: list[httpx.Client] = []
        self._lock = threading.Lock()

    def http(self) -> httpx.Client:
        client: httpx.Client | None = getattr(self._local, "client", None)
        if client is None:
            client = httpx.Client(base_url=self.base, timeout=30.0)
            self._local.client = client
            with self._lock:
                self._all.append(client)
        return client

    def auth(self, user: int) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    def close(self) -> None:
        with self._lock:
            for client in self._all:
                client.close()


def upload(
    run: Run, api: Client, doc: soak_docs.Doc, user: int, priority: str, due: float | None
) -> str | None:
    sent = run.now()
    began = time.perf_counter()
    try:
        response = api.http().post(
            "/uploads",
            headers=api.auth(user),
            files={"file": (doc.name, doc.data, "application/octet-stream")},
            data={"priority": priority},
        )
        status = response.status_code
    except httpx.HTTPError:
        response, status = None, 0
    latency = (time.perf_counter() - began) * 1000
    job_id = None
    with run.lock:
        run.uploads.append(
            Answer(run.now(), latency, status, run.phase, (sent - due) * 1000 if due else 0.0)
        )
        run.upload_codes[str(status)] += 1
        if status == 0:
            run.unanswered += 1
        if status == 202 and response is not None:
            job_id = str(response.json()["job_id"])
            run.accepted[job_id] = ("warmup" if run.phase == "warmup" else "upload", user)
            run.recent.append(job_id)
            del run.recent[:-50]
    return job_id


def pick_doc(rng: random.Random, good: list[soak_docs.Doc], bad: list[soak_docs.Doc]) -> Any:
    return rng.choice(bad) if rng.random() < BAD_FRACTION else rng.choice(good)


def uploader(
    run: Run,
    api: Client,
    docs: list[soak_docs.Doc],
    rate: float,
    until: float,
    stop: threading.Event,
    pool: ThreadPoolExecutor,
) -> None:
    """Open loop: upload i is due at start + i / rate, whatever the answers' latency."""
    rng = random.Random(1)
    good = [d for d in docs if not d.bad]
    bad = [d for d in docs if d.bad]
    start = run.now()
    i = 0
    while not stop.is_set():
        due = start + i / rate
        if due >= until:
            return
        delay = due - run.now()
        if delay > 0 and stop.wait(delay):
            return
        user = i % len(api.tokens)
        pool.submit(upload, run, api, pick_doc(rng, good, bad), user, rng.choice(PRIORITIES), due)
        i += 1


def actor(
    run: Run,
    api: Client,
    url: str,
    rate: float,
    until: float,
    stop: threading.Event,
    users: list[str],
) -> None:
    """About one action per 1 / (rate * ACTION_FRACTION) s, in turn: cancel the newest upload,
    retry a failed job, reanalyze a completed upload's document."""
    every = 1 / (rate * ACTION_FRACTION)
    index_of = {u: i for i, u in enumerate(users)}
    retried: set[str] = set()
    reanalyzed: set[str] = set()
    turn = 0
    with connect(url) as conn:
        while not stop.wait(every) and run.now() < until:
            kind = ("cancel", "retry", "reanalyze")[turn % 3]
            turn += 1
            try:
                if kind == "cancel":
                    # the newest job still active (pending: 200, processing: 202), else the
                    # newest upload (409 not_cancellable)
                    found = rows(
                        conn,
                        "select id, user_id from processing_jobs"
                        " where status in ('pending', 'processing') and user_id = any(%s::uuid[])"
                        " order by created_at desc limit 1",
                        users,
                    )
                    with run.lock:
                        newest = run.recent[-1] if run.recent else None
                        if found:
                            job_id, owner = str(found[0][0]), index_of[str(found[0][1])]
                        elif newest is not None:
                            job_id, owner = newest, run.accepted[newest][1]
                        else:
                            continue
                    response = api.http().post(f"/jobs/{job_id}/cancel", headers=api.auth(owner))
                elif kind == "retry":
                    found = rows(
                        conn,
                        "select id, user_id from processing_jobs where status = 'failed'"
                        " and user_id = any(%s::uuid[]) and id <> all(%s::uuid[])"
                        " order by completed_at desc limit 1",
                        users,
                        list(retried),
                    )
                    if not found:
                        kind = "reanalyze"
                    else:
                        job_id, owner = str(found[0][0]), index_of[str(found[0][1])]
                        retried.add(job_id)
                        response = api.http().post(f"/jobs/{job_id}/retry", headers=api.auth(owner))
                if kind == "reanalyze":
                    found = rows(
                        conn,
                        "select document_id, user_id from processing_jobs"
                        " where status = 'completed' and source = 'upload'"
                        " and user_id = any(%s::uuid[]) and document_id <> all(%s::uuid[])"
                        " order by completed_at desc limit 1",
                        users,
                        list(reanalyzed),
                    )
                    if not found:
                        continue
                    doc_id, owner = str(found[0][0]), index_of[str(found[0][1])]
                    reanalyzed.add(doc_id)
                    response = api.http().post(
                        f"/documents/{doc_id}/reanalyze", headers=api.auth(owner), json={}
                    )
            except (httpx.HTTPError, psycopg.Error):
                with run.lock:
                    run.actions[kind]["error"] += 1
                continue
            with run.lock:
                run.actions[kind][str(response.status_code)] += 1
                if kind in ("retry", "reanalyze") and response.status_code == 202:
                    run.accepted[str(response.json()["job_id"])] = (kind, owner)


def analytics_reader(run: Run, api: Client, stop: threading.Event) -> None:
    while not stop.wait(ANALYTICS_EVERY):
        began = time.perf_counter()
        try:
            status = (
                api.http()
                .get(
                    "/admin/analytics",
                    params={"window": "1h"},
                    headers={"Authorization": f"Bearer {api.admin}"},
                )
                .status_code
            )
        except httpx.HTTPError:
            status = 0
        latency = (time.perf_counter() - began) * 1000
        with run.lock:
            run.analytics.append(Answer(run.now(), latency, status, run.phase))


# --- sampling --------------------------------------------------------------------------------


def sampler(run: Run, url: str, roots: dict[str, int], stop: threading.Event) -> None:
    """A sample every SAMPLE_EVERY s (the first at once)."""
    with connect(url) as conn:
        last_t, last_db = run.now(), one(conn, "select now()")
        while True:
            try:
                sample = take_sample(run, conn, roots, last_t, last_db)
                last_t, last_db = sample["t"], sample.pop("_db_now")
                with run.lock:
                    run.samples.append(sample)
            except psycopg.Error as exc:
                log(f"sample failed: {exc}")
                with contextlib.suppress(psycopg.Error):
                    conn.close()
                conn = connect(url)
            if stop.wait(SAMPLE_EVERY):
                return


def take_sample(
    run: Run, conn: psycopg.Connection[Any], roots: dict[str, int], last_t: float, last_db: Any
) -> dict[str, Any]:
    t = run.now()
    with run.lock:
        phase = run.phase
        window = [a for a in run.uploads if last_t < a.t <= t and a.status]
        reads = [a for a in run.analytics if last_t < a.t <= t]
    latencies = [a.latency_ms for a in window]
    ready, pending, processing, oldest, db_now = rows(
        conn,
        "select count(*) filter (where status = 'pending' and run_at <= now()),"
        " count(*) filter (where status = 'pending'),"
        " count(*) filter (where status = 'processing'),"
        " coalesce(extract(epoch from now() - min(run_at)"
        "   filter (where status = 'pending' and run_at <= now())), 0)::float8,"
        " now() from processing_jobs",
    )[0]
    completed, failed, uploads = rows(
        conn,
        "select count(*) filter (where event_type = 'completed'),"
        " count(*) filter (where event_type = 'failed'),"
        " count(*) filter (where event_type = 'upload_started')"
        " from document_processing_events where created_at > %s and created_at <= %s",
        last_db,
        db_now,
    )[0]
    elapsed = max((db_now - last_db).total_seconds(), 1e-9)
    # queue wait of the first attempts claimed in the window: claim time - creation time
    wait_p50, wait_p99 = rows(
        conn,
        "select percentile_cont(0.5) within group (order by w),"
        " percentile_cont(0.99) within group (order by w) from ("
        " select extract(epoch from e.created_at - j.created_at)::float8 as w"
        " from document_processing_events e join processing_jobs j on j.id = e.job_id"
        " where e.event_type = 'processing_started' and e.details ->> 'attempt' = '1'"
        " and e.created_at > %s and e.created_at <= %s) x",
        last_db,
        db_now,
    )[0]
    total, active, idle_tx = rows(
        conn,
        "select count(*), count(*) filter (where state = 'active'),"
        " count(*) filter (where state like 'idle in transaction%%')"
        " from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()",
    )[0]
    sizes = rows(
        conn,
        "select c.relname, pg_total_relation_size(c.oid), pg_indexes_size(c.oid),"
        " pg_relation_size(c.oid) from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = 'public' and c.relkind = 'r' and c.relname = any(%s)",
        list(TABLES),
    )
    tree = process_tree(roots)
    return {
        "t": round(t, 2),
        "t_from": round(last_t, 2),  # the window this sample's rates and percentiles cover
        "phase": phase,
        "_db_now": db_now,
        "load_avg_1m": os.getloadavg()[0],
        "intake_n": len(latencies),
        "intake_p50_ms": sv.percentile(latencies, 50),
        "intake_p99_ms": sv.percentile(latencies, 99),
        "intake_max_ms": max(latencies) if latencies else None,
        "queue_ready": ready,
        "queue_pending": pending,
        "queue_processing": processing,
        "oldest_pending_age_s": round(oldest, 3),
        "queue_wait_p50_s": wait_p50,
        "queue_wait_p99_s": wait_p99,
        "completions_per_s": completed / elapsed,
        "failures_per_s": failed / elapsed,
        "uploads_per_s": uploads / elapsed,
        "analytics_reads": len(reads),
        "analytics_p50_ms": sv.percentile([a.latency_ms for a in reads], 50),
        "analytics_errors": sum(1 for a in reads if a.status != 200),
        "rss_kb": {k: v[1] for k, v in tree.items() if not k.endswith("#")},
        "rss_mb": {
            k: round(v[1] / 1024, 1)
            for k, v in tree.items()
            if not k.endswith("#") and not k.endswith("/children")
        },
        "sandbox_children": {k[:-1]: v[1] for k, v in tree.items() if k.endswith("#")},
        "pg_connections": total,
        "pg_active": active,
        "pg_idle_in_transaction": idle_tx,
        "table_bytes": {
            name: {"total": tot, "indexes": idx, "heap": heap} for name, tot, idx, heap in sizes
        },
        "table_mb": {name: round(tot / 1048576, 2) for name, tot, _, _ in sizes},
    }


# --- checks ----------------------------------------------------------------------------------


def wait_for(condition: Callable[[], bool], timeout: float, every: float = 1.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return condition()


def active_jobs(conn: psycopg.Connection[Any], users: list[str]) -> int:
    return int(
        one(
            conn,
            "select count(*) from processing_jobs where status in ('pending', 'processing')"
            " and user_id = any(%s::uuid[])",
            users,
        )
    )


def jepsen(
    run: Run, conn: psycopg.Connection[Any], api: Client, users: list[str]
) -> dict[str, Any]:
    """Every accepted job terminal, none completed twice, every event sequence valid, and the
    API's answer the same as the database's."""
    with run.lock:
        accepted = dict(run.accepted)
        unanswered = run.unanswered
    jobs = {
        str(r[0]): (str(r[1]), int(r[2]))
        for r in rows(
            conn,
            "select id, status, attempts from processing_jobs where user_id = any(%s::uuid[])",
            users,
        )
    }
    events: dict[str, list[tuple[str, int | None]]] = defaultdict(list)
    for job_id, event_type, attempt in rows(
        conn,
        "select job_id, event_type, (details ->> 'attempt')::int from document_processing_events"
        " where user_id = any(%s::uuid[]) and job_id is not null order by id",
        users,
    ):
        events[str(job_id)].append((str(event_type), attempt))

    missing = [j for j in accepted if j not in jobs]
    not_terminal = [j for j, (status, _) in jobs.items() if status not in sv.TERMINAL]
    unaccounted = [j for j in jobs if j not in accepted]
    duplicated = [j for j, evs in events.items() if sum(1 for e, _ in evs if e in sv.TERMINAL) > 1]
    stale = [
        j
        for j, evs in events.items()
        if j in jobs and any(e == "completed" and a is not None and a != jobs[j][1] for e, a in evs)
    ]
    invalid: dict[str, list[str]] = {}
    for job_id in set(jobs) | set(events):
        problems = sv.check_sequence(
            [e for e, _ in events.get(job_id, [])], jobs.get(job_id, (None, 0))[0]
        )
        if problems:
            invalid[job_id] = problems

    # The API's view of a sample (all retry/reanalyze jobs, up to 1,000 uploads)
    rng = random.Random(5)
    sample = [j for j, (kind, _) in accepted.items() if kind in ("retry", "reanalyze")]
    uploads = [j for j, (kind, _) in accepted.items() if kind in ("upload", "warmup")]
    sample += rng.sample(uploads, min(1000, len(uploads)))

    def api_status(job_id: str) -> tuple[str, str | None]:
        try:
            response = api.http().get(f"/jobs/{job_id}", headers=api.auth(accepted[job_id][1]))
        except httpx.HTTPError:
            return job_id, None
        return job_id, response.json().get("status") if response.status_code == 200 else None

    with ThreadPoolExecutor(8) as pool:
        api_answers = dict(pool.map(api_status, sample))
    api_mismatch = [
        j for j, status in api_answers.items() if status != jobs.get(j, ("missing", 0))[0]
    ]
    statuses: dict[str, int] = defaultdict(int)
    for status, _ in jobs.values():
        statuses[status] += 1
    kinds: dict[str, int] = defaultdict(int)
    for kind, _ in accepted.values():
        kinds[kind] += 1
    return {
        "accepted": len(accepted),
        "accepted_by_kind": dict(kinds),
        "jobs_in_database": len(jobs),
        "statuses": dict(statuses),
        "lost": len(missing) + len(not_terminal),
        "missing": missing[:20],
        "not_terminal": not_terminal[:20],
        "unaccounted": len(unaccounted),
        "unanswered_uploads": unanswered,
        # more jobs than 202s plus the uploads that got no answer: a request created two
        "duplicated_creations": max(0, len(unaccounted) - unanswered),
        "duplicated": len(duplicated),
        "duplicated_ids": duplicated[:20],
        "stale_completions": len(stale),
        "invalid_sequences": len(invalid),
        "invalid_examples": {
            j: {"problems": p, "events": [e for e, _ in events.get(j, [])]}
            for j, p in list(invalid.items())[:20]
        },
        "events_checked": sum(len(v) for v in events.values()),
        "api_checked": len(api_answers),
        "api_mismatch": len(api_mismatch),
        "api_mismatch_ids": api_mismatch[:20],
    }


def retention_runs(log_file: Path) -> list[dict[str, Any]]:
    """The serve log's `retention run` lines (not dry runs)."""
    runs = []
    with contextlib.suppress(OSError), log_file.open() as lines:
        for line in lines:
            if '"retention run"' not in line:
                continue
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if not entry.get("dry_run"):
                    runs.append(
                        {
                            "time": entry.get("time"),
                            "finished": entry.get("finished"),
                            "counts": entry.get("counts"),
                        }
                    )
    return runs


# --- the run -----------------------------------------------------------------------------------


def warmup(
    run: Run, api: Client, docs: list[soak_docs.Doc], conn: Any, n: int, timeout: float
) -> dict[str, Any]:
    """Upload `n` good documents as fast as 8 threads can, and time them until all are
    finished: capacity = n / that time (intake included)."""
    rng = random.Random(2)
    good = [d for d in docs if not d.bad]
    run.phase = "warmup"
    began = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        ids = list(
            pool.map(
                lambda i: upload(run, api, rng.choice(good), i % len(api.tokens), "normal", None),
                range(n),
            )
        )
    accepted = [i for i in ids if i]
    if not accepted:
        raise SetupError("warm-up: no upload was accepted (see the serve log)")

    def done() -> bool:
        left = one(
            conn,
            "select count(*) from processing_jobs where id = any(%s::uuid[])"
            " and status in ('pending', 'processing')",
            accepted,
        )
        return int(left) == 0

    if not wait_for(done, timeout, every=0.25):
        raise SetupError(f"warm-up: {n} jobs not finished within {timeout:g} s")
    elapsed = time.monotonic() - began
    return {
        "uploads": n,
        "accepted": len(accepted),
        "seconds": round(elapsed, 2),
        "capacity_per_s": round(len(accepted) / elapsed, 3),
    }


def soak(args: argparse.Namespace) -> int:
    settings = load_settings()
    if settings.database_url:
        raise SetupError("soak.py runs on the embedded cluster only (DATABASE_URL is set)")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = Path(args.out or f"/tmp/docflow-soak/{stamp}").resolve()  # noqa: S108
    (out / "logs").mkdir(parents=True, exist_ok=True)
    storage_dir = out / "storage"
    log(f"soak {args.minutes:g} min; report, chart and logs in {out}")

    cluster = localdb.cluster_for(settings)
    if localdb.start(cluster):
        log(f"started the local cluster on port {cluster.port} (left running afterwards)")
    admin_url, url = cluster.url(DB), cluster.service_url(DB)
    localdb.recreate_database(cluster.url(), DB)
    migrate.migrate(url)
    storage = LocalStorage(storage_dir, settings.storage_bucket)

    docs = soak_docs.generate(out / "docs")
    log(
        f"{len(docs)} documents ({sum(d.bad for d in docs)} bad, "
        f"{sum(len(d.data) for d in docs) / 1e6:.1f} MB) in {out / 'docs'}"
    )
    users = [str(uuid.uuid4()) for _ in range(args.users)]
    admin_id = str(uuid.uuid4())
    ttl = int(args.minutes * 60 + 7200)
    for i, user in enumerate(users):
        localdb.ensure_auth_user(admin_url, user, f"soak{i}@soak.test", False)
    localdb.ensure_auth_user(admin_url, admin_id, "admin@soak.test", True)
    tokens = [mint_token(settings, u, ttl_seconds=ttl) for u in users]
    admin_token = mint_token(settings, admin_id, admin=True, ttl_seconds=ttl)

    seeds = Seeds()
    monitor = connect(admin_url)
    seed_expired(monitor, storage, settings, seeds, wave=1)
    log(
        "seeded back-dated rows: "
        + ", ".join(f"{t} {len(v)}" for t, v in sorted(seeds.expired.items()))
        + " expired"
    )

    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DB_TRANSPORT": "postgres",
        "STORAGE_BACKEND": "local",
        "STORAGE_DIR": str(storage_dir),
        "RETENTION_DELETE_DOCUMENTS": "true",
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }
    procs = Processes(out / "logs")
    run = Run()
    stop = threading.Event()
    pool = ThreadPoolExecutor(32, thread_name_prefix="upload")
    api = Client(f"http://127.0.0.1:{port}", tokens, admin_token)
    report: dict[str, Any] = {
        "config": {
            "minutes": args.minutes,
            "users": args.users,
            "workers": args.workers,
            "rate_set": args.rate,
            "bad_fraction": BAD_FRACTION,
            "action_fraction": ACTION_FRACTION,
            "sample_every_s": SAMPLE_EVERY,
            "probe_every_s": PROBE_EVERY,
            "retention_every_s": RETENTION_EVERY,
            "cpus": os.cpu_count(),
            "database": DB,
            "out": str(out),
        }
    }
    try:
        server = procs.start(
            "serve",
            [
                "serve",
                "--port",
                str(port),
                "--schedules",
                "--probe-every",
                str(PROBE_EVERY),
                "--retention-every",
                str(RETENTION_EVERY),
            ],
            env,
        )
        served_at = run.now()
        workers = [
            procs.start(f"worker-{i + 1}", ["worker"], {**env, "LOG_LEVEL": "WARNING"})
            for i in range(args.workers)
        ]

        def serving() -> bool:
            if server.poll() is not None:
                raise SetupError(f"docflow serve exited ({server.returncode}): see {out}/logs")
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(f"{api.base}/__soak__", timeout=2).status_code == 404
            return False

        if not wait_for(serving, 60, every=0.25):
            raise SetupError(f"docflow serve did not answer within 60 s: see {out}/logs")
        roots = {"server": server.pid, **{f"worker-{i + 1}": w.pid for i, w in enumerate(workers)}}
        threads = [
            threading.Thread(target=sampler, args=(run, admin_url, roots, stop), daemon=True),
            threading.Thread(target=analytics_reader, args=(run, api, stop), daemon=True),
        ]
        for thread in threads:
            thread.start()
        log(f"serve on :{port} (pid {server.pid}), workers {[w.pid for w in workers]}")

        report["warmup"] = warmup(run, api, docs, monitor, args.warmup, timeout=600)
        capacity = report["warmup"]["capacity_per_s"]
        rate = args.rate or capacity / 2
        if args.rate is None and settings.upload_rate_limit_per_minute:
            # stay under the users' rate limit (uploads, retries and reanalyzes count)
            rate = min(rate, args.users * settings.upload_rate_limit_per_minute / 60 * 0.8)
        report["config"]["rate"] = rate
        report["config"]["rate_is_default"] = args.rate is None
        log(f"warm-up: capacity {capacity:.2f} jobs/s; steady rate {rate:.2f} uploads/s")

        steady_start = run.now()
        steady_end = steady_start + args.minutes * 60
        # A retention run falls inside the steady phase: seed a second wave for it to delete
        # under load (the first wave went at serve's start).
        next_retention = served_at + RETENTION_EVERY * (
            1 + int((steady_start - served_at) // RETENTION_EVERY)
        )
        if next_retention < steady_end - 30:
            seed_expired(monitor, storage, settings, seeds, wave=2)
            log(f"seeded a second wave for the retention run at +{next_retention:.0f} s")
        run.phase = "steady"
        load = [
            threading.Thread(
                target=uploader, args=(run, api, docs, rate, steady_end, stop, pool), daemon=True
            ),
            threading.Thread(
                target=actor, args=(run, api, admin_url, rate, steady_end, stop, users), daemon=True
            ),
        ]
        for thread in load:
            thread.start()
        while run.now() < steady_end:
            time.sleep(min(30.0, max(0.1, steady_end - run.now())))
            with run.lock:
                last = run.samples[-1] if run.samples else {}
            log(
                f"+{(run.now() - steady_start) / 60:4.1f} min  accepted {len(run.accepted)}  "
                f"depth {last.get('queue_ready')}  oldest {last.get('oldest_pending_age_s')} s  "
                f"p99 {last.get('intake_p99_ms') or 0:.0f} ms  "
                f"done/s {last.get('completions_per_s', 0):.2f}  load {os.getloadavg()[0]:.1f}"
            )
        for thread in load:
            thread.join(60)
        pool.shutdown(wait=True)
        steady_done = run.now()
        run.phase = "drain"
        log("uploads stopped; draining the queue")
        drained = wait_for(lambda: active_jobs(monitor, users) == 0, args.drain_timeout)
        drain_end = run.now()
        log(f"queue {'drained' if drained else 'NOT drained'} in {drain_end - steady_done:.0f} s")
        run.phase = "checks"
        time.sleep(SAMPLE_EVERY + 1)  # one sample of the idle system
        report["phases"] = {
            "served_at_s": served_at,
            "steady_start_s": steady_start,
            "steady_end_s": steady_done,
            "drain_end_s": drain_end,
            "drained": drained,
        }
        report["integrity"] = jepsen(run, monitor, api, users)
        report["retention"] = {
            "runs": retention_runs(out / "logs" / "serve.log"),
            "seeds": check_seeds(monitor, storage, seeds),
            "files": storage_audit(monitor, storage.root),
            "seeded_ids": {"expired": seeds.expired, "live": seeds.live},
        }
        report["probes"] = int(
            one(
                monitor,
                "select count(distinct checked_at) from service_health_checks"
                " where service_name = 'database'",
            )
        )
    finally:
        stop.set()
        pool.shutdown(wait=False, cancel_futures=True)
        run.phase = "stopped"
        codes = procs.stop_all()
        api.close()
        with contextlib.suppress(psycopg.Error):
            monitor.close()
        log(f"stopped: {codes}")
        if not args.keep_storage:  # about 100 MB a minute at 20 uploads/s
            shutil.rmtree(storage_dir, ignore_errors=True)
    report["exit_codes"] = codes
    return finish(report, run, out, args)


def finish(report: dict[str, Any], run: Run, out: Path, args: argparse.Namespace) -> int:
    phases = report["phases"]
    # the samples whose whole window lies in the steady phase (the first one may not)
    steady = [
        s
        for s in run.samples
        if s["t_from"] >= phases["steady_start_s"] - 0.5 and s["t"] <= phases["steady_end_s"] + 1
    ]
    report["samples"] = run.samples
    rate = report["config"]["rate"]

    # Intake over the steady phase
    answered = [a for a in run.uploads if a.phase == "steady" and a.status]
    latencies = [a.latency_ms for a in answered]
    accepted_lat = [a.latency_ms for a in answered if a.status == 202]
    intake: dict[str, Any] = {
        "uploads": len([a for a in run.uploads if a.phase == "steady"]),
        "answered": len(answered),
        "p50_ms": sv.percentile(latencies, 50),
        "p99_ms": sv.percentile(latencies, 99),
        "max_ms": max(latencies) if latencies else None,
        "accepted_p50_ms": sv.percentile(accepted_lat, 50),
        "accepted_p99_ms": sv.percentile(accepted_lat, 99),
        "send_lag_p99_ms": sv.percentile([a.send_lag_ms for a in answered], 99),
        "codes": dict(run.upload_codes),
        "actions": {k: dict(v) for k, v in run.actions.items()},
        "analytics_reads": len(run.analytics),
        "analytics_p50_ms": sv.percentile([a.latency_ms for a in run.analytics], 50),
        "analytics_p99_ms": sv.percentile([a.latency_ms for a in run.analytics], 99),
        "analytics_errors": sum(1 for a in run.analytics if a.status != 200),
    }
    report["intake"] = intake

    # RSS per long-lived process (server, workers, forkservers, zygotes), from the baseline
    span = phases["steady_end_s"] - phases["steady_start_s"]
    baseline_at = phases["steady_start_s"] + min(BASELINE_AFTER, span / 2)
    names = {k for s in steady for k in s["rss_kb"] if not k.endswith("/children")}
    growths: dict[str, sv.Growth] = {}
    for name in sorted(names):
        growth = sv.rss_growth(
            [(s["t"], s["rss_kb"][name] * 1024) for s in steady if name in s["rss_kb"]],
            baseline_at,
        )
        if growth is not None:
            growths[name] = growth
    first = steady[0]["rss_kb"] if steady else {}
    report["rss"] = {
        name: {
            "start_mb": round(first.get(name, 0) / 1024, 1) if name in first else None,
            "baseline_mb": round(g.baseline / 1048576, 1),
            "end_mb": round(g.end / 1048576, 1),
            "growth_percent": round(g.percent, 2),
        }
        for name, g in growths.items()
    }
    report["rss_baseline_at_s"] = baseline_at

    times = [s["t"] for s in steady]
    queue_goal, queue_figures = sv.queue_goal(
        times,
        [s["oldest_pending_age_s"] for s in steady],
        [s["queue_ready"] for s in steady],
        rate,
    )
    report["queue"] = {
        **queue_figures,
        "max_depth": max((s["queue_ready"] for s in steady), default=None),
        "max_oldest_age_s": max((s["oldest_pending_age_s"] for s in steady), default=None),
        "queue_wait_p99_s_max": max(
            (s["queue_wait_p99_s"] for s in steady if s["queue_wait_p99_s"] is not None),
            default=None,
        ),
        "completions_per_s_mean": statistics.fmean(s["completions_per_s"] for s in steady)
        if steady
        else None,
        "pg_connections_max": max((s["pg_connections"] for s in run.samples), default=None),
        "load_avg_1m_mean": statistics.fmean(s["load_avg_1m"] for s in steady) if steady else None,
    }
    integrity = report["integrity"]
    seeds = report["retention"]["seeds"]
    files = report["retention"]["files"]
    goals = [
        sv.rss_goal(growths),
        queue_goal,
        sv.intake_goal(intake["p99_ms"], enforced=report["config"]["rate_is_default"]),
        sv.integrity_goal(
            integrity["lost"],
            integrity["duplicated"] + integrity["duplicated_creations"],
            integrity["invalid_sequences"],
            integrity["stale_completions"],
        ),
        sv.retention_goal(
            sum(v["expired_left"] for v in seeds.values()),
            sum(v["live_removed"] for v in seeds.values()) + files["live_missing"],
            len(report["retention"]["runs"]),
        ),
    ]
    if integrity["api_mismatch"]:
        goals.append(sv.Goal("the API agrees", False, f"{integrity['api_mismatch']} jobs differ"))
    if not phases["drained"]:
        goals.append(sv.Goal("the queue drained", False, f"not within {args.drain_timeout:g} s"))
    ok = sv.passed(goals)
    report["verdict"] = {"passed": ok, "goals": [asdict(g) for g in goals]}

    path = out / "soak.json"
    path.write_text(json.dumps(report, indent=1, default=str))
    chart: Path | None = out / "soak.png"
    if chart is not None and soak_chart.available():
        soak_chart.draw(report, chart)
    else:
        chart = None
        print(soak_chart.INSTALL_HINT)

    print()
    print(
        f"docflow soak: {args.minutes:g} min steady at {rate:.2f} uploads/s "
        f"(capacity {report['warmup']['capacity_per_s']:.2f} jobs/s), {args.users} users, "
        f"{report['config']['workers']} workers, {os.cpu_count()} CPUs, "
        f"load avg {report['queue']['load_avg_1m_mean'] or 0:.1f}"
    )
    print(
        f"intake: {intake['answered']} uploads, p50 {intake['p50_ms'] or 0:.0f} ms, "
        f"p99 {intake['p99_ms'] or 0:.0f} ms, codes {intake['codes']}; "
        f"analytics reads {intake['analytics_reads']} (p50 {intake['analytics_p50_ms'] or 0:.0f} "
        f"ms, {intake['analytics_errors']} errors); actions {intake['actions']}"
    )
    print(
        f"queue: max depth {report['queue']['max_depth']}, max oldest-pending "
        f"{report['queue']['max_oldest_age_s']} s, worst 10-s queue-wait p99 "
        f"{report['queue']['queue_wait_p99_s_max'] or 0:.2f} s, completions "
        f"{report['queue']['completions_per_s_mean'] or 0:.2f}/s, "
        f"PostgreSQL connections max {report['queue']['pg_connections_max']}"
    )
    for name, figures in report["rss"].items():
        print(
            f"RSS {name:<34} start {figures['start_mb']} MB, baseline "
            f"{figures['baseline_mb']} MB, end {figures['end_mb']} MB "
            f"({figures['growth_percent']:+.1f} %)"
        )
    print(
        f"jobs: {integrity['accepted']} accepted {integrity['accepted_by_kind']}, "
        f"statuses {integrity['statuses']}, {integrity['events_checked']} events checked, "
        f"{integrity['api_checked']} checked through the API"
    )
    print(
        f"retention: {len(report['retention']['runs'])} run(s); seeded rows per table "
        f"(expired left / live removed): "
        + ", ".join(f"{t} {v['expired_left']}/{v['live_removed']}" for t, v in seeds.items())
    )
    print(
        f"files: {files['referenced']} referenced by documents, {files['live_missing']} of them "
        f"missing; {files['stored']} stored, {files['queued_for_deletion']} queued for deletion, "
        f"{files['orphans']} orphans (neither referenced nor queued)"
    )
    for goal in goals:
        mark = "PASS" if goal.ok else ("FAIL" if goal.enforced else "info")
        print(f"  [{mark}] {goal.name}: {goal.detail}")
    print(f"\n{'PASS' if ok else 'FAIL'}  report {path}" + (f", chart {chart}" if chart else ""))
    return 0 if ok else 1


def _sigterm(*_: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--minutes", type=float, default=15.0, help="steady phase (default 15)")
    parser.add_argument(
        "--rate", type=float, help="uploads per second (default: half the warm-up's capacity)"
    )
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=150, help="uploads of the warm-up burst")
    parser.add_argument("--drain-timeout", type=float, default=300.0)
    parser.add_argument("--out", help="directory for the report (default /tmp/docflow-soak/<ts>)")
    parser.add_argument(
        "--keep-storage",
        action="store_true",
        help="keep the run's stored files (deleted after the checks by default)",
    )
    args = parser.parse_args()
    if args.rate is not None and args.rate <= 0:
        parser.error("--rate must be positive")
    signal.signal(signal.SIGTERM, _sigterm)
    try:
        return soak(args)
    except SetupError as exc:
        print(f"soak: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("soak: interrupted; the server and workers were stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
