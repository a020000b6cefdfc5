"""PSO-W-CatBoost estimator contract."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from graphrec.errors import NotFittedError
from graphrec.recommender.pso_catboost import PSOWCatBoostClassifier

FAST: dict[str, Any] = {"iterations": 30, "n_particles": 3, "n_pso_iterations": 2, "depth": 3}


def _data(seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Three choices; which is fastest depends on feature 0, with large stakes on class 2."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((90, 4))
    lat = np.column_stack([1 + X[:, 0], 1 - X[:, 0], 1.2 + 0.1 * X[:, 1]]) + 3.0
    best = lat.min(axis=1, keepdims=True)
    regret = lat / best - 1.0
    groups = [f"g{i % 6}" for i in range(90)]
    return X, regret, groups


def test_init_stores_params_only() -> None:
    c = PSOWCatBoostClassifier(weighting="heuristic", seed=3)
    assert c.get_params()["weighting"] == "heuristic"
    assert not [k for k in vars(c) if k.endswith("_")]


def test_not_fitted() -> None:
    with pytest.raises(NotFittedError):
        PSOWCatBoostClassifier().predict(np.zeros((1, 3)))


def test_bad_weighting() -> None:
    X, R, _ = _data()
    with pytest.raises(ValueError, match="weighting must be one of"):
        PSOWCatBoostClassifier(weighting="magic").fit(X, R)


@pytest.mark.parametrize("weighting", ["none", "heuristic", "pso"])
def test_fit_predict(weighting: str) -> None:
    X, R, groups = _data()
    clf = PSOWCatBoostClassifier(weighting=weighting, **FAST)
    assert clf.fit(X, R, groups=groups) is clf
    proba = clf.predict_proba(X)
    assert proba.shape == (90, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    regret = R[np.arange(90), clf.predict(X)].mean()
    assert regret < R.mean()  # better than choosing at random
    if weighting == "pso":
        assert clf.pso_cost_ is not None
        assert len(clf.class_weight_multipliers_) == len(clf.classes_)


def test_pso_is_deterministic() -> None:
    X, R, groups = _data(1)
    a = PSOWCatBoostClassifier(**FAST, seed=5).fit(X, R, groups=groups)
    b = PSOWCatBoostClassifier(**FAST, seed=5).fit(X, R, groups=groups)
    assert a.best_params_ == b.best_params_
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X))


def test_feature_count_checked() -> None:
    X, R, _ = _data()
    clf = PSOWCatBoostClassifier(weighting="none", iterations=10).fit(X, R)
    with pytest.raises(ValueError, match="features"):
        clf.predict(np.zeros((2, 7)))


def test_single_class() -> None:
    X = np.zeros((5, 2))
    R = np.tile([0.0, 1.0], (5, 1))
    clf = PSOWCatBoostClassifier(**FAST).fit(X, R)
    assert clf.predict(X).tolist() == [0] * 5


def test_save_load_round_trip(tmp_path: Path) -> None:
    X, R, groups = _data()
    clf = PSOWCatBoostClassifier(weighting="heuristic", iterations=30).fit(X, R, groups)
    meta = clf.save(tmp_path)
    assert (tmp_path / "head.cbm").is_file()
    back = PSOWCatBoostClassifier.load(tmp_path, meta)
    np.testing.assert_allclose(back.predict_proba(X), clf.predict_proba(X))


def test_pso_leaves_logging_and_cwd_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import logging

    monkeypatch.chdir(tmp_path)
    before = list(logging.getLogger().handlers)
    X, R, groups = _data()
    PSOWCatBoostClassifier(**FAST).fit(X, R, groups=groups)
    assert list(logging.getLogger().handlers) == before
    assert not (tmp_path / "report.log").exists()


def test_pso_scores_every_inner_fold_and_falls_back() -> None:
    X, R, groups = _data(2)
    clf = PSOWCatBoostClassifier(**FAST, n_folds=3, seed=1).fit(X, R, groups=groups)
    costs = clf.pso_fold_costs_
    assert costs is not None
    assert len(costs["heuristic"]) == len(costs["plain"]) == len(costs["pso"]) == 3
    assert isinstance(clf.pso_accepted_, bool)
    h, p = np.asarray(costs["heuristic"]), np.asarray(costs["pso"])
    if clf.pso_accepted_:
        assert (h - p).mean() > 0
    else:  # the better unsearched point is kept: multipliers 1, the constructor's params
        np.testing.assert_allclose(clf.class_weight_multipliers_, 1.0)
        assert clf.best_params_["depth"] == FAST["depth"]
        assert clf.pso_fallback_ in ("heuristic", "plain")
        fallback = np.asarray(costs[str(clf.pso_fallback_)], dtype=np.float64)
        assert clf.pso_cost_ == pytest.approx(fallback.mean())
        assert fallback.mean() <= min(h.mean(), np.mean(costs["plain"]))
    meta = clf.save(Path(tempfile.mkdtemp()))
    assert meta["pso_accepted"] == clf.pso_accepted_
    assert meta["pso_fold_costs"] == costs


def test_pso_fallback_when_search_cannot_help() -> None:
    """Labels independent of the features: no weighting generalises across folds."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 3))
    R = rng.uniform(0.0, 1.0, size=(60, 3))
    R[np.arange(60), rng.integers(0, 3, 60)] = 0.0
    groups = [f"g{i % 6}" for i in range(60)]
    clf = PSOWCatBoostClassifier(**FAST, n_folds=3).fit(X, R, groups=groups)
    costs = clf.pso_fold_costs_
    assert costs is not None
    fallback = min(costs["heuristic"], costs["plain"], key=np.mean)
    diff = np.asarray(fallback) - np.asarray(costs["pso"])
    se = diff.std(ddof=1) / np.sqrt(len(diff))
    assert clf.pso_accepted_ == bool(diff.mean() > 0 and diff.mean() > se)


def test_clone_fixed_reuses_searched_weights() -> None:
    X, R, groups = _data(1)
    clf = PSOWCatBoostClassifier(**FAST, seed=2).fit(X, R, groups=groups)
    other = clf.clone_fixed().fit(X[:60], R[:60], groups=groups[:60])
    assert other.best_params_ == clf.best_params_
    assert other.pso_cost_ is None  # no search ran
    np.testing.assert_allclose(other.class_weight_multipliers_, clf.class_weight_multipliers_)
    with pytest.raises(NotFittedError):
        PSOWCatBoostClassifier().clone_fixed()


def test_selection_loss_checked_and_recorded() -> None:
    X, R, groups = _data()
    with pytest.raises(ValueError, match="selection_loss"):
        PSOWCatBoostClassifier(selection_loss="median").fit(X, R)
    raw = PSOWCatBoostClassifier(**FAST, selection_loss="regret").fit(X, R, groups=groups)
    log = PSOWCatBoostClassifier(**FAST, selection_loss="log").fit(X, R, groups=groups)
    assert raw.pso_fold_costs_ is not None and log.pso_fold_costs_ is not None
    # Same folds, same heuristic point: the log costs are log1p of nothing larger.
    assert max(log.pso_fold_costs_["heuristic"]) <= max(raw.pso_fold_costs_["heuristic"]) + 1e-12


def test_unmeasured_candidates_are_never_labels() -> None:
    """NaN regret = not measured for that sample: fit works, labels come from the rest."""
    X, regret, groups = _data()
    truth = regret.argmin(axis=1)
    regret = regret.copy()
    regret[::3, 2] = np.nan  # candidate 2 measured on two thirds of the samples only
    regret[1::3, 0] = np.nan
    clf = PSOWCatBoostClassifier(weighting="pso", seed=0, **FAST).fit(X, regret, groups)
    assert clf.pso_cost_ is not None and np.isfinite(clf.pso_cost_)
    proba = clf.predict_proba(X)
    assert proba.shape == regret.shape
    # Where the true best was measured, the head still finds it most of the time.
    measured = ~np.isnan(regret[np.arange(len(truth)), truth])
    assert np.mean(proba.argmax(axis=1)[measured] == truth[measured]) > 0.6
    regret[0] = np.nan
    with pytest.raises(ValueError, match="at least one candidate"):
        PSOWCatBoostClassifier(**FAST).fit(X, regret, groups)


def test_loss_at_stake_weights_follow_the_default_choice() -> None:
    # Candidate 0 has the lowest mean log regret: it is the default a user would take.
    R = np.array([[0.0, 1.0], [0.0, 2.0], [4.0, 0.0], [np.nan, 1.0]])
    clf = PSOWCatBoostClassifier(weighting="heuristic")
    sw = clf._sample_weights(R)
    np.testing.assert_allclose(sw, [1.0, 1.0, 5.0, 2.0])  # row 3: its own mean regret
    # gamma = 0 flattens them; gamma = 1 keeps the ratios (normalised to mean 1).
    np.testing.assert_allclose(clf._weights_for(sw, {"sample_weight_power": 0.0}), 1.0)
    w = clf._weights_for(sw, {"sample_weight_power": 1.0})
    assert w.mean() == pytest.approx(1.0) and w[2] / w[0] == pytest.approx(5.0)


def test_class_balance_exponent() -> None:
    clf = PSOWCatBoostClassifier(weighting="heuristic")
    y = np.array([0] * 9 + [1])
    clf.classes_ = np.array([0, 1])
    ones = np.ones(2)
    flat = clf._class_weights(y, ones, 0.0)
    full = clf._class_weights(y, ones, 1.0)
    half = clf._class_weights(y, ones, 0.5)
    assert flat == {0: 1.0, 1: 1.0}
    assert full is not None and half is not None
    assert full[1] / full[0] == pytest.approx(9.0)
    assert half[1] / half[0] == pytest.approx(3.0)
    plain = PSOWCatBoostClassifier(weighting="none")
    plain.classes_ = clf.classes_
    assert plain._class_weights(y, ones, 1.0) is None


def test_search_can_reach_plain_catboost() -> None:
    X, R, groups = _data(3)
    clf = PSOWCatBoostClassifier(**FAST, seed=0).fit(X, R, groups=groups)
    assert 0.0 <= clf.best_params_["class_balance"] <= 1.0
    assert 0.0 <= clf.best_params_["sample_weight_power"] <= 1.0
