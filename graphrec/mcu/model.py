"""An ONNX classifier lowered to a flat list of microcontroller steps.

The graph kernel (:func:`graphrec.graph.load`) gives the operators in topological
order and every tensor's shape; ``onnx`` gives the attribute and weight values. The
lowering:

* drops the batch dimension (batch 1) and keeps tensors contiguous in NCHW order;
* turns ``Gemm``/``MatMul`` with a constant right operand into ``dense`` steps with a
  ``[N, K]`` weight (``alpha``, ``beta`` and the transposes folded in);
* turns ``Conv`` (1-D as 2-D with height 1, grouped and depthwise) into ``conv`` steps;
  a following ``BatchNormalization`` is folded into the conv (or dense) weights, any
  other ``BatchNormalization`` becomes a depthwise 1x1 ``conv``;
* fuses a ``Relu`` that is the only consumer of a ``conv``/``dense`` output;
* removes ``Flatten``/``Reshape``/``Identity``/``Dropout`` (aliases of the same memory).

Example:
    >>> m = load_model("digits.onnx")  # doctest: +SKIP
    >>> [s.op for s in m.steps]  # doctest: +SKIP
    ['dense', 'dense', 'dense']
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from graphrec.mcu.errors import UnsupportedModelError, UnsupportedOperatorError

__all__ = ["SUPPORTED_OPS", "McuModel", "Step", "Weight", "load_model"]

#: ONNX operators the code generator handles.
SUPPORTED_OPS: tuple[str, ...] = (
    "Gemm",
    "MatMul",
    "Conv",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "BatchNormalization",
    "Relu",
    "LeakyRelu",
    "Sigmoid",
    "Tanh",
    "Softmax",
    "Add",
    "Flatten",
    "Reshape",
    "Concat",
    "Identity",
    "Dropout",
)

_ALIAS_OPS = {"Flatten", "Reshape", "Identity", "Dropout"}


@dataclass
class Weight:
    """A constant tensor of the lowered model.

    Attributes:
        name: C-safe identifier.
        values: Float values in the layout the generated code reads.
        role: ``"weight"``, ``"bias"`` or ``"const"`` (the constant operand of an Add).
        step: Index of the step that reads it.
        sources: The ONNX initializers it was made from.
        reads_per_inference: How many times one inference reads each element on average
            (the access frequency the storage plan weighs).
    """

    name: str
    values: np.ndarray
    role: str
    step: int
    sources: list[str]
    reads_per_inference: float = 1.0


@dataclass
class Step:
    """One operation of the generated code.

    Attributes:
        op: ``dense``, ``conv``, ``maxpool``, ``avgpool``, ``gmaxpool``, ``gavgpool``,
            ``relu``, ``leakyrelu``, ``sigmoid``, ``tanh``, ``softmax``, ``add``, ``concat``.
        inputs: Activation tensors read (names in :attr:`McuModel.shapes`).
        output: The activation tensor written.
        weights: Role (``"w"``, ``"b"``, ``"c"``) to weight name.
        attrs: Integer/float attributes the kernel needs.
        nodes: The ONNX nodes this step stands for.
        onnx_ops: Their operator types.
    """

    op: str
    inputs: list[str]
    output: str
    weights: dict[str, str] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)
    nodes: list[str] = field(default_factory=list)
    onnx_ops: list[str] = field(default_factory=list)


@dataclass
class McuModel:
    """A lowered model.

    Attributes:
        name: Identifier used as the C prefix.
        path: The ONNX file.
        input: Name of the (single) input tensor.
        output: Name of the (single) output tensor.
        shapes: Shape (batch dimension removed) of every activation tensor.
        alias: Tensor name to the tensor whose memory it shares (reshapes).
        steps: Steps in execution order.
        weights: Weights by name.
        initializers: The ONNX initializers (name to array), for the parameter dictionary.
        initializer_users: Initializer name to ``(node name, op type)`` that reads it.
    """

    name: str
    path: Path
    input: str
    output: str
    shapes: dict[str, tuple[int, ...]]
    alias: dict[str, str]
    steps: list[Step]
    weights: dict[str, Weight]
    initializers: dict[str, np.ndarray]
    initializer_users: dict[str, tuple[str, str]]

    def root(self, tensor: str) -> str:
        """The tensor whose memory ``tensor`` uses (itself unless it is a reshape)."""
        while tensor in self.alias:
            tensor = self.alias[tensor]
        return tensor

    def numel(self, tensor: str) -> int:
        """Elements of an activation tensor."""
        return int(np.prod(self.shapes[tensor], dtype=np.int64))

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of the input without the batch dimension."""
        return self.shapes[self.input]

    @property
    def output_shape(self) -> tuple[int, ...]:
        """Shape of the output without the batch dimension."""
        return self.shapes[self.output]


def _c_name(text: str) -> str:
    s = re.sub(r"[^0-9A-Za-z_]", "_", text)
    if not s or s[0].isdigit():
        s = "m_" + s
    return s


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    out: dict[str, Any] = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        if isinstance(v, bytes):
            v = v.decode()
        out[a.name] = v
    return out


class _Lowering:
    def __init__(self, path: Path, name: str | None) -> None:
        import onnx
        from onnx import numpy_helper

        import graphrec.graph

        self.path = path
        self.label = str(path)
        self.graph = graphrec.graph.load(path, batch_size=1)
        try:
            proto = onnx.load(str(path), load_external_data=True)
        except Exception as exc:  # onnx raises several types for broken files
            raise UnsupportedModelError(f"{path}: cannot read the weights: {exc}") from None
        self.proto = proto
        self.name = _c_name(name or path.stem)
        self.consts: dict[str, np.ndarray] = {
            t.name: numpy_helper.to_array(t) for t in proto.graph.initializer
        }
        self.nodes_by_output: dict[str, Any] = {}
        for n in proto.graph.node:
            if n.op_type == "Constant" and n.domain in ("", "ai.onnx"):
                a = _attrs(n)
                if "value" in a:
                    self.consts[n.output[0]] = numpy_helper.to_array(a["value"])
                    continue
                for key in ("value_float", "value_int"):
                    if key in a:
                        self.consts[n.output[0]] = np.array(a[key])
                if "value_floats" in a or "value_ints" in a:
                    self.consts[n.output[0]] = np.array(a.get("value_floats", a.get("value_ints")))
                continue
            if n.output:
                self.nodes_by_output[n.output[0]] = n
        self.initializer_users: dict[str, tuple[str, str]] = {}
        for n in proto.graph.node:
            for i in n.input:
                if i in self.consts and i not in self.initializer_users:
                    self.initializer_users[i] = (n.name or n.output[0], n.op_type)
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.alias: dict[str, str] = {}
        self.steps: list[Step] = []
        self.weights: dict[str, Weight] = {}
        self.consumers: dict[str, int] = {}
        for n in proto.graph.node:
            for i in n.input:
                if i:
                    self.consumers[i] = self.consumers.get(i, 0) + 1
        self.graph_outputs = [o.name for o in proto.graph.output]
        for o in self.graph_outputs:
            self.consumers[o] = self.consumers.get(o, 0) + 1

    # ---- helpers -------------------------------------------------------------------
    def shape(self, tensor: str, node: Any) -> tuple[int, ...]:
        if tensor in self.shapes:
            return self.shapes[tensor]
        try:
            full = self.graph.shape_of(tensor)
        except KeyError:
            full = None
        if full is None or any(d < 0 for d in full):
            raise UnsupportedModelError(
                f"{self.label}: the shape of tensor {tensor!r} (node {self.node_name(node)!r}) "
                "is unknown; give the model static input shapes"
            )
        dims = tuple(int(d) for d in full)
        if len(dims) >= 2 and dims[0] == 1:
            dims = dims[1:]
        elif len(dims) >= 1 and dims[0] != 1:
            raise UnsupportedModelError(
                f"{self.label}: tensor {tensor!r} has batch {dims[0]}; only batch 1 is ported"
            )
        self.shapes[tensor] = dims
        return dims

    @staticmethod
    def node_name(node: Any) -> str:
        return str(node.name or node.output[0])

    def fail(self, node: Any, detail: str = "") -> UnsupportedOperatorError:
        return UnsupportedOperatorError(self.label, node.op_type, self.node_name(node), detail)

    def const(self, tensor: str, node: Any, what: str) -> np.ndarray:
        if tensor not in self.consts:
            raise self.fail(node, f"its {what} ({tensor!r}) must be a constant initializer")
        return np.asarray(self.consts[tensor])

    def add_weight(self, base: str, values: np.ndarray, role: str, sources: list[str]) -> str:
        name = _c_name(base)
        k = 1
        while name in self.weights:
            name = f"{_c_name(base)}_{k}"
            k += 1
        self.weights[name] = Weight(
            name, np.ascontiguousarray(values, dtype=np.float64), role, len(self.steps), sources
        )
        return name

    def single_consumer(self, tensor: str) -> Any | None:
        """The node that is the only reader of ``tensor`` (None when several or an output)."""
        if self.consumers.get(tensor, 0) != 1 or tensor in self.graph_outputs:
            return None
        for n in self.proto.graph.node:
            if tensor in n.input:
                return n
        return None

    # ---- lowering ------------------------------------------------------------------
    def run(self) -> McuModel:
        inputs = [i.name for i in self.proto.graph.input if i.name not in self.consts]
        if len(inputs) != 1:
            raise UnsupportedModelError(
                f"{self.label}: {len(inputs)} inputs; graphrec port handles models with one input"
            )
        if len(self.graph_outputs) != 1:
            raise UnsupportedModelError(
                f"{self.label}: {len(self.graph_outputs)} outputs; graphrec port handles one output"
            )
        self.shape(inputs[0], self.proto.graph.input[0])
        skip: set[str] = set()
        order = self._topological_nodes()
        for node in order:
            if self.node_name(node) in skip:
                continue
            if node.domain not in ("", "ai.onnx") or node.op_type not in SUPPORTED_OPS:
                raise self.fail(
                    node,
                    f"supported operators: {', '.join(SUPPORTED_OPS)}",
                )
            getattr(self, "_op_" + node.op_type)(node, skip)
        out = self.graph_outputs[0]
        root = out
        while root in self.alias:
            root = self.alias[root]
        if root == inputs[0]:
            raise UnsupportedModelError(f"{self.label}: the model computes nothing")
        for w in self.weights.values():
            w.reads_per_inference = self._reads(w)
        return McuModel(
            name=self.name,
            path=self.path,
            input=inputs[0],
            output=out,
            shapes=self.shapes,
            alias=self.alias,
            steps=self.steps,
            weights=self.weights,
            initializers={k: v for k, v in self.consts.items() if k in self.initializer_users},
            initializer_users=self.initializer_users,
        )

    def _topological_nodes(self) -> list[Any]:
        g = self.graph
        result = []
        for i in range(g.num_nodes):
            outs = [
                g.tensor_names[int(t)]
                for t in g.output_tensor[g.output_ptr[i] : g.output_ptr[i + 1]]
            ]
            for o in outs:
                if o in self.nodes_by_output:
                    result.append(self.nodes_by_output[o])
                    break
        return result

    def _reads(self, w: Weight) -> float:
        step = self.steps[w.step]
        if step.op == "conv" and w.role == "w":
            return float(step.attrs["oh"] * step.attrs["ow"])
        if step.op == "conv" and w.role == "b":
            return float(step.attrs["oh"] * step.attrs["ow"])
        return 1.0

    def shapes_numel(self, t: str) -> int:
        return int(np.prod(self.shapes[t], dtype=np.int64))

    def _emit(self, step: Step, node: Any) -> None:
        step.nodes.append(self.node_name(node))
        step.onnx_ops.append(node.op_type)
        self.steps.append(step)

    def _fuse_after(self, step: Step, node: Any, skip: set[str]) -> None:
        """Fold a following BatchNormalization and/or Relu into a conv or dense step."""
        nxt = self.single_consumer(step.output)
        if nxt is not None and nxt.op_type == "BatchNormalization":
            scale, bias = self._bn_affine(nxt)
            w = self.weights[step.weights["w"]]
            b = self.weights[step.weights["b"]]
            shape = (-1,) + (1,) * (w.values.ndim - 1)
            w.values = w.values * scale.reshape(shape)
            b.values = b.values * scale + bias
            w.sources += [s for s in nxt.input[1:]]
            skip.add(self.node_name(nxt))
            self.shape(nxt.output[0], nxt)
            step.nodes.append(self.node_name(nxt))
            step.onnx_ops.append("BatchNormalization")
            step.output = nxt.output[0]
            nxt2 = self.single_consumer(step.output)
        else:
            nxt2 = nxt
        if nxt2 is not None and nxt2.op_type == "Relu":
            skip.add(self.node_name(nxt2))
            self.shape(nxt2.output[0], nxt2)
            step.attrs["relu"] = 1
            step.nodes.append(self.node_name(nxt2))
            step.onnx_ops.append("Relu")
            step.output = nxt2.output[0]

    def _bn_affine(self, node: Any) -> tuple[np.ndarray, np.ndarray]:
        a = _attrs(node)
        if int(a.get("training_mode", 0)):
            raise self.fail(node, "training_mode=1")
        if len(node.output) > 1 and any(node.output[1:]):
            raise self.fail(node, "running-statistics outputs (training mode)")
        eps = float(a.get("epsilon", 1e-5))
        scale, b, mean, var = (
            self.const(node.input[k], node, what).astype(np.float64)
            for k, what in ((1, "scale"), (2, "bias"), (3, "mean"), (4, "variance"))
        )
        mult = scale / np.sqrt(var + eps)
        return mult, b - mean * mult

    # ---- operators -----------------------------------------------------------------
    def _op_Gemm(self, node: Any, skip: set[str]) -> None:
        a = _attrs(node)
        x = node.input[0]
        xs = self.shape(x, node)
        if int(a.get("transA", 0)):
            raise self.fail(node, "transA=1")
        if len(xs) != 1:
            raise self.fail(node, f"input shape {xs} is not a vector")
        B = self.const(node.input[1], node, "B").astype(np.float64)
        if B.ndim != 2:
            raise self.fail(node, "B must be 2-D")
        W = B if int(a.get("transB", 0)) else B.T  # [N, K]
        W = W * float(a.get("alpha", 1.0))
        n_out = W.shape[0]
        if W.shape[1] != xs[0]:
            raise self.fail(node, f"B has {W.shape[1]} rows for an input of {xs[0]}")
        bias = np.zeros(n_out)
        sources = [node.input[1]]
        if len(node.input) > 2 and node.input[2]:
            C = self.const(node.input[2], node, "C").astype(np.float64)
            bias = np.broadcast_to(C, (1, n_out)).reshape(n_out) * float(a.get("beta", 1.0))
            sources.append(node.input[2])
        self._dense(node, x, W, bias, sources, skip)

    def _op_MatMul(self, node: Any, skip: set[str]) -> None:
        x = node.input[0]
        xs = self.shape(x, node)
        if len(xs) != 1:
            raise self.fail(node, f"input shape {xs} is not a vector")
        B = self.const(node.input[1], node, "right operand").astype(np.float64)
        if B.ndim != 2:
            raise self.fail(node, "the right operand must be 2-D")
        self._dense(node, x, B.T, np.zeros(B.shape[1]), [node.input[1]], skip)

    def _dense(
        self, node: Any, x: str, W: np.ndarray, bias: np.ndarray, sources: list[str], skip: set[str]
    ) -> None:
        out = node.output[0]
        self.shape(out, node)
        base = self.node_name(node)
        step = Step(
            "dense", [x], out, attrs={"n": int(W.shape[0]), "k": int(W.shape[1]), "relu": 0}
        )
        step.weights["w"] = self.add_weight(base + "_w", W, "weight", sources[:1])
        step.weights["b"] = self.add_weight(base + "_b", bias, "bias", sources[1:])
        self._emit(step, node)
        self._fuse_after(step, node, skip)

    @staticmethod
    def _pads(
        a: Mapping[str, Any],
        spatial: list[int],
        kernel: list[int],
        strides: list[int],
        dil: list[int],
        ceil: bool,
        node_fail: Any,
    ) -> tuple[list[int], list[int], list[int]]:
        nd = len(spatial)
        auto = str(a.get("auto_pad", "NOTSET"))
        pads = list(a.get("pads", [0] * (2 * nd)))
        begin, end = pads[:nd], pads[nd:]
        outs = []
        for i in range(nd):
            eff = (kernel[i] - 1) * dil[i] + 1
            if auto in ("SAME_UPPER", "SAME_LOWER"):
                o = -(-spatial[i] // strides[i])
                total = max(0, (o - 1) * strides[i] + eff - spatial[i])
                small = total // 2
                begin[i], end[i] = (
                    (small, total - small) if auto == "SAME_UPPER" else (total - small, small)
                )
            elif auto == "VALID":
                begin[i] = end[i] = 0
            elif auto != "NOTSET":
                raise node_fail(f"auto_pad={auto}")
            span = spatial[i] + begin[i] + end[i] - eff
            if span < 0:
                raise node_fail("the kernel is larger than the padded input")
            if ceil:
                o = -(-span // strides[i]) + 1
                if (o - 1) * strides[i] >= spatial[i] + begin[i]:
                    o -= 1
            else:
                o = span // strides[i] + 1
            outs.append(o)
        return begin, end, outs

    def _spatial(self, node: Any, xs: tuple[int, ...]) -> tuple[int, int, int, int]:
        if len(xs) == 3:
            return xs[0], xs[1], xs[2], 2
        if len(xs) == 2:
            return xs[0], 1, xs[1], 1
        raise self.fail(node, f"input shape {xs}: only 1-D and 2-D inputs are handled")

    def _op_Conv(self, node: Any, skip: set[str]) -> None:
        a = _attrs(node)
        x = node.input[0]
        xs = self.shape(x, node)
        c, h, w, nd = self._spatial(node, xs)
        W = self.const(node.input[1], node, "weight").astype(np.float64)
        if W.ndim != nd + 2:
            raise self.fail(node, f"weight rank {W.ndim} for a {nd}-D convolution")
        group = int(a.get("group", 1))
        cout = W.shape[0]
        if c % group or cout % group or W.shape[1] != c // group:
            raise self.fail(
                node, f"group={group} does not divide {c} input / {cout} output channels"
            )
        if nd == 1:
            W = W[:, :, None, :]
        kh, kw = W.shape[2], W.shape[3]
        strides = list(a.get("strides", [1] * nd))
        dil = list(a.get("dilations", [1] * nd))
        spatial = [h, w] if nd == 2 else [w]
        kernel = [kh, kw] if nd == 2 else [kw]
        begin, end, outs = self._pads(
            a, spatial, kernel, strides, dil, False, lambda d: self.fail(node, d)
        )
        if nd == 1:
            strides, dil, begin, end, outs = (
                [1, *strides],
                [1, *dil],
                [0, *begin],
                [0, *end],
                [1, *outs],
            )
        out = node.output[0]
        os_ = self.shape(out, node)
        if int(np.prod(os_)) != cout * outs[0] * outs[1]:
            raise self.fail(node, f"output shape {os_} disagrees with the computed {cout}x{outs}")
        bias = np.zeros(cout)
        sources = [node.input[1]]
        if len(node.input) > 2 and node.input[2]:
            bias = self.const(node.input[2], node, "bias").astype(np.float64).reshape(cout)
            sources.append(node.input[2])
        step = Step(
            "conv",
            [x],
            out,
            attrs={
                "c": c,
                "h": h,
                "w": w,
                "oc": cout,
                "oh": outs[0],
                "ow": outs[1],
                "kh": kh,
                "kw": kw,
                "sh": strides[0],
                "sw": strides[1],
                "dh": dil[0],
                "dw": dil[1],
                "pt": begin[0],
                "pl": begin[1],
                "group": group,
                "relu": 0,
            },
        )
        base = self.node_name(node)
        step.weights["w"] = self.add_weight(base + "_w", W, "weight", sources[:1])
        step.weights["b"] = self.add_weight(base + "_b", bias, "bias", sources[1:])
        self._emit(step, node)
        self._fuse_after(step, node, skip)

    def _pool(self, node: Any, kind: str) -> None:
        a = _attrs(node)
        x = node.input[0]
        xs = self.shape(x, node)
        c, h, w, nd = self._spatial(node, xs)
        if len(node.output) > 1 and any(node.output[1:]):
            raise self.fail(node, "the Indices output")
        if int(a.get("storage_order", 0)):
            raise self.fail(node, "storage_order=1")
        kernel = list(a["kernel_shape"])
        strides = list(a.get("strides", [1] * nd))
        dil = list(a.get("dilations", [1] * nd))
        ceil = bool(int(a.get("ceil_mode", 0)))
        spatial = [h, w] if nd == 2 else [w]
        begin, end, outs = self._pads(
            a, spatial, kernel, strides, dil, ceil, lambda d: self.fail(node, d)
        )
        if nd == 1:
            kernel, strides, dil = [1, *kernel], [1, *strides], [1, *dil]
            begin, end, outs = [0, *begin], [0, *end], [1, *outs]
        out = node.output[0]
        self.shape(out, node)
        attrs = {
            "c": c,
            "h": h,
            "w": w,
            "oh": outs[0],
            "ow": outs[1],
            "kh": kernel[0],
            "kw": kernel[1],
            "sh": strides[0],
            "sw": strides[1],
            "dh": dil[0],
            "dw": dil[1],
            "pt": begin[0],
            "pl": begin[1],
            "pb": end[0],
            "pr": end[1],
            "count_pad": int(a.get("count_include_pad", 0)),
        }
        self._emit(Step(kind, [x], out, attrs=attrs), node)

    def _op_MaxPool(self, node: Any, skip: set[str]) -> None:
        self._pool(node, "maxpool")

    def _op_AveragePool(self, node: Any, skip: set[str]) -> None:
        self._pool(node, "avgpool")

    def _global(self, node: Any, kind: str) -> None:
        x = node.input[0]
        xs = self.shape(x, node)
        if len(xs) < 2:
            raise self.fail(node, f"input shape {xs}")
        self.shape(node.output[0], node)
        hw = int(np.prod(xs[1:]))
        self._emit(Step(kind, [x], node.output[0], attrs={"c": xs[0], "hw": hw}), node)

    def _op_GlobalAveragePool(self, node: Any, skip: set[str]) -> None:
        self._global(node, "gavgpool")

    def _op_GlobalMaxPool(self, node: Any, skip: set[str]) -> None:
        self._global(node, "gmaxpool")

    def _op_BatchNormalization(self, node: Any, skip: set[str]) -> None:
        x = node.input[0]
        xs = self.shape(x, node)
        if len(xs) == 1:
            c, h, w = xs[0], 1, 1
        elif len(xs) == 2:
            c, h, w = xs[0], 1, xs[1]
        elif len(xs) == 3:
            c, h, w = xs
        else:
            raise self.fail(node, f"input shape {xs}")
        mult, bias = self._bn_affine(node)
        out = node.output[0]
        self.shape(out, node)
        step = Step(
            "conv",
            [x],
            out,
            attrs={
                "c": c,
                "h": h,
                "w": w,
                "oc": c,
                "oh": h,
                "ow": w,
                "kh": 1,
                "kw": 1,
                "sh": 1,
                "sw": 1,
                "dh": 1,
                "dw": 1,
                "pt": 0,
                "pl": 0,
                "group": c,
                "relu": 0,
            },
        )
        base = self.node_name(node)
        step.weights["w"] = self.add_weight(
            base + "_w", mult.reshape(c, 1, 1, 1), "weight", list(node.input[1:])
        )
        step.weights["b"] = self.add_weight(base + "_b", bias, "bias", [])
        self._emit(step, node)
        self._fuse_after(step, node, skip)

    def _unary(self, node: Any, kind: str, attrs: dict[str, Any] | None = None) -> None:
        x = node.input[0]
        self.shape(x, node)
        self.shape(node.output[0], node)
        self._emit(Step(kind, [x], node.output[0], attrs=attrs or {}), node)

    def _op_Relu(self, node: Any, skip: set[str]) -> None:
        self._unary(node, "relu")

    def _op_LeakyRelu(self, node: Any, skip: set[str]) -> None:
        self._unary(node, "leakyrelu", {"alpha": float(_attrs(node).get("alpha", 0.01))})

    def _op_Sigmoid(self, node: Any, skip: set[str]) -> None:
        self._unary(node, "sigmoid")

    def _op_Tanh(self, node: Any, skip: set[str]) -> None:
        self._unary(node, "tanh")

    def _op_Softmax(self, node: Any, skip: set[str]) -> None:
        x = node.input[0]
        xs = self.shape(x, node)
        opset = next(
            (o.version for o in self.proto.opset_import if o.domain in ("", "ai.onnx")), 13
        )
        axis = int(_attrs(node).get("axis", -1 if opset >= 13 else 1))
        rank = len(xs) + 1  # with the batch dimension
        axis = axis + rank if axis < 0 else axis
        if axis == 0 or not 1 <= axis < rank:
            raise self.fail(node, f"axis {axis} (the batch axis or out of range)")
        if opset >= 13:
            trailing = xs[axis:]  # dims after the softmax axis
            if any(d != 1 for d in trailing):
                raise self.fail(node, "softmax over an axis other than the last")
            inner = xs[axis - 1]
        else:
            inner = int(np.prod(xs[axis - 1 :]))
        outer = self.shapes_numel(x) // inner
        self._unary(node, "softmax", {"outer": outer, "inner": inner})

    def _op_Add(self, node: Any, skip: set[str]) -> None:
        a, b = node.input[0], node.input[1]
        out = node.output[0]
        os_ = self.shape(out, node)
        if a in self.consts and b in self.consts:
            raise self.fail(node, "both operands are constants (fold them first)")
        if a in self.consts or b in self.consts:
            x, c = (b, a) if a in self.consts else (a, b)
            xs = self.shape(x, node)
            if xs != os_:
                raise self.fail(node, f"broadcasting the activation {xs} to {os_}")
            cv = np.asarray(self.consts[c], dtype=np.float64)
            try:
                full = np.broadcast_to(cv, (1, *os_)).reshape(os_)
            except ValueError:
                raise self.fail(
                    node, f"constant of shape {cv.shape} does not broadcast to {os_}"
                ) from None
            step = Step("add", [x], out)
            step.weights["c"] = self.add_weight(self.node_name(node) + "_c", full, "const", [c])
            self._emit(step, node)
            return
        sa, sb = self.shape(a, node), self.shape(b, node)
        if sa != sb or sa != os_:
            raise self.fail(node, f"broadcasting {sa} + {sb}; both operands must have one shape")
        self._emit(Step("add", [a, b], out), node)

    def _op_Concat(self, node: Any, skip: set[str]) -> None:
        ins = [i for i in node.input if i]
        for i in ins:
            if i in self.consts:
                raise self.fail(node, f"constant operand {i!r}")
        shapes = [self.shape(i, node) for i in ins]
        out = node.output[0]
        os_ = self.shape(out, node)
        rank = len(os_) + 1
        axis = int(_attrs(node).get("axis", 1))
        axis = axis + rank if axis < 0 else axis
        if axis == 0:
            raise self.fail(node, "concatenation along the batch axis")
        outer = int(np.prod(os_[: axis - 1], dtype=np.int64))
        chunks = [int(np.prod(s[axis - 1 :], dtype=np.int64)) for s in shapes]
        self._emit(Step("concat", ins, out, attrs={"outer": outer, "chunks": chunks}), node)

    def _alias(self, node: Any, skip: set[str]) -> None:
        x = node.input[0]
        xs = self.shape(x, node)
        out = node.output[0]
        os_ = self.shape(out, node)
        if int(np.prod(xs)) != int(np.prod(os_)):
            raise self.fail(node, f"{xs} -> {os_} changes the element count")
        if node.op_type == "Dropout" and len(node.output) > 1 and node.output[1]:
            raise self.fail(node, "the mask output")
        self.alias[out] = x

    _op_Flatten = _alias
    _op_Reshape = _alias
    _op_Identity = _alias
    _op_Dropout = _alias


def load_model(path: str | os.PathLike[str], *, name: str | None = None) -> McuModel:
    """Lower an ONNX classifier to microcontroller steps.

    Args:
        path: The ``.onnx`` file (one input, one output, static shapes, batch 1).
        name: Identifier for the generated C API (default: the file name).

    Returns:
        The :class:`McuModel`.

    Raises:
        ModelLoadError: The file is missing or not ONNX (from the graph kernel).
        UnsupportedOperatorError: An operator or attribute the code generator lacks.
        UnsupportedModelError: Several inputs, unknown shapes, non-constant weights.
    """
    p = Path(path)
    return _Lowering(p, name).run()


def frac_bits_for(max_abs: float, bits: int = 8) -> int:
    """Fractional bits of a power-of-two scale that holds ``max_abs`` in ``bits`` signed bits.

    The largest ``f`` with ``max_abs * 2**f <= 2**(bits-1) - 1``, clamped to [-8, 24]
    (``bits - 1`` for an all-zero tensor).
    """
    top = (1 << (bits - 1)) - 1
    if not math.isfinite(max_abs) or max_abs <= 0:
        return bits - 1
    return int(max(-8, min(24, math.floor(math.log2(top / max_abs)))))
