"""Pooled latency regressor contract on real measurements."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rec_synthetic import Split, cached_split, held_out_mse, true_regret

from graphrec.dataset.samples import RecDataset
from graphrec.errors import NotFittedError
from graphrec.recommender.latency_gbdt import PairLatencyRegressor, candidate_parts

FAST = {"iterations": 60, "depth": 3}


def test_candidate_parts() -> None:
    parts, threads = candidate_parts("onnxruntime/cpu/fp32/opt=all/threads=2")
    assert parts == [
        "onnxruntime",
        "cpu",
        "fp32",
        "opt=all",
        "onnxruntime/cpu/fp32/opt=all/threads=2",
    ]
    assert threads == 2.0
    parts, threads = candidate_parts("tract/cpu/fp32")
    assert parts[3] == "-" and threads == 0.0


def test_init_stores_params_only() -> None:
    m = PairLatencyRegressor(iterations=5, seed=2)
    assert m.get_params()["iterations"] == 5
    assert not [k for k in vars(m) if k.endswith("_")]


def test_not_fitted() -> None:
    with pytest.raises(NotFittedError, match="not fitted"):
        PairLatencyRegressor().predict_arrays(np.zeros((1, 3)), np.zeros((1, 3)))


def test_fit_predict_deterministic_round_trip(rec_dataset: RecDataset, tmp_path: Path) -> None:
    a = PairLatencyRegressor(**FAST, seed=1).fit(rec_dataset)
    lat, cold = a.predict_arrays(rec_dataset.graph_features, rec_dataset.device_features)
    assert lat.shape == cold.shape == rec_dataset.log_latency_ms.shape
    assert np.isfinite(lat).all()
    b = PairLatencyRegressor(**FAST, seed=1).fit(rec_dataset)
    np.testing.assert_array_equal(
        lat, b.predict_arrays(rec_dataset.graph_features, rec_dataset.device_features)[0]
    )
    meta = a.save(tmp_path)
    c = PairLatencyRegressor.load(tmp_path, meta)
    np.testing.assert_allclose(
        c.predict_arrays(rec_dataset.graph_features, rec_dataset.device_features)[0], lat
    )
    assert c.log_latency_sigma.shape == (len(rec_dataset.candidates),)
    with pytest.raises(ValueError, match="features"):
        a.predict_arrays(rec_dataset.graph_features[:, :3], rec_dataset.device_features)


def test_prediction_pool_matches_the_training_frame(rec_dataset: RecDataset) -> None:
    """The pandas-free prediction pool gives the predictions of the DataFrame rows."""
    from catboost import Pool

    from graphrec.recommender.latency_gbdt import _CAT_NAMES

    a = PairLatencyRegressor(**FAST, seed=1).fit(rec_dataset)
    gf, df = rec_dataset.graph_features, rec_dataset.device_features
    frame = Pool(a._rows(gf, df, a.candidates_), cat_features=list(_CAT_NAMES))
    for model in a.models_.values():
        np.testing.assert_array_equal(model.predict(frame), model.predict(a._predict_pool(gf, df)))


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> Split:
    return cached_split(tmp_path_factory)


def _fit_predict(split: Split) -> np.ndarray:
    m = PairLatencyRegressor(iterations=200, depth=3, holdout_fraction=0.0, seed=0)
    m.fit(split.train)
    assert not set(split.train.model_sha256) & set(split.test.model_sha256)
    pred, _cold = m.predict_arrays(split.test.graph_features, split.test.device_features)
    return pred


def test_learns_latency_on_held_out_models(split: Split) -> None:
    """Trained on 24 models, the pooled regressor predicts the 12 it never saw much better
    than each candidate's training mean."""
    err, base = held_out_mse(_fit_predict(split), split)
    assert base > 1.0  # the held-out latencies spread: the baseline is not trivially good
    assert err < 0.3 * base, (err, base)


def test_ranks_held_out_models_better_than_best_on_average(split: Split) -> None:
    """Picking the fastest by the prediction loses less than always picking the candidate
    fastest on average in training."""
    regret, regret_avg = true_regret(_fit_predict(split), split)
    assert regret < 0.5 * regret_avg, (regret, regret_avg)


def test_needs_two_samples(rec_dataset: RecDataset) -> None:
    with pytest.raises(ValueError, match="at least 2"):
        PairLatencyRegressor(**FAST).fit(rec_dataset.subset([0]))
