"""The analytics benchmark (`make bench`).

On the local PostgreSQL (a fresh `docflow_bench_analytics` database, real migrations) it
seeds 1,000,000 processing events spread evenly over the last 35 days, 100,000 jobs (with
their documents) and 50,000 health checks. Events go in through the real insert path, so the
facts trigger and `fold_analytics()` maintain the rollups as they
would in production. Then it measures the
admin endpoints in-process (the `admin` function behind functions-framework's test client,
with an admin JWT, so RLS, JSON and HTTP handling are included): median and p95 of N calls per
`window` of `GET /admin/analytics`, and `GET /admin/queue` and `GET /admin/services`.
It prints the plan nodes of the report's statements (auto_explain) to show which indexes and
rollups they read.

Usage: python bench/analytics_bench.py [--events N] [--jobs N] [--checks N] [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from shared.dev import localdb, migrate  # noqa: E402
from shared.platform.config import load_settings  # noqa: E402

DB = "docflow_bench_analytics"
ADMIN = "00000000-0000-4000-8000-00000000ad01"
USER = "00000000-0000-4000-8000-00000000a5e1"
BATCH = 50_000

SEED_JOBS = """
insert into public.documents
  (id, user_id, original_filename, content_type, size_bytes, sha256, storage_path, created_at)
select gen_random_uuid(), %(user)s::uuid, 'doc' || g || '.pdf',
       (array['application/pdf', 'application/vnd.openxmlformats-officedocument'
              '.wordprocessingml.document', 'text/plain', 'text/html', 'text/markdown',
              'text/csv'])[1 + g %% 6],
       1000 + g, repeat('a', 64), %(user)s::text || '/' || g,
       %(now)s - interval '35 days' + (g * interval '35 days' / %(jobs)s)
  from generate_series(0, %(jobs)s - 1) g;
---
insert into public.processing_jobs
  (document_id, user_id, status, priority, attempts, created_at, run_at, started_at,
   completed_at, duration_ms, result, lease_owner, lease_expires_at, error_code, error_message,
   error_recoverable)
select d.id, d.user_id, s.status, (array['low', 'normal', 'normal', 'high'])[1 + s.g %% 4],
       case when s.status = 'pending' then 0 else 1 end,
       d.created_at - interval '1 second' * (s.g %% 60), d.created_at,
       case when s.status <> 'pending' then d.created_at end,
       case when s.status in ('completed', 'failed') then d.created_at + interval '2 seconds' end,
       case when s.status in ('completed', 'failed') then 2000 end,
       case when s.status = 'completed' then jsonb_build_object('timings_ms', jsonb_build_object(
         'validating', round((0.05 + random())::numeric, 3),
         'reading', round((1 + random() * 20)::numeric, 3),
         'parsing', round((0.5 + random() * 5)::numeric, 3),
         'extracting', round(exp(ln(5) + random() * ln(400))::numeric, 3),
         'analyzing', round(exp(ln(20) + random() * ln(300))::numeric, 3),
         'finalizing', round((0.2 + random() * 3)::numeric, 3))) end,
       case when s.status = 'processing' then 'bench' end,
       case when s.status = 'processing' then %(now)s + interval '1 minute' end,
       case when s.status = 'failed' then 'malformed_document' end,
       case when s.status = 'failed' then 'the document could not be parsed' end,
       case when s.status = 'failed' then false end
  from (select row_number() over (order by created_at) - 1 as g, id, user_id, created_at
          from public.documents) d
  cross join lateral (
    select d.g as g,
           case when d.created_at > %(now)s - interval '10 minutes' and d.g %% 3 = 0
                  then 'pending'
                when d.created_at > %(now)s - interval '10 minutes' and d.g %% 3 = 1
                  then 'processing'
                when d.g %% 20 = 0 then 'failed'
                else 'completed' end as status
  ) s;
"""

# Ten events per job, in this order: the job's life and two more runs of it (reanalysis), so
# there are 3 completions, 4 starts and error messages in every ten events.
SEED_EVENTS = """
insert into public.document_processing_events
  (document_id, user_id, job_id, event_type, duration_ms, error_message, details, created_at)
select j.document_id, j.user_id, j.id, t.event_type,
       case when t.event_type in ('completed', 'failed')
            then exp(ln(50) + random() * ln(1200))::integer end,
       case when t.event_type in ('failed', 'retry_scheduled')
            then (array['the document could not be parsed', 'extraction timed out',
                        'summarizer answered 429', 'summarizer answered 503',
                        'the document is encrypted', 'no text found'])[1 + (e.g / 10) %% 6]
                 || case when (e.g / 10) %% 97 = 0 then ' (page ' || (e.g %% 50) || ')'
                         else '' end
       end,
       case when t.event_type = 'processing_started' then jsonb_build_object('attempt', t.attempt)
       end,
       %(now)s - interval '35 days' + (e.g * interval '35 days' / %(events)s)
  from generate_series(%(lo)s, %(hi)s - 1) as e(g)
  join lateral (select (e.g / 10) %% %(jobs)s as k) jk on true
  join (select row_number() over (order by created_at) - 1 as k, id, document_id, user_id
          from public.processing_jobs) j on j.k = jk.k
  cross join lateral (
    select (array['upload_started', 'processing_started', 'completed', 'enqueued',
                  'processing_started', 'retry_scheduled', 'processing_started', 'completed',
                  'processing_started', 'failed'])[1 + e.g %% 10] as event_type,
           (array[0, 1, 0, 0, 1, 0, 2, 0, 1, 0])[1 + e.g %% 10] as attempt
  ) t;
"""

SEED_CHECKS = """
insert into public.service_health_checks
  (service_name, status, latency_ms, checked_at, created_at, error_message)
select (array['database', 'storage', 'job_queue', 'summarizer'])[1 + g %% 4],
       case when g %% 50 = 0 then 'down' when g %% 17 = 0 then 'degraded' else 'healthy' end,
       (5 + (g * 7919) %% 400),
       %(now)s - interval '35 days' + (g * interval '35 days' / %(checks)s),
       %(now)s - interval '35 days' + (g * interval '35 days' / %(checks)s),
       case when g %% 50 = 0 then 'connection refused' end
  from generate_series(0, %(checks)s - 1) g;
---
insert into public.alert_events (service_name, alert_type, status, message, created_at)
values ('storage', 'service_down', 'active', 'storage is down', %(now)s - interval '5 minutes');
"""


def seed(url: str, events: int, jobs: int, checks: int) -> dict[str, float]:
    timings: dict[str, float] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("select set_config('TimeZone', 'UTC', false)")
        now = conn.execute("select now()").fetchone()[0]  # type: ignore[index]
        conn.execute(
            'insert into auth.users (id, raw_app_meta_data) values (%s, \'{"role": "admin"}\'),'
            " (%s, '{}')",
            (ADMIN, USER),
        )
        started = time.perf_counter()
        for statement in SEED_JOBS.split("---"):
            conn.execute(statement, {"user": USER, "now": now, "jobs": jobs})
        timings["jobs"] = time.perf_counter() - started
        started = time.perf_counter()
        for lo in range(0, events, BATCH):
            conn.execute(
                SEED_EVENTS,
                {
                    "now": now,
                    "events": events,
                    "jobs": jobs,
                    "lo": lo,
                    "hi": min(events, lo + BATCH),
                },
            )
            print(f"\r  events {min(events, lo + BATCH):,}/{events:,}", end="", flush=True)
        print()
        timings["events"] = time.perf_counter() - started
        started = time.perf_counter()
        for statement in SEED_CHECKS.split("---"):
            conn.execute(statement, {"now": now, "checks": checks})
        timings["checks"] = time.perf_counter() - started
        started = time.perf_counter()
        folded = conn.execute("select public.fold_analytics()").fetchone()[0]  # type: ignore[index]
        timings["fold"] = time.perf_counter() - started
        conn.execute("vacuum analyze")
        sizes = conn.execute(
            "select (select count(*) from public.document_processing_events),"
            " (select count(*) from public.analytics_rollups),"
            " (select count(*) from public.analytics_histograms),"
            " (select count(*) from public.processing_jobs),"
            " (select count(*) from public.service_health_checks)"
        ).fetchone()
    assert sizes is not None
    print(
        f"  seeded {sizes[0]:,} events ({timings['events']:.1f} s through the facts trigger; "
        f"folding {folded:,} facts into the rollups took {timings['fold']:.1f} s), "
        f"{sizes[3]:,} jobs, {sizes[4]:,} health checks; rollups: {sizes[1]:,} count rows, "
        f"{sizes[2]:,} histogram rows"
    )
    return timings


def plans(url: str) -> None:
    """The plan nodes of the 30d report's statements, from auto_explain."""
    with psycopg.connect(url, autocommit=True) as conn:
        notes: list[str] = []
        conn.add_notice_handler(lambda d: notes.append(d.message_primary or ""))
        conn.execute("load 'auto_explain'")
        conn.execute("set auto_explain.log_min_duration = 0")
        conn.execute("set auto_explain.log_nested_statements = on")
        conn.execute("set auto_explain.log_level = notice")
        conn.execute("set client_min_messages = notice")
        conn.execute("select public.analytics_report('30d')")
    scans = set()
    for note in notes:
        for match in re.finditer(
            r"((?:Parallel )?(?:Index Only Scan|Index Scan|Seq Scan|"
            r"Bitmap Heap Scan)(?: using \S+)? on \S+)",
            note,
        ):
            scans.add(match.group(1))
    print("  plan nodes of the 30d report:")
    for scan in sorted(scans):
        print(f"    {scan}")


def measure(url: str, runs: int) -> dict[str, dict[str, float]]:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("SUPABASE_JWT_SECRET", "bench-secret-bench-secret-bench-secret!")
    os.environ["LOG_LEVEL"] = "ERROR"  # no request log line per call
    from functions_framework import create_app

    from shared.platform.auth import mint_token
    from shared.platform.client import reset_db
    from shared.platform.config import get_settings, reset_settings

    reset_settings()
    reset_db()
    settings = get_settings()
    token = mint_token(settings, ADMIN, admin=True)
    app = create_app("admin", str(REPO / "main.py"))
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    results: dict[str, dict[str, float]] = {}
    paths = [f"/admin/analytics?window={w}" for w in ("1h", "24h", "7d", "30d")]
    paths += ["/admin/queue", "/admin/services", "/admin/alerts?status=active"]
    for path in paths:
        answer = client.get(path, headers=headers)
        assert answer.status_code == 200, (path, answer.status_code, answer.get_data(True))
        samples = []
        for _ in range(runs):
            started = time.perf_counter()
            answer = client.get(path, headers=headers)
            samples.append((time.perf_counter() - started) * 1000)
            assert answer.status_code == 200
        samples.sort()
        results[path] = {
            "median_ms": statistics.median(samples),
            "p95_ms": samples[max(0, int(len(samples) * 0.95) - 1)],
        }
        print(
            f"  GET {path:32} median {results[path]['median_ms']:7.1f} ms   "
            f"p95 {results[path]['p95_ms']:7.1f} ms"
        )
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--checks", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()

    admin_url = localdb.admin_url(load_settings())
    url = localdb.service_url(admin_url, DB)
    print(f"docflow analytics benchmark: {os.cpu_count()} cores")
    localdb.recreate_database(admin_url, DB)
    migrate.migrate(url)
    seed(url, args.events, args.jobs, args.checks)
    plans(localdb.url_for(admin_url, DB))  # auto_explain: LOAD needs the superuser
    results = measure(url, args.runs)
    within = True
    for window, limit in (("30d", 250.0), ("24h", 50.0)):
        median = results[f"/admin/analytics?window={window}"]["median_ms"]
        within = within and median < limit
        verdict = "ok" if median < limit else "OVER"
        print(f"  window={window}: median {median:.1f} ms (target < {limit:.0f} ms): {verdict}")
    print(json.dumps({"analytics": results, "targets_met": within}))
    return 0 if within else 1


if __name__ == "__main__":
    raise SystemExit(main())
