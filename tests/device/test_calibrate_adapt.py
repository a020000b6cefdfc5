"""graphrec.device.adapt: the meta-learned few-shot adapter (used by the NAS-Bench-201 check)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from graphrec.device.adapt import FewShotAdapter


def _devices(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Items whose log-latency on each device mixes two latent item traits."""
    rng = np.random.default_rng(seed)
    traits = rng.normal(size=(400, 2))
    mix = rng.uniform(0.2, 1.0, size=(2, 6))
    Y = traits @ mix + rng.normal(scale=0.02, size=(400, 6)) + rng.normal(size=6)
    return Y, traits


def test_probes_recover_an_unseen_device() -> None:
    Y, traits = _devices()
    ad = FewShotAdapter(n_factors=2).fit(Y[:, :5])
    new = traits @ np.array([1.0, 0.3]) + 4.0
    probes = ad.select_probes(8)
    assert len(set(probes)) == 8
    pred = ad.predict(ad.infer(probes, new[probes]))
    rest = np.setdiff1d(np.arange(len(new)), probes)
    rho = spearmanr(pred[rest], new[rest])[0]
    # the prior alone (mean training device) ranks worse than the probes' posterior
    rho0 = spearmanr(ad.predict(ad.prior_mean_)[rest], new[rest])[0]
    assert rho > 0.98 and rho > rho0


def test_informative_probes_beat_random_ones_on_average() -> None:
    Y, traits = _devices(1)
    ad = FewShotAdapter(n_factors=2).fit(Y[:, :5])
    new = traits @ np.array([0.2, 1.0]) - 1.0
    rest_rho = []
    for probes in [ad.select_probes(3)] + [
        list(np.random.default_rng(s).choice(len(new), 3, replace=False)) for s in range(10)
    ]:
        pred = ad.predict(ad.infer(probes, new[probes]))
        mask = np.ones(len(new), dtype=bool)
        mask[probes] = False
        rest_rho.append(spearmanr(pred[mask], new[mask])[0])
    assert rest_rho[0] >= np.mean(rest_rho[1:])


def test_probe_pool_and_validation() -> None:
    Y, _ = _devices()
    ad = FewShotAdapter(n_factors=1).fit(Y[:, :3], features=np.ones((400, 1)))
    pool = np.arange(10, 30)
    assert set(ad.select_probes(5, candidates=pool)) <= set(pool.tolist())
    with pytest.raises(ValueError, match="probes out of"):
        ad.select_probes(30, candidates=pool)
    with pytest.raises(ValueError, match="probe items but"):
        ad.infer([1, 2], np.zeros(3))
    with pytest.raises(ValueError, match="n_factors"):
        FewShotAdapter(n_factors=4).fit(Y[:, :3])
    with pytest.raises(ValueError, match="missing or infinite"):
        FewShotAdapter().fit(np.full((5, 2), np.nan))
    with pytest.raises(ValueError, match="not fitted"):
        FewShotAdapter().select_probes(1)
