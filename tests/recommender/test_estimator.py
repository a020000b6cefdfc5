"""The Recommender estimator: scikit-learn protocol, one scoring path, learns a crossover."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rec_fixtures import HEAD_FAST, MEDN_FAST
from rec_synthetic import cached_dataset

from graphrec.dataset.samples import RecDataset, regret_matrix
from graphrec.recommender import Recommender
from graphrec.recommender.baselines import BestOnAverage

#: Fast but real settings: a small MEDN, a small PSO head, a short pooled regressor.
FAST = {
    "medn_params": {**MEDN_FAST, "epochs": 40},
    "head_params": HEAD_FAST,
    "latency_gbdt_params": {"iterations": 150},
    "alpha": 0.5,
}


@pytest.fixture(scope="module")
def crossover(tmp_path_factory: pytest.TempPathFactory) -> RecDataset:
    return cached_dataset(tmp_path_factory)


def test_params_protocol_and_clone() -> None:
    from sklearn.base import clone

    rec = Recommender(medn_params={"epochs": 3}, alpha="auto", seed=4)
    params = rec.get_params(deep=True)
    assert params["alpha"] == "auto" and params["seed"] == 4
    assert params["medn_params"] == {"epochs": 3}
    assert rec.set_params(alpha=0.25, latency_weight=1.0) is rec
    assert rec.alpha == 0.25 and rec.latency_weight == 1.0
    twin = clone(rec)
    assert twin is not rec and twin.get_params() == rec.get_params()
    assert twin.medn_params is not rec.medn_params  # deep-copied, as sklearn requires
    with pytest.raises(ValueError, match="valid: "):
        rec.set_params(bogus=1)
    assert "alpha=0.25" in repr(rec)


def test_nested_params_of_parts() -> None:
    from graphrec.recommender.pso_catboost import PSOWCatBoostClassifier

    head = PSOWCatBoostClassifier(depth=3)
    assert head.get_params(deep=True)["depth"] == 3
    assert head.set_params(depth=5).depth == 5


def test_fit_validates_parameters(crossover: RecDataset) -> None:
    ds = crossover
    with pytest.raises(ValueError, match="alpha must be"):
        Recommender(alpha=1.5).fit(ds)
    with pytest.raises(ValueError, match="latency_weight"):
        Recommender(latency_weight=-0.1).fit(ds)
    with pytest.raises(TypeError, match="RecDataset"):
        Recommender().fit(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="not fitted"):
        Recommender().predict_latency(ds)


def test_learns_a_crossover_that_best_on_average_cannot(
    crossover: RecDataset,
) -> None:
    """Held-out families: the trained pipeline beats the single best-on-average choice."""
    ds = crossover
    test_fams = {"mlp2", "convb"}
    te = np.flatnonzero([f in test_fams for f in ds.families])
    tr = np.setdiff1d(np.arange(len(ds)), te)
    train, test = ds.subset(tr), ds.subset(te)
    # The crossover is real in the held-out part: more than one candidate wins there.
    assert len(set(test.best.tolist())) >= 2
    rec = Recommender(**FAST).fit(train)
    regret = regret_matrix(test.log_latency_ms, test.deployable)
    avg = BestOnAverage().fit(train)
    base = float(regret[:, avg.best_].mean())
    ours = -rec.score(test)
    picks = rec.picks(test)
    assert ours == pytest.approx(float(regret[np.arange(len(test)), picks].mean()))
    assert base > 0.2  # one fixed choice loses a lot here
    assert ours < 0.5 * base, (ours, base)
    # Predicted latencies follow the rule: error well under the 4x spread of the data.
    err = np.abs(np.log(rec.predict_latency(test)) - test.log_latency_ms)
    assert float(np.median(err)) < np.log(2.0)


def test_rank_is_the_recommend_path(crossover: RecDataset) -> None:
    """rank() and rank_arrays() agree; keep/blocked behave as graphrec.recommend uses them."""
    ds = crossover
    rec = Recommender(**{**FAST, "latency_weight": 1.0}).fit(ds)
    one = ds.subset([0])
    r = rec.rank(one)[0]
    r2, pred = rec.rank_arrays(one.hetero, one.graph_features, one.device_features)
    np.testing.assert_array_equal(r.order, r2[0].order)
    np.testing.assert_allclose(r.latency_ms, np.exp(pred.log_latency_ms[0]))
    # Expected losses are consistent with the order among deployable choices.
    el = r.expected_loss[r.order[r.deployable[r.order]]]
    assert np.all(np.diff(el) >= -1e-12)
    kept = rec.rank(one, keep=[1, 2], blocked=[True, False])[0]
    assert len(kept.order) == 2 and not kept.deployable[0] and kept.order[0] == 1


def test_cross_validate_with_family_groups(crossover: RecDataset) -> None:
    from sklearn.model_selection import GroupKFold, cross_validate

    ds = crossover
    rec = Recommender(**{**FAST, "latency_weight": 1.0, "medn_params": MEDN_FAST})
    out = cross_validate(rec, ds, groups=ds.families, cv=GroupKFold(n_splits=2))
    scores = out["test_score"]
    assert scores.shape == (2,) and np.all(scores <= 0.0) and np.all(np.isfinite(scores))


def test_save_load_keeps_params(crossover: RecDataset, tmp_path: Path) -> None:
    ds = crossover
    rec = Recommender(**{**FAST, "latency_weight": 1.0, "medn_params": MEDN_FAST}).fit(ds)
    again = Recommender.load(rec.save(tmp_path / "art"))
    assert again.get_params()["head_params"] == rec.get_params()["head_params"]
    assert again.alpha_ == rec.alpha_
    np.testing.assert_allclose(again.predict_latency(ds), rec.predict_latency(ds), rtol=1e-6)


def test_prediction_runs_on_one_torch_thread_and_restores_the_count(
    crossover: RecDataset,
) -> None:
    """The forward pass of the latency model uses one intra-op thread; the caller's thread
    count is back afterwards, and the predictions do not depend on it."""
    import torch

    rec = Recommender(**FAST).fit(crossover)
    one = crossover.subset([0, 1])
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        seen: list[int] = []
        medn = rec.medn_
        orig = medn.predict_arrays

        def spy(*a: object, **k: object) -> object:
            seen.append(torch.get_num_threads())
            return orig(*a, **k)

        medn.predict_arrays = spy
        pred, proba = rec.predict_arrays(one.hetero, one.graph_features, one.device_features)
        assert seen == [1]
        assert torch.get_num_threads() == 2
        del medn.predict_arrays
        torch.set_num_threads(1)
        pred1, proba1 = rec.predict_arrays(one.hetero, one.graph_features, one.device_features)
        np.testing.assert_allclose(pred.log_latency_ms, pred1.log_latency_ms, rtol=1e-6)
        np.testing.assert_allclose(proba, proba1, rtol=1e-6)
    finally:
        torch.set_num_threads(before)
