"""Train the recommender from results stores: ``graphrec train --data bench.sqlite --out art/``.

Reads the stores into a :class:`~graphrec.dataset.samples.RecDataset`, fits a
:class:`~graphrec.recommender.estimator.Recommender` on it and saves the artefact.

Example:
    >>> from graphrec.recommender.train import train
    >>> rec = train(["bench.sqlite"], out="artefact/")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["error_model", "train"]


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
            out-of-fold regret (see :class:`~graphrec.recommender.estimator.Recommender`).
        seed: Seed of every random choice.
        model_root: Folder to look up model files whose stored path moved.

    Returns:
        The fitted :class:`~graphrec.recommender.estimator.Recommender`.

    Raises:
        BenchStoreError: A store is unreadable or holds no usable rows.
    """
    from graphrec.dataset.samples import RecDataset
    from graphrec.recommender.estimator import Recommender

    ds = RecDataset.from_stores(stores, candidates=candidates, model_root=model_root)
    rec = Recommender(medn_params=medn_params, head_params=head_params, alpha=alpha, seed=seed)
    rec.fit(ds)
    rec.info_["stores"] = [str(Path(s)) for s in stores]
    rec.info_["versions"] = _versions()
    if out is not None:
        rec.save(out)
        error_model(stores, candidates=candidates).save(out)
    return rec


def error_model(
    stores: Sequence[str | os.PathLike[str]], *, candidates: Sequence[str] | None = None
) -> Any:
    """The output-error distribution per candidate kind of the stores' rows
    (:mod:`graphrec.recommender.precision`), saved beside the artefact as
    ``precision.json``."""
    from graphrec.dataset.samples import _read_store
    from graphrec.recommender.precision import fit_error_model

    rows: list[dict[str, Any]] = []
    for s in stores:
        p = Path(s)
        if p.is_dir() and (p / "measurements.parquet").is_file():
            import pandas as pd

            cols = ["candidate_id", "status", "rel_l2_err", "model_sha256"]
            got = pd.read_parquet(p / "measurements.parquet", columns=cols).to_dict("records")
        else:
            got, _, _ = _read_store(p)
        rows.extend(r for r in got if candidates is None or r.get("candidate_id") in candidates)
    names = ", ".join(Path(s).name for s in stores)
    # Random-weight zoo models err 10-100x less than trained ones: where enough rows of
    # real models (graphrec/data/real) measured a kind, their errors alone stand for it.
    real = _real_shas()
    model = fit_error_model(rows, source=f"measured output errors of the training rows ({names})")
    real_rows = [r for r in rows if r.get("model_sha256") in real]
    if real_rows:
        on_real = fit_error_model(real_rows)
        used = []
        for kind, errs in on_real.log10_errors.items():
            if len(errs) >= 20:
                model.log10_errors[kind] = errs
                used.append(kind)
        if used:
            model.source += (
                f"; real trained models only for {len(used)} kinds with >= 20 real runs: "
                + ", ".join(sorted(used))
            )
    return model


def _real_shas() -> set[str]:
    import json

    p = Path(__file__).resolve().parent.parent / "data" / "real" / "manifest.json"
    try:
        return {str(m["sha256"]) for m in json.loads(p.read_text())["models"]}
    except (OSError, ValueError, KeyError, TypeError):
        return set()
