"""Gradient-boosted per-(model, candidate) latency model, the second half of the latency
ensemble beside MEDN.

MEDN (:mod:`graphrec.recommender.medn`) learns one decoder head per candidate from a few
hundred models, so a candidate measured on few models gets a weak head. This model pools
every measured ``(model, candidate)`` pair into one CatBoost regressor whose inputs are
the model's numeric features, the device features and the candidate's parts (runtime,
backend, precision and options as categorical features, threads as a number), so what it
learns about, say, ``threads=2`` or ``precision=int8`` is shared across runtimes. It
predicts log warm latency and log cold start; :class:`graphrec.recommender.artefact.Recommender`
averages its log-latency with MEDN's.

Persistence uses CatBoost's own format (no pickle) plus JSON metadata.

Example:
    >>> from graphrec.recommender.latency_gbdt import PairLatencyRegressor
    >>> gb = PairLatencyRegressor(seed=0).fit(dataset)  # doctest: +SKIP
    >>> lat, cold = gb.predict_arrays(dataset.graph_features, dataset.device_features)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from graphrec.errors import NotFittedError
from graphrec.recommender._params import EstimatorParams
from graphrec.recommender.ranking import relative_sigma

if TYPE_CHECKING:
    from graphrec.dataset.samples import RecDataset

__all__ = ["PairLatencyRegressor", "candidate_parts"]

_CAT_NAMES = ("runtime", "backend", "precision", "options", "candidate")


def candidate_parts(candidate_id: str) -> tuple[list[str], float]:
    """Split a harness candidate id into categorical parts and the thread count.

    ``"onnxruntime/cpu/fp32/opt=all/threads=2"`` gives
    ``(["onnxruntime", "cpu", "fp32", "opt=all", "onnxruntime/cpu/fp32/opt=all/threads=2"], 2.0)``.
    """
    parts = candidate_id.split("/")
    threads = 0.0
    opts = []
    for p in parts[3:]:
        if p.startswith("threads="):
            try:
                threads = float(p.split("=", 1)[1])
            except ValueError:
                threads = 0.0
        else:
            opts.append(p)
    head = [*parts[:3], "", "", ""][:3]
    return [*head, "/".join(opts) or "-", candidate_id], threads


class PairLatencyRegressor(EstimatorParams):
    """CatBoost regressors of log warm latency and log cold start per (model, candidate).

    Args:
        iterations: Most boosting rounds (the count is chosen on a family-grouped
            holdout, then the model is refitted on everything).
        depth: Tree depth.
        learning_rate: Boosting learning rate.
        holdout_fraction: Share of architecture families held out to choose the
            number of rounds and to estimate the error (0: use ``iterations``).
        seed: Seed of CatBoost and of the holdout split.
        one_hot_max_size: Categorical columns (runtime, backend, precision, options,
            candidate) with at most this many values enter one-hot. CatBoost's default (2)
            turns them into ordered target statistics, which carry a candidate's mean
            latency but not how its latency scales with the model: on a synthetic
            crossover the pick's regret was 2.6 with the default and 0.003 one-hot
            (``tests/recommender/test_latency_gbdt.py``).
    """

    def __init__(
        self,
        iterations: int = 1500,
        depth: int = 6,
        learning_rate: float = 0.06,
        holdout_fraction: float = 0.2,
        seed: int = 0,
        one_hot_max_size: int = 255,
    ) -> None:
        self.iterations = iterations
        self.depth = depth
        self.learning_rate = learning_rate
        self.holdout_fraction = holdout_fraction
        self.seed = seed
        self.one_hot_max_size = one_hot_max_size

    # ------------------------------------------------------------------ rows
    @staticmethod
    def _matrices(
        gf: np.ndarray, df: np.ndarray, cands: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Numeric ``[N*C, F]`` and categorical ``[N*C, 5]`` parts of every (sample,
        candidate) row, sample-major."""
        gf = np.atleast_2d(np.asarray(gf, dtype=np.float64))
        df = np.atleast_2d(np.asarray(df, dtype=np.float64))
        n, c = len(gf), len(cands)
        parts = [candidate_parts(x) for x in cands]
        num = np.hstack(
            [
                np.repeat(gf, c, axis=0),
                np.repeat(df, c, axis=0),
                np.tile(np.array([[t] for _, t in parts]), (n, 1)),
            ]
        )
        cat = np.tile(np.array([list(p) for p, _ in parts], dtype=object), (n, 1))
        return num, cat

    def _rows(self, gf: np.ndarray, df: np.ndarray, cands: Sequence[str]) -> Any:
        """Pool rows for every (sample, candidate): a DataFrame, sample-major."""
        import pandas as pd

        num, cat = self._matrices(gf, df, cands)
        frame = pd.DataFrame(num, columns=[f"x{i}" for i in range(num.shape[1])])
        for k, name in enumerate(_CAT_NAMES):
            frame[name] = cat[:, k]
        return frame

    def _predict_pool(self, gf: np.ndarray, df: np.ndarray) -> Any:
        """The rows of :meth:`_rows` as a CatBoost pool built without pandas.

        Same columns in the same order (numeric, then categorical), so the same
        predictions; building it takes ~0.7 ms instead of ~8 ms for a DataFrame, which was
        the largest part of a warm ``recommend`` call.
        """
        from catboost import FeaturesData, Pool

        num, cat = self._matrices(gf, df, self.candidates_)
        return Pool(
            FeaturesData(
                num_feature_data=num.astype(np.float32),
                cat_feature_data=cat,
                num_feature_names=[f"x{i}" for i in range(num.shape[1])],
                cat_feature_names=list(_CAT_NAMES),
            )
        )

    # ------------------------------------------------------------------ fit
    def fit(self, dataset: RecDataset) -> PairLatencyRegressor:
        """Fit on every measured pair of ``dataset``; returns ``self``."""
        if len(dataset) < 2:
            raise ValueError(f"need at least 2 samples, got {len(dataset)}")
        self.candidates_ = list(dataset.candidates)
        self.n_graph_features_ = dataset.graph_features.shape[1]
        self.n_device_features_ = dataset.device_features.shape[1]
        frame = self._rows(dataset.graph_features, dataset.device_features, self.candidates_)
        fam = np.repeat(np.asarray(dataset.families), len(self.candidates_))
        self.models_: dict[str, Any] = {}
        self.sigma_: dict[str, list[float]] = {}
        self.best_iterations_: dict[str, int] = {}
        for target, y in (
            ("latency", dataset.log_latency_ms.ravel()),
            ("cold_start", dataset.log_cold_start_ms.ravel()),
        ):
            ok = ~np.isnan(y)
            if ok.sum() < 2:
                continue
            model, sigma, iters, rel, held = self._fit_target(
                frame[ok], y[ok], fam[ok], np.flatnonzero(ok)
            )
            if target == "latency":
                #: ``(predicted, measured)`` log latency ``[H, C]`` of the held-out
                #: families (NaN where unmeasured), or None; not saved with the model.
                self.holdout_latency_ = held
            self.models_[target], self.best_iterations_[target] = model, iters
            self.sigma_[target] = sigma
            self.sigma_[f"{target}_rel"] = np.where(np.isfinite(rel), rel, sigma).tolist()
        if "latency" not in self.models_:
            raise ValueError("no measured latency to learn from")
        return self

    def _fit_target(
        self, frame: Any, y: np.ndarray, fam: np.ndarray, flat: np.ndarray
    ) -> tuple[Any, list[float], int, np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
        from catboost import CatBoostRegressor, Pool

        c = len(self.candidates_)
        cat = list(_CAT_NAMES)
        kw = {
            "depth": self.depth,
            "learning_rate": self.learning_rate,
            "loss_function": "RMSE",
            "random_seed": self.seed,
            "verbose": False,
            "thread_count": 1,
            "allow_writing_files": False,
            "one_hot_max_size": int(self.one_hot_max_size),
        }
        iters = self.iterations
        sigma = np.full(c, np.nan)
        rel = np.full(c, np.nan)
        held: tuple[np.ndarray, np.ndarray] | None = None
        names = sorted(set(fam))
        rng = np.random.default_rng(self.seed)
        n_hold = round(self.holdout_fraction * len(names))
        if self.holdout_fraction > 0 and 1 <= n_hold < len(names):
            hold = set(rng.choice(names, size=n_hold, replace=False).tolist())
            va = np.array([f in hold for f in fam])
            m = CatBoostRegressor(iterations=self.iterations, **kw)
            m.fit(
                Pool(frame[~va], y[~va], cat_features=cat),
                eval_set=Pool(frame[va], y[va], cat_features=cat),
                early_stopping_rounds=100,
                use_best_model=True,
            )
            iters = max(int(m.get_best_iteration() or 0) + 1, 50)
            pred = np.asarray(m.predict(Pool(frame[va], cat_features=cat)), dtype=np.float64)
            resid = pred - y[va]
            col = flat[va] % c
            for j in range(c):
                r = resid[col == j]
                if len(r) >= 3:
                    sigma[j] = float(np.sqrt(np.mean(r**2)))
            overall = float(np.sqrt(np.mean(resid**2)))
            sigma = np.where(np.isnan(sigma), overall, sigma)
            uniq, sample = np.unique(flat[va] // c, return_inverse=True)
            grid = np.full((len(uniq), c), np.nan)
            grid[sample, col] = resid
            rel = relative_sigma(grid)
            p_grid = np.full((len(uniq), c), np.nan)
            p_grid[sample, col] = pred
            y_grid = np.full((len(uniq), c), np.nan)
            y_grid[sample, col] = y[va]
            held = (p_grid, y_grid)
        model = CatBoostRegressor(iterations=iters, **kw)
        model.fit(Pool(frame, y, cat_features=cat))
        if np.isnan(sigma).all():
            sigma[:] = 0.3
        return model, np.maximum(sigma, 0.02).tolist(), iters, rel, held

    # ------------------------------------------------------------------ predict
    def _check(self) -> None:
        if not hasattr(self, "models_"):
            raise NotFittedError(
                "this PairLatencyRegressor is not fitted yet; call fit(dataset) first"
            )

    def predict_arrays(
        self, graph_features: np.ndarray, device_features: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Log warm latency and log cold start (NaN if not learnt), each ``[N, C]``."""
        self._check()
        gf = np.atleast_2d(np.asarray(graph_features, dtype=np.float64))
        df = np.atleast_2d(np.asarray(device_features, dtype=np.float64))
        if gf.shape[1] != self.n_graph_features_ or df.shape[1] != self.n_device_features_:
            raise ValueError(
                f"expected {self.n_graph_features_} graph and {self.n_device_features_} device "
                f"features, got {gf.shape[1]} and {df.shape[1]}"
            )
        n, c = len(gf), len(self.candidates_)
        if n == 0:
            z = np.zeros((0, c))
            return z, z.copy()
        pool = self._predict_pool(gf, df)
        out = []
        for target in ("latency", "cold_start"):
            m = self.models_.get(target)
            out.append(
                np.asarray(m.predict(pool), dtype=np.float64).reshape(n, c)
                if m is not None
                else np.full((n, c), np.nan)
            )
        return out[0], out[1]

    @property
    def log_latency_sigma(self) -> np.ndarray:
        """Per-candidate RMS error of the log latency on the held-out families, ``[C]``."""
        self._check()
        return np.asarray(self.sigma_["latency"], dtype=np.float64)

    @property
    def log_latency_rel_sigma(self) -> np.ndarray:
        """The part of that error not shared by a sample's candidates, ``[C]``."""
        self._check()
        return np.asarray(self.sigma_.get("latency_rel", self.sigma_["latency"]), dtype=np.float64)

    # ------------------------------------------------------------------ persistence
    def save(self, folder: str | Path, stem: str = "latency_gbdt") -> dict[str, Any]:
        """Write ``<stem>_<target>.cbm`` files; returns the JSON metadata to keep."""
        self._check()
        out = Path(folder)
        files = {}
        for target, m in self.models_.items():
            name = f"{stem}_{target}.cbm"
            m.save_model(str(out / name), format="cbm")
            files[target] = name
        return {
            "params": self.get_params(),
            "candidates": self.candidates_,
            "n_graph_features": self.n_graph_features_,
            "n_device_features": self.n_device_features_,
            "sigma": self.sigma_,
            "best_iterations": self.best_iterations_,
            "files": files,
        }

    @classmethod
    def load(cls, folder: str | Path, meta: dict[str, Any]) -> PairLatencyRegressor:
        """Rebuild from :meth:`save`'s metadata and files (checksums are checked by the
        artefact loader before this runs)."""
        from catboost import CatBoostRegressor

        # Artefacts written before one_hot_max_size existed were fitted with CatBoost's 2.
        obj = cls(**{"one_hot_max_size": 2, **meta["params"]})
        obj.candidates_ = list(meta["candidates"])
        obj.n_graph_features_ = int(meta["n_graph_features"])
        obj.n_device_features_ = int(meta["n_device_features"])
        obj.sigma_ = {k: list(v) for k, v in meta["sigma"].items()}
        obj.best_iterations_ = {k: int(v) for k, v in meta.get("best_iterations", {}).items()}
        obj.models_ = {}
        for target, name in meta["files"].items():
            m = CatBoostRegressor()
            m.load_model(str(Path(folder) / name), format="cbm")
            obj.models_[target] = m
        return obj
