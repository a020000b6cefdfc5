"""Module-sum latency of a whole model from the selected per-module regressors.

latency(model, runtime) = overhead(runtime) + sum over modules of
max(predicted single-module latency - overhead(runtime), 0), where the overhead is the
measured latency of an Identity model (session call and dispatch). Module types without
their own regressor use the generic one (common features, fitted on every point).

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
from graphrec.recommender.modules.vocab import Module, detect_modules, feature_names

if TYPE_CHECKING:
    from graphrec.graph import OperatorGraph

__all__ = ["ModuleLatencyPredictor", "default_artefact"]


def default_artefact() -> Path:
    """The shipped artefact folder (``graphrec/data/modules``)."""
    return Path(__file__).resolve().parents[2] / "data" / "modules"


class ModuleLatencyPredictor:
    """Selected module regressors + per-runtime overhead (load with :meth:`load`)."""

    def __init__(self, selection: dict[str, Any], regressors: dict[str, dict[str, Any]]) -> None:
        self.selection = selection
        self.regressors = regressors
        self.candidates: list[str] = list(selection["candidates"])
        self.overhead_ms: dict[str, float] = dict(selection["overhead_ms"])

    @classmethod
    def load(cls, folder: str | Path | None = None) -> ModuleLatencyPredictor:
        """Read an artefact written by ``graphrec modules fit``."""
        sel, regs = load_artefact_arrays(folder or default_artefact())
        return cls(sel, regs)

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
        return {
            "latency_ms": {c: float(total[j]) for j, c in enumerate(self.candidates)},
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
