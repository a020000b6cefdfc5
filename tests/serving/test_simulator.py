"""The simulator on hand-built instances whose every outcome can be worked out."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from serving_helpers import tiny_instance, tiny_workload

from graphrec.serving.arrivals import draw_instance
from graphrec.serving.latency import latency_table
from graphrec.serving.policies import POLICY_NAMES, make_policy
from graphrec.serving.simulator import metrics, simulate, summarize
from graphrec.serving.state import Outcome
from graphrec.serving.workload import load_workload

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "workloads"


def test_fifo_and_edf_order_the_queue_as_their_names_say() -> None:
    wl = tiny_workload(n_servers=1, accuracies=(0.9,))
    inst = tiny_instance(wl, np.array([[10.0]]), [0, 1, 2], [100, 50, 25])
    fifo = simulate(inst, make_policy("fifo")).outcomes
    assert [o.start_ms for o in fifo] == [0, 10, 20]
    assert [o.status for o in fifo] == ["met", "met", "late"]
    edf = simulate(inst, make_policy("edf")).outcomes
    assert [o.start_ms for o in edf] == [0, 20, 10]
    assert [o.status for o in edf] == ["met", "met", "met"]


def test_a_baseline_drops_a_task_whose_deadline_passed_in_the_queue() -> None:
    wl = tiny_workload(n_servers=1, accuracies=(0.9,))
    inst = tiny_instance(wl, np.array([[10.0]]), [0, 1], [100, 5])
    out = simulate(inst, make_policy("fifo")).outcomes
    assert out[1].status == "rejected"
    assert "deadline passed while it waited on server 's0'" in out[1].reason


def test_a_failed_server_fails_its_running_task_and_offers_its_queue_elsewhere() -> None:
    wl = tiny_workload(
        n_servers=2, accuracies=(0.9,), events=[{"at_ms": 5, "server": "s0", "kind": "fail"}]
    )
    inst = tiny_instance(wl, np.array([[10.0, 10.0]]), [0, 1, 2], [100, 100, 100])
    out = simulate(inst, make_policy("round_robin")).outcomes
    assert out[0].status == "failed" and "'s0' failed while running it" in out[0].reason
    assert (out[1].status, out[1].server, out[1].end_ms) == ("met", 1, 11)
    assert (out[2].status, out[2].server, out[2].start_ms, out[2].end_ms) == ("met", 1, 11, 21)


def test_a_slowdown_stretches_the_runs_that_start_after_it() -> None:
    wl = tiny_workload(
        n_servers=1,
        accuracies=(0.9,),
        events=[{"at_ms": 5, "server": "s0", "kind": "slowdown", "factor": 3}],
    )
    inst = tiny_instance(wl, np.array([[10.0]]), [0, 20], [100, 100])
    out = simulate(inst, make_policy("edf")).outcomes
    assert out[0].end_ms == 10 and out[1].end_ms == pytest.approx(50)


def test_two_step_picks_the_variant_by_slack() -> None:
    wl = tiny_workload(n_servers=1, accuracies=(0.8, 0.9))
    inst = tiny_instance(wl, np.array([[2.0], [10.0]]), [0, 100], [50, 105])
    out = simulate(inst, make_policy("two_step")).outcomes
    assert (out[0].status, out[0].variant) == ("met", 1)  # slack: the accurate variant
    assert (out[1].status, out[1].variant) == ("met", 0)  # 5 ms: only the fast one fits


def test_two_step_rejects_at_once_what_no_server_can_meet() -> None:
    wl = tiny_workload(n_servers=2, accuracies=(0.8, 0.9))
    inst = tiny_instance(wl, np.array([[2.0, 3.0], [10.0, 12.0]]), [0.0], [1.5])
    out = simulate(inst, make_policy("two_step")).outcomes[0]
    assert out.status == "rejected" and math.isnan(out.start_ms)
    assert out.reason.startswith("no server can finish it before its deadline")
    assert "deadline 1.5 ms" in out.reason


def test_metrics_on_known_outcomes() -> None:
    wl = tiny_workload(n_servers=1, accuracies=(0.8, 0.9))
    inst = tiny_instance(wl, np.array([[2.0], [10.0]]), [0, 0, 0, 0], [10, 10, 10, 10], 1.0, 1.0)
    outcomes = [
        Outcome("met", 0, 0, 0, 2),
        Outcome("met", 0, 1, 2, 10),
        Outcome("late", 0, 0, 10, 20),
        Outcome("rejected", reason="x"),
    ]
    m = metrics(inst, outcomes)
    assert m["success_rate"] == 0.5
    assert m["mean_accuracy"] == pytest.approx(0.85)
    assert m["utility"] == pytest.approx(((1 + 0.8) / 2 + (1 + 0.9) / 2) / 4)
    assert m["counts"] == {"met": 2, "late": 1, "rejected": 1, "failed": 0}
    assert m["p99_ms"] == pytest.approx(np.percentile([2, 10, 20], 99))
    s = summarize([m, {**m, "success_rate": 0.7}])
    assert s["success_rate"]["mean"] == pytest.approx(0.6)
    assert s["success_rate"]["ci_low"] < 0.6 < s["success_rate"]["ci_high"]


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_no_policy_loses_a_task_through_a_failure_and_a_slowdown(name: str) -> None:
    wl = load_workload(EXAMPLES / "failover.yaml").with_arrivals(tasks=150)
    inst = draw_instance(wl, latency_table(wl), 0)
    out = simulate(inst, make_policy(name, 0)).outcomes
    assert len(out) == inst.n_tasks
    fail_at = next(e.at_ms for e in wl.events if e.kind == "fail")
    dead = next(e.server for e in wl.events if e.kind == "fail")
    for o in out:
        if o.server == dead and o.status in ("met", "late"):
            assert o.start_ms < fail_at and o.end_ms <= fail_at + 1e-9
        if o.status in ("rejected", "failed"):
            assert o.reason


def test_two_step_beats_edf_and_round_robin_under_overload() -> None:
    wl = load_workload(EXAMPLES / "two_apps.yaml").with_arrivals(load=1.4, tasks=300)
    table = latency_table(wl)
    for seed in range(2):
        inst = draw_instance(wl, table, seed)
        two = metrics(inst, simulate(inst, make_policy("two_step")).outcomes)
        for other in ("edf", "round_robin"):
            base = metrics(inst, simulate(inst, make_policy(other, seed)).outcomes)
            assert two["success_rate"] > base["success_rate"] + 0.05
            assert two["utility"] > base["utility"]
