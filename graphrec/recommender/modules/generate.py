"""Single-module ONNX models over documented parameter ranges.

Each generated file holds one module of :data:`graphrec.recommender.modules.vocab.MODULE_TYPES`
(a Conv with its BatchNorm and activation, an attention block, an LSTM, ...), with random
weights, so that a runtime executes it the way it executes that module inside a real
model. :data:`PARAM_RANGES` documents what is sampled; :func:`sample_points` draws points
(log-uniform over sizes, uniform over choices) and :func:`build_module` writes one file.

Example:
    >>> pts = sample_points({"conv": 3}, seed=0)                    # doctest: +SKIP
    >>> build_module(pts[0], "runs/modules/models")                 # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from graphrec.errors import GraphRecError

__all__ = [
    "ACTIVATIONS",
    "DEFAULT_COUNTS",
    "PARAM_RANGES",
    "ModulePoint",
    "adaptive_points",
    "build_module",
    "sample_points",
]

#: Activations a Conv / Gemm module may end with (ONNX pattern each one exports as).
ACTIVATIONS: tuple[str, ...] = ("none", "relu", "relu6", "silu", "hardswish", "leakyrelu", "gelu")

#: Documented parameter ranges, per module type: ``(low, high)`` integer ranges are sampled
#: log-uniformly, lists uniformly. ``max_gflops`` / ``max_params`` bound one point so that a
#: measurement stays short and a file small.
PARAM_RANGES: dict[str, dict[str, Any]] = {
    "conv": {
        "cin": (3, 512),
        "cout": (8, 512),
        "hw": (7, 224),
        "k": [1, 1, 3, 3, 3, 5, 7],
        "stride": [1, 1, 2],
        "bn": [0, 1],
        "act": list(ACTIVATIONS[:6]),
        "residual": [0, 0, 1],
    },
    "dwconv": {
        "c": (8, 1152),
        "hw": (7, 160),
        "k": [3, 3, 5, 7],
        "stride": [1, 1, 2],
        "bn": [0, 1],
        "act": list(ACTIVATIONS[:6]),
    },
    "gconv": {"c": (16, 512), "hw": (7, 112), "k": [1, 3], "groups": [2, 4, 8, 16], "bn": [0, 1]},
    "convtranspose": {"cin": (8, 256), "cout": (8, 256), "hw": (4, 64), "k": [2, 4]},
    "linear": {
        "m": (1, 4096),
        "k": (16, 4096),
        "n": (16, 4096),
        "act": ["none", "none", "relu", "gelu"],
    },
    "matmul": {"b": (1, 64), "m": (4, 512), "k": (8, 256), "n": (4, 512)},
    "attention": {"b": (1, 48), "s": (4, 512), "d": [16, 32, 64, 96], "mask": [0, 1]},
    "layernorm": {"rows": (1, 8192), "dim": (32, 1024)},
    "softmax": {"rows": (1, 8192), "dim": (4, 1024)},
    "lstm": {
        "seq": (4, 128),
        "batch": (1, 16),
        "input": (8, 256),
        "hidden": (16, 256),
        "dirs": [1, 2],
    },
    "gru": {
        "seq": (4, 128),
        "batch": (1, 16),
        "input": (8, 256),
        "hidden": (16, 256),
        "dirs": [1, 2],
    },
    "pool": {"c": (8, 512), "hw": (7, 112), "k": [2, 3], "stride": [1, 2], "mode": ["max", "avg"]},
    "globalpool": {"c": (8, 2048), "hw": (1, 56)},
    "resize": {"c": (8, 256), "hw": (4, 80), "scale": [2], "mode": ["nearest", "linear"]},
    "concat": {"parts": [2, 2, 3, 4], "c": (8, 256), "hw": (4, 80)},
    "transpose": {"numel": (256, 2_000_000), "perm": ["0213", "0132", "0231"]},
    "elementwise": {
        "numel": (64, 4_000_000),
        "ops": (1, 5),
        "binary": [0, 1, 1],
        "broadcast": [0, 1],
    },
    "reduce": {"rows": (1, 4096), "dim": (8, 4096)},
    "datamove": {"numel": (256, 2_000_000), "op": ["slice", "gather", "split"]},
    "identity": {},
}

#: Points per type of the first (space-filling) round of ``graphrec modules generate``.
DEFAULT_COUNTS: dict[str, int] = {
    "conv": 90,
    "dwconv": 36,
    "gconv": 16,
    "convtranspose": 8,
    "linear": 50,
    "matmul": 20,
    "attention": 30,
    "layernorm": 16,
    "softmax": 12,
    "lstm": 12,
    "gru": 8,
    "pool": 20,
    "globalpool": 12,
    "resize": 10,
    "concat": 14,
    "transpose": 14,
    "elementwise": 40,
    "reduce": 8,
    "datamove": 12,
    "identity": 4,
}

_MAX_GFLOPS = 1.5
_MAX_PARAMS = 6_000_000
_UNARY = ("Relu", "Sigmoid", "Erf", "Tanh", "HardSwish", "Clip", "Neg", "Sqrt_abs")
_BINARY = ("Add", "Mul", "Sub", "Div")


@dataclass
class ModulePoint:
    """One sampled module configuration.

    Attributes:
        module_type: A key of :data:`PARAM_RANGES`.
        params: The sampled parameters.
        batch: Leading batch dimension (the issue's configurable batch size).
        point_id: Stable id (hash of type, params and batch).
    """

    module_type: str
    params: dict[str, Any]
    batch: int = 1
    point_id: str = field(default="")

    def __post_init__(self) -> None:
        if self.module_type not in PARAM_RANGES:
            raise GraphRecError(
                f"unknown module type {self.module_type!r}; known: {sorted(PARAM_RANGES)}"
            )
        if not self.point_id:
            blob = json.dumps([self.module_type, self.params, self.batch], sort_keys=True)
            self.point_id = f"{self.module_type}-{hashlib.sha1(blob.encode()).hexdigest()[:10]}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _draw(rng: np.random.Generator, spec: Any) -> Any:
    if isinstance(spec, tuple):
        lo, hi = spec
        return round(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    return spec[int(rng.integers(len(spec)))]


def _cost_ok(t: str, p: Mapping[str, Any], batch: int) -> bool:
    """Rough FLOPs / parameter bound of a point (keeps measurements short)."""
    flops = 0.0
    params = 0.0
    if t == "conv":
        ho = p["hw"] / p["stride"]
        flops = 2 * batch * p["cin"] * p["cout"] * p["k"] ** 2 * ho * ho
        params = p["cin"] * p["cout"] * p["k"] ** 2
    elif t == "gconv":
        flops = 2 * batch * p["c"] * p["c"] / p["groups"] * p["k"] ** 2 * p["hw"] ** 2
    elif t == "convtranspose":
        flops = 2 * batch * p["cin"] * p["cout"] * p["k"] ** 2 * p["hw"] ** 2
    elif t == "linear":
        flops = 2 * batch * p["m"] * p["k"] * p["n"]
        params = p["k"] * p["n"]
    elif t == "matmul":
        flops = 2 * batch * p["b"] * p["m"] * p["k"] * p["n"]
    elif t == "attention":
        flops = 4 * batch * p["b"] * p["s"] ** 2 * p["d"]
    elif t in ("lstm", "gru"):
        gates = 4 if t == "lstm" else 3
        flops = 2 * p["seq"] * batch * p["batch"] * gates * p["hidden"] * (p["input"] + p["hidden"])
        flops *= p["dirs"]
    return flops <= _MAX_GFLOPS * 1e9 and params <= _MAX_PARAMS


def sample_points(
    counts: Mapping[str, int],
    *,
    seed: int = 0,
    batches: Sequence[int] = (1,),
    ranges: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[ModulePoint]:
    """Draw module points: ``counts[type]`` per type, over ``ranges`` (:data:`PARAM_RANGES`).

    Args:
        counts: Points per module type.
        seed: Random seed.
        batches: Batch sizes, drawn uniformly per point.
        ranges: Parameter ranges overriding :data:`PARAM_RANGES` per type.

    Raises:
        GraphRecError: An unknown module type.
    """
    rng = np.random.default_rng(seed)
    space = {**PARAM_RANGES, **(ranges or {})}
    out: list[ModulePoint] = []
    for t, n in counts.items():
        if t not in space:
            raise GraphRecError(f"unknown module type {t!r}; known: {sorted(space)}")
        got = 0
        tries = 0
        while got < n and tries < 100 * max(n, 1):
            tries += 1
            p = {k: _draw(rng, v) for k, v in space[t].items()}
            b = int(batches[int(rng.integers(len(batches)))])
            if t == "conv" and p["residual"] and (p["stride"] != 1 or p["cin"] != p["cout"]):
                p["cout"] = p["cin"]
                p["stride"] = 1
            if t == "gconv":
                p["c"] = max(p["groups"], p["c"] // p["groups"] * p["groups"])
            if t == "identity":
                p = {"numel": int(rng.choice([4, 64, 1024]))}
            if not _cost_ok(t, p, b):
                continue
            out.append(ModulePoint(t, p, b))
            got += 1
    return out


# ---------------------------------------------------------------------------- ONNX building
class _G:
    """A tiny ONNX graph builder (names, initializers, nodes)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self.inputs: list[Any] = []
        self.n = 0

    def name(self, base: str) -> str:
        self.n += 1
        return f"{base}_{self.n}"

    def input(self, shape: Sequence[int]) -> str:
        from onnx import TensorProto, helper

        nm = f"input_{len(self.inputs)}"
        self.inputs.append(helper.make_tensor_value_info(nm, TensorProto.FLOAT, list(shape)))
        return nm

    def weight(self, shape: Sequence[int], scale: Any = None, dtype: Any = None) -> str:
        from onnx import numpy_helper

        nm = self.name("w")
        if dtype is not None:
            arr = np.broadcast_to(np.asarray(scale, dtype=dtype), tuple(shape)).copy()
        else:
            fan = max(1, int(np.prod(shape[1:])) if len(shape) > 1 else 1)
            s = (1.0 / math.sqrt(fan)) if scale is None else scale
            arr = (self.rng.standard_normal(shape) * s).astype(np.float32)
        self.inits.append(numpy_helper.from_array(arr, nm))
        return nm

    def node(self, op: str, inputs: Sequence[str], n_out: int = 1, **attrs: Any) -> list[str]:
        from onnx import helper

        outs = [self.name(op.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op, list(inputs), outs, name=self.name(op), **attrs))
        return outs

    def act(self, x: str, act: str) -> str:
        if act == "none":
            return x
        if act == "relu":
            return self.node("Relu", [x])[0]
        if act == "relu6":
            lo = self.weight([], dtype=np.float32, scale=0.0)
            hi = self.weight([], dtype=np.float32, scale=6.0)
            return self.node("Clip", [x, lo, hi])[0]
        if act == "silu":
            s = self.node("Sigmoid", [x])[0]
            return self.node("Mul", [x, s])[0]
        if act == "hardswish":
            return self.node("HardSwish", [x])[0]
        if act == "leakyrelu":
            return self.node("LeakyRelu", [x], alpha=0.1)[0]
        if act == "gelu":  # what torch.onnx exports for exact GELU at opset 17
            c = self.weight([], dtype=np.float32, scale=math.sqrt(2.0))
            one = self.weight([], dtype=np.float32, scale=1.0)
            half = self.weight([], dtype=np.float32, scale=0.5)
            d = self.node("Div", [x, c])[0]
            e = self.node("Erf", [d])[0]
            a = self.node("Add", [e, one])[0]
            m = self.node("Mul", [x, a])[0]
            return self.node("Mul", [m, half])[0]
        raise GraphRecError(f"unknown activation {act!r}; known: {list(ACTIVATIONS)}")

    def bn(self, x: str, c: int) -> str:
        scale = self.weight([c], dtype=np.float32, scale=1.0)
        bias = self.weight([c], dtype=np.float32, scale=0.0)
        mean = self.weight([c], dtype=np.float32, scale=0.0)
        var = self.weight([c], dtype=np.float32, scale=1.0)
        return self.node("BatchNormalization", [x, scale, bias, mean, var], epsilon=1e-5)[0]

    def model(self, outputs: Sequence[str], name: str) -> Any:
        from onnx import TensorProto, helper

        outs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs]
        g = helper.make_graph(self.nodes, name, self.inputs, outs, self.inits)
        m = helper.make_model(
            g, opset_imports=[helper.make_opsetid("", 17)], producer_name="graphrec-modules"
        )
        m.ir_version = 8
        return m


def _conv(g: _G, x: str, cin: int, cout: int, k: int, stride: int, groups: int) -> str:
    w = g.weight([cout, cin // groups, k, k])
    b = g.weight([cout], scale=0.01)
    pad = k // 2
    return g.node(
        "Conv",
        [x, w, b],
        kernel_shape=[k, k],
        strides=[stride, stride],
        pads=[pad, pad, pad, pad],
        group=groups,
    )[0]


def _build(g: _G, t: str, p: Mapping[str, Any], n: int) -> list[str]:
    if t == "identity":
        x = g.input([n, int(p["numel"])])
        return g.node("Identity", [x])
    if t in ("conv", "dwconv", "gconv"):
        cin = int(p.get("cin", p.get("c", 8)))
        cout = int(p.get("cout", cin))
        groups = cin if t == "dwconv" else int(p.get("groups", 1))
        x = g.input([n, cin, p["hw"], p["hw"]])
        y = _conv(g, x, cin, cout, int(p.get("k", 3)), int(p.get("stride", 1)), groups)
        if p.get("bn"):
            y = g.bn(y, cout)
        if p.get("residual"):
            y = g.node("Add", [y, x])[0]
        return [g.act(y, str(p.get("act", "none")))]
    if t == "convtranspose":
        x = g.input([n, p["cin"], p["hw"], p["hw"]])
        w = g.weight([p["cin"], p["cout"], p["k"], p["k"]])
        return g.node("ConvTranspose", [x, w], kernel_shape=[p["k"], p["k"]], strides=[2, 2])
    if t == "linear":
        x = g.input([n, p["m"], p["k"]] if p["m"] > 1 else [n, p["k"]])
        w = g.weight([p["k"], p["n"]])
        b = g.weight([p["n"]], scale=0.01)
        if p["m"] == 1:
            y = g.node("Gemm", [x, w, b])[0]
        else:
            y = g.node("Add", [g.node("MatMul", [x, w])[0], b])[0]
        return [g.act(y, p["act"])]
    if t == "matmul":
        a = g.input([n, p["b"], p["m"], p["k"]])
        bb = g.input([n, p["b"], p["k"], p["n"]])
        return g.node("MatMul", [a, bb])
    if t == "attention":
        q = g.input([n, p["b"], p["s"], p["d"]])
        k = g.input([n, p["b"], p["d"], p["s"]])
        v = g.input([n, p["b"], p["s"], p["d"]])
        s = g.node("MatMul", [q, k])[0]
        scale = g.weight([], dtype=np.float32, scale=1.0 / math.sqrt(p["d"]))
        s = g.node("Mul", [s, scale])[0]
        if p["mask"]:
            mask = g.weight([1, 1, p["s"], p["s"]], scale=0.1)
            s = g.node("Add", [s, mask])[0]
        a = g.node("Softmax", [s], axis=-1)[0]
        return g.node("MatMul", [a, v])
    if t == "layernorm":
        x = g.input([n, p["rows"], p["dim"]])
        sc = g.weight([p["dim"]], dtype=np.float32, scale=1.0)
        bi = g.weight([p["dim"]], dtype=np.float32, scale=0.0)
        return g.node("LayerNormalization", [x, sc, bi], axis=-1, epsilon=1e-5)
    if t == "softmax":
        x = g.input([n, p["rows"], p["dim"]])
        return g.node("Softmax", [x], axis=-1)
    if t in ("lstm", "gru"):
        gates = 4 if t == "lstm" else 3
        h, d = int(p["hidden"]), int(p["dirs"])
        x = g.input([p["seq"], n * p["batch"], p["input"]])
        w = g.weight([d, gates * h, p["input"]])
        r = g.weight([d, gates * h, h])
        b = g.weight([d, 2 * gates * h], scale=0.01)
        direction = "bidirectional" if d == 2 else "forward"
        op = "LSTM" if t == "lstm" else "GRU"
        outs = g.node(op, [x, w, r, b], n_out=1, hidden_size=h, direction=direction)
        return outs
    if t == "pool":
        x = g.input([n, p["c"], p["hw"], p["hw"]])
        op = "MaxPool" if p["mode"] == "max" else "AveragePool"
        pad = 1 if p["k"] == 3 else 0
        return g.node(
            op, [x], kernel_shape=[p["k"], p["k"]], strides=[p["stride"]] * 2, pads=[pad] * 4
        )
    if t == "globalpool":
        x = g.input([n, p["c"], p["hw"], p["hw"]])
        return g.node("GlobalAveragePool", [x])
    if t == "resize":
        x = g.input([n, p["c"], p["hw"], p["hw"]])
        sc = g.weight([4], dtype=np.float32, scale=np.array([1, 1, p["scale"], p["scale"]]))
        return g.node("Resize", [x, "", sc], mode=p["mode"])
    if t == "concat":
        xs = [g.input([n, p["c"], p["hw"], p["hw"]]) for _ in range(int(p["parts"]))]
        return g.node("Concat", xs, axis=1)
    if t == "transpose":
        side = max(2, round((p["numel"] / 4) ** (1 / 3)))
        x = g.input([n, 4, side, side * side])
        perm = [int(c) for c in p["perm"]]
        return g.node("Transpose", [x], perm=perm)
    if t == "elementwise":
        cols = 256 if p["numel"] >= 4096 else 16
        x = g.input([n, max(1, p["numel"] // cols), cols])
        rng = g.rng
        y = x
        for i in range(int(p["ops"])):
            if p["binary"] and i % 2 == 0:
                op = _BINARY[int(rng.integers(len(_BINARY)))]
                shape = [cols] if p["broadcast"] else [max(1, p["numel"] // cols), cols]
                other = g.weight(shape, scale=1.0)
                if op == "Div":
                    other = g.node("Abs", [other])[0]
                    other = g.node("Add", [other, g.weight([], dtype=np.float32, scale=1.0)])[0]
                y = g.node(op, [y, other])[0]
            else:
                op = _UNARY[int(rng.integers(len(_UNARY)))]
                if op == "Clip":
                    lo = g.weight([], dtype=np.float32, scale=0.0)
                    hi = g.weight([], dtype=np.float32, scale=6.0)
                    y = g.node("Clip", [y, lo, hi])[0]
                elif op == "Sqrt_abs":
                    y = g.node("Sqrt", [g.node("Abs", [y])[0]])[0]
                else:
                    y = g.node(op, [y])[0]
        return [y]
    if t == "reduce":
        x = g.input([n, p["rows"], p["dim"]])
        return g.node("ReduceMean", [x], axes=[-1], keepdims=1)
    if t == "datamove":
        cols = 64
        rows = max(2, p["numel"] // cols)
        x = g.input([n, rows, cols])
        if p["op"] == "slice":
            st = g.weight([1], dtype=np.int64, scale=0)
            en = g.weight([1], dtype=np.int64, scale=rows // 2)
            ax = g.weight([1], dtype=np.int64, scale=1)
            return g.node("Slice", [x, st, en, ax])
        if p["op"] == "gather":
            idx = g.weight([rows // 2], dtype=np.int64, scale=np.arange(0, rows // 2 * 2, 2))
            return g.node("Gather", [x, idx], axis=1)
        sp = g.weight([2], dtype=np.int64, scale=np.array([rows // 2, rows - rows // 2]))
        return g.node("Split", [x, sp], n_out=2, axis=1)
    raise GraphRecError(f"no builder for module type {t!r}")


def build_module(point: ModulePoint, out_dir: str | Path, *, seed: int = 0) -> Path:
    """Write the ONNX file of one module point; returns its path (kept when present).

    Raises:
        GraphRecError: The point cannot be built (unknown type or parameter).
    """
    import onnx

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{point.point_id}-b{point.batch}.onnx"
    if path.exists():
        return path
    g = _G(np.random.default_rng(seed + int(point.point_id.rsplit("-", 1)[-1], 16) % 10_000))
    outputs = _build(g, point.module_type, point.params, int(point.batch))
    model = g.model(outputs, point.point_id)
    tmp = path.with_suffix(".tmp")
    onnx.save(model, str(tmp))
    tmp.replace(path)
    return path


def _perturb(
    rng: np.random.Generator, t: str, p: Mapping[str, Any], spread: float
) -> dict[str, Any]:
    out = dict(p)
    space = PARAM_RANGES.get(t, {})
    for k, spec in space.items():
        if isinstance(spec, tuple) and k in out:
            lo, hi = spec
            v = float(out[k]) * math.exp(rng.normal(0.0, spread))
            out[k] = int(min(max(round(v), lo), hi))
        elif isinstance(spec, list) and k in out and rng.random() < 0.25:
            out[k] = _draw(rng, spec)
    return out


def adaptive_points(
    points: Sequence[ModulePoint],
    errors: Mapping[str, float],
    n: int,
    *,
    threshold: float = 0.10,
    spread: float = 0.35,
    seed: int = 1,
) -> list[ModulePoint]:
    """New points near the points whose cross-validated error exceeds ``threshold``.

    nn-Meter's adaptive sampling: a point predicted badly marks a region of the parameter
    space the data does not cover well enough, so new points are drawn around it (sizes
    perturbed log-normally by ``spread``, choices re-drawn with probability 1/4). Points
    are picked with probability proportional to their error, so the worst regions, of
    whichever module type, get the most.

    Args:
        points: The points already measured (their parameters are perturbed).
        errors: Cross-validated relative error by point id.
        n: Points to draw.
        threshold: Only points predicted worse than this seed new ones.
        spread: Standard deviation of the log-normal size perturbation.
        seed: Random seed.
    """
    rng = np.random.default_rng(seed)
    pool = [p for p in points if errors.get(p.point_id, 0.0) > threshold]
    if not pool or n <= 0:
        return []
    w = np.array([errors[p.point_id] for p in pool])
    w = w / w.sum()
    out: list[ModulePoint] = []
    tries = 0
    while len(out) < n and tries < 50 * n:
        tries += 1
        base = pool[int(rng.choice(len(pool), p=w))]
        q = _perturb(rng, base.module_type, base.params, spread)
        if base.module_type == "conv" and q.get("residual"):
            q["cout"], q["stride"] = q["cin"], 1
        if base.module_type == "gconv":
            q["c"] = max(q["groups"], q["c"] // q["groups"] * q["groups"])
        if not _cost_ok(base.module_type, q, base.batch):
            continue
        out.append(ModulePoint(base.module_type, q, base.batch))
    return out
