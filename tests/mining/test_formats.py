"""Content sniffing: every format from real or specification-built bytes."""

from __future__ import annotations

import pytest

from graphrec.errors import ModelFormatError, ModelLimitError
from graphrec.mining import formats
from graphrec.mining._flatbuf import FlatBufferError, root_table
from mining.mining_builders import (
    CAFFE_PROTOTXT,
    NCNN_PARAM,
    OPENVINO_XML,
    TFJS_JSON,
    caffemodel_bytes,
    coreml_bytes,
    gguf_bytes,
    graphdef_bytes,
    high_entropy,
    keras_h5_bytes,
    paddle_lite_bytes,
    savedmodel_bytes,
)


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


def test_tflite_flatbuffer_details(tflite_bytes: bytes) -> None:
    s = formats.sniff("model.bin", tflite_bytes)
    assert s is not None and s.format == "tflite" and s.reason == "file identifier TFL3"
    d = s.details
    assert d["schema_version"] == 3
    assert d["tensors"] == 4 and d["operators"] == 4 and d["subgraphs"] == 1
    assert d["op_histogram"] == {"CONV_2D": 2, "GELU": 1, "CUSTOM:MyCustomOp": 1}
    assert d["description"] == "made in the test"


def test_executorch_pte(pte_bytes: bytes) -> None:
    s = formats.sniff("model.pte", pte_bytes)
    assert s is not None and s.format == "executorch"
    assert s.details["methods"] == ["forward"]
    assert s.details["operators"] == ["aten::add.out", "aten::mm.out"]
    assert s.details["delegates"] == ["XnnpackBackend"]


def test_mnn_by_content_and_extension(mnn_bytes: bytes) -> None:
    for name in ("net.mnn", "net.bin"):
        s = formats.sniff(name, mnn_bytes)
        assert s is not None and s.format == "mnn", name
        assert s.details["op_histogram"] == {"Input": 1, "Convolution": 1, "ReLU": 1}
        assert s.details["biz_code"] == "MNN" and s.details["source"] == "onnx"


def test_ort_format(ort_bytes: bytes) -> None:
    s = formats.sniff("m.ort", ort_bytes)
    assert s is not None and s.format == "onnx-ort" and s.details["ort_version"] == "1.32.0"


def test_safetensors(safetensors_bytes: bytes) -> None:
    s = formats.sniff("w.safetensors", safetensors_bytes)
    assert s is not None and s.format == "safetensors"
    assert s.details["tensors"] == 4 and s.details["total_params"] == 260
    assert s.details["dtypes"] == {"F32": 4} and s.details["complete"]
    assert s.details["metadata"] == {"format": "pt"}


def test_ncnn_param_text() -> None:
    s = formats.sniff("x.param", NCNN_PARAM.encode())
    assert s is not None and s.format == "ncnn"
    assert s.details["layers"] == 4 and s.details["blobs"] == 4
    assert s.details["op_histogram"] == {"Convolution": 2, "Input": 1, "ReLU": 1}


def test_pytorch_legacy_pickle(legacy_pickle: bytes) -> None:
    s = formats.sniff("sd.pth", legacy_pickle)
    assert s is not None and s.format == "pytorch-legacy"


@pytest.mark.parametrize(
    ("name", "data", "fmt", "check"),
    [
        ("m.gguf", gguf_bytes(), "gguf", {"architecture": "llama", "name": "tiny", "tensors": 2}),
        ("x.mlmodel", coreml_bytes(), "coreml", {"model_type": "neuralNetwork",
                                                 "specification_version": 4}),
        ("frozen.pb", graphdef_bytes(), "tf-graphdef", {"num_nodes": 4}),
        ("saved_model.pb", savedmodel_bytes(), "tf-savedmodel",
         {"tags": ["serve"], "tensorflow_version": "2.16.1", "meta_graphs": 1}),
        ("net.caffemodel", caffemodel_bytes(), "caffemodel", {"layers": 2, "name": "TinyNet"}),
        ("deploy.prototxt", CAFFE_PROTOTXT.encode(), "caffe-prototxt", {}),
        ("model.xml", OPENVINO_XML.encode(), "openvino-ir", {"name": "tiny", "ir_version": 11}),
        ("model.json", TFJS_JSON.encode(), "tfjs", {"format": "graph-model", "weight_files": 1}),
        ("model.nb", paddle_lite_bytes(), "paddle-lite", {"opt_version": "v2.12", "meta_version": 2}),
        ("m.h5", keras_h5_bytes(), "keras-h5", {}),
    ],
)  # fmt: skip
def test_spec_built_formats(name: str, data: bytes, fmt: str, check: dict[str, object]) -> None:
    s = formats.sniff(name, data)
    assert s is not None and s.format == fmt and not s.suspected
    for key, value in check.items():
        assert s.details[key] == value, key


def test_content_not_name_decides() -> None:
    # a GraphDef hidden as .dat and an ONNX-named text file
    assert formats.sniff("weights.dat", gguf_bytes()).format == "gguf"  # type: ignore[union-attr]
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
