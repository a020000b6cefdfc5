"""Model profiling for training: per-layer FLOPs, bytes and compute time.

A *layer* is a group of ONNX operators cut at a boundary where a pipeline may split the
model. Models exported from torch carry module scopes in their node names
(``/blocks.0/attn/MatMul``); each top-level module call is one layer, and operators with
no scope (a reshape between two modules) join the layer before them. Other models are
cut where exactly one activation crosses the operator order. Adjacent layers are merged
(lightest pair first) until at most ``max_layers`` remain.

Costs per layer, **per sample** (the ONNX file's batch divided out):

* forward FLOPs from the graph kernel; backward FLOPs are 2x forward for operators with
  weights (gradient of the input and of the weight), 1x for operators without weights
  (gradient of the input only), and 1x for weighted operators of the first layer, which
  needs no input gradient;
* parameter bytes, activation bytes kept for the backward pass (every operator output of
  the layer), the bytes that cross to the next layer (what a pipeline sends);
* optimizer state: SGD with momentum keeps one copy of the parameters, Adam two.

Compute time comes from one of two sources, recorded in :attr:`ModelProfile.time_source`:
``"measured"`` (the torch module run layer by layer, forward and backward, at two batch
sizes, a straight line fitted per layer) or ``"estimated"`` (FLOPs divided by a device
throughput).

Example:
    >>> prof = load_profile("examples/models/tiny_convnet.onnx")  # doctest: +SKIP
    >>> [layer.name for layer in prof.layers]  # doctest: +SKIP
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from graphrec.errors import GraphRecError, ModelLoadError

if TYPE_CHECKING:
    from graphrec.graph.operator_graph import OperatorGraph

__all__ = [
    "OPTIMIZERS",
    "LayerProfile",
    "ModelProfile",
    "PlanInputError",
    "load_profile",
    "measure_layer_times",
    "profile_graph",
]

#: Optimizer -> bytes of state per byte of parameters.
OPTIMIZERS: dict[str, float] = {"sgd": 1.0, "adam": 2.0}

_CONST_OPS = frozenset({"Constant", "Identity", "ConstantOfShape"})


class PlanInputError(GraphRecError, ValueError):
    """Input to the training planner is impossible or malformed (the message says why)."""


@dataclass(frozen=True)
class LayerProfile:
    """One layer's costs, per sample.

    Attributes:
        name: Module path of the layer's first module (``"blocks.0"``) or ``"ops[a:b]"``.
        modules: Module paths merged into this layer, in call order.
        fwd_flops: Forward FLOPs per sample.
        bwd_flops: Backward FLOPs per sample (see the module docstring for the rule).
        param_bytes: Bytes of trainable parameters (not per sample).
        act_bytes: Activation bytes kept for backward, per sample.
        out_bytes: Bytes crossing from this layer to all later ones, per sample.
        fwd_ms: Forward time as ``(fixed_ms, per_sample_ms)``, when known.
        bwd_ms: Backward time as ``(fixed_ms, per_sample_ms)``, when known.
        fwd_points: Measured forward times as ``((batch, ms), ...)`` in increasing
            batch; when given they replace the line: times are interpolated between
            the points (a small batch is not proportionally cheaper) and extended
            beyond them along the nearest segment.
        bwd_points: The same for the backward pass.
    """

    name: str
    modules: tuple[str, ...]
    fwd_flops: float
    bwd_flops: float
    param_bytes: float
    act_bytes: float
    out_bytes: float
    fwd_ms: tuple[float, float] = (0.0, 0.0)
    bwd_ms: tuple[float, float] = (0.0, 0.0)
    fwd_points: tuple[tuple[float, float], ...] = ()
    bwd_points: tuple[tuple[float, float], ...] = ()

    def time_ms(self, batch: float) -> float:
        """Forward plus backward time of ``batch`` samples."""
        return self.fwd_time_ms(batch) + self.bwd_time_ms(batch)

    def fwd_time_ms(self, batch: float) -> float:
        """Forward time of ``batch`` samples."""
        if len(self.fwd_points) >= 2:
            return _interp(self.fwd_points, batch)
        return self.fwd_ms[0] + self.fwd_ms[1] * batch

    def bwd_time_ms(self, batch: float) -> float:
        """Backward time of ``batch`` samples."""
        if len(self.bwd_points) >= 2:
            return _interp(self.bwd_points, batch)
        return self.bwd_ms[0] + self.bwd_ms[1] * batch


def _interp(points: Sequence[tuple[float, float]], x: float) -> float:
    """Piecewise-linear through ``points``, extended along the end segments.

    Below the smallest batch the time never falls under the proportional share of the
    smallest point's (a smaller batch is not cheaper per sample).
    """
    k = 1
    while k < len(points) - 1 and x > points[k][0]:
        k += 1
    (x0, y0), (x1, y1) = points[k - 1], points[k]
    y = y0 + (y1 - y0) * (x - x0) / (x1 - x0) if x1 != x0 else y1
    b0, t0 = points[0]
    if x < b0 and b0 > 0:
        y = max(y, t0 * x / b0)
    return max(y, 0.0)


def _per_sample_monotone(points: Sequence[tuple[float, float]]) -> tuple[tuple[float, float], ...]:
    """Raise points so that time per sample never grows with the batch.

    A measured point whose time per sample is lower than a larger batch's is timing
    noise (or a cache effect that a step does not see); it is raised to the larger
    batch's per-sample time, scanning from the largest batch down.
    """
    out = [list(p) for p in points]
    for k in range(len(out) - 2, -1, -1):
        b, t = out[k]
        nb, nt = out[k + 1]
        if nb > 0:
            out[k][1] = max(t, nt * b / nb)
    return tuple((float(b), float(t)) for b, t in out)


@dataclass(frozen=True)
class ModelProfile:
    """A model as a chain of layers, ready for the cost model.

    Attributes:
        name: Model name (file stem or zoo id).
        layers: Layers in execution order.
        time_source: ``"measured"``, ``"estimated"`` or ``"none"`` (no times yet).
        torch_factory: Builds the torch module (``None`` for an ONNX file without source).
        example_inputs: Builds example inputs for a batch size (``None`` without source).
        source: What the profile was made from (path or zoo spec).
        notes: Plain-words remarks (merges, fallbacks).
    """

    name: str
    layers: tuple[LayerProfile, ...]
    time_source: str = "none"
    torch_factory: Callable[[], Any] | None = field(default=None, compare=False, repr=False)
    example_inputs: Callable[[int], tuple[Any, ...]] | None = field(
        default=None, compare=False, repr=False
    )
    source: str = ""
    notes: tuple[str, ...] = ()

    @property
    def num_layers(self) -> int:
        """Number of layers."""
        return len(self.layers)

    @property
    def param_bytes(self) -> float:
        """Bytes of all parameters."""
        return float(sum(layer.param_bytes for layer in self.layers))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description (per-sample figures)."""
        return {
            "name": self.name,
            "source": self.source,
            "time_source": self.time_source,
            "layers": [
                {
                    "name": la.name,
                    "modules": list(la.modules),
                    "fwd_flops": la.fwd_flops,
                    "bwd_flops": la.bwd_flops,
                    "param_bytes": la.param_bytes,
                    "act_bytes": la.act_bytes,
                    "out_bytes": la.out_bytes,
                    "fwd_ms": list(la.fwd_ms),
                    "bwd_ms": list(la.bwd_ms),
                    "fwd_points": [list(p) for p in la.fwd_points],
                    "bwd_points": [list(p) for p in la.bwd_points],
                }
                for la in self.layers
            ],
            "notes": list(self.notes),
        }

    def with_estimated_times(self, gflops: float, overhead_ms: float = 0.0) -> ModelProfile:
        """Times from FLOPs: ``flops / gflops`` plus a fixed ``overhead_ms`` per layer pass.

        Args:
            gflops: Sustained device throughput in GFLOP/s (> 0).
            overhead_ms: Fixed cost of running one layer once (kernel launches, dispatch).
        """
        if gflops <= 0:
            raise PlanInputError(f"device throughput must be positive, got {gflops} GFLOP/s")
        per_ms = gflops * 1e6
        layers = tuple(
            replace(
                la,
                fwd_ms=(overhead_ms, la.fwd_flops / per_ms),
                bwd_ms=(overhead_ms, la.bwd_flops / per_ms),
                fwd_points=(),
                bwd_points=(),
            )
            for la in self.layers
        )
        return replace(self, layers=layers, time_source="estimated")


# ---------------------------------------------------------------------- grouping


def _scope_key(name: str, depth: int) -> str | None:
    """Module path of a torch-exported node name at ``depth`` (``None``: no scope)."""
    if not name.startswith("/"):
        return None
    parts = name.split("/")[1:-1]
    if len(parts) < depth:
        return None if not parts else _join_scope(parts)
    return _join_scope(parts[:depth])


def _join_scope(parts: Sequence[str]) -> str:
    # The exporter names a container's child "<container>.<index>"; drop the repeat.
    path = parts[0]
    for prev, part in itertools.pairwise(parts):
        last = prev.rsplit(".", 1)[-1] if "." in prev else prev
        path += "." + (part[len(last) + 1 :] if part.startswith(last + ".") else part)
    return path


def _node_groups(g: OperatorGraph) -> tuple[list[int], list[list[str]], str]:
    """Group id per node, module paths per group, and the rule used."""
    n = g.num_nodes
    types = g.op_types
    consumers: list[list[int]] = [[] for _ in range(len(g.tensor_names))]
    for i in range(n):
        for t in g.input_tensor[g.input_ptr[i] : g.input_ptr[i + 1]]:
            consumers[int(t)].append(i)
    is_const = [types[i] in _CONST_OPS for i in range(n)]
    depth = 1
    keys = [_scope_key(nm, depth) for nm in g.node_names]
    real = {k for k, c in zip(keys, is_const, strict=True) if k is not None and not c}
    if len(real) < 2:
        depth = 2
        keys = [_scope_key(nm, depth) for nm in g.node_names]
        real = {k for k, c in zip(keys, is_const, strict=True) if k is not None and not c}
    if len(real) >= 2:
        return (*_scope_groups(g, keys, is_const, consumers), "module scopes")
    return (*_chain_groups(g, is_const, consumers), "single-tensor cuts")


def _first_consumer_group(
    g: OperatorGraph, i: int, group: list[int], consumers: list[list[int]]
) -> int:
    best = -1
    for t in g.output_tensor[g.output_ptr[i] : g.output_ptr[i + 1]]:
        for c in consumers[int(t)]:
            if group[c] >= 0 and (best < 0 or group[c] < best):
                best = group[c]
    return best


def _scope_groups(
    g: OperatorGraph,
    keys: list[str | None],
    is_const: list[bool],
    consumers: list[list[int]],
) -> tuple[list[int], list[list[str]]]:
    n = g.num_nodes
    order: list[str] = []
    span: dict[str, list[int]] = {}
    for i in range(n):
        k = keys[i]
        if k is None or is_const[i]:
            continue
        if k not in span:
            order.append(k)
            span[k] = [i, i]
        span[k][1] = i
    # Merge scopes whose spans interleave (a module called twice, shared blocks).
    merged: list[list[str]] = []
    ends: list[int] = []
    for k in sorted(order, key=lambda s: span[s][0]):
        if merged and span[k][0] <= ends[-1]:
            merged[-1].append(k)
            ends[-1] = max(ends[-1], span[k][1])
        else:
            merged.append([k])
            ends.append(span[k][1])
    of_key = {k: gi for gi, ks in enumerate(merged) for k in ks}
    starts = [span[ks[0]][0] for ks in merged]
    group = [-1] * n
    for i in range(n):
        k = keys[i]
        if not is_const[i] and k is not None:
            group[i] = of_key[k]
    # Unscoped compute joins the group before it (the first group if none).
    current = 0
    for i in range(n):
        if is_const[i]:
            continue
        if group[i] >= 0:
            current = group[i]
        else:
            before = [gi for gi, s in enumerate(starts) if s <= i]
            group[i] = max(current, before[-1] if before else 0)
    for i in reversed(range(n)):
        if is_const[i]:
            c = _first_consumer_group(g, i, group, consumers)
            group[i] = c if c >= 0 else 0
    return group, merged


def _chain_groups(
    g: OperatorGraph, is_const: list[bool], consumers: list[list[int]]
) -> tuple[list[int], list[list[str]]]:
    n = g.num_nodes
    last_use = np.full(len(g.tensor_names), -1, dtype=np.int64)
    for t, cs in enumerate(consumers):
        if cs:
            last_use[t] = max(cs)
    group = [0] * n
    gid = 0
    names: list[list[str]] = [["ops[0:"]]
    start = 0
    for i in range(n - 1):
        if is_const[i]:
            continue
        # Activations produced at or before i and still needed after i.
        live = 0
        for j in range(start, i + 1):
            for t in g.output_tensor[g.output_ptr[j] : g.output_ptr[j + 1]]:
                if g.tensor_kind[int(t)] == 0 and last_use[int(t)] > i:
                    live += 1
        group[i] = gid
        if live == 1:
            names[-1] = [f"ops[{start}:{i + 1}]"]
            gid += 1
            start = i + 1
            names.append(["ops[0:"])
    for i in range(start, n):
        group[i] = gid
    names[-1] = [f"ops[{start}:{n}]"]
    for i in reversed(range(n)):
        if is_const[i]:
            c = _first_consumer_group(g, i, group, consumers)
            group[i] = c if c >= 0 else group[i]
    return group, names


def _coarsen(fwd: list[float], limit: int) -> list[list[int]]:
    """Merge adjacent groups (lightest adjacent pair first) until ``limit`` remain."""
    parts = [[i] for i in range(len(fwd))]
    weight = list(fwd)
    while len(parts) > limit:
        k = min(range(len(parts) - 1), key=lambda j: weight[j] + weight[j + 1])
        parts[k : k + 2] = [parts[k] + parts[k + 1]]
        weight[k : k + 2] = [weight[k] + weight[k + 1]]
    return parts


def profile_graph(
    g: OperatorGraph, *, name: str | None = None, max_layers: int = 24
) -> ModelProfile:
    """Group an analyzed graph into layers and compute their per-sample costs.

    Args:
        g: The graph, analyzed at its file's batch (the batch is divided out).
        name: Model name (default: the file stem).
        max_layers: Merge adjacent layers until at most this many remain.

    Raises:
        PlanInputError: The graph has no operators, or ``max_layers`` < 1.
    """
    if g.num_nodes == 0:
        raise PlanInputError(f"{g.path}: the model has no operators to plan")
    if max_layers < 1:
        raise PlanInputError(f"max_layers must be at least 1, got {max_layers}")
    batch = 1
    if g.inputs and g.inputs[0].shape and g.inputs[0].shape[0] > 0:
        batch = int(g.inputs[0].shape[0])
    group, modules, rule = _node_groups(g)
    ng = len(modules)
    n = g.num_nodes
    weighted = np.asarray(g.params, dtype=np.float64) > 0
    flops = np.asarray(g.flops, dtype=np.float64)
    wbytes = np.asarray(g._raw["weight_bytes"], dtype=np.float64)
    fwd = np.zeros(ng)
    wfwd = np.zeros(ng)
    pbytes = np.zeros(ng)
    act = np.zeros(ng)
    for i in range(n):
        gi = group[i]
        fwd[gi] += flops[i]
        if weighted[i]:
            wfwd[gi] += flops[i]
        pbytes[gi] += wbytes[i]
        for t in g.output_tensor[g.output_ptr[i] : g.output_ptr[i + 1]]:
            if g.tensor_kind[int(t)] == 0:
                act[gi] += float(g.tensor_bytes[int(t)])
    # Bytes crossing each boundary: activations produced before it, consumed after it.
    cross = _dedupe_cross(g, group, ng)
    parts = _coarsen(list(fwd), max_layers)
    notes = [f"layers cut at {rule}"]
    if len(parts) < ng:
        notes.append(f"{ng} groups merged into {len(parts)} layers (max_layers={max_layers})")
    layers = []
    for li, idx in enumerate(parts):
        f = float(fwd[idx].sum())
        w = float(wfwd[idx].sum())
        bwd = f + (w if li > 0 else 0.0)
        mods = tuple(m for gi in idx for m in modules[gi])
        layers.append(
            LayerProfile(
                name=mods[0] if rule == "module scopes" else _span_name(mods),
                modules=mods,
                fwd_flops=f / batch,
                bwd_flops=bwd / batch,
                param_bytes=float(pbytes[idx].sum()),
                act_bytes=float(act[idx].sum()) / batch,
                out_bytes=float(cross[idx[-1]]) / batch,
            )
        )
    return ModelProfile(
        name=name or Path(str(g.path)).stem,
        layers=tuple(layers),
        source=str(g.path),
        notes=tuple(notes),
    )


def _span_name(mods: Sequence[str]) -> str:
    if len(mods) == 1:
        return mods[0]
    first = mods[0].split(":")[0]
    last = mods[-1].split(":")[1]
    return f"{first}:{last}"


def _dedupe_cross(g: OperatorGraph, group: list[int], ng: int) -> np.ndarray:
    cross = np.zeros(ng)
    last: dict[int, int] = {}
    for i in range(g.num_nodes):
        for t in g.input_tensor[g.input_ptr[i] : g.input_ptr[i + 1]]:
            ti = int(t)
            if g.tensor_kind[ti] == 0:
                last[ti] = max(last.get(ti, -1), group[i])
    for ti, gl in last.items():
        p = int(g.tensor_producer[ti])
        if p >= 0 and group[p] < gl:
            cross[group[p] : gl] += float(g.tensor_bytes[ti])
    return cross


# ---------------------------------------------------------------------- loading


def load_profile(
    model: str | os.PathLike[str], *, max_layers: int = 24, batch_size: int = 1
) -> ModelProfile:
    """Profile an ONNX file (with its optional ``.torch.json`` sidecar) or a zoo model.

    Args:
        model: ``path/to/model.onnx`` or ``zoo:FAMILY:SEED`` (``zoo:FAMILY:SEED:tiny`` for
            the tiny draw).
        max_layers: See :func:`profile_graph`.
        batch_size: Batch used to resolve dynamic batch dimensions when reading the file
            (divided out again; costs are per sample).

    Raises:
        ModelLoadError: The file is missing or not a readable ONNX model (or a subclass).
        PlanInputError: A malformed zoo spec.
    """
    import graphrec.graph

    text = os.fspath(model)
    if text.startswith("zoo:"):
        return _zoo_profile(text, max_layers=max_layers)
    path = Path(text)
    if not path.exists():
        raise ModelLoadError(path, "no such file (give an .onnx file or zoo:FAMILY:SEED)")
    g = graphrec.graph.load(path, batch_size=batch_size)
    prof = profile_graph(g, max_layers=max_layers)
    from graphrec.runtimes.inputs import torch_source_for

    src = torch_source_for(path)
    if src is None:
        return prof
    specs = [(s.dtype, s.shape or ()) for s in g.inputs]
    return replace(
        prof,
        torch_factory=src.build,
        example_inputs=lambda b: _make_inputs(specs, b),
    )


def _zoo_profile(spec: str, *, max_layers: int) -> ModelProfile:
    import tempfile

    import graphrec.graph
    from graphrec.zoo import ZooEntry

    parts = spec.split(":")
    if len(parts) not in (3, 4) or not parts[2].isdigit() or parts[3:] not in ([], ["tiny"]):
        raise PlanInputError(
            f"{spec!r}: a zoo model is written zoo:FAMILY:SEED or zoo:FAMILY:SEED:tiny"
        )
    entry = ZooEntry.sample(parts[1], int(parts[2]), tiny=len(parts) == 4)
    with tempfile.TemporaryDirectory(prefix="graphrec-plan-") as tmp:
        path = Path(tmp) / f"{entry.model_id}.onnx"
        entry.export(path)
        g = graphrec.graph.load(path)
        prof = profile_graph(g, name=entry.model_id, max_layers=max_layers)
    specs = [(s.dtype, s.shape or ()) for s in g.inputs]
    return replace(
        prof,
        source=spec,
        torch_factory=entry.build_module,
        example_inputs=lambda b: _make_inputs(specs, b),
    )


def _make_inputs(specs: Sequence[tuple[str, Sequence[int]]], batch: int) -> tuple[Any, ...]:
    import torch

    gen = torch.Generator().manual_seed(0)
    out = []
    for dtype, shape in specs:
        dims = [batch, *[max(1, int(d)) for d in list(shape)[1:]]]
        if dtype.startswith("float"):
            out.append(torch.randn(dims, generator=gen))
        else:
            out.append(torch.zeros(dims, dtype=torch.int64))
    return tuple(out)


# ---------------------------------------------------------------------- measuring


def split_module(
    prof: ModelProfile, module: Any, example: tuple[Any, ...], cuts: Sequence[int]
) -> Any:
    """Split ``module`` before the layers whose indices are in ``cuts``.

    Uses ``torch.distributed.pipelining.pipeline`` (a ``torch.export`` trace), so any
    module whose layers are called in order from its ``forward`` can be split.

    Returns:
        The ``torch.distributed.pipelining`` ``Pipe``.

    Raises:
        PlanInputError: The module cannot be traced or split there.
    """
    from torch.distributed.pipelining import SplitPoint, pipeline

    spec = {prof.layers[c].modules[0]: SplitPoint.BEGINNING for c in cuts}
    try:
        pipe = pipeline(module, mb_args=example, split_spec=spec)
    except Exception as exc:
        raise PlanInputError(
            f"{prof.name}: torch.distributed.pipelining could not split the torch module "
            f"before {sorted(spec)} ({type(exc).__name__}: {exc})"
        ) from None
    if pipe.num_stages != len(cuts) + 1:
        raise PlanInputError(
            f"{prof.name}: splitting before {sorted(spec)} gave {pipe.num_stages} stages, "
            f"not {len(cuts) + 1} (a layer is not a module called from forward)"
        )
    return pipe


def _time_stages(
    pipe: Any, example: tuple[Any, ...], repeats: int, statistic: str
) -> tuple[list[float], list[float]]:
    """Forward and backward milliseconds of each stage of ``pipe`` (min or median)."""
    import torch

    n = pipe.num_stages
    mods = [pipe.get_stage_module(i) for i in range(n)]
    fwd_t: list[list[float]] = [[] for _ in range(n)]
    bwd_t: list[list[float]] = [[] for _ in range(n)]
    for _ in range(repeats + 1):
        args: tuple[Any, ...] = example
        saved = []
        for i, m in enumerate(mods):
            ins = tuple(
                a.detach().requires_grad_(a.is_floating_point()) if hasattr(a, "detach") else a
                for a in args
            )
            t0 = time.perf_counter()
            out = m(*ins)
            fwd_t[i].append((time.perf_counter() - t0) * 1e3)
            outs = out if isinstance(out, tuple) else (out,)
            saved.append(outs)
            args = outs
        for i in reversed(range(n)):
            outs = saved[i]
            ts = [o for o in outs if hasattr(o, "requires_grad") and o.requires_grad]
            t0 = time.perf_counter()
            if ts:
                torch.autograd.backward(ts, [torch.ones_like(o) for o in ts])
            bwd_t[i].append((time.perf_counter() - t0) * 1e3)
        for m in mods:
            m.zero_grad(set_to_none=True)
    pick = np.min if statistic == "min" else np.median

    def stat(xs: list[float]) -> float:
        return float(pick(xs[1:]))  # the first pass is a warm-up

    return [stat(x) for x in fwd_t], [stat(x) for x in bwd_t]


def _time_whole(
    module: Any, example: tuple[Any, ...], repeats: int, statistic: str
) -> tuple[float, float]:
    """Forward and backward milliseconds of the whole module called once (min or median)."""
    import torch

    fwd_t: list[float] = []
    bwd_t: list[float] = []
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        out = module(*example)
        fwd_t.append((time.perf_counter() - t0) * 1e3)
        outs = [o for o in (out if isinstance(out, tuple) else (out,)) if o.requires_grad]
        t0 = time.perf_counter()
        if outs:
            torch.autograd.backward(outs, [torch.ones_like(o) for o in outs])
        bwd_t.append((time.perf_counter() - t0) * 1e3)
        module.zero_grad(set_to_none=True)
    pick = np.min if statistic == "min" else np.median
    return float(pick(fwd_t[1:])), float(pick(bwd_t[1:]))


def _rescale(parts: list[float], total: float) -> list[float]:
    """``parts`` scaled to sum to ``total`` (unchanged when they sum to nothing)."""
    have = sum(parts)
    return [p * total / have for p in parts] if have > 0 and total > 0 else parts


def measure_layer_times(
    prof: ModelProfile,
    *,
    batch_sizes: Sequence[int] = (2, 8),
    repeats: int = 5,
    threads: int = 1,
    statistic: str = "min",
    whole_model: bool = True,
) -> ModelProfile:
    """Measure each layer's forward and backward time with torch on this machine.

    The module is split before every layer, each piece run forward then backward on the
    real intermediate tensors, at each batch size. Timing the pieces one by one adds a
    call (and, backward, an autograd start) per layer that a training step pays once,
    so with ``whole_model`` the unsplit module is timed too and the layers' times at
    that batch are scaled to sum to it: the pieces give the shares, the whole module
    the total. Each layer keeps its measured points (interpolated between batch sizes,
    see :class:`LayerProfile`; a point cheaper per sample than a larger batch's is
    raised to that per-sample time) and a least-squares line
    ``fixed + per_sample * batch``.

    Args:
        prof: A profile with a torch source (zoo models, or an ONNX file with a sidecar).
        batch_sizes: At least two distinct batch sizes.
        repeats: Timed passes per batch size.
        threads: torch intra-op threads while measuring (match the ranks' setting).
        statistic: ``"min"`` (default: the uncontended time, robust on a shared machine)
            or ``"median"`` of the passes.
        whole_model: Scale the layers to the unsplit module's time (see above).

    Raises:
        PlanInputError: No torch source, or the module cannot be split at the layers.
    """
    import torch

    if prof.torch_factory is None or prof.example_inputs is None:
        raise PlanInputError(
            f"{prof.name}: no torch source to measure layers with (an ONNX file needs a "
            "model.torch.json sidecar); use estimated times instead"
        )
    if statistic not in ("min", "median"):
        raise PlanInputError(f"unknown statistic {statistic!r}; choose min or median")
    sizes = sorted(set(int(b) for b in batch_sizes))
    if len(sizes) < 2 or sizes[0] < 1:
        raise PlanInputError(f"need two distinct positive batch sizes, got {list(batch_sizes)}")
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        rows_f, rows_b = [], []
        for b in sizes:
            # The trace fixes the shapes (and consumes the module): one split per size.
            module = prof.torch_factory().train()
            example = prof.example_inputs(b)
            pipe = split_module(prof, module, example, range(1, prof.num_layers))
            f, bw = _time_stages(pipe, example, repeats, statistic)
            if whole_model:
                whole = prof.torch_factory().train()
                tf, tb = _time_whole(whole, example, repeats, statistic)
                f, bw = _rescale(f, tf), _rescale(bw, tb)
            rows_f.append(f)
            rows_b.append(bw)
    finally:
        torch.set_num_threads(old_threads)
    x = np.array(sizes, dtype=np.float64)
    layers = []
    for li, la in enumerate(prof.layers):
        yf = [r[li] for r in rows_f]
        yb = [r[li] for r in rows_b]
        layers.append(
            replace(
                la,
                fwd_ms=_fit(yf, x),
                bwd_ms=_fit(yb, x),
                fwd_points=_per_sample_monotone(tuple(zip(map(float, sizes), yf, strict=True))),
                bwd_points=_per_sample_monotone(tuple(zip(map(float, sizes), yb, strict=True))),
            )
        )
    return replace(prof, layers=tuple(layers), time_source="measured")


def _fit(y: Sequence[float], x: np.ndarray) -> tuple[float, float]:
    slope, icpt = np.polyfit(x, np.asarray(y, dtype=np.float64), 1)
    slope = max(float(slope), 0.0)
    icpt = max(float(icpt), 0.0)
    return icpt, slope
