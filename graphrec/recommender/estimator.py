"""The recommender as one estimator: ``Recommender().fit(dataset)``, then rank and score.

:class:`Recommender` holds every learned part behind one scikit-learn-style object:

* the MEDN network (:class:`~graphrec.recommender.medn.MEDNRegressor`): latency, cold
  start and deployability of every candidate, from the operator graph (GNN encoder),
  the numeric graph features and the device features;
* the pooled latency regressor
  (:class:`~graphrec.recommender.latency_gbdt.PairLatencyRegressor`), averaged with MEDN
  in log space (``latency_weight`` on MEDN);
* the best-choice head (:class:`~graphrec.recommender.pso_catboost.PSOWCatBoostClassifier`,
  CatBoost with class weights and hyper-parameters searched by particle swarm);
* the ranking (:func:`~graphrec.recommender.ranking.rank_choices`), which blends the
  latency distribution with the head's opinion (weight ``alpha``).

:meth:`Recommender.rank_arrays` is the one scoring path: ``graphrec.recommend`` calls it
for one model, :meth:`Recommender.rank` and :meth:`Recommender.score` call it for a
dataset, and so does the leave-family-out evaluation.

It follows scikit-learn's estimator rules (``__init__`` stores parameters only,
validation happens in :meth:`~Recommender.fit`, ``get_params(deep)`` / ``set_params``),
so :func:`sklearn.base.clone`, ``GridSearchCV`` and ``cross_validate`` work on it with a
:class:`~graphrec.dataset.samples.RecDataset` as ``X``.

Example:
    >>> from graphrec.dataset.samples import RecDataset
    >>> from graphrec.recommender import Recommender
    >>> ds = RecDataset.from_stores(["bench.sqlite"])  # doctest: +SKIP
    >>> rec = Recommender(medn_params={"epochs": 60}).fit(ds)  # doctest: +SKIP
    >>> rec.score(ds)  # minus the mean regret of the recommended choice  # doctest: +SKIP
    >>> rec.save("artefact/")  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from graphrec.recommender._params import EstimatorParams

if TYPE_CHECKING:
    from graphrec.dataset.samples import RecDataset
    from graphrec.recommender.latency_gbdt import PairLatencyRegressor
    from graphrec.recommender.medn import MEDNPrediction, MEDNRegressor
    from graphrec.recommender.pso_catboost import PSOWCatBoostClassifier
    from graphrec.recommender.ranking import RankedChoices

__all__ = ["Recommender", "head_features"]


def head_features(
    graph_features: np.ndarray, embedding: np.ndarray, device_features: np.ndarray
) -> np.ndarray:
    """The head's input: numeric graph features, GNN embedding and device features."""
    return np.hstack(
        [np.atleast_2d(graph_features), np.atleast_2d(embedding), np.atleast_2d(device_features)]
    )


class Recommender(EstimatorParams):
    """Latency models, best-choice head and ranking over one candidate list.

    Args:
        medn_params: Keyword arguments of :class:`~graphrec.recommender.medn.MEDNRegressor`.
        head_params: Keyword arguments of
            :class:`~graphrec.recommender.pso_catboost.PSOWCatBoostClassifier`.
        latency_gbdt_params: Keyword arguments of
            :class:`~graphrec.recommender.latency_gbdt.PairLatencyRegressor`.
        alpha: Weight of the head in the ranking, in ``[0, 1]``, or ``"auto"``: fitted on
            out-of-fold predictions of ``inner_folds`` family-grouped folds (MEDN and the
            head refitted per fold), see :func:`graphrec.recommender.blend.fit_alpha`.
        latency_weight: Weight of MEDN in the log-latency average, in ``[0, 1]`` (1: MEDN
            alone, no pooled regressor is fitted).
        inner_folds: Folds for ``alpha="auto"``.
        seed: Seed of every random choice.

    Attributes:
        candidates_: Candidate ids, in column order.
        medn_: The fitted MEDN network.
        head_: The fitted best-choice head.
        latency_gbdt_: The fitted pooled regressor (``None`` when ``latency_weight`` is 1).
        alpha_: The blend weight used by the ranking.
        draw_scale_: Factor on the relative latency error the ranking draws from, fitted
            so that the expected loss of the recommended choice matches the regret realised
            on held-out families (:func:`graphrec.recommender.ranking.fit_draw_scale`).
        info_: Training summary and the statistics behind :meth:`distance_warnings`.
    """

    def __init__(
        self,
        medn_params: Mapping[str, Any] | None = None,
        head_params: Mapping[str, Any] | None = None,
        latency_gbdt_params: Mapping[str, Any] | None = None,
        alpha: float | str = 0.5,
        latency_weight: float = 0.5,
        inner_folds: int = 3,
        seed: int = 0,
    ) -> None:
        self.medn_params = medn_params
        self.head_params = head_params
        self.latency_gbdt_params = latency_gbdt_params
        self.alpha = alpha
        self.latency_weight = latency_weight
        self.inner_folds = inner_folds
        self.seed = seed

    # ------------------------------------------------------------------ fit
    def _validate(self) -> None:
        a = self.alpha
        if not (a == "auto" or (isinstance(a, (int, float)) and 0.0 <= float(a) <= 1.0)):
            raise ValueError(f"alpha must be 'auto' or a number in [0, 1], got {a!r}")
        w = self.latency_weight
        if not isinstance(w, (int, float)) or not 0.0 <= float(w) <= 1.0:
            raise ValueError(f"latency_weight must be a number in [0, 1], got {w!r}")
        if not isinstance(self.inner_folds, int) or self.inner_folds < 0:
            raise ValueError(
                f"inner_folds must be a non-negative integer, got {self.inner_folds!r}"
            )
        for name in ("medn_params", "head_params", "latency_gbdt_params"):
            v = getattr(self, name)
            if v is not None and not isinstance(v, Mapping):
                raise ValueError(f"{name} must be a mapping of keyword arguments, got {v!r}")

    def fit(self, dataset: RecDataset, y: object = None) -> Recommender:
        """Fit every part on ``dataset`` (samples where no candidate ran are left out).

        Args:
            dataset: Training samples.
            y: Ignored (the targets are in ``dataset``); scikit-learn passes ``None``.

        Returns:
            ``self``.

        Raises:
            ValueError: Invalid parameters, or fewer than 2 usable samples.
            TypeError: ``dataset`` is not a :class:`~graphrec.dataset.samples.RecDataset`.
        """
        import torch

        from graphrec.dataset.samples import RecDataset, regret_matrix
        from graphrec.recommender.baselines import BestOnAverage
        from graphrec.recommender.latency_gbdt import PairLatencyRegressor
        from graphrec.recommender.medn import MEDNRegressor
        from graphrec.recommender.pso_catboost import PSOWCatBoostClassifier
        from graphrec.recommender.ranking import fit_draw_scale

        self._validate()
        if not isinstance(dataset, RecDataset):
            raise TypeError(
                f"fit needs a graphrec.dataset.samples.RecDataset, got {type(dataset).__name__}"
            )
        torch.set_num_threads(1)
        keep = np.flatnonzero(dataset.best >= 0)
        if len(keep) < 2:
            raise ValueError(f"need at least 2 samples where some candidate ran, got {len(keep)}")
        ds = dataset.subset(keep)
        seed = int(self.seed)
        medn = MEDNRegressor(**{"seed": seed, **dict(self.medn_params or {})}).fit(ds)
        emb = medn.predict(ds).embedding
        X = head_features(ds.graph_features, emb, ds.device_features)
        regret = regret_matrix(ds.log_latency_ms, ds.deployable)
        head = PSOWCatBoostClassifier(**{"seed": seed, **dict(self.head_params or {})}).fit(
            X, regret, groups=ds.families
        )
        self.candidates_ = list(ds.candidates)
        self.medn_, self.head_ = medn, head
        alpha_fit: dict[str, Any]
        if self.alpha == "auto":
            self.alpha_, alpha_fit = self._fit_alpha_oof(ds, regret)
        else:
            self.alpha_, alpha_fit = float(self.alpha), {"method": "given"}
        devices = np.unique(ds.device_features, axis=0)
        info: dict[str, Any] = {
            "n_samples": len(ds),
            "n_models": len(set(ds.model_sha256)),
            "n_devices": len(set(ds.device_ids)),
            "families": sorted(set(ds.families)),
            "alpha_fit": alpha_fit,
            "best_on_average": ds.candidates[BestOnAverage().fit_regret(regret).best_],
            "device_ids": sorted(set(ds.device_ids)),
            "ood": {
                "graph_lo": ds.graph_features.min(axis=0).tolist(),
                "graph_hi": ds.graph_features.max(axis=0).tolist(),
                "devices": devices.tolist(),
                "device_std": (ds.device_features.std(axis=0) + 1.0).tolist(),
                "device_threshold": 0.5,
            },
        }
        self.latency_gbdt_: PairLatencyRegressor | None = None
        self.draw_scale_ = 1.0
        if float(self.latency_weight) < 1.0:
            gbdt = PairLatencyRegressor(
                **{"seed": seed, **dict(self.latency_gbdt_params or {})}
            ).fit(ds)
            self.latency_gbdt_ = gbdt
            held = getattr(gbdt, "holdout_latency_", None)
            info["draw_scale_fit"] = {"method": "none: too few families to hold some out"}
            if held is not None:
                # Fitted on the pooled regressor's held-out families: the blend's error is
                # smaller, so this errs on the side of a wider (more cautious) draw.
                self.draw_scale_, fit = fit_draw_scale(held[0], held[1], gbdt.log_latency_rel_sigma)
                info["draw_scale_fit"] = {
                    "method": "pooled regressor's held-out families",
                    **{k: round(v, 4) for k, v in fit.items()},
                }
        self.info_ = info
        return self

    def _fit_alpha_oof(self, ds: RecDataset, regret: np.ndarray) -> tuple[float, dict[str, Any]]:
        """The blend weight fitted on out-of-fold predictions of family-grouped folds."""
        from graphrec.dataset.folds import family_folds
        from graphrec.recommender.blend import fit_alpha
        from graphrec.recommender.medn import MEDNRegressor

        k, seed = int(self.inner_folds), int(self.seed)
        n_fam = len(set(ds.families))
        if k < 2 or n_fam < 2:
            return 0.5, {"method": "default", "reason": f"{n_fam} families, {k} folds"}
        n, c = regret.shape
        lat, sig, ph, pd = (np.full((n, c), np.nan) for _ in range(4))
        folds = family_folds(ds.families, k, seed)
        for va in folds:
            tr = np.setdiff1d(np.arange(n), va)
            if len(tr) < 2 or len(va) == 0:
                continue
            dtr, dva = ds.subset(tr), ds.subset(va)
            m = MEDNRegressor(**{"seed": seed, **dict(self.medn_params or {})}).fit(dtr)
            p_tr, p_va = m.predict(dtr), m.predict(dva)
            h = self.head_.clone_fixed().fit(
                head_features(dtr.graph_features, p_tr.embedding, dtr.device_features),
                regret[tr],
                groups=dtr.families,
            )
            lat[va], pd[va] = p_va.log_latency_ms, p_va.p_deployable
            sig[va] = np.broadcast_to(p_va.log_latency_sigma, (len(va), c))
            ph[va] = h.predict_proba(
                head_features(dva.graph_features, p_va.embedding, dva.device_features)
            )
        done = ~np.isnan(lat).any(axis=1)
        if not done.any():
            return 0.5, {"method": "default", "reason": "no out-of-fold predictions"}
        loss = str(getattr(self.head_, "selection_loss", "log"))
        alpha, scores = fit_alpha(lat[done], sig[done], ph[done], pd[done], regret[done], loss=loss)
        return alpha, {
            "method": "oof",
            "loss": loss,
            "folds": len(folds),
            "samples": int(done.sum()),
            "mean_loss_by_alpha": scores,
        }

    def _check_fitted(self) -> None:
        if not hasattr(self, "medn_"):
            raise ValueError(
                "this Recommender is not fitted yet: call fit(dataset) or Recommender.load(dir)"
            )

    @property
    def candidates(self) -> list[str]:
        """Candidate ids, in the models' column order."""
        self._check_fitted()
        return list(self.candidates_)

    # ------------------------------------------------------------------ predict
    def predict_arrays(
        self, hetero: Sequence[Any], graph_features: np.ndarray, device_features: np.ndarray
    ) -> tuple[MEDNPrediction, np.ndarray]:
        """Latency-model outputs and the head's ``P(fastest)`` ``[N, C]`` for raw inputs.

        The latency is MEDN's, averaged in log space with the pooled regressor's when there
        is one (:meth:`blend_latency`).
        """
        self._check_fitted()
        with _one_torch_thread():
            pred = self.medn_.predict_arrays(hetero, graph_features, device_features)
        proba = self.head_.predict_proba(
            head_features(graph_features, pred.embedding, device_features)
        )
        return self.blend_latency(pred, graph_features, device_features), proba

    def predict(self, dataset: RecDataset) -> tuple[MEDNPrediction, np.ndarray]:
        """:meth:`predict_arrays` for the samples of ``dataset``."""
        return self.predict_arrays(dataset.hetero, dataset.graph_features, dataset.device_features)

    def predict_latency(self, dataset: RecDataset) -> np.ndarray:
        """Predicted median warm latency (ms) of every candidate, ``[N, C]``."""
        pred, _ = self.predict(dataset)
        return np.exp(np.clip(pred.log_latency_ms, -30.0, 30.0))

    def blend_latency(
        self, pred: MEDNPrediction, graph_features: np.ndarray, device_features: np.ndarray
    ) -> MEDNPrediction:
        """MEDN's prediction with latency and cold start averaged (in log space) with the
        pooled regressor's; the latency error becomes ``sqrt(w s_medn^2 + (1-w) s_gbdt^2)``,
        an upper bound of the average's error whatever the two errors' correlation."""
        from graphrec.recommender.medn import MEDNPrediction

        gb = self.latency_gbdt_
        if gb is None or float(self.latency_weight) >= 1.0:
            return self._scaled(pred)
        w = float(self.latency_weight)
        lat_g, cold_g = gb.predict_arrays(graph_features, device_features)
        cold = np.where(
            np.isnan(cold_g), pred.log_cold_start_ms, w * pred.log_cold_start_ms + (1 - w) * cold_g
        )
        s_m = np.asarray(pred.log_latency_sigma, dtype=np.float64)
        s_g = gb.log_latency_sigma
        r_m = (
            np.asarray(pred.log_latency_rel_sigma, dtype=np.float64)
            if pred.log_latency_rel_sigma is not None
            else s_m
        )
        r_g = gb.log_latency_rel_sigma
        return self._scaled(
            MEDNPrediction(
                log_latency_ms=w * pred.log_latency_ms + (1 - w) * lat_g,
                log_latency_sigma=np.sqrt(w * s_m**2 + (1 - w) * s_g**2),
                log_cold_start_ms=cold,
                p_deployable=pred.p_deployable,
                embedding=pred.embedding,
                log_latency_rel_sigma=np.sqrt(w * r_m**2 + (1 - w) * r_g**2),
            )
        )

    def _scaled(self, pred: MEDNPrediction) -> MEDNPrediction:
        """``pred`` with the relative error scaled by :attr:`draw_scale_`."""
        from graphrec.recommender.medn import MEDNPrediction

        if self.draw_scale_ == 1.0:
            return pred
        rel = (
            pred.log_latency_rel_sigma
            if pred.log_latency_rel_sigma is not None
            else pred.log_latency_sigma
        )
        return MEDNPrediction(
            log_latency_ms=pred.log_latency_ms,
            log_latency_sigma=pred.log_latency_sigma,
            log_cold_start_ms=pred.log_cold_start_ms,
            p_deployable=pred.p_deployable,
            embedding=pred.embedding,
            log_latency_rel_sigma=self.draw_scale_ * np.asarray(rel, dtype=np.float64),
        )

    # ------------------------------------------------------------------ rank
    def rank_predictions(
        self,
        pred: MEDNPrediction,
        proba: np.ndarray,
        *,
        keep: Sequence[int] | np.ndarray | None = None,
        blocked: Sequence[bool] | np.ndarray | None = None,
        deployable_scale: Sequence[float] | np.ndarray | None = None,
        alpha: float | None = None,
        risk_aware: bool = True,
        n_samples: int = 2000,
    ) -> list[RankedChoices]:
        """Rank every sample of a prediction (see :meth:`rank_arrays`)."""
        from graphrec.recommender.ranking import rank_choices

        c = pred.log_latency_ms.shape[1]
        cols = np.arange(c) if keep is None else np.asarray(keep, dtype=np.int64)
        a = self.alpha_ if alpha is None else float(alpha)
        rel = None if pred.log_latency_rel_sigma is None else pred.log_latency_rel_sigma[cols]
        out = []
        for i in range(len(pred.log_latency_ms)):
            p_dep = pred.p_deployable[i, cols].copy()
            if deployable_scale is not None:
                p_dep = p_dep * np.clip(np.asarray(deployable_scale, dtype=np.float64), 0, 1)
            if blocked is not None:
                p_dep[np.asarray(blocked, dtype=bool)] = 0.0
            out.append(
                rank_choices(
                    pred.log_latency_ms[i, cols],
                    pred.log_latency_sigma[cols],
                    proba[i, cols],
                    p_dep,
                    alpha=a,
                    risk_aware=risk_aware,
                    n_samples=n_samples,
                    log_relative_sigma=rel,
                )
            )
        return out

    def rank_arrays(
        self,
        hetero: Sequence[Any],
        graph_features: np.ndarray,
        device_features: np.ndarray,
        **kwargs: Any,
    ) -> tuple[list[RankedChoices], MEDNPrediction]:
        """Ranked choices of each sample given as raw inputs, and the prediction behind them.

        Args:
            hetero: Heterogeneous graph per sample.
            graph_features: ``[N, F]``.
            device_features: ``[N, D]``.
            **kwargs: ``keep`` (candidate indices to rank; the choices' indices refer to
                this list), ``blocked`` (per kept candidate: cannot run whatever the
                prediction, so it takes no part in the draws), ``deployable_scale`` (per
                kept candidate: a factor on its probability to run correctly, e.g. the
                chance a lossy choice stays within the user's tolerance), ``alpha`` (override the
                fitted blend weight), ``risk_aware``, ``n_samples``
                (:func:`~graphrec.recommender.ranking.rank_choices`).
        """
        pred, proba = self.predict_arrays(hetero, graph_features, device_features)
        return self.rank_predictions(pred, proba, **kwargs), pred

    def rank(self, dataset: RecDataset, **kwargs: Any) -> list[RankedChoices]:
        """Ranked choices of every sample of ``dataset`` (keywords: :meth:`rank_arrays`)."""
        ranked, _ = self.rank_arrays(
            dataset.hetero, dataset.graph_features, dataset.device_features, **kwargs
        )
        return ranked

    def picks(self, dataset: RecDataset, **kwargs: Any) -> np.ndarray:
        """The recommended candidate of each sample among those measured in it, ``[N]``.

        A choice can only be scored where it was measured, so the pick is the first
        candidate of the ranking whose regret is known
        (:func:`graphrec.dataset.samples.first_measured`).
        """
        from graphrec.dataset.samples import regret_matrix

        regret = regret_matrix(dataset.log_latency_ms, dataset.deployable)
        return self._picks(dataset, regret, **kwargs)

    def _picks(self, dataset: RecDataset, regret: np.ndarray, **kwargs: Any) -> np.ndarray:
        from graphrec.dataset.samples import first_measured

        ranked = self.rank(dataset, **kwargs)
        return np.asarray(
            [first_measured(r.order, regret[i]) for i, r in enumerate(ranked)], dtype=np.int64
        )

    def score(self, dataset: RecDataset, y: object = None) -> float:
        """Minus the mean latency regret of the recommended choices (higher is better).

        Regret is ``latency(choice) / latency(fastest) - 1``; a choice that fails costs the
        slowest running choice's regret, at least 100 %
        (:func:`graphrec.dataset.samples.regret_matrix`).
        """
        from graphrec.dataset.samples import regret_matrix

        ds = dataset.subset(np.flatnonzero(dataset.best >= 0))
        if len(ds) == 0:
            raise ValueError("no sample of the dataset has a candidate that ran")
        regret = regret_matrix(ds.log_latency_ms, ds.deployable)
        pick = self._picks(ds, regret)
        return -float(np.mean(regret[np.arange(len(ds)), pick]))

    # ------------------------------------------------------------------ ood
    def distance_warnings(
        self, graph_features: np.ndarray, device_features: np.ndarray
    ) -> list[str]:
        """Reasons the input is far from the training data (empty when it is not)."""
        out: list[str] = []
        ood = getattr(self, "info_", {}).get("ood")
        if not ood:
            return out
        from graphrec.recommender.features import model_feature_names

        lo = np.asarray(ood["graph_lo"])
        hi = np.asarray(ood["graph_hi"])
        span = np.maximum(hi - lo, 1e-6)
        gf = np.asarray(graph_features, dtype=np.float64).ravel()
        far = np.flatnonzero((gf < lo - 0.5 * span) | (gf > hi + 0.5 * span))
        names = list(model_feature_names())
        if len(far):
            out.append(
                "the model is outside the training data on "
                + ", ".join(names[i] if i < len(names) else str(i) for i in far[:5])
            )
        dev = np.asarray(ood["devices"], dtype=np.float64)
        std = np.asarray(ood["device_std"], dtype=np.float64)
        if len(dev):
            d = np.asarray(device_features, dtype=np.float64).ravel()
            dist = np.sqrt((((dev - d) / std) ** 2).mean(axis=1)).min()
            if dist > float(ood.get("device_threshold", 0.5)):
                out.append(
                    f"the device differs from every training device (distance {dist:.2f}); "
                    "predictions extrapolate"
                )
        return out

    # ------------------------------------------------------------------ persistence
    def save(self, folder: str | os.PathLike[str]) -> Path:
        """Write the artefact folder (:mod:`graphrec.recommender.artefact`); returns it."""
        from graphrec.recommender.artefact import save_artefact

        self._check_fitted()
        return save_artefact(self, folder)

    @classmethod
    def load(cls, folder: str | os.PathLike[str]) -> Recommender:
        """Read an artefact folder written by :meth:`save`.

        Raises:
            ArtefactError: Missing files, bad JSON, another format version, or a checksum
                mismatch.
        """
        from graphrec.recommender.artefact import load_artefact

        return load_artefact(folder)

    @classmethod
    def from_parts(
        cls,
        *,
        medn: MEDNRegressor,
        head: PSOWCatBoostClassifier,
        alpha: float,
        info: dict[str, Any],
        latency_gbdt: PairLatencyRegressor | None = None,
        latency_weight: float = 0.5,
        draw_scale: float = 1.0,
        params: Mapping[str, Any] | None = None,
    ) -> Recommender:
        """A fitted recommender from already fitted parts (used when loading an artefact)."""
        rec = cls(**dict(params or {}))
        rec.latency_weight = float(latency_weight)
        rec.candidates_ = list(medn.candidates_)
        rec.medn_, rec.head_, rec.latency_gbdt_ = medn, head, latency_gbdt
        rec.alpha_, rec.draw_scale_, rec.info_ = float(alpha), float(draw_scale), info
        return rec


@contextlib.contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Run the latency model's forward pass on one torch thread, then restore the count.

    Its graphs are small: a second intra-op thread gains nothing, and where the other
    core is busy each parallel operation waits for it (measured on a 2-vCPU VM with a
    measurement campaign on the other core: warm ``recommend`` took about 970 ms with two
    threads, about 40 ms with one). Training runs on one thread too.
    """
    import torch

    n = torch.get_num_threads()
    if n <= 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)
