"""The soak's verdict logic (bench/soak_verdict.py): percentiles, trends, RSS growth, the job
event state machine and the goals. Pure functions: no database, no server."""

from __future__ import annotations

import importlib.util
import math
import random
import sys
import types

import pytest

from tests.support.data import REPO_ROOT


def load_verdict() -> types.ModuleType:
    path = REPO_ROOT / "bench" / "soak_verdict.py"
    spec = importlib.util.spec_from_file_location("soak_verdict_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


sv = load_verdict()


# --- percentile ---------------------------------------------------------------------------------


def test_percentile_interpolates_between_ranks() -> None:
    assert sv.percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5
    assert sv.percentile([float(v) for v in range(1, 101)], 99) == pytest.approx(99.01)
    assert sv.percentile([7.0], 99) == 7.0
    assert sv.percentile([1.0, 2.0, 3.0], 0) == 1.0
    assert sv.percentile([1.0, 2.0, 3.0], 100) == 3.0


def test_percentile_of_nothing_is_none_and_q_is_checked() -> None:
    assert sv.percentile([], 50) is None
    with pytest.raises(ValueError):
        sv.percentile([1.0], 101)


# --- trends -------------------------------------------------------------------------------------


def test_a_noisy_rising_series_is_upward() -> None:
    rng = random.Random(3)
    xs = [float(i * 10) for i in range(60)]
    ys = [0.05 * x + rng.uniform(-2, 2) for x in xs]
    trend = sv.linear_trend(xs, ys)
    assert trend is not None
    assert trend.slope == pytest.approx(0.05, abs=0.01)
    assert trend.t > 10
    assert trend.rise == pytest.approx(0.05 * 590, rel=0.2)
    assert sv.upward(trend, min_rise=5.0)
    assert not sv.upward(trend, min_rise=100.0)  # significant, but not material


def test_a_flat_noisy_series_is_not_upward() -> None:
    rng = random.Random(4)
    xs = [float(i * 10) for i in range(60)]
    ys = [5 + rng.uniform(-3, 3) for _ in xs]
    trend = sv.linear_trend(xs, ys)
    assert trend is not None
    assert abs(trend.t) < 3
    assert not sv.upward(trend, min_rise=5.0)


def test_a_falling_or_perfect_line() -> None:
    falling = sv.linear_trend([0.0, 1.0, 2.0, 3.0], [9.0, 7.0, 5.0, 3.0])
    assert falling is not None
    assert falling.t == -math.inf
    assert not sv.upward(falling, min_rise=0.0)
    rising = sv.linear_trend([0.0, 1.0, 2.0], [0.0, 10.0, 20.0])
    assert rising is not None and rising.t == math.inf and sv.upward(rising, min_rise=5.0)
    constant = sv.linear_trend([0.0, 1.0, 2.0], [1.0, 1.0, 1.0])
    assert constant is not None and constant.t == 0.0


def test_too_few_points_give_no_trend() -> None:
    assert sv.linear_trend([1.0, 2.0], [1.0, 2.0]) is None
    assert sv.linear_trend([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]) is None  # no x spread
    assert not sv.upward(None, min_rise=0.0)
    with pytest.raises(ValueError):
        sv.linear_trend([1.0, 2.0, 3.0], [1.0, 2.0])


# --- RSS growth ---------------------------------------------------------------------------------


def test_rss_growth_from_the_baseline_window_to_the_last_samples() -> None:
    # 100 MB during the first 2 minutes (ignored), 200 MB at the baseline, 230 MB at the end
    samples = [(float(t), 100.0) for t in range(0, 120, 10)]
    samples += [(120.0, 200.0), (130.0, 210.0), (140.0, 200.0), (150.0, 200.0)]
    samples += [(160.0, 220.0), (170.0, 230.0), (180.0, 230.0), (190.0, 230.0)]
    growth = sv.rss_growth(samples, baseline_at=120.0)
    assert growth is not None
    assert growth.baseline == 200.0  # median of 120-150 s: 200, 210, 200, 200
    assert growth.end == 230.0
    assert growth.percent == pytest.approx(15.0)


def test_one_spike_at_the_end_does_not_decide() -> None:
    samples = [(float(t), 100.0) for t in range(120, 300, 10)] + [(300.0, 500.0)]
    growth = sv.rss_growth(samples, baseline_at=120.0)
    assert growth is not None and growth.percent == 0.0


def test_rss_growth_without_samples_after_the_baseline() -> None:
    assert sv.rss_growth([(10.0, 100.0)], baseline_at=120.0) is None
    assert sv.rss_growth([(130.0, 0.0), (140.0, 0.0)], baseline_at=120.0) is None
    # no sample inside the window: the first after the baseline is the baseline
    growth = sv.rss_growth([(200.0, 100.0), (210.0, 110.0)], baseline_at=120.0)
    assert growth is not None and growth.baseline == 100.0


def test_the_rss_goal_names_the_processes_over_the_limit() -> None:
    growths = {
        "server": sv.Growth(100.0, 105.0, 5.0),
        "worker-1": sv.Growth(100.0, 125.0, 25.0),
        "worker-2": None,
    }
    goal = sv.rss_goal(growths)
    assert not goal.ok and "worker-1 +25.0 %" in goal.detail and "server" not in goal.detail
    ok = sv.rss_goal({"server": sv.Growth(100.0, 109.0, 9.0)})
    assert ok.ok and "server" in ok.detail
    assert not sv.rss_goal({"server": None}).ok  # nothing measured is not a pass


# --- event sequences ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("events", "status"),
    [
        (["upload_started", "processing_started", "completed"], "completed"),
        (["upload_started"], "pending"),
        (["upload_started", "processing_started"], "processing"),
        (["upload_started", "cancelled"], "cancelled"),
        (["upload_started", "processing_started", "cancelled"], "cancelled"),
        (
            [
                "enqueued",
                "processing_started",
                "retry_scheduled",
                "processing_started",
                "released",
                "processing_started",
                "stalled_recovered",
                "processing_started",
                "failed",
            ],
            "failed",
        ),
        (["enqueued", "processing_started", "completed"], "completed"),
    ],
)
def test_valid_sequences(events: list[str], status: str) -> None:
    assert sv.check_sequence(events, status) == []


@pytest.mark.parametrize(
    ("events", "status", "expected"),
    [
        (
            ["upload_started", "processing_started", "completed", "completed"],
            "completed",
            "'completed' after the job was completed",
        ),
        (
            ["upload_started", "processing_started", "completed", "processing_started"],
            "completed",
            "after the job was completed",
        ),
        (["upload_started", "completed"], "completed", "not a transition from pending"),
        (["upload_started", "retry_scheduled"], "pending", "not a transition from pending"),
        (["processing_started", "completed"], "completed", "starts with 'processing_started'"),
        (["upload_started", "enqueued"], "pending", "a second start event"),
        (
            ["upload_started", "processing_started", "completed"],
            "failed",
            "end in completed but the row says failed",
        ),
        (["upload_started"], "completed", "end in pending"),
        ([], "completed", "no events"),
        (["upload_started", "processing_started", "completed"], None, "row is missing"),
    ],
)
def test_invalid_sequences(events: list[str], status: str | None, expected: str) -> None:
    problems = sv.check_sequence(events, status)
    assert problems, events
    assert any(expected in p for p in problems), problems


def test_every_state_is_reachable_and_terminal_states_have_no_way_out() -> None:
    targets = {to for moves in sv.TRANSITIONS.values() for to in moves.values()}
    assert targets | {"pending"} == set(sv.TRANSITIONS)
    for state in sv.TERMINAL:
        assert sv.TRANSITIONS[state] == {}


# --- the queue and the other goals --------------------------------------------------------------


def test_a_steady_queue_is_bounded() -> None:
    rng = random.Random(5)
    times = [float(t) for t in range(0, 900, 10)]
    ages = [rng.uniform(0, 1.5) for _ in times]
    depths = [float(rng.randint(0, 4)) for _ in times]
    goal, figures = sv.queue_goal(times, ages, depths, rate=5.0)
    assert goal.ok, goal.detail
    assert figures["final_depth"] == depths[-1]


def test_a_growing_lag_is_not_bounded() -> None:
    times = [float(t) for t in range(0, 900, 10)]
    ages = [0.05 * t for t in times]  # 45 s behind at the end
    depths = [0.0 for _ in times]
    goal, _ = sv.queue_goal(times, ages, depths, rate=5.0)
    assert not goal.ok and "oldest-pending age rises" in goal.detail


def test_a_queue_that_ends_deep_is_not_bounded() -> None:
    times = [float(t) for t in range(0, 900, 10)]
    ages = [0.5 for _ in times]
    depths = [2.0 for _ in times[:-1]] + [500.0]  # one jump at the end: no trend, but deep
    goal, _ = sv.queue_goal(times, ages, depths, rate=5.0)
    assert not goal.ok and "final depth 500" in goal.detail


def test_a_growing_depth_is_not_bounded() -> None:
    times = [float(t) for t in range(0, 900, 10)]
    ages = [1.0 for _ in times]
    depths = [t / 5 for t in times]
    goal, _ = sv.queue_goal(times, ages, depths, rate=1.0)
    assert not goal.ok and "depth rises" in goal.detail


def test_no_samples_is_not_a_pass() -> None:
    goal, _ = sv.queue_goal([], [], [], rate=1.0)
    assert not goal.ok


def test_intake_goal_is_enforced_only_at_the_default_rate() -> None:
    assert sv.intake_goal(150.0, enforced=True).ok
    slow = sv.intake_goal(250.0, enforced=True)
    assert not slow.ok and slow.enforced and not sv.passed([slow])
    informative = sv.intake_goal(250.0, enforced=False)
    assert not informative.ok and sv.passed([informative])
    assert not sv.intake_goal(None, enforced=True).ok


def test_integrity_and_retention_goals() -> None:
    assert sv.integrity_goal(0, 0, 0, 0).ok
    for counts in [(1, 0, 0, 0), (0, 1, 0, 0), (0, 0, 1, 0), (0, 0, 0, 1)]:
        assert not sv.integrity_goal(*counts).ok
    assert sv.retention_goal(0, 0, runs=1).ok
    assert not sv.retention_goal(1, 0, runs=1).ok
    assert not sv.retention_goal(0, 1, runs=1).ok
    assert not sv.retention_goal(0, 0, runs=0).ok  # no run: nothing was shown
