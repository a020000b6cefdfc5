"""Tests for graphrec.bench.protocol: the timing loop and output agreement."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from graphrec.bench.protocol import (
    LatencyStats,
    MeasureConfig,
    compare_outputs,
    measure_latency,
    tolerance_for,
)


def test_measure_latency_respects_bounds() -> None:
    calls = []
    cfg = MeasureConfig(warmup_runs=2, min_runs=5, max_runs=12, min_time_s=0.0, max_time_s=10.0)
    stats = measure_latency(lambda: calls.append(1), cfg)
    assert 5 <= stats.n_runs <= 12
    assert len(calls) == stats.n_runs + 2
    assert stats.p10_ms <= stats.p50_ms <= stats.p90_ms
    assert stats.min_ms <= stats.p10_ms


def test_measure_latency_stops_at_max_time() -> None:
    import time

    cfg = MeasureConfig(
        warmup_runs=0, min_runs=1000, max_runs=10**6, min_time_s=0.0, max_time_s=0.05
    )
    stats = measure_latency(lambda: time.sleep(0.002), cfg)
    assert stats.n_runs < 1000
    assert stats.p50_ms >= 2.0


def test_stats_from_samples() -> None:
    s = LatencyStats.from_samples([1.0, 2.0, 3.0, 4.0, 5.0], total_s=0.015)
    assert s.p50_ms == 3.0 and s.n_runs == 5 and s.min_ms == 1.0
    assert s.std_ms == pytest.approx(np.std([1, 2, 3, 4, 5], ddof=1))


def test_compare_exact_and_flattened() -> None:
    ref = [np.arange(6, dtype=np.float32).reshape(1, 2, 3)]
    same = compare_outputs([ref[0].reshape(2, 3)], ref, "fp32")  # batch dim dropped
    assert same.ok and same.max_abs_err == 0.0


def test_compare_detects_wrong_values() -> None:
    ref = [np.ones((1, 10), np.float32)]
    off = [ref[0] * 1.01]
    agreement = compare_outputs(off, ref, "fp32")
    assert not agreement.ok and agreement.max_rel_err == pytest.approx(0.01, rel=1e-3)
    assert compare_outputs(off, ref, "fp16").ok  # within the fp16 tolerance


@pytest.mark.parametrize(
    ("outputs", "reason"),
    [
        ([np.ones(5, np.float32)], "shape"),
        ([], "outputs"),
        ([np.array([np.nan, 1, 1, 1], np.float32)], "NaN"),
    ],
)
def test_compare_failures(outputs: list[np.ndarray], reason: str) -> None:
    agreement = compare_outputs(outputs, [np.ones(4, np.float32)], "fp32")
    assert not agreement.ok and reason in agreement.reason


def test_tolerances_are_ordered() -> None:
    assert tolerance_for("fp32")[0] < tolerance_for("fp16")[0] < tolerance_for("int8")[0]


class _FakeClock:
    """A clock whose runs take the durations of ``draw()`` (seconds); it is read once
    at the start, then before and after each run."""

    def __init__(self, draw: Any) -> None:
        self.t = 0.0
        self.draw = draw
        self.ticks = 0

    def __call__(self) -> float:
        self.ticks += 1
        if self.ticks % 2 == 1 and self.ticks > 1:  # read after a run: it took draw()
            self.t += self.draw()
        return self.t


def test_median_ci_is_distribution_free_and_narrows() -> None:
    from graphrec.bench.protocol import median_ci

    assert median_ci([1.0, 2.0, 3.0]) is None  # too few for a 95 % interval
    rng = np.random.default_rng(0)
    widths = []
    for n in (20, 200, 2000):
        x = rng.lognormal(0.0, 0.3, size=n)  # skewed, like latencies
        lo, hi = median_ci(x)  # type: ignore[misc]
        assert lo <= float(np.median(x)) <= hi
        widths.append(hi - lo)
    assert widths[0] > widths[1] > widths[2]
    # coverage: the true median (1.0) falls in ~95 % of intervals
    hits = 0
    for _ in range(400):
        lo, hi = median_ci(rng.lognormal(0.0, 0.3, size=60))  # type: ignore[misc]
        hits += lo <= 1.0 <= hi
    assert 0.90 <= hits / 400 <= 0.99


def test_ci_stop_runs_longer_on_noisy_runs() -> None:
    rng = np.random.default_rng(1)
    cfg = MeasureConfig(warmup_runs=0, min_runs=10, min_time_s=0.0, max_time_s=1e9, max_runs=10**5)
    quiet = measure_latency(lambda: None, cfg, clock=_FakeClock(lambda: 1e-3))
    noisy = measure_latency(
        lambda: None, cfg, clock=_FakeClock(lambda: 1e-3 * rng.lognormal(0.0, 0.5))
    )
    assert quiet.ci_rel is not None and quiet.ci_rel <= 0.02
    assert noisy.ci_rel is not None and noisy.ci_rel <= 0.02  # it kept going until tight
    assert noisy.n_runs > 5 * quiet.n_runs


def test_ci_stop_gives_up_at_the_time_cap() -> None:
    rng = np.random.default_rng(2)
    cfg = MeasureConfig(warmup_runs=0, min_runs=10, min_time_s=0.0, max_time_s=0.2)
    stats = measure_latency(
        lambda: None, cfg, clock=_FakeClock(lambda: 1e-2 * rng.lognormal(0.0, 1.0))
    )
    assert stats.total_s <= 0.2 + 1.0 and stats.ci_rel is not None and stats.ci_rel > 0.02


def test_legacy_protocol_and_its_name() -> None:
    assert MeasureConfig().protocol == "2.0"
    old = MeasureConfig.legacy()
    assert old.protocol == "1.0" and not old.pin_cores and not old.quiet_timing
    assert MeasureConfig(pin_cores=False).protocol == "custom"
    # the legacy loop stops on a stable running median, not on the interval
    rng = np.random.default_rng(3)
    stats = measure_latency(
        lambda: None,
        MeasureConfig.legacy(warmup_runs=0, min_time_s=0.0, max_time_s=1e9),
        clock=_FakeClock(lambda: 1e-3 * rng.lognormal(0.0, 0.5)),
    )
    assert stats.n_runs < 200


def test_machine_load_busy_thresholds() -> None:
    from graphrec.bench.protocol import LoadProbe, MachineLoad

    cfg = MeasureConfig()
    assert not MachineLoad(0.02, 0.0, 1.0).busy(cfg)
    assert MachineLoad(0.3, 0.0, 1.0).busy(cfg)
    assert MachineLoad(0.0, 0.2, 1.0).busy(cfg)
    assert not MachineLoad(None, None, None).busy(cfg)
    probe = LoadProbe.start()
    sum(i * i for i in range(200_000))  # this process's own work is not foreign
    load = probe.stop()
    assert load.foreign is None or 0.0 <= load.foreign <= 1.0
