"""The CP-SAT optimum: right on a worked example, never beaten by an online policy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from serving_helpers import tiny_instance, tiny_workload

from graphrec.serving.arrivals import draw_instance
from graphrec.serving.latency import latency_table
from graphrec.serving.optimum import solve_optimum
from graphrec.serving.policies import POLICY_NAMES, make_policy
from graphrec.serving.simulator import metrics, simulate
from graphrec.serving.workload import load_workload

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "workloads"


def test_worked_example() -> None:
    # utility = accuracy (no time sensitivity); 12 ms for two tasks: one large + one small
    wl = tiny_workload(n_servers=1, accuracies=(0.5, 1.0))
    inst = tiny_instance(wl, np.array([[2.0], [10.0]]), [0, 0], [12, 12], 0.0, 1.0)
    best = solve_optimum(inst, time_limit_s=10)
    assert best.proven
    assert best.utility == pytest.approx(0.75, abs=1e-4)
    assert sorted(o.variant for o in best.outcomes) == [0, 1]
    ends = sorted(o.end_ms for o in best.outcomes)
    assert ends[-1] <= 12 + 1e-9


def test_no_policy_beats_the_clairvoyant_optimum() -> None:
    wl = load_workload(EXAMPLES / "two_apps.yaml").with_arrivals(tasks=10, load=1.2)
    table = latency_table(wl)
    for seed in range(2):
        inst = draw_instance(wl, table, seed)
        best = solve_optimum(inst, time_limit_s=20)
        assert best.proven
        for name in POLICY_NAMES:
            got = metrics(inst, simulate(inst, make_policy(name, seed)).outcomes)["utility"]
            assert got <= best.bound + 1e-4


def test_events_are_refused() -> None:
    wl = load_workload(EXAMPLES / "failover.yaml").with_arrivals(tasks=5)
    inst = draw_instance(wl, latency_table(wl), 0)
    with pytest.raises(ValueError, match="does not model server events"):
        solve_optimum(inst)
