"""The trained recommender (MEDN + PSO-W-CatBoost head) and its on-disk artefact.

An artefact is a folder:

* ``meta.json``: format version, graphrec version, candidate ids, training summary,
  the statistics used to warn about inputs far from the training data, and the sha256
  of every other file;
* ``medn.pt``: a dict of tensors only, read with ``torch.load(weights_only=True)``;
* ``head.cbm``: the CatBoost model in CatBoost's own binary format;
* ``latency_gbdt_*.cbm``: the pooled latency / cold-start regressors
  (:mod:`graphrec.recommender.latency_gbdt`), when the artefact has them.

Latency is an ensemble: the log-latency of MEDN and of the pooled regressor, averaged
with weight ``latency_weight`` on MEDN.

Nothing is unpickled: loading checks every checksum first and refuses a folder whose
files do not match (:class:`graphrec.errors.ArtefactError`).

Example:
    >>> from graphrec.recommender import Recommender
    >>> rec = Recommender.load("artefact/")  # doctest: +SKIP
    >>> rec.candidates[:2]  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from graphrec.errors import ArtefactError

if TYPE_CHECKING:
    from graphrec.recommender.estimator import Recommender

__all__ = ["ARTEFACT_FORMAT_VERSION", "artefact_card", "load_artefact", "save_artefact"]

#: Layout version of the artefact folder.
ARTEFACT_FORMAT_VERSION = 1


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _feature_names() -> list[str]:
    from graphrec.device import DeviceProfile
    from graphrec.recommender.features import model_feature_names

    return [*model_feature_names(), *DeviceProfile.feature_names()]


def save_artefact(rec: Recommender, folder: str | os.PathLike[str]) -> Path:
    """Write a fitted recommender's artefact folder (see the module docstring)."""
    import torch

    import graphrec

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    medn_meta, tensors = rec.medn_.state()
    torch.save(tensors, out / "medn.pt")
    head_meta = rec.head_.save(out, "head")
    files = ["medn.pt"] + ([head_meta["file"]] if head_meta["file"] else [])
    gbdt_meta = None
    if rec.latency_gbdt_ is not None:
        gbdt_meta = rec.latency_gbdt_.save(out)
        files += list(gbdt_meta["files"].values())
    meta = {
        "format_version": ARTEFACT_FORMAT_VERSION,
        "graphrec_version": graphrec.__version__,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "candidates": rec.candidates,
        "alpha": rec.alpha_,
        "medn": medn_meta,
        "head": head_meta,
        "latency_gbdt": gbdt_meta,
        "latency_weight": float(rec.latency_weight),
        "draw_scale": rec.draw_scale_,
        "params": rec.get_params(deep=False),
        "feature_names": _feature_names(),
        "info": rec.info_,
        "sha256": {f: _sha256(out / f) for f in files},
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=1, default=_json_default) + "\n")
    (out / "CARD.md").write_text(artefact_card(meta))
    return out


def load_artefact(folder: str | os.PathLike[str]) -> Recommender:
    """Read an artefact folder written by :func:`save_artefact`.

    Raises:
        ArtefactError: Missing files, bad JSON, another format version, or a checksum
            mismatch.
    """
    import torch

    from graphrec.recommender.estimator import Recommender
    from graphrec.recommender.latency_gbdt import PairLatencyRegressor
    from graphrec.recommender.medn import MEDNRegressor
    from graphrec.recommender.pso_catboost import PSOWCatBoostClassifier

    root = Path(folder)
    mp = root / "meta.json"
    try:
        meta = json.loads(mp.read_text())
    except OSError as exc:
        raise ArtefactError(mp, f"cannot read ({exc.strerror or exc})") from None
    except json.JSONDecodeError as exc:
        raise ArtefactError(mp, f"not valid JSON ({exc.msg})") from None
    if not isinstance(meta, dict) or meta.get("format_version") != ARTEFACT_FORMAT_VERSION:
        got = meta.get("format_version") if isinstance(meta, dict) else None
        raise ArtefactError(
            mp, f"artefact format {got!r}; this graphrec reads {ARTEFACT_FORMAT_VERSION}"
        )
    for name, digest in dict(meta.get("sha256", {})).items():
        f = root / name
        if not f.is_file():
            raise ArtefactError(f, "file listed in meta.json is missing")
        if _sha256(f) != digest:
            raise ArtefactError(f, "sha256 does not match meta.json (corrupt or modified)")
    if "medn.pt" not in meta.get("sha256", {}):
        raise ArtefactError(mp, "meta.json lists no medn.pt checksum")
    try:
        tensors = torch.load(root / "medn.pt", map_location="cpu", weights_only=True)
        medn = MEDNRegressor.from_state(meta["medn"], tensors)
        head = PSOWCatBoostClassifier.load(root, meta["head"])
        gbdt = (
            PairLatencyRegressor.load(root, meta["latency_gbdt"])
            if meta.get("latency_gbdt")
            else None
        )
    except (KeyError, RuntimeError, ValueError, TypeError, OSError) as exc:
        raise ArtefactError(root, f"cannot rebuild the models ({exc})") from None
    want = _feature_names()
    if meta.get("feature_names") != want:
        raise ArtefactError(
            mp,
            "trained on other model features than this graphrec computes "
            f"({len(meta.get('feature_names') or [])} vs {len(want)}); retrain it",
        )
    params = meta.get("params") or {}
    valid = set(Recommender._param_names())
    return Recommender.from_parts(
        medn=medn,
        head=head,
        alpha=float(meta.get("alpha", 0.5)),
        info=meta["info"],
        latency_gbdt=gbdt,
        latency_weight=float(meta.get("latency_weight", 1.0)),
        draw_scale=float(meta.get("draw_scale", 1.0)),
        params={k: v for k, v in params.items() if k in valid},
    )


def artefact_card(meta: dict[str, Any]) -> str:
    """The artefact's data card (``CARD.md``), written from its ``meta.json``."""
    info = meta.get("info", {})
    medn = meta.get("medn", {}).get("params", {})
    head = meta.get("head", {})
    gb = meta.get("latency_gbdt") or {}
    versions = info.get("versions", {})
    lines = [
        "# graphrec recommender artefact",
        "",
        "What: a trained MEDN latency / cold-start / deployability network, a pooled CatBoost "
        "latency regressor and a PSO-W-CatBoost best-choice classifier over "
        f"{len(meta.get('candidates', []))} deployment candidates (artefact format "
        f"{meta.get('format_version')}, graphrec {meta.get('graphrec_version')}, created "
        f"{meta.get('created_at')}).",
        "",
        "## Training data",
        "",
        f"* sources: {', '.join(map(str, info.get('stores', []))) or '(not recorded)'}",
        f"* {info.get('n_samples')} (model, device) samples, {info.get('n_models')} models, "
        f"{info.get('n_devices')} device(s): {', '.join(info.get('device_ids', []))}",
        f"* families ({len(info.get('families', []))}): {', '.join(info.get('families', []))}",
        f"* best single candidate on average in the training data: {info.get('best_on_average')}",
        "",
        "## Models",
        "",
        f"* MEDN: {json.dumps(medn, sort_keys=True)}; trained {meta.get('medn', {}).get('n_epochs')} epochs",
        f"* pooled regressor: {json.dumps(gb.get('params', {}), sort_keys=True)}; rounds "
        f"{json.dumps(gb.get('best_iterations', {}), sort_keys=True)}; latency weight of MEDN "
        f"{meta.get('latency_weight')}",
        f"* head: {json.dumps({k: v for k, v in head.items() if k != 'file'}, sort_keys=True, default=str)[:600]}",
        f"* scale of the ranking's latency draws: {meta.get('draw_scale', 1.0)} "
        f"({json.dumps(info.get('draw_scale_fit', {}), sort_keys=True)})",
        f"* blend weight of the head in the ranking (alpha): {meta.get('alpha')} "
        f"({(info.get('alpha_fit') or {}).get('method', '?')})",
        "",
        "## Versions",
        "",
        *(f"* {k}: {v}" for k, v in sorted(versions.items())),
        "",
        "## Files",
        "",
        "`meta.json` (metadata, sha256 of every file), `medn.pt` (tensors only, loaded with "
        "`weights_only=True`), `*.cbm` (CatBoost's own format). Nothing is unpickled.",
        "",
        "## Regenerate",
        "",
        f"`{info.get('command') or 'graphrec train --data DATA --out DIR'}`",
        "",
    ]
    return "\n".join(lines)


def _json_default(o: Any) -> Any:
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"not JSON-able: {type(o).__name__}")


def __getattr__(name: str) -> Any:
    # ``Recommender`` and ``head_features`` lived here before the estimator was split out.
    if name in ("Recommender", "head_features"):
        import warnings

        from graphrec.recommender import estimator

        warnings.warn(
            f"graphrec.recommender.artefact.{name} moved to graphrec.recommender.estimator",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(estimator, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
