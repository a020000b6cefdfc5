"""Search space, staged search, plain DARTS, random search, ONNX export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from graphrec.automl.data import AutoMLError, load_task
from graphrec.automl.search import (
    darts_search,
    default_stages,
    dominant_eigenvalue,
    random_search,
    staged_search,
)
from graphrec.automl.space import (
    DARTS_OPS,
    LIGHT_OPS,
    Genotype,
    build_network,
    build_supernet,
    random_genotype,
)


@pytest.fixture(scope="module")
def tiny_digits():  # type: ignore[no-untyped-def]
    return load_task("digits").subsample(0.06)


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 1, 40)])
def test_supernet_and_network_run_on_2d_and_1d_inputs(shape: tuple[int, int, int]) -> None:
    net = build_supernet(shape, 10, DARTS_OPS, depth=3, c=4)
    assert net(torch.randn(2, *shape)).shape == (2, 10)
    g = net.genotype()
    assert len(g.normal) == 6 and len(g.reduce) == 6
    assert all(op != "none" for op, _ in g.normal + g.reduce)
    model = build_network(g, shape, 10, depth=5, c=4)
    assert model(torch.randn(2, *shape)).shape == (2, 10)


def test_pruned_edges_get_zero_weight() -> None:
    keep = [["conv_3x3", "skip_connect"]] * 9
    net = build_supernet((1, 8, 8), 10, LIGHT_OPS, keep_normal=keep, keep_reduce=keep, depth=2)
    p = net.probs("normal")
    torch.testing.assert_close(p.sum(dim=1), torch.ones(9))
    assert float(p[:, LIGHT_OPS.index("max_pool_3x3")].detach().abs().max()) == 0.0


def test_staged_search_runs_four_stages_with_feedback(tiny_digits) -> None:  # type: ignore[no-untyped-def]
    res = staged_search(tiny_digits, seed=0, stages=default_stages((1, 1, 1, 1)), c=4)
    stages = sorted({h["stage"] for h in res.history})
    assert stages == [1, 2, 3, 4]
    assert [h["depth"] for h in res.history] == [2, 3, 4, 5]
    assert all(op in LIGHT_OPS for op, _ in res.genotype.normal + res.genotype.reduce)
    # a 1-epoch stage cannot stop on the eigenvalue, so it does not pay for computing it
    assert res.cpu_s > 0 and not any("eigenvalue" in h for h in res.history)


def test_skip_limit_stops_a_stage_and_restores_the_logits(tiny_digits) -> None:  # type: ignore[no-untyped-def]
    # max_skip=-1: any derived cell breaks the limit, so every stage stops after its 2nd epoch
    res = staged_search(tiny_digits, seed=0, stages=default_stages((3, 3, 1, 1)), c=4, max_skip=-1)
    stops = [h for h in res.history if h.get("early_stop")]
    assert [h["stage"] for h in stops] == [1, 2]
    # the 3-epoch stages compute the eigenvalue (it could stop them from epoch 3 on)
    assert all(np.isfinite(h["eigenvalue"]) for h in res.history if h["stage"] <= 2)
    assert all(h["epoch"] == 2 and h["early_stop"] == "skip_count" for h in stops)


def test_dominant_eigenvalue_is_that_of_the_hessian() -> None:
    torch.manual_seed(0)
    net = build_supernet((1, 8, 8), 10, ("skip_connect", "conv_1x1"), depth=1, c=2)
    x, y = torch.randn(8, 1, 8, 8), torch.randint(0, 10, (8,))
    lam = dominant_eigenvalue(net, x, y, iters=30)

    # the full Hessian of the normal-cell logits (reduction logits unused at depth 1)
    alphas = [net.alpha_normal]
    g = torch.autograd.grad(
        torch.nn.functional.cross_entropy(net(x), y), alphas, create_graph=True
    )[0].flatten()
    rows = [
        torch.autograd.grad(g[i], alphas[0], retain_graph=True)[0].flatten()
        for i in range(g.numel())
    ]
    eig = torch.linalg.eigvalsh(torch.stack(rows))
    top = float(eig[eig.abs().argmax()])
    assert lam == pytest.approx(top, rel=0.05, abs=1e-6)


def test_darts_and_random_search_baselines(tiny_digits) -> None:  # type: ignore[no-untyped-def]
    d = darts_search(tiny_digits, seed=0, epochs=1, depth=2, c=4)
    assert len(d.history) == 1 and d.method == "darts"
    r = random_search(tiny_digits, seed=0, budget_cpu_s=0.01, depth=2, c=4, proxy_epochs=1)
    assert len(r.history) == 1  # one candidate at least, none after the budget
    with pytest.raises(AutoMLError, match="positive budget"):
        random_search(tiny_digits, seed=0, budget_cpu_s=0)


def test_found_network_exports_and_matches_in_onnxruntime(tmp_path: Path) -> None:
    import onnxruntime as ort

    from graphrec.automl.latency import export_onnx

    g = random_genotype(LIGHT_OPS, np.random.default_rng(1))
    net = build_network(g, (1, 8, 8), 10, depth=4, c=4).eval()
    path = export_onnx(net, (1, 8, 8), tmp_path / "m.onnx")
    x = np.random.default_rng(0).normal(size=(1, 1, 8, 8)).astype(np.float32)
    (got,) = ort.InferenceSession(str(path)).run(None, {"input": x})
    np.testing.assert_allclose(got, net(torch.from_numpy(x)).detach().numpy(), atol=1e-4)
    assert Genotype.from_dict(g.to_dict()) == g
