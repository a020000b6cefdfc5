"""Pooled latency regressor contract on real measurements."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

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
    # It learnt something: on its training data it beats predicting the mean.
    y = rec_dataset.log_latency_ms
    ok = ~np.isnan(y)
    assert np.mean((lat[ok] - y[ok]) ** 2) < np.var(y[ok])
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


def test_needs_two_samples(rec_dataset: RecDataset) -> None:
    with pytest.raises(ValueError, match="at least 2"):
        PairLatencyRegressor(**FAST).fit(rec_dataset.subset([0]))
