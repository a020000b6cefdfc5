"""Latency for the search and the deployment, through graphrec's public API only.

* :func:`export_onnx`: a trained network to ONNX (legacy TorchScript exporter, fixed
  batch 1, the exporter's warnings silenced).
* :class:`LatencyTable`: FBNet-style per-operation table for the final network's
  geometry. Each entry is the predicted latency (:func:`graphrec.recommend`, for the
  target device and one deployment candidate) of a one-operation ONNX model minus that
  of a one-``Relu`` model of the same input, floored at zero. A constant (stem, cell
  preprocessing, classifier) is calibrated so that the table's sum equals the
  recommender's whole-model prediction for a reference network. The expected latency
  of a super-network is differentiable in its architecture logits.
* :func:`deploy`: recommend for the device, then measure the recommended choice with
  :func:`graphrec.verify` (graphrec's harness: conversion to that runtime, isolated
  timing).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from graphrec.automl.data import AutoMLError
from graphrec.automl.space import (
    N_NODES,
    Genotype,
    SuperNet,
    build_network,
    cell_geometry,
    make_op,
)

__all__ = ["LatencyTable", "build_latency_table", "deploy", "export_onnx", "predict_latency"]

_OPSET = 17


def export_onnx(model: nn.Module, in_shape: tuple[int, int, int], path: str | Path) -> Path:
    """Export ``model`` (eval mode, batch 1) to ``path`` atomically.

    Raises:
        AutoMLError: The exporter failed (the message carries its reason).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    was = model.training
    model.eval()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                (torch.zeros(1, *in_shape),),
                str(tmp),
                dynamo=False,
                opset_version=_OPSET,
                input_names=["input"],
                output_names=["logits"],
                do_constant_folding=True,
            )
    except Exception as exc:  # the exporter raises many unrelated types
        raise AutoMLError(f"{path}: ONNX export failed: {exc}") from exc
    finally:
        model.train(was)
    tmp.replace(path)
    return path


def predict_latency(
    onnx_path: str | Path, device: Any, candidate: str | None, artefact: str | None = None
) -> tuple[float, str]:
    """Predicted median latency (ms) and candidate id from :func:`graphrec.recommend`
    (the best deployable choice when ``candidate`` is ``None``)."""
    import graphrec
    from graphrec.errors import OutOfDistributionWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDistributionWarning)
        rec = graphrec.recommend(
            onnx_path,
            device,
            candidates=[candidate] if candidate else None,
            artefact=artefact,
        )
    best = rec.best
    return float(best.latency_ms), best.candidate_id


@dataclass
class LatencyTable:
    """Per-operation latencies (ms) of the final network's cells.

    Attributes:
        candidate: The deployment candidate the table predicts for.
        device_id: The target device.
        ops: Operation names (columns).
        entries: ``entries[cell][edge_kind]`` → per-operation ms, ``edge_kind`` 0 for
            stride 1, 1 for the stride-2 inputs of a reduction cell.
        constant_ms: Latency of everything but the cells' operations.
        reference_ms: The recommender's whole-model prediction of the reference network.
    """

    candidate: str
    device_id: str
    ops: list[str]
    entries: list[list[list[float]]]
    reductions: list[bool]
    constant_ms: float = 0.0
    reference_ms: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)

    def _edge_weights(self) -> list[tuple[int, float]]:
        """Per edge: its kind index base and the chance the discrete cell keeps it."""
        out = []
        for j in range(N_NODES):
            for i in range(2 + j):
                out.append((i, 2.0 / (2 + j)))
        return out

    def genotype_ms(self, genotype: Genotype) -> float:
        """Table latency of the discrete network of ``genotype``."""
        total = self.constant_ms
        for cell, red in enumerate(self.reductions):
            pairs = genotype.reduce if red else genotype.normal
            for op, i in pairs:
                kind = 1 if red and i < 2 else 0
                total += self.entries[cell][kind][self.ops.index(op)]
        return total

    def expected_ms(self, net: SuperNet) -> torch.Tensor:
        """Expected latency of the final network under ``net``'s softmax (differentiable)."""
        idx = [self.ops.index(o) for o in net.ops]
        total = torch.tensor(self.constant_ms)
        pn, pr = net.probs("normal"), net.probs("reduce")
        ew = self._edge_weights()
        for cell, red in enumerate(self.reductions):
            p = pr if red else pn
            for e, (i, w) in enumerate(ew):
                kind = 1 if red and i < 2 else 0
                lat = torch.tensor([self.entries[cell][kind][k] for k in idx])
                total = total + w * (p[e] * lat).sum()
        return total

    def __call__(self, net: SuperNet) -> torch.Tensor:
        return self.expected_ms(net)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "candidate": self.candidate,
            "device_id": self.device_id,
            "ops": self.ops,
            "entries": self.entries,
            "reductions": self.reductions,
            "constant_ms": self.constant_ms,
            "reference_ms": self.reference_ms,
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LatencyTable:
        """Inverse of :meth:`to_dict`."""
        return cls(**d)


class _One(nn.Module):
    def __init__(self, op: nn.Module) -> None:
        super().__init__()
        self.op = op

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


def build_latency_table(
    in_shape: tuple[int, int, int],
    n_classes: int,
    ops: Sequence[str],
    *,
    depth: int,
    c: int,
    device: Any = "auto",
    candidate: str | None = None,
    reference: Genotype,
    cache: str | Path | None = None,
    artefact: str | None = None,
) -> LatencyTable:
    """Build (or load from ``cache``) the table for the final network's geometry.

    Args:
        in_shape: Input ``(C, H, W)``.
        n_classes: Classes (classifier size).
        ops: Operations to tabulate.
        depth: Cells of the final network.
        c: Its first cells' channels.
        device: Target device: ``"auto"``, a profile path or a ``DeviceProfile``.
        candidate: Deployment candidate id (default: the recommender's choice for the
            reference network).
        reference: Genotype of the network that calibrates the constant.
        cache: JSON file keyed by everything above.
        artefact: Recommender artefact folder (default: graphrec's).
    """
    from graphrec.api import _device

    dev = _device(device)
    key_src = json.dumps(
        [in_shape, n_classes, list(ops), depth, c, dev.device_id, candidate, reference.to_dict()]
    )
    key = hashlib.sha256(key_src.encode()).hexdigest()[:16]
    store: dict[str, Any] = {}
    cache_path = Path(cache) if cache is not None else None
    if cache_path is not None and cache_path.is_file():
        try:
            store = json.loads(cache_path.read_text())
        except (OSError, json.JSONDecodeError):
            store = {}
        if key in store:
            return LatencyTable.from_dict(store[key])
    geo = cell_geometry(in_shape, depth, c)
    with tempfile.TemporaryDirectory(prefix="graphrec-automl-lut-") as tmp:
        ref_net = build_network(reference, in_shape, n_classes, depth=depth, c=c)
        ref_path = export_onnx(ref_net, in_shape, Path(tmp) / "reference.onnx")
        ref_ms, cand = predict_latency(ref_path, dev, candidate, artefact)
        memo: dict[tuple[int, int, int, int, str], float] = {}

        def one(op: str, ch: int, h: int, w: int, stride: int) -> float:
            k = (ch, h, w, stride, op)
            if k not in memo:
                shape = (ch, h, w)
                p = Path(tmp) / f"op_{len(memo)}.onnx"
                m = _One(make_op(op, ch, stride, h == 1, affine=True))
                base_p = Path(tmp) / f"base_{len(memo)}.onnx"
                export_onnx(m, shape, p)
                export_onnx(_One(nn.ReLU()), shape, base_p)
                lat, _ = predict_latency(p, dev, cand, artefact)
                base, _ = predict_latency(base_p, dev, cand, artefact)
                memo[k] = max(lat - base, 0.0)
            return memo[k]

        entries: list[list[list[float]]] = []
        reductions: list[bool] = []
        for red, ch, h, w in geo:
            reductions.append(red)
            if red:
                h2 = h if h == 1 else (h + 1) // 2
                w2 = (w + 1) // 2
                s1 = [one(o, ch, h2, w2, 1) for o in ops]
                s2 = [one(o, ch, h, w, 2) for o in ops]
                entries.append([s1, s2])
            else:
                s1 = [one(o, ch, h, w, 1) for o in ops]
                entries.append([s1, s1])
        # Single-operation models each carry a session's fixed cost, so their sum
        # overstates a whole network: calibrate scale and constant on two references
        # (the reference genotype and its all-skip counterpart) predicted whole.
        light = Genotype(
            normal=[("skip_connect", i) for _, i in reference.normal],
            reduce=[("skip_connect", i) for _, i in reference.reduce],
        )
        light_net = build_network(light, in_shape, n_classes, depth=depth, c=c)
        light_ms, _ = predict_latency(
            export_onnx(light_net, in_shape, Path(tmp) / "light.onnx"), dev, cand, artefact
        )
    raw = LatencyTable(cand, dev.device_id, list(ops), entries, reductions)
    s_ref, s_light = raw.genotype_ms(reference), raw.genotype_ms(light)
    scale = (ref_ms - light_ms) / (s_ref - s_light) if s_ref > s_light else 1.0
    scale = max(scale, 1e-3)
    scaled = [[[v * scale for v in kind] for kind in cell] for cell in entries]
    table = LatencyTable(cand, dev.device_id, list(ops), scaled, reductions)
    table.reference_ms = ref_ms
    table.constant_ms = ref_ms - table.genotype_ms(reference)
    table.meta = {
        "exports": len(memo) * 2 + 3,
        "key": key,
        "scale": scale,
        "light_reference_ms": light_ms,
    }
    if cache_path is not None:
        store[key] = table.to_dict()
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        tmp_path = cache_path.with_name(cache_path.name + ".part")
        tmp_path.write_text(json.dumps(store))
        tmp_path.replace(cache_path)
    return table


def deploy(
    onnx_path: str | Path,
    device: Any = "auto",
    *,
    measure: bool = True,
    top: int = 1,
    artefact: str | None = None,
) -> dict[str, Any]:
    """Recommend a deployment for the model and (on this machine) measure it.

    Args:
        onnx_path: The exported model.
        device: Target device (``"auto"``: this machine; measurement needs this machine).
        measure: Measure the recommended choices with :func:`graphrec.verify`.
        top: How many of the best choices to measure.
        artefact: Recommender artefact folder.

    Returns:
        ``recommended_runtime``, ``candidate_id``, ``predicted_latency_ms``,
        ``measured_latency_ms`` (``None`` when not measured), ``measured_status``,
        ``choices`` (the top few as dicts).
    """
    import graphrec
    from graphrec.errors import DeviceProfileError, OutOfDistributionWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDistributionWarning)
        rec = graphrec.recommend(onnx_path, device, artefact=artefact)
    best = rec.best
    out: dict[str, Any] = {
        "recommended_runtime": best.runtime,
        "candidate_id": best.candidate_id,
        "predicted_latency_ms": float(best.latency_ms),
        "predicted_interval_ms": [float(best.latency_low_ms), float(best.latency_high_ms)],
        "measured_latency_ms": None,
        "measured_status": None,
        "warnings": list(rec.warnings),
    }
    if measure:
        ranked = [best] + [c for c in rec.choices if c is not best and c.deployable]
        rec.choices = ranked[: max(top, 1)]
        try:
            graphrec.verify(rec, top=max(top, 1))
        except DeviceProfileError as exc:
            out["measured_status"] = f"not measured: {exc}"
            return out
        out["measured_latency_ms"] = rec.choices[0].measured_ms
        out["measured_status"] = rec.choices[0].measured_status
        out["measured_choices"] = [
            {
                "candidate_id": c.candidate_id,
                "predicted_ms": c.latency_ms,
                "measured_ms": c.measured_ms,
                "status": c.measured_status,
            }
            for c in rec.choices
        ]
    return out
