"""The queue benchmark (`make bench`).

On the local PostgreSQL (a fresh `docflow_bench` database, real migrations), through the queue
module, not the HTTP limiter:

1. bulk enqueue: `shared.jobs.queue.enqueue_jobs` in chunks, jobs/s (each job also writes its
   `enqueued` event);
2. no-op jobs end to end: W worker processes, each the real engine (`shared.jobs.worker.Worker`:
   batch claim with leases, thread pool, heartbeats, fenced batch completion, lifecycle events
   `processing_started` and `completed`), jobs/s from the start to the last completion;
3. for comparison, on the same server: the raw-SQL ceiling (a minimal claim + complete table,
   batch sizes 1 and 10, same W) and Procrastinate 3.x (async no-op task, concurrency 10,
   wait=False; installed into .local/bench/procrastinate-venv on first use).

Usage: python bench/queue_bench.py [--jobs N] [--workers W] [--batch B] [--concurrency C]
       [--migrations-before VERSION]

`--migrations-before 20261207170000` migrates only the migrations older than that version: the
same code against an earlier schema, for a before/after comparison of a schema change.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from shared.dev import localdb, migrate  # noqa: E402
from shared.platform.config import load_settings  # noqa: E402

DB = "docflow_bench"
PROC_DB = "docflow_bench_procrastinate"


def migrate_db(admin_url: str, url: str, before: str | None) -> None:
    """A fresh `DB` with every migration, or only those older than `before`."""
    localdb.recreate_database(admin_url, DB)
    if before is None:
        migrate.migrate(url)
        return
    with tempfile.TemporaryDirectory() as tmp:
        for path in sorted(migrate.MIGRATIONS_DIR.glob("*.sql")):
            if path.name[:14] < before:
                shutil.copy(path, tmp)
        migrate.migrate(url, Path(tmp))


def seed_documents(url: str, n: int) -> list[str]:
    user_id = str(uuid.uuid4())
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("insert into auth.users (id) values (%s)", (user_id,))
        rows = conn.execute(
            "insert into public.documents"
            " (user_id, original_filename, content_type, size_bytes, sha256, storage_path)"
            " select %s, 'bench.txt', 'text/plain', 1, repeat('a', 64),"
            " %s || '/' || g::text from generate_series(1, %s) g returning id",
            (user_id, user_id, n),
        ).fetchall()
    return [str(r[0]) for r in rows]


def bench_enqueue(url: str, document_ids: list[str], chunk: int = 2000) -> float:
    from shared.jobs.queue import enqueue_jobs
    from shared.platform.client import Database, PostgresTransport

    db = Database(PostgresTransport(url, load_settings()))
    started = time.perf_counter()
    for i in range(0, len(document_ids), chunk):
        enqueue_jobs(db, [{"document_id": d} for d in document_ids[i : i + chunk]])
    elapsed = time.perf_counter() - started
    db.close()
    return len(document_ids) / elapsed


def _noop(job: dict[str, Any], ctx: Any) -> dict[str, Any]:
    return {}


def _docflow_worker(url: str, batch: int, concurrency: int, barrier: Any, out: Any) -> None:
    os.environ["DATABASE_URL"] = url
    from shared.jobs.worker import Worker
    from shared.platform.client import Database, PostgresTransport

    settings = load_settings()
    db = Database(PostgresTransport(url, settings))
    worker = Worker(db, settings, _noop, concurrency=concurrency, batch_size=batch)
    db.call("recover_stalled_jobs")  # warm the pool and the plan cache
    barrier.wait()
    report = worker.drain(max_jobs=10**9, max_seconds=3600)
    out.put((time.time(), report.as_dict()))
    db.close()


def bench_process(url: str, n: int, workers: int, batch: int, concurrency: int) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(workers + 1), ctx.Queue()
    procs = [
        ctx.Process(target=_docflow_worker, args=(url, batch, concurrency, barrier, out))
        for _ in range(workers)
    ]
    for p in procs:
        p.start()
    barrier.wait()
    started = time.time()
    results = [out.get(timeout=3600) for _ in procs]
    for p in procs:
        p.join()
    finished = max(r[0] for r in results)
    with psycopg.connect(url) as conn:
        done = conn.execute(
            "select count(*) from processing_jobs where status = 'completed'"
        ).fetchone()
        events = conn.execute(
            "select count(*) from document_processing_events"
            " where event_type in ('processing_started', 'completed')"
        ).fetchone()
    completed = done[0] if done else 0
    return {
        "jobs": n,
        "completed": completed,
        "lifecycle_events": events[0] if events else 0,
        "claimed": sum(r[1]["claimed"] for r in results),
        "jobs_per_s": completed / (finished - started),
    }


RAW_SETUP = """
drop table if exists raw_jobs;
create table raw_jobs (
  id bigint generated always as identity primary key,
  status text not null default 'pending',
  locked_by text
);
create index raw_jobs_pending on raw_jobs (id) where status = 'pending';
"""


def _raw_worker(url: str, batch: int, barrier: Any, out: Any) -> None:
    wid = uuid.uuid4().hex
    with psycopg.connect(url, autocommit=True) as conn:
        barrier.wait()
        done = 0
        while True:
            ids = [
                r[0]
                for r in conn.execute(
                    "update raw_jobs r set status = 'running', locked_by = %s"
                    " from (select id from raw_jobs where status = 'pending'"
                    " order by id limit %s for update skip locked) c"
                    " where r.id = c.id returning r.id",
                    (wid, batch),
                    prepare=True,
                ).fetchall()
            ]
            if not ids:
                break
            conn.execute(
                "update raw_jobs set status = 'done' where id = any(%s) and locked_by = %s",
                (ids, wid),
                prepare=True,
            )
            done += len(ids)
    out.put((time.time(), done))


def bench_raw(url: str, n: int, workers: int, batch: int) -> float:
    with psycopg.connect(url, autocommit=True) as conn:
        for stmt in migrate.split_statements(RAW_SETUP):
            conn.execute(stmt.encode())
        conn.execute(
            "insert into raw_jobs (status) select 'pending' from generate_series(1, %s)", (n,)
        )
        conn.execute("vacuum analyze raw_jobs")
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(workers + 1), ctx.Queue()
    procs = [
        ctx.Process(target=_raw_worker, args=(url, batch, barrier, out)) for _ in range(workers)
    ]
    for p in procs:
        p.start()
    barrier.wait()
    started = time.time()
    results = [out.get(timeout=3600) for _ in procs]
    for p in procs:
        p.join()
    return sum(r[1] for r in results) / (max(r[0] for r in results) - started)


def bench_procrastinate(admin_url: str, n: int) -> dict[str, Any] | None:
    venv = REPO / ".local" / "bench" / "procrastinate-venv"
    python = venv / "bin" / "python"
    if not python.exists():
        print("installing procrastinate 3.x into", venv, file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "procrastinate>=3.10,<4"],
            check=True,
        )
    localdb.recreate_database(admin_url, PROC_DB)
    result = subprocess.run(
        [
            str(python),
            str(REPO / "bench" / "procrastinate_noop.py"),
            localdb.url_for(admin_url, PROC_DB),
            str(n),
            "10",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        print("procrastinate run failed:", result.stderr[-2000:], file=sys.stderr)
        return None
    data: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return data


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=50_000)
    parser.add_argument("--enqueue-jobs", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--skip-defaults",
        action="store_true",
        help="skip the extra run with the shipped settings (batch 10, concurrency 4)",
    )
    parser.add_argument("--procrastinate-jobs", type=int, default=5_000)
    parser.add_argument("--skip-procrastinate", action="store_true")
    parser.add_argument("--skip-raw", action="store_true")
    parser.add_argument(
        "--migrations-before",
        metavar="VERSION",
        help="migrate only the migrations older than VERSION (a before/after comparison)",
    )
    args = parser.parse_args()

    admin_url = localdb.admin_url(load_settings())
    url = localdb.service_url(admin_url, DB)
    out: dict[str, Any] = {
        "workers": args.workers,
        "batch": args.batch,
        "concurrency": args.concurrency,
    }

    print(
        f"docflow queue benchmark: {os.cpu_count()} cores, PostgreSQL at "
        f"{psycopg.conninfo.conninfo_to_dict(admin_url).get('port')}"
    )

    migrate_db(admin_url, url, args.migrations_before)
    docs = seed_documents(url, args.enqueue_jobs)
    out["enqueue_jobs_per_s"] = bench_enqueue(url, docs)
    print(
        f"bulk enqueue (enqueue_jobs, chunks of 2000, events included): "
        f"{out['enqueue_jobs_per_s']:,.0f} jobs/s over {args.enqueue_jobs:,} jobs"
    )

    migrate_db(admin_url, url, args.migrations_before)
    bench_enqueue(url, seed_documents(url, args.jobs))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("vacuum analyze")
    proc = bench_process(url, args.jobs, args.workers, args.batch, args.concurrency)
    out["process"] = proc
    print(
        f"docflow no-op jobs end to end: {proc['jobs_per_s']:,.0f} jobs/s "
        f"({proc['completed']:,}/{args.jobs:,} completed, {proc['lifecycle_events']:,} "
        f"lifecycle events; W={args.workers} processes, batch {args.batch}, "
        f"concurrency {args.concurrency})"
    )

    if not args.skip_defaults:
        n = min(args.jobs, 20_000)
        migrate_db(admin_url, url, args.migrations_before)
        bench_enqueue(url, seed_documents(url, n))
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("vacuum analyze")
        shipped = bench_process(url, n, args.workers, 10, 4)
        out["process_shipped_defaults"] = shipped
        print(
            f"docflow, shipped defaults (batch 10, concurrency 4): "
            f"{shipped['jobs_per_s']:,.0f} jobs/s ({shipped['completed']:,}/{n:,}; "
            f"W={args.workers})"
        )

    if not args.skip_raw:
        for batch in (1, 10):
            rate = bench_raw(url, args.jobs, args.workers, batch)
            out[f"raw_batch_{batch}_jobs_per_s"] = rate
            print(f"raw SQL claim+complete, batch {batch}: {rate:,.0f} jobs/s (W={args.workers})")

    if not args.skip_procrastinate:
        pr = bench_procrastinate(admin_url, args.procrastinate_jobs)
        out["procrastinate"] = pr
        if pr:
            print(
                f"procrastinate 3.x (async no-op, concurrency 10, wait=False): "
                f"{pr['jobs_per_s']:,.0f} jobs/s ({pr['succeeded']:,}/{pr['jobs']:,}); "
                f"its batch_defer: {pr['enqueue_jobs_per_s']:,.0f} jobs/s"
            )

    rate = proc["jobs_per_s"]
    if out.get("procrastinate"):
        print(f"docflow / procrastinate: {rate / out['procrastinate']['jobs_per_s']:.1f}x")
    if "raw_batch_10_jobs_per_s" in out:
        print(f"docflow / raw batch-10 ceiling: {rate / out['raw_batch_10_jobs_per_s']:.2f}")
    print(json.dumps(out))
    return 0 if proc["completed"] == args.jobs else 1


if __name__ == "__main__":
    sys.exit(main())
