"""Content sniffing for deep-learning model files.

Each sniffer looks at the bytes (not only the name) and, when it recognises a
format, returns a :class:`Sniffed` with what can be read cheaply: operator
lists, tensor counts, versions. Names only decide *how hard to look*; a file
called ``.tflite`` without a valid TFLite header becomes a *suspected* model.

The formats (``FORMATS``) cover TFLite/LiteRT, ONNX, ONNX Runtime ORT, ncnn,
MNN, TorchScript, PyTorch Mobile, PyTorch checkpoints (zip and legacy),
torch.export, safetensors, TensorFlow SavedModel / GraphDef / TF.js, Keras
(HDF5 and v3), Caffe, Core ML, Paddle, Paddle Lite, SNPE DLC, ExecuTorch,
GGUF, OpenVINO IR and MindSpore Lite.
"""

from __future__ import annotations

import json
import math
import re
import struct
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import numpy as np

from graphrec import _core
from graphrec.errors import ModelFormatError, ModelLimitError, ModelLoadError
from graphrec.mining._flatbuf import Buffer, FlatBufferError, Table, root_table

__all__ = [
    "FORMATS",
    "MODEL_EXTENSIONS",
    "Sniffed",
    "bundle_models",
    "container_model",
    "entropy_bits",
    "extension_format",
    "quick_kind",
    "sniff",
]

#: Format id -> human-readable name.
FORMATS: dict[str, str] = {
    "tflite": "TensorFlow Lite / LiteRT",
    "onnx": "ONNX",
    "onnx-ort": "ONNX Runtime ORT format",
    "ncnn": "ncnn param",
    "ncnn-bin": "ncnn weights",
    "mnn": "MNN",
    "torchscript": "TorchScript",
    "pytorch-mobile": "PyTorch Mobile (lite interpreter)",
    "pytorch": "PyTorch checkpoint (zip)",
    "pytorch-legacy": "PyTorch checkpoint (legacy pickle)",
    "torch-export": "torch.export archive (.pt2)",
    "safetensors": "safetensors",
    "tf-savedmodel": "TensorFlow SavedModel",
    "tf-graphdef": "TensorFlow GraphDef",
    "tfjs": "TensorFlow.js",
    "keras-h5": "Keras HDF5",
    "keras-v3": "Keras v3 (.keras)",
    "hdf5": "HDF5 (not Keras)",
    "caffe-prototxt": "Caffe prototxt",
    "caffemodel": "Caffe caffemodel",
    "coreml": "Core ML (.mlmodel)",
    "coreml-package": "Core ML package (.mlpackage)",
    "coreml-compiled": "Core ML compiled (.mlmodelc)",
    "paddle": "PaddlePaddle inference model",
    "paddle-lite": "Paddle Lite naive buffer (.nb)",
    "snpe-dlc": "Qualcomm SNPE DLC",
    "executorch": "ExecuTorch (.pte)",
    "gguf": "GGUF",
    "openvino-ir": "OpenVINO IR",
    "mindspore-lite": "MindSpore Lite",
    "pickle": "Python pickle",
}

#: Extension -> the format a file with that extension is expected to hold.
MODEL_EXTENSIONS: dict[str, str] = {
    ".tflite": "tflite",
    ".lite": "tflite",
    ".litert": "tflite",
    ".onnx": "onnx",
    ".ort": "onnx-ort",
    ".param": "ncnn",
    ".mnn": "mnn",
    ".ptl": "pytorch-mobile",
    ".pt": "pytorch",
    ".pth": "pytorch",
    ".pt2": "torch-export",
    ".torchscript": "torchscript",
    ".safetensors": "safetensors",
    ".pb": "tf-graphdef",
    ".h5": "keras-h5",
    ".hdf5": "keras-h5",
    ".keras": "keras-v3",
    ".caffemodel": "caffemodel",
    ".prototxt": "caffe-prototxt",
    ".mlmodel": "coreml",
    ".pdmodel": "paddle",
    ".nb": "paddle-lite",
    ".dlc": "snpe-dlc",
    ".pte": "executorch",
    ".gguf": "gguf",
    ".ms": "mindspore-lite",
}

#: Extensions that often hide an obfuscated model blob.
_OPAQUE_EXTENSIONS = frozenset(
    {"", ".bin", ".dat", ".data", ".model", ".enc", ".weights", ".mdl", ".res", ".pack", ".raw"}
)

_ARCHIVE_EXTENSIONS = frozenset(
    {
        ".zip", ".apk", ".aab", ".aar", ".jar", ".ipa", ".whl", ".xapk", ".apks", ".apkm",
        ".tar", ".tgz", ".gz", ".tbz2", ".bz2", ".txz", ".xz", ".egg",
    }
)  # fmt: skip

#: Magic prefixes of common non-model binary content (never "suspected models").
_MEDIA_MAGIC: tuple[bytes, ...] = (
    b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"RIFF", b"OggS", b"ID3", b"fLaC", b"%PDF",
    b"dex\n", b"\x7fELF", b"wOFF", b"wOF2", b"OTTO", b"\x00\x01\x00\x00", b"SQLite format",
    b"\x1aE\xdf\xa3", b"\xfe\xed\xfa", b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe",
    b"\xca\xfe\xba\xbe",
    b"MZ", b"\x02\x00\x0c\x00", b"\x03\x00\x08\x00", b"BZh", b"\xfd7zXZ", b"7z\xbc\xaf",
    b"\x1f\x8b", b"PK\x03\x04", b"\x00\x00\x01\x00", b"\xff\xfb", b"\xff\xf3", b"\xff\xf1",
)  # fmt: skip

_TORCH_LEGACY_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_NCNN_MAGIC = 7767517


@dataclass
class Sniffed:
    """What a sniffer found in one blob.

    Attributes:
        format: Format id (a key of :data:`FORMATS`).
        reason: How it was recognised, in words (``"file identifier TFL3"``).
        details: Cheaply readable facts (operators, tensor count, versions ...).
        suspected: True when only the name or entropy points at a model.
    """

    format: str
    reason: str
    details: dict[str, Any] = field(default_factory=dict)
    suspected: bool = False


def _suffix(name: str) -> str:
    return PurePosixPath(name.lower()).suffix


def extension_format(name: str) -> str | None:
    """The model format the file name's extension promises, if any."""
    lower = name.lower()
    if lower.endswith(".param.bin"):
        return "ncnn"
    if lower.endswith("saved_model.pb"):
        return "tf-savedmodel"
    base = PurePosixPath(lower).name
    if base == "__model__" or base == "__model__.nb":
        return "paddle" if base == "__model__" else "paddle-lite"
    return MODEL_EXTENSIONS.get(_suffix(name))


def entropy_bits(data: bytes | memoryview) -> float:
    """Shannon entropy of ``data`` in bits per byte (0 for empty input)."""
    if len(data) == 0:
        return 0.0
    counts = np.bincount(np.frombuffer(data, dtype=np.uint8), minlength=256)
    probs = counts[counts > 0] / len(data)
    return float(-(probs * np.log2(probs)).sum())


def is_archive_head(head: bytes) -> str | None:
    """The container kind the first bytes announce: ``zip``, ``gzip``, ``bz2``, ``xz``, ``tar``."""
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"BZh") and len(head) > 4 and head[3:4].isdigit():
        return "bz2"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    return None


def _looks_protobuf_model_head(head: bytes) -> bool:
    # ONNX and Core ML both start with field 1 (varint): ir_version / specificationVersion.
    return len(head) >= 3 and head[0] == 0x08 and 1 <= head[1] <= 30 and head[2] in (
        0x12, 0x1A, 0x22, 0x2A, 0x32, 0x3A, 0x42, 0x50,
    )  # fmt: skip


def quick_kind(name: str, head: bytes, size: int) -> str:
    """Decide how hard to look at a file from its name and first bytes.

    Returns one of ``"archive"`` (open and walk it), ``"candidate"`` (read it
    whole and sniff), ``"library"`` (stream it through the framework symbol
    scan) or ``"skip"``.
    """
    lower = name.lower()
    suffix = _suffix(name)
    ident = head[4:8]
    if is_archive_head(head):
        return "archive"
    if head.startswith((b"\x7fELF", b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe", b"\xca\xfe\xba\xbe")):
        return "library"
    if extension_format(name) is not None:
        return "candidate"
    if (
        ident in (b"TFL3", b"ORTM", b"MSL1", b"MSL2", b"NETD", b"NETP")
        or re.fullmatch(rb"ET\d\d", ident)
        or head.startswith((b"GGUF", _HDF5_MAGIC, _TORCH_LEGACY_MAGIC, b"7767517"))
        or head[:4] == struct.pack("<i", _NCNN_MAGIC)
        or head.startswith(b"\xd5\x0a")
    ):
        return "candidate"
    if _looks_safetensors(head, size) or _looks_protobuf_model_head(head):
        return "candidate"
    if suffix in (".xml", ".json", ".pbtxt", ".txt") and (
        b"<net " in head or b"modelTopology" in head or b"weightsManifest" in head
        or b"layer {" in head or b"layers {" in head
    ):  # fmt: skip
        return "candidate"
    if suffix in (".so", ".dylib", ".dll") or ".so." in lower:
        return "library"
    if (
        suffix in _OPAQUE_EXTENSIONS
        and size >= 256 * 1024
        and not head.startswith(_MEDIA_MAGIC)
        and entropy_bits(head) >= 7.9
    ):
        return "candidate"
    return "skip"


def _looks_safetensors(head: bytes, size: int) -> bool:
    if len(head) < 10:
        return False
    (n,) = struct.unpack_from("<Q", head, 0)
    return 2 <= n <= min(size - 8 if size > 0 else n, 256 << 20) and head[8:9] == b"{"


# --------------------------------------------------------------------------------------
# Full sniffing
# --------------------------------------------------------------------------------------


def sniff(name: str, buf: Buffer, *, onnx_analyzer: Any = None) -> Sniffed | None:
    """Identify the model format of ``buf`` (the whole file) named ``name``.

    Args:
        name: File name or archive member path (used for hints, not trusted).
        buf: The complete content (``bytes`` or an ``mmap``).
        onnx_analyzer: Optional callable ``(buf, name) -> dict`` adding ONNX details
            (the scanner passes one backed by :func:`graphrec.graph.load_bytes`).

    Returns:
        A :class:`Sniffed`, a suspected-model :class:`Sniffed` (known model
        extension but no valid header, or a large high-entropy opaque blob), or
        ``None`` when the content is not a model.
    """
    size = len(buf)
    head = bytes(buf[:65536])
    ident = head[4:8]
    expected = extension_format(name)
    try:
        found = _sniff_by_magic(name, buf, head, ident, expected, onnx_analyzer)
    except (FlatBufferError, ModelLoadError, ValueError, struct.error, IndexError) as exc:
        found = None
        if expected is not None:
            return Sniffed(
                expected,
                f"extension {_suffix(name) or name} but the content does not parse ({exc})",
                {"entropy_bits": round(entropy_bits(head), 3)},
                suspected=True,
            )
    if found is not None:
        return found
    ent = entropy_bits(head)
    if expected is not None and expected not in ("ncnn", "caffe-prototxt"):
        return Sniffed(
            expected,
            f"extension {_suffix(name) or name} but no valid {FORMATS[expected]} header"
            + (" (high entropy: encrypted or obfuscated?)" if ent >= 7.5 else ""),
            {"entropy_bits": round(ent, 3)},
            suspected=True,
        )
    if (
        _suffix(name) in _OPAQUE_EXTENSIONS
        and size >= 256 * 1024
        and not head.startswith(_MEDIA_MAGIC)
        and ent >= 7.9
    ):
        return Sniffed(
            "unknown",
            f"opaque {size}-byte blob with entropy {ent:.2f} bits/byte (encrypted model?)",
            {"entropy_bits": round(ent, 3)},
            suspected=True,
        )
    return None


def _sniff_by_magic(
    name: str, buf: Buffer, head: bytes, ident: bytes, expected: str | None, onnx_analyzer: Any
) -> Sniffed | None:
    if ident == b"TFL3":
        return Sniffed("tflite", "file identifier TFL3", _tflite_details(buf))
    if re.fullmatch(rb"ET\d\d", ident):
        return Sniffed("executorch", f"file identifier {ident.decode()}", _pte_details(buf))
    if ident == b"ORTM":
        return Sniffed("onnx-ort", "file identifier ORTM", _ort_details(buf))
    if ident in (b"MSL1", b"MSL2"):
        return Sniffed("mindspore-lite", f"file identifier {ident.decode()}", {})
    if head.startswith(b"\xd5\x0a") or ident in (b"NETD", b"NETP"):
        version = head[2] if head.startswith(b"\xd5\x0a") and len(head) > 2 else None
        return Sniffed("snpe-dlc", "DLC model record", {"dlc_version": version})
    if head.startswith(b"GGUF"):
        return Sniffed("gguf", "magic GGUF", _gguf_details(buf))
    if head.startswith(_HDF5_MAGIC):
        return _hdf5(buf)
    if head.startswith(_TORCH_LEGACY_MAGIC):
        return Sniffed("pytorch-legacy", "torch.save legacy pickle magic number", {})
    if expected in ("pytorch", "pytorch-legacy") and head[:1] == b"\x80" and 2 <= head[1] <= 5:
        return Sniffed("pickle", f"pickle protocol {head[1]} stream", {})
    if head.startswith(b"7767517"):
        return Sniffed("ncnn", "ncnn param magic 7767517", _ncnn_text_details(buf))
    if head[:4] == struct.pack("<i", _NCNN_MAGIC):
        n_layers, n_blobs = struct.unpack_from("<ii", head, 4)
        return Sniffed(
            "ncnn", "binary ncnn param magic 7767517", {"layers": n_layers, "blobs": n_blobs}
        )
    if _looks_safetensors(head, len(buf)):
        details = _safetensors_details(buf)
        if details is not None:
            return Sniffed("safetensors", "safetensors JSON header", details)
    if head[:1] in (b"{", b"[") or _suffix(name) == ".json":
        tfjs = _tfjs(buf, head)
        if tfjs is not None:
            return tfjs
    if b"<net " in head[:4096]:
        return _openvino(buf)
    if expected == "paddle-lite" or PurePosixPath(name).name == "param.nb":
        nb = _paddle_lite(head)
        if nb is not None:
            return nb
    if expected == "mnn" or (len(head) >= 8 and 0x10 <= head[0] <= 0x40 and head[1:4] == b"\0\0\0"):
        mnn = _mnn(buf, strict=expected != "mnn")
        if mnn is not None:
            return mnn
    text_model = _text_models(head)
    if text_model is not None:
        return text_model
    # protobuf family: decide by the top-level field numbers
    return _protobuf_family(name, buf, head, expected, onnx_analyzer)


# --- flatbuffer formats -----------------------------------------------------------------

# BuiltinOperator enum of tensorflow/lite/schema/schema.fbs (0..161).
_TFLITE_OPS: tuple[str, ...] = tuple(
    [
        "ADD",
        "AVERAGE_POOL_2D",
        "CONCATENATION",
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
        "DEPTH_TO_SPACE",
        "DEQUANTIZE",
        "EMBEDDING_LOOKUP",
        "FLOOR",
        "FULLY_CONNECTED",
        "HASHTABLE_LOOKUP",
        "L2_NORMALIZATION",
        "L2_POOL_2D",
        "LOCAL_RESPONSE_NORMALIZATION",
        "LOGISTIC",
        "LSH_PROJECTION",
        "LSTM",
        "MAX_POOL_2D",
        "MUL",
        "RELU",
        "RELU_N1_TO_1",
        "RELU6",
        "RESHAPE",
        "RESIZE_BILINEAR",
        "RNN",
        "SOFTMAX",
        "SPACE_TO_DEPTH",
        "SVDF",
        "TANH",
        "CONCAT_EMBEDDINGS",
        "SKIP_GRAM",
        "CALL",
        "CUSTOM",
        "EMBEDDING_LOOKUP_SPARSE",
        "PAD",
        "UNIDIRECTIONAL_SEQUENCE_RNN",
        "GATHER",
        "BATCH_TO_SPACE_ND",
        "SPACE_TO_BATCH_ND",
        "TRANSPOSE",
        "MEAN",
        "SUB",
        "DIV",
        "SQUEEZE",
        "UNIDIRECTIONAL_SEQUENCE_LSTM",
        "STRIDED_SLICE",
        "BIDIRECTIONAL_SEQUENCE_RNN",
        "EXP",
        "TOPK_V2",
        "SPLIT",
        "LOG_SOFTMAX",
        "DELEGATE",
        "BIDIRECTIONAL_SEQUENCE_LSTM",
        "CAST",
        "PRELU",
        "MAXIMUM",
        "ARG_MAX",
        "MINIMUM",
        "LESS",
        "NEG",
        "PADV2",
        "GREATER",
        "GREATER_EQUAL",
        "LESS_EQUAL",
        "SELECT",
        "SLICE",
        "SIN",
        "TRANSPOSE_CONV",
        "SPARSE_TO_DENSE",
        "TILE",
        "EXPAND_DIMS",
        "EQUAL",
        "NOT_EQUAL",
        "LOG",
        "SUM",
        "SQRT",
        "RSQRT",
        "SHAPE",
        "POW",
        "ARG_MIN",
        "FAKE_QUANT",
        "REDUCE_PROD",
        "REDUCE_MAX",
        "PACK",
        "LOGICAL_OR",
        "ONE_HOT",
        "LOGICAL_AND",
        "LOGICAL_NOT",
        "UNPACK",
        "REDUCE_MIN",
        "FLOOR_DIV",
        "REDUCE_ANY",
        "SQUARE",
        "ZEROS_LIKE",
        "FILL",
        "FLOOR_MOD",
        "RANGE",
        "RESIZE_NEAREST_NEIGHBOR",
        "LEAKY_RELU",
        "SQUARED_DIFFERENCE",
        "MIRROR_PAD",
        "ABS",
        "SPLIT_V",
        "UNIQUE",
        "CEIL",
        "REVERSE_V2",
        "ADD_N",
        "GATHER_ND",
        "COS",
        "WHERE",
        "RANK",
        "ELU",
        "REVERSE_SEQUENCE",
        "MATRIX_DIAG",
        "QUANTIZE",
        "MATRIX_SET_DIAG",
        "ROUND",
        "HARD_SWISH",
        "IF",
        "WHILE",
        "NON_MAX_SUPPRESSION_V4",
        "NON_MAX_SUPPRESSION_V5",
        "SCATTER_ND",
        "SELECT_V2",
        "DENSIFY",
        "SEGMENT_SUM",
        "BATCH_MATMUL",
        "PLACEHOLDER_FOR_GREATER_OP_CODES",
        "CUMSUM",
        "CALL_ONCE",
        "BROADCAST_TO",
        "RFFT2D",
        "CONV_3D",
        "IMAG",
        "REAL",
        "COMPLEX_ABS",
        "HASHTABLE",
        "HASHTABLE_FIND",
        "HASHTABLE_IMPORT",
        "HASHTABLE_SIZE",
        "REDUCE_ALL",
        "CONV_3D_TRANSPOSE",
        "VAR_HANDLE",
        "READ_VARIABLE",
        "ASSIGN_VARIABLE",
        "BROADCAST_ARGS",
        "RANDOM_STANDARD_NORMAL",
        "BUCKETIZE",
        "RANDOM_UNIFORM",
        "MULTINOMIAL",
        "GELU",
        "DYNAMIC_UPDATE_SLICE",
        "RELU_0_TO_1",
        "UNSORTED_SEGMENT_PROD",
        "UNSORTED_SEGMENT_MAX",
        "UNSORTED_SEGMENT_SUM",
        "ATAN2",
        "UNSORTED_SEGMENT_MIN",
        "SIGN",
        "BITCAST",
        "BITWISE_XOR",
        "RIGHT_SHIFT",
    ]
)


def _tflite_op_name(code: Table) -> str:
    deprecated = int(code.scalar(0, "<b", 0))
    builtin = int(code.scalar(3, "<i", 0))
    op = max(deprecated, builtin)
    if op == 32:  # CUSTOM
        return "CUSTOM:" + (code.string(1) or "?")
    return _TFLITE_OPS[op] if 0 <= op < len(_TFLITE_OPS) else f"BUILTIN_{op}"


def _tflite_details(buf: Buffer) -> dict[str, Any]:
    model = root_table(buf)
    codes = [_tflite_op_name(c) for c in model.tables(1)]
    hist: Counter[str] = Counter()
    tensors = 0
    n_ops = 0
    subgraphs = model.tables(2)
    for sg in subgraphs:
        tensors += sg.vector_len(0)
        for op in sg.tables(3):
            idx = int(op.scalar(0, "<I", 0))
            hist[codes[idx] if idx < len(codes) else f"#{idx}"] += 1
            n_ops += 1
    details: dict[str, Any] = {
        "schema_version": int(model.scalar(0, "<I", 0)),
        "subgraphs": len(subgraphs),
        "tensors": tensors,
        "operators": n_ops,
        "operator_codes": sorted(set(codes)),
        "op_histogram": dict(hist.most_common()),
    }
    desc = model.string(3)
    if desc:
        details["description"] = desc[:200]
    if model.vector_len(7):
        details["signatures"] = model.vector_len(7)
    return details


def _pte_details(buf: Buffer) -> dict[str, Any]:
    program = root_table(buf)
    methods = []
    ops: set[str] = set()
    delegates: set[str] = set()
    for plan in program.tables(1):
        methods.append(plan.string(0) or "?")
        for op in plan.tables(6):
            name = op.string(0) or "?"
            overload = op.string(1)
            ops.add(f"{name}.{overload}" if overload else name)
        for dele in plan.tables(7):
            delegates.add(dele.string(0) or "?")
    details: dict[str, Any] = {
        "schema_version": int(program.scalar(0, "<I", 0)),
        "methods": methods,
        "operators": sorted(ops),
        "delegates": sorted(delegates),
        "extended_header": bytes(buf[8:12]) == b"eh00",
    }
    return details


def _ort_details(buf: Buffer) -> dict[str, Any]:
    """ORT format (onnxruntime's ort.fbs): InferenceSession {ort_version: string (the ORT
    *format* version, e.g. "6"), model: Model {ir_version: long, opset_import,
    producer_name: string, ...}}."""
    session = root_table(buf)
    details: dict[str, Any] = {"ort_format_version": session.string(0)}
    model = session.table(1)
    if model is not None:
        details["ir_version"] = int(model.scalar(0, "<q"))
        details["producer_name"] = model.string(2)
    return details


_MNN_OPS: tuple[str, ...] = tuple(
    [
        "AbsVal",
        "QuantizedAdd",
        "ArgMax",
        "AsString",
        "InstanceNorm",
        "BatchToSpaceND",
        "Bias",
        "BinaryOp",
        "Bnll",
        "Cast",
        "Concat",
        "Const",
        "Convolution",
        "ConvolutionDepthwise",
        "Crop",
        "CropAndResize",
        "Cubic",
        "Deconvolution",
        "DeconvolutionDepthwise",
        "Dequantize",
        "DetectionOutput",
        "Dropout",
        "Eltwise",
        "ELU",
        "Unique",
        "Exp",
        "ExpandDims",
        "Fill",
        "Flatten",
        "FloorMod",
        "Gather",
        "GatherV2",
        "Im2Seq",
        "InnerProduct",
        "Input",
        "Interp",
        "Log",
        "LRN",
        "LSTM",
        "MatMul",
        "MVN",
        "NonMaxSuppression",
        "NonMaxSuppressionV2",
        "Normalize",
        "Pack",
        "Padding",
        "Permute",
        "Pooling",
        "Power",
        "PReLU",
        "PriorBox",
        "Proposal",
        "QuantizedAvgPool",
        "QuantizedBiasAdd",
        "QuantizedConcat",
        "QuantizedDepthwiseConv2D",
        "QuantizedLogistic",
        "QuantizedMatMul",
        "QuantizedMaxPool",
        "QuantizedRelu",
        "QuantizedRelu6",
        "QuantizedReshape",
        "QuantizedSoftmax",
        "QuantizeMaxMin",
        "QuantizeV2",
        "Range",
        "Rank",
        "ReduceJoin",
        "Reduction",
        "ReLU",
        "ReLU6",
        "RequantizationRange",
        "Requantize",
        "Reshape",
        "Resize",
        "RNN",
        "ROIPooling",
        "Scale",
        "Selu",
        "Seq2Out",
        "Shape",
        "Sigmoid",
        "Size",
        "Slice",
        "SliceTf",
        "Softmax",
        "SpaceToBatchND",
        "SpatialProduct",
        "Split",
        "Segment",
        "Squeeze",
        "StridedSlice",
        "StringJoin",
        "StringSplit",
        "StringToNumber",
        "TanH",
        "TfQuantizedConv2D",
        "Threshold",
        "Tile",
        "TopKV2",
        "Transpose",
        "UnaryOp",
        "Unpack",
        "Where",
        "Moments",
        "RNNSequenceGRU",
        "BatchMatMul",
        "Unsqueeze",
        "CosineSimilarity",
        "DepthToSpace",
        "SpaceToDepth",
        "ReverseSequence",
        "Pooling3D",
        "Convolution3D",
        "MatrixBandPart",
        "GatherND",
        "DetectionPostProcess",
        "UnravelIndex",
        "ScatterNd",
        "OneHot",
        "BroadcastTo",
        "Dilation2D",
    ]
)
_MNN_HIGH_OPS = {
    128: "Raster", 129: "ConvertTensor", 130: "ArgMin", 131: "LinSpace", 132: "RandomUniform",
    133: "TensorArray", 141: "LSTMBlockCell", 142: "Reverse", 256: "Plugin", 257: "Select",
    512: "Extra", 513: "ConvInt8", 514: "Int8ToFloat", 515: "DepthwiseConvInt8", 516: "PoolInt8",
    517: "FloatToInt8", 518: "EltwiseInt8", 600: "While", 601: "If", 603: "LayerNorm",
    604: "GridSample",
}  # fmt: skip
_MNN_SOURCES = ("caffe", "tensorflow", "tflite", "onnx", "torch")


def _mnn(buf: Buffer, *, strict: bool) -> Sniffed | None:
    try:
        net = root_table(buf)
        ops = net.tables(3)
        hist: Counter[str] = Counter()
        for op in ops:
            t = int(op.scalar(5, "<i", 0))
            if 0 <= t < len(_MNN_OPS):
                hist[_MNN_OPS[t]] += 1
            elif t in _MNN_HIGH_OPS:
                hist[_MNN_HIGH_OPS[t]] += 1
            elif strict:
                return None
            else:
                hist[f"op{t}"] += 1
        biz = net.string(0)
        tensors = net.vector_len(7)
    except FlatBufferError:
        if strict:
            return None
        raise
    if strict and (not ops or biz is None or tensors == 0):
        return None
    if not ops and not net.vector_len(10):
        raise ValueError("no operators and no subgraphs")
    source = int(net.scalar(6, "<b", 0))
    details: dict[str, Any] = {
        "biz_code": biz,
        "operators": len(ops),
        "tensors": tensors,
        "source": _MNN_SOURCES[source] if 0 <= source < len(_MNN_SOURCES) else source,
        "op_histogram": dict(hist.most_common()),
    }
    return Sniffed("mnn", "MNN flatbuffer Net table", details)


# --- binary headers ---------------------------------------------------------------------


def _gguf_details(buf: Buffer) -> dict[str, Any]:
    version, n_tensors, n_kv = struct.unpack_from("<IQQ", buf, 4)
    details: dict[str, Any] = {"version": version, "tensors": n_tensors, "metadata_keys": n_kv}
    pos = 24
    wanted = {"general.architecture", "general.name", "general.file_type"}
    scalar_fmt = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
                  10: "<Q", 11: "<q", 12: "<d"}  # fmt: skip

    def read_str(p: int) -> tuple[str, int]:
        (n,) = struct.unpack_from("<Q", buf, p)
        if n > 1 << 20:
            raise ValueError("GGUF string too long")
        return bytes(buf[p + 8 : p + 8 + n]).decode("utf-8", "replace"), p + 8 + n

    for _ in range(min(n_kv, 64)):
        key, pos = read_str(pos)
        (vtype,) = struct.unpack_from("<I", buf, pos)
        pos += 4
        if vtype == 8:
            value, pos = read_str(pos)
        elif vtype in scalar_fmt:
            value = struct.unpack_from(scalar_fmt[vtype], buf, pos)[0]
            pos += struct.calcsize(scalar_fmt[vtype])
        else:  # arrays (tokenizer vocabularies ...): stop, the rest is not cheap
            break
        if key in wanted:
            details[key.split(".", 1)[1]] = value
    return details


def _hdf5(buf: Buffer) -> Sniffed:
    window = bytes(buf[: min(len(buf), 8 << 20)])
    keras = [m.decode() for m in (b"keras_version", b"model_config", b"model_weights")
             if m in window]  # fmt: skip
    if keras:
        return Sniffed("keras-h5", "HDF5 signature with Keras attributes", {"keras_markers": keras})
    return Sniffed("hdf5", "HDF5 signature", {})


def _safetensors_details(buf: Buffer) -> dict[str, Any] | None:
    (n,) = struct.unpack_from("<Q", buf, 0)
    try:
        header = json.loads(bytes(buf[8 : 8 + n]))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(header, dict):
        return None
    meta = header.pop("__metadata__", None)
    dtypes: Counter[str] = Counter()
    params = 0
    data_end = 0
    for entry in header.values():
        if not (isinstance(entry, dict) and "dtype" in entry and "shape" in entry):
            return None
        dtypes[str(entry["dtype"])] += 1
        params += math.prod(int(d) for d in entry["shape"])
        offsets = entry.get("data_offsets") or [0, 0]
        data_end = max(data_end, int(offsets[1]))
    details: dict[str, Any] = {
        "tensors": len(header),
        "total_params": params,
        "dtypes": dict(dtypes),
        "complete": 8 + n + data_end <= len(buf),
    }
    if isinstance(meta, dict):
        details["metadata"] = {str(k): str(v)[:100] for k, v in list(meta.items())[:10]}
    return details


def _paddle_lite(head: bytes) -> Sniffed | None:
    if len(head) < 26:
        return None
    (meta_version,) = struct.unpack_from("<H", head, 0)
    opt = head[2:18].split(b"\0", 1)[0]
    if meta_version > 2 or not re.fullmatch(rb"v?\d+\.\d+[\w.\-]*", opt):
        return None
    (topo_size,) = struct.unpack_from("<Q", head, 18)
    return Sniffed(
        "paddle-lite",
        "Paddle Lite naive-buffer header",
        {"meta_version": meta_version, "opt_version": opt.decode(), "topology_bytes": topo_size},
    )


# --- text formats -----------------------------------------------------------------------


def _ncnn_text_details(buf: Buffer) -> dict[str, Any]:
    text = bytes(buf[: min(len(buf), 16 << 20)]).decode("utf-8", "replace")
    lines = text.splitlines()
    details: dict[str, Any] = {}
    if len(lines) > 1:
        counts = lines[1].split()
        if len(counts) == 2 and all(c.isdigit() for c in counts):
            details["layers"], details["blobs"] = int(counts[0]), int(counts[1])
    hist = Counter(line.split()[0] for line in lines[2:] if line.strip())
    details["op_histogram"] = dict(hist.most_common())
    return details


def _tfjs(buf: Buffer, head: bytes) -> Sniffed | None:
    if b"modelTopology" not in head and b"weightsManifest" not in head:
        return None
    if len(buf) > 64 << 20:
        return Sniffed("tfjs", "TF.js model.json keys", {})
    doc = json.loads(bytes(buf))
    if not isinstance(doc, dict) or not ({"modelTopology", "weightsManifest"} & doc.keys()):
        return None
    details: dict[str, Any] = {
        k: doc[k] for k in ("format", "generatedBy", "convertedBy") if isinstance(doc.get(k), str)
    }
    topo = doc.get("modelTopology")
    if isinstance(topo, dict) and isinstance(topo.get("node"), list):
        hist = Counter(str(n.get("op")) for n in topo["node"] if isinstance(n, dict))
        details["op_histogram"] = dict(hist.most_common())
    manifest = doc.get("weightsManifest")
    if isinstance(manifest, list):
        details["weight_files"] = sum(
            len(g.get("paths", [])) for g in manifest if isinstance(g, dict)
        )
    return Sniffed("tfjs", "TF.js model.json", details)


def _openvino(buf: Buffer) -> Sniffed:
    text = bytes(buf[: min(len(buf), 64 << 20)]).decode("utf-8", "replace")
    m = re.search(r'<net\s+name="([^"]*)"(?:\s+version="(\d+)")?', text)
    hist = Counter(re.findall(r'<layer\b[^>]*\btype="([^"]+)"', text))
    details: dict[str, Any] = {"op_histogram": dict(hist.most_common())}
    if m:
        details["name"] = m.group(1)
        if m.group(2):
            details["ir_version"] = int(m.group(2))
    return Sniffed("openvino-ir", "OpenVINO IR <net> XML", details)


def _text_models(head: bytes) -> Sniffed | None:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = head[:-4].decode("utf-8", "ignore") if len(head) == 65536 else ""
    if not text or "\0" in text:
        return None
    if re.search(r"^\s*layers?\s*\{", text, re.M) and re.search(r"\btype\s*:", text):
        types = Counter(re.findall(r'\btype\s*:\s*"?(\w+)"?', text))
        return Sniffed(
            "caffe-prototxt", "Caffe text net (layer { type: ... })",
            {"op_histogram": dict(types.most_common())},
        )  # fmt: skip
    if re.search(r"^\s*node\s*\{", text, re.M) and re.search(r'\bop\s*:\s*"', text):
        ops = Counter(re.findall(r'\bop\s*:\s*"(\w+)"', text))
        return Sniffed("tf-graphdef", "TensorFlow text GraphDef", {"op_histogram": dict(ops)})
    return None


# --- protobuf formats -------------------------------------------------------------------

_COREML_TYPES = {
    200: "pipelineClassifier", 201: "pipelineRegressor", 202: "pipeline",
    300: "glmRegressor", 301: "supportVectorRegressor", 302: "treeEnsembleRegressor",
    303: "neuralNetworkRegressor", 304: "bayesianProbitRegressor", 400: "glmClassifier",
    401: "supportVectorClassifier", 402: "treeEnsembleClassifier",
    403: "neuralNetworkClassifier", 404: "kNearestNeighborsClassifier", 500: "neuralNetwork",
    501: "itemSimilarityRecommender", 502: "mlProgram", 555: "customModel", 556: "linkedModel",
    600: "oneHotEncoder", 601: "imputer", 602: "featureVectorizer", 603: "dictVectorizer",
    604: "scaler", 606: "categoricalMapping", 607: "normalizer", 609: "arrayFeatureExtractor",
    610: "nonMaximumSuppression", 2000: "identity", 2001: "textClassifier",
    2002: "wordTagger", 2003: "visionFeaturePrint", 2004: "soundAnalysisPreprocessing",
    2005: "gazetteer", 2006: "wordEmbedding", 2007: "audioFeaturePrint", 3000: "serializedModel",
}  # fmt: skip
_ONNX_FIELDS = {1, 2, 3, 4, 5, 6, 7, 8, 14, 20, 25, 26}


#: Protobuf wire types (``_core.protobuf_fields`` reports them as ints).
_VARINT, _LEN = 0, 2

#: A protobuf field: ``(number, wire_type, value)``; ``value`` is the integer of a
#: varint / fixed field, or the ``(begin, stop)`` byte range of a length-delimited one.
_Field = tuple[int, int, int | tuple[int, int]]


def _pb_fields(
    buf: Buffer,
    begin: int = 0,
    end: int | None = None,
    max_fields: int = 1_000_000,
    *,
    truncate: bool = False,
) -> list[_Field]:
    """The fields of the protobuf message ``buf[begin:end]``, read by the C++ kernel's
    wire-format reader (payloads are never copied).

    Raises:
        ModelFormatError: Malformed wire data (truncated, bad wire type, overlong varint).
        ModelLimitError: More than ``max_fields`` fields (unless ``truncate``).
    """
    try:
        return _core.protobuf_fields(buf, begin, -1 if end is None else end, max_fields, truncate)
    except _core.LimitError as exc:
        raise ModelLimitError(None, str(exc)) from None
    except _core.KernelError as exc:
        raise ModelFormatError(None, str(exc)) from None


def _pb_packed_varints(buf: Buffer, begin: int, stop: int, limit: int = 64) -> list[int]:
    """Up to ``limit`` values of a packed repeated varint field."""
    try:
        return _core.protobuf_packed_varints(buf, begin, stop, limit)
    except _core.KernelError as exc:
        raise ModelFormatError(None, str(exc)) from None


def _pb_text(buf: Buffer, span: tuple[int, int], max_len: int = 4096) -> str:
    """A length-delimited field as UTF-8 text (truncated to ``max_len`` bytes)."""
    begin, stop = span
    return bytes(buf[begin : min(stop, begin + max_len)]).decode("utf-8", "replace")


def _top_fields(
    buf: Buffer, limit: int = 4096
) -> dict[int, list[tuple[int, int | tuple[int, int]]]]:
    fields: dict[int, list[tuple[int, int | tuple[int, int]]]] = {}
    for number, wire, value in _pb_fields(buf, max_fields=limit):
        fields.setdefault(number, []).append((wire, value))
    return fields


def _span(value: int | tuple[int, int]) -> tuple[int, int]:
    if not isinstance(value, tuple):
        raise ModelFormatError(None, "expected a length-delimited protobuf field")
    return value


def _protobuf_family(
    name: str, buf: Buffer, head: bytes, expected: str | None, onnx_analyzer: Any
) -> Sniffed | None:
    protobuf_names = {"onnx", "coreml", "tf-graphdef", "tf-savedmodel", "caffemodel", "paddle"}
    if not (_looks_protobuf_model_head(head) or expected in protobuf_names):
        return None
    try:
        fields = _top_fields(buf)
    except (ModelFormatError, ModelLimitError):
        if expected in protobuf_names:
            raise
        return None
    numbers = set(fields)
    first_varint = fields.get(1, [(None, None)])[0][0] == _VARINT
    if first_varint and 7 in numbers and numbers <= _ONNX_FIELDS:
        details = _onnx_details(name, buf, fields, onnx_analyzer)
        return Sniffed("onnx", "ONNX ModelProto fields", details)
    type_fields = [n for n in numbers if n in _COREML_TYPES]
    if first_varint and type_fields and numbers <= ({1, 2, 10} | set(_COREML_TYPES)):
        return Sniffed("coreml", "Core ML Model protobuf", _coreml_details(fields, type_fields))
    if expected == "tf-savedmodel" or (numbers == {1, 2} and first_varint):
        return Sniffed("tf-savedmodel", "SavedModel protobuf", _savedmodel_details(buf, fields))
    if 1 in numbers and numbers <= {1, 2, 3, 4} and fields[1][0][0] == _LEN and expected in (
        "tf-graphdef", None,
    ):  # fmt: skip
        graphdef = _graphdef_details(buf, fields)
        if graphdef is not None:
            return Sniffed("tf-graphdef", "TensorFlow GraphDef protobuf", graphdef)
    if (100 in numbers or 2 in numbers) and numbers <= {1, 2, 3, 4, 5, 6, 7, 8, 100}:
        caffe = _caffemodel_details(buf, fields)
        if caffe is not None and (expected == "caffemodel" or caffe["layers"] > 0):
            return Sniffed("caffemodel", "Caffe NetParameter protobuf", caffe)
    if expected == "paddle" and 1 in numbers and numbers <= {1, 4, 5}:
        return Sniffed("paddle", "Paddle ProgramDesc protobuf", _paddle_details(buf, fields))
    return None


def _onnx_details(
    name: str, buf: Buffer, fields: dict[int, list[Any]], analyzer: Any
) -> dict[str, Any]:
    details: dict[str, Any] = {"ir_version": fields[1][0][1]}
    for num, key in ((2, "producer_name"), (3, "producer_version")):
        if num in fields:
            details[key] = _pb_text(buf, _span(fields[num][0][1]), 200)
    opsets: dict[str, int] = {}
    for _, value in fields.get(8, []):
        domain, version = "", 0
        begin, stop = _span(value)
        for n, _w, v in _pb_fields(buf, begin, stop):
            if n == 1:
                domain = _pb_text(buf, _span(v), 200)
            elif n == 2 and isinstance(v, int):
                version = v
        opsets[domain or "ai.onnx"] = version
    details["opset_imports"] = opsets
    hist: Counter[str] = Counter()
    n_init = 0
    params = 0
    inputs = outputs = 0
    begin, stop = _span(fields[7][0][1])
    for n, _w, v in _pb_fields(buf, begin, stop):
        if n == 1:  # NodeProto
            nb, ns = _span(v)
            for fn, _fw, fv in _pb_fields(buf, nb, ns):
                if fn == 4:
                    hist[_pb_text(buf, _span(fv), 200)] += 1
        elif n == 5:  # TensorProto initializer
            n_init += 1
            params += _tensor_numel(buf, _span(v))
        elif n == 11:
            inputs += 1
        elif n == 12:
            outputs += 1
    details.update(
        num_nodes=sum(hist.values()),
        op_histogram=dict(hist.most_common()),
        initializers=n_init,
        total_params=params,
        graph_inputs=inputs,
        graph_outputs=outputs,
        analysis="protobuf walk",
    )
    if analyzer is not None:
        try:
            extra = analyzer(buf, name)
        except Exception as exc:  # the kernel's own typed errors: keep the cheap facts
            details["kernel_error"] = str(exc)[:300]
        else:
            if extra:
                details.update(extra)
                details["analysis"] = "graphrec kernel"
    return details


def _tensor_numel(buf: Buffer, span: tuple[int, int]) -> int:
    dims: list[int] = []
    begin, stop = span
    for n, w, v in _pb_fields(buf, begin, stop, max_fields=64, truncate=True):
        if n == 1:
            if w == _LEN:
                db, ds = _span(v)
                dims.extend(_pb_packed_varints(buf, db, ds))
            elif isinstance(v, int):
                dims.append(v)
        elif n > 2:  # dims (1) and data_type (2) come first; skip the payload
            break
    return math.prod(dims) if dims else 1


def _coreml_details(fields: dict[int, list[Any]], type_fields: Sequence[int]) -> dict[str, Any]:
    return {
        "specification_version": fields[1][0][1],
        "model_type": _COREML_TYPES[type_fields[0]],
        "updatable": bool(fields.get(10, [(0, 0)])[0][1]),
    }


def _graphdef_nodes(buf: Buffer, nodes: Iterable[Any]) -> Counter[str] | None:
    hist: Counter[str] = Counter()
    for _, value in nodes:
        begin, stop = _span(value)
        op = None
        for n, _w, v in _pb_fields(buf, begin, stop):
            if n == 2:
                op = _pb_text(buf, _span(v), 200)
                break
        if op is None or not re.fullmatch(r"[A-Za-z_][\w>.-]*", op):
            return None
        hist[op] += 1
    return hist


def _graphdef_details(buf: Buffer, fields: dict[int, list[Any]]) -> dict[str, Any] | None:
    hist = _graphdef_nodes(buf, fields.get(1, []))
    if not hist:
        return None
    return {"num_nodes": sum(hist.values()), "op_histogram": dict(hist.most_common())}


def _savedmodel_details(buf: Buffer, fields: dict[int, list[Any]]) -> dict[str, Any]:
    details: dict[str, Any] = {"meta_graphs": len(fields.get(2, []))}
    hist: Counter[str] = Counter()
    for _, meta in fields.get(2, [])[:4]:
        mb, ms = _span(meta)
        for n, _w, v in _pb_fields(buf, mb, ms):
            if n == 1:  # MetaInfoDef: tags=4, tensorflow_version=5
                ib, istop = _span(v)
                for fn, _fw, fv in _pb_fields(buf, ib, istop):
                    if fn == 4:
                        details.setdefault("tags", []).append(_pb_text(buf, _span(fv), 100))
                    elif fn == 5:
                        details["tensorflow_version"] = _pb_text(buf, _span(fv), 100)
            elif n == 2:  # GraphDef
                gb, gs = _span(v)
                nodes = [(w, fv) for fn, w, fv in _pb_fields(buf, gb, gs) if fn == 1]
                hist.update(_graphdef_nodes(buf, nodes) or {})
    details["op_histogram"] = dict(hist.most_common())
    return details


def _caffemodel_details(buf: Buffer, fields: dict[int, list[Any]]) -> dict[str, Any] | None:
    hist: Counter[str] = Counter()
    for _, value in fields.get(100, []):  # LayerParameter: type = 2 (string)
        begin, stop = _span(value)
        for n, _w, v in _pb_fields(buf, begin, stop):
            if n == 2:
                hist[_pb_text(buf, _span(v), 100)] += 1
                break
    v1 = len(fields.get(2, []))
    details: dict[str, Any] = {"layers": sum(hist.values()) + v1, "op_histogram": dict(hist)}
    if 1 in fields:
        details["name"] = _pb_text(buf, _span(fields[1][0][1]), 200)
    return details


def _paddle_details(buf: Buffer, fields: dict[int, list[Any]]) -> dict[str, Any]:
    hist: Counter[str] = Counter()
    for _, block in fields.get(1, []):
        bb, bs = _span(block)
        for n, _w, v in _pb_fields(buf, bb, bs):
            if n == 4:  # OpDesc: type = 3
                ob, os_ = _span(v)
                for fn, _fw, fv in _pb_fields(buf, ob, os_):
                    if fn == 3:
                        hist[_pb_text(buf, _span(fv), 100)] += 1
    return {"blocks": len(fields.get(1, [])), "op_histogram": dict(hist.most_common())}


# --------------------------------------------------------------------------------------
# Containers recognised from member names
# --------------------------------------------------------------------------------------


def container_model(names: Sequence[str]) -> tuple[str, str, dict[str, Any]] | None:
    """Recognise a zip whose *layout* makes it one model (TorchScript, .keras, DLC, ...).

    Args:
        names: The member names of the zip.

    Returns:
        ``(format, reason, details)`` or ``None`` for an ordinary archive.
    """
    nameset = set(names)
    roots = {n.split("/", 1)[0] for n in names if "/" in n}
    for root in sorted(roots):
        p = root + "/"
        has = {n[len(p) :] for n in names if n.startswith(p)}
        tensors = [n for n in has if n.startswith("data/") and n[5:].isdigit()]
        code = [n for n in has if n.startswith("code/")]
        if "archive_format" in has or (
            any(n.startswith("models/") and n.endswith(".json") for n in has)
            and any(n.startswith("data/weights/") for n in has)
        ):
            return "torch-export", "torch.export archive layout", {"root": root}
        if "bytecode.pkl" in has:
            return (
                "pytorch-mobile",
                "zip with bytecode.pkl (lite interpreter)",
                {"root": root, "tensors": len(tensors), "code_files": len(code)},
            )
        if "data.pkl" in has and ("constants.pkl" in has or code):
            return (
                "torchscript",
                "zip with code/ and constants.pkl",
                {"root": root, "tensors": len(tensors), "code_files": len(code)},
            )
        if "data.pkl" in has and ("byteorder" in has or "version" in has or tensors):
            return "pytorch", "torch.save zip layout", {"root": root, "tensors": len(tensors)}
    if "config.json" in nameset and "model.weights.h5" in nameset:
        return "keras-v3", "zip with config.json + model.weights.h5", {}
    if "dlc.metadata" in nameset or ("model" in nameset and "model.params" in nameset):
        return "snpe-dlc", "zip with model / model.params / dlc.metadata", {}
    if "Manifest.json" in nameset and any(n.startswith("Data/com.apple.CoreML/") for n in names):
        return "coreml-package", "mlpackage layout", {}
    return None


def bundle_models(names: Iterable[str]) -> dict[str, str]:
    """Find Core ML bundles (``*.mlmodelc/``, ``*.mlpackage/``) inside an archive listing.

    Returns:
        A mapping of bundle path prefix (ending in ``/``) to format id.
    """
    out: dict[str, str] = {}
    for n in names:
        parts = n.split("/")
        for i, part in enumerate(parts[:-1]):
            low = part.lower()
            if low.endswith(".mlmodelc") or low.endswith(".mlpackage"):
                prefix = "/".join(parts[: i + 1]) + "/"
                out.setdefault(
                    prefix, "coreml-compiled" if low.endswith(".mlmodelc") else "coreml-package"
                )
                break
    return out
