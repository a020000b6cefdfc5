"""The policies' decisions on hand-built instances whose every outcome can be worked out."""

from __future__ import annotations

import dataclasses

import numpy as np
from serving_helpers import tiny_instance, tiny_workload

from graphrec.serving.policies import TwoStepPolicy, make_policy
from graphrec.serving.simulator import simulate
from graphrec.serving.state import ClusterView


def _two_tasks(deadlines: list[float], accuracy_sensitivity: list[float]) -> ClusterView:
    wl = tiny_workload(n_servers=1, accuracies=(0.8, 0.9))  # default: v1
    inst = tiny_instance(wl, np.array([[2.0], [10.0]]), [0, 0], deadlines)
    inst = dataclasses.replace(inst, accuracy_sensitivity=np.array(accuracy_sensitivity))
    return ClusterView(inst, 1)


def test_two_step_keeps_the_default_variant_when_every_task_has_time() -> None:
    plan = TwoStepPolicy().plan(_two_tasks([12, 30], [1, 1]), 0, [0, 1], 0.0, 0.0)
    assert plan.order == [0, 1] and plan.variants == {0: 1, 1: 1} and plan.shed == []


def test_two_step_downgrades_the_task_that_cares_least_about_accuracy() -> None:
    # both on v1 end at 10 and 20; the second deadline is 15: one of them must yield
    policy = TwoStepPolicy()
    plan = policy.plan(_two_tasks([12, 15], [1, 0]), 0, [0, 1], 0.0, 0.0)
    assert plan.variants == {0: 1, 1: 0} and plan.shed == []
    plan = policy.plan(_two_tasks([12, 15], [0, 1]), 0, [0, 1], 0.0, 0.0)
    assert plan.variants == {0: 0, 1: 1} and plan.shed == []


def test_two_step_upgrades_when_server_time_is_free_and_sheds_what_cannot_fit() -> None:
    wl = tiny_workload(n_servers=1, accuracies=(0.8, 0.9, 0.95))  # default: v1
    inst = tiny_instance(wl, np.array([[2.0], [5.0], [10.0]]), [0, 0, 0], [30, 30, 3])
    view = ClusterView(inst, 1)
    plan = TwoStepPolicy().plan(view, 0, [0, 1], 0.0, 0.0)
    assert plan.variants == {0: 2, 1: 2}  # 10 + 10 ms: both fit with the accurate one
    priced = TwoStepPolicy().plan(view, 0, [0, 1], 0.0, 1.0)
    assert priced.variants == {0: 1, 1: 1}  # at 1 utility per ms, no upgrade pays
    late = TwoStepPolicy().plan(view, 0, [2], 5.0, 0.0)
    assert late.order == [] and late.shed == [2]


def test_two_step_rejects_with_a_reason_what_only_costs_queued_tasks() -> None:
    wl = tiny_workload(n_servers=1, accuracies=(0.9,))
    inst = tiny_instance(wl, np.array([[10.0]]), [0, 1, 2], [100, 21, 21])
    out = simulate(inst, make_policy("two_step")).outcomes
    assert [o.status for o in out] == ["met", "met", "rejected"]
    assert out[2].reason.startswith("every server that could finish it in time is full")


def test_two_step_floor_never_runs_a_variant_below_the_default() -> None:
    wl = tiny_workload(n_servers=1, accuracies=(0.8, 0.9))
    inst = tiny_instance(wl, np.array([[2.0], [10.0]]), [0, 0], [12, 15])
    floor = simulate(inst, make_policy("two_step_floor")).outcomes
    assert [(o.status, o.variant) for o in floor] == [("met", 1), ("rejected", -1)]
    free = simulate(inst, make_policy("two_step")).outcomes
    assert [(o.status, o.variant) for o in free] == [("met", 1), ("met", 0)]


def test_edf_baselines_run_the_variant_their_name_says() -> None:
    wl = tiny_workload(n_servers=1, accuracies=(0.8, 0.9, 0.95))  # default: v1
    inst = tiny_instance(wl, np.array([[2.0], [5.0], [10.0]]), [0, 50], [100, 150])
    for name, variant in (("edf", 1), ("edf_accurate", 2), ("edf_fastest", 0)):
        out = simulate(inst, make_policy(name)).outcomes
        assert [o.variant for o in out] == [variant, variant], name
