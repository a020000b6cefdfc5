"""Build the shipped dataset from harness stores and zoo manifests.

The dataset is three files in one folder:

``measurements.parquet``
    One row per stored harness result (every round, every protocol), the columns of
    :data:`MEASUREMENT_COLUMNS`, joined to the model's zoo identity (``model_id``,
    ``family``, ``variant``) so each row can be traced to a model that
    ``graphrec zoo`` regenerates bit-identically from its seed. The boolean ``label``
    column says which rows make a pair's training label: where a (model and inputs,
    candidate, device) pair has clean rows of harness 2.0 (``ok``, not ``busy``), only
    those; elsewhere every row (the older protocol's, and busy ones).
``models.parquet``
    One row per model: sha256, zoo id, family, variant, seed, sampled parameters (JSON),
    parameter count, graph hash, input shapes, file size, export versions.
``meta.json``
    Device profiles, runtime versions seen, harness version, counts, build time, sources.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from graphrec.errors import DatasetError

__all__ = ["MEASUREMENT_COLUMNS", "build_dataset", "label_rows", "load_dataset"]

#: Result columns kept in ``measurements.parquet`` (store columns not listed are dropped).
MEASUREMENT_COLUMNS: tuple[str, ...] = (
    "measurement_key",
    "input_key",
    "model_sha256",
    "candidate_id",
    "device_id",
    "round",
    "runtime",
    "runtime_version",
    "backend",
    "precision",
    "threads",
    "options",
    "status",
    "error",
    "convert_s",
    "load_ms",
    "first_run_ms",
    "cold_start_ms",
    "n_runs",
    "p10_ms",
    "p50_ms",
    "p90_ms",
    "std_ms",
    "peak_rss_mb",
    "max_abs_err",
    "max_rel_err",
    "rel_l2_err",
    "wall_s",
    "harness_version",
    "created_at",
    "ci_rel",
    "busy",
    "foreign_cpu",
    "steal",
    "cores",
)

MODEL_COLUMNS: tuple[str, ...] = (
    "model_sha256",
    "model_id",
    "family",
    "variant",
    "seed",
    "params_json",
    "num_params",
    "graph_hash",
    "inputs_json",
    "num_bytes",
    "torch_version",
    "onnx_version",
    "opset",
)


def _read_manifests(zoo_dirs: Iterable[Path]) -> dict[str, dict[str, Any]]:
    by_sha: dict[str, dict[str, Any]] = {}
    for d in zoo_dirs:
        manifest = Path(d) / "manifest.jsonl"
        if not manifest.is_file():
            raise DatasetError(f"{manifest}: no zoo manifest (is {d} a graphrec zoo folder?)")
        for n, line in enumerate(manifest.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{manifest}:{n}: not JSON ({exc})") from None
            by_sha[rec["sha256"]] = rec
    return by_sha


def _store_rows(store: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    if not store.is_file():
        raise DatasetError(f"{store}: no such results store")
    try:
        con = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
        con.row_factory = sqlite3.Row
        have = {r[1] for r in con.execute("PRAGMA table_info(results)")}
        cols = [c for c in MEASUREMENT_COLUMNS if c in have]
        rows = [dict(r) for r in con.execute(f"SELECT {', '.join(cols)} FROM results")]
        devices = {
            r["device_id"]: json.loads(r["profile_json"])
            for r in con.execute("SELECT device_id, profile_json FROM devices")
        }
        con.close()
    except sqlite3.DatabaseError as exc:
        raise DatasetError(f"{store}: not a graphrec results store ({exc})") from None
    return rows, devices


def label_rows(meas: Any, ident: str = "measurement_key") -> Any:
    """Which rows make each pair's label (see the module doc), as a boolean Series."""
    busy = meas["busy"].fillna(0).astype(int) if "busy" in meas else 0
    new = meas["harness_version"].astype(str) >= "2.0"
    clean_new = new & (meas["status"].astype(str) == "ok") & meas["p50_ms"].notna() & (busy == 0)
    pair = [meas[ident], meas["candidate_id"].astype(str), meas["device_id"].astype(str)]
    has_clean_new = clean_new.groupby(pair).transform("any")
    return (~has_clean_new) | clean_new


def build_dataset(
    stores: Sequence[str | Path],
    zoo_dirs: Sequence[str | Path],
    out: str | Path,
    *,
    allow_untraced: bool = False,
) -> dict[str, Any]:
    """Write the dataset folder ``out`` from harness stores and the zoo folders they measured.

    Args:
        stores: SQLite results stores (several devices may be merged).
        zoo_dirs: Zoo folders whose ``manifest.jsonl`` identifies the measured models.
        out: Output folder (created; existing dataset files are replaced atomically).
        allow_untraced: Keep rows of models missing from every manifest (default: drop
            them, since the dataset promises that every row is reproducible).

    Returns:
        The ``meta.json`` content.

    Raises:
        DatasetError: A store or manifest is missing or malformed.
    """
    import pandas as pd

    manifests = _read_manifests(Path(z) for z in zoo_dirs)
    rows: list[dict[str, Any]] = []
    devices: dict[str, Any] = {}
    for s in stores:
        r, d = _store_rows(Path(s))
        rows += r
        devices.update(d)
    if not rows:
        raise DatasetError("the stores hold no results")
    meas = pd.DataFrame(rows)
    traced = meas["model_sha256"].isin(manifests.keys())
    dropped = int((~traced).sum())
    if not allow_untraced:
        meas = meas[traced]
    zoo_cols = {"model_id": "model_id", "family": "family", "variant": "variant"}
    for col, key in zoo_cols.items():
        meas[col] = meas["model_sha256"].map(lambda s, k=key: manifests.get(s, {}).get(k))
    ident = "measurement_key" if "measurement_key" in meas else "model_sha256"
    if "harness_version" not in meas:
        meas["harness_version"] = None
    meas["harness_version"] = meas["harness_version"].fillna("1.0").astype(str)
    # (round numbers restart in every store: one protocol's round 0 is not another's)
    meas = meas.drop_duplicates(
        [ident, "candidate_id", "device_id", "round", "harness_version"], keep="last"
    )
    meas["label"] = label_rows(meas, ident)
    meas = meas.sort_values(
        ["device_id", "family", "model_id", "candidate_id", "harness_version", "round"]
    )
    for c in ("runtime", "backend", "precision", "status", "device_id", "family", "variant"):
        if c in meas:
            meas[c] = meas[c].astype("category")
    models = pd.DataFrame(
        [
            {
                "model_sha256": sha,
                "model_id": m.get("model_id"),
                "family": m.get("family"),
                "variant": m.get("variant", "fp32"),
                "seed": m.get("seed"),
                "params_json": json.dumps(m.get("params", {}), sort_keys=True),
                "num_params": m.get("num_params"),
                "graph_hash": m.get("graph_hash"),
                "inputs_json": json.dumps(m.get("inputs", [])),
                "num_bytes": m.get("num_bytes"),
                "torch_version": m.get("torch_version"),
                "onnx_version": m.get("onnx_version"),
                "opset": m.get("opset"),
            }
            for sha, m in manifests.items()
            if sha in set(meas["model_sha256"])
        ],
        columns=list(MODEL_COLUMNS),
    )
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    versions = (
        meas.groupby("runtime", observed=True)["runtime_version"]
        .agg(lambda v: sorted({str(x) for x in v if isinstance(x, str) and x}))
        .to_dict()
    )
    meta = {
        "dataset_version": 1,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "sources": {"stores": [str(s) for s in stores], "zoo_dirs": [str(z) for z in zoo_dirs]},
        "counts": {
            "rows": len(meas),
            "models": int(meas["model_sha256"].nunique()),
            "families": int(meas["family"].nunique()),
            "runtimes": int(meas["runtime"].nunique()),
            "devices": int(meas["device_id"].nunique()),
            "dropped_untraced_rows": dropped,
        },
        "runtime_versions": versions,
        "harness_versions": sorted({str(v) for v in meas["harness_version"].dropna()}),
        "devices": {k: v for k, v in devices.items() if k in set(meas["device_id"].astype(str))},
    }
    for name, frame in (("measurements", meas), ("models", models)):
        part = out_dir / f".{name}.parquet.part"
        frame.to_parquet(part, index=False, compression="zstd")
        part.replace(out_dir / f"{name}.parquet")
    part = out_dir / ".meta.json.part"
    part.write_text(json.dumps(meta, indent=2, sort_keys=True))
    part.replace(out_dir / "meta.json")
    return meta


def load_dataset(path: str | Path) -> tuple[Any, Any, dict[str, Any]]:
    """Read a dataset folder: ``(measurements DataFrame, models DataFrame, meta dict)``.

    Raises:
        DatasetError: The folder lacks a dataset file or a file is unreadable.
    """
    import pandas as pd

    d = Path(path)
    try:
        meas = pd.read_parquet(d / "measurements.parquet")
        models = pd.read_parquet(d / "models.parquet")
        meta = json.loads((d / "meta.json").read_text())
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{d}: not a graphrec dataset folder ({exc})") from None
    return meas, models, meta
