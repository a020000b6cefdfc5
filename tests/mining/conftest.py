"""Model bytes and archives made in the tests themselves.

Real exporters make the PyTorch-family files (``torch.onnx.export``,
``torch.jit.save``, the lite interpreter, ``torch.save``); the flatbuffer
formats are written with the ``flatbuffers`` builder (an onnxruntime
dependency) following each format's published schema; the small text and
protobuf formats are written byte by byte from their specifications.
"""

from __future__ import annotations

import io
import json
import struct
import warnings
from pathlib import Path

import pytest
import torch

from mining.mining_builders import (
    NCNN_PARAM,
    MakeApk,
    elf_header,
    high_entropy,
    write_zip,
    zip_bytes,
)

# -- torch-made models -------------------------------------------------------------------


class TinyNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3)
        self.fc = torch.nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).mean((2, 3)))


@pytest.fixture(scope="session")
def tiny_net() -> TinyNet:
    torch.manual_seed(0)
    return TinyNet().eval()


@pytest.fixture(scope="session")
def onnx_bytes(tiny_net: TinyNet) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            tiny_net,
            (torch.randn(1, 3, 16, 16),),
            buf,  # type: ignore[arg-type]  # file objects are accepted at run time
            dynamo=False,
            opset_version=17,
        )
    return buf.getvalue()


@pytest.fixture(scope="session")
def torchscript_bytes(tiny_net: TinyNet) -> bytes:
    buf = io.BytesIO()
    torch.jit.save(torch.jit.trace(tiny_net, torch.randn(1, 3, 16, 16)), buf)
    return buf.getvalue()


@pytest.fixture(scope="session")
def mobile_bytes(tiny_net: TinyNet, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("ptl") / "m.ptl"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.trace(tiny_net, torch.randn(1, 3, 16, 16))._save_for_lite_interpreter(str(path))
    return path.read_bytes()


@pytest.fixture(scope="session")
def state_dict_zip(tiny_net: TinyNet) -> bytes:
    buf = io.BytesIO()
    torch.save(tiny_net.state_dict(), buf)
    return buf.getvalue()


@pytest.fixture(scope="session")
def legacy_pickle(tiny_net: TinyNet) -> bytes:
    buf = io.BytesIO()
    torch.save(tiny_net.state_dict(), buf, _use_new_zipfile_serialization=False)
    return buf.getvalue()


@pytest.fixture(scope="session")
def safetensors_bytes(tiny_net: TinyNet) -> bytes:
    """The safetensors layout: u64 header length, JSON header, raw little-endian data."""
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    blobs = []
    offset = 0
    for name, t in tiny_net.state_dict().items():
        raw = t.detach().contiguous().numpy().astype("<f4").tobytes()
        header[name] = {
            "dtype": "F32",
            "shape": list(t.shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


# -- flatbuffer formats ------------------------------------------------------------------


def _fb_vector_tables(b: object, offsets: list[int]) -> int:
    b.StartVector(4, len(offsets), 4)  # type: ignore[attr-defined]
    for off in reversed(offsets):
        b.PrependUOffsetTRelative(off)  # type: ignore[attr-defined]
    return int(b.EndVector())  # type: ignore[attr-defined]


def _fb_vector_ints(b: object, values: list[int]) -> int:
    b.StartVector(4, len(values), 4)  # type: ignore[attr-defined]
    for v in reversed(values):
        b.PrependInt32(v)  # type: ignore[attr-defined]
    return int(b.EndVector())  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def tflite_bytes() -> bytes:
    """A TFLite model per schema.fbs: CONV_2D, GELU (code 150) and a custom op, 4 tensors."""
    flatbuffers = pytest.importorskip("flatbuffers")
    b = flatbuffers.Builder(1024)
    custom = b.CreateString("MyCustomOp")
    codes = []
    for deprecated, builtin, cc in ((3, 3, None), (127, 150, None), (32, 32, custom)):
        b.StartObject(4)
        b.PrependInt8Slot(0, deprecated, 0)
        if cc is not None:
            b.PrependUOffsetTRelativeSlot(1, cc, 0)
        b.PrependInt32Slot(2, 1, 1)
        b.PrependInt32Slot(3, builtin, 0)
        codes.append(b.EndObject())
    tensors = []
    for i in range(4):
        name = b.CreateString(f"t{i}")
        shape = _fb_vector_ints(b, [1, 8, 8, 3])
        b.StartObject(4)
        b.PrependUOffsetTRelativeSlot(0, shape, 0)
        b.PrependInt8Slot(1, 0, 0)
        b.PrependUint32Slot(2, 0, 0)
        b.PrependUOffsetTRelativeSlot(3, name, 0)
        tensors.append(b.EndObject())
    ops = []
    for opcode in (0, 1, 0, 2):
        ins = _fb_vector_ints(b, [0])
        outs = _fb_vector_ints(b, [1])
        b.StartObject(3)
        b.PrependUint32Slot(0, opcode, 0)
        b.PrependUOffsetTRelativeSlot(1, ins, 0)
        b.PrependUOffsetTRelativeSlot(2, outs, 0)
        ops.append(b.EndObject())
    t_vec = _fb_vector_tables(b, tensors)
    o_vec = _fb_vector_tables(b, ops)
    sg_in = _fb_vector_ints(b, [0])
    sg_out = _fb_vector_ints(b, [3])
    sg_name = b.CreateString("main")
    b.StartObject(5)
    b.PrependUOffsetTRelativeSlot(0, t_vec, 0)
    b.PrependUOffsetTRelativeSlot(1, sg_in, 0)
    b.PrependUOffsetTRelativeSlot(2, sg_out, 0)
    b.PrependUOffsetTRelativeSlot(3, o_vec, 0)
    b.PrependUOffsetTRelativeSlot(4, sg_name, 0)
    sg = b.EndObject()
    codes_vec = _fb_vector_tables(b, codes)
    sg_vec = _fb_vector_tables(b, [sg])
    desc = b.CreateString("made in the test")
    b.StartObject(8)
    b.PrependUint32Slot(0, 3, 0)
    b.PrependUOffsetTRelativeSlot(1, codes_vec, 0)
    b.PrependUOffsetTRelativeSlot(2, sg_vec, 0)
    b.PrependUOffsetTRelativeSlot(3, desc, 0)
    b.Finish(b.EndObject(), file_identifier=b"TFL3")
    return bytes(b.Output())


@pytest.fixture(scope="session")
def pte_bytes() -> bytes:
    """An ExecuTorch program per program.fbs: one plan, two operators, one XNNPACK delegate."""
    flatbuffers = pytest.importorskip("flatbuffers")
    b = flatbuffers.Builder(1024)
    ops = []
    for name, overload in (("aten::add", "out"), ("aten::mm", "out")):
        n = b.CreateString(name)
        o = b.CreateString(overload)
        b.StartObject(2)
        b.PrependUOffsetTRelativeSlot(0, n, 0)
        b.PrependUOffsetTRelativeSlot(1, o, 0)
        ops.append(b.EndObject())
    did = b.CreateString("XnnpackBackend")
    b.StartObject(3)
    b.PrependUOffsetTRelativeSlot(0, did, 0)
    dele = b.EndObject()
    ops_vec = _fb_vector_tables(b, ops)
    del_vec = _fb_vector_tables(b, [dele])
    pname = b.CreateString("forward")
    b.StartObject(9)
    b.PrependUOffsetTRelativeSlot(0, pname, 0)
    b.PrependUOffsetTRelativeSlot(6, ops_vec, 0)
    b.PrependUOffsetTRelativeSlot(7, del_vec, 0)
    plan = b.EndObject()
    plans = _fb_vector_tables(b, [plan])
    b.StartObject(6)
    b.PrependUint32Slot(0, 0, 0)
    b.PrependUOffsetTRelativeSlot(1, plans, 0)
    b.Finish(b.EndObject(), file_identifier=b"ET12")
    return bytes(b.Output())


@pytest.fixture(scope="session")
def mnn_bytes() -> bytes:
    """An MNN Net per MNN.fbs: bizCode, three ops (Input, Convolution, ReLU), tensor names."""
    flatbuffers = pytest.importorskip("flatbuffers")
    b = flatbuffers.Builder(1024)
    ops = []
    for op_type, name in ((34, "in"), (12, "conv"), (69, "relu")):
        n = b.CreateString(name)
        b.StartObject(7)
        b.PrependUOffsetTRelativeSlot(3, n, 0)
        b.PrependInt32Slot(5, op_type, 0)
        ops.append(b.EndObject())
    names = [b.CreateString(s) for s in ("x", "y", "z")]
    names_vec = _fb_vector_tables(b, names)
    ops_vec = _fb_vector_tables(b, ops)
    biz = b.CreateString("MNN")
    b.StartObject(12)
    b.PrependUOffsetTRelativeSlot(0, biz, 0)
    b.PrependUOffsetTRelativeSlot(3, ops_vec, 0)
    b.PrependInt8Slot(6, 3, 0)  # sourceType ONNX
    b.PrependUOffsetTRelativeSlot(7, names_vec, 0)
    b.Finish(b.EndObject())
    return bytes(b.Output())


@pytest.fixture(scope="session")
def ort_bytes() -> bytes:
    flatbuffers = pytest.importorskip("flatbuffers")
    b = flatbuffers.Builder(64)
    v = b.CreateString("1.32.0")
    b.StartObject(3)
    b.PrependUOffsetTRelativeSlot(0, v, 0)
    b.Finish(b.EndObject(), file_identifier=b"ORTM")
    return bytes(b.Output())


@pytest.fixture(scope="session")
def apk_members(
    onnx_bytes: bytes,
    torchscript_bytes: bytes,
    mobile_bytes: bytes,
    safetensors_bytes: bytes,
    tflite_bytes: bytes,
) -> dict[str, bytes]:
    """An APK-like layout: native libs per ABI, models in assets, a nested zip, a dex."""
    return {
        "AndroidManifest.xml": b"\x03\x00\x08\x00" + b"\0" * 64,
        "classes.dex": b"dex\n035\0" + b"\0" * 256,
        "lib/arm64-v8a/libtensorflowlite_jni.so": elf_header(0xB7),
        "lib/armeabi-v7a/libtensorflowlite_jni.so": elf_header(0x28, is64=False),
        "lib/arm64-v8a/libonnxruntime.so": elf_header(0xB7, extra=b"OrtGetApiBase\0"),
        "lib/x86_64/libonnxruntime.so": elf_header(0x3E, extra=b"OrtGetApiBase\0"),
        "lib/arm64-v8a/libfoo.so": elf_header(0xB7, extra=b"..._ZN4ncnn3Net10load_paramEPKc..."),
        "lib/arm64-v8a/libMNN.so": elf_header(0xB7),
        "lib/arm64-v8a/libpytorch_jni_lite.so": elf_header(0xB7),
        "assets/models/detector.onnx": onnx_bytes,
        "assets/models/classifier.tflite": tflite_bytes,
        "assets/models/scripted.pt": torchscript_bytes,
        "assets/models/mobile.ptl": mobile_bytes,
        "assets/models/weights.safetensors": safetensors_bytes,
        "assets/ncnn/net.param": NCNN_PARAM.encode(),
        "assets/ncnn/net.bin": high_entropy(300_000, 1),
        "assets/hidden/blob.dat": onnx_bytes,
        "assets/secret/face.tflite": high_entropy(50_000, 2),
        "assets/packs/extra.zip": zip_bytes({"inner/model.onnx": onnx_bytes}),
        "res/drawable/icon.png": b"\x89PNG\r\n\x1a\n" + b"\0" * 100,
    }


@pytest.fixture
def make_apk(apk_members: dict[str, bytes]) -> MakeApk:
    def make(path: Path) -> Path:
        return write_zip(path, apk_members)

    return make
