"""Combining latencies and head probabilities into a ranking."""

from __future__ import annotations

import numpy as np

from graphrec.recommender.ranking import fit_draw_scale, rank_choices, relative_sigma


def test_clear_winner() -> None:
    r = rank_choices(
        np.log([1.0, 3.0, 2.0]), np.full(3, 0.05), np.array([0.8, 0.1, 0.1]), np.ones(3)
    )
    assert r.order.tolist() == [0, 2, 1]
    assert r.p_fastest[0] > 0.8
    np.testing.assert_allclose(r.p_fastest.sum(), 1.0)
    assert 0 <= r.expected_loss[0] < 0.05
    np.testing.assert_allclose(r.expected_loss[1], 2.0, rtol=0.1)
    assert np.all(r.latency_low_ms < r.latency_ms) and np.all(r.latency_ms < r.latency_high_ms)


def test_not_deployable_goes_last() -> None:
    r = rank_choices(
        np.log([0.5, 1.0, 2.0]),
        np.full(3, 0.1),
        np.array([0.9, 0.05, 0.05]),
        np.array([0.1, 0.9, 0.8]),
    )
    assert r.order[-1] == 0
    assert not r.deployable[0] and np.isnan(r.expected_loss[0]) and r.p_fastest[0] == 0


def test_head_shifts_probability() -> None:
    mu, sig, dep = np.log([1.0, 1.05]), np.full(2, 0.2), np.ones(2)
    a = rank_choices(mu, sig, np.array([0.5, 0.5]), dep, alpha=0.0)
    b = rank_choices(mu, sig, np.array([0.0, 1.0]), dep, alpha=1.0)
    assert b.p_fastest[1] > a.p_fastest[1]
    np.testing.assert_allclose(b.p_fastest[1], 1.0, atol=1e-9)


def test_failure_risk_costs_a_fast_but_uncertain_choice() -> None:
    """A 10 % faster choice that fails 40 % of the time loses to a sure one."""
    mu, sig, head = np.log([0.9, 1.0, 8.0]), np.full(3, 0.05), np.full(3, 1 / 3)
    dep = np.array([0.6, 1.0, 1.0])
    risky = rank_choices(mu, sig, head, dep, alpha=0.0)
    naive = rank_choices(mu, sig, head, dep, alpha=0.0, risk_aware=False)
    assert naive.order[0] == 0
    assert risky.order[0] == 1
    # Failing costs the slowest running choice's loss (8x -> 700 %) 40 % of the time.
    assert risky.expected_loss[0] > 2.0
    assert risky.expected_loss[1] < naive.expected_loss[1] + 0.05
    np.testing.assert_allclose(risky.p_fastest.sum(), 1.0)
    # Certain deployability: both modes agree exactly.
    a = rank_choices(mu, sig, head, np.ones(3), alpha=0.3)
    b = rank_choices(mu, sig, head, np.ones(3), alpha=0.3, risk_aware=False)
    np.testing.assert_allclose(a.expected_loss, b.expected_loss)
    assert a.order.tolist() == b.order.tolist()


def test_relative_sigma_removes_the_shared_error() -> None:
    rng = np.random.default_rng(0)
    shared = rng.normal(0, 1.0, size=(400, 1))  # every candidate of a sample off alike
    own = rng.normal(0, 0.1, size=(400, 3)) * np.array([1.0, 2.0, 3.0])
    resid = shared + own
    resid[::5, 2] = np.nan  # some unmeasured pairs
    rel = relative_sigma(resid)
    assert rel.shape == (3,)
    assert (rel < 0.5).all()  # the shared 1.0 is gone
    assert rel[0] < rel[1] < rel[2]
    assert np.isnan(relative_sigma(np.array([[0.1, np.nan], [np.nan, 0.2]]))).all()
    # Gaussian residuals: the robust spread agrees with the RMS.
    rms = relative_sigma(resid, robust=False)
    np.testing.assert_allclose(rel, rms, rtol=0.15)


def test_relative_sigma_is_robust_to_a_few_large_misses() -> None:
    rng = np.random.default_rng(1)
    resid = rng.normal(0, 0.1, size=(500, 2))
    resid[:25, 1] += 3.0  # 5 % of the predictions of candidate 1 are 20x off
    robust = relative_sigma(resid)
    rms = relative_sigma(resid, robust=False)
    assert robust[1] < 0.25 < rms[1]


def test_relative_sigma_sharpens_the_ranking() -> None:
    mu = np.log(np.array([1.0, 1.3]))
    wide = np.array([0.8, 0.8])
    p = np.array([0.5, 0.5])
    dep = np.array([1.0, 1.0])
    loose = rank_choices(mu, wide, p, dep, alpha=0.0)
    tight = rank_choices(mu, wide, p, dep, alpha=0.0, log_relative_sigma=np.array([0.05, 0.05]))
    assert tight.p_fastest[0] > 0.99 > loose.p_fastest[0]
    assert tight.expected_loss[0] < loose.expected_loss[0]
    # The interval still shows the full error.
    np.testing.assert_allclose(tight.latency_high_ms, loose.latency_high_ms)


def test_fit_draw_scale_matches_the_realised_loss() -> None:
    rng = np.random.default_rng(0)
    pred = rng.normal(0.0, 0.3, size=(150, 5))
    true = pred + rng.normal(0.0, 0.3, size=pred.shape)  # the error really is 0.3
    true[::7, 1] = np.nan
    right, fit = fit_draw_scale(pred, true, np.full(5, 0.3))
    wide, _ = fit_draw_scale(pred, true, np.full(5, 1.2))  # claims 4x the real error
    assert fit["samples"] == 150
    assert abs(fit["predicted"] - fit["realised"]) < 0.05
    assert 0.5 <= right <= 1.5
    assert wide < 0.5 * right  # shrinks a width that overstates the error
    assert fit_draw_scale(pred[:, :1], true[:, :1], np.full(1, 0.3))[0] == 1.0
