"""Tiny ONNX models for the recommender tests, built with onnx.helper."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _save(nodes: list, inputs: list, outputs: list, inits: list, path: Path) -> Path:
    graph = helper.make_graph(nodes, path.stem, inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def make_mlp(path: Path, width: int, depth: int, seed: int = 0) -> Path:
    """``depth`` MatMul+Add+Relu layers of ``width`` on a 1 x 32 input."""
    rng = np.random.default_rng(seed)
    nodes, inits, cur, d_in = [], [], "x", 32
    for i in range(depth):
        w = numpy_helper.from_array(
            (rng.standard_normal((d_in, width)) / np.sqrt(d_in)).astype(np.float32), f"w{i}"
        )
        b = numpy_helper.from_array(np.zeros(width, np.float32), f"b{i}")
        inits += [w, b]
        nodes += [
            helper.make_node("MatMul", [cur, f"w{i}"], [f"m{i}"]),
            helper.make_node("Add", [f"m{i}", f"b{i}"], [f"a{i}"]),
            helper.make_node("Relu", [f"a{i}"], [f"h{i}"]),
        ]
        cur, d_in = f"h{i}", width
    nodes[-1] = helper.make_node("Relu", [f"a{depth - 1}"], ["y"])
    return _save(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, width])],
        inits,
        path,
    )


def make_convnet(path: Path, channels: int, seed: int = 0, *, dynamic_batch: bool = False) -> Path:
    """Conv-Relu-Conv-Relu-GlobalAveragePool on a 1 x 3 x 32 x 32 image."""
    rng = np.random.default_rng(seed)
    w1 = numpy_helper.from_array(
        (rng.standard_normal((channels, 3, 3, 3)) * 0.2).astype(np.float32), "w1"
    )
    w2 = numpy_helper.from_array(
        (rng.standard_normal((channels, channels, 3, 3)) * 0.1).astype(np.float32), "w2"
    )
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("GlobalAveragePool", ["r2"], ["y"]),
    ]
    batch: int | str = "N" if dynamic_batch else 1
    return _save(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, 32, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, channels, 1, 1])],
        [w1, w2],
        path,
    )
