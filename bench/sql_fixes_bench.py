"""Issue 14's SQL changes, before and after, on the same seeded data.

Two fresh databases on the local PostgreSQL: `docflow_bench_sql_before` migrated up to (not
including) BEFORE_VERSION, and `docflow_bench_sql_after` with every migration. Each gets the
same rows: N users, J jobs spread over them (mostly finished history, a few pending and
processing), their documents, and three lifecycle events per job, created over 30 days. Then:

1. `list_jobs` as one user (the first page, 50 rows; and the first page of their completed
   jobs): the plan PostgreSQL runs inside the function (auto_explain, nested statements) and
   the median/p95 time of repeated calls under the user's role and claims;
2. `queue_health` as the service and as an admin: median/p95 of repeated calls;
3. deleting one user (cascading to their documents, jobs and events), in a transaction rolled
   back: the plan of the cascade's delete of events, and the median time;
4. the queue's hot path, the SQL alone, alternating between the two databases round by round so
   that both see the same machine load: per round, `enqueue_jobs` of 2,000 jobs, four
   `claim_jobs` of 500 and their four `complete_jobs`, 200 `create_upload` calls, and their
   200 jobs claimed and completed 10 at a time (the shipped worker batch)
   (microseconds of the server process's CPU per job, median over the rounds; wall time
   where the server's /proc cannot be read). The new index, the job counters and the
   narrowed event guard all sit on this path; nothing folds the counters meanwhile, as in
   `make bench`. These sessions run with synchronous_commit off: the commit's flush is the
   same for both databases, and on a busy disk it drowns the statements' own cost.

Usage: python bench/sql_fixes_bench.py [--jobs 100000] [--users 1000] [--runs 30] [--rounds 15]
       [--hot-path-only]
The last line is the whole result as JSON.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from shared.dev import localdb, migrate  # noqa: E402
from shared.platform.config import load_settings  # noqa: E402

BEFORE_VERSION = "20261207170000"  # the first migration of issue 14
DBS = {"before": "docflow_bench_sql_before", "after": "docflow_bench_sql_after"}


def migrate_before(url: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for path in sorted(migrate.MIGRATIONS_DIR.glob("*.sql")):
            if path.name[:14] < BEFORE_VERSION:
                shutil.copy(path, tmp)
        migrate.migrate(url, Path(tmp))


def seed(admin_url: str, users: int, jobs: int) -> list[str]:
    """Deterministic rows (no random()): the same in both databases."""
    user_ids = [str(uuid.UUID(int=i + 1)) for i in range(users)]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            "insert into auth.users (id) select unnest(%s::uuid[])",
            (user_ids,),
        )
        conn.execute(
            "create temporary table seed as"
            " select g, (%(users)s::uuid[])[1 + g %% %(n_users)s] as user_id,"
            "        timestamptz '2026-01-01 00:00+00'"
            "          + make_interval(secs => g * (30 * 86400.0 / %(jobs)s)) as created_at,"
            "        case when g %% 200 < 3 then 'pending'"
            "             when g %% 200 = 3 then 'processing'"
            "             when g %% 200 < 8 then 'failed'"
            "             when g %% 200 < 10 then 'cancelled'"
            "             else 'completed' end as status,"
            "        (array['low', 'normal', 'normal', 'high'])[1 + g %% 4] as priority"
            "   from generate_series(1, %(jobs)s) g",
            {"users": user_ids, "n_users": users, "jobs": jobs},
        )
        conn.execute(
            "insert into public.documents (id, user_id, original_filename, content_type,"
            "   size_bytes, sha256, storage_path, created_at, updated_at)"
            " select uuid_in(md5('doc' || g)::cstring), user_id, 'doc.txt', 'text/plain', 100,"
            "        md5('doc' || g) || md5('doc' || g), user_id || '/' || g, created_at,"
            "        created_at"
            "   from seed"
        )
        conn.execute(
            "insert into public.processing_jobs (id, document_id, user_id, status, priority,"
            "   attempts, run_at, lease_owner, lease_expires_at, created_at, started_at,"
            "   completed_at, duration_ms, updated_at)"
            " select uuid_in(md5('job' || g)::cstring), uuid_in(md5('doc' || g)::cstring),"
            "        user_id, status, priority,"
            "        case when status = 'pending' then g % 2 else 1 end,"
            "        created_at,"
            "        case when status = 'processing' then 'bench-worker' end,"
            "        case when status = 'processing' then created_at + interval '30 s' end,"
            "        created_at, created_at + interval '1 s',"
            "        case when status in ('completed', 'failed', 'cancelled')"
            "             then created_at + interval '3 s' end,"
            "        case when status in ('completed', 'failed', 'cancelled') then 2000 end,"
            "        created_at"
            "   from seed"
        )
        conn.execute(
            "insert into public.document_processing_events"
            "   (document_id, user_id, job_id, event_type, duration_ms, created_at)"
            " select uuid_in(md5('doc' || g)::cstring), user_id,"
            "        uuid_in(md5('job' || g)::cstring), e.event_type,"
            "        case when e.event_type in ('completed', 'failed') then 2000 end,"
            "        created_at + e.offset_"
            "   from seed cross join lateral (values"
            "     ('upload_started', interval '0 s'),"
            "     ('processing_started', interval '1 s'),"
            "     (case when status in ('completed', 'failed', 'cancelled') then"
            "        case status when 'cancelled' then 'cancelled' else status end end,"
            "      interval '3 s')) e (event_type, offset_)"
            "  where e.event_type is not null"
        )
        conn.execute("select public.fold_analytics()")
        conn.execute("vacuum analyze")
    return user_ids


def timed(fn: Callable[[], Any], runs: int) -> dict[str, float]:
    fn()  # warm the plan caches
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return {
        "median_ms": round(statistics.median(times), 2),
        "p95_ms": round(times[max(0, int(len(times) * 0.95) - 1)], 2),
    }


def as_user(conn: psycopg.Connection, user_id: str, admin: bool = False) -> None:
    claims = {"sub": user_id, "role": "authenticated", "app_metadata": {}}
    if admin:
        claims["app_metadata"] = {"role": "admin"}
    conn.execute(
        "select set_config('role', 'authenticated', true),"
        " set_config('request.jwt.claims', %s, true)",
        (json.dumps(claims),),
    )


def explain_nested(conn: psycopg.Connection, statement: str, params: Any, setup: str = "") -> str:
    """The plans of the statements run inside `statement` (auto_explain; superuser)."""
    plans: list[str] = []

    def keep(diag: psycopg.errors.Diagnostic) -> None:
        if diag.message_primary and "Query Text:" in diag.message_primary:
            plans.append(diag.message_primary)

    conn.add_notice_handler(keep)
    try:
        with conn.transaction(force_rollback=True):
            conn.execute("load 'auto_explain'")
            conn.execute("set local auto_explain.log_min_duration = 0")
            conn.execute("set local auto_explain.log_nested_statements = on")
            conn.execute("set local auto_explain.log_analyze = on")
            conn.execute("set local auto_explain.log_buffers = on")
            conn.execute("set local auto_explain.log_timing = on")
            conn.execute("set local client_min_messages = log")
            if setup:
                conn.execute(setup)
            conn.execute(statement, params)
    finally:
        conn.remove_notice_handler(keep)
    return "\n\n".join(plans)


def bench(admin_url: str, dbname: str, users: list[str], runs: int) -> dict[str, Any]:
    url = localdb.service_url(admin_url, dbname)
    superuser = localdb.url_for(admin_url, dbname)
    user = users[1]
    admin = users[0]
    with psycopg.connect(superuser, autocommit=True) as su:
        su.execute(
            'update auth.users set raw_app_meta_data = \'{"role": "admin"}\' where id = %s',
            (admin,),
        )
    out: dict[str, Any] = {}
    with psycopg.connect(url, autocommit=True) as conn:

        def list_page(status: str | None) -> Callable[[], Any]:
            def run() -> Any:
                with conn.transaction():
                    as_user(conn, user)
                    return conn.execute(
                        "select public.list_jobs(status => %s, max_rows => 50)", (status,)
                    ).fetchone()

            return run

        out["list_jobs_user"] = timed(list_page(None), runs)
        out["list_jobs_user_completed"] = timed(list_page("completed"), runs)

        def health(admin_caller: bool) -> Callable[[], Any]:
            def run() -> Any:
                with conn.transaction():
                    if admin_caller:
                        as_user(conn, admin, admin=True)
                    return conn.execute("select public.queue_health()").fetchone()

            return run

        out["queue_health_service"] = timed(health(False), runs)
        out["queue_health_admin"] = timed(health(True), runs)

    with psycopg.connect(superuser, autocommit=True) as su:
        claims = json.dumps({"sub": user, "role": "authenticated", "app_metadata": {}})
        out["list_jobs_plan"] = explain_nested(
            su,
            "select public.list_jobs(max_rows => 50)",
            None,
            setup=(
                "select set_config('request.jwt.claims', '"
                + claims
                + "', true), set_config('role', 'authenticated', true)"
            ),
        )

        def delete_user(victim: str) -> Callable[[], Any]:
            def run() -> Any:
                with su.transaction(force_rollback=True):
                    su.execute("delete from auth.users where id = %s", (victim,))

            return run

        deletes = [timed(delete_user(victim), 1)["median_ms"] for victim in users[10 : 10 + runs]]
        out["delete_user_ms"] = {
            "median_ms": round(statistics.median(deletes), 2),
            "p95_ms": round(sorted(deletes)[max(0, int(len(deletes) * 0.95) - 1)], 2),
        }
        plan = explain_nested(su, "delete from auth.users where id = %s", (users[5],))
        out["delete_user_events_plan"] = "\n\n".join(
            p for p in plan.split("\n\n") if "document_processing_events" in p
        )
    return out


def hot_path(urls: dict[str, str], rounds: int) -> dict[str, dict[str, float]]:
    """Microseconds per job of each hot-path call, median over `rounds`, both databases
    alternately (the order swapped every round)."""
    per: dict[str, dict[str, list[float]]] = {label: {} for label in urls}
    # Per database, one session for the batch calls and one for single uploads, as the worker
    # and the uploads function have: a session's plans of the analytics trigger are made for
    # the size of its first statement's events (a batch, or one upload).
    conns = {
        label: (psycopg.connect(url, autocommit=True), psycopg.connect(url, autocommit=True))
        for label, url in urls.items()
    }
    try:
        users = {}
        for label, pair in conns.items():
            for conn in pair:
                # The commit's flush to disk is the same for both and, on a busy disk, large
                # enough to drown the statements' own cost: leave it out of this measurement.
                conn.execute("set synchronous_commit = off")
            users[label] = str(uuid.uuid4())
            pair[0].execute("insert into auth.users (id) values (%s)", (users[label],))
        for r in range(rounds):
            order = list(urls) if r % 2 == 0 else list(reversed(list(urls)))
            for label in order:
                one_round(*conns[label], users[label], r, per[label])
    finally:
        for pair in conns.values():
            for conn in pair:
                conn.close()
    return {
        label: {op: round(statistics.median(values), 1) for op, values in ops.items()}
        for label, ops in per.items()
    }


def backend_cpu_ns(conn: psycopg.Connection) -> int | None:
    """CPU time the connection's server process has used so far (Linux, a local server)."""
    try:
        with open(f"/proc/{conn.info.backend_pid}/schedstat") as f:
            return int(f.read().split()[0])
    except OSError:
        return None


def one_round(
    conn: psycopg.Connection,
    uploads: psycopg.Connection,
    user: str,
    r: int,
    times: dict[str, list[float]],
) -> None:
    """One round of the hot path; per call, the server process's CPU time when it can be
    read (it does not count the time spent waiting for a CPU on a busy machine), else the
    wall time."""

    class Clock:
        def __init__(self, session: psycopg.Connection = conn) -> None:
            self.session = session
            self.total = 0.0

        def __enter__(self) -> None:
            self.cpu = backend_cpu_ns(self.session)
            self.wall = time.perf_counter()

        def __exit__(self, *exc: object) -> None:
            cpu = backend_cpu_ns(self.session)
            if cpu is not None and self.cpu is not None:
                self.total += (cpu - self.cpu) / 1e9
            else:
                self.total += time.perf_counter() - self.wall

    def record(op: str, clock: Clock, jobs: int) -> None:
        times.setdefault(op, []).append(clock.total / jobs * 1e6)

    # Fresh statistics each round (and so fresh plans), as autovacuum keeps them on a live
    # database: plans made while the tables were empty would scan what has grown since.
    conn.execute("analyze")
    docs = [
        {"document_id": str(row[0])}
        for row in conn.execute(
            "insert into public.documents"
            " (user_id, original_filename, content_type, size_bytes, sha256, storage_path)"
            " select %s, 'hot.txt', 'text/plain', 1, repeat('a', 64),"
            "        %s || '/hot-' || %s || '-' || g from generate_series(1, 2000) g"
            " returning id",
            (user, user, r),
        ).fetchall()
    ]
    clock = Clock()
    with clock:
        conn.execute("select public.enqueue_jobs(%s::jsonb)", (json.dumps(docs),))
    record("enqueue_jobs (2,000)", clock, len(docs))

    claimed, clock = [], Clock()
    for _ in range(4):
        with clock:
            row = conn.execute("select public.claim_jobs('hot', 500, 30)").fetchone()
        assert row is not None
        claimed.append(row[0])
    record("claim_jobs (batch 500)", clock, 2000)

    clock = Clock()
    for batch in claimed:
        completions = [{"id": j["id"], "attempt": j["attempts"], "result": {}} for j in batch]
        with clock:
            conn.execute(
                "select public.complete_jobs('hot', %s::jsonb)", (json.dumps(completions),)
            )
    record("complete_jobs (batch 500)", clock, 2000)

    clock = Clock(uploads)
    for i in range(200):
        with clock:
            uploads.execute(
                "select public.create_upload(%s, 'hot.txt', 'text/plain', 1, repeat('b', 64), %s)",
                (user, f"{user}/up-{r}-{i}"),
            )
    record("create_upload", clock, 200)

    # The shipped worker settings: claims and completions of 10, the 200 uploads' jobs.
    claim, complete = Clock(), Clock()
    for _ in range(20):
        with claim:
            row = conn.execute("select public.claim_jobs('hot10', 10, 30)").fetchone()
        assert row is not None
        completions = [{"id": j["id"], "attempt": j["attempts"], "result": {}} for j in row[0]]
        with complete:
            conn.execute(
                "select public.complete_jobs('hot10', %s::jsonb)", (json.dumps(completions),)
            )
    record("claim_jobs (batch 10)", claim, 200)
    record("complete_jobs (batch 10)", complete, 200)
    conn.execute("select public.claim_jobs('drain', 1000, 30)")  # keep the queue short


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--hot-path-only", action="store_true", help="skip the seeded reads (1-3)")
    args = parser.parse_args()

    admin_url = localdb.admin_url(load_settings())
    results: dict[str, Any] = {"jobs": args.jobs, "users": args.users, "runs": args.runs}
    urls = {}
    for label, dbname in DBS.items():
        localdb.recreate_database(admin_url, dbname)
        url = urls[label] = localdb.service_url(admin_url, dbname)
        if label == "before":
            migrate_before(url)
        else:
            migrate.migrate(url)
        if not args.hot_path_only:
            users = seed(localdb.url_for(admin_url, dbname), args.users, args.jobs)
            results[label] = bench(admin_url, dbname, users, args.runs)
    results["hot_path_us_per_job"] = hot_path(urls, args.rounds)
    for dbname in DBS.values():
        localdb.drop_database(admin_url, dbname)

    for label in DBS if not args.hot_path_only else ():
        r = results[label]
        print(f"\n=== {label} ({args.jobs:,} jobs, {args.users:,} users) ===", file=sys.stderr)
        for key in (
            "list_jobs_user",
            "list_jobs_user_completed",
            "queue_health_service",
            "queue_health_admin",
            "delete_user_ms",
        ):
            print(
                f"{key:28} median {r[key]['median_ms']:8.2f} ms   p95 {r[key]['p95_ms']:8.2f} ms",
                file=sys.stderr,
            )
        print("\nlist_jobs, one user's first page, the plan inside the function:", file=sys.stderr)
        print(r["list_jobs_plan"], file=sys.stderr)
        print("\ndeleting a user, the cascade's delete of events:", file=sys.stderr)
        print(r["delete_user_events_plan"], file=sys.stderr)
    print("\nhot path, microseconds per job (median of the rounds):", file=sys.stderr)
    hot = results["hot_path_us_per_job"]
    for op in hot["before"]:
        b, a = hot["before"][op], hot["after"][op]
        print(f"{op:28} before {b:8.1f}   after {a:8.1f}   ({a / b - 1:+.0%})", file=sys.stderr)
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
