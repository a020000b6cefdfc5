"""Tiny ONNX models for the graphrec port tests, built with onnx.helper."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def save_model(
    path: Path,
    nodes: list[Any],
    x_shape: tuple[int, ...],
    y_shape: tuple[int, ...] | None,
    inits: dict[str, np.ndarray],
    *,
    opset: int = 17,
) -> Path:
    """Write a one-input, one-output model (input ``x``, output ``y``)."""
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
        [
            helper.make_tensor_value_info(
                "y", TensorProto.FLOAT, None if y_shape is None else list(y_shape)
            )
        ],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    model = onnx.shape_inference.infer_shapes(model)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def out_shape(path: Path, x: np.ndarray) -> tuple[int, ...]:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return tuple(sess.run(None, {"x": x})[0].shape)


def rnd(rng: np.random.Generator, *shape: int, scale: float = 0.5) -> np.ndarray:
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def mlp(
    path: Path, sizes: tuple[int, ...] = (64, 32, 16, 10), seed: int = 0, softmax: bool = True
) -> Path:
    """An MLP classifier: Gemm + Relu layers, optional Softmax."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], {}
    prev = "x"
    for i, (k, n) in enumerate(itertools.pairwise(sizes)):
        inits[f"w{i}"] = rnd(rng, n, k, scale=1.0 / np.sqrt(k))
        inits[f"b{i}"] = rnd(rng, n, scale=0.1)
        out = f"h{i}"
        nodes.append(helper.make_node("Gemm", [prev, f"w{i}", f"b{i}"], [out], transB=1))
        prev = out
        if i < len(sizes) - 2:
            nodes.append(helper.make_node("Relu", [prev], [f"r{i}"]))
            prev = f"r{i}"
    if softmax:
        nodes.append(helper.make_node("Softmax", [prev], ["y"], axis=-1))
    else:
        nodes.append(helper.make_node("Identity", [prev], ["y"]))
    return save_model(path, nodes, (1, sizes[0]), (1, sizes[-1]), inits)


def cnn(path: Path, seed: int = 0) -> Path:
    """A small CNN classifier on 1x8x8: Conv+BN+Relu, MaxPool, depthwise Conv, Concat,
    GlobalAveragePool, Flatten, Gemm, Softmax."""
    rng = np.random.default_rng(seed)
    inits = {
        "w1": rnd(rng, 6, 1, 3, 3),
        "b1": rnd(rng, 6, scale=0.1),
        "bn_s": (1 + rnd(rng, 6, scale=0.1)).astype(np.float32),
        "bn_b": rnd(rng, 6, scale=0.1),
        "bn_m": rnd(rng, 6, scale=0.1),
        "bn_v": (1 + np.abs(rnd(rng, 6, scale=0.2))).astype(np.float32),
        "w2": rnd(rng, 6, 1, 3, 3),
        "b2": rnd(rng, 6, scale=0.1),
        "w3": rnd(rng, 8, 12, 1, 1, scale=0.3),
        "b3": rnd(rng, 8, scale=0.1),
        "fw": rnd(rng, 10, 8, scale=0.4),
        "fb": rnd(rng, 10, scale=0.1),
    }
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c1", "bn_s", "bn_b", "bn_m", "bn_v"], ["n1"]),
        helper.make_node("Relu", ["n1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1], group=6),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("Concat", ["p1", "r2"], ["cat"], axis=1),
        helper.make_node("Conv", ["cat", "w3", "b3"], ["c3"]),
        helper.make_node("Relu", ["c3"], ["r3"]),
        helper.make_node("GlobalAveragePool", ["r3"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["logits"], transB=1),
        helper.make_node("Softmax", ["logits"], ["y"], axis=1),
    ]
    return save_model(path, nodes, (1, 1, 8, 8), (1, 10), inits)
