"""Baselines: the one best-on-average rule, the FLOPs rule, the runtime default."""

from __future__ import annotations

import numpy as np
import pytest

from graphrec.recommender.baselines import BestOnAverage, FlopsRule, RuntimeDefault, mean_regret


def test_mean_regret_ignores_unmeasured_and_marks_never_measured() -> None:
    r = np.array([[0.0, 1.0, np.nan], [0.5, 0.0, np.nan], [0.1, np.nan, np.nan]])
    np.testing.assert_allclose(mean_regret(r), [0.2, 0.5, np.inf])
    assert BestOnAverage().fit_regret(r).order_.tolist() == [0, 1, 2]


def test_best_on_average_orders_and_fit_on_dataset() -> None:
    r = np.array([[0.3, 0.0], [0.2, 0.0], [0.0, 0.4]])  # means 0.167 vs 0.133
    b = BestOnAverage().fit_regret(r)
    assert b.best_ == 1 and b.orders(2).tolist() == [[1, 0], [1, 0]]


def test_flops_rule_finds_the_threshold() -> None:
    lf = np.log1p(np.array([1e3, 1e4, 1e5, 1e7, 1e8, 1e9]))
    # Candidate 0 wins on small models, candidate 1 on large ones.
    r = np.array([[0, 0.8], [0, 0.7], [0, 0.6], [0.9, 0], [1.0, 0], [1.2, 0]], dtype=float)
    rule = FlopsRule().fit_regret(lf, r)
    assert rule.below_ == 0 and rule.above_ == 1
    assert lf[2] <= rule.threshold_ < lf[3]
    np.testing.assert_array_equal(rule.orders(lf)[:, 0], [0, 0, 0, 1, 1, 1])


def test_runtime_default_prefers_the_default_configuration() -> None:
    ids = [
        "onnxruntime/cpu/fp32/opt=all/threads=1",
        "onnxruntime/cpu/fp32/opt=all/threads=2",
        "openvino/cpu/fp32/hint=latency/threads=1",
    ]
    d = RuntimeDefault().fit_candidates(ids)
    assert d.order_.tolist() == [1, 0, 2]
    with pytest.raises(ValueError, match="valid"):
        d.set_params(nothing=1)
