"""Content sniffing, on files written by the real converters and runtimes."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch

from graphrec.errors import ModelFormatError, ModelLimitError
from graphrec.mining import formats
from graphrec.mining._flatbuf import FlatBufferError, root_table
from mining.mining_builders import high_entropy


def test_onnx_from_torch_export(onnx_bytes: bytes) -> None:
    s = formats.sniff("whatever.bin", onnx_bytes)
    assert s is not None and s.format == "onnx" and not s.suspected
    d = s.details
    assert d["producer_name"] == "pytorch"
    assert d["opset_imports"]["ai.onnx"] == 17
    assert d["op_histogram"]["Conv"] == 1 and d["op_histogram"]["Gemm"] == 1
    # conv 8*3*3*3 + 8, linear 4*8 + 4
    assert d["total_params"] == 8 * 27 + 8 + 32 + 4
    assert d["graph_inputs"] == 1 and d["graph_outputs"] == 1


def test_onnx_analyzer_is_used_and_its_failure_kept(onnx_bytes: bytes) -> None:
    seen = {}

    def analyzer(buf: object, name: str) -> dict[str, int]:
        seen["name"] = name
        return {"total_flops": 123}

    s = formats.sniff("m.onnx", onnx_bytes, onnx_analyzer=analyzer)
    assert s is not None and s.details["total_flops"] == 123
    assert s.details["analysis"] == "graphrec kernel" and seen["name"] == "m.onnx"

    def broken(buf: object, name: str) -> dict[str, int]:
        raise ValueError("kernel says no")

    s = formats.sniff("m.onnx", onnx_bytes, onnx_analyzer=broken)
    assert s is not None and "kernel says no" in s.details["kernel_error"]
    assert s.details["analysis"] == "protobuf walk"


def test_tflite_from_the_litert_converter(tflite_bytes: bytes) -> None:
    """Checked against LiteRT's own interpreter reading the same file."""
    from ai_edge_litert.interpreter import Interpreter

    s = formats.sniff("model.bin", tflite_bytes)
    assert s is not None and s.format == "tflite" and s.reason == "file identifier TFL3"
    interp = Interpreter(model_content=tflite_bytes)
    ops = [o["op_name"] for o in interp._get_ops_details()]
    d = s.details
    assert d["schema_version"] == 3 and d["subgraphs"] == 1
    assert d["operators"] == len(ops) and d["op_histogram"] == dict(Counter(ops))
    assert d["tensors"] == len(interp.get_tensor_details())
    assert d.get("signatures", 0) == len(interp.get_signature_list())
    assert "CONV_2D" in d["op_histogram"] and "FULLY_CONNECTED" in d["op_histogram"]


def test_executorch_pte_from_executorch(pte_bytes: bytes) -> None:
    """Checked against ExecuTorch's own deserializer."""
    from executorch.exir._serialize._program import deserialize_pte_binary

    s = formats.sniff("model.pte", pte_bytes)
    assert s is not None and s.format == "executorch"
    program = deserialize_pte_binary(pte_bytes)
    program = getattr(program, "program", program)
    plans = program.execution_plan
    assert s.details["methods"] == [p.name for p in plans] == ["forward"]
    ops = [f"{o.name}.{o.overload}" if o.overload else o.name for o in plans[0].operators]
    assert s.details["operators"] == ops
    assert s.details["delegates"] == sorted({d.id for d in plans[0].delegates})
    assert "XnnpackBackend" in s.details["delegates"]


def test_mnn_from_the_mnn_converter(mnn_bytes: bytes, tmp_path: Path) -> None:
    """Checked against MNN's own loader (``MNN.expr.load_as_list``) in a child process."""
    path = tmp_path / "net.mnn"
    path.write_bytes(mnn_bytes)
    code = (
        "import json, sys, MNN.expr as F\n"
        f"ops = [v.op_type for v in F.load_as_list({str(path)!r})]\n"
        "sys.stderr.write('OPS' + json.dumps(ops))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    theirs = Counter(json.loads(out.stderr.rsplit("OPS", 1)[1]))
    for name in ("net.mnn", "net.bin"):
        s = formats.sniff(name, mnn_bytes)
        assert s is not None and s.format == "mnn", name
        hist = s.details["op_histogram"]
        assert s.details["biz_code"] == "graphrec-test" and s.details["source"] == "onnx"
        assert s.details["operators"] == sum(hist.values()) == sum(theirs.values())
        # MNN's loader names binary ops by their kind (SUB, ADD, ...), the file by BinaryOp.
        same = {k: v for k, v in theirs.items() if k in hist}
        assert same == {k: hist[k] for k in same}
        assert sum(v for k, v in theirs.items() if k not in hist) == hist.get("BinaryOp", 0)
        assert hist["Convolution"] >= 1 and hist["Input"] == 1


def test_ort_format_from_onnxruntime(ort_bytes: bytes) -> None:
    """Checked against the ORT-format reader that ships with onnxruntime."""
    from onnxruntime.tools.ort_format_model.ort_flatbuffers_py.fbs.InferenceSession import (
        InferenceSession,
    )

    s = formats.sniff("m.ort", ort_bytes)
    assert s is not None and s.format == "onnx-ort"
    session = InferenceSession.GetRootAsInferenceSession(ort_bytes, 0)
    assert s.details["ort_format_version"] == session.OrtVersion().decode()
    assert s.details["producer_name"] == session.Model().ProducerName().decode() == "pytorch"
    assert s.details["ir_version"] == session.Model().IrVersion()


def test_safetensors_from_the_library(safetensors_bytes: bytes, tiny_net: torch.nn.Module) -> None:
    s = formats.sniff("w.safetensors", safetensors_bytes)
    assert s is not None and s.format == "safetensors"
    state = tiny_net.state_dict()
    assert s.details["tensors"] == len(state)
    assert s.details["total_params"] == sum(t.numel() for t in state.values()) == 260
    assert s.details["dtypes"] == {"F32": 4} and s.details["complete"]
    assert s.details["metadata"] == {"format": "pt"}


def test_ncnn_param_from_pnnx(ncnn_files: tuple[Path, Path]) -> None:
    """Checked against ncnn's own loader."""
    import ncnn

    param, _bin = ncnn_files
    s = formats.sniff("x.param", param.read_bytes())
    assert s is not None and s.format == "ncnn"
    net = ncnn.Net()
    assert net.load_param(str(param)) == 0
    layers = [layer.type for layer in net.layers()]
    assert s.details["layers"] == len(layers) and s.details["blobs"] == len(net.blobs())
    assert s.details["op_histogram"] == dict(Counter(layers))


def test_openvino_ir_from_openvino(openvino_ir: Path) -> None:
    """Checked against OpenVINO reading the IR it wrote (and the XML root it carries)."""
    import xml.etree.ElementTree as ET

    import openvino as ov

    s = formats.sniff("model.xml", openvino_ir.read_bytes())
    assert s is not None and s.format == "openvino-ir" and not s.suspected
    model = ov.Core().read_model(str(openvino_ir))
    # The IR spells some types its own way ("Const", "ReLU" for the runtime's "Constant",
    # "Relu"), so compare case-insensitively with that one alias.
    theirs = Counter(op.get_type_name().lower() for op in model.get_ordered_ops())
    hist: Counter[str] = Counter()
    for name, n in s.details["op_histogram"].items():
        hist[{"const": "constant"}.get(name.lower(), name.lower())] += n
    assert hist == theirs and hist["convolution"] == 1
    root = ET.parse(openvino_ir).getroot()
    assert s.details["name"] == root.get("name") == model.get_friendly_name()
    assert s.details["ir_version"] == int(root.get("version", "0"))


def test_coreml_from_coremltools(coreml_path: Path) -> None:
    """Checked against the specification coremltools reads back."""
    import coremltools as ct

    s = formats.sniff("x.mlmodel", coreml_path.read_bytes())
    assert s is not None and s.format == "coreml" and not s.suspected
    spec = ct.utils.load_spec(str(coreml_path))
    assert s.details["specification_version"] == spec.specificationVersion
    assert s.details["model_type"] == spec.WhichOneof("Type") == "neuralNetwork"
    assert s.details["updatable"] == spec.isUpdatable


@pytest.mark.parametrize(
    ("fmt", "writer"),
    [
        ("gguf", "gguf"),
        ("tf-graphdef", "tensorflow"),
        ("tf-savedmodel", "tensorflow"),
        ("tfjs", "tensorflowjs"),
        ("keras-h5", "keras"),
        ("caffemodel", "caffe"),
        ("caffe-prototxt", "caffe"),
        ("paddle", "paddle"),
        ("paddle-lite", "paddlelite"),
    ],
)
def test_formats_without_an_installed_writer(fmt: str, writer: str) -> None:
    """These readers have no test file: graphrec's CI installs no library that writes them,
    and a file written here by hand would only repeat the reader's own assumptions."""
    assert fmt in formats.FORMATS
    pytest.importorskip(writer, reason=f"{writer} (writes {fmt}) is not installed")
    pytest.skip(f"{writer} is installed: add a {fmt} file written by it here")


def test_pytorch_legacy_pickle(legacy_pickle: bytes) -> None:
    s = formats.sniff("sd.pth", legacy_pickle)
    assert s is not None and s.format == "pytorch-legacy"


def test_content_not_name_decides(onnx_bytes: bytes, tflite_bytes: bytes) -> None:
    # an ONNX model hidden as .dat, a TFLite one named .pb, an ONNX-named text file
    assert formats.sniff("weights.dat", onnx_bytes).format == "onnx"  # type: ignore[union-attr]
    assert formats.sniff("frozen.pb", tflite_bytes).format == "tflite"  # type: ignore[union-attr]
    assert formats.sniff("hello.txt", b"hello world") is None


def test_known_extension_without_header_is_suspected() -> None:
    s = formats.sniff("face.tflite", high_entropy(20_000))
    assert s is not None and s.suspected and s.format == "tflite"
    assert "encrypted or obfuscated" in s.reason and s.details["entropy_bits"] > 7.9
    s = formats.sniff("model.onnx", b"this is not a model at all " * 50)
    assert s is not None and s.suspected and "high entropy" not in s.reason


def test_opaque_high_entropy_blob_is_suspected_but_media_is_not() -> None:
    s = formats.sniff("assets/x.dat", high_entropy(400_000))
    assert s is not None and s.suspected and s.format == "unknown"
    assert formats.sniff("x.dat", high_entropy(1000)) is None  # too small to matter
    png = b"\x89PNG\r\n\x1a\n" + high_entropy(400_000)
    assert formats.sniff("x.dat", png) is None


def test_truncated_flatbuffer_with_model_extension_is_suspected(tflite_bytes: bytes) -> None:
    s = formats.sniff("cut.tflite", tflite_bytes[:40])
    assert s is not None and s.suspected and "does not parse" in s.reason


def test_quick_kind() -> None:
    assert formats.quick_kind("a.zip", b"PK\x03\x04rest", 100) == "archive"
    assert formats.quick_kind("libx.so", b"\x7fELF" + b"\0" * 20, 100) == "library"
    assert formats.quick_kind("x.onnx", b"", 0) == "candidate"
    assert formats.quick_kind("res/a.png", b"\x89PNG", 10) == "skip"
    assert formats.quick_kind("classes.dex", b"dex\n035", 10) == "skip"
    assert formats.quick_kind("noext", b"\0\0\0\0TFL3", 8) == "candidate"


def _layout(names: list[str]) -> str | None:
    found = formats.container_model(names)
    return None if found is None else found[0]


def test_container_layouts() -> None:
    ts = ["m/data.pkl", "m/constants.pkl", "m/code/__torch__/m.py", "m/data/0", "m/version"]
    assert _layout(ts) == "torchscript"
    assert _layout([*ts, "m/bytecode.pkl"]) == "pytorch-mobile"
    sd = ["archive/data.pkl", "archive/byteorder", "archive/data/0", "archive/version"]
    assert _layout(sd) == "pytorch"
    assert _layout(["config.json", "metadata.json", "model.weights.h5"]) == "keras-v3"
    assert _layout(["model", "model.params", "dlc.metadata"]) == "snpe-dlc"
    assert _layout(["archive/archive_format", "archive/data/weights/w"]) == "torch-export"
    assert formats.container_model(["AndroidManifest.xml", "classes.dex"]) is None
    bundles = formats.bundle_models(
        [
            "Payload/A.app/Face.mlmodelc/model.espresso.net",
            "Payload/A.app/Face.mlmodelc/coremldata.bin",
        ]
    )
    assert bundles == {"Payload/A.app/Face.mlmodelc/": "coreml-compiled"}


def test_flatbuffer_reader_rejects_out_of_bounds() -> None:
    with pytest.raises(FlatBufferError):
        root_table(b"\xff\xff\xff\x7fTFL3")
    with pytest.raises(FlatBufferError):
        root_table(b"\x08\x00")


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"\x0a\x10short", "runs past the end"),  # length beyond the data
        (b"\x08\xff\xff", "truncated varint"),
        (b"\x08" + b"\xff" * 10 + b"\x01", "varint"),  # longer than 10 bytes
        (b"\x0b\x00", "wire type"),  # group start
        (b"\x00\x01", "field number"),  # field 0
        (b"\x0d\x01\x02", "truncated fixed32"),
    ],
)
def test_protobuf_reader_rejects_malformed(data: bytes, match: str) -> None:
    """The kernel's wire reader raises the named error, whichever way the bytes are broken."""
    with pytest.raises(ModelFormatError, match=match):
        formats._pb_fields(data)
    # ... and sniffing such bytes under a protobuf extension says so instead of crashing.
    s = formats.sniff("model.pb", data)
    assert s is not None and s.suspected and "does not parse" in s.reason


def test_protobuf_reader_fields_and_limits() -> None:
    data = b"\x08\x96\x01" + b"\x12\x03abc" + b"\x1d\x01\x00\x00\x00"
    assert formats._pb_fields(data) == [(1, 0, 150), (2, 2, (5, 8)), (3, 5, 1)]
    assert formats._pb_fields(data, 3, 8) == [(2, 2, (5, 8))]  # a sub-range, same offsets
    assert formats._pb_text(data, (5, 8)) == "abc"
    with pytest.raises(ModelLimitError, match="more than 2 fields"):
        formats._pb_fields(data, max_fields=2)
    assert len(formats._pb_fields(data, max_fields=2, truncate=True)) == 2
    assert formats._pb_packed_varints(b"\x01\x96\x01\x03", 0, 4) == [1, 150, 3]
    with pytest.raises(ModelFormatError):
        formats._pb_fields(data, 5, 100)  # a range outside the buffer


def test_entropy() -> None:
    assert formats.entropy_bits(b"") == 0.0
    assert formats.entropy_bits(b"\0" * 1000) == 0.0
    assert formats.entropy_bits(bytes(range(256)) * 4) == pytest.approx(8.0)


def test_sniff_survives_corrupted_protobuf(onnx_bytes: bytes) -> None:
    """Truncated and byte-flipped ONNX files are sniffed (or suspected), never crash or raise."""
    import numpy as np

    rng = np.random.default_rng(0)
    for i in range(300):
        data = bytearray(onnx_bytes)
        if i % 3 == 0:
            data = data[: int(rng.integers(1, len(data)))]
        else:
            for pos in rng.integers(0, len(data), size=int(rng.integers(1, 8))):
                data[int(pos)] = int(rng.integers(0, 256))
        s = formats.sniff("model.onnx", bytes(data))
        assert s is None or s.format in formats.FORMATS or s.format == "unknown"
