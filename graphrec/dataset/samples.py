"""Training data for the recommender, built from a ``graphrec bench`` results store.

One sample per (model, device) pair that has at least one result. For every deployment
candidate (the store's ``candidate_id`` strings, in sorted order) a sample carries:

* ``log_latency_ms``: ``log`` of the median over rounds of the warm p50 latency (ms),
  NaN where there is no ``ok`` measurement;
* ``log_cold_start_ms``: ``log`` of the median cold-start time, NaN where unknown;
* ``deployable``: 1 when the candidate ran the model with correct outputs, 0 when it
  failed (any status other than ``ok`` and ``unavailable``), NaN when unmeasured;
* ``best``: index of the fastest deployable candidate (-1 when none ran).

Example:
    >>> from graphrec.dataset.samples import RecDataset
    >>> ds = RecDataset.from_stores(["bench.sqlite"])  # doctest: +SKIP
    >>> ds.log_latency_ms.shape  # doctest: +SKIP
    (120, 6)
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import warnings
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from graphrec.dataset.folds import family_of
from graphrec.errors import BenchStoreError, GraphRecError

if TYPE_CHECKING:
    from torch_geometric.data import HeteroData

__all__ = ["RecDataset", "family_of", "regret_matrix"]

#: Statuses that say nothing about whether the candidate works (runtime not installed;
#: outputs not checked because the reference failed). ``implausible`` is not among them:
#: the candidate reported a run that cannot have done the model's work, which is a
#: failure of that candidate (like ``wrong_output``), so it counts as not deployable.
_UNMEASURED = {"unavailable", "unverified"}


@dataclass
class RecDataset:
    """Samples (model × device) with per-candidate targets; see the module docstring.

    Attributes:
        candidates: Candidate ids, one column each.
        model_sha256: Per sample.
        model_names: Per sample.
        families: Architecture family per sample (grouping for cross-validation).
        device_ids: Per sample.
        graph_features: float64 ``[N, F]`` (``log1p`` model features).
        device_features: float64 ``[N, D]``.
        hetero: Heterogeneous graph per sample.
        flops: Raw FLOPs per sample.
        log_latency_ms: ``[N, C]``, NaN where missing.
        log_cold_start_ms: ``[N, C]``, NaN where missing.
        deployable: ``[N, C]`` of 1/0/NaN.
        measure_wall_s: Total harness wall time per sample (the exhaustive benchmark cost).
    """

    candidates: list[str]
    model_sha256: list[str]
    model_names: list[str]
    families: list[str]
    device_ids: list[str]
    graph_features: np.ndarray
    device_features: np.ndarray
    hetero: list[HeteroData]
    flops: np.ndarray
    log_latency_ms: np.ndarray
    log_cold_start_ms: np.ndarray
    deployable: np.ndarray
    measure_wall_s: np.ndarray
    device_profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    model_paths: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.model_sha256)

    @property
    def shape(self) -> tuple[int]:
        """``(number of samples,)``: lets scikit-learn's splitters index the dataset."""
        return (len(self),)

    def __getitem__(self, key: Any) -> RecDataset:
        """The samples at an index array, a boolean mask or a slice (:meth:`subset`).

        scikit-learn indexes ``X`` as ``X[idx]`` or ``X[idx, ...]``, so a dataset can be
        passed to ``cross_validate`` / ``GridSearchCV`` with a group splitter.
        """
        if isinstance(key, tuple):
            rest = [k for k in key[1:] if k is not Ellipsis]
            if len(key) < 1 or rest:
                raise IndexError("a RecDataset is indexed along its samples only")
            key = key[0]
        if isinstance(key, slice):
            return self.subset(np.arange(len(self))[key])
        idx = np.asarray(key)
        if idx.dtype == bool:
            if idx.shape != (len(self),):
                raise IndexError(f"boolean mask of length {len(idx)} for {len(self)} samples")
            idx = np.flatnonzero(idx)
        if idx.ndim == 0:
            idx = idx[None]
        return self.subset(idx.astype(np.int64))

    @property
    def best(self) -> np.ndarray:
        """Index of the fastest deployable candidate per sample (-1 when none ran)."""
        lat = np.where(self.deployable == 1, self.log_latency_ms, np.nan)
        lat = np.where(np.isnan(lat), np.inf, lat)
        out = np.argmin(lat, axis=1)
        out[~np.isfinite(lat.min(axis=1))] = -1
        return out

    def subset(self, idx: Sequence[int] | np.ndarray) -> RecDataset:
        """The samples at ``idx`` (same candidates)."""
        ix = np.asarray(idx, dtype=np.int64)
        pick = [int(i) for i in ix]
        return RecDataset(
            candidates=list(self.candidates),
            model_sha256=[self.model_sha256[i] for i in pick],
            model_names=[self.model_names[i] for i in pick],
            families=[self.families[i] for i in pick],
            device_ids=[self.device_ids[i] for i in pick],
            graph_features=self.graph_features[ix],
            device_features=self.device_features[ix],
            hetero=[self.hetero[i] for i in pick],
            flops=self.flops[ix],
            log_latency_ms=self.log_latency_ms[ix],
            log_cold_start_ms=self.log_cold_start_ms[ix],
            deployable=self.deployable[ix],
            measure_wall_s=self.measure_wall_s[ix],
            device_profiles=dict(self.device_profiles),
            model_paths=[self.model_paths[i] for i in pick] if self.model_paths else [],
        )

    @classmethod
    def from_stores(
        cls,
        paths: Sequence[str | os.PathLike[str]],
        *,
        candidates: Sequence[str] | None = None,
        min_candidates: int = 2,
        model_root: str | os.PathLike[str] | None = None,
    ) -> RecDataset:
        """Read one or more results stores (read-only) into a dataset.

        Args:
            paths: SQLite stores written by ``graphrec bench``, or dataset folders
                written by ``graphrec dataset build`` (their models are looked up in
                ``model_root`` as ``<model_id>.onnx``).
            candidates: Keep only these candidate ids (default: every id in the stores).
            min_candidates: Drop samples with fewer measured candidates than this.
            model_root: Where to look for model files whose stored path no longer exists
                (by file name).

        Raises:
            BenchStoreError: A store is missing or unreadable, or has no usable rows.
        """
        from graphrec.recommender.features import device_vector

        # (sha, device) -> cand -> lists
        lat: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        cold: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        ok: dict[tuple[str, str], dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
        wall: dict[tuple[str, str], float] = defaultdict(float)
        models: dict[str, dict[str, Any]] = {}
        devices: dict[str, dict[str, Any]] = {}
        for p in paths:
            rows, m, d = _read_store(Path(p))
            models.update({k: v for k, v in m.items() if k not in models})
            devices.update({k: v for k, v in d.items() if k not in devices})
            for r in rows:
                if r["status"] in _UNMEASURED:
                    continue
                cid = r["candidate_id"]
                if candidates is not None and cid not in candidates:
                    continue
                # One sample per (file, concrete inputs, device): two batch sizes of one
                # file are two samples (rows without an input key: one per file).
                key = (str(r.get("input_key") or r["model_sha256"]), r["device_id"])
                good = r["status"] == "ok"
                ok[key][cid].append(int(good))
                if int(r.get("round") or 0) == 0:  # one exhaustive pass, not the repeats
                    wall[key] += float(r["wall_s"] or 0.0)
                if good and r["p50_ms"] is not None and r["p50_ms"] > 0:
                    lat[key][cid].append(float(r["p50_ms"]))
                if good and r["cold_start_ms"] is not None and r["cold_start_ms"] > 0:
                    cold[key][cid].append(float(r["cold_start_ms"]))
        cands = (
            sorted(candidates)
            if candidates is not None
            else sorted({c for per in ok.values() for c in per})
        )
        if not cands:
            raise BenchStoreError(Path(paths[0]) if paths else Path("."), "no usable result rows")
        col = {c: i for i, c in enumerate(cands)}
        feats_cache: dict[str, Any] = {}
        out: dict[str, list[Any]] = defaultdict(list)
        for key in sorted(ok):
            sha, dev = key
            if len(ok[key]) < min_candidates or sha not in models or dev not in devices:
                continue
            info = models[sha]
            if sha not in feats_cache:
                feats_cache[sha] = _load_model(info, model_root)
            mi = feats_cache[sha]
            if mi is None:
                continue
            y_lat = np.full(len(cands), np.nan)
            y_cold = np.full(len(cands), np.nan)
            y_dep = np.full(len(cands), np.nan)
            for cid, flags in ok[key].items():
                j = col[cid]
                # Majority over rounds; a candidate that ran correctly at least half the time.
                y_dep[j] = float(np.mean(flags) >= 0.5)
                if lat[key][cid] and y_dep[j] == 1:
                    y_lat[j] = math.log(float(np.median(lat[key][cid])))
                elif y_dep[j] == 1:
                    y_dep[j] = np.nan
                if cold[key][cid]:
                    y_cold[j] = math.log(float(np.median(cold[key][cid])))
            sha = str(info.get("sha256") or sha)
            name = str(info.get("name") or sha[:12])
            out["sha"].append(sha)
            out["name"].append(name)
            out["family"].append(family_of(name))
            out["dev"].append(dev)
            out["gf"].append(mi.graph_features)
            out["df"].append(device_vector(devices[dev]))
            out["het"].append(mi.hetero)
            out["flops"].append(mi.flops)
            out["lat"].append(y_lat)
            out["cold"].append(y_cold)
            out["dep"].append(y_dep)
            out["wall"].append(wall[key])
            out["path"].append(str(mi.path))
        if not out["sha"]:
            raise BenchStoreError(
                Path(paths[0]), "no (model, device) pair with enough measured candidates"
            )
        return cls(
            candidates=cands,
            model_sha256=out["sha"],
            model_names=out["name"],
            families=out["family"],
            device_ids=out["dev"],
            graph_features=np.vstack(out["gf"]),
            device_features=np.vstack(out["df"]),
            hetero=out["het"],
            flops=np.asarray(out["flops"], dtype=np.float64),
            log_latency_ms=np.vstack(out["lat"]),
            log_cold_start_ms=np.vstack(out["cold"]),
            deployable=np.vstack(out["dep"]),
            measure_wall_s=np.asarray(out["wall"], dtype=np.float64),
            device_profiles=devices,
            model_paths=out["path"],
        )


def _read_dataset_folder(
    path: Path,
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Rows, models and devices of a dataset folder (``graphrec dataset build``).

    Model paths are ``<model_id>.onnx``: pass the regenerated zoo as ``model_root``.
    """
    from graphrec.dataset.build import load_dataset
    from graphrec.errors import DatasetError

    try:
        meas, models_df, meta = load_dataset(path)
    except DatasetError as exc:
        raise BenchStoreError(path, str(exc)) from None
    if "label" in meas.columns:  # rows superseded by clean rows of a newer protocol
        meas = meas[meas["label"].astype(bool)]
    cols = [
        "model_sha256",
        "candidate_id",
        "device_id",
        "round",
        "status",
        "p50_ms",
        "cold_start_ms",
    ]
    frame = meas[[*cols, "wall_s"]] if "wall_s" in meas.columns else meas[cols].assign(wall_s=0.0)
    frame = frame.astype(object).where(frame.notna(), None)
    rows = frame.to_dict("records")
    models: dict[str, dict[str, Any]] = {}
    for rec in models_df.to_dict("records"):
        inputs = json.loads(rec.get("inputs_json") or "[]")
        models[str(rec["model_sha256"])] = {
            "name": rec.get("model_id"),
            "path": f"{rec.get('model_id')}.onnx",
            "spec": {
                "input_names": [i.get("name") for i in inputs],
                "input_shapes": [i.get("shape") for i in inputs],
            },
        }
    return rows, models, dict(meta.get("devices", {}))


def _read_store(
    path: Path,
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Rows, models and devices of a results store (read-only, schema-checked) or of a
    dataset folder."""
    from graphrec.bench.store import ResultStore

    if path.is_dir() and (path / "measurements.parquet").is_file():
        return _read_dataset_folder(path)
    try:
        with ResultStore(path, readonly=True) as store:
            models = store.models()
            models.update(store.input_specs())  # by input key too, with the inputs' spec
            return list(store.iter_rows()), models, store.devices()
    except (sqlite3.DatabaseError, json.JSONDecodeError) as exc:
        raise BenchStoreError(path, f"not a readable results store ({exc})") from None


def _load_model(info: dict[str, Any], model_root: str | os.PathLike[str] | None) -> Any:
    from graphrec.recommender.features import model_inputs

    p = Path(str(info.get("path") or ""))
    if not p.is_file() and model_root is not None:
        p = Path(model_root) / p.name
    if not p.is_file():
        warnings.warn(f"{p}: model file not found; its rows are skipped", stacklevel=3)
        return None
    spec = info.get("spec") or {}
    shapes = dict(zip(spec.get("input_names", []), spec.get("input_shapes", []), strict=False))
    try:
        return model_inputs(p, input_shapes=shapes or None)
    except GraphRecError as exc:
        warnings.warn(f"{p}: cannot analyse ({exc}); its rows are skipped", stacklevel=3)
        return None


def regret_matrix(
    log_latency_ms: np.ndarray, deployable: np.ndarray, *, unmeasured: str = "nan"
) -> np.ndarray:
    """Latency regret ``lat(c)/lat(best) - 1`` of choosing each candidate, per sample.

    A candidate that failed (or ran without a latency) costs the regret of the slowest
    candidate that ran, or 1.0 when that is smaller; samples where nothing ran get all
    zeros. A candidate that was never measured for a sample (``deployable`` is NaN: the
    campaign did not run it there) is NaN with ``unmeasured="nan"`` (its regret is unknown;
    see :func:`masked_argmax` and :func:`first_measured`), or costs the failure penalty
    with ``unmeasured="penalty"``.
    """
    if unmeasured not in ("nan", "penalty"):
        raise ValueError(f"unmeasured must be 'nan' or 'penalty', got {unmeasured!r}")
    lat = np.where(deployable == 1, log_latency_ms, np.nan)
    best = np.nanmin(np.where(np.isnan(lat), np.inf, lat), axis=1, keepdims=True)
    ratio = np.exp(lat - best) - 1.0
    worst = np.nanmax(np.where(np.isnan(ratio), -np.inf, ratio), axis=1, keepdims=True)
    penalty = np.maximum(worst, 1.0)
    out = np.where(np.isnan(ratio), penalty, ratio)
    out[~np.isfinite(best[:, 0])] = 0.0
    if unmeasured == "nan":
        out[np.isnan(deployable)] = np.nan
    return out


def masked_argmax(scores: np.ndarray, regret: np.ndarray) -> np.ndarray:
    """Per row, the highest-scoring candidate among those with a known regret, ``[N]``.

    Scoring a choice needs its measurement, so an evaluation picks among the measured
    candidates of each sample (rows with nothing measured pick the plain argmax).
    """
    s = np.where(np.isnan(regret), -np.inf, np.asarray(scores, dtype=np.float64))
    pick = np.argmax(s, axis=1)
    none = np.isnan(regret).all(axis=1)
    if none.any():
        pick[none] = np.argmax(np.asarray(scores)[none], axis=1)
    return np.asarray(pick, dtype=np.int64)


def first_measured(order: Sequence[int] | np.ndarray, regret_row: np.ndarray) -> int:
    """The first candidate of a ranking ``order`` whose regret is known (else the first)."""
    for c in order:
        if not np.isnan(regret_row[int(c)]):
            return int(c)
    return int(order[0])
