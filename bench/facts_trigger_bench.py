"""The analytics facts trigger after a batch: one session inserts 2,000 events in one statement,
then single events, with 22,000 jobs and documents in the tables.

PL/pgSQL keeps the plan made for a session's first statement. The trigger used to join the
events to processing_jobs and documents, and after a batch that plan read both tables whole
for every later single event. Prints the median and max time of a single event's insert.

    .venv/bin/python bench/facts_trigger_bench.py
"""

from __future__ import annotations

import json
import statistics
import sys
import time
import uuid
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shared.dev import localdb, migrate
from shared.platform.config import load_settings

DB = "docflow_bench_facts"
JOBS = 22_000
BATCH = 2_000
SINGLES = 60


def main() -> int:
    admin = localdb.admin_url(load_settings())
    url = localdb.service_url(admin, DB)
    localdb.recreate_database(admin, DB)
    migrate.migrate(url)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            user = str(uuid.uuid4())
            conn.execute("insert into auth.users (id) values (%s)", (user,))
            conn.execute(
                "insert into public.documents (id, user_id, original_filename, content_type,"
                " size_bytes, sha256, storage_path)"
                " select gen_random_uuid(), %s, 'f.txt', 'text/plain', 1,"
                " encode(sha256(g::text::bytea), 'hex'), %s || '/' || g"
                " from generate_series(1, %s) g",
                (user, user, JOBS),
            )
            conn.execute(
                "insert into public.processing_jobs (document_id, user_id, status)"
                " select id, user_id, 'completed' from public.documents"
            )
            conn.execute("analyze")
            ids = conn.execute(
                "select id, document_id from public.processing_jobs limit %s", (BATCH,)
            ).fetchall()
        # A new session whose first events come in one statement.
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "insert into public.document_processing_events"
                " (document_id, user_id, job_id, event_type)"
                " select d, %s, j, 'enqueued' from unnest(%s::uuid[], %s::uuid[]) as t(j, d)",
                (user, [i[0] for i in ids], [i[1] for i in ids]),
            )
            times = []
            for job_id, document_id in ids[:SINGLES]:
                started = time.perf_counter()
                conn.execute(
                    "insert into public.document_processing_events"
                    " (document_id, user_id, job_id, event_type) values (%s, %s, %s, 'enqueued')",
                    (document_id, user, job_id),
                )
                times.append((time.perf_counter() - started) * 1000)
        steady = times[10:]  # past PL/pgSQL's first executions
        result = {"median_ms": round(statistics.median(steady), 3), "max_ms": round(max(steady), 3)}
        print(f"single event after a {BATCH}-event batch, {JOBS} jobs: {result}", file=sys.stderr)
        print(json.dumps(result))
    finally:
        localdb.drop_database(admin, DB)
    return 0


if __name__ == "__main__":
    sys.exit(main())
