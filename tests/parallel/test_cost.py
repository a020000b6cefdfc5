"""The cost model: pipeline simulation, all-reduce, memory, validation."""

from __future__ import annotations

from dataclasses import replace

import pytest

from graphrec.parallel.cluster import Cluster, Device, Network
from graphrec.parallel.cost import Strategy, evaluate, simulate_pipeline, validate
from graphrec.parallel.profile import LayerProfile, ModelProfile, PlanInputError


def _profile(n: int = 4, fwd: float = 1.0, params: float = 4e6, act: float = 1e5) -> ModelProfile:
    layers = tuple(
        LayerProfile(
            name=str(k),
            modules=(str(k),),
            fwd_flops=1.0,
            bwd_flops=2.0,
            param_bytes=params,
            act_bytes=act,
            out_bytes=1e4 if k < n - 1 else 0.0,
            fwd_ms=(0.0, fwd),
            bwd_ms=(0.0, 2 * fwd),
        )
        for k in range(n)
    )
    return ModelProfile("synthetic", layers, time_source="estimated")


_FREE = Network(0.0, 0.0, 0.0, 0.0, optimizer_ms_per_mb=0.0, overlap=0.0)


@pytest.mark.parametrize("schedule", ["gpipe", "1f1b"])
@pytest.mark.parametrize(("stages", "micro"), [(2, 4), (4, 8), (3, 1)])
def test_equal_stages_follow_the_bubble_formula(schedule: str, stages: int, micro: int) -> None:
    # Without communication, S equal stages and M micro-batches take (M + S - 1)(f + b).
    f, b = 1.0, 2.0
    ends, _ = simulate_pipeline([f] * stages, [b] * stages, [0.0] * (stages - 1), micro, schedule)
    assert max(ends) == pytest.approx((micro + stages - 1) * (f + b))


def test_sends_delay_the_pipeline() -> None:
    free, _ = simulate_pipeline([1.0, 1.0], [2.0, 2.0], [0.0], 4, "1f1b")
    slow, _ = simulate_pipeline([1.0, 1.0], [2.0, 2.0], [0.5], 4, "1f1b")
    assert max(slow) > max(free)


def test_ring_allreduce_formula() -> None:
    net = Network(allreduce_alpha_ms=0.1, allreduce_beta_ms_per_mb=2.0)
    mb = 1024.0 * 1024.0
    assert net.allreduce_ms(8 * mb, 1) == 0.0
    assert net.allreduce_ms(8 * mb, 2) == pytest.approx(2 * 0.1 + 8 * 2.0)
    assert net.allreduce_ms(8 * mb, 4) == pytest.approx(6 * 0.1 + 1.5 * 8 * 2.0)


def test_data_parallel_halves_compute_and_pays_allreduce() -> None:
    prof = _profile()
    net = Network(
        allreduce_alpha_ms=0.0,
        allreduce_beta_ms_per_mb=1.0,
        overlap=0.0,
        optimizer_ms_per_mb=0.0,
        p2p_alpha_ms=0.0,
        p2p_beta_ms_per_mb=0.0,
    )
    cl = Cluster((Device(), Device()), net)
    one = evaluate(prof, cl, Strategy((0,), 1, 1, "gpipe", (0,)), batch=8)
    two = evaluate(prof, cl, Strategy((0,), 2, 1, "gpipe", (0, 1)), batch=8)
    assert one.step_time_ms == pytest.approx(4 * 3.0 * 8)
    grads = 4 * 4e6 / (1024 * 1024)  # MiB all-reduced, not overlapped
    assert two.step_time_ms == pytest.approx(4 * 3.0 * 4 + grads * 1.0)
    hidden = evaluate(
        prof,
        Cluster((Device(), Device()), Network(0.0, 1.0, 0.0, 0.0, 0.0, bucket_mb=1.0, overlap=1.0)),
        Strategy((0,), 2, 1, "gpipe", (0, 1)),
        batch=8,
    )
    # Per-layer buckets: all but the last layer's all-reduce hide behind the backward.
    assert hidden.step_time_ms < two.step_time_ms
    assert hidden.allreduce_ms == pytest.approx(grads / 4, rel=0.01)


def test_1f1b_keeps_fewer_activations_than_gpipe() -> None:
    prof = _profile(act=1e6)
    cl = Cluster((Device(), Device()), _FREE)
    g = evaluate(prof, cl, Strategy((0, 2), 1, 8, "gpipe", (0, 1)), batch=32)
    o = evaluate(prof, cl, Strategy((0, 2), 1, 8, "1f1b", (0, 1)), batch=32)
    assert o.memory_mb[0] < g.memory_mb[0]
    adam = evaluate(prof, cl, Strategy((0, 2), 1, 8, "1f1b", (0, 1)), batch=32, optimizer="adam")
    # Adam keeps one more copy of the parameters than SGD with momentum (2 x 4 MB here).
    assert adam.memory_mb[0] - o.memory_mb[0] == pytest.approx(2 * 4e6 / 1024**2)


def test_slow_device_slows_its_stage() -> None:
    prof = _profile()
    cl = Cluster((Device("fast", 2.0), Device("slow", 1.0)), _FREE)
    a = evaluate(prof, cl, Strategy((0, 1), 1, 4, "1f1b", (0, 1)), batch=8)
    b = evaluate(prof, cl, Strategy((0, 1), 1, 4, "1f1b", (1, 0)), batch=8)
    # Stage 1 holds 3 of the 4 layers: it belongs on the fast device.
    assert b.step_time_ms < a.step_time_ms


def test_validate_names_the_problem() -> None:
    prof = _profile()
    cl = Cluster((Device(), Device()), _FREE)
    with pytest.raises(PlanInputError, match="not divisible by 3 micro-batches"):
        validate(Strategy((0, 2), 1, 3, "1f1b", (0, 1)), prof, cl, batch=8)
    with pytest.raises(PlanInputError, match="unknown schedule"):
        validate(Strategy((0, 2), 1, 2, "zigzag", (0, 1)), prof, cl, batch=8)
    with pytest.raises(PlanInputError, match="needs 4 devices; there are 2"):
        validate(Strategy((0, 2), 2, 1, "1f1b", (0, 1, 2, 3)), prof, cl, batch=8)
    with pytest.raises(PlanInputError, match="go past"):
        validate(Strategy((0, 9), 1, 1, "1f1b", (0, 1)), prof, cl, batch=8)
    validate(Strategy((0, 2), 1, 4, "1f1b", (0, 1)), prof, cl, batch=8)


def test_engine_overheads_add_per_pass_and_per_step() -> None:
    prof = _profile()
    cl = Cluster((Device(), Device()), _FREE)
    slow = Cluster((Device(), Device()), replace(_FREE, pipeline_pass_ms=0.5, dp_step_ms=2.0))
    pp = Strategy((0, 2), 1, 4, "1f1b", (0, 1))
    dp = Strategy((0,), 2, 1, "gpipe", (0, 1))
    # Equal stages: 2 (M + S - 1) passes on the critical path, each 0.5 ms longer.
    extra = (
        evaluate(prof, slow, pp, batch=8).step_time_ms
        - evaluate(prof, cl, pp, batch=8).step_time_ms
    )
    assert extra == pytest.approx(2 * (4 + 2 - 1) * 0.5)
    extra = (
        evaluate(prof, slow, dp, batch=8).step_time_ms
        - evaluate(prof, cl, dp, batch=8).step_time_ms
    )
    assert extra == pytest.approx(2.0)


def test_ranks_sharing_a_machine_slow_down_only_while_both_compute() -> None:
    # Two stages, GPipe, 2 micro-batches, f = 1 and b = 2 per stage, ranks at half speed
    # while both compute: F0 alone [0, 1]; (S0 F1, S1 F0) together [1, 3]; S1 F1 alone
    # [3, 4]; S1 B0 alone [4, 6]; (S0 B0, S1 B1) together [6, 10]; S0 B1 alone [10, 12].
    ends, _ = simulate_pipeline([1.0, 1.0], [2.0, 2.0], [0.0], 2, "gpipe", concurrent=0.5)
    assert max(ends) == pytest.approx(12.0)
    # Alone (one micro-batch: the stages never overlap) sharing changes nothing.
    ends, _ = simulate_pipeline([1.0, 1.0], [2.0, 2.0], [0.0], 1, "1f1b", concurrent=0.5)
    assert max(ends) == pytest.approx(6.0)
    # Replicas of one stage always compute together.
    ends, _ = simulate_pipeline([1.0], [2.0], [], 2, "gpipe", concurrent=0.5, replicas=2)
    assert max(ends) == pytest.approx(12.0)


def test_shared_speed_slows_data_parallel_not_a_single_rank() -> None:
    prof = _profile()
    plain = Cluster((Device(), Device()), _FREE)
    shared = Cluster((Device(), Device()), _FREE, shared_speed=0.8)
    dp = Strategy((0,), 2, 1, "gpipe", (0, 1))
    one = Strategy((0,), 1, 1, "gpipe", (0,))
    assert evaluate(prof, shared, dp, batch=8).step_time_ms == pytest.approx(
        evaluate(prof, plain, dp, batch=8).step_time_ms / 0.8
    )
    solo = Cluster((Device(),), _FREE, shared_speed=0.8)
    assert evaluate(prof, solo, one, batch=8).step_time_ms == pytest.approx(4 * 3.0 * 8)
    pp = Strategy((0, 2), 1, 4, "1f1b", (0, 1))
    free_pp = evaluate(prof, plain, pp, batch=8).step_time_ms
    # A pipeline overlaps its stages only part of the time: slower, but less than 1/0.8.
    assert free_pp < evaluate(prof, shared, pp, batch=8).step_time_ms < free_pp / 0.8
