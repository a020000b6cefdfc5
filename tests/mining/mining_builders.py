"""Byte-level builders for the mining tests (formats written from their specifications)."""

from __future__ import annotations

import io
import json
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

# -- protobuf wire helpers ---------------------------------------------------------------


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def pb_varint(field: int, value: int) -> bytes:
    return varint(field << 3) + varint(value)


def pb_bytes(field: int, payload: bytes | str) -> bytes:
    data = payload.encode() if isinstance(payload, str) else payload
    return varint((field << 3) | 2) + varint(len(data)) + data


NCNN_PARAM = (
    "7767517\n4 4\n"
    "Input            in0      0 1 in0\n"
    "Convolution      conv_0   1 1 in0 1 0=8 1=3 5=1 6=216\n"
    "ReLU             relu_1   1 1 1 2\n"
    "Convolution      conv_2   1 1 2 out0 0=4 1=1 5=1 6=32\n"
)


# -- binary and text headers -------------------------------------------------------------


def gguf_bytes() -> bytes:
    def s(text: str) -> bytes:
        return struct.pack("<Q", len(text)) + text.encode()

    kv = s("general.architecture") + struct.pack("<I", 8) + s("llama")
    kv += s("general.name") + struct.pack("<I", 8) + s("tiny")
    return b"GGUF" + struct.pack("<IQQ", 3, 2, 2) + kv + b"\0" * 64


def coreml_bytes() -> bytes:
    """Core ML Model: specificationVersion=4, description, neuralNetwork (field 500)."""
    layer = pb_bytes(1, "conv")
    nn = pb_bytes(1, layer) + pb_bytes(1, pb_bytes(1, "relu"))
    return pb_varint(1, 4) + pb_bytes(2, pb_bytes(1, pb_bytes(1, "image"))) + pb_bytes(500, nn)


def graphdef_bytes() -> bytes:
    def node(name: str, op: str, *inputs: str) -> bytes:
        return pb_bytes(1, name) + pb_bytes(2, op) + b"".join(pb_bytes(3, i) for i in inputs)

    nodes = [node("x", "Placeholder"), node("w", "Const"), node("y", "Conv2D", "x", "w"),
             node("z", "Relu", "y")]  # fmt: skip
    return b"".join(pb_bytes(1, n) for n in nodes) + pb_bytes(4, pb_varint(1, 27))


def savedmodel_bytes() -> bytes:
    meta_info = pb_bytes(4, "serve") + pb_bytes(5, "2.16.1")
    graph = pb_bytes(1, pb_bytes(1, "x") + pb_bytes(2, "Placeholder"))
    graph += pb_bytes(1, pb_bytes(1, "m") + pb_bytes(2, "MatMul"))
    return pb_varint(1, 1) + pb_bytes(2, pb_bytes(1, meta_info) + pb_bytes(2, graph))


def caffemodel_bytes() -> bytes:
    layer = pb_bytes(1, "conv1") + pb_bytes(2, "Convolution") + pb_bytes(3, "data")
    layer2 = pb_bytes(1, "relu1") + pb_bytes(2, "ReLU")
    return pb_bytes(1, "TinyNet") + pb_bytes(100, layer) + pb_bytes(100, layer2)


CAFFE_PROTOTXT = (
    'name: "TinyNet"\ninput: "data"\nlayer {\n  name: "conv1"\n  type: "Convolution"\n'
    '  bottom: "data"\n  top: "conv1"\n}\nlayer {\n  name: "relu1"\n  type: "ReLU"\n}\n'
)

OPENVINO_XML = (
    '<?xml version="1.0"?>\n<net name="tiny" version="11">\n<layers>\n'
    '<layer id="0" name="x" type="Parameter" version="opset1"/>\n'
    '<layer id="1" name="c" type="Convolution" version="opset1"/>\n'
    '<layer id="2" name="r" type="Result" version="opset1"/>\n</layers>\n</net>\n'
)

TFJS_JSON = json.dumps(
    {
        "format": "graph-model",
        "generatedBy": "2.15.0",
        "convertedBy": "TensorFlow.js Converter v4.17.0",
        "modelTopology": {
            "node": [{"name": "x", "op": "Placeholder"}, {"name": "c", "op": "Conv2D"}]
        },
        "weightsManifest": [{"paths": ["group1-shard1of1.bin"], "weights": []}],
    }
)


def paddle_lite_bytes() -> bytes:
    return struct.pack("<H", 2) + b"v2.12".ljust(16, b"\0") + struct.pack("<Q", 100) + b"\0" * 128


def keras_h5_bytes() -> bytes:
    """Only the HDF5 signature plus the attribute names Keras writes (h5py is not a dependency)."""
    return b"\x89HDF\r\n\x1a\n" + b"\0" * 200 + b"keras_version\0" + b"model_config\0" + b"\0" * 100


def elf_header(machine: int, is64: bool = True, extra: bytes = b"") -> bytes:
    ident = b"\x7fELF" + bytes([2 if is64 else 1, 1, 1]) + b"\0" * 9
    return ident + struct.pack("<HH", 3, machine) + b"\0" * 200 + extra


def high_entropy(n: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def write_zip(
    path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED
) -> Path:
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def mark_encrypted(data: bytes, name: str) -> bytes:
    """Set the 'encrypted' general-purpose flag of ``name`` in both zip headers."""
    out = bytearray(data)
    raw = name.encode()
    for sig, flag_off, name_len_off, name_off in (
        (b"PK\x03\x04", 6, 26, 30),
        (b"PK\x01\x02", 8, 28, 46),
    ):
        pos = out.find(sig)
        while pos != -1:
            (n,) = struct.unpack_from("<H", out, pos + name_len_off)
            if bytes(out[pos + name_off : pos + name_off + n]) == raw:
                (flags,) = struct.unpack_from("<H", out, pos + flag_off)
                struct.pack_into("<H", out, pos + flag_off, flags | 1)
            pos = out.find(sig, pos + 4)
    return bytes(out)


#: ``make_apk(path) -> path`` fixture type: writes the APK-like test archive.
MakeApk = Callable[[Path], Path]
