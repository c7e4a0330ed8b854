"""Crash harness: jobs survive killed workers and a database restart.

1,000 jobs; 4 long-running worker processes (the real engine, short leases); every ~2 s a
random worker is killed with SIGKILL and restarted; once, mid-run, PostgreSQL itself restarts.
At the end it checks, from the database's own records:

- lost: jobs not completed;
- duplicated: jobs with more than one `completed` event;
- stale completions: completed by an attempt other than the job's last one (must be 0: complete
  is fenced on the lease holder of the attempt);
- discarded: attempts whose handler finished but whose result was refused (lease lost);
- recovered: `stalled_recovered` events, and the time from each kill to the re-start of the
  jobs the killed worker held (median / max).

Exit status 0 when nothing was lost or duplicated. Usage: python bench/crash.py [--jobs 1000]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from shared.dev import localdb, migrate  # noqa: E402
from shared.platform.config import load_settings  # noqa: E402

DB = "docflow_crash"
FAST = {
    "JOB_LEASE_SECONDS": "3",
    "HEARTBEAT_SECONDS": "1",
    "PROGRESS_WRITE_SECONDS": "0.5",
    "STALLED_SWEEP_SECONDS": "1",
    "WORKER_POLL_SECONDS": "0.2",
    "WORKER_CONCURRENCY": "4",
    "WORKER_BATCH_SIZE": "4",
    "WORKER_SHUTDOWN_GRACE_SECONDS": "2",
    "DB_CONNECT_TIMEOUT": "2",
    "LOG_LEVEL": "ERROR",
}


def child(url: str) -> None:
    """One worker process: a handler that takes 0.2-0.6 s and logs that it finished."""
    from shared.jobs.worker import Worker
    from shared.platform.client import Database, PostgresTransport

    settings = load_settings()
    db = Database(PostgresTransport(url, settings))
    log_conn: list[psycopg.Connection[Any]] = []

    def handler(job: dict[str, Any], ctx: Any) -> dict[str, Any]:
        ctx.report("analyzing", 50)
        time.sleep(random.uniform(0.2, 0.6))
        ctx.check()
        deadline = time.monotonic() + 10  # the log survives a database restart
        while True:
            try:
                if not log_conn or log_conn[0].closed:
                    log_conn[:] = [psycopg.connect(url, autocommit=True, connect_timeout=2)]
                log_conn[0].execute(
                    "insert into crash_log (job_id, attempt, pid) values (%s, %s, %s)",
                    (job["id"], job["attempts"], os.getpid()),
                )
                break
            except psycopg.Error:
                log_conn.clear()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        return {"pid": os.getpid()}

    stop = __import__("threading").Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    Worker(db, settings, handler, listen_url=url).run_forever(stop)


def spawn(url: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, **FAST, "DATABASE_URL": url}
    return subprocess.Popen(
        [sys.executable, __file__, "--child", url],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def held_by(url: str, pid: int) -> list[str]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "select id from processing_jobs where status = 'processing' and lease_owner like %s",
            (f"%:{pid}:%",),
        ).fetchall()
    return [str(r[0]) for r in rows]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--kill-every", type=float, default=2.0)
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--child")
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return 0

    settings = load_settings()
    if settings.database_url:
        print("crash.py restarts PostgreSQL: it runs on the embedded cluster only")
        return 2
    cluster = localdb.cluster_for(settings)
    localdb.start(cluster)
    admin = cluster.url()
    url = cluster.service_url(DB)
    localdb.recreate_database(admin, DB)
    migrate.migrate(url)
    user = str(uuid.uuid4())
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "create table crash_log (job_id uuid, attempt int, pid int,"
            " at timestamptz default clock_timestamp())"
        )
        conn.execute("insert into auth.users (id) values (%s)", (user,))
        conn.execute(
            "insert into documents (user_id, original_filename, content_type, size_bytes,"
            " sha256, storage_path) select %s, 'c.txt', 'text/plain', 1, repeat('b', 64),"
            " %s || '/' || g from generate_series(1, %s) g",
            (user, user, args.jobs),
        )
        conn.execute(
            "select enqueue_jobs((select jsonb_agg(jsonb_build_object('document_id', id))"
            " from documents))"
        )

    workers = [spawn(url) for _ in range(args.workers)]
    kills: list[tuple[float, list[str]]] = []
    started = time.time()
    restarted_db = False
    next_kill = started + args.kill_every
    try:
        while time.time() - started < args.timeout:
            time.sleep(0.1)
            with psycopg.connect(url, autocommit=True) as conn:
                row = conn.execute(
                    "select count(*) filter (where status = 'completed'),"
                    " count(*) filter (where status in ('failed', 'cancelled'))"
                    " from processing_jobs"
                ).fetchone()
            assert row is not None
            done, dead = row
            if done + dead >= args.jobs:
                break
            if not restarted_db and done >= args.jobs // 2:
                print(f"{time.time() - started:6.1f}s  restarting PostgreSQL ({done} done)")
                localdb.restart(cluster)
                restarted_db = True
                continue
            if time.time() >= next_kill:
                victim = random.randrange(len(workers))
                pid = workers[victim].pid
                held = held_by(url, pid)
                os.kill(pid, signal.SIGKILL)
                workers[victim].wait()
                kills.append((time.time(), held))
                workers[victim] = spawn(url)
                print(
                    f"{time.time() - started:6.1f}s  SIGKILL worker {pid} holding "
                    f"{len(held)} job(s); {done}/{args.jobs} completed"
                )
                next_kill = time.time() + random.uniform(0.75, 1.25) * args.kill_every
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        for w in workers:
            try:
                w.wait(15)
            except subprocess.TimeoutExpired:
                w.kill()
    elapsed = time.time() - started

    with psycopg.connect(url, autocommit=True) as conn:

        def one(q: str, *p: Any) -> Any:
            r = conn.execute(q.encode(), p).fetchone()  # type: ignore[arg-type]
            return r[0] if r else None

        lost = one("select count(*) from processing_jobs where status <> 'completed'")
        duplicated = one(
            "select count(*) from (select job_id from document_processing_events"
            " where event_type = 'completed' group by job_id having count(*) > 1) d"
        )
        stale = one(
            "select count(*) from document_processing_events e join processing_jobs j"
            " on j.id = e.job_id where e.event_type = 'completed'"
            " and (e.details->>'attempt')::int <> j.attempts"
        )
        finished_attempts = one("select count(*) from crash_log")
        recovered = one(
            "select count(*) from document_processing_events where event_type = 'stalled_recovered'"
        )
        retried_jobs = one("select count(*) from processing_jobs where attempts > 1")
        latencies, to_pending = [], []
        for killed_at, held in kills:
            for job_id in held:
                back = one(
                    "select min(created_at) from document_processing_events"
                    " where job_id = %s and event_type = 'stalled_recovered'"
                    " and created_at > to_timestamp(%s)",
                    job_id,
                    killed_at,
                )
                if back is not None:
                    to_pending.append(back.timestamp() - killed_at)
                restart = one(
                    "select min(created_at) from document_processing_events"
                    " where job_id = %s and event_type = 'processing_started'"
                    " and created_at > to_timestamp(%s)",
                    job_id,
                    killed_at,
                )
                if restart is not None:
                    latencies.append(restart.timestamp() - killed_at)

    print(
        f"\n{args.jobs} jobs, {args.workers} workers, {len(kills)} SIGKILLs, "
        f"PostgreSQL restarted: {restarted_db}, {elapsed:.1f} s"
    )
    print(f"lost: {lost}   duplicated: {duplicated}   completions from a stale attempt: {stale}")
    print(
        f"handler runs that finished: {finished_attempts} for {args.jobs} jobs "
        f"({finished_attempts - (args.jobs - lost)} finished but refused or re-run)"
    )
    print(
        f"stalled_recovered events: {recovered}; jobs that needed more than one attempt: "
        f"{retried_jobs}"
    )
    if to_pending:
        print(
            f"time from SIGKILL to the held jobs back in the queue: median "
            f"{statistics.median(to_pending):.1f} s, max {max(to_pending):.1f} s"
        )
    if latencies:
        print(
            f"time from SIGKILL to the held jobs running again: median "
            f"{statistics.median(latencies):.1f} s, max {max(latencies):.1f} s "
            f"({len(latencies)} jobs; lease 3 s, sweep every 1 s)"
        )
    return 0 if lost == 0 and duplicated == 0 and stale == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
