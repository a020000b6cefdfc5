"""Module detection on single-module models and on a model made of several modules."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from graphrec import graph
from graphrec.recommender.modules.generate import ModulePoint, build_module
from graphrec.recommender.modules.vocab import MODULE_TYPES, detect_modules, feature_names

CASES = [
    (
        "conv",
        {"cin": 8, "cout": 8, "hw": 16, "k": 3, "stride": 1, "bn": 1, "act": "silu", "residual": 1},
        "conv",
    ),
    ("dwconv", {"c": 16, "hw": 12, "k": 5, "stride": 2, "bn": 1, "act": "relu6"}, "dwconv"),
    ("gconv", {"c": 16, "hw": 8, "k": 3, "groups": 4, "bn": 0}, "gconv"),
    ("linear", {"m": 6, "k": 32, "n": 24, "act": "gelu"}, "linear"),
    ("attention", {"b": 2, "s": 8, "d": 16, "mask": 1}, "attention"),
    ("lstm", {"seq": 5, "batch": 2, "input": 8, "hidden": 16, "dirs": 2}, "lstm"),
    ("gru", {"seq": 5, "batch": 2, "input": 8, "hidden": 16, "dirs": 1}, "gru"),
    ("pool", {"c": 8, "hw": 16, "k": 3, "stride": 2, "mode": "max"}, "pool"),
    ("elementwise", {"numel": 4096, "ops": 4, "binary": 1, "broadcast": 1}, "elementwise"),
    ("datamove", {"numel": 1024, "op": "split"}, "datamove"),
]


@pytest.mark.parametrize(("gen", "params", "expected"), CASES)
def test_single_module_model_is_one_module(
    tmp_path: Path, gen: str, params: dict, expected: str
) -> None:
    path = build_module(ModulePoint(gen, params, batch=2), tmp_path)
    mods = detect_modules(graph.load(path))
    assert [m.module_type for m in mods] == [expected]
    assert set(mods[0].features) == set(feature_names(expected))


def test_conv_features_read_the_shapes(tmp_path: Path) -> None:
    p = {"c": 16, "hw": 12, "k": 5, "stride": 2, "bn": 1, "act": "relu6"}
    (m,) = detect_modules(graph.load(build_module(ModulePoint("dwconv", p, batch=2), tmp_path)))
    f = m.features
    assert (f["batch"], f["cin"], f["cout"], f["h"], f["ho"], f["k"], f["stride"]) == (
        2,
        16,
        16,
        12,
        6,
        5,
        2,
    )
    assert f["n_ops"] == 3  # Conv, BatchNormalization, Clip


def _two_module_model(path: Path) -> Path:
    from onnx import TensorProto, helper, numpy_helper, save

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((8, 4, 3, 3)).astype(np.float32), "w")
    shape = numpy_helper.from_array(np.array([1, -1], dtype=np.int64), "shape")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Reshape", ["p", "shape"], ["y"]),
    ]
    g = helper.make_graph(
        nodes,
        "two",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [w, shape],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    save(m, str(path))
    return path


def test_model_cut_into_modules_free_ops_in_none(tmp_path: Path) -> None:
    g = graph.load(_two_module_model(tmp_path / "two.onnx"))
    mods = detect_modules(g)
    assert [m.module_type for m in mods] == ["conv", "pool"]
    assert [[g.op_types[i] for i in m.nodes] for m in mods] == [["Conv", "Relu"], ["MaxPool"]]
    assert all(m.module_type in MODULE_TYPES for m in mods)
