"""Procrastinate 3.x on the same PostgreSQL: N async no-op jobs, one worker, concurrency 10,
wait=False (it exits when the queue is empty). Run by bench/queue_bench.py in its own venv;
prints one JSON line."""

from __future__ import annotations

import asyncio
import json
import sys
import time

import procrastinate


async def main(conninfo: str, jobs: int, concurrency: int) -> None:
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo))

    @app.task(name="noop")
    async def noop() -> None:
        return None

    async with app.open_async():
        await app.schema_manager.apply_schema_async()
        started = time.perf_counter()
        for i in range(0, jobs, 1000):
            await noop.batch_defer_async(*[{} for _ in range(min(1000, jobs - i))])
        enqueue_s = time.perf_counter() - started
        started = time.perf_counter()
        await app.run_worker_async(
            concurrency=concurrency, wait=False, install_signal_handlers=False
        )
        run_s = time.perf_counter() - started
        async with app.connector.pool.connection() as conn:
            cur = await conn.execute(
                "select count(*) from procrastinate_jobs where status = 'succeeded'"
            )
            row = await cur.fetchone()
    done = row[0] if row else 0
    print(
        json.dumps(
            {
                "jobs": jobs,
                "succeeded": done,
                "concurrency": concurrency,
                "enqueue_jobs_per_s": jobs / enqueue_s,
                "jobs_per_s": done / run_s,
                "seconds": run_s,
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
