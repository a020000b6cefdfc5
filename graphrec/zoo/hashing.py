"""Weight-independent structural hash of an ONNX graph (used to deduplicate the zoo)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np

#: int32/int64 tensors up to this many elements hash by value (they are shapes, axes, indices;
#: 8-bit quantisation zero points depend on the weights and hash by shape only).
_SMALL_INT = 64
_INT_TYPES = {6, 7}  # TensorProto.INT32, TensorProto.INT64


def _tensor_desc(t: Any) -> list[Any]:
    from onnx import numpy_helper

    desc: list[Any] = [int(t.data_type), [int(d) for d in t.dims]]
    numel = int(np.prod(t.dims)) if len(t.dims) else 1
    if t.data_type in _INT_TYPES and numel <= _SMALL_INT:
        desc.append(numpy_helper.to_array(t).reshape(-1).tolist())
    return desc


def _value_info_desc(v: Any) -> list[Any]:
    tt = v.type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else d.dim_param for d in tt.shape.dim]
    return [int(tt.elem_type), dims]


def _attr_desc(a: Any, names: dict[str, int]) -> list[Any]:
    from onnx import helper

    if a.type == a.TENSOR:
        return [a.name, "t", _tensor_desc(a.t)]
    if a.type == a.GRAPH:
        return [a.name, "g", _graph_desc(a.g, dict(names))]
    if a.type == a.GRAPHS:
        return [a.name, "gs", [_graph_desc(g, dict(names)) for g in a.graphs]]
    if a.type == a.TENSORS:
        return [a.name, "ts", [_tensor_desc(t) for t in a.tensors]]
    value = helper.get_attribute_value(a)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    elif isinstance(value, list):
        value = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in value]
    return [a.name, int(a.type), value]


def _graph_desc(graph: Any, names: dict[str, int]) -> list[Any]:
    inits = {t.name: t for t in graph.initializer}
    out: list[Any] = []

    def ref(name: str) -> Any:
        if name == "":
            return None
        if name not in names:
            names[name] = len(names)
            if name in inits:
                out.append(["init", names[name], _tensor_desc(inits[name])])
        return names[name]

    for v in graph.input:
        if v.name not in inits:
            out.append(["input", ref(v.name), _value_info_desc(v)])
    for node in graph.node:
        ins = [ref(i) for i in node.input]
        outs = [ref(o) for o in node.output]
        attrs = sorted((_attr_desc(a, names) for a in node.attribute), key=lambda d: str(d[0]))
        out.append(["node", node.domain, node.op_type, ins, outs, attrs])
    for v in graph.output:
        out.append(["output", ref(v.name), _value_info_desc(v)])
    return out


def graph_hash(model: Any) -> str:
    """SHA-256 (hex, 32 characters) of an ONNX model's structure and shapes, not its weights.

    Tensor names are replaced by their order of first use, initializers contribute their
    dtype and shape (int32/int64 tensors of up to 64 elements also their values, because those
    are shapes and axes), and nodes contribute op type, domain, wiring and attributes. Two
    exports of one architecture with different random weights therefore hash equal.

    Args:
        model: An ``onnx.ModelProto``.

    Returns:
        The first 32 hex digits of the SHA-256 of the canonical description.
    """
    opsets = sorted((o.domain, int(o.version)) for o in model.opset_import)
    desc = [opsets, _graph_desc(model.graph, {})]
    blob = json.dumps(desc, separators=(",", ":"), sort_keys=False, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]
