"""MEDN estimator contract on real measurements."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from rec_fixtures import MEDN_FAST
from rec_synthetic import Split, cached_split, held_out_mse, true_regret

from graphrec.dataset.samples import RecDataset
from graphrec.errors import NotFittedError
from graphrec.recommender.encoder import HeteroGraphEncoder
from graphrec.recommender.medn import MEDNRegressor


def test_encoder_shapes(rec_dataset: RecDataset) -> None:
    from torch_geometric.data import Batch

    torch.manual_seed(0)
    enc = HeteroGraphEncoder(hidden=8, out_dim=5)
    out = enc(Batch.from_data_list([h.to_hetero_data() for h in rec_dataset.hetero]))
    assert out.shape == (4, 5)
    assert torch.isfinite(out).all()


def test_init_stores_params_only() -> None:
    m = MEDNRegressor(epochs=3, seed=7)
    assert m.get_params()["epochs"] == 3 and m.get_params()["seed"] == 7
    assert not [k for k in vars(m) if k.endswith("_")]


def test_not_fitted() -> None:
    with pytest.raises(NotFittedError, match="not fitted"):
        MEDNRegressor().predict_arrays([], np.zeros((0, 3)), np.zeros((0, 3)))


def test_fit_predict_and_determinism(rec_dataset: RecDataset) -> None:
    torch.set_num_threads(1)
    a = MEDNRegressor(**MEDN_FAST, seed=3)
    assert a.fit(rec_dataset) is a
    pa = a.predict(rec_dataset)
    c = len(rec_dataset.candidates)
    assert pa.log_latency_ms.shape == (4, c)
    assert pa.p_deployable.shape == (4, c)
    assert np.all((pa.p_deployable >= 0) & (pa.p_deployable <= 1))
    assert pa.log_latency_sigma.shape == (c,) and np.all(pa.log_latency_sigma > 0)
    assert pa.embedding.shape == (4, MEDN_FAST["embedding_dim"])
    pb = MEDNRegressor(**MEDN_FAST, seed=3).fit(rec_dataset).predict(rec_dataset)
    np.testing.assert_allclose(pa.log_latency_ms, pb.log_latency_ms, rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> Split:
    return cached_split(tmp_path_factory)


def test_learns_latency_on_held_out_models(split: Split) -> None:
    """Trained on 24 models, MEDN predicts the 12 it never saw far better than each
    candidate's training mean, and its pick loses less than the best-on-average choice."""
    torch.set_num_threads(1)
    m = MEDNRegressor(
        hidden=16, embedding_dim=8, epochs=60, batch_size=8, validation_fraction=0.0, seed=0
    ).fit(split.train)
    assert not set(split.train.model_sha256) & set(split.test.model_sha256)
    pred = m.predict(split.test).log_latency_ms
    err, base = held_out_mse(pred, split)
    assert base > 1.0  # the held-out latencies spread: the baseline is not trivially good
    assert err < 0.1 * base, (err, base)
    regret, regret_avg = true_regret(pred, split)
    assert regret < 0.5 * regret_avg, (regret, regret_avg)


def test_state_round_trip(rec_dataset: RecDataset) -> None:
    m = MEDNRegressor(**MEDN_FAST).fit(rec_dataset)
    meta, tensors = m.state()
    m2 = MEDNRegressor.from_state(meta, tensors)
    np.testing.assert_allclose(
        m.predict(rec_dataset).log_latency_ms, m2.predict(rec_dataset).log_latency_ms, rtol=1e-6
    )
