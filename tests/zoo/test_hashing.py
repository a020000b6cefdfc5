"""Tests of the structural graph hash."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from graphrec.zoo import graph_hash


def _model(prefix: str, weight: np.ndarray, shape: list[int]) -> onnx.ModelProto:
    w = numpy_helper.from_array(weight.astype(np.float32), f"{prefix}w")
    target = numpy_helper.from_array(np.array(shape, dtype=np.int64), f"{prefix}shape")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", [f"{prefix}x", f"{prefix}w"], [f"{prefix}y"]),
            helper.make_node("Reshape", [f"{prefix}y", f"{prefix}shape"], [f"{prefix}z"]),
            helper.make_node("Relu", [f"{prefix}z"], [f"{prefix}out"], name=f"{prefix}relu"),
        ],
        "g",
        [helper.make_tensor_value_info(f"{prefix}x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info(f"{prefix}out", TensorProto.FLOAT, shape)],
        [w, target],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_hash_ignores_weights_and_names() -> None:
    rng = np.random.default_rng(0)
    a = _model("a_", rng.normal(size=(4, 6)), [2, 3])
    b = _model("other/", rng.normal(size=(4, 6)), [2, 3])
    assert graph_hash(a) == graph_hash(b)
    assert len(graph_hash(a)) == 32


def test_hash_sees_shapes_and_shape_constants() -> None:
    rng = np.random.default_rng(0)
    base = graph_hash(_model("", rng.normal(size=(4, 6)), [2, 3]))
    assert graph_hash(_model("", rng.normal(size=(4, 6)), [3, 2])) != base
    assert graph_hash(_model("", rng.normal(size=(4, 8)), [2, 4])) != base


def test_hash_sees_op_types_and_attributes() -> None:
    rng = np.random.default_rng(0)
    m = _model("", rng.normal(size=(4, 6)), [2, 3])
    base = graph_hash(m)
    m.graph.node[2].op_type = "Sigmoid"
    assert graph_hash(m) != base
    m.graph.node[2].op_type = "Relu"
    assert graph_hash(m) == base
    m.graph.node[2].attribute.append(helper.make_attribute("alpha", 0.1))
    assert graph_hash(m) != base
