"""Blend weight fitting (graphrec.recommender.blend) and its use in training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from graphrec.recommender import Recommender
from graphrec.recommender.blend import ALPHA_GRID, blend_regret, fit_alpha


def _case(head_right: bool, seed: int = 0) -> tuple[np.ndarray, ...]:
    """MEDN is right on the even samples only; the head is right everywhere or nowhere."""
    rng = np.random.default_rng(seed)
    n, c = 40, 3
    true = rng.uniform(0.0, 2.0, size=(n, c))
    best = true.argmin(axis=1)
    regret = np.exp(true - true.min(axis=1, keepdims=True)) - 1.0
    lat = true.copy()
    odd = np.arange(n) % 2 == 1
    lat[odd] = -true[odd]  # MEDN reverses the order on odd samples
    head = np.full((n, c), 0.05)
    pick = best if head_right else true.argmax(axis=1)
    head[np.arange(n), pick] = 0.9
    return lat, np.full(c, 0.3), head, np.ones((n, c)), regret


@pytest.mark.parametrize("head_right", [True, False])
def test_fit_alpha_follows_the_better_model(head_right: bool) -> None:
    lat, sig, head, dep, regret = _case(head_right)
    alpha, scores = fit_alpha(lat, sig, head, dep, regret)
    assert 0.0 <= alpha <= 1.0
    assert alpha in ALPHA_GRID
    assert set(scores) == {f"{a:g}" for a in ALPHA_GRID}
    assert scores[f"{alpha:g}"] == min(scores.values())
    if head_right:
        assert alpha > 0.5
        assert scores["1"] < scores["0"]
    else:
        assert alpha <= 0.5  # ties go to the prior
        assert scores["0"] < scores["1"]


def test_fit_alpha_deterministic_and_tie_prefers_prior() -> None:
    lat, sig, head, dep, regret = _case(True)
    assert fit_alpha(lat, sig, head, dep, regret) == fit_alpha(lat, sig, head, dep, regret)
    # All choices equally good: every alpha ties, the prior 0.5 wins.
    alpha, _ = fit_alpha(lat, sig, head, dep, np.zeros_like(regret))
    assert alpha == 0.5


def test_blend_regret_per_sample() -> None:
    lat, sig, head, dep, regret = _case(True)
    r = blend_regret(lat, sig, head, dep, regret, 1.0)
    assert r.shape == (len(regret),)
    assert (r >= 0).all()


def test_fit_alpha_bad_input() -> None:
    lat, sig, head, dep, regret = _case(True)
    with pytest.raises(ValueError, match="within"):
        fit_alpha(lat, sig, head, dep, regret, grid=[0.0, 1.5])
    with pytest.raises(ValueError, match="p_head"):
        fit_alpha(lat, sig, head[:, :2], dep, regret)
    with pytest.raises(ValueError, match="N > 0"):
        fit_alpha(lat[:0], sig, head[:0], dep[:0], regret[:0])


def test_trained_artefact_keeps_fitted_alpha(rec_artefact: Path, tmp_path: Path) -> None:
    meta = json.loads((rec_artefact / "meta.json").read_text())
    fit = meta["info"]["alpha_fit"]
    assert fit["method"] == "oof"
    assert fit["samples"] > 0
    assert 0.0 <= meta["alpha"] <= 1.0
    assert meta["alpha"] in ALPHA_GRID
    rec = Recommender.load(rec_artefact)
    assert rec.alpha_ == meta["alpha"]
    again = Recommender.load(rec.save(tmp_path / "again"))
    assert again.alpha_ == rec.alpha_
    assert again.info_["alpha_fit"] == fit
    assert meta["info"]["best_on_average"] in meta["candidates"]


def test_recommender_alpha_given_and_invalid(rec_dataset) -> None:  # type: ignore[no-untyped-def]
    from rec_fixtures import HEAD_FAST, MEDN_FAST

    rec = Recommender(medn_params=MEDN_FAST, head_params=HEAD_FAST, alpha=0.3, seed=0)
    rec.fit(rec_dataset)
    assert rec.alpha_ == 0.3
    assert rec.info_["alpha_fit"] == {"method": "given"}
    with pytest.raises(ValueError, match="alpha must be"):
        Recommender(medn_params=MEDN_FAST, head_params=HEAD_FAST, alpha=2.0).fit(rec_dataset)


def test_log_loss_resists_one_outlier() -> None:
    """One sample where only the head is right by 20x: raw regret follows it, log less so."""
    lat, sig, head, dep, regret = _case(False)
    lat, head, regret = lat.copy(), head.copy(), regret.copy()
    best = np.argmin(regret, axis=1)
    head[0] = 0.05
    head[0, best[0]] = 0.9
    lat[0] = -lat[0]  # MEDN reverses the order on sample 0 ...
    regret[0] = np.where(np.arange(regret.shape[1]) == best[0], 0.0, 20.0)  # ... at 20x cost
    a_raw, s_raw = fit_alpha(lat, sig, head, dep, regret, loss="regret")
    a_log, s_log = fit_alpha(lat, sig, head, dep, regret, loss="log")
    assert a_log <= a_raw
    assert set(s_raw) == set(s_log)
    with pytest.raises(ValueError, match="selection loss"):
        fit_alpha(lat, sig, head, dep, regret, loss="median")
