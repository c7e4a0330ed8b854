"""The soak's PNG chart of its time series (matplotlib, the `bench` extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

INSTALL_HINT = (
    "matplotlib is not installed, so no chart: `.venv/bin/pip install -e '.[bench]'` "
    "(or `pip install 'matplotlib>=3.8,<4'`)"
)


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def draw(report: dict[str, Any], path: Path) -> None:
    """Six panels over time (minutes from the start of the steady phase): intake p50/p99,
    queue depth and oldest-pending age, completions/s, RSS per process, PostgreSQL
    connections, table and index sizes. Raises ImportError without matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples: list[dict[str, Any]] = report["samples"]
    t0 = report["phases"]["steady_start_s"]
    xs = [(s["t"] - t0) / 60 for s in samples]

    def series(key: str) -> list[float]:
        return [float("nan") if s.get(key) is None else float(s[key]) for s in samples]

    fig, axes = plt.subplots(3, 2, figsize=(14, 11), sharex=True)
    fig.suptitle(
        f"docflow soak: {report['config']['minutes']:g} min at {report['config']['rate']:.2f} "
        f"uploads/s, {report['config']['workers']} workers  —  "
        f"{'PASS' if report['verdict']['passed'] else 'FAIL'}"
    )

    ax = axes[0][0]
    ax.plot(xs, series("intake_p50_ms"), label="p50")
    ax.plot(xs, series("intake_p99_ms"), label="p99")
    ax.axhline(200, color="red", linestyle=":", linewidth=1, label="goal p99 200 ms")
    ax.set_ylabel("intake latency (ms)")
    ax.legend(loc="upper left", fontsize=8)

    ax = axes[0][1]
    ax.plot(xs, series("queue_ready"), label="depth (ready pending)")
    ax.plot(xs, series("queue_processing"), label="processing")
    ax.set_ylabel("jobs")
    twin = ax.twinx()
    twin.plot(xs, series("oldest_pending_age_s"), color="tab:red", label="oldest pending age")
    twin.plot(
        xs, series("queue_wait_p99_s"), color="tab:purple", linestyle="--", label="queue wait p99"
    )
    twin.set_ylabel("seconds")
    ax.legend(loc="upper left", fontsize=8)
    twin.legend(loc="upper right", fontsize=8)

    ax = axes[1][0]
    ax.plot(xs, series("completions_per_s"), label="completed/s")
    ax.plot(xs, series("failures_per_s"), label="failed/s")
    ax.plot(xs, series("uploads_per_s"), label="accepted uploads/s", linestyle="--")
    ax.set_ylabel("per second")
    ax.legend(loc="upper left", fontsize=8)

    ax = axes[1][1]
    names = sorted({name for s in samples for name in s.get("rss_mb", {})})
    for name in names:
        ax.plot(xs, [s.get("rss_mb", {}).get(name, float("nan")) for s in samples], label=name)
    ax.set_ylabel("RSS (MB)")
    ax.legend(loc="upper left", fontsize=6, ncol=2)

    ax = axes[2][0]
    ax.plot(xs, series("pg_connections"), label="connections to the soak database")
    ax.plot(xs, series("pg_active"), label="active")
    ax.set_ylabel("PostgreSQL connections")
    ax.set_xlabel("minutes from the start of the steady phase")
    ax.legend(loc="upper left", fontsize=8)

    ax = axes[2][1]
    tables = sorted({name for s in samples for name in s.get("table_mb", {})})
    for name in tables:
        ax.plot(xs, [s.get("table_mb", {}).get(name, float("nan")) for s in samples], label=name)
    ax.set_ylabel("table + index size (MB)")
    ax.set_xlabel("minutes from the start of the steady phase")
    ax.legend(loc="upper left", fontsize=6, ncol=2)

    for row in axes:
        for ax in row:
            ax.axvline(0, color="grey", linewidth=0.8)
            end = (report["phases"]["steady_end_s"] - t0) / 60
            ax.axvline(end, color="grey", linewidth=0.8)
            ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
