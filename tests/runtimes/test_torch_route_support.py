"""What the torch-route runtimes (graphrec's ONNX -> torch converter, then torch or
torch.export) can run: the graph rules, checked against the real converter and
torch.export, and a real single-operator probe through the harness."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from graphrec.runtimes.convert import GRAPHREC_CONVERTER, ConversionError, onnx_torch_module
from graphrec.runtimes.support import (
    SupportTable,
    blockers,
    load_tables,
    probe_models,
    route_check,
    route_rules,
    tables_for,
    uses_converter,
)

KINDS = {
    "torch/eager/fp32",
    "torch/torchscript/fp32",
    "litert/xnnpack/fp32",
    "executorch/xnnpack/fp32",
}


def _save(path: Path, nodes: list, inputs: list, inits: list | None = None) -> Path:
    g = helper.make_graph(
        nodes,
        "g",
        inputs,
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        inits or [],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, str(path))
    return path


def _x(shape: list[int]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)


def test_an_operator_without_a_converter_rule_blocks_every_torch_route_kind(tmp_path: Path) -> None:
    model = _save(
        tmp_path / "cumsum.onnx",
        [helper.make_node("CumSum", ["x", "ax"], ["y"])],
        [_x([1, 8])],
        [numpy_helper.from_array(np.array(1, np.int64), "ax")],
    )
    rules = route_rules(model)
    assert set(rules) == KINDS
    assert all("CumSum" in r for r in rules.values())
    with pytest.raises(ConversionError, match="CumSum"):
        onnx_torch_module(str(model))
    found = blockers(model, ["litert/xnnpack/fp32/threads=1"], tables={})
    b = found["litert/xnnpack/fp32/threads=1"]
    assert b is not None and b.kind == "rule" and "CumSum" in b.reason


def test_a_shape_computed_at_run_time_fails_the_converter_everywhere(tmp_path: Path) -> None:
    # Reshape's target shape is derived from the values of x (not its shape).
    nodes = [
        helper.make_node("ReduceMax", ["x"], ["m"], keepdims=0),
        helper.make_node("Cast", ["m"], ["mi"], to=TensorProto.INT64),
        helper.make_node("Unsqueeze", ["mi", "zero"], ["mi1"]),
        helper.make_node("Concat", ["one", "mi1"], ["shape"], axis=0),
        helper.make_node("Reshape", ["x", "shape"], ["y"]),
    ]
    inits = [
        numpy_helper.from_array(np.array([0], np.int64), "zero"),
        numpy_helper.from_array(np.array([-1], np.int64), "one"),
    ]
    model = _save(tmp_path / "dyn.onnx", nodes, [_x([2, 4])], inits)
    rules = route_rules(model)
    assert set(rules) == KINDS
    assert "Reshape input 1" in rules["torch/eager/fp32"]
    net = onnx_torch_module(str(model))
    with pytest.raises(ConversionError, match="computed at run time"):
        net(torch.full((2, 4), 2.0))


def test_resize_scales_computed_at_run_time_fail_only_under_torch_export(tmp_path: Path) -> None:
    # scales = [1, 1, s, s] with s = 2 + ReduceMax(x)*0 (a run-time value that is 2.0)
    nodes = [
        helper.make_node("ReduceMax", ["x"], ["m"], keepdims=1),
        helper.make_node("Reshape", ["m", "ax0"], ["m1"]),
        helper.make_node("Mul", ["m1", "zero"], ["m0"]),
        helper.make_node("Add", ["m0", "two"], ["s1"]),
        helper.make_node("Concat", ["ones", "s1", "s1"], ["scales"], axis=0),
        helper.make_node("Resize", ["x", "", "scales"], ["y"], mode="nearest"),
    ]
    inits = [
        numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
        numpy_helper.from_array(np.array(2.0, np.float32), "two"),
        numpy_helper.from_array(np.array([1], np.int64), "ax0"),
        numpy_helper.from_array(np.array([1.0, 1.0], np.float32), "ones"),
    ]
    model = _save(tmp_path / "resize.onnx", nodes, [_x([1, 2, 4, 4])], inits)
    rules = route_rules(model)
    assert set(rules) == {"litert/xnnpack/fp32", "executorch/xnnpack/fp32"}
    assert "torch.export" in rules["litert/xnnpack/fp32"]
    net = onnx_torch_module(str(model))
    x = torch.randn(1, 2, 4, 4)
    assert tuple(net(x).shape) == (1, 2, 8, 8)  # eager torch runs it
    with pytest.raises(Exception, match="numpy"):
        torch.export.export(net, (x,))


def test_constant_shapes_are_no_blocker(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "i0"], ["b"]),
        helper.make_node("Unsqueeze", ["b", "ax0"], ["b1"]),
        helper.make_node("Concat", ["b1", "m1"], ["shape"], axis=0),
        helper.make_node("Reshape", ["x", "shape"], ["y"]),
    ]
    inits = [
        numpy_helper.from_array(np.array(0, np.int64), "i0"),
        numpy_helper.from_array(np.array([0], np.int64), "ax0"),
        numpy_helper.from_array(np.array([-1], np.int64), "m1"),
    ]
    model = _save(tmp_path / "flat.onnx", nodes, [_x([2, 3, 4])], inits)
    assert route_rules(model) == {}
    net = onnx_torch_module(str(model))
    x = torch.randn(2, 3, 4)
    torch.export.export(net, (x,))  # and torch.export takes it


def test_torch_route_probe_through_the_harness(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["y"], name="relu"),
    ]
    inits = [numpy_helper.from_array(rng.standard_normal((4, 4, 3, 3)).astype(np.float32), "w")]
    model = _save(tmp_path / "m.onnx", nodes, [_x([1, 4, 8, 8])], inits)
    cid = "torch/eager/fp32/threads=1"
    tables = probe_models([model], candidates=[cid], out_dir=tmp_path / "t", known={})
    t = tables["torch"]
    assert t.converter == GRAPHREC_CONVERTER and torch.__version__.startswith(t.version)
    statuses = {
        e["signature"]["op_type"]: e["results"]["torch/eager/fp32"][0] for e in t.entries.values()
    }
    assert statuses == {"Conv": "ok", "Relu": "ok"}
    saved = json.loads((tmp_path / "t" / t.filename).read_text())
    assert saved["converter"] == GRAPHREC_CONVERTER
    # A failing entry blocks a bare file, not a model with its own torch module.
    failing = {
        k: {"signature": e["signature"], "results": {"torch/eager/fp32": ["run_failed", "broke"]}}
        for k, e in t.entries.items()
    }
    broken = SupportTable("torch", t.version, failing, converter=GRAPHREC_CONVERTER)
    assert uses_converter(model)
    b = blockers(model, [cid], tables={"torch": [broken]})[cid]
    assert b is not None and b.kind == "operator"
    side = model.with_suffix(".torch.json")
    side.write_text(json.dumps({"factory": "torch.nn:Identity", "kwargs": {}}))
    assert not uses_converter(model)
    assert tables_for({"torch": [broken]}, "torch", None, converted=False) == []
    assert blockers(model, [cid], tables={"torch": [broken]})[cid] is None
    # A table of another converter does not speak for this one.
    other = SupportTable("torch", t.version, broken.entries, converter="onnx2torch/0")
    assert tables_for({"torch": [other]}, "torch", None, converted=True) == []
    assert load_tables([tmp_path / "t"])["torch"][0].converter == GRAPHREC_CONVERTER


def test_the_route_check_runs_the_converted_model_and_its_failure_blocks(tmp_path: Path) -> None:
    from graphrec.runtimes.inputs import file_sha256

    good = _save(tmp_path / "relu.onnx", [helper.make_node("Relu", ["x"], ["y"])], [_x([2, 3])])
    assert route_check(good) == ("ok", "")
    bad = _save(
        tmp_path / "topk.onnx",
        [helper.make_node("TopK", ["x", "k"], ["y", "i"])],
        [_x([2, 5])],
        [numpy_helper.from_array(np.array([2], np.int64), "k")],
    )
    st, err = route_check(bad)
    assert st == "convert_failed" and "TopK" in err
    table = SupportTable("executorch", "1", {}, converter=GRAPHREC_CONVERTER)
    table.models[file_sha256(good)] = ["wrong_output", "max_rel_err 0.5", "relu.onnx"]
    cid = "executorch/xnnpack/fp32/threads=1"
    b = blockers(good, [cid], tables={"executorch": [table]}, versions={"executorch": "1"})[cid]
    assert b is not None and b.kind == "probe" and "wrong_output" in b.reason
    saved = SupportTable.load(table.save(tmp_path / "t"))
    assert saved.models == table.models
