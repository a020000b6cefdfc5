"""Train the recommender from results stores: ``graphrec train --data bench.sqlite --out art/``.

Steps: read the stores into a :class:`~graphrec.models.dataset.RecDataset`, fit
:class:`~graphrec.models.medn.MEDNRegressor`, compute the regret of every choice and fit
:class:`~graphrec.models.pso_catboost.PSOWCatBoostClassifier` on numeric graph
features + MEDN's graph embedding + device features, and save both as an artefact
(:class:`~graphrec.models.artefact.Recommender`).

Example:
    >>> from graphrec.train import train
    >>> rec = train(["bench.sqlite"], out="artefact/")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from graphrec.models.dataset import RecDataset, regret_matrix

__all__ = ["fit_recommender", "train"]


def fit_recommender(
    dataset: RecDataset,
    *,
    medn_params: Mapping[str, Any] | None = None,
    head_params: Mapping[str, Any] | None = None,
    alpha: float = 0.5,
    seed: int = 0,
) -> Any:
    """Fit MEDN and the head on ``dataset`` and return a :class:`Recommender`."""
    import torch

    from graphrec.models.artefact import Recommender, head_features
    from graphrec.models.medn import MEDNRegressor
    from graphrec.models.pso_catboost import PSOWCatBoostClassifier

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
    devices = np.unique(ds.device_features, axis=0)
    info = {
        "n_samples": len(ds),
        "n_models": len(set(ds.model_sha256)),
        "n_devices": len(set(ds.device_ids)),
        "families": sorted(set(ds.families)),
        "device_ids": sorted(set(ds.device_ids)),
        "ood": {
            "graph_lo": ds.graph_features.min(axis=0).tolist(),
            "graph_hi": ds.graph_features.max(axis=0).tolist(),
            "devices": devices.tolist(),
            "device_std": (ds.device_features.std(axis=0) + 1.0).tolist(),
            "device_threshold": 0.5,
        },
    }
    return Recommender(medn=medn, head=head, alpha=alpha, info=info)


def train(
    stores: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str] | None = None,
    *,
    candidates: Sequence[str] | None = None,
    medn_params: Mapping[str, Any] | None = None,
    head_params: Mapping[str, Any] | None = None,
    alpha: float = 0.5,
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
        alpha: Weight of the head in the ranking.
        seed: Seed of every random choice.
        model_root: Folder to look up model files whose stored path moved.

    Returns:
        The fitted :class:`~graphrec.models.artefact.Recommender`.

    Raises:
        BenchStoreError: A store is unreadable or holds no usable rows.
    """
    ds = RecDataset.from_stores(stores, candidates=candidates, model_root=model_root)
    rec = fit_recommender(
        ds, medn_params=medn_params, head_params=head_params, alpha=alpha, seed=seed
    )
    rec.info["stores"] = [str(Path(s)) for s in stores]
    if out is not None:
        rec.save(out)
    return rec
