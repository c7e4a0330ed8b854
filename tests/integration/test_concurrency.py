"""8 processes claim from 5,000 jobs; every job is claimed exactly once per attempt and ends
completed.

The jobs are created in bulk with SQL (superuser); each process is a fresh interpreter (the
`spawn` start method) that builds its own client from DATABASE_URL and drains the queue with
the real worker engine and a no-op handler. The processes' reports come back through a queue.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
from typing import Any

import psycopg

from shared.platform.client import Database

JOBS = 5_000
PROCESSES = 8
PATIENCE = 180.0  # a bound on a hang, never a timing assertion


def noop(job: dict[str, Any], ctx: Any) -> dict[str, Any]:
    return {}


def drain_in_process(results: Any) -> None:
    """The body of one worker process (spawned: imports everything afresh)."""
    from shared.jobs.worker import Worker
    from shared.platform.client import make_database
    from shared.platform.config import get_settings

    try:
        settings = get_settings()
        db = make_database(settings)
        try:
            worker = Worker(db, settings, noop, concurrency=4, batch_size=50)
            report = worker.drain(max_jobs=10_000, max_seconds=120)
        finally:
            db.close()
        results.put(("ok", os.getpid(), report.as_dict()))
    except BaseException as exc:
        results.put(("error", os.getpid(), repr(exc)))
        raise


def create_jobs(sql: psycopg.Connection, user_id: str, n: int) -> None:
    with sql.transaction():
        sql.execute(
            "with docs as ("
            "  insert into public.documents"
            "    (user_id, original_filename, content_type, size_bytes, sha256, storage_path)"
            "  select %(user)s::uuid, 'doc-' || g || '.txt', 'text/plain', 100,"
            "         encode(sha256(convert_to('doc ' || g, 'UTF8')), 'hex'),"
            "         %(user)s::text || '/bulk-' || g"
            "    from generate_series(1, %(n)s) g"
            "  returning id, user_id"
            ")"
            " insert into public.processing_jobs (document_id, user_id)"
            " select id, user_id from docs",
            {"user": user_id, "n": n},
        )


def scalar(sql: psycopg.Connection, query: str) -> Any:
    row = sql.execute(query).fetchone()
    assert row is not None
    return row[0]


def test_8_processes_claim_each_of_5000_jobs_exactly_once(db: Database, make_user, sql) -> None:
    user = make_user()
    create_jobs(sql, user.user_id, JOBS)
    assert scalar(sql, "select count(*) from public.processing_jobs where status = 'pending'") == (
        JOBS
    )

    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    processes = [
        ctx.Process(target=drain_in_process, args=(results,), name=f"docflow-drain-{i}")
        for i in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    reports: list[dict[str, int]] = []
    try:
        for _ in processes:
            try:
                status, pid, payload = results.get(timeout=PATIENCE)
            except queue.Empty:
                raise AssertionError("a worker process never reported") from None
            assert status == "ok", f"process {pid} failed: {payload}"
            reports.append(payload)
        for process in processes:
            process.join(PATIENCE)
            assert process.exitcode == 0, (process.name, process.exitcode)
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join()
        results.close()
        results.join_thread()

    assert sum(r["claimed"] for r in reports) == JOBS
    assert sum(r["completed"] for r in reports) == JOBS
    for report in reports:
        assert report["failed"] == report["retried"] == report["lease_lost"] == 0, report
        assert report["errors"] == report["released"] == 0, report

    assert scalar(sql, "select count(*) from public.processing_jobs") == JOBS
    assert (
        scalar(
            sql,
            "select count(*) from public.processing_jobs"
            " where status = 'completed' and attempts = 1 and lease_owner is null",
        )
        == JOBS
    )
    # Exactly one processing_started per job and attempt, one completed per job.
    started = sql.execute(
        "select count(*), count(*) filter (where n <> 1), count(distinct job_id)"
        " from (select job_id, details->>'attempt' as attempt, count(*) as n"
        "         from public.document_processing_events"
        "        where event_type = 'processing_started'"
        "        group by job_id, details->>'attempt') per_attempt"
    ).fetchone()
    assert started == (JOBS, 0, JOBS)
    assert (
        scalar(
            sql,
            "select count(*) from public.document_processing_events"
            " where event_type = 'processing_started' and details->>'attempt' <> '1'",
        )
        == 0
    )
    completed = sql.execute(
        "select count(*), count(*) filter (where n <> 1)"
        " from (select job_id, count(*) as n from public.document_processing_events"
        "        where event_type = 'completed' group by job_id) per_job"
    ).fetchone()
    assert completed == (JOBS, 0)
    # Every completed event belongs to one of the jobs (no stray ids).
    assert (
        scalar(
            sql,
            "select count(*) from public.document_processing_events e"
            " where e.event_type = 'completed'"
            "   and not exists (select 1 from public.processing_jobs j where j.id = e.job_id)",
        )
        == 0
    )
