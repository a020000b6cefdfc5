"""Fit the ranking's blend weight ``alpha`` (head vs MEDN) on out-of-fold predictions.

:func:`graphrec.recommender.ranking.rank_choices` blends the head's ``P(fastest)`` with MEDN's
latency distribution using a weight ``alpha`` in ``[0, 1]`` (1: trust the head only).
:func:`fit_alpha` picks it from a grid by the mean loss (by default the log latency ratio
``log(1 + regret)``) of the top-ranked choice on predictions for samples the models did not train on (inner family-grouped
folds, see :func:`graphrec.recommender.train.fit_recommender`). Ties go to the value nearest the
prior 0.5, so the result is deterministic and does not drift to an end of the range on
flat evidence.

Example:
    >>> import numpy as np
    >>> lat = np.log([[1.0, 2.0], [1.0, 2.0]])
    >>> sig = np.array([0.1, 0.1])
    >>> head = np.array([[0.0, 1.0], [0.0, 1.0]])  # the head is wrong
    >>> dep = np.ones((2, 2))
    >>> regret = np.array([[0.0, 1.0], [0.0, 1.0]])
    >>> alpha, _ = fit_alpha(lat, sig, head, dep, regret)
    >>> alpha < 0.5
    True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from graphrec.dataset.samples import first_measured
from graphrec.recommender.pso_catboost import selection_transform
from graphrec.recommender.ranking import rank_choices

__all__ = ["ALPHA_GRID", "blend_regret", "fit_alpha"]

#: Candidate blend weights.
ALPHA_GRID: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(11))


def blend_regret(
    log_latency_ms: np.ndarray,
    log_latency_sigma: np.ndarray,
    p_head: np.ndarray,
    p_deployable: np.ndarray,
    regret: np.ndarray,
    alpha: float,
    *,
    n_samples: int = 500,
) -> np.ndarray:
    """Regret of the top-ranked choice per sample for one ``alpha``, ``[N]``.

    Args:
        log_latency_ms: MEDN log-latency per sample and candidate, ``[N, C]``.
        log_latency_sigma: MEDN log-latency error per candidate, ``[C]`` (or ``[N, C]``).
        p_head: Head ``P(fastest)``, ``[N, C]``.
        p_deployable: MEDN deployability, ``[N, C]``.
        regret: True regret of every choice, ``[N, C]``.
        alpha: Blend weight of the head.
        n_samples: Monte-Carlo draws per ranking.
    """
    n = len(regret)
    sig = np.asarray(log_latency_sigma, dtype=np.float64)
    out = np.empty(n)
    for i in range(n):
        r = rank_choices(
            log_latency_ms[i],
            sig[i] if sig.ndim == 2 else sig,
            p_head[i],
            p_deployable[i],
            alpha=alpha,
            n_samples=n_samples,
        )
        out[i] = regret[i, first_measured(r.order, regret[i])]
    return out


def fit_alpha(
    log_latency_ms: np.ndarray,
    log_latency_sigma: np.ndarray,
    p_head: np.ndarray,
    p_deployable: np.ndarray,
    regret: np.ndarray,
    *,
    grid: Sequence[float] = ALPHA_GRID,
    n_samples: int = 500,
    loss: str = "log",
) -> tuple[float, dict[str, float]]:
    """The grid value of ``alpha`` with the lowest mean out-of-fold loss.

    ``loss`` is ``"log"`` (mean ``log(1 + regret)``, the log latency ratio: on small
    data one sample with a 20x loss would otherwise decide alone) or ``"regret"``.

    Returns:
        ``(alpha, {str(alpha): mean loss})`` for every grid value.

    Raises:
        ValueError: Empty or mismatched inputs, or a grid value outside ``[0, 1]``.
    """
    regret = np.asarray(regret, dtype=np.float64)
    if regret.ndim != 2 or len(regret) == 0:
        raise ValueError(f"regret must be [N, C] with N > 0, got shape {regret.shape}")
    for name, a in (("log_latency_ms", log_latency_ms), ("p_head", p_head)):
        if np.shape(a) != regret.shape:
            raise ValueError(f"{name} has shape {np.shape(a)}, regret {regret.shape}")
    if not grid or any(not 0.0 <= float(a) <= 1.0 for a in grid):
        raise ValueError(f"alpha grid must be non-empty within [0, 1], got {list(grid)}")
    selection_transform(np.zeros(1), loss)  # validates ``loss``
    scores = {
        float(a): float(
            selection_transform(
                blend_regret(
                    log_latency_ms,
                    log_latency_sigma,
                    p_head,
                    p_deployable,
                    regret,
                    float(a),
                    n_samples=n_samples,
                ),
                loss,
            ).mean()
        )
        for a in grid
    }
    best = min(scores.values())
    ties = [a for a, s in scores.items() if s <= best + 1e-12]
    alpha = min(ties, key=lambda a: (abs(a - 0.5), a))
    return alpha, {f"{a:g}": s for a, s in scores.items()}
