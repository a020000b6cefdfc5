"""Tests for graphrec.runtimes.input_infer: one tiny generated graph per rule.

Each model is built with onnx.helper; where the rule matters, onnxruntime itself
rejects today's default inputs and accepts the inferred ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from graphrec.errors import ModelFormatError, ModelLoadError
from graphrec.runtimes.base import ModelSpec
from graphrec.runtimes.input_infer import OCR_REC_HEIGHT, OCR_REC_WIDTH, infer_inputs
from graphrec.runtimes.inputs import make_inputs, model_spec


def _save(
    path: Path,
    nodes: list[onnx.NodeProto],
    inputs: list[onnx.ValueInfoProto],
    outputs: list[onnx.ValueInfoProto],
    inits: Sequence[onnx.TensorProto] = (),
) -> Path:
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _vi(name: str, elem: int, dims: list[int | str | None] | None) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, dims)


def _runs(path: Path, spec_or_feed: ModelSpec | dict[str, np.ndarray]) -> bool:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    if isinstance(spec_or_feed, dict):
        feed = spec_or_feed
    else:
        feed = dict(zip(spec_or_feed.input_names, make_inputs(spec_or_feed), strict=True))
    try:
        sess.run(None, feed)
    except Exception:
        return False
    return True


@pytest.fixture()
def vad_like(tmp_path: Path) -> Path:
    """``If(Equal(sr, 16000))``: the then-branch passes x, the else-branch reshapes it to
    an impossible shape (as a VAD that only supports its sample rates fails)."""
    c16k = numpy_helper.from_array(np.array(16000, dtype=np.int64), "c16k")
    bad = numpy_helper.from_array(np.array([7, 7, 7], dtype=np.int64), "bad")
    then_g = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["t_out"])],
        "then",
        [],
        [_vi("t_out", TensorProto.FLOAT, None)],
    )
    else_g = helper.make_graph(
        [helper.make_node("Reshape", ["x", "bad"], ["e_out"])],
        "else",
        [],
        [_vi("e_out", TensorProto.FLOAT, None)],
    )
    nodes = [
        helper.make_node("Equal", ["sr", "c16k"], ["is16k"]),
        helper.make_node("If", ["is16k"], ["y"], then_branch=then_g, else_branch=else_g),
    ]
    return _save(
        tmp_path / "vad.onnx",
        nodes,
        [_vi("x", TensorProto.FLOAT, [1, 4]), _vi("sr", TensorProto.INT64, [])],
        [_vi("y", TensorProto.FLOAT, None)],
        [c16k, bad],
    )


def test_compared_value(vad_like: Path) -> None:
    inf = infer_inputs(vad_like)
    assert inf.values == {"sr": 16000.0}
    assert inf.rules["sr"] == "compared-value: Equal(sr, 16000)"
    assert inf.rules["x"] == "declared"
    spec = model_spec(vad_like)
    assert spec.input_values == {"sr": 16000.0}
    assert _runs(vad_like, spec)
    # Today's 0/1 integers are rejected by onnxruntime itself.
    assert not _runs(vad_like, {"x": np.zeros((1, 4), np.float32), "sr": np.array(1)})
    # The caller's value wins and is reported as such.
    assert model_spec(vad_like, input_values={"sr": 8000}).input_values == {"sr": 8000.0}
    assert infer_inputs(vad_like, input_values={"sr": 8000}).rules["sr"] == "given"


def test_index_range_one_row_table(tmp_path: Path) -> None:
    table = numpy_helper.from_array(np.ones((1, 4), np.float32), "table")
    path = _save(
        tmp_path / "emb.onnx",
        [helper.make_node("Gather", ["table", "ids"], ["y"], axis=0)],
        [_vi("ids", TensorProto.INT64, ["N", "T"])],
        [_vi("y", TensorProto.FLOAT, ["N", "T", 4])],
        [table],
    )
    inf = infer_inputs(path)
    assert inf.ranges == {"ids": (0, 1)}
    assert inf.values == {"ids": 0.0}
    assert inf.rules["ids"].startswith("index-range: [0, 1) from Gather table of 1 rows")
    spec = model_spec(path)
    assert _runs(path, spec)
    assert not _runs(path, {"ids": np.ones((1, 8), np.int64)})  # index 1: out of range


def test_index_range_wide_table_keeps_data(tmp_path: Path) -> None:
    table = numpy_helper.from_array(np.ones((50, 4), np.float32), "table")
    path = _save(
        tmp_path / "emb50.onnx",
        [
            helper.make_node("Cast", ["ids"], ["ids64"], to=TensorProto.INT64),
            helper.make_node("Gather", ["table", "ids64"], ["y"], axis=0),
        ],
        [_vi("ids", TensorProto.INT32, ["N", "T"])],
        [_vi("y", TensorProto.FLOAT, ["N", "T", 4])],
        [table],
    )
    inf = infer_inputs(path)
    assert inf.ranges == {"ids": (0, 50)} and inf.values == {}  # 0/1 is inside [0, 50)
    assert "Gather table of 50 rows" in inf.rules["ids"]


def test_index_range_clip(tmp_path: Path) -> None:
    lo = numpy_helper.from_array(np.array(2, np.int64), "lo")
    hi = numpy_helper.from_array(np.array(5, np.int64), "hi")
    path = _save(
        tmp_path / "clip.onnx",
        [helper.make_node("Clip", ["k", "lo", "hi"], ["y"])],
        [_vi("k", TensorProto.INT64, [1, 3])],
        [_vi("y", TensorProto.INT64, [1, 3])],
        [lo, hi],
    )
    inf = infer_inputs(path)
    assert inf.ranges == {"k": (2, 6)} and inf.values == {"k": 2.0}
    assert inf.rules["k"] == "index-range: [2, 6) from Clip to [2, 5]"


def test_state_shaped_like_its_output(tmp_path: Path) -> None:
    one = numpy_helper.from_array(np.ones((2, 1, 8), np.float32), "one")
    path = _save(
        tmp_path / "stream.onnx",
        [
            helper.make_node("Add", ["state", "one"], ["stateN"]),
            helper.make_node("ReduceSum", ["x"], ["y"], keepdims=0),
        ],
        [_vi("x", TensorProto.FLOAT, ["N", "T"]), _vi("state", TensorProto.FLOAT, [2, None, 8])],
        [_vi("y", TensorProto.FLOAT, []), _vi("stateN", TensorProto.FLOAT, [2, None, 8])],
        [one],
    )
    inf = infer_inputs(path, probe=False)
    assert inf.shapes["state"] == [2, 1, 8]
    assert inf.rules["state"].startswith("state: shaped like output 'stateN'")
    assert inf.rules["x"] == "default"  # nothing is known about T
    spec = model_spec(path)
    assert spec.input_shapes == [[1, 128], [2, 1, 8]]
    assert _runs(path, spec)


def test_reshape_constant_square_image(tmp_path: Path) -> None:
    shape = numpy_helper.from_array(np.array([1, 192], np.int64), "shape")
    w = numpy_helper.from_array(np.ones((192, 4), np.float32), "w")
    path = _save(
        tmp_path / "head.onnx",
        [
            helper.make_node("Relu", ["x"], ["r"]),
            helper.make_node("Reshape", ["r", "shape"], ["flat"]),
            helper.make_node("MatMul", ["flat", "w"], ["y"]),
        ],
        [_vi("x", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [_vi("y", TensorProto.FLOAT, [1, 4])],
        [shape, w],
    )
    inf = infer_inputs(path, probe=False)
    assert inf.shapes == {"x": [1, 3, 8, 8]}
    assert inf.rules["x"] == "reshape-constant: Reshape to [1, 192] (square)"
    assert _runs(path, model_spec(path))
    assert not _runs(path, {"x": np.zeros((1, 3, 224, 224), np.float32)})


def test_flatten_into_gemm(tmp_path: Path) -> None:
    w = numpy_helper.from_array(np.ones((4, 160), np.float32), "w")
    path = _save(
        tmp_path / "fl.onnx",
        [
            helper.make_node("Flatten", ["x"], ["f"], axis=1),
            helper.make_node("Gemm", ["f", "w"], ["y"], transB=1),
        ],
        [_vi("x", TensorProto.FLOAT, ["N", 16, "L"])],
        [_vi("y", TensorProto.FLOAT, ["N", 4])],
        [w],
    )
    inf = infer_inputs(path, probe=False)
    assert inf.shapes == {"x": [1, 16, 10]}
    assert inf.rules["x"] == "reshape-constant: Flatten into Gemm with 160 inputs"
    assert _runs(path, model_spec(path))


@pytest.mark.parametrize("height", [None, 48])
def test_ocr_recogniser_convention(tmp_path: Path, height: int | None) -> None:
    w = numpy_helper.from_array(np.ones((40, 3, 3, 3), np.float32), "w")
    axes = numpy_helper.from_array(np.array([2], np.int64), "axes")
    path = _save(
        tmp_path / "rec.onnx",
        [
            helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
            helper.make_node("ReduceMean", ["c", "axes"], ["m"], keepdims=0),
            helper.make_node("Transpose", ["m"], ["t"], perm=[0, 2, 1]),
            helper.make_node("Softmax", ["t"], ["y"], axis=2),
        ],
        [_vi("x", TensorProto.FLOAT, ["N", 3, height, None])],
        [_vi("y", TensorProto.FLOAT, ["N", "T", 40])],
        [w, axes],
    )
    inf = infer_inputs(path, probe=False)
    assert inf.shapes == {"x": [1, 3, OCR_REC_HEIGHT, OCR_REC_WIDTH]}
    assert inf.rules["x"].startswith("ocr-recogniser: output 'y' scores 40 classes")
    what = "height 48 and width 320" if height is None else "width 320"
    assert inf.rules["x"].endswith(f", {what} by convention")


def test_layout_nhwc(tmp_path: Path) -> None:
    path = _save(
        tmp_path / "nhwc.onnx",
        [helper.make_node("Transpose", ["x"], ["y"], perm=[0, 3, 1, 2])],
        [_vi("x", TensorProto.FLOAT, ["N", "H", "W", 3])],
        [_vi("y", TensorProto.FLOAT, ["N", 3, "H", "W"])],
    )
    inf = infer_inputs(path, probe=False)
    assert inf.shapes == {"x": [1, 224, 224, 3]}
    assert inf.rules["x"] == "layout-nhwc: last size 3 is the channels"


def _long_kernel(tmp_path: Path) -> Path:
    """A 1-D conv of kernel 300 on ``x[N, L]``: lengths below 300 are rejected."""
    w = numpy_helper.from_array(np.ones((2, 1, 300), np.float32), "w")
    axes = numpy_helper.from_array(np.array([1], np.int64), "axes")
    return _save(
        tmp_path / "audio.onnx",
        [
            helper.make_node("Unsqueeze", ["x", "axes"], ["u"]),
            helper.make_node("Conv", ["u", "w"], ["y"]),
        ],
        [_vi("x", TensorProto.FLOAT, ["N", "L"])],
        [_vi("y", TensorProto.FLOAT, ["N", 2, None])],
        [w, axes],
    )


def test_probe_finds_an_accepted_length(tmp_path: Path) -> None:
    path = _long_kernel(tmp_path)
    assert infer_inputs(path, probe=False).rules["x"] == "default"
    inf = infer_inputs(path)
    assert inf.shapes == {"x": [1, 512]}
    assert inf.rules["x"] == "probe: onnxruntime rejected [1, 128], accepted length 512"
    spec = model_spec(path)
    assert spec.input_shapes == [[1, 512]] and _runs(path, spec)
    # The caller's shape is never probed or changed.
    assert model_spec(path, overrides={"x": [1, 300]}).input_shapes == [[1, 300]]
    assert infer_inputs(path, overrides={"x": [1, 300]}).rules["x"] == "given"


def test_fixed_and_batch_inputs_unchanged(tmp_path: Path) -> None:
    path = _save(
        tmp_path / "fixed.onnx",
        [helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Relu", ["b"], ["z"])],
        [_vi("x", TensorProto.FLOAT, [1, 16]), _vi("b", TensorProto.FLOAT, ["N", 16])],
        [_vi("y", TensorProto.FLOAT, [1, 16]), _vi("z", TensorProto.FLOAT, ["N", 16])],
    )
    inf = infer_inputs(path)
    assert inf.shapes == {} and inf.values == {}
    assert inf.rules == {"x": "declared", "b": "declared: dynamic batch"}
    assert model_spec(path, batch_size=3).input_shapes == [[1, 16], [3, 16]]


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="no such file"):
        infer_inputs(tmp_path / "absent.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x08\x07garbage" * 10)
    with pytest.raises(ModelFormatError, match=r"junk\.onnx"):
        infer_inputs(junk)
