"""Module vocabulary and detection: the kernel's operator graph cut into modules.

A module is what a runtime executes as one unit: a Conv with its BatchNorm, residual Add
and activation; a MatMul/Gemm with its bias and activation; an attention block
(MatMul -> scale/mask -> Softmax -> MatMul); an LSTM/GRU; a pooling; a Resize; a Concat;
a chain of elementwise operators; and so on (:data:`MODULE_TYPES`). Operators that
compute nothing at run time (Identity, Reshape, Constant, shape arithmetic, anything fed
only by weights, which every runtime folds) belong to no module.

:func:`detect_modules` cuts a :class:`~graphrec.graph.OperatorGraph`; each
:class:`Module` carries the numeric features its regressor reads
(:func:`module_features`). The same code cuts the single-module models of
:mod:`graphrec.recommender.modules.generate`, so training and prediction read the same
features.

Example:
    >>> from graphrec import graph                                   # doctest: +SKIP
    >>> mods = detect_modules(graph.load("model.onnx"))              # doctest: +SKIP
    >>> [m.module_type for m in mods][:3]                            # doctest: +SKIP
    ['conv', 'dwconv', 'conv']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from graphrec.graph import OperatorGraph

__all__ = [
    "ELEMENTWISE_OPS",
    "FREE_OPS",
    "MODULE_TYPES",
    "Module",
    "detect_modules",
    "feature_names",
    "module_features",
]

#: The module vocabulary.
MODULE_TYPES: tuple[str, ...] = (
    "conv",
    "dwconv",
    "gconv",
    "convtranspose",
    "linear",
    "matmul",
    "attention",
    "layernorm",
    "softmax",
    "lstm",
    "gru",
    "pool",
    "globalpool",
    "resize",
    "concat",
    "transpose",
    "elementwise",
    "reduce",
    "datamove",
    "other",
)

#: Operators that copy nothing or are folded by every runtime.
FREE_OPS: frozenset[str] = frozenset(
    {
        "Identity",
        "Constant",
        "Reshape",
        "Flatten",
        "Squeeze",
        "Unsqueeze",
        "Shape",
        "Size",
        "ConstantOfShape",
        "Dropout",
    }
)

#: Elementwise operators (epilogues of a Conv / Gemm, or chains of their own).
ELEMENTWISE_OPS: frozenset[str] = frozenset(
    {
        "Add",
        "Sub",
        "Mul",
        "Div",
        "Pow",
        "Sqrt",
        "Abs",
        "Neg",
        "Exp",
        "Log",
        "Erf",
        "Tanh",
        "Sigmoid",
        "Relu",
        "LeakyRelu",
        "PRelu",
        "Elu",
        "Selu",
        "Clip",
        "HardSigmoid",
        "HardSwish",
        "Gelu",
        "Softplus",
        "Mish",
        "Reciprocal",
        "Min",
        "Max",
        "Where",
        "Equal",
        "Not",
        "Cast",
        "BatchNormalization",
        "InstanceNormalization",
    }
)
_TRANSCENDENTAL = frozenset({"Exp", "Log", "Erf", "Tanh", "Sigmoid", "Pow", "Sqrt", "Div", "Elu"})
_TRANSCENDENTAL |= frozenset({"Softplus", "Mish", "Gelu", "Reciprocal", "HardSwish", "Selu"})
_DATAMOVE = frozenset(
    {"Slice", "Gather", "Split", "Pad", "Expand", "Tile", "GatherElements", "ScatterND"}
)
_MAX_EPILOGUE = 8


@dataclass
class Module:
    """One detected module.

    Attributes:
        module_type: One of :data:`MODULE_TYPES`.
        nodes: Indices of its operators in the graph (topological order).
        features: Its numeric features by name (see :func:`feature_names`).
    """

    module_type: str
    nodes: list[int]
    features: dict[str, float] = field(default_factory=dict)


# ------------------------------------------------------------------ graph helpers
class _View:
    """Adjacency and per-tensor facts of an OperatorGraph the detector needs."""

    def __init__(self, g: OperatorGraph) -> None:
        self.g = g
        n = g.num_nodes
        self.ops = g.op_types
        self.ins: list[list[int]] = [
            [int(t) for t in g.input_tensor[g.input_ptr[i] : g.input_ptr[i + 1]] if t >= 0]
            for i in range(n)
        ]
        self.outs: list[list[int]] = [
            [int(t) for t in g.output_tensor[g.output_ptr[i] : g.output_ptr[i + 1]]]
            for i in range(n)
        ]
        self.consumers: dict[int, list[int]] = {}
        for i, ts in enumerate(self.ins):
            for t in ts:
                self.consumers.setdefault(t, []).append(i)
        kind = g.tensor_kind
        dyn = np.zeros(len(g.tensor_names), dtype=bool)
        dyn[kind == 2] = True
        for i in range(n):  # topological order
            d = any(dyn[t] for t in self.ins[i])
            for t in self.outs[i]:
                dyn[t] = d
        self.dynamic = dyn
        nf = g.node_features
        self.flops = nf[:, 0] if n else np.zeros(0)
        self.params = nf[:, 2] if n else np.zeros(0)
        self.bytes_read = nf[:, 4] if n else np.zeros(0)
        self.bytes_written = nf[:, 5] if n else np.zeros(0)

    def dyn_ins(self, i: int) -> list[int]:
        return [t for t in self.ins[i] if self.dynamic[t]]

    def shape(self, t: int) -> tuple[int, ...]:
        s = self.g.tensor_shape(t)
        return tuple(int(d) for d in s) if s else ()

    def numel(self, t: int) -> float:
        return float(max(int(self.g.tensor_numel[t]), 0))

    def is_free(self, i: int) -> bool:
        op = self.ops[i]
        if op in FREE_OPS or not self.dyn_ins(i):
            return True
        outs = self.outs[i]
        return bool(
            outs
            and all(
                self.g.tensor_dtype_name(t) in ("int64", "int32", "bool") and self.numel(t) <= 64
                for t in outs
            )
        )


def _grow_epilogue(v: _View, mod: list[int], taken: set[int], allow_external: int) -> int:
    """Absorb elementwise consumers of the module's outputs (in place); returns how many
    external dynamic inputs were admitted (a residual Add)."""
    members = set(mod)
    produced = {t for i in mod for t in v.outs[i]}
    external = 0
    grown = 0
    changed = True
    while changed and grown < _MAX_EPILOGUE:
        changed = False
        last_outs = [t for i in mod for t in v.outs[i]]
        for t in last_outs:
            for c in sorted(v.consumers.get(t, [])):
                if c in members or c in taken or v.ops[c] not in ELEMENTWISE_OPS:
                    continue
                outside = [x for x in v.dyn_ins(c) if x not in produced]
                if len(outside) > allow_external - external:
                    continue
                if outside and v.numel(outside[0]) != v.numel(t):
                    continue
                # a residual Add joins the later of its two producers (what OpenVINO's
                # runtime model shows: the Add is fused into the Conv that finishes last)
                if any(int(v.g.tensor_producer[x]) > mod[0] for x in outside):
                    continue
                if v.numel(v.outs[c][0]) != v.numel(t):
                    continue
                external += len(outside)
                mod.append(c)
                members.add(c)
                produced.update(v.outs[c])
                grown += 1
                changed = True
                break
            if changed:
                break
    return external


def _attention(v: _View, s: int, taken: set[int]) -> list[int] | None:
    """The attention block around Softmax node ``s``, or ``None``."""
    chain: list[int] = []
    cur = s
    for _ in range(4):  # back through scale / mask operators to the score MatMul
        dins = v.dyn_ins(cur)
        if not dins:
            return None
        p = int(v.g.tensor_producer[dins[0]])
        if p < 0 or p in taken:
            return None
        if v.ops[p] == "MatMul" and len(v.dyn_ins(p)) == 2:
            chain.append(p)
            break
        if v.ops[p] not in ELEMENTWISE_OPS:
            return None
        chain.append(p)
        cur = p
    else:
        return None
    if v.ops[chain[-1]] != "MatMul":
        return None
    cons = v.consumers.get(v.outs[s][0], [])
    if len(cons) != 1 or v.ops[cons[0]] != "MatMul" or cons[0] in taken:
        return None
    return sorted([*chain, s, cons[0]])


def detect_modules(g: OperatorGraph) -> list[Module]:
    """Cut a graph into modules (each operator in at most one; free operators in none)."""
    v = _View(g)
    taken: set[int] = set()
    mods: list[Module] = []
    n = g.num_nodes
    for i in range(n):  # attention first: its MatMuls must not become plain matmuls
        if v.ops[i] == "Softmax" and i not in taken:
            blk = _attention(v, i, taken)
            if blk:
                taken.update(blk)
                mods.append(Module("attention", blk))
    for i in range(n):
        if i in taken or v.is_free(i):
            continue
        op = v.ops[i]
        mod = [i]
        taken.add(i)
        if op in ("Conv", "ConvTranspose"):
            ext = _grow_epilogue(v, mod, taken, allow_external=1 if op == "Conv" else 0)
            t = "convtranspose" if op == "ConvTranspose" else _conv_kind(v, i)
            mods.append(Module(t, mod, {"residual": float(ext)}))
        elif op == "Gemm" or (op == "MatMul" and len(v.dyn_ins(i)) == 1):
            _grow_epilogue(v, mod, taken, allow_external=0)
            mods.append(Module("linear", mod))
        elif op == "MatMul":
            mods.append(Module("matmul", mod))
        elif op == "LayerNormalization":
            mods.append(Module("layernorm", mod))
        elif op in ("Softmax", "LogSoftmax"):
            mods.append(Module("softmax", mod))
        elif op in ("LSTM", "GRU", "RNN"):
            mods.append(Module("gru" if op == "GRU" else "lstm", mod))
        elif op in ("MaxPool", "AveragePool"):
            mods.append(Module("pool", mod))
        elif op in ("GlobalAveragePool", "GlobalMaxPool"):
            mods.append(Module("globalpool", mod))
        elif op in ("ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceL2"):
            mods.append(Module("reduce", mod))
        elif op == "Resize" or op == "Upsample":
            mods.append(Module("resize", mod))
        elif op == "Concat":
            mods.append(Module("concat", mod))
        elif op == "Transpose":
            mods.append(Module("transpose", mod))
        elif op in _DATAMOVE:
            mods.append(Module("datamove", mod))
        elif op in ELEMENTWISE_OPS:
            _grow_epilogue(v, mod, taken, allow_external=len(mod) + _MAX_EPILOGUE)
            mods.append(Module("elementwise", mod))
        else:
            mods.append(Module("other", mod))
        taken.update(mod)
    for m in mods:
        m.nodes.sort()
        m.features = {**module_features(v, m), **m.features}
    mods.sort(key=lambda m: m.nodes[0])
    return mods


def _conv_kind(v: _View, i: int) -> str:
    ins = v.ins[i]
    x, w = v.shape(ins[0]), v.shape(ins[1]) if len(ins) > 1 else ()
    if len(x) < 2 or len(w) < 2:
        return "conv"
    groups = max(1, x[1] // max(w[1], 1))
    if groups == 1:
        return "conv"
    return "dwconv" if groups == x[1] and w[0] % max(groups, 1) == 0 else "gconv"


# ------------------------------------------------------------------ features
_COMMON = (
    "flops",
    "bytes",
    "params",
    "in_numel",
    "out_numel",
    "n_ops",
    "n_epilogue",
    "n_transcendental",
)
_SPECIFIC: dict[str, tuple[str, ...]] = {
    "conv": ("batch", "cin", "cout", "h", "w", "ho", "wo", "k", "stride", "residual"),
    "dwconv": ("batch", "cin", "cout", "h", "w", "ho", "wo", "k", "stride", "residual"),
    "gconv": ("batch", "cin", "cout", "h", "w", "ho", "wo", "k", "groups", "residual"),
    "convtranspose": ("batch", "cin", "cout", "h", "w", "ho", "wo", "k"),
    "linear": ("m", "k", "n"),
    "matmul": ("b", "m", "k", "n"),
    "attention": ("b", "sq", "sk", "d", "dv"),
    "layernorm": ("rows", "dim"),
    "softmax": ("rows", "dim"),
    "lstm": ("seq", "batch", "input", "hidden", "dirs"),
    "gru": ("seq", "batch", "input", "hidden", "dirs"),
    "pool": ("batch", "c", "h", "w", "ho", "wo", "k", "is_max"),
    "globalpool": ("batch", "c", "h", "w"),
    "resize": ("batch", "c", "h", "w", "ho", "wo"),
    "concat": ("parts", "c_out", "inner"),
    "transpose": ("rank", "inner_moved"),
    "elementwise": ("n_binary", "n_external"),
    "reduce": ("rows", "dim"),
    "datamove": ("is_gather", "is_slice", "is_split"),
    "other": (),
}


def feature_names(module_type: str) -> tuple[str, ...]:
    """The feature columns of one module type (common ones first)."""
    return _COMMON + _SPECIFIC.get(module_type, ())


def module_features(v: _View, m: Module) -> dict[str, float]:
    """Numeric features of a module (sizes and costs as counts; regressors take their log)."""
    nodes = m.nodes
    head = nodes[0]
    member = set(nodes)
    produced = {t for i in nodes for t in v.outs[i]}
    ext_in = sorted({t for i in nodes for t in v.dyn_ins(i) if t not in produced})
    outs = [t for i in nodes for t in v.outs[i] if not set(v.consumers.get(t, [])) <= member]
    if not outs:
        outs = v.outs[nodes[-1]]
    flops = float(v.flops[nodes].sum())
    params = float(v.params[nodes].sum())
    traffic = sum(4.0 * v.numel(t) for t in ext_in) + sum(4.0 * v.numel(t) for t in outs)
    traffic += 4.0 * params
    ops = [v.ops[i] for i in nodes]
    f: dict[str, float] = {
        "flops": flops,
        "bytes": traffic,
        "params": params,
        "in_numel": sum(v.numel(t) for t in ext_in),
        "out_numel": sum(v.numel(t) for t in outs),
        "n_ops": float(len(nodes)),
        "n_epilogue": float(max(0, len(nodes) - 1)) if m.module_type != "attention" else 0.0,
        "n_transcendental": float(sum(o in _TRANSCENDENTAL for o in ops)),
    }
    t = m.module_type
    x = v.shape(v.ins[head][0]) if v.ins[head] else ()
    y = v.shape(v.outs[head][0]) if v.outs[head] else ()
    if t in ("conv", "dwconv", "gconv", "convtranspose", "pool", "globalpool", "resize"):
        x4 = ([*list(x), 1, 1, 1, 1])[:4]
        y4 = ([*list(y), 1, 1, 1, 1])[:4]
        f.update(batch=x4[0], cin=x4[1], c=x4[1], h=x4[2], w=x4[3], cout=y4[1], ho=y4[2], wo=y4[3])
        if t in ("conv", "dwconv", "gconv", "convtranspose"):
            w = v.shape(v.ins[head][1]) if len(v.ins[head]) > 1 else ()
            f["k"] = float(w[-1]) if len(w) == 4 else 1.0
            f["groups"] = float(max(1, x4[1] // max(w[1], 1))) if len(w) == 4 else 1.0
            f["stride"] = (
                float(max(1, round(x4[2] / max(y4[2], 1)))) if t != "convtranspose" else 1.0
            )
        if t == "pool":
            f["k"] = float(max(1, round(x4[2] / max(y4[2], 1))))  # refined below when known
            f["is_max"] = float(v.ops[head] == "MaxPool")
    elif t in ("linear", "matmul"):
        m_rows = float(np.prod(x[:-1])) if len(x) > 1 else 1.0
        kdim = float(x[-1]) if x else 1.0
        ndim = float(y[-1]) if y else 1.0
        if t == "matmul":
            b = float(np.prod(y[:-2])) if len(y) > 2 else 1.0
            f.update(b=b, m=float(y[-2]) if len(y) > 1 else 1.0, k=kdim, n=ndim)
        else:
            f.update(m=m_rows, k=kdim, n=ndim)
    elif t == "attention":
        q = v.shape(v.ins[nodes[0]][0])
        s = v.shape(v.outs[nodes[0]][0])
        o = v.shape(v.outs[nodes[-1]][0])
        f.update(
            b=float(np.prod(s[:-2])) if len(s) > 2 else 1.0,
            sq=float(s[-2]) if len(s) > 1 else 1.0,
            sk=float(s[-1]) if s else 1.0,
            d=float(q[-1]) if q else 1.0,
            dv=float(o[-1]) if o else 1.0,
        )
    elif t in ("layernorm", "softmax", "reduce"):
        f.update(rows=float(np.prod(x[:-1])) if len(x) > 1 else 1.0, dim=float(x[-1]) if x else 1.0)
    elif t in ("lstm", "gru"):
        w = v.shape(v.ins[head][1]) if len(v.ins[head]) > 1 else ()
        r = v.shape(v.ins[head][2]) if len(v.ins[head]) > 2 else ()
        x3 = ([*list(x), 1, 1, 1])[:3]
        f.update(
            seq=x3[0],
            batch=x3[1],
            input=x3[2],
            hidden=float(r[-1]) if r else 1.0,
            dirs=float(w[0]) if w else 1.0,
        )
    elif t == "concat":
        f.update(
            parts=float(len(v.dyn_ins(head))),
            c_out=float(y[1]) if len(y) > 1 else 1.0,
            inner=float(np.prod(y[2:])) if len(y) > 2 else 1.0,
        )
    elif t == "transpose":
        f.update(rank=float(len(x)), inner_moved=float(len(x) > 0 and y[-1:] != x[-1:]))
    elif t == "elementwise":
        f.update(
            n_binary=float(sum(len(v.ins[i]) > 1 for i in nodes)),
            n_external=float(len(ext_in)),
        )
    elif t == "datamove":
        op = v.ops[head]
        f.update(
            is_gather=float(op.startswith("Gather")),
            is_slice=float(op == "Slice"),
            is_split=float(op == "Split"),
        )
    return {k: float(f.get(k, 0.0)) for k in feature_names(t) if k not in ("residual",)} | (
        {"residual": 0.0} if "residual" in feature_names(t) else {}
    )


def feature_matrix(mods: Sequence[Module], module_type: str) -> np.ndarray:
    """Features of the modules of one type as a float64 matrix (rows in order)."""
    names = feature_names(module_type)
    return np.array(
        [[m.features.get(k, 0.0) for k in names] for m in mods if m.module_type == module_type],
        dtype=np.float64,
    ).reshape(-1, len(names))
