"""TFLite files as OperatorGraphs: figures against independent counts, quantised tensors,
hostile files (typed errors only), and the inspect / bench paths."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from tflite_builder import CONV_2D, FLOAT32, INT8, OPT_CONV2D, Op, T, build_tflite, conv_model
from tflite_torch_models import FIXTURES, build

import graphrec.graph
from graphrec.errors import (
    GraphRecError,
    GraphStructureError,
    ModelFormatError,
    ModelLimitError,
    ModelLoadError,
    ShapeSpecError,
)
from graphrec.graph.tflite import is_tflite, load_tflite, load_tflite_bytes, read_tflite

HERE = Path(__file__).resolve().parent
FIXTURE_DIR = HERE / "tflite_models"


def _onnx_of(name: str, tmp_path: Path) -> Path:
    import torch

    path = tmp_path / f"{name}.onnx"
    torch.onnx.export(
        build(name),
        (torch.randn(*FIXTURES[name]),),
        str(path),
        dynamo=False,
        opset_version=17,
        external_data=False,
    )
    return path


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_same_module_same_figures(name: str, tmp_path: Path) -> None:
    """The litert-torch .tflite of a module and its ONNX export give the same counts."""
    tfl = load_tflite(FIXTURE_DIR / f"{name}.tflite")
    assert graphrec.graph.load(FIXTURE_DIR / f"{name}.tflite").total_flops == tfl.total_flops
    onnx = graphrec.graph.load(_onnx_of(name, tmp_path))
    assert tfl.source_format == "tflite"
    assert tfl.total_flops == onnx.total_flops > 0
    assert tfl.total_macs == onnx.total_macs
    assert tfl.total_params == onnx.total_params
    assert tfl.shape_mismatches == [] and tfl.unsupported_tflite_ops == {}
    # the heavy operators carry the ONNX names the feature vocabulary knows
    for op in ("Conv", "Gemm"):
        assert (op in tfl.op_type_histogram) == (op in onnx.op_type_histogram)
    assert int(tfl.totals["num_unknown_shape_tensors"]) == 0


@pytest.mark.parametrize("weights", ["int8", "fp16", "fp32"])
def test_quantised_weights(weights: str) -> None:
    """A 3x3 conv (3 -> 4 channels, 8x8 output): 6912 MACs whatever the weight type;
    weight bytes by the type the file stores them in. The file runs in LiteRT."""
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    Interpreter = litert.Interpreter

    data = conv_model(weights)
    interp = Interpreter(model_content=data)
    interp.allocate_tensors()  # the hand-built file is valid TFLite
    g = load_tflite_bytes(data, name=f"conv-{weights}")
    assert g.total_macs == 8 * 8 * 4 * 3 * 3 * 3
    assert g.total_params == 4 * 3 * 3 * 3 + 4
    expected = {
        "int8": {"int8": 108.0, "int32": 16.0},
        "fp16": {"float16": 216.0, "float32": 16.0},
        "fp32": {"float32": 448.0},
    }[weights]
    assert g.weight_bytes_by_dtype == expected
    assert g.op_type_histogram["Relu"] == 1  # the fused activation as its own node
    assert g.inputs[0].shape == (1, 8, 8, 3)  # TFLite's own (NHWC) shapes at the surface
    assert g.outputs[0].dtype == ("int8" if weights == "int8" else "float32")


def test_load_dispatch_and_identifier(tmp_path: Path) -> None:
    data = conv_model("fp32")
    odd = tmp_path / "model.bin"  # no .tflite suffix: the identifier decides
    odd.write_bytes(data)
    assert is_tflite(odd) and is_tflite(data) and not is_tflite(b"\x08\x07")
    assert graphrec.graph.load(odd).total_macs == 6912


def _hostile(tmp_path: Path, data: bytes) -> Exception | None:
    p = tmp_path / "h.tflite"
    p.write_bytes(data)
    try:
        load_tflite(p)
    except GraphRecError as exc:
        return exc
    return None


def test_hostile_files_get_typed_errors(tmp_path: Path) -> None:
    good = conv_model("int8")
    with pytest.raises(ModelLoadError, match="no such file"):
        load_tflite(tmp_path / "missing.tflite")
    with pytest.raises(ModelLoadError, match="directory"):
        load_tflite(tmp_path)
    assert isinstance(_hostile(tmp_path, b""), ModelFormatError)
    assert isinstance(_hostile(tmp_path, b"\x00" * 64), ModelFormatError)
    assert isinstance(_hostile(tmp_path, good[:4] + b"TFL3" + b"\xff" * 32), ModelFormatError)
    # an operator naming a tensor that does not exist
    bad_ref = build_tflite([T("x", [1, 4]), T("y", [1, 4])], [Op(0, [0, 7], [1])], [0], [1])
    assert isinstance(_hostile(tmp_path, bad_ref), GraphStructureError)
    # absurd sizes: the kernel's limits
    huge = build_tflite(
        [T("x", [1 << 30, 1 << 30, 1 << 30]), T("y", [1])], [Op(0, [0, 0], [1])], [0], [1]
    )
    assert isinstance(_hostile(tmp_path, huge), ModelLimitError)
    deep = build_tflite([T("x", [1] * 40), T("y", [1])], [Op(0, [0, 0], [1])], [0], [1])
    assert isinstance(_hostile(tmp_path, deep), ModelLimitError)
    # an offset past the end: the root table offset rewritten
    assert isinstance(_hostile(tmp_path, struct.pack("<I", 1 << 30) + good[4:]), ModelFormatError)


def test_truncations_and_mutations_never_crash(tmp_path: Path) -> None:
    """Every prefix length class and 400 seeded byte mutations: a graph or a typed error."""
    good = conv_model("int8")
    rng = np.random.default_rng(0)
    outcomes = {"ok": 0, "error": 0}
    cases = [good[:n] for n in range(0, len(good), max(1, len(good) // 60))]
    for _ in range(400):
        buf = bytearray(good)
        for _ in range(int(rng.integers(1, 8))):
            buf[int(rng.integers(8, len(buf)))] = int(rng.integers(0, 256))
        cases.append(bytes(buf))
    for data in cases:
        try:
            load_tflite_bytes(data, name="mutant")
            outcomes["ok"] += 1
        except GraphRecError:
            outcomes["error"] += 1
    assert outcomes["error"] > 0 and outcomes["ok"] > 0, outcomes


def test_shapes_are_the_stored_ones(tmp_path: Path) -> None:
    p = tmp_path / "c.tflite"
    p.write_bytes(conv_model("fp32"))
    assert load_tflite(p, input_shapes={"x": [1, 8, 8, 3]}).total_macs == 6912
    with pytest.raises(ShapeSpecError):
        load_tflite(p, input_shapes={"x": [2, 8, 8, 3]})
    with pytest.raises(ShapeSpecError):
        load_tflite(p, input_shapes={"nope": [1]})


def test_unsupported_operator_is_kept_and_named() -> None:
    # SVDF (code 27) has no rule: kept as tflite::SVDF, listed, costs unknown
    data = build_tflite([T("x", [1, 4]), T("y", [1, 4])], [Op(27, [0], [1])], [0], [1])
    g = load_tflite_bytes(data, name="svdf")
    assert g.unsupported_tflite_ops == {"SVDF": 1}
    assert any("SVDF" in w for w in g.warnings)
    assert read_tflite(data).op_histogram == {"SVDF": 1}


def test_inspect_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    from graphrec.cli import main

    assert main(["inspect", str(FIXTURE_DIR / "tiny_cnn.tflite"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["source_format"] == "tflite"
    assert out["tflite_ops"]["CONV_2D"] == 3
    assert out["inputs"][0]["shape"] == [1, 3, 32, 32]  # litert-torch keeps torch's layout


def test_int8_conv_options_roundtrip() -> None:
    """Strides and SAME padding from the options table reach the kernel (16x16 -> 8x8)."""
    opts = {0: ("b", 0), 1: ("i", 2), 2: ("i", 2), 3: ("b", 0), 4: ("i", 1), 5: ("i", 1)}
    rng = np.random.default_rng(1)
    tensors = [
        T("x", [1, 16, 16, 3], INT8, scale=0.1),
        T(
            "w",
            [8, 3, 3, 3],
            INT8,
            rng.integers(-9, 9, (8, 3, 3, 3)).astype(np.int8).tobytes(),
            scale=0.1,
        ),
        T("y", [1, 8, 8, 8], INT8, scale=0.1),
    ]
    g = load_tflite_bytes(
        build_tflite(tensors, [Op(CONV_2D, [0, 1], [2], OPT_CONV2D, opts)], [0], [2])
    )
    assert g.total_macs == 8 * 8 * 8 * 27
    assert g.shape_mismatches == []
    assert FLOAT32 == 0  # the builder's type codes follow the schema
