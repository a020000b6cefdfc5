"""Few-shot adaptation of latency predictions to a new device.

The model is a hierarchical (meta-learned) Bayesian linear one. Every item ``i`` (a
network, or a (model, candidate) pair) has a basis vector ``phi_i``; a device ``d``
has weights ``w_d`` and its log-latencies are ``y_di = phi_i . w_d + noise``. The
weights of the training devices are fitted by ridge regression; their mean and
(shrunk) covariance become the prior of a new device's weights. Given the
log-latencies of ``K`` probe items measured on the new device, the posterior mean of
its weights predicts every other item (a device embedding inferred from the probes,
in the spirit of HELP, Lee et al., NeurIPS 2021, without its gradient-based
meta-learning). :meth:`FewShotAdapter.select_probes` picks the probes that shrink the
posterior most (greedy Bayesian D-optimal design), so K measurements say as much as
they can about the device.

The basis is ``[1, item features, item factors]``: the features describe the item
(e.g. one-hot operations of a NAS-Bench-201 cell), the factors are the leading left
singular vectors of the training devices' standardised log-latency matrix (what the
items' latencies share across devices).

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> base = rng.normal(size=200)
    >>> Y = np.stack([a * base + b for a, b in [(1, 0), (2, 1), (0.5, 3)]], axis=1)
    >>> ad = FewShotAdapter(n_factors=1).fit(Y)
    >>> probes = ad.select_probes(5)
    >>> w = ad.infer(probes, 1.5 * base[probes] - 2)
    >>> bool(np.corrcoef(ad.predict(w), base)[0, 1] > 0.99)
    True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["FewShotAdapter"]


class FewShotAdapter:
    """Meta-learned Gaussian prior over per-device weights on a shared item basis.

    Args:
        n_factors: Item factors taken from the training devices' latency matrix (0: the
            item features alone).
        ridge: Ridge penalty of the per-training-device fits.
        cov_shrink: Weight of the diagonal in the prior covariance
            (``(1 - s) * cov + s * diag(cov)``); the covariance of a few devices is noisy.
        cov_floor: Added to the prior covariance's diagonal (a minimum prior variance).

    Attributes:
        basis_: ``[n_items, q]`` basis of the fitted items.
        prior_mean_: ``[q]`` mean weights of the training devices.
        prior_cov_: ``[q, q]`` prior covariance.
        noise_var_: Residual variance of the training devices' fits.
        weights_: ``[n_devices, q]`` weights of the training devices.
    """

    def __init__(
        self,
        n_factors: int = 6,
        ridge: float = 0.1,
        cov_shrink: float = 0.5,
        cov_floor: float = 1e-4,
    ) -> None:
        self.n_factors = n_factors
        self.ridge = ridge
        self.cov_shrink = cov_shrink
        self.cov_floor = cov_floor

    def fit(self, log_latency: np.ndarray, features: np.ndarray | None = None) -> FewShotAdapter:
        """Fit the prior on a complete ``[n_items, n_devices]`` log-latency matrix.

        Args:
            log_latency: Log-latencies of every item on every training device.
            features: Optional ``[n_items, p]`` item features.

        Raises:
            ValueError: Wrong shapes, missing values, or more factors than devices.
        """
        Y = np.asarray(log_latency, dtype=np.float64)
        if Y.ndim != 2 or Y.shape[0] < 2 or Y.shape[1] < 1:
            raise ValueError(f"log_latency must be [n_items >= 2, n_devices >= 1], got {Y.shape}")
        if not np.isfinite(Y).all():
            raise ValueError("log_latency has missing or infinite values; impute them first")
        r = int(self.n_factors)
        if r < 0 or r > Y.shape[1]:
            raise ValueError(f"n_factors must be in [0, {Y.shape[1]}] (the devices), got {r}")
        parts = [np.ones((len(Y), 1))]
        if features is not None:
            X = np.asarray(features, dtype=np.float64)
            if X.shape[0] != len(Y):
                raise ValueError(f"features has {X.shape[0]} rows for {len(Y)} items")
            parts.append(X)
        if r:
            Z = (Y - Y.mean(0)) / np.maximum(Y.std(0), 1e-9)
            U, s, _ = np.linalg.svd(Z, full_matrices=False)
            parts.append(U[:, :r] * s[:r] / np.sqrt(len(Z)))
        phi = np.hstack(parts)
        q = phi.shape[1]
        gram = phi.T @ phi + float(self.ridge) * np.eye(q)
        W = np.linalg.solve(gram, phi.T @ Y).T
        resid = Y - phi @ W.T
        self.basis_ = phi
        self.weights_ = W
        self.noise_var_ = float(max(resid.var(axis=0).mean(), 1e-8))
        self.prior_mean_ = W.mean(axis=0)
        if len(W) > 1:
            cov = np.atleast_2d(np.cov(W.T))
        else:
            cov = np.diag(np.maximum(np.abs(W[0]), 1.0) ** 2)
        s_ = float(self.cov_shrink)
        cov = (1 - s_) * cov + s_ * np.diag(np.diag(cov))
        self.prior_cov_ = cov + float(self.cov_floor) * np.eye(q)
        return self

    def _check(self) -> None:
        if not hasattr(self, "basis_"):
            raise ValueError("this FewShotAdapter is not fitted yet: call fit(log_latency)")

    def select_probes(
        self, k: int, *, candidates: Sequence[int] | np.ndarray | None = None
    ) -> list[int]:
        """The ``k`` items whose measurement shrinks the weights' posterior most.

        Greedy: each step takes the item of largest predictive variance under the
        posterior given the items already chosen.

        Args:
            k: Number of probes.
            candidates: Item indices to choose from (default: every item).
        """
        self._check()
        phi = self.basis_
        pool = np.arange(len(phi)) if candidates is None else np.asarray(candidates, dtype=np.int64)
        if k > len(pool):
            raise ValueError(f"asked for {k} probes out of {len(pool)} items")
        S = self.prior_cov_.copy()
        chosen: list[int] = []
        P = phi[pool]
        taken = np.zeros(len(pool), dtype=bool)
        for _ in range(int(k)):
            var = np.einsum("ij,jk,ik->i", P, S, P)
            var[taken] = -np.inf
            j = int(np.argmax(var))
            taken[j] = True
            chosen.append(int(pool[j]))
            p = P[j]
            Sp = S @ p
            S = S - np.outer(Sp, Sp) / (self.noise_var_ + p @ Sp)
        return chosen

    def infer(
        self, probe_items: Sequence[int] | np.ndarray, probe_log_latency: np.ndarray
    ) -> np.ndarray:
        """Posterior mean weights of a new device from its probes' log-latencies."""
        self._check()
        idx = np.asarray(probe_items, dtype=np.int64)
        y = np.asarray(probe_log_latency, dtype=np.float64)
        if idx.shape != y.shape:
            raise ValueError(f"{len(idx)} probe items but {y.shape} latencies")
        return self.infer_basis(self.basis_[idx], y)

    def infer_basis(self, probe_basis: np.ndarray, probe_log_latency: np.ndarray) -> np.ndarray:
        """:meth:`infer` for probes given by their basis rows (items not in the fit)."""
        self._check()
        P = np.atleast_2d(np.asarray(probe_basis, dtype=np.float64))
        y = np.asarray(probe_log_latency, dtype=np.float64)
        prec = np.linalg.inv(self.prior_cov_)
        A = P.T @ P / self.noise_var_ + prec
        b = P.T @ y / self.noise_var_ + prec @ self.prior_mean_
        return np.asarray(np.linalg.solve(A, b))

    def predict(
        self, weights: np.ndarray, items: Sequence[int] | np.ndarray | None = None
    ) -> np.ndarray:
        """Predicted log-latencies of the fitted items (all, or ``items``) for ``weights``."""
        self._check()
        phi = self.basis_ if items is None else self.basis_[np.asarray(items, dtype=np.int64)]
        return np.asarray(phi @ np.asarray(weights, dtype=np.float64))
