"""Combine MEDN latencies and the PSO-W-CatBoost head into ranked choices.

MEDN gives, per candidate, a log-normal latency (mean ``mu``, error ``sigma`` from
held-out residuals) and a deployability probability; the head gives the probability
that each candidate is the fastest. Latencies are sampled from MEDN's distribution
(``n_samples`` joint draws, candidates independent); among the candidates judged
deployable (``p_deployable >= 0.5``) each draw has a fastest one. The draws are then
re-weighted so that the share of draws in which candidate ``c`` is fastest equals
``alpha · p_head[c] + (1 - alpha) · p_medn[c]`` — the head's opinion enters as a
change of measure on MEDN's joint distribution. Under those weights:

* ``p_fastest[c]`` is the blended probability;
* ``expected_loss[c] = E[latency(c) / latency(best) - 1]``.

With ``risk_aware`` (the default) each draw also decides which candidates run, each
with its ``p_deployable``: the best of a draw is the fastest candidate that runs, and
choosing one that fails costs what the evaluation charges for a failure (the slowest
running candidate's loss, at least 100 %). So a fast candidate that MEDN is unsure can
run at all is ranked by its risk, not only by its latency. ``risk_aware=False`` treats
every candidate judged deployable as certain to run.

Choices are ranked by expected loss (deployable ones first).

Example:
    >>> import numpy as np
    >>> r = rank_choices(np.log([1.0, 2.0]), np.array([0.1, 0.1]), np.array([0.9, 0.1]),
    ...                  np.array([1.0, 1.0]))
    >>> [int(i) for i in r.order]
    [0, 1]
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

__all__ = ["RankedChoices", "fit_draw_scale", "rank_choices", "relative_sigma"]

#: z of the two-sided 90 % interval.
_Z90 = 1.6448536269514722


@dataclass
class RankedChoices:
    """Per-candidate figures (candidate order) and the ranking.

    Attributes:
        latency_ms: Median predicted warm latency.
        latency_low_ms: Lower end of the 90 % interval.
        latency_high_ms: Upper end of the 90 % interval.
        p_fastest: Probability of being the fastest deployable choice.
        expected_loss: ``E[latency / latency(best) - 1]`` (NaN when judged not deployable).
        p_deployable: Probability the choice runs the model correctly.
        deployable: ``p_deployable >= 0.5``.
        order: Candidate indices, best first.
    """

    latency_ms: np.ndarray
    latency_low_ms: np.ndarray
    latency_high_ms: np.ndarray
    p_fastest: np.ndarray
    expected_loss: np.ndarray
    p_deployable: np.ndarray
    deployable: np.ndarray
    order: np.ndarray


def relative_sigma(
    residuals: np.ndarray, min_sigma: float = 0.02, *, robust: bool = True
) -> np.ndarray:
    """Per-candidate spread of the log-latency residuals after removing each sample's mean.

    A latency model's error has a part shared by every candidate of a sample (the model
    is heavier than its features say: every runtime is slower) and a part of its own.
    Only the second changes which candidate is fastest and by how much, so it is what
    the ranking's draws use; the interval of one candidate's latency uses the full error.

    The residuals are heavy-tailed: most predictions are close and a few are off by 3x.
    The RMS is set by those few, and Gaussian draws of that width make every choice's
    expected loss several times what is realised on held-out families (measured: a mean
    predicted loss of the pick of 84 % against a realised 25 %, from 45 % with the
    robust width). So by default the spread is the normal-consistent median absolute
    deviation, ``1.4826 * median(|r|)``.

    Args:
        residuals: ``predicted - measured`` log latency, ``[N, C]``, NaN where unmeasured.
        min_sigma: Floor of the result.
        robust: MAD-based spread (default) instead of the RMS.

    Returns:
        ``[C]``; candidates without residuals (or samples with one measured candidate
        only) get the spread over all candidates.
    """
    r = np.asarray(residuals, dtype=np.float64)
    counts = (~np.isnan(r)).sum(axis=1)
    rows = counts >= 2
    if not rows.any():
        return np.full(r.shape[1], np.nan)
    centred = r[rows] - np.nanmean(r[rows], axis=1, keepdims=True)
    known = ~np.isnan(centred)
    n = known.sum(axis=0)
    if robust:
        mad = 1.4826 * np.abs(centred)
        overall = float(np.median(mad[known])) if known.any() else float("nan")
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
            per = np.nanmedian(np.where(known, mad, np.nan), axis=0)
    else:
        sq = np.where(known, centred**2, 0.0)
        overall = float(np.sqrt(sq.sum() / max(int(known.sum()), 1)))
        per = np.sqrt(sq.sum(axis=0) / np.maximum(n, 1))
    out = np.where(n >= 3, per, overall)
    return np.maximum(out, min_sigma)


def rank_choices(
    log_latency_ms: np.ndarray,
    log_latency_sigma: np.ndarray,
    p_head: np.ndarray,
    p_deployable: np.ndarray,
    *,
    alpha: float = 0.5,
    n_samples: int = 2000,
    seed: int = 0,
    risk_aware: bool = True,
    log_relative_sigma: np.ndarray | None = None,
) -> RankedChoices:
    """Rank the candidates of one (model, device) pair; see the module docstring.

    ``log_latency_sigma`` sets the latency intervals; the draws that decide the fastest
    candidate and the expected loss use ``log_relative_sigma`` when given (the error
    not shared by all candidates of the sample, see :func:`relative_sigma`).
    """
    mu = np.clip(np.asarray(log_latency_ms, dtype=np.float64), -30.0, 30.0)
    sig = np.maximum(np.asarray(log_latency_sigma, dtype=np.float64), 1e-6)
    sig_draw = sig
    if log_relative_sigma is not None:
        rel = np.asarray(log_relative_sigma, dtype=np.float64)
        sig_draw = np.where(np.isfinite(rel), np.maximum(rel, 1e-6), sig)
    p_dep = np.asarray(p_deployable, dtype=np.float64)
    dep = p_dep >= 0.5
    if not dep.any():
        dep = p_dep >= p_dep.max()
    c = len(mu)
    rng = np.random.default_rng(seed)
    logs = mu + sig_draw * rng.standard_normal((n_samples, c))
    lat = np.exp(logs)
    runs: np.ndarray
    some: np.ndarray
    if risk_aware:
        # Each draw also decides which candidates run (independently, P = p_deployable).
        runs = np.less(rng.random((n_samples, c)), np.clip(p_dep, 0.0, 1.0))
        runs &= dep
        some = np.asarray(runs.any(axis=1))
        if not some.any():
            runs, some = np.broadcast_to(dep, (n_samples, c)).copy(), np.ones(n_samples, bool)
    else:
        runs, some = np.broadcast_to(dep, (n_samples, c)).copy(), np.ones(n_samples, bool)
    masked = np.where(runs, logs, np.inf)
    winner = np.argmin(masked, axis=1)
    best = np.exp(np.where(some, masked[np.arange(n_samples), winner], 0.0))
    valid_winner = np.where(some, winner, c)
    p_medn = np.bincount(valid_winner, minlength=c + 1)[:c] / max(int(some.sum()), 1)
    head = np.where(dep, np.clip(np.asarray(p_head, dtype=np.float64), 0.0, None), 0.0)
    head = head / head.sum() if head.sum() > 0 else p_medn
    target = alpha * head + (1.0 - alpha) * p_medn
    # A candidate MEDN never makes fastest cannot be re-weighted: renormalise over the rest.
    target = np.where(p_medn > 0, target, 0.0)
    target = target / target.sum()
    w = np.where(some, target[winner] / np.maximum(p_medn[winner], 1e-12), 0.0)
    w = w / w.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(runs, lat / best[:, None] - 1.0, np.nan)
    # A choice that fails in a draw costs what the evaluation charges: the slowest
    # running choice's loss, at least 100 %.
    worst = np.nanmax(np.where(runs, ratio, -np.inf), axis=1)
    penalty = np.maximum(worst, 1.0)
    ratio = np.where(runs, ratio, penalty[:, None])
    ratio = np.where(some[:, None], ratio, 0.0)
    exp_loss = np.where(dep, w @ ratio, np.nan)
    key = np.where(dep, exp_loss, np.inf)
    order = np.lexsort((-p_dep, key))
    return RankedChoices(
        latency_ms=np.exp(mu),
        latency_low_ms=np.exp(mu - _Z90 * sig),
        latency_high_ms=np.exp(mu + _Z90 * sig),
        p_fastest=np.where(dep, target, 0.0),
        expected_loss=exp_loss,
        p_deployable=p_dep,
        deployable=dep,
        order=order,
    )


def fit_draw_scale(
    log_pred: np.ndarray,
    log_true: np.ndarray,
    log_relative_sigma: np.ndarray,
    scales: np.ndarray | None = None,
    *,
    n_samples: int = 500,
    seed: int = 0,
) -> tuple[float, dict[str, float]]:
    """Scale of the ranking's draws that makes the expected loss of the pick honest.

    On held-out predictions, for each scale ``t`` the candidates measured for a sample are
    ranked by expected loss with draws of width ``t * log_relative_sigma`` (no head, every
    candidate deployable); the mean predicted expected loss of the pick is compared with
    its mean realised regret (``exp(true[pick] - min(true)) - 1``). The scale whose
    prediction is closest to what was realised is returned (1.0 when no sample has two
    measured candidates).

    Args:
        log_pred: Predicted log latency ``[N, C]``.
        log_true: Measured log latency ``[N, C]``, NaN where unmeasured.
        log_relative_sigma: ``[C]`` (see :func:`relative_sigma`).
        scales: Candidate scales (default 0.2 to 1.5).
        n_samples: Draws per sample.
        seed: Seed of the draws.

    Returns:
        ``(scale, {"predicted": ..., "realised": ..., "samples": ...})`` at that scale.
    """
    pred = np.asarray(log_pred, dtype=np.float64)
    true = np.asarray(log_true, dtype=np.float64)
    rel = np.asarray(log_relative_sigma, dtype=np.float64)
    grid = np.asarray(scales if scales is not None else np.linspace(0.2, 1.5, 14))
    rows = [i for i in range(len(true)) if int(np.sum(~np.isnan(true[i]))) >= 2]
    if not rows:
        return 1.0, {"predicted": float("nan"), "realised": float("nan"), "samples": 0.0}
    best: tuple[float, float, float, float] | None = None
    for t in grid:
        got, real = [], []
        for i in rows:
            known = ~np.isnan(true[i]) & np.isfinite(pred[i])
            if known.sum() < 2:
                continue
            r = rank_choices(
                np.where(known, pred[i], 0.0),
                np.maximum(rel, 1e-6),
                np.ones(len(rel)),
                known.astype(np.float64),
                alpha=0.0,
                n_samples=n_samples,
                seed=seed,
                risk_aware=False,
                log_relative_sigma=t * rel,
            )
            pick = int(r.order[0])
            got.append(float(r.expected_loss[pick]))
            real.append(float(np.exp(true[i, pick] - np.nanmin(true[i])) - 1.0))
        if not got:
            continue
        gap = abs(float(np.mean(got)) - float(np.mean(real)))
        if best is None or gap < best[0]:
            best = (gap, round(float(t), 4), float(np.mean(got)), float(np.mean(real)))
    if best is None:
        return 1.0, {"predicted": float("nan"), "realised": float("nan"), "samples": 0.0}
    return best[1], {"predicted": best[2], "realised": best[3], "samples": float(len(rows))}
