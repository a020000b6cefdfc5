"""Tiny real ONNX models and small catalogues for the selection tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from graphrec.selection.catalogue import Catalogue, Entry
from graphrec.selection.sources import describe_onnx


def make_convnet(path: Path, channels: int, size: int = 32, seed: int = 0) -> Path:
    """Conv-Relu-Conv-Relu-GlobalAveragePool on a 1 x 3 x size x size image."""
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
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, channels, 1, 1])],
        [w1, w2],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


SMALL = [
    (
        "user/shelf-detector",
        "object-detection",
        "detect products and people on shop shelves, boxes per item",
        8,
        32,
    ),
    (
        "user/face-finder",
        "face-detection",
        "find faces in selfies and photos, a box per face",
        4,
        32,
    ),
    (
        "user/receipt-reader",
        "ocr-recognition",
        "read the printed characters of receipt text lines",
        4,
        32,
    ),
    (
        "user/big-detector",
        "object-detection",
        "detect vehicles and people in traffic camera frames",
        32,
        96,
    ),
]


def small_catalogue(tmp: Path) -> Catalogue:
    """A catalogue without the shipped entries: four user models with real ONNX files."""
    cat = Catalogue.open(tmp / "cat.sqlite", sync=False)
    for i, (mid, task, text, ch, size) in enumerate(SMALL):
        f = make_convnet(tmp / f"m{i}.onnx", ch, size, seed=i)
        cat.add(
            Entry(
                model_id=mid,
                package="user",
                version=None,
                task=task,
                format="onnx",
                description=text,
                file_path=str(f),
                **describe_onnx(f),
            )
        )
    return cat
