"""Augmentation operations, the sigmoid-gated relaxation and the searches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from graphrec.automl import augment as aug
from graphrec.automl.data import AutoMLError, load_task


@pytest.fixture(scope="module")
def tiny_digits():  # type: ignore[no-untyped-def]
    return load_task("digits").subsample(0.08)


def test_closed_gates_leave_the_batch_unchanged_and_open_ones_change_it() -> None:
    x = torch.randn(6, 1, 8, 8)
    names = aug.op_names(False)
    gen = torch.Generator().manual_seed(0)
    mags = torch.full((len(names),), 0.8)
    same = aug.apply_ops(x, names, torch.zeros(6, len(names)), mags, gen)
    torch.testing.assert_close(same, x)
    for k, name in enumerate(names):
        gates = torch.zeros(6, len(names))
        gates[:, k] = 1.0
        out = aug.apply_ops(x, names, gates, mags, torch.Generator().manual_seed(1))
        assert out.shape == x.shape
        assert float((out - x).abs().max()) > 1e-3, name


def test_one_dimensional_operations_keep_the_signal_one_dimensional() -> None:
    x = torch.randn(4, 1, 1, 40)
    names = aug.op_names(True)
    assert "rotate" not in names and "translate_y" not in names
    out = aug.apply_ops(
        x,
        names,
        torch.ones(4, len(names)),
        torch.full((len(names),), 0.5),
        torch.Generator().manual_seed(0),
    )
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_straight_through_gates_and_magnitudes_receive_gradients() -> None:
    pol = aug.DifferentiablePolicy(aug.op_names(False))
    x = torch.randn(32, 1, 8, 8)
    out = pol(x, torch.Generator().manual_seed(0))
    (out**2).mean().backward()
    assert pol.theta.grad is not None and pol.mu.grad is not None
    # each gate's gradient is (op(x) - x) . dL/dout: nonzero for every operation
    assert (pol.theta.grad.abs() > 0).all()
    assert (pol.mu.grad.abs() > 0).sum() >= len(pol.names) - 1


def test_sigmoid_gates_are_independent() -> None:
    pol = aug.DifferentiablePolicy(["translate_x", "noise"], p0=0.3)
    with torch.no_grad():
        pol.theta[0] += 3.0
    p = pol.policy().probs
    assert p is not None and p[0] > 0.8 and abs(p[1] - 0.3) < 1e-3  # no softmax coupling


def test_differentiable_search_learns_and_reports_its_cost(tiny_digits) -> None:  # type: ignore[no-untyped-def]
    pol = aug.differentiable_search(tiny_digits, epochs=1, seed=0)
    assert pol.kind == "differentiable" and pol.probs is not None
    assert pol.probs != [0.3] * len(pol.names)  # the gradient moved them
    assert all(0 < p < 1 for p in pol.probs) and pol.meta["cpu_s"] > 0
    back = aug.Policy.from_dict(pol.to_dict())
    assert back.probs == pol.probs and back.magnitudes == pol.magnitudes


def test_randaugment_applies_n_operations_per_example() -> None:
    pol = aug.randaugment_policy(False, n=2)
    g = pol.gates(50, torch.Generator().manual_seed(0))
    assert g.sum(dim=1).tolist() == [2.0] * 50


def test_discrete_search_stops_at_its_budget(tiny_digits) -> None:  # type: ignore[no-untyped-def]
    pol = aug.discrete_search(tiny_digits, budget_cpu_s=0.5, seed=0, child_epochs=1)
    assert pol.kind == "discrete" and pol.meta["evaluated"] >= 1
    assert pol.probs is not None and set(pol.probs) <= {0.0, 0.2, 0.4, 0.6, 0.8}
    with pytest.raises(AutoMLError, match="positive budget"):
        aug.discrete_search(tiny_digits, budget_cpu_s=0, seed=0)


def test_unknown_operation_is_named() -> None:
    with pytest.raises(AutoMLError, match="unknown augmentation 'warp'"):
        aug.apply_ops(
            torch.zeros(1, 1, 8, 8),
            ["warp"],
            torch.ones(1, 1),
            torch.ones(1),
            torch.Generator(),
        )
    assert np.isfinite(aug.MAX_MAGNITUDE["rotate"])
