"""The simple rules a learned recommender has to beat, in one place.

Each baseline is fitted on training samples and ranks the candidates of new samples, like
:class:`graphrec.recommender.Recommender` does:

* :class:`BestOnAverage`: one fixed order, by mean regret over the training samples;
* :class:`FlopsRule`: one threshold on the model's FLOPs, the best-on-average choice on
  each side of it;
* :class:`RuntimeDefault`: what a user gets without graphrec, the runtime's default
  configuration (onnxruntime, fp32, all graph optimisations).

:func:`mean_regret` is the one definition of "best on average": the mean regret of each
candidate over the samples where it was measured (a candidate never measured is
``inf``). The training summary of an artefact, the evaluation and the external-model
check all read it from here.

Example:
    >>> import numpy as np
    >>> regret = np.array([[0.0, 0.5], [0.2, 0.0], [0.1, np.nan]])
    >>> [float(x) for x in mean_regret(regret)]
    [0.1, 0.25]
    >>> BestOnAverage().fit_regret(regret).order_.tolist()
    [0, 1]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from graphrec.recommender._params import EstimatorParams

if TYPE_CHECKING:
    from graphrec.dataset.samples import RecDataset

__all__ = ["BestOnAverage", "FlopsRule", "RuntimeDefault", "mean_regret"]


def mean_regret(regret: np.ndarray) -> np.ndarray:
    """Mean regret per candidate over the samples where it was measured, ``[C]``.

    Args:
        regret: ``[N, C]`` (:func:`graphrec.dataset.samples.regret_matrix`), NaN where a
            candidate was not measured.

    Returns:
        The means; ``inf`` for a candidate with no measured sample.
    """
    r = np.atleast_2d(np.asarray(regret, dtype=np.float64))
    known = ~np.isnan(r)
    total = np.where(known, r, 0.0).sum(axis=0)
    count = known.sum(axis=0)
    return np.where(count > 0, total / np.maximum(count, 1), np.inf)


def _regret_of(dataset: RecDataset) -> np.ndarray:
    from graphrec.dataset.samples import regret_matrix

    return regret_matrix(dataset.log_latency_ms, dataset.deployable)


class BestOnAverage(EstimatorParams):
    """The candidate with the lowest mean regret on the training samples, for every sample.

    Attributes:
        candidates_: Candidate ids (after :meth:`fit`).
        order_: Candidate indices, lowest mean regret first.
        mean_regret_: :func:`mean_regret` of the training samples.
    """

    def fit(self, dataset: RecDataset, y: object = None) -> BestOnAverage:
        """Fit on a :class:`~graphrec.dataset.samples.RecDataset`; returns ``self``."""
        self.candidates_ = list(dataset.candidates)
        return self.fit_regret(_regret_of(dataset))

    def fit_regret(self, regret: np.ndarray) -> BestOnAverage:
        """Fit on a regret matrix ``[N, C]``; returns ``self``."""
        self.mean_regret_ = mean_regret(regret)
        self.order_ = np.argsort(self.mean_regret_, kind="stable")
        return self

    @property
    def best_(self) -> int:
        """Index of the best candidate on average."""
        return int(self.order_[0])

    def orders(self, n: int) -> np.ndarray:
        """The ranking of ``n`` samples, ``[n, C]`` (the same order for each)."""
        return np.tile(self.order_, (n, 1))


class FlopsRule(EstimatorParams):
    """A FLOPs threshold with the best-on-average candidate below and above it.

    The threshold is searched among the 10 %..90 % quantiles of the training samples'
    ``log1p(FLOPs)`` for the lowest total regret; each side's choice is
    :func:`mean_regret`'s argmin on that side, and the rest of the ranking follows the
    overall best-on-average order.

    Attributes:
        threshold_: ``log1p(FLOPs)`` threshold.
        below_: Candidate index at or below it.
        above_: Candidate index above it.
    """

    def fit(self, dataset: RecDataset, y: object = None) -> FlopsRule:
        """Fit on a :class:`~graphrec.dataset.samples.RecDataset`; returns ``self``."""
        return self.fit_regret(np.log1p(dataset.flops), _regret_of(dataset))

    def fit_regret(self, log_flops: np.ndarray, regret: np.ndarray) -> FlopsRule:
        """Fit on ``log1p(FLOPs)`` ``[N]`` and a regret matrix ``[N, C]``."""
        lf = np.asarray(log_flops, dtype=np.float64)
        r = np.atleast_2d(np.asarray(regret, dtype=np.float64))
        self.overall_ = BestOnAverage().fit_regret(r)
        best = (np.inf, float(np.inf), self.overall_.best_, self.overall_.best_)
        for t in np.unique(np.quantile(lf, np.linspace(0.1, 0.9, 9))):
            lo, hi = lf <= t, lf > t
            a = int(np.argmin(mean_regret(r[lo]))) if lo.any() else self.overall_.best_
            b = int(np.argmin(mean_regret(r[hi]))) if hi.any() else a
            cost = np.nansum(r[lo, a]) + np.nansum(r[hi, b])
            if cost < best[0]:
                best = (float(cost), float(t), a, b)
        _, self.threshold_, self.below_, self.above_ = best
        return self

    def orders(self, log_flops: np.ndarray) -> np.ndarray:
        """The ranking of samples with these ``log1p(FLOPs)``, ``[n, C]``."""
        rest = self.overall_.order_
        out = []
        for v in np.atleast_1d(np.asarray(log_flops, dtype=np.float64)):
            first = self.below_ if v <= self.threshold_ else self.above_
            out.append([first, *(int(c) for c in rest if c != first)])
        return np.asarray(out, dtype=np.int64)


class RuntimeDefault(EstimatorParams):
    """The runtime's out-of-the-box configuration, whatever the model.

    Args:
        prefix: Candidate ids starting with this are the default configuration (one per
            thread count); the ranking lists them, highest thread count first, then the
            other candidates in id order.
    """

    def __init__(self, prefix: str = "onnxruntime/cpu/fp32/opt=all/") -> None:
        self.prefix = prefix

    def fit(self, dataset: RecDataset, y: object = None) -> RuntimeDefault:
        """Find the default candidates among ``dataset.candidates``; returns ``self``."""
        return self.fit_candidates(dataset.candidates)

    def fit_candidates(self, candidates: Sequence[str]) -> RuntimeDefault:
        """Find the default candidates among ``candidates``; returns ``self``."""
        hits = [i for i, c in enumerate(candidates) if c.startswith(self.prefix)]
        self.defaults_ = hits[::-1]
        rest = [i for i in range(len(candidates)) if i not in hits]
        self.order_ = np.asarray([*self.defaults_, *rest], dtype=np.int64)
        return self

    def orders(self, n: int) -> np.ndarray:
        """The ranking of ``n`` samples, ``[n, C]``."""
        return np.tile(self.order_, (n, 1))
