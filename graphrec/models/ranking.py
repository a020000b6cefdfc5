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

Choices are ranked by expected loss (deployable ones first).

Example:
    >>> import numpy as np
    >>> r = rank_choices(np.log([1.0, 2.0]), np.array([0.1, 0.1]), np.array([0.9, 0.1]),
    ...                  np.array([1.0, 1.0]))
    >>> [int(i) for i in r.order]
    [0, 1]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["RankedChoices", "rank_choices"]

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


def rank_choices(
    log_latency_ms: np.ndarray,
    log_latency_sigma: np.ndarray,
    p_head: np.ndarray,
    p_deployable: np.ndarray,
    *,
    alpha: float = 0.5,
    n_samples: int = 2000,
    seed: int = 0,
) -> RankedChoices:
    """Rank the candidates of one (model, device) pair; see the module docstring."""
    mu = np.clip(np.asarray(log_latency_ms, dtype=np.float64), -30.0, 30.0)
    sig = np.maximum(np.asarray(log_latency_sigma, dtype=np.float64), 1e-6)
    p_dep = np.asarray(p_deployable, dtype=np.float64)
    dep = p_dep >= 0.5
    if not dep.any():
        dep = p_dep >= p_dep.max()
    c = len(mu)
    rng = np.random.default_rng(seed)
    logs = mu + sig * rng.standard_normal((n_samples, c))
    lat = np.exp(logs)
    masked = np.where(dep, logs, np.inf)
    winner = np.argmin(masked, axis=1)
    best = np.exp(masked[np.arange(n_samples), winner])
    p_medn = np.bincount(winner, minlength=c) / n_samples
    head = np.where(dep, np.clip(np.asarray(p_head, dtype=np.float64), 0.0, None), 0.0)
    head = head / head.sum() if head.sum() > 0 else p_medn
    target = alpha * head + (1.0 - alpha) * p_medn
    # A candidate MEDN never makes fastest cannot be re-weighted: renormalise over the rest.
    target = np.where(p_medn > 0, target, 0.0)
    target = target / target.sum()
    w = target[winner] / np.maximum(p_medn[winner], 1e-12)
    w = w / w.sum()
    ratio = lat / best[:, None] - 1.0
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
