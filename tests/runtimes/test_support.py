"""Operator support probes: signatures, single-operator cuts, real probes, blockers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from graphrec.errors import ModelLoadError
from graphrec.runtimes.support import (
    OpSignature,
    SupportTable,
    blockers,
    load_tables,
    op_signatures,
    probe_models,
    single_op_models,
)


def _conv_model(path: Path, *, batch: int = 1, depthwise: bool = False) -> Path:
    """x[b,4,8,8] -> Conv(4->4, plain or depthwise) -> Relu -> QuantizeLinear -> Dequant."""
    rng = np.random.default_rng(0)
    cin = 4
    w = rng.standard_normal((4, 1 if depthwise else cin, 3, 3)).astype(np.float32)
    nodes = [
        helper.make_node(
            "Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1], group=cin if depthwise else 1
        ),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("QuantizeLinear", ["r", "s", "z"], ["q"], name="quant"),
        helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"], name="dequant"),
    ]
    inits = [
        numpy_helper.from_array(w, "w"),
        numpy_helper.from_array(np.array(0.05, np.float32), "s"),
        numpy_helper.from_array(np.array(0, np.uint8), "z"),
    ]
    g = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, cin, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        inits,
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, str(path))
    return path


def test_signatures_tell_depthwise_from_plain_conv_but_not_the_group_count(tmp_path: Path) -> None:
    plain = op_signatures(_conv_model(tmp_path / "p.onnx"))
    dw = op_signatures(_conv_model(tmp_path / "d.onnx", depthwise=True))
    assert set(plain) == {"conv", "relu", "quant", "dequant"}
    assert "group=1" in plain["conv"].attrs
    assert "group=depthwise" in dw["conv"].attrs
    assert plain["conv"].key != dw["conv"].key
    assert plain["relu"].key == dw["relu"].key
    assert plain["conv"].inputs == ("f32:4:x", "f32:4:w")
    sig = plain["conv"]
    assert OpSignature.from_dict(sig.to_dict()) == sig
    assert sig.describe().startswith("Conv (f32 rank 4")


def test_shape_inference_leaves_the_weights_in_place(tmp_path: Path) -> None:
    """Large weights skip shape inference as typed inputs; the model handed back (cut into
    single-operator probes) keeps them, and its inputs, unchanged."""
    from graphrec.runtimes.inputs import model_spec
    from graphrec.runtimes.support import _inferred

    path = _conv_model(tmp_path / "p.onnx")
    model = onnx.load(str(path))
    m, types, weights = _inferred(model, model_spec(path))
    assert [vi.name for vi in m.graph.input] == ["x"]
    assert [t.SerializeToString() for t in m.graph.initializer] == [
        t.SerializeToString() for t in model.graph.initializer
    ]
    assert types["c"].dims == (1, 4, 8, 8) and types["w"].dims == (4, 4, 3, 3)
    assert {"w", "s", "z"} <= weights and "c" not in weights


def test_a_cut_operator_computes_what_it_computes_inside_the_model(tmp_path: Path) -> None:
    model = _conv_model(tmp_path / "m.onnx")
    singles = single_op_models(model, tmp_path / "ops")
    by_op = {s.signature.op_type: s for s in singles}
    assert {"Conv", "Relu", "QuantizeLinear"} <= set(by_op)
    # DequantizeLinear reads only an integer tensor: nothing to feed, so it is not cut.
    assert "DequantizeLinear" not in by_op
    # The Relu cut, fed the Conv's output of the full model, gives the full model's Relu.
    full = onnx.load(str(model))
    full.graph.output.append(onnx.ValueInfoProto(name="c"))
    full.graph.output.append(onnx.ValueInfoProto(name="r"))
    x = np.random.default_rng(0).standard_normal((1, 4, 8, 8)).astype(np.float32)
    sess = ort.InferenceSession(full.SerializeToString(), providers=["CPUExecutionProvider"])
    c, r = sess.run(["c", "r"], {"x": x})
    relu = ort.InferenceSession(str(by_op["Relu"].path), providers=["CPUExecutionProvider"])
    (out,) = relu.run(None, {"c": c})
    np.testing.assert_array_equal(out, r)
    # Skipped signatures are not cut again.
    again = single_op_models(model, tmp_path / "ops2", skip=[s.signature.key for s in singles])
    assert again == []


def test_probe_runs_the_real_runtimes_and_blockers_name_the_operator(tmp_path: Path) -> None:
    model = _conv_model(tmp_path / "m.onnx")
    cands = ["onnxruntime/cpu/fp32/opt=all/threads=1", "tract/cpu/fp32/threads=1"]
    tables = probe_models([model], candidates=cands, out_dir=tmp_path / "t", known={})
    assert set(tables) == {"onnxruntime", "tract"}
    ort_table = tables["onnxruntime"]
    assert ort_table.version == ort.__version__
    statuses = {
        e["signature"]["op_type"]: e["results"]["onnxruntime/cpu/fp32/opt=all"][0]
        for e in ort_table.entries.values()
    }
    assert statuses == {"Conv": "ok", "Relu": "ok", "QuantizeLinear": "ok"}
    saved = load_tables([tmp_path / "t"])
    assert {t.runtime for ts in saved.values() for t in ts} == {"onnxruntime", "tract"}
    # A second probe finds nothing new to do.
    again = probe_models(
        [model], candidates=cands, out_dir=tmp_path / "t", known=load_tables([tmp_path / "t"])
    )
    assert again["onnxruntime"].entries.keys() == ort_table.entries.keys()

    # Blockers: a table that says Relu failed blocks the candidate and names it.
    broken = SupportTable("onnxruntime", ort_table.version, {})
    relu_sig = op_signatures(model)["relu"]
    broken.add(relu_sig, cands[0], "load_failed", "Relu kernel missing\nmore", "m.onnx:relu")
    found = blockers(model, cands, tables={"onnxruntime": [broken]})
    b = found[cands[0]]
    assert b is not None and b.kind == "operator" and b.status == "load_failed"
    assert "Relu (f32 rank 4)" in b.reason and ort_table.version in b.reason
    assert "Relu kernel missing" in b.reason and "more" not in b.reason
    assert found[cands[1]] is None
    # The table of another version does not count.
    old = SupportTable("onnxruntime", "0.0.1", broken.entries)
    assert blockers(model, cands[:1], tables={"onnxruntime": [old]})[cands[0]] is None


def test_adapter_rules_block_too(tmp_path: Path) -> None:
    model = _conv_model(tmp_path / "b2.onnx", batch=2)
    found = blockers(model, ["ncnn/cpu/fp32/threads=1"], tables={})
    b = found["ncnn/cpu/fp32/threads=1"]
    assert b is not None and b.kind == "rule" and "batch" in b.reason


def test_bad_files_get_a_named_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage" * 10)
    with pytest.raises(ModelLoadError, match=r"bad\.onnx"):
        op_signatures(bad)
    with pytest.raises(ModelLoadError, match=r"bad\.onnx"):
        single_op_models(bad, tmp_path / "ops")
    junk = tmp_path / "tables"
    junk.mkdir()
    (junk / "x.json").write_text("{not json")
    assert load_tables([junk]) == {}


def test_reconcile_clears_failures_of_operators_that_ran_in_a_whole_model(tmp_path: Path) -> None:
    from graphrec.bench.harness import run_campaign
    from graphrec.bench.protocol import MeasureConfig
    from graphrec.bench.store import ResultStore
    from graphrec.runtimes.support import reconcile

    model = _conv_model(tmp_path / "m.onnx")
    cid = "onnxruntime/cpu/fp32/opt=all/threads=1"
    cfg = MeasureConfig(warmup_runs=0, min_runs=1, max_runs=3, min_time_s=0.0, max_time_s=0.02)
    with ResultStore(tmp_path / "s.sqlite") as store:
        rows = run_campaign([model], store=store, patterns=[cid], threads=(1,), config=cfg)
    assert [r["status"] for r in rows] == ["ok"]
    table = SupportTable("onnxruntime", ort.__version__, {})
    relu = op_signatures(model)["relu"]
    table.add(relu, cid, "run_failed", "cut model failed", "m.onnx:relu")
    assert blockers(model, [cid], tables={"onnxruntime": [table]})[cid] is not None
    changed = reconcile({"onnxruntime": table}, [tmp_path / "s.sqlite"])
    assert changed == {"onnxruntime": 1}
    assert table.ran_in_context(cid, relu.key)
    assert blockers(model, [cid], tables={"onnxruntime": [table]})[cid] is None
    # Another version's rows are no evidence.
    other = SupportTable("onnxruntime", "0.0.1", {})
    other.add(relu, cid, "run_failed", "x", "m.onnx:relu")
    assert reconcile({"onnxruntime": other}, [tmp_path / "s.sqlite"]) == {}
