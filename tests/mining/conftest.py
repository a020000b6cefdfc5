"""Model bytes and archives made in the tests themselves, by the real writers.

Real exporters and converters write every model file: ``torch.onnx.export``,
``torch.jit.save``, the lite interpreter and ``torch.save`` for the PyTorch family; the
safetensors library; the LiteRT converter (.tflite), ExecuTorch (.pte), MNN's converter
(.mnn), onnxruntime (.ort), OpenVINO (IR), coremltools (.mlmodel) and pnnx (ncnn). A
format whose writer is not installed is skipped with the package named, never written
by hand: a hand-written file would share the reader's assumptions about the layout.
Only the archive containers and ELF library headers around them are assembled here.
"""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from mining.mining_builders import (
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
def safetensors_bytes(tiny_net: TinyNet, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """Written by the safetensors library itself."""
    pytest.importorskip("safetensors", reason="safetensors writes .safetensors")
    from safetensors.torch import save_file

    path = tmp_path_factory.mktemp("st") / "w.safetensors"
    save_file(dict(tiny_net.state_dict()), str(path), metadata={"format": "pt"})
    return path.read_bytes()


# -- files written by the real converters and runtimes -----------------------------------
# Each fixture skips, naming the missing package, where its writer is not installed; the
# tests then check graphrec's readers against the same library's own reader.


@pytest.fixture(scope="session")
def onnx_path(onnx_bytes: bytes, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    path.write_bytes(onnx_bytes)
    return path


@pytest.fixture(scope="session")
def tflite_bytes(tiny_net: TinyNet, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """Converted from the torch module by the LiteRT converter (litert-torch)."""
    litert_torch = pytest.importorskip("litert_torch", reason="litert-torch writes .tflite")
    path = tmp_path_factory.mktemp("tflite") / "tiny.tflite"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        litert_torch.convert(tiny_net, (torch.randn(1, 3, 16, 16),)).export(str(path))
    return path.read_bytes()


@pytest.fixture(scope="session")
def pte_bytes(tiny_net: TinyNet) -> bytes:
    """Lowered by ExecuTorch (torch.export, XNNPACK partitioner, to_executorch)."""
    pytest.importorskip("executorch", reason="executorch writes .pte")
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ep = torch.export.export(tiny_net, (torch.randn(1, 3, 16, 16),))
        prog = to_edge_transform_and_lower(ep, partitioner=[XnnpackPartitioner()])
        return bytes(prog.to_executorch().buffer)


@pytest.fixture(scope="session")
def mnn_bytes(onnx_path: Path) -> bytes:
    """Converted from the ONNX file by MNN's own converter (the ``_tools`` extension that
    ships with the ``MNN`` package), in a child process: the converter prints to stdout. Its
    Python wrapper (``mnnconvert``) is not used: it runs ``pip install`` and sends usage
    logs."""
    pytest.importorskip("_tools", reason="the MNN package's converter writes .mnn")
    out = onnx_path.with_suffix(".mnn")
    if not out.is_file():
        argv = ["mnnconvert", "-f", "ONNX", "--modelFile", str(onnx_path)]
        argv += ["--MNNModel", str(out), "--bizCode", "graphrec-test"]
        code = f"import _tools; _tools.mnnconvert({argv!r})"
        subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120, check=True)
    return out.read_bytes()


@pytest.fixture(scope="session")
def ort_bytes(onnx_path: Path) -> bytes:
    """Saved by onnxruntime in its ORT format."""
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime writes .ort")
    out = onnx_path.with_suffix(".ort")
    so = ort.SessionOptions()
    so.optimized_model_filepath = str(out)
    so.add_session_config_entry("session.save_model_format", "ORT")
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
    return out.read_bytes()


@pytest.fixture(scope="session")
def openvino_ir(onnx_path: Path) -> Path:
    """OpenVINO IR (.xml + .bin) written by ``openvino.save_model``."""
    ov = pytest.importorskip("openvino", reason="openvino writes the IR")
    out = onnx_path.parent / "ir" / "tiny.xml"
    if not out.is_file():
        ov.save_model(ov.convert_model(str(onnx_path)), str(out))
    return out


@pytest.fixture(scope="session")
def coreml_path(tiny_net: TinyNet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A neural-network Core ML model converted and saved by coremltools."""
    pytest.importorskip("coremltools", reason="coremltools writes .mlmodel")
    import logging

    logging.getLogger("coremltools").setLevel(logging.ERROR)
    import coremltools as ct

    x = torch.randn(1, 3, 16, 16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(tiny_net, x)
        m = ct.convert(traced, inputs=[ct.TensorType(shape=x.shape)], convert_to="neuralnetwork")
    path = tmp_path_factory.mktemp("coreml") / "tiny.mlmodel"
    m.save(str(path))
    return path


@pytest.fixture(scope="session")
def ncnn_files(tiny_net: TinyNet, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``.param`` and ``.bin`` written by pnnx (torch -> ncnn)."""
    pnnx = pytest.importorskip("pnnx", reason="pnnx writes ncnn .param/.bin")
    d = tmp_path_factory.mktemp("ncnn")
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        pnnx.export(tiny_net, str(d / "tiny.pt"), (torch.randn(1, 3, 16, 16),))
    return d / "tiny.ncnn.param", d / "tiny.ncnn.bin"


@pytest.fixture(scope="session")
def apk_members(
    onnx_bytes: bytes,
    torchscript_bytes: bytes,
    mobile_bytes: bytes,
    safetensors_bytes: bytes,
    tflite_bytes: bytes,
    ncnn_files: tuple[Path, Path],
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
        "assets/ncnn/net.param": ncnn_files[0].read_bytes(),
        "assets/ncnn/net.bin": ncnn_files[1].read_bytes() + high_entropy(300_000, 1),
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
