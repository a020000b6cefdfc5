"""Inference frameworks recognised from native libraries and Python packages.

A framework is found three ways: the file name of a native library
(``libtensorflowlite_jni.so``), marker strings inside a library that links the
framework statically (``OrtGetApiBase``, mangled ``tflite::`` symbols), and
Python packages (a vendored package folder, a wheel's ``*.dist-info`` or its
``Requires-Dist`` lines).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

__all__ = [
    "ANDROID_ABIS",
    "FRAMEWORKS",
    "Framework",
    "MarkerScanner",
    "abi_from_header",
    "abi_from_path",
    "framework_by_id",
    "framework_for_library",
    "framework_for_package",
    "normalize_dist",
]


@dataclass(frozen=True)
class Framework:
    """One inference framework and how to recognise it.

    Attributes:
        id: Short id (``"tflite"``).
        name: Display name.
        libraries: Regular expressions matched against lower-cased library base names.
        markers: Byte strings found inside binaries that contain the framework.
        packages: Normalised Python distribution / import names.
    """

    id: str
    name: str
    libraries: tuple[str, ...] = ()
    markers: tuple[bytes, ...] = ()
    packages: tuple[str, ...] = ()


FRAMEWORKS: tuple[Framework, ...] = (
    Framework(
        "tflite", "TensorFlow Lite / LiteRT",
        (r"libtensorflowlite.*", r"libtflite.*", r"liblitert.*", r"libtensorflow-?lite.*",
         r"tensorflowlitec", r"tensorflowlite", r"_pywrap_tensorflow_interpreter_wrapper.*",
         r"_pywrap_tensorflow_lite.*"),
        (b"_ZN6tflite", b"TfLiteInterpreterCreate", b"Didn't find op for builtin opcode"),
        ("tflite-runtime", "tflite_runtime", "ai-edge-litert", "ai_edge_litert", "tflite"),
    ),
    Framework(
        "tensorflow", "TensorFlow",
        (r"libtensorflow_framework.*", r"libtensorflow_cc.*", r"libtensorflow_jni.*",
         r"_pywrap_tensorflow_internal.*", r"libtensorflow\.so.*"),
        (b"_ZN10tensorflow7Session", b"_ZN10tensorflow13DirectSession", b"TF_NewSession"),
        ("tensorflow", "tensorflow-cpu", "tensorflow-gpu", "tf-nightly", "tensorflow-macos"),
    ),
    Framework(
        "pytorch", "PyTorch / PyTorch Mobile",
        (r"libpytorch_jni.*", r"libtorch(_cpu|_global_deps|_python|_cuda)?\.(so|dylib).*",
         r"libc10\.(so|dylib)", r"libtorch-lite.*", r"libpytorch.*"),
        (b"_ZN5torch3jit",),
        ("torch", "pytorch"),
    ),
    Framework(
        "executorch", "ExecuTorch",
        (r"libexecutorch.*", r"_portable_lib.*"),
        (b"_ZN10executorch", b"_ZN5torch8executor"),
        ("executorch",),
    ),
    Framework(
        "onnxruntime", "ONNX Runtime",
        (r"libonnxruntime.*", r"onnxruntime_pybind11_state.*", r"onnxruntime",
         r"libonnxruntime4j_jni.*"),
        (b"OrtGetApiBase", b"_ZN11onnxruntime"),
        ("onnxruntime", "onnxruntime-gpu", "onnxruntime-directml", "onnxruntime-openvino",
         "onnxruntime-silicon", "ort-nightly"),
    ),
    Framework(
        "ncnn", "ncnn",
        (r"libncnn.*", r"ncnn", r"ncnn\..*\.so"),
        (b"_ZN4ncnn",),
        ("ncnn",),
    ),
    Framework(
        "mnn", "MNN",
        (r"libmnn.*", r"mnn", r"_mnncengine.*", r"libmnncore.*"),
        (b"_ZN3MNN",),
        ("mnn",),
    ),
    Framework(
        "paddle-lite", "Paddle Lite",
        (r"libpaddle_lite.*", r"libpaddle_light_api.*", r"libpaddle_full_api.*"),
        (b"_ZN6paddle8lite_api",),
        ("paddlelite", "paddle-lite"),
    ),
    Framework(
        "paddle", "PaddlePaddle inference",
        (r"libpaddle_inference.*", r"libpaddle\.so"),
        (b"_ZN6paddle12AnalysisConfig",),
        ("paddlepaddle", "paddlepaddle-gpu", "paddle-inference"),
    ),
    Framework(
        "snpe", "Qualcomm SNPE",
        (r"libsnpe.*", r"libsnpe_.*", r"libsnpe_g.*", r"libsnpe_dsp.*"),
        (b"_ZN3zdl4SNPE",),
        ("snpe",),
    ),
    Framework(
        "qnn", "Qualcomm QNN / AI Engine Direct",
        (r"libqnn.*",),
        (b"QnnInterface_getProviders",),
        ("qnn",),
    ),
    Framework("mace", "Xiaomi MACE", (r"libmace.*",), (b"_ZN4mace",), ("mace",)),
    Framework(
        "opencv-dnn", "OpenCV (DNN module)",
        (r"libopencv_dnn.*", r"opencv_dnn.*"),
        (b"_ZN2cv3dnn",),
        ("opencv-python", "opencv-python-headless", "opencv-contrib-python", "cv2"),
    ),
    Framework(
        "coreml", "Apple Core ML",
        (r"libcoreml.*", r"coreml"),
        (b"/System/Library/Frameworks/CoreML.framework/CoreML",),
        ("coremltools",),
    ),
    Framework(
        "mindspore-lite", "MindSpore Lite",
        (r"libmindspore-lite.*", r"libmindspore_lite.*"),
        (b"_ZN9mindspore",),
        ("mindspore-lite", "mindspore_lite", "mindspore"),
    ),
    Framework("tnn", "Tencent TNN", (r"libtnn.*",), (b"_ZN6TNN_NS",), ("pytnn",)),
    Framework("tengine", "Tengine", (r"libtengine.*",), (b"init_tengine",), ()),
    Framework(
        "openvino", "OpenVINO",
        (r"libopenvino.*", r"libinference_engine.*", r"_pyopenvino.*"),
        (b"_ZN2ov4Core",),
        ("openvino", "openvino-dev"),
    ),
    Framework(
        "tensorrt", "NVIDIA TensorRT",
        (r"libnvinfer.*", r"tensorrt.*"),
        (b"createInferRuntime_INTERNAL",),
        ("tensorrt", "tensorrt-cu12", "tensorrt-libs"),
    ),
    Framework(
        "mediapipe", "MediaPipe",
        (r"libmediapipe.*", r"_framework_bindings.*", r"mediapipetaskscommon"),
        (b"_ZN9mediapipe",),
        ("mediapipe",),
    ),
    Framework("hiai", "Huawei HiAI", (r"libhiai.*", r"libhiai_ir.*"), (b"_ZN4hiai",), ()),
    Framework("armnn", "Arm NN", (r"libarmnn.*",), (b"_ZN5armnn",), ("pyarmnn",)),
    Framework(
        "tvm", "Apache TVM / MLC",
        (r"libtvm_runtime.*", r"libtvm\.so", r"libmlc_llm.*"),
        (b"TVMFuncCall", b"_ZN3tvm7runtime"),
        ("tvm", "apache-tvm", "mlc-llm", "mlc_llm"),
    ),
    Framework(
        "ggml", "llama.cpp / ggml",
        (r"libllama.*", r"libggml.*", r"libwhisper.*"),
        (b"ggml_graph_compute", b"llama_model_load"),
        ("llama-cpp-python", "llama_cpp", "pywhispercpp"),
    ),
    Framework(
        "ctranslate2", "CTranslate2",
        (r"libctranslate2.*",),
        (b"_ZN11ctranslate2",),
        ("ctranslate2",),
    ),
    Framework(
        "xnnpack", "XNNPACK (CPU accelerator)",
        (r"libxnnpack.*",),
        (b"xnn_initialize",),
        (),
    ),
    Framework(
        "nnapi", "Android NNAPI",
        (r"libneuralnetworks.*",),
        (b"ANeuralNetworksModel_create",),
        (),
    ),
)  # fmt: skip

#: Android ABI folder names.
ANDROID_ABIS = ("arm64-v8a", "armeabi-v7a", "armeabi", "x86_64", "x86", "mips64", "mips", "riscv64")

_ELF_MACHINES = {0x03: "x86", 0x08: "mips", 0x28: "armeabi-v7a", 0x3E: "x86_64",
                 0xB7: "arm64-v8a", 0xF3: "riscv64"}  # fmt: skip
_MACHO_CPUS = {0x0100000C: "ios-arm64", 0x0000000C: "ios-armv7", 0x01000007: "macos-x86_64",
               0x00000007: "i386"}  # fmt: skip

_BY_ID = {f.id: f for f in FRAMEWORKS}
_LIB_RES = tuple((f, re.compile("|".join(f"(?:{p})" for p in f.libraries))) for f in FRAMEWORKS)


def normalize_dist(name: str) -> str:
    """Normalise a Python distribution name the PEP 503 way (lower case, ``-``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


_PACKAGES = {normalize_dist(p): f for f in FRAMEWORKS for p in f.packages}


def framework_by_id(fid: str) -> Framework:
    """Look a framework up by id."""
    return _BY_ID[fid]


def framework_for_library(path: str) -> Framework | None:
    """The framework a native library belongs to, judged by its base name.

    Library names look like ``libfoo.so``, ``libfoo.so.1``, ``foo.cpython-311-x86_64-linux-gnu.so``,
    ``libfoo.dylib`` or an iOS framework binary ``Foo.framework/Foo``.
    """
    base = PurePosixPath(path).name.lower()
    parent = PurePosixPath(path).parent.name.lower()
    if parent.endswith(".framework") and base == parent[: -len(".framework")]:
        candidates = [base]
    else:
        if not re.search(r"\.(so|dylib|dll)(\.[\d.]+)?$", base):
            return None
        candidates = [base]
    for fw, rx in _LIB_RES:
        if any(rx.fullmatch(c) or rx.fullmatch(c.split(".", 1)[0]) for c in candidates):
            return fw
    return None


def framework_for_package(name: str) -> Framework | None:
    """The framework a Python distribution or import name belongs to."""
    return _PACKAGES.get(normalize_dist(name))


def abi_from_path(path: str) -> str | None:
    """The Android ABI named by a ``lib/<abi>/`` or ``jni/<abi>/`` folder in ``path``."""
    parts = path.split("/")
    for i, part in enumerate(parts[:-1]):
        if part in ANDROID_ABIS and i > 0 and parts[i - 1] in ("lib", "jni", "libs", "jniLibs"):
            return part
    return None


def abi_from_header(head: bytes) -> str | None:
    """The CPU architecture an ELF or Mach-O header announces."""
    if head.startswith(b"\x7fELF") and len(head) >= 20:
        little = head[5] == 1
        machine = int.from_bytes(head[18:20], "little" if little else "big")
        return _ELF_MACHINES.get(machine, f"elf-{machine:#x}")
    if head[:4] in (b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe") and len(head) >= 8:
        cpu = int.from_bytes(head[4:8], "little")
        return _MACHO_CPUS.get(cpu, f"macho-{cpu:#x}")
    if head[:4] == b"\xca\xfe\xba\xbe":
        return "macho-universal"
    return None


class MarkerScanner:
    """Streams a binary through a search for every framework's marker strings.

    Markers that are mangled C++ names (``_ZN<len><namespace>...``) are found
    with one regular expression anchored on the common ``_ZN`` prefix; the few
    plain C symbols and strings are found with ``bytes.find`` and are no longer
    searched once their framework is found. Feed chunks in order with
    :meth:`feed`; matches spanning chunk borders are found because the tail of
    each chunk is kept.
    """

    def __init__(self) -> None:
        mangled = [(m, f.id) for f in FRAMEWORKS for m in f.markers if m.startswith(b"_ZN")]
        self._plain = [(m, f.id) for f in FRAMEWORKS for m in f.markers if not m.startswith(b"_ZN")]
        self._owner = dict(mangled)
        suffixes = sorted((m[3:] for m, _ in mangled), key=len, reverse=True)
        self._rx = re.compile(b"_ZN(?:" + b"|".join(re.escape(x) for x in suffixes) + b")")
        self._keep = max(len(m) for f in FRAMEWORKS for m in f.markers) - 1
        self._tail = b""
        self.found: dict[str, str] = {}

    def feed(self, chunk: bytes) -> None:
        """Search one more chunk."""
        data = self._tail + chunk
        for m in self._rx.finditer(data):
            fid = self._owner[m.group(0)]
            self.found.setdefault(fid, m.group(0).decode("ascii", "replace"))
        for marker, fid in self._plain:
            if fid not in self.found and data.find(marker) != -1:
                self.found[fid] = marker.decode("ascii", "replace")
        self._tail = data[-self._keep :]
