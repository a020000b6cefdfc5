"""Tests of the zoo families that mimic real exports (converter styles, control flow, state,
tiny models, OCR, int8, dynamic shapes) and of their ONNX rewrites."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from graphrec.errors import ZooError
from graphrec.zoo import FAMILIES, ZooEntry, generate, read_manifest
from graphrec.zoo.entry import torch_module
from graphrec.zoo.families import _rewrite

NEW = ("paddle_cnn", "tf_nhwc_cnn", "vad_stream", "rnn_decoder", "tiny_mlp", "ocr_rec", "ocr_det")
#: The families before these were added, in their order (generation cycles in this order).
OLD = [
    "resnet",
    "vgg",
    "mobilenet_v1",
    "mobilenet_v2",
    "mobilenet_v3",
    "efficientnet",
    "shufflenet_v2",
    "squeezenet",
    "densenet",
    "ghostnet",
    "regnet",
    "convnext",
    "nb201",
    "vit",
    "bert",
    "gpt",
    "mlp_mixer",
    "rnn",
    "unet",
    "ssd",
    "yolo",
    "audio_cnn",
]


def _session(data: bytes) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])


def _variant(family: str, **changes: Any) -> ZooEntry:
    """The tiny entry of ``family`` with some parameters changed (never written to disk)."""
    tiny = ZooEntry.sample(family, 0, tiny=True)
    return ZooEntry(family, 0, {**tiny.params, **changes}, "fp32", True)


def _ops(model: onnx.ModelProto) -> Counter[str]:
    return Counter(n.op_type for n in model.graph.node)


def _torch(entry: ZooEntry, *inputs: torch.Tensor) -> list[np.ndarray]:
    with torch.no_grad():
        out = entry.build_module()(*inputs)
    return [o.numpy() for o in (out if isinstance(out, tuple) else (out,))]


def _close(got: list[np.ndarray], want: list[np.ndarray]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(w).max())))


def test_new_families_are_appended_after_the_old_ones() -> None:
    assert list(FAMILIES)[: len(OLD)] == OLD
    assert set(NEW) <= set(FAMILIES)


# --------------------------------------------------------------------------- rewrites


def _small_model() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.normal(size=(4, 6)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.normal(size=(6,)).astype(np.float32), "b")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["y"]),
            helper.make_node("Add", ["y", "b"], ["z"]),
            helper.make_node("Relu", ["z"], ["r"]),
            helper.make_node("Tanh", ["r"], ["out"]),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [2, 6])],
        [w, b],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_rewrites_keep_the_function_and_are_deterministic() -> None:
    base = _small_model().SerializeToString()
    new = _rewrite.apply(base, constants=True, identity=(3, 1.0, 2), dynamic={"x": {0: "N"}})
    assert new == _rewrite.apply(
        base, constants=True, identity=(3, 1.0, 2), dynamic={"x": {0: "N"}}
    )
    model = onnx.load_from_string(new)
    onnx.checker.check_model(model, full_check=True)
    ops = _ops(model)
    assert len(model.graph.initializer) == 0 and ops["Constant"] == 2
    assert ops["Identity"] >= 3  # every inner edge (y, z, r) got a chain of 1-2
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"
    assert model.graph.output[0].type.tensor_type.shape.dim[0].dim_param == "N"
    x = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)
    want = _session(base).run(None, {"x": x[:2]})[0]
    got = _session(new).run(None, {"x": x})[0]
    np.testing.assert_array_equal(got[:2], want)
    assert got.shape == (5, 6)


def test_rewrite_errors_name_the_input() -> None:
    base = _small_model().SerializeToString()
    with pytest.raises(ValueError, match="no graph input named 'y'"):
        _rewrite.apply(base, dynamic={"y": {0: "N"}})
    with pytest.raises(ValueError, match="has no axis 2"):
        _rewrite.apply(base, dynamic={"x": {2: "N"}})


def test_a_failing_rewrite_is_a_zoo_error(monkeypatch: pytest.MonkeyPatch) -> None:
    entry = _variant("tiny_mlp", dynamic_batch=True)
    monkeypatch.setattr(_rewrite, "symbolic_dims", lambda *a, **k: 1 / 0)
    with pytest.raises(ZooError, match="tiny_mlp-s0-tiny: ONNX rewrite failed"):
        entry.onnx_bytes()


# --------------------------------------------------------------------------- families


def test_paddle_cnn_looks_like_paddle2onnx() -> None:
    entry = _variant("paddle_cnn", blocks="esnet", dynamic_batch=True, se=True)
    model = onnx.load_from_string(entry.onnx_bytes())
    ops = _ops(model)
    assert len(model.graph.initializer) == 0
    assert ops["Constant"] > ops["Conv"] > 10
    assert ops["Identity"] > 0 and ops["Transpose"] >= 1 and ops["Reshape"] >= 3
    assert ops["HardSwish"] > 0 and ops["HardSigmoid"] > 0
    dim = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert dim.dim_param == "p2o.DynamicDimension.0"
    x = torch.randn(3, 3, 128, 128)  # batch 3, not the traced batch 1
    _close(_session(model.SerializeToString()).run(None, {"x": x.numpy()}), _torch(entry, x))


def test_tf_nhwc_cnn_has_a_transpose_around_every_conv() -> None:
    entry = _variant("tf_nhwc_cnn", padding="asymmetric", stem_pool=True)
    model = onnx.load_from_string(entry.onnx_bytes())
    assert [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim][-1] == 3
    producer = {o: n for n in model.graph.node for o in n.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for n in model.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    assert convs
    for conv in convs:
        src = producer[conv.input[0]]
        # TensorFlow SAME padding sits in between; a pool right before a conv shares its
        # transposes with it (the exporter cancels the Transpose pair between the two)
        while src.op_type in ("Pad", "MaxPool"):
            src = producer[src.input[0]]
        assert src.op_type == "Transpose"
        assert [c.op_type for c in consumers[conv.output[0]]] == ["Transpose"]
    ops = _ops(model)
    assert "Pad" in ops and ops["Transpose"] >= 2 * len(convs) - 1


def test_vad_stream_branches_on_the_sample_rate() -> None:
    entry = _variant("vad_stream", branch="frontend_resample", blocks=2)
    data = entry.onnx_bytes()
    model = onnx.load_from_string(data)
    assert _ops(model)["If"] == 1
    sess = _session(data)
    x, state = entry.example_inputs()[:2]
    assert state.shape == (2, 1, entry.params["hidden"])
    for rate in (16000, 8000):
        sr = torch.tensor(rate)
        feeds = {"input": x.numpy(), "state": state.numpy(), "sr": sr.numpy()}
        got = sess.run(None, feeds)
        _close(got, _torch(entry, x, state, sr))
        assert got[1].shape == state.shape  # the next state feeds back as the next input


def test_rnn_decoder_runs_its_steps_in_a_loop() -> None:
    step = _variant("rnn_decoder")
    loop = _variant("rnn_decoder", mode="loop", step_ratio=2)
    assert "Loop" not in _ops(onnx.load_from_string(step.onnx_bytes()))
    data = loop.onnx_bytes()
    assert _ops(onnx.load_from_string(data))["Loop"] == 1
    inputs = loop.example_inputs()
    feeds = {s.name: t.numpy() for s, t in zip(loop.input_specs, inputs, strict=True)}
    got = _session(data).run(None, feeds)
    _close(got, _torch(loop, *inputs))
    assert got[0].shape[1] == loop.params["enc_len"] // 2
    assert got[1].shape == inputs[1].shape


def test_ocr_rec_with_a_dynamic_width_and_its_int8_variant() -> None:
    entry = _variant("ocr_rec", dynamic="batch_width")
    data = entry.onnx_bytes()
    sess = _session(data)
    for width in (100, 160):
        x = torch.randn(2, 3, 32, width)
        got = sess.run(None, {"x": x.numpy()})
        _close(got, _torch(entry, x))
        assert got[0].shape[:2] == (2, width // 4)
    q = ZooEntry.sample("ocr_rec", 0, tiny=True, variant="int8_dynamic")
    ops = _ops(onnx.load_from_string(q.onnx_bytes()))
    assert ops["ConvInteger"] > 0 and ops["DynamicQuantizeLSTM"] == 1


def test_tiny_mlp_is_a_few_gemms_and_quantises_to_matmulinteger() -> None:
    entry = ZooEntry.sample("tiny_mlp", 3)
    ops = _ops(onnx.load_from_string(entry.onnx_bytes()))
    assert 2 <= ops["Gemm"] <= 5 and sum(ops.values()) <= 20
    q = ZooEntry.sample("tiny_mlp", 3, variant="int8_dynamic")
    assert _ops(onnx.load_from_string(q.onnx_bytes()))["MatMulInteger"] > 0


def test_ocr_det_runs_at_another_size_when_dynamic() -> None:
    entry = _variant("ocr_det", dynamic=True, height=128, image_width=128)
    model = onnx.load_from_string(entry.onnx_bytes())
    dims = [d.dim_param for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", "", "height", "width"]
    x = torch.randn(1, 3, 160, 224)
    got = _session(model.SerializeToString()).run(None, {"x": x.numpy()})
    _close(got, _torch(entry, x))
    assert got[0].shape == (1, entry.params["maps"], 160, 224)


def test_scripted_family_exports_identically_in_another_process() -> None:
    here = hashlib.sha256(ZooEntry.sample("vad_stream", 5, tiny=True).onnx_bytes()).hexdigest()
    code = (
        "import hashlib; from graphrec.zoo import ZooEntry; print(hashlib.sha256("
        "ZooEntry.sample('vad_stream', 5, tiny=True).onnx_bytes()).hexdigest())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    assert out.stdout.strip().splitlines()[-1] == here


def test_generated_sidecars_rebuild_what_the_onnx_file_computes(tmp_path: Path) -> None:
    report = generate(tmp_path, families=["tiny_mlp"], count=2, int8_fraction=1.0)
    assert report.written == ["tiny_mlp-s0", "tiny_mlp-s0-int8_dynamic"]
    assert not (tmp_path / "tiny_mlp-s0-int8_dynamic.torch.json").exists()
    side = json.loads((tmp_path / "tiny_mlp-s0.torch.json").read_text())
    module = torch_module(**side["kwargs"]).eval()
    row = read_manifest(tmp_path)[0]
    x = torch.randn(*row["inputs"][0]["shape"])
    got = _session((tmp_path / row["file"]).read_bytes()).run(None, {"input": x.numpy()})
    with torch.no_grad():
        _close(got, [module(x).numpy()])
