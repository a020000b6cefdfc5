"""Train the recommender from results stores: ``graphrec train --data bench.sqlite --out art/``.

Steps: read the stores into a :class:`~graphrec.dataset.samples.RecDataset`, fit
:class:`~graphrec.recommender.medn.MEDNRegressor`, compute the regret of every choice and fit
:class:`~graphrec.recommender.pso_catboost.PSOWCatBoostClassifier` on numeric graph
features + MEDN's graph embedding + device features, and save both as an artefact
(:class:`~graphrec.recommender.artefact.Recommender`).

Example:
    >>> from graphrec.recommender.train import train
    >>> rec = train(["bench.sqlite"], out="artefact/")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from graphrec.dataset.samples import RecDataset, regret_matrix

__all__ = ["fit_recommender", "train"]


def fit_recommender(
    dataset: RecDataset,
    *,
    medn_params: Mapping[str, Any] | None = None,
    head_params: Mapping[str, Any] | None = None,
    alpha: float | str = 0.5,
    inner_folds: int = 3,
    seed: int = 0,
    latency_gbdt_params: Mapping[str, Any] | None = None,
    latency_weight: float = 0.5,
) -> Any:
    """Fit MEDN, the pooled latency regressor and the head on ``dataset`` and return a
    :class:`Recommender`.

    Args:
        dataset: Training samples.
        medn_params: Keyword arguments of :class:`MEDNRegressor`.
        head_params: Keyword arguments of :class:`PSOWCatBoostClassifier`.
        alpha: Blend weight of the head in the ranking, or ``"auto"``: fitted on
            out-of-fold predictions of ``inner_folds`` family-grouped folds (MEDN and the
            head, with the head's searched weights, refitted per fold), see
            :func:`graphrec.recommender.blend.fit_alpha`. Recorded in ``info["alpha_fit"]``.
        inner_folds: Folds for ``alpha="auto"``.
        seed: Seed of every random choice.
        latency_gbdt_params: Keyword arguments of
            :class:`~graphrec.recommender.latency_gbdt.PairLatencyRegressor`.
        latency_weight: Weight of MEDN in the latency average (1: MEDN alone, no pooled
            regressor is fitted).
    """
    import torch

    from graphrec.recommender.artefact import Recommender, head_features
    from graphrec.recommender.latency_gbdt import PairLatencyRegressor
    from graphrec.recommender.medn import MEDNRegressor
    from graphrec.recommender.pso_catboost import PSOWCatBoostClassifier
    from graphrec.recommender.ranking import fit_draw_scale

    if not 0.0 <= latency_weight <= 1.0:
        raise ValueError(f"latency_weight must be in [0, 1], got {latency_weight!r}")
    torch.set_num_threads(1)
    keep = np.flatnonzero(dataset.best >= 0)
    if len(keep) < 2:
        raise ValueError(f"need at least 2 samples where some candidate ran, got {len(keep)}")
    ds = dataset.subset(keep)
    medn = MEDNRegressor(**{"seed": seed, **dict(medn_params or {})}).fit(ds)
    emb = medn.predict(ds).embedding
    X = head_features(ds.graph_features, emb, ds.device_features)
    regret = regret_matrix(ds.log_latency_ms, ds.deployable)
    head = PSOWCatBoostClassifier(**{"seed": seed, **dict(head_params or {})}).fit(
        X, regret, groups=ds.families
    )
    alpha_fit: dict[str, Any]
    if alpha == "auto":
        a, alpha_fit = _fit_alpha_oof(ds, regret, medn_params, head, inner_folds, seed)
    elif isinstance(alpha, (int, float)) and 0.0 <= float(alpha) <= 1.0:
        a, alpha_fit = float(alpha), {"method": "given"}
    else:
        raise ValueError(f"alpha must be 'auto' or a number in [0, 1], got {alpha!r}")
    devices = np.unique(ds.device_features, axis=0)
    info = {
        "n_samples": len(ds),
        "n_models": len(set(ds.model_sha256)),
        "n_devices": len(set(ds.device_ids)),
        "families": sorted(set(ds.families)),
        "alpha_fit": alpha_fit,
        "best_on_average": ds.candidates[int(np.nanargmin(np.nanmean(regret, axis=0)))],
        "device_ids": sorted(set(ds.device_ids)),
        "ood": {
            "graph_lo": ds.graph_features.min(axis=0).tolist(),
            "graph_hi": ds.graph_features.max(axis=0).tolist(),
            "devices": devices.tolist(),
            "device_std": (ds.device_features.std(axis=0) + 1.0).tolist(),
            "device_threshold": 0.5,
        },
    }
    gbdt = None
    draw_scale = 1.0
    if latency_weight < 1.0:
        gbdt = PairLatencyRegressor(**{"seed": seed, **dict(latency_gbdt_params or {})}).fit(ds)
        held = getattr(gbdt, "holdout_latency_", None)
        info["draw_scale_fit"] = {"method": "none: too few families to hold some out"}
        if held is not None:
            # Fitted on the pooled regressor's held-out families: the blend's error is
            # smaller, so this errs on the side of a wider (more cautious) draw.
            draw_scale, fit = fit_draw_scale(held[0], held[1], gbdt.log_latency_rel_sigma)
            info["draw_scale_fit"] = {
                "method": "pooled regressor's held-out families",
                **{k: round(v, 4) for k, v in fit.items()},
            }
    return Recommender(
        medn=medn,
        head=head,
        alpha=a,
        info=info,
        latency_gbdt=gbdt,
        latency_weight=latency_weight,
        draw_scale=draw_scale,
    )


def _fit_alpha_oof(
    ds: RecDataset,
    regret: np.ndarray,
    medn_params: Mapping[str, Any] | None,
    head: Any,
    k: int,
    seed: int,
) -> tuple[float, dict[str, Any]]:
    """Fit the blend weight on out-of-fold predictions of family-grouped inner folds."""
    from graphrec.recommender.artefact import head_features
    from graphrec.recommender.blend import fit_alpha
    from graphrec.recommender.medn import MEDNRegressor

    names = sorted(set(ds.families))
    if k < 2 or len(names) < 2:
        return 0.5, {"method": "default", "reason": f"{len(names)} families, {k} folds"}
    rng = np.random.default_rng(seed)
    rng.shuffle(names)
    fold_of = {f: i % k for i, f in enumerate(names)}
    fold = np.array([fold_of[f] for f in ds.families])
    n, c = regret.shape
    lat, sig, ph, pd = (np.full((n, c), np.nan) for _ in range(4))
    for i in range(min(k, len(names))):
        va, tr = np.flatnonzero(fold == i), np.flatnonzero(fold != i)
        if len(tr) < 2 or len(va) == 0:
            continue
        dtr, dva = ds.subset(tr), ds.subset(va)
        m = MEDNRegressor(**{"seed": seed, **dict(medn_params or {})}).fit(dtr)
        p_tr, p_va = m.predict(dtr), m.predict(dva)
        h = head.clone_fixed().fit(
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
    loss = str(getattr(head, "selection_loss", "log"))
    alpha, scores = fit_alpha(lat[done], sig[done], ph[done], pd[done], regret[done], loss=loss)
    return alpha, {
        "method": "oof",
        "loss": loss,
        "folds": int(min(k, len(names))),
        "samples": int(done.sum()),
        "mean_loss_by_alpha": scores,
    }


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("graphrec", "torch", "torch-geometric", "catboost", "pyswarms", "numpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return out


def train(
    stores: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str] | None = None,
    *,
    candidates: Sequence[str] | None = None,
    medn_params: Mapping[str, Any] | None = None,
    head_params: Mapping[str, Any] | None = None,
    alpha: float | str = 0.5,
    seed: int = 0,
    model_root: str | os.PathLike[str] | None = None,
) -> Any:
    """Read results stores, fit the recommender and (when ``out`` is given) save it.

    Args:
        stores: SQLite results stores written by ``graphrec bench``.
        out: Artefact folder to write.
        candidates: Restrict to these candidate ids.
        medn_params: Keyword arguments of :class:`MEDNRegressor`.
        head_params: Keyword arguments of :class:`PSOWCatBoostClassifier`.
        alpha: Weight of the head in the ranking, or ``"auto"`` to fit it on
            out-of-fold regret (see :func:`fit_recommender`).
        seed: Seed of every random choice.
        model_root: Folder to look up model files whose stored path moved.

    Returns:
        The fitted :class:`~graphrec.recommender.artefact.Recommender`.

    Raises:
        BenchStoreError: A store is unreadable or holds no usable rows.
    """
    ds = RecDataset.from_stores(stores, candidates=candidates, model_root=model_root)
    rec = fit_recommender(
        ds, medn_params=medn_params, head_params=head_params, alpha=alpha, seed=seed
    )
    rec.info["stores"] = [str(Path(s)) for s in stores]
    rec.info["versions"] = _versions()
    if out is not None:
        rec.save(out)
    return rec
