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
    >>> from graphrec.recommender.artefact import Recommender
    >>> rec = Recommender.load("artefact/")  # doctest: +SKIP
    >>> rec.candidates[:2]  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from graphrec.errors import ArtefactError
from graphrec.recommender.latency_gbdt import PairLatencyRegressor
from graphrec.recommender.medn import MEDNPrediction, MEDNRegressor
from graphrec.recommender.pso_catboost import PSOWCatBoostClassifier

__all__ = ["ARTEFACT_FORMAT_VERSION", "Recommender", "artefact_card", "head_features"]

#: Layout version of the artefact folder.
ARTEFACT_FORMAT_VERSION = 1


def head_features(
    graph_features: np.ndarray, embedding: np.ndarray, device_features: np.ndarray
) -> np.ndarray:
    """The head's input: numeric graph features, GNN embedding and device features."""
    return np.hstack(
        [np.atleast_2d(graph_features), np.atleast_2d(embedding), np.atleast_2d(device_features)]
    )


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class Recommender:
    """A fitted MEDN latency model and PSO-W-CatBoost head over one candidate list.

    Attributes:
        medn: The latency / cold-start / deployability model.
        head: The best-choice classifier.
        alpha: Weight of the head in the ranking (see :mod:`graphrec.recommender.ranking`).
        info: Training summary and out-of-distribution statistics (JSON-able).
        latency_gbdt: The pooled per-pair latency regressor (optional).
        latency_weight: Weight of MEDN in the log-latency average (1 = MEDN alone).
        draw_scale: Factor on the relative latency error the ranking draws from, fitted
            so that the expected loss of the recommended choice matches the regret
            realised on held-out families (:func:`graphrec.recommender.ranking.fit_draw_scale`).
    """

    medn: MEDNRegressor
    head: PSOWCatBoostClassifier
    alpha: float = 0.5
    info: dict[str, Any] = field(default_factory=dict)
    latency_gbdt: PairLatencyRegressor | None = None
    latency_weight: float = 0.5
    draw_scale: float = 1.0

    @property
    def candidates(self) -> list[str]:
        """Candidate ids, in the models' column order."""
        return list(self.medn.candidates_)

    def predict(
        self, hetero: Sequence[Any], graph_features: np.ndarray, device_features: np.ndarray
    ) -> tuple[MEDNPrediction, np.ndarray]:
        """Latency-model outputs and the head's ``P(fastest)`` ``[N, C]`` for raw inputs.

        The returned prediction is MEDN's, with log-latency and cold start averaged with
        the pooled regressor's when the artefact has one (see :meth:`blend_latency`).
        """
        pred = self.medn.predict_arrays(hetero, graph_features, device_features)
        proba = self.head.predict_proba(
            head_features(graph_features, pred.embedding, device_features)
        )
        return self.blend_latency(pred, graph_features, device_features), proba

    def blend_latency(
        self, pred: MEDNPrediction, graph_features: np.ndarray, device_features: np.ndarray
    ) -> MEDNPrediction:
        """MEDN's prediction with latency and cold start averaged (in log space) with the
        pooled regressor's; the latency error becomes ``sqrt((s_medn^2 + s_gbdt^2) / 2)``,
        an upper bound of the average's error whatever the two errors' correlation."""
        gb = self.latency_gbdt
        if gb is None or self.latency_weight >= 1.0:
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
        """``pred`` with the relative error scaled by :attr:`draw_scale`."""
        if self.draw_scale == 1.0:
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
            log_latency_rel_sigma=self.draw_scale * np.asarray(rel, dtype=np.float64),
        )

    # ------------------------------------------------------------------ ood
    def distance_warnings(
        self, graph_features: np.ndarray, device_features: np.ndarray
    ) -> list[str]:
        """Reasons the input is far from the training data (empty when it is not)."""
        out: list[str] = []
        ood = self.info.get("ood")
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
        """Write the artefact folder (see the module docstring) and return its path."""
        import torch

        import graphrec

        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        medn_meta, tensors = self.medn.state()
        torch.save(tensors, out / "medn.pt")
        head_meta = self.head.save(out, "head")
        files = ["medn.pt"] + ([head_meta["file"]] if head_meta["file"] else [])
        gbdt_meta = None
        if self.latency_gbdt is not None:
            gbdt_meta = self.latency_gbdt.save(out)
            files += list(gbdt_meta["files"].values())
        meta = {
            "format_version": ARTEFACT_FORMAT_VERSION,
            "graphrec_version": graphrec.__version__,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "candidates": self.candidates,
            "alpha": self.alpha,
            "medn": medn_meta,
            "head": head_meta,
            "latency_gbdt": gbdt_meta,
            "latency_weight": self.latency_weight,
            "draw_scale": self.draw_scale,
            "feature_names": self._feature_names(),
            "info": self.info,
            "sha256": {f: _sha256(out / f) for f in files},
        }
        (out / "meta.json").write_text(json.dumps(meta, indent=1, default=_json_default) + "\n")
        (out / "CARD.md").write_text(artefact_card(meta))
        return out

    @classmethod
    def load(cls, folder: str | os.PathLike[str]) -> Recommender:
        """Read an artefact folder written by :meth:`save`.

        Raises:
            ArtefactError: Missing files, bad JSON, another format version, or a checksum
                mismatch.
        """
        import torch

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
        want = cls._feature_names()
        if meta.get("feature_names") != want:
            raise ArtefactError(
                mp,
                "trained on other model features than this graphrec computes "
                f"({len(meta.get('feature_names') or [])} vs {len(want)}); retrain it",
            )
        return cls(
            medn=medn,
            head=head,
            alpha=float(meta.get("alpha", 0.5)),
            info=meta["info"],
            latency_gbdt=gbdt,
            latency_weight=float(meta.get("latency_weight", 1.0)),
            draw_scale=float(meta.get("draw_scale", 1.0)),
        )

    @staticmethod
    def _feature_names() -> list[str]:
        from graphrec.device import DeviceProfile
        from graphrec.recommender.features import model_feature_names

        return [*model_feature_names(), *DeviceProfile.feature_names()]


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
