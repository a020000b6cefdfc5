"""Module-sum latency of a whole model from the selected per-module regressors.

Raw: latency(model, runtime) = overhead(runtime) + sum over modules of
max(predicted single-module latency - overhead(runtime), 0), where the overhead is the
measured latency of an Identity model (session call and dispatch). Module types without
their own regressor use the generic one (common features, fitted on every point).

Measured alone, a module pays what a whole model pays once (layout reorders, a cold cache,
an input copy), and a runtime fuses some modules into others. :func:`fit_type_scales`
measures that per runtime: one non-negative factor per module type (and a constant), fitted
so that the scaled module sum matches measured whole models (relative least squares). With
``type_scale.json`` in the artefact, ``latency_ms`` is the scaled sum.

Example:
    >>> pred = ModuleLatencyPredictor.load()                         # doctest: +SKIP
    >>> pred.predict_model("model.onnx")["latency_ms"]               # doctest: +SKIP
    {'onnxruntime/cpu/fp32/opt=all/threads=1': 3.1, 'openvino/...': 2.7}
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from graphrec.recommender.modules.select import GENERIC, load_artefact_arrays
from graphrec.recommender.modules.vocab import (
    MODULE_TYPES,
    Module,
    detect_modules,
    feature_names,
)

if TYPE_CHECKING:
    from graphrec.graph import OperatorGraph

__all__ = ["ModuleLatencyPredictor", "default_artefact", "fit_type_scales", "type_work"]


def default_artefact() -> Path:
    """The shipped artefact folder (``graphrec/data/modules``)."""
    return Path(__file__).resolve().parents[2] / "data" / "modules"


def type_work(modules: Sequence[dict[str, Any]], candidate: str) -> np.ndarray:
    """Predicted module work (ms) summed per module type, in :data:`MODULE_TYPES` order."""
    out = np.zeros(len(MODULE_TYPES))
    for m in modules:
        out[MODULE_TYPES.index(m["module_type"])] += m["latency_ms"][candidate]
    return out


def fit_type_scales(work: np.ndarray, true_ms: np.ndarray) -> np.ndarray:
    """Non-negative per-type factors and a constant: ``true ≈ work @ f[:-1] + f[-1]``.

    Args:
        work: ``[models, types]`` predicted work per module type (:func:`type_work`).
        true_ms: Measured whole-model latency.

    Returns:
        ``len(types) + 1`` factors, fitted on the relative error (each model weighs the
        same whatever its latency).
    """
    from scipy.optimize import nnls

    ok = np.isfinite(true_ms) & (true_ms > 0) & np.isfinite(work).all(axis=1)
    a = np.column_stack([work[ok], np.ones(int(ok.sum()))]) / true_ms[ok, None]
    coef, _ = nnls(a, np.ones(int(ok.sum())))
    return np.asarray(coef, dtype=np.float64)


class ModuleLatencyPredictor:
    """Selected module regressors + per-runtime overhead (load with :meth:`load`)."""

    def __init__(self, selection: dict[str, Any], regressors: dict[str, dict[str, Any]]) -> None:
        self.selection = selection
        self.regressors = regressors
        self.candidates: list[str] = list(selection["candidates"])
        self.overhead_ms: dict[str, float] = dict(selection["overhead_ms"])

        #: Per-runtime type factors (:func:`fit_type_scales`); empty: the raw sum.
        self.type_scale: dict[str, np.ndarray] = {}

    @classmethod
    def load(cls, folder: str | Path | None = None) -> ModuleLatencyPredictor:
        """Read an artefact written by ``graphrec modules fit`` (and ``type_scale.json``)."""
        import json

        root = Path(folder or default_artefact())
        sel, regs = load_artefact_arrays(root)
        pred = cls(sel, regs)
        scale = root / "type_scale.json"
        if scale.exists():
            d = json.loads(scale.read_text())
            pred.type_scale = {
                c: np.array([v[t] for t in (*MODULE_TYPES, "constant_ms")], dtype=np.float64)
                for c, v in d["scales"].items()
            }
        return pred

    def _regressor(self, mtype: str, cand: str) -> tuple[str, Any]:
        chosen = self.selection["selection"].get(mtype, {})
        if cand in chosen and chosen[cand] in self.regressors.get(mtype, {}):
            return mtype, self.regressors[mtype][chosen[cand]]
        name = self.selection["selection"][GENERIC][cand]
        return GENERIC, self.regressors[GENERIC][name]

    def predict_modules(self, modules: Sequence[Module]) -> np.ndarray:
        """Predicted single-module latencies, ms ``[modules, candidates]``."""
        out = np.zeros((len(modules), len(self.candidates)))
        by_type: dict[str, list[int]] = {}
        for i, m in enumerate(modules):
            by_type.setdefault(m.module_type, []).append(i)
        for mtype, idx in by_type.items():
            for j, c in enumerate(self.candidates):
                used, reg = self._regressor(mtype, c)
                names = feature_names(mtype if used != GENERIC else "other")
                x = np.array([[modules[i].features.get(k, 0.0) for k in names] for i in idx])
                col = self.candidates.index(c)
                pred = reg.predict(x.reshape(len(idx), len(names)))
                out[idx, j] = np.exp(pred[:, col])
        return out

    def predict_graph(self, g: OperatorGraph) -> dict[str, Any]:
        """Module-sum latency (ms) by candidate, with the modules and their shares."""
        mods = detect_modules(g)
        per = self.predict_modules(mods)
        over = np.array([self.overhead_ms[c] for c in self.candidates])
        work = np.maximum(per - over[None, :], 0.0)
        total = over + work.sum(axis=0)
        scaled = total.copy()
        for j, c in enumerate(self.candidates):
            f = self.type_scale.get(c)
            if f is not None:
                per_type = np.zeros(len(MODULE_TYPES))
                for k, m in enumerate(mods):
                    per_type[MODULE_TYPES.index(m.module_type)] += work[k, j]
                scaled[j] = float(per_type @ f[:-1] + f[-1])
        return {
            "latency_ms": {c: float(scaled[j]) for j, c in enumerate(self.candidates)},
            "raw_latency_ms": {c: float(total[j]) for j, c in enumerate(self.candidates)},
            "module_sum_ms": {c: float(work[:, j].sum()) for j, c in enumerate(self.candidates)},
            "overhead_ms": dict(self.overhead_ms),
            "modules": [
                {
                    "module_type": m.module_type,
                    "nodes": [g.node_names[i] for i in m.nodes],
                    "latency_ms": {c: float(work[k, j]) for j, c in enumerate(self.candidates)},
                }
                for k, m in enumerate(mods)
            ],
        }

    def predict_model(self, path: str | Path, *, batch_size: int = 1) -> dict[str, Any]:
        """:meth:`predict_graph` of an ONNX file."""
        from graphrec import graph

        return self.predict_graph(graph.load(path, batch_size=batch_size))
