"""The retention benchmark: expired events go fast, and a concurrent writer does not notice.

On the local PostgreSQL (a fresh `docflow_bench_retention` database, real migrations) it
seeds 1,000,000 processing events created 31 to 60 days ago (expired under the 30-day
default) and 1,000,000 created over the last 29 days (live), through the real insert path
(the analytics facts trigger included), then folds the facts and vacuums, as production
would be before a daily run. Then, while a writer process inserts single events on its own
autocommitted connection at a steady 500 a second (as the service does), it calls the real
retention run (`shared.ops.retention.run()` through the one client, default batch and budget)
until it reports `finished`, and reports:

* the wall time to remove every expired row, the number of runs, rows deleted and rows/s;
* the writer's inserts, achieved rate, and p50/p99/max insert latency, during retention and
  over the whole trial (about 2 s of warm-up before and 2 s after).

Each retention statement deletes at most RETENTION_BATCH_SIZE rows and commits, so the
writer, which only appends new rows, should never wait on it for long. The targets (the
issue's): every expired row gone in under 30 s, and the writer's p99 during retention under
50 ms. Afterwards SQL checks that no expired row remains and that every live row (seeded
and written) does. `--compare-batch` then re-seeds the expired rows and repeats the trial
with batches of 1,000 and 20,000 rows, to show the trade-off between throughput and latency.

Usage: python bench/retention_bench.py [--expired N] [--live N] [--rate N] [--batch N]
                                       [--compare-batch]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from shared.dev import localdb, migrate  # noqa: E402
from shared.platform.config import load_settings  # noqa: E402

DB = "docflow_bench_retention"
USER = "00000000-0000-4000-8000-00000000a5e1"
SEED_BATCH = 100_000
WARMUP_S = 2.0
COOLDOWN_S = 2.0
MAX_RUNS = 20  # a run that cannot finish in this many runs is a failure anyway
TARGET_WALL_S = 30.0
TARGET_P99_MS = 50.0
DUMMY_SECRET = "bench-secret-bench-secret-bench-secret!!"  # noqa: S105 (40 chars, no secret)

# Ten events per job, in this order: the job's life and two more runs of it. Rows
# `lo`..`hi - 1` of `total`, created evenly from `start` (an interval ago) over `span`, in
# created_at order, as they would have been written.
SEED_EVENTS = """
insert into public.document_processing_events
  (document_id, user_id, job_id, event_type, duration_ms, error_message, stage, details,
   created_at)
select ('00000000-0000-4000-8000-' || lpad(to_hex(%(base)s + g / 10), 12, '0'))::uuid,
       %(user)s::uuid,
       ('00000000-0000-4000-9000-' || lpad(to_hex(%(base)s + g / 10), 12, '0'))::uuid,
       t.event_type,
       case when t.event_type in ('completed', 'failed')
            then exp(ln(50) + random() * ln(1200))::integer end,
       case when t.event_type in ('failed', 'retry_scheduled')
            then (array['the document could not be parsed', 'extraction timed out',
                        'summarizer answered 429', 'summarizer answered 503',
                        'the document is encrypted', 'no text found'])[1 + (g / 10) %% 6] end,
       case when t.event_type in ('failed', 'retry_scheduled') then 'extracting' end,
       case when t.event_type in ('upload_started', 'processing_started') then
         jsonb_build_object(
           'attempt', t.attempt,
           'priority', (array['low', 'normal', 'normal', 'high'])[1 + (g / 10) %% 4],
           'content_type', (array['application/pdf', 'application/vnd.openxmlformats-'
                                  'officedocument.wordprocessingml.document', 'text/plain',
                                  'text/html', 'text/markdown', 'text/csv'])[1 + (g / 10) %% 6])
       end,
       %(now)s - %(start)s::interval + (g * %(span)s::interval / %(total)s)
  from generate_series(%(lo)s, %(hi)s - 1) as g
  cross join lateral (
    select (array['upload_started', 'enqueued', 'processing_started', 'completed',
                  'processing_started', 'retry_scheduled', 'processing_started', 'completed',
                  'processing_started', 'failed'])[1 + g %% 10] as event_type,
           (array[0, 0, 1, 0, 1, 0, 2, 0, 1, 0])[1 + g %% 10] as attempt
  ) t
"""

# What the service writes for one event: one autocommitted single-row insert.
WRITE_EVENT = """
insert into public.document_processing_events
  (document_id, user_id, job_id, event_type, duration_ms, details, created_at)
values (%s, %s, %s, %s, %s, %s, now())
"""

COUNT_EXPIRED = (
    "select count(*) from public.document_processing_events"
    " where created_at < now() - interval '30 days'"
)
COUNT_LIVE = (
    "select count(*) from public.document_processing_events"
    " where created_at >= now() - interval '30 days'"
)


def scalar(conn: psycopg.Connection[Any], query: str, params: Any = None) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def seed_events(
    url: str, total: int, start: str, span: str, base: int, label: str
) -> tuple[float, float]:
    """Insert `total` events created from `start` ago over `span`; fold, vacuum analyze.

    Returns (seconds inserting, seconds folding and vacuuming).
    """
    with psycopg.connect(url, autocommit=True) as conn:
        now = scalar(conn, "select now()")
        started = time.perf_counter()
        for lo in range(0, total, SEED_BATCH):
            hi = min(total, lo + SEED_BATCH)
            conn.execute(
                SEED_EVENTS,
                {
                    "user": USER,
                    "now": now,
                    "start": start,
                    "span": span,
                    "total": total,
                    "lo": lo,
                    "hi": hi,
                    "base": base,
                },
            )
            print(f"\r  {label} events {hi:,}/{total:,}", end="", flush=True)
        print()
        inserting = time.perf_counter() - started
        started = time.perf_counter()
        conn.execute("select public.fold_analytics()")  # analytics_pending empty, as in prod
        conn.execute("vacuum analyze")
        return inserting, time.perf_counter() - started


def seed(url: str, expired: int, live: int) -> float:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("insert into auth.users (id, raw_app_meta_data) values (%s, '{}')", (USER,))
    started = time.perf_counter()
    e_insert, e_fold = seed_events(url, expired, "60 days", "29 days", 0, "expired")
    l_insert, l_fold = seed_events(url, live, "29 days", "29 days", expired // 10 + 1, "live")
    seconds = time.perf_counter() - started
    with psycopg.connect(url, autocommit=True) as conn:
        n_expired = scalar(conn, COUNT_EXPIRED)
        n_live = scalar(conn, COUNT_LIVE)
        pending = scalar(conn, "select count(*) from public.analytics_pending")
    print(
        f"  seeded {n_expired:,} expired and {n_live:,} live events in {seconds:.1f} s "
        f"(inserting {e_insert + l_insert:.1f} s, folding and vacuuming {e_fold + l_fold:.1f} s;"
        f" {pending} facts pending)"
    )
    assert n_expired == expired and n_live == live, (n_expired, n_live)
    return seconds


class Writer:
    """Inserts one event at a time at `rate` a second, on its own connection, in its own
    process (as another function instance would: it shares no interpreter lock with the
    retention run).

    Insert i is due at start + i / rate (a fixed schedule: a slow insert does not push the
    later ones back, the writer catches up). Each insert's start and latency are recorded
    (`time.perf_counter` is the system's monotonic clock, the same in both processes).
    """

    def __init__(self, url: str, rate: float, insert: str = "") -> None:
        ctx = multiprocessing.get_context("spawn")
        self.stop = ctx.Event()
        self.ready = ctx.Event()
        self._results, child_end = ctx.Pipe(duplex=False)
        self._process = ctx.Process(
            target=_write,
            args=(url, rate, insert or WRITE_EVENT, self.stop, self.ready, child_end),
            name="writer",
        )
        # (started, latency, latency from the scheduled time), in seconds
        self.samples: list[tuple[float, float, float]] = []
        self.written = 0  # every insert, the untimed first one included
        self.max_behind_s = 0.0
        self.error: str | None = None

    def start(self) -> None:
        self._process.start()

    def join(self) -> None:
        self.samples, self.written, self.max_behind_s, self.error = self._results.recv()
        self._process.join()


def _write(url: str, rate: float, insert: str, stop: Any, ready: Any, out: Any) -> None:
    samples: list[tuple[float, float, float]] = []
    written, max_behind, error = 0, 0.0, None
    try:
        with psycopg.connect(url, autocommit=True, application_name="bench-writer") as conn:
            conn.execute(insert, _params(0))  # one untimed insert first
            written = 1
            ready.set()
            start = time.perf_counter()
            i = 0
            while not stop.is_set():
                due = start + i / rate
                wait = due - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                else:
                    max_behind = max(max_behind, -wait)
                params = _params(i)
                t0 = time.perf_counter()
                conn.execute(insert, params)
                t1 = time.perf_counter()
                samples.append((t0, t1 - t0, t1 - due))
                written += 1
                i += 1
    except BaseException as exc:  # reported by the main process
        error = repr(exc)
        ready.set()
    out.send((samples, written, max_behind, error))


def _params(i: int) -> tuple[Any, ...]:
    kind = ("upload_started", "enqueued", "processing_started", "completed")[i % 4]
    details = (
        json.dumps({"attempt": 1, "priority": "normal", "content_type": "application/pdf"})
        if kind in ("upload_started", "processing_started")
        else None
    )
    doc = f"00000000-0000-4000-a000-{i // 4:012x}"
    job = f"00000000-0000-4000-b000-{i // 4:012x}"
    return (doc, USER, job, kind, 800 + i % 400 if kind == "completed" else None, details)


def p99(values: list[float]) -> float:
    return values[min(len(values) - 1, int(len(values) * 0.99))]


def latency(
    samples: list[tuple[float, float, float]], since: float, until: float
) -> dict[str, Any]:
    """The inserts started in [since, until): count, rate, latency percentiles in ms.

    `p99_ms`/`max_ms` time the insert itself (the target). `sched_*` time it from when it
    was due, so they include any wait behind the writer's earlier slow inserts: what a
    caller queued on that connection would see.
    """
    chosen = [s for s in samples if since <= s[0] < until]
    if not chosen:
        return {"inserts": 0}
    own = sorted(s[1] * 1000 for s in chosen)
    sched = sorted(s[2] * 1000 for s in chosen)
    seconds = until - since
    return {
        "inserts": len(own),
        "rate_per_s": round(len(own) / seconds, 1) if seconds > 0 else None,
        "p50_ms": round(statistics.median(own), 2),
        "p99_ms": round(p99(own), 2),
        "max_ms": round(own[-1], 2),
        "sched_p99_ms": round(p99(sched), 2),
        "sched_max_ms": round(sched[-1], 2),
    }


def retention_env(url: str, batch: int | None) -> None:
    """The real service environment for the retention path, pointed at the bench database."""
    os.environ["DATABASE_URL"] = url
    os.environ["LOG_LEVEL"] = "ERROR"
    os.environ["DOCFLOW_ENV_FILE"] = ""  # a developer's .env stays out of it
    os.environ["STORAGE_DIR"] = tempfile.mkdtemp(prefix="docflow-bench-retention-")
    if batch is None:
        os.environ.pop("RETENTION_BATCH_SIZE", None)
    else:
        os.environ["RETENTION_BATCH_SIZE"] = str(batch)


def trial(
    url: str, expired: int, live_before: int, rate: float, batch: int | None
) -> dict[str, Any]:
    """Retention runs until finished, with the writer going; checks the rows; the figures."""
    retention_env(url, batch)
    from shared.ops import retention
    from shared.platform.client import get_db, reset_db
    from shared.platform.config import get_settings, reset_settings
    from shared.platform.storage import get_storage, reset_storage

    reset_settings()
    reset_db()
    reset_storage()
    settings = get_settings()
    db, storage = get_db(), get_storage()
    db.call("retention_delete", target="document_processing_events", keep_days=30, dry_run=True)

    writer = Writer(url, rate)
    writer.start()
    if not writer.ready.wait(60):
        raise RuntimeError("the writer did not start")
    writer_started = time.perf_counter()
    time.sleep(WARMUP_S)

    runs: list[dict[str, Any]] = []
    started = time.perf_counter()
    while len(runs) < MAX_RUNS:
        report = retention.run(db, storage, settings)
        runs.append(report)
        if report["finished"]:
            break
    ended = time.perf_counter()
    time.sleep(COOLDOWN_S)
    writer.stop.set()
    writer.join()
    if writer.error:
        raise RuntimeError(f"the writer failed: {writer.error}")
    writer_ended = time.perf_counter()
    reset_db()

    wall = ended - started
    deleted = sum(r["counts"]["document_processing_events"] for r in runs)
    during = latency(writer.samples, started, ended)
    overall = latency(writer.samples, writer_started, writer_ended)
    written = writer.written
    with psycopg.connect(url, autocommit=True) as conn:
        left_expired = scalar(conn, COUNT_EXPIRED)
        left_live = scalar(conn, COUNT_LIVE)
    rows_ok = left_expired == 0 and left_live == live_before + written and deleted == expired
    result = {
        "batch_size": settings.retention_batch_size,
        "max_seconds": settings.retention_max_seconds,
        "runs": len(runs),
        "finished": bool(runs[-1]["finished"]),
        "wall_s": round(wall, 2),
        "deleted": deleted,
        "rows_per_s": round(deleted / wall) if wall > 0 else None,
        "run_elapsed_ms": [r["elapsed_ms"] for r in runs],
        "counts": {t: sum(r["counts"][t] for r in runs) for t in runs[0]["counts"]},
        "expired_left": left_expired,
        "live_left": left_live,
        "live_expected": live_before + written,
        "rows_ok": rows_ok,
        "writer_during": during,
        "writer_overall": overall,
        "writer_max_behind_ms": round(writer.max_behind_s * 1000, 1),
    }
    print(
        f"  batch {result['batch_size']:,}: {len(runs)} run(s), {deleted:,} rows deleted in "
        f"{wall:.2f} s ({result['rows_per_s']:,} rows/s); left: {left_expired:,} expired, "
        f"{left_live:,} live (expected {live_before + written:,}): "
        f"{'ok' if rows_ok else 'WRONG'}"
    )
    others = {t: n for t, n in result["counts"].items() if n and t != "document_processing_events"}
    if others:
        print(
            "    the same runs also deleted: " + ", ".join(f"{n:,} {t}" for t, n in others.items())
        )
    for label, figures in (("during retention", during), ("overall", overall)):
        if figures["inserts"]:
            print(
                f"    writer {label:16}: {figures['inserts']:6,} inserts, "
                f"{figures['rate_per_s']:6.1f}/s, p50 {figures['p50_ms']:6.2f} ms, "
                f"p99 {figures['p99_ms']:6.2f} ms, max {figures['max_ms']:7.2f} ms "
                f"(from schedule: p99 {figures['sched_p99_ms']:.2f} ms, "
                f"max {figures['sched_max_ms']:.2f} ms)"
            )
    print(f"    writer at most {result['writer_max_behind_ms']} ms behind its schedule")
    return result


# The alternative measured by --compare-partitions: the same events in a table partitioned by
# day on created_at (its primary key must then include created_at), with the same indexes;
# retention drops the partitions wholly older than the cutoff.
PARTITIONED = """
drop schema if exists bench cascade;
create schema bench;
create table bench.events (
  id bigint generated always as identity,
  document_id uuid, user_id uuid, job_id uuid, event_type text not null, duration_ms integer,
  error_message text, stage text, details jsonb,
  created_at timestamptz not null default now(),
  primary key (id, created_at)
) partition by range (created_at);
create index on bench.events (created_at);
create index on bench.events (document_id);
create index on bench.events (event_type, created_at);
create index on bench.events (created_at) include (error_message) where error_message is not null;
"""
WRITE_PARTITIONED = WRITE_EVENT.replace("public.document_processing_events", "bench.events")


def partitions_trial(url: str, expired: int, live: int, rate: float) -> dict[str, Any]:
    """Seed the partitioned table like the real one, then drop the expired days' partitions
    while the writer inserts into it; the figures to set against batched deletes."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(PARTITIONED)
        today = scalar(conn, "select date_trunc('day', now())")
        uppers = {}  # partition -> its upper bound
        for day in range(-61, 3):
            name, lo = f"events_{day + 61:03d}", today + timedelta(days=day)
            uppers[name] = lo + timedelta(days=1)
            conn.execute(
                f"create table bench.{name} partition of bench.events for values"
                f" from ('{lo.isoformat()}') to ('{uppers[name].isoformat()}')"
            )
        now = scalar(conn, "select now()")
        for total, start, base in ((expired, "60 days", 0), (live, "29 days", expired // 10 + 1)):
            for lo_row in range(0, total, SEED_BATCH):
                conn.execute(
                    SEED_EVENTS.replace("public.document_processing_events", "bench.events"),
                    {"user": USER, "now": now, "start": start, "span": "29 days",
                     "total": total, "lo": lo_row, "hi": min(total, lo_row + SEED_BATCH),
                     "base": base},
                )  # fmt: skip
        conn.execute("vacuum analyze bench.events")
        cutoff = scalar(conn, "select now() - interval '30 days'")
        doomed = [name for name, upper in uppers.items() if upper <= cutoff]
        expired_rows = scalar(
            conn, "select count(*) from bench.events where created_at < %s", (cutoff,)
        )
        droppable = sum(scalar(conn, f"select count(*) from bench.{name}") for name in doomed)

    writer = Writer(url, rate, WRITE_PARTITIONED)
    writer.start()
    if not writer.ready.wait(60):
        raise RuntimeError("the writer did not start")
    time.sleep(WARMUP_S)
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        for name in doomed:
            conn.execute(f"drop table bench.{name}")
    ended = time.perf_counter()
    time.sleep(COOLDOWN_S)
    writer.stop.set()
    writer.join()
    if writer.error:
        raise RuntimeError(f"the writer failed: {writer.error}")
    during = latency(writer.samples, started, ended)
    result = {
        "partitions_dropped": len(doomed),
        "rows_dropped": droppable,
        "expired_rows": expired_rows,
        "wall_s": round(ended - started, 3),
        "writer_during": during,
    }
    print(
        f"  partitioned by day: dropped {len(doomed)} partitions holding {droppable:,} of the"
        f" {expired_rows:,} expired rows in {ended - started:.3f} s"
    )
    if during["inserts"]:
        print(
            f"    writer during the drops: {during['inserts']:,} inserts, p50"
            f" {during['p50_ms']:.2f} ms, p99 {during['p99_ms']:.2f} ms, max {during['max_ms']:.2f}"
            " ms"
        )
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("drop schema bench cascade")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--expired", type=int, default=1_000_000)
    parser.add_argument("--live", type=int, default=1_000_000)
    parser.add_argument("--rate", type=float, default=500.0, help="writer inserts a second")
    parser.add_argument(
        "--batch", type=int, default=None, help="RETENTION_BATCH_SIZE (default: the setting's)"
    )
    parser.add_argument(
        "--compare-batch",
        action="store_true",
        help="then re-seed the expired rows and repeat with batches of 1,000 and 20,000",
    )
    parser.add_argument(
        "--compare-partitions",
        action="store_true",
        help="then the same events in a table partitioned by day: drop the expired partitions",
    )
    args = parser.parse_args()

    # Required secrets, dummies here; the rest of the settings as the developer has them.
    os.environ["SUPABASE_JWT_SECRET"] = DUMMY_SECRET
    os.environ["SCHEDULER_SECRET"] = DUMMY_SECRET
    admin_url = localdb.admin_url(load_settings())
    url = localdb.service_url(admin_url, DB)
    print(
        f"docflow retention benchmark: {os.cpu_count()} cores, {args.expired:,} expired and "
        f"{args.live:,} live events, writer at {args.rate:g} inserts/s"
    )
    localdb.recreate_database(admin_url, DB)
    migrate.migrate(url)
    seeding_s = seed(url, args.expired, args.live)

    main_trial = trial(url, args.expired, args.live, args.rate, args.batch)
    wall_ok = main_trial["finished"] and main_trial["wall_s"] < TARGET_WALL_S
    p99_during = main_trial["writer_during"].get("p99_ms", float("inf"))
    p99_ok = p99_during < TARGET_P99_MS
    print(
        f"  every expired row gone in {main_trial['wall_s']:.2f} s "
        f"(target < {TARGET_WALL_S:.0f} s): {'ok' if wall_ok else 'OVER'}"
    )
    print(
        f"  writer p99 during retention {p99_during:.2f} ms "
        f"(target < {TARGET_P99_MS:.0f} ms): {'ok' if p99_ok else 'OVER'}"
    )

    comparison: list[dict[str, Any]] = []
    live_so_far = main_trial["live_left"]
    rows_ok = main_trial["rows_ok"]
    if args.compare_batch:
        for n, batch in enumerate((1000, 20_000), start=1):
            print(f"  re-seeding the expired rows for batch {batch:,}")
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("vacuum analyze public.document_processing_events")
            base = (args.expired + args.live) // 10 + 1 + n * (args.expired // 10 + 1)
            seed_events(url, args.expired, "60 days", "29 days", base, "expired")
            result = trial(url, args.expired, live_so_far, args.rate, batch)
            live_so_far = result["live_left"]
            rows_ok = rows_ok and result["rows_ok"]
            comparison.append(result)
        print("  batch size   wall s    rows/s   writer p99 / max during (ms)")
        for r in sorted([main_trial, *comparison], key=lambda r: int(r["batch_size"])):
            w = r["writer_during"]
            print(
                f"  {r['batch_size']:10,} {r['wall_s']:8.2f} {r['rows_per_s']:9,}   "
                f"{w.get('p99_ms', 0):7.2f} / {w.get('max_ms', 0):7.2f}"
            )

    partitions = (
        partitions_trial(url, args.expired, args.live, args.rate)
        if args.compare_partitions
        else None
    )

    within = bool(wall_ok and p99_ok and rows_ok)
    print(
        json.dumps(
            {
                "retention": {
                    "expired": args.expired,
                    "live": args.live,
                    "rate": args.rate,
                    "seeding_s": round(seeding_s, 1),
                    **main_trial,
                },
                "compare_batch": comparison,
                "compare_partitions": partitions,
                "rows_ok": rows_ok,
                "targets": {"wall_s": TARGET_WALL_S, "writer_p99_ms": TARGET_P99_MS},
                "targets_met": within,
            }
        )
    )
    return 0 if within else 1


if __name__ == "__main__":
    raise SystemExit(main())
