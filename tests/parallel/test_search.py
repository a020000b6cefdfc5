"""Searches: PSO against exhaustive search, the baselines, and impossible inputs."""

from __future__ import annotations

import pytest

from graphrec.parallel.cluster import Cluster, Device, Network, local_cluster
from graphrec.parallel.profile import LayerProfile, ModelProfile, PlanInputError
from graphrec.parallel.search import (
    SearchSpace,
    dp_only_search,
    exhaustive_search,
    pipedream_search,
    pso_search,
    search,
)

_NET = Network(0.05, 2.0, 0.05, 1.0, optimizer_ms_per_mb=0.1, overlap=0.5)


def _profile(weights: list[float], params_mb: float = 8.0) -> ModelProfile:
    n = len(weights)
    layers = tuple(
        LayerProfile(
            name=f"l{k}",
            modules=(f"l{k}",),
            fwd_flops=w,
            bwd_flops=2 * w,
            param_bytes=params_mb * 1024**2 * (1.0 if k % 2 else 0.2),
            act_bytes=2e4,
            out_bytes=4e3 if k < n - 1 else 0.0,
            fwd_ms=(0.05, 0.02 * w),
            bwd_ms=(0.05, 0.04 * w),
        )
        for k, w in enumerate(weights)
    )
    return ModelProfile("synthetic", layers, time_source="estimated")


def test_pso_finds_the_exhaustive_optimum_on_unequal_devices() -> None:
    prof = _profile([1, 3, 2, 5, 1, 4])
    devs = (
        Device("a", 2.0, 1e4),
        Device("a", 2.0, 1e4),
        Device("b", 1.0, 1e4),
        Device("b", 1.0, 1e4),
    )
    space = SearchSpace(prof, Cluster(devs, _NET), batch=16)
    best = exhaustive_search(space)
    pso = pso_search(space, seed=1)
    assert pso.cost.step_time_ms <= best.cost.step_time_ms * 1.01
    assert pso.evaluations > 0 and pso.seconds > 0


def test_pipeline_wins_when_gradients_are_heavy() -> None:
    # Big parameters and a slow all-reduce: data parallel should lose to a pipeline.
    prof = _profile([1, 1, 1, 1], params_mb=64.0)
    space = SearchSpace(prof, local_cluster(2, memory_mb=1e5, network=_NET), batch=16)
    dp = dp_only_search(space)
    best = exhaustive_search(space)
    assert best.strategy.num_stages == 2
    assert best.cost.step_time_ms < dp.cost.step_time_ms
    assert pso_search(space).cost.step_time_ms == pytest.approx(best.cost.step_time_ms)
    assert pipedream_search(space).cost.step_time_ms >= best.cost.step_time_ms


def test_impossible_inputs_get_clear_errors() -> None:
    prof = _profile([1, 1, 1, 1], params_mb=64.0)
    with pytest.raises(PlanInputError, match="zero devices"):
        SearchSpace(prof, Cluster((), _NET), batch=16)
    with pytest.raises(PlanInputError, match="not divisible by 3 micro-batches"):
        SearchSpace(prof, local_cluster(2, network=_NET), batch=16, micro_batches=3)
    with pytest.raises(PlanInputError, match="unknown strategy"):
        SearchSpace(prof, local_cluster(2, network=_NET), batch=16, kinds=("tensor",))
    tiny = SearchSpace(prof, local_cluster(2, memory_mb=10.0, network=_NET), batch=16)
    with pytest.raises(PlanInputError, match="fits on no device"):
        search(tiny, "pso")
    with pytest.raises(PlanInputError, match="unknown search method"):
        search(tiny, "annealing")
