"""Auto-selection under a budget, the Pareto front, and the module-sum predictor."""

from __future__ import annotations

import numpy as np

from graphrec.recommender.modules.predictor import ModuleLatencyPredictor
from graphrec.recommender.modules.regressors import make_regressor
from graphrec.recommender.modules.select import GENERIC, _choose, pareto_front
from graphrec.recommender.modules.vocab import Module, feature_names


def _e(name: str, acc: float, us: float, size: int) -> dict:
    return {"regressor": name, "within10": acc, "predict_us": us, "size_bytes": size}


def test_choose_takes_the_most_accurate_within_budget() -> None:
    es = [
        _e("ridge", 0.80, 5, 200),
        _e("catboost", 0.95, 90, 200_000),
        _e("medn", 0.945, 40, 9_000),
    ]
    # within one point of the best, the faster one wins
    assert _choose(es, 1000, 1e6)["regressor"] == "medn"
    # a size budget that excludes the big ones
    assert _choose(es, 1000, 1000)["regressor"] == "ridge"
    # a time budget that excludes every model still gives the smallest
    assert _choose(es, 1, 1e6)["regressor"] == "ridge"


def test_pareto_front() -> None:
    es = [_e("a", 0.9, 10, 100), _e("b", 0.8, 20, 200), _e("c", 0.95, 50, 100), _e("d", 0.7, 5, 50)]
    assert pareto_front(es) == ["a", "c", "d"]  # b is beaten by a on everything


def test_module_sum_adds_work_above_the_overhead() -> None:
    cands = ["rt/a", "rt/b"]
    names = feature_names("conv")
    rng = np.random.default_rng(0)
    x = rng.uniform(1, 5, (20, len(names)))
    y = np.column_stack([x[:, 0] * 0.1, x[:, 0] * 0.2])  # log ms
    conv = make_regressor("ridge").fit(x, y)
    gen_names = feature_names("other")
    generic = make_regressor("ridge").fit(x[:, : len(gen_names)], y)
    sel = {
        "candidates": cands,
        "overhead_ms": {"rt/a": 0.5, "rt/b": 0.01},
        "selection": {"conv": {c: "ridge" for c in cands}, GENERIC: {c: "ridge" for c in cands}},
    }
    pred = ModuleLatencyPredictor(sel, {"conv": {"ridge": conv}, GENERIC: {"ridge": generic}})
    mods = [
        Module("conv", [0], dict(zip(names, x[0], strict=True))),
        Module("conv", [1], dict(zip(names, x[1], strict=True))),
        Module("other", [2], dict(zip(gen_names, x[2], strict=False))),
    ]
    per = pred.predict_modules(mods)
    np.testing.assert_allclose(per[:2], np.exp(conv.predict(x[:2])))
    np.testing.assert_allclose(per[2], np.exp(generic.predict(x[2:3, : len(gen_names)]))[0])


def test_type_scales_recover_per_type_factors() -> None:
    from graphrec.recommender.modules.predictor import fit_type_scales

    rng = np.random.default_rng(1)
    work = rng.uniform(0.1, 5.0, (80, 3))
    true = work @ np.array([0.5, 1.0, 0.0]) + 0.2
    f = fit_type_scales(work, true)
    np.testing.assert_allclose(f, [0.5, 1.0, 0.0, 0.2], atol=1e-8)
    assert (fit_type_scales(work, -true) >= 0).all()  # never negative
