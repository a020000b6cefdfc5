"""Framework recognition from library names, binary headers, markers and package names."""

from __future__ import annotations

import pytest

from graphrec.mining.frameworks import (
    FRAMEWORKS,
    MarkerScanner,
    abi_from_header,
    abi_from_path,
    framework_for_library,
    framework_for_package,
)
from mining.mining_builders import elf_header


@pytest.mark.parametrize(
    ("path", "fid"),
    [
        ("lib/arm64-v8a/libtensorflowlite_jni.so", "tflite"),
        ("lib/arm64-v8a/libtensorflowlite_gpu_jni.so", "tflite"),
        ("lib/arm64-v8a/libMNN.so", "mnn"),
        ("lib/arm64-v8a/libMNN_CL.so", "mnn"),
        ("lib/armeabi-v7a/libncnn.so", "ncnn"),
        ("lib/arm64-v8a/libpytorch_jni_lite.so", "pytorch"),
        ("lib/x86_64/libonnxruntime4j_jni.so", "onnxruntime"),
        (
            "onnxruntime/capi/onnxruntime_pybind11_state.cpython-311-x86_64-linux-gnu.so",
            "onnxruntime",
        ),
        ("lib/arm64-v8a/libSNPE.so", "snpe"),
        ("lib/arm64-v8a/libQnnHtp.so", "qnn"),
        ("lib/arm64-v8a/libpaddle_lite_jni.so", "paddle-lite"),
        ("lib/arm64-v8a/libmace.so", "mace"),
        ("lib/arm64-v8a/libopencv_dnn.so", "opencv-dnn"),
        ("lib/arm64-v8a/libexecutorch_jni.so", "executorch"),
        ("lib/arm64-v8a/libmindspore-lite.so", "mindspore-lite"),
        ("openvino/libs/libopenvino.so.2500", "openvino"),
        ("Payload/A.app/Frameworks/TensorFlowLiteC.framework/TensorFlowLiteC", "tflite"),
        ("lib/arm64-v8a/libllama.so", "ggml"),
    ],
)
def test_library_names(path: str, fid: str) -> None:
    fw = framework_for_library(path)
    assert fw is not None and fw.id == fid


def test_unrelated_libraries_are_not_frameworks() -> None:
    for path in ("lib/arm64-v8a/libc++_shared.so", "lib/arm64-v8a/libapp.so", "README.md"):
        assert framework_for_library(path) is None


def test_at_least_ten_frameworks_with_all_three_kinds_of_evidence() -> None:
    assert len(FRAMEWORKS) >= 10
    assert all(f.libraries and f.markers for f in FRAMEWORKS)
    assert len({f.id for f in FRAMEWORKS}) == len(FRAMEWORKS)


def test_packages() -> None:
    assert framework_for_package("onnxruntime-gpu").id == "onnxruntime"  # type: ignore[union-attr]
    assert framework_for_package("tflite_runtime").id == "tflite"  # type: ignore[union-attr]
    assert framework_for_package("ai-edge-litert").id == "tflite"  # type: ignore[union-attr]
    assert framework_for_package("OpenVINO").id == "openvino"  # type: ignore[union-attr]
    assert framework_for_package("requests") is None


def test_abis() -> None:
    assert abi_from_path("lib/arm64-v8a/libx.so") == "arm64-v8a"
    assert abi_from_path("jni/armeabi-v7a/libx.so") == "armeabi-v7a"
    assert abi_from_path("base/lib/x86_64/libx.so") == "x86_64"
    assert abi_from_path("assets/arm64-v8a/libx.so") is None
    assert abi_from_header(elf_header(0xB7)) == "arm64-v8a"
    assert abi_from_header(elf_header(0x28, is64=False)) == "armeabi-v7a"
    assert abi_from_header(elf_header(0x3E)) == "x86_64"
    assert abi_from_header(b"\xcf\xfa\xed\xfe\x0c\x00\x00\x01") == "ios-arm64"
    assert abi_from_header(b"not a binary") is None


def test_marker_scanner_finds_markers_across_chunk_borders() -> None:
    s = MarkerScanner()
    data = b"x" * 1000 + b"OrtGetApiBase" + b"y" * 10 + b"_ZN6tflite11Interpreter"
    for i in range(0, len(data), 7):
        s.feed(data[i : i + 7])
    assert s.found == {"onnxruntime": "OrtGetApiBase", "tflite": "_ZN6tflite"}
