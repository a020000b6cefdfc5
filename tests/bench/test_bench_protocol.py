"""Tests for graphrec.bench.protocol: the timing loop and output agreement."""

from __future__ import annotations

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
