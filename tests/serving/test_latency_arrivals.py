"""Latency figures come from the dataset; arrivals follow the load and the process."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from graphrec.dataset import SHIPPED_DATASET, load_dataset
from graphrec.serving.arrivals import capacity_per_ms, draw_instance
from graphrec.serving.latency import latency_table
from graphrec.serving.workload import load_workload

WORKLOAD = Path(__file__).resolve().parents[2] / "examples" / "workloads" / "two_apps.yaml"


@pytest.fixture(scope="module")
def setup():  # type: ignore[no-untyped-def]
    wl = load_workload(WORKLOAD)
    return wl, latency_table(wl)


def test_table_is_the_dataset_median_times_the_slowdown(setup) -> None:  # type: ignore[no-untyped-def]
    wl, table = setup
    meas, _, _ = load_dataset(SHIPPED_DATASET)
    for s, server in enumerate(wl.servers):
        for a, app in enumerate(wl.apps):
            for v, variant in enumerate(app.variants):
                rows = meas[
                    (meas.model_id == variant.model)
                    & (meas.candidate_id == server.candidate)
                    & (meas.status == "ok")
                ]
                if not table.hosted[a, v, s]:
                    assert (app.name, variant.name) not in server.hosts
                    continue
                assert table.p50_ms[a, v, s] == pytest.approx(
                    rows.p50_ms.median() * server.slowdown
                )
                assert table.p10_ms[a, v, s] <= table.p50_ms[a, v, s] <= table.p90_ms[a, v, s]


def test_same_seed_same_instance_and_load_sets_the_rate(setup) -> None:  # type: ignore[no-untyped-def]
    wl, table = setup
    a = draw_instance(wl, table, 3)
    b = draw_instance(wl, table, 3)
    assert np.array_equal(a.arrival_ms, b.arrival_ms) and np.array_equal(
        a.latency_ms, b.latency_ms, equal_nan=True
    )
    assert not np.array_equal(a.arrival_ms, draw_instance(wl, table, 4).arrival_ms)
    big = wl.with_arrivals(tasks=4000, load=1.3)
    inst = draw_instance(big, table, 0)
    rate = len(inst.arrival_ms) / inst.arrival_ms[-1]
    assert rate == pytest.approx(1.3 * capacity_per_ms(wl, table), rel=0.06)
    # realised latencies follow the measured medians
    med = np.nanmedian(inst.latency_ms[inst.app == 0], axis=0)
    assert np.allclose(med[table.hosted[0]], table.p50_ms[0][table.hosted[0]], rtol=0.08)


def test_bursty_is_burstier_and_diurnal_oscillates(setup) -> None:  # type: ignore[no-untyped-def]
    wl, table = setup

    def gaps_cv(process: str, **kw: float) -> float:
        inst = draw_instance(wl.with_arrivals(process=process, tasks=3000, **kw), table, 1)
        g = np.diff(inst.arrival_ms)
        return float(g.std() / g.mean())

    assert gaps_cv("poisson") == pytest.approx(1.0, abs=0.1)
    assert gaps_cv("bursty", burst_factor=3.0, burst_fraction=0.25) > 1.2
    inst = draw_instance(
        wl.with_arrivals(process="diurnal", tasks=4000, period_ms=400.0, amplitude=0.8), table, 2
    )
    phase = (inst.arrival_ms % 400.0) / 400.0
    first_half = np.mean(phase < 0.5)  # sin > 0 in the first half of the period
    assert first_half > 0.65
