"""TFLite (``.tflite``) models as an :class:`~graphrec.graph.OperatorGraph`.

A TFLite file is a FlatBuffer; :mod:`graphrec.mining._flatbuf` reads it with every
offset bounds-checked. Its main subgraph is then written as an ONNX graph *description*
(operators, tensors with shapes and element types, weights declared by shape and type
without their bytes) and analysed by the same C++ kernel as an ONNX file: FLOPs, MACs,
parameters, bytes, liveness and the graph features therefore follow the ONNX rules, and
TFLite operators take the ONNX operator types they correspond to (``CONV_2D`` is
``Conv``, ``DEPTHWISE_CONV_2D`` a grouped ``Conv``, ``FULLY_CONNECTED`` ``Gemm`` or
``MatMul``, fused activations separate ``Relu``/``Clip`` nodes as an ONNX export has them).

Layout: TFLite keeps images NHWC, ONNX NCHW. Rank-4 tensors connected to spatial
operators (convolutions, pools, resizes, depth/space moves) through layout-neutral ones
(element-wise, concatenation, padding, ...) are described in NCHW order; other tensors
keep their order. Every tensor's TFLite shape is also given to the kernel as a fallback,
and shapes the kernel infers differently are listed in the graph's warnings.

Quantised models keep their element types: int8/uint8 weights and activations, fp16
weights behind ``DEQUANTIZE`` (a ``Cast``), int8 ones behind ``DequantizeLinear``.

Example:
    >>> import graphrec.graph
    >>> g = graphrec.graph.load("model.tflite")  # doctest: +SKIP
    >>> g.source_format, g.total_flops, g.total_params  # doctest: +SKIP
"""

from __future__ import annotations

import itertools
import math
import mmap
import os
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from graphrec import _core
from graphrec.errors import (
    GraphStructureError,
    ModelFormatError,
    ModelLimitError,
    ModelLoadError,
    ShapeSpecError,
)
from graphrec.graph.operator_graph import OperatorGraph, TensorSpec, _translate
from graphrec.graph.shapes import resolve_input_shapes
from graphrec.mining._flatbuf import Buffer, FlatBufferError, Table, file_identifier, root_table

__all__ = [
    "TFLITE_IDENTIFIER",
    "TfliteModel",
    "TfliteOperator",
    "TfliteOperatorGraph",
    "TfliteTensor",
    "is_tflite",
    "load_tflite",
    "load_tflite_bytes",
    "read_tflite",
    "to_onnx_bytes",
]

#: The FlatBuffer file identifier of a TFLite model.
TFLITE_IDENTIFIER = b"TFL3"

#: Limits against hostile files (a real model is far below them).
MAX_TENSORS = 1_000_000
MAX_OPERATORS = 1_000_000
MAX_RANK = 16
MAX_ELEMENTS = 1 << 40

# BuiltinOperator names, by code (the schema's enum, codes 0..208).
_BUILTIN_NAMES = """
ADD AVERAGE_POOL_2D CONCATENATION CONV_2D DEPTHWISE_CONV_2D DEPTH_TO_SPACE DEQUANTIZE
EMBEDDING_LOOKUP FLOOR FULLY_CONNECTED HASHTABLE_LOOKUP L2_NORMALIZATION L2_POOL_2D
LOCAL_RESPONSE_NORMALIZATION LOGISTIC LSH_PROJECTION LSTM MAX_POOL_2D MUL RELU RELU_N1_TO_1
RELU6 RESHAPE RESIZE_BILINEAR RNN SOFTMAX SPACE_TO_DEPTH SVDF TANH CONCAT_EMBEDDINGS
SKIP_GRAM CALL CUSTOM EMBEDDING_LOOKUP_SPARSE PAD UNIDIRECTIONAL_SEQUENCE_RNN GATHER
BATCH_TO_SPACE_ND SPACE_TO_BATCH_ND TRANSPOSE MEAN SUB DIV SQUEEZE UNIDIRECTIONAL_SEQUENCE_LSTM
STRIDED_SLICE BIDIRECTIONAL_SEQUENCE_RNN EXP TOPK_V2 SPLIT LOG_SOFTMAX DELEGATE
BIDIRECTIONAL_SEQUENCE_LSTM CAST PRELU MAXIMUM ARG_MAX MINIMUM LESS NEG PADV2 GREATER
GREATER_EQUAL LESS_EQUAL SELECT SLICE SIN TRANSPOSE_CONV SPARSE_TO_DENSE TILE EXPAND_DIMS
EQUAL NOT_EQUAL LOG SUM SQRT RSQRT SHAPE POW ARG_MIN FAKE_QUANT REDUCE_PROD REDUCE_MAX PACK
LOGICAL_OR ONE_HOT LOGICAL_AND LOGICAL_NOT UNPACK REDUCE_MIN FLOOR_DIV REDUCE_ANY SQUARE
ZEROS_LIKE FILL FLOOR_MOD RANGE RESIZE_NEAREST_NEIGHBOR LEAKY_RELU SQUARED_DIFFERENCE
MIRROR_PAD ABS SPLIT_V UNIQUE CEIL REVERSE_V2 ADD_N GATHER_ND COS WHERE RANK ELU
REVERSE_SEQUENCE MATRIX_DIAG QUANTIZE MATRIX_SET_DIAG ROUND HARD_SWISH IF WHILE
NON_MAX_SUPPRESSION_V4 NON_MAX_SUPPRESSION_V5 SCATTER_ND SELECT_V2 DENSIFY SEGMENT_SUM
BATCH_MATMUL PLACEHOLDER_FOR_GREATER_OP_CODES CUMSUM CALL_ONCE BROADCAST_TO RFFT2D CONV_3D
IMAG REAL COMPLEX_ABS HASHTABLE HASHTABLE_FIND HASHTABLE_IMPORT HASHTABLE_SIZE REDUCE_ALL
CONV_3D_TRANSPOSE VAR_HANDLE READ_VARIABLE ASSIGN_VARIABLE BROADCAST_ARGS
RANDOM_STANDARD_NORMAL BUCKETIZE RANDOM_UNIFORM MULTINOMIAL GELU DYNAMIC_UPDATE_SLICE
RELU_0_TO_1 UNSORTED_SEGMENT_PROD UNSORTED_SEGMENT_MAX UNSORTED_SEGMENT_SUM ATAN2
UNSORTED_SEGMENT_MIN SIGN BITCAST BITWISE_XOR RIGHT_SHIFT STABLEHLO_LOGISTIC STABLEHLO_ADD
STABLEHLO_DIVIDE STABLEHLO_MULTIPLY STABLEHLO_MAXIMUM STABLEHLO_RESHAPE STABLEHLO_CLAMP
STABLEHLO_CONCATENATE STABLEHLO_BROADCAST_IN_DIM STABLEHLO_CONVOLUTION STABLEHLO_SLICE
STABLEHLO_CUSTOM_CALL STABLEHLO_REDUCE STABLEHLO_ABS STABLEHLO_AND STABLEHLO_COSINE
STABLEHLO_EXPONENTIAL STABLEHLO_FLOOR STABLEHLO_LOG STABLEHLO_MINIMUM STABLEHLO_NEGATE
STABLEHLO_OR STABLEHLO_POWER STABLEHLO_REMAINDER STABLEHLO_RSQRT STABLEHLO_SELECT
STABLEHLO_SUBTRACT STABLEHLO_TANH STABLEHLO_SCATTER STABLEHLO_COMPARE STABLEHLO_CONVERT
STABLEHLO_DYNAMIC_SLICE STABLEHLO_DYNAMIC_UPDATE_SLICE STABLEHLO_PAD STABLEHLO_IOTA
STABLEHLO_DOT_GENERAL STABLEHLO_REDUCE_WINDOW STABLEHLO_SORT STABLEHLO_WHILE STABLEHLO_GATHER
STABLEHLO_TRANSPOSE DILATE STABLEHLO_RNG_BIT_GENERATOR REDUCE_WINDOW STABLEHLO_COMPOSITE
STABLEHLO_SHIFT_LEFT STABLEHLO_CBRT
""".split()  # noqa: SIM905 - 209 names, one string keeps them readable

# TensorType -> (name, ONNX element type, bits).
_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("float32", 1, 32),
    1: ("float16", 10, 16),
    2: ("int32", 6, 32),
    3: ("uint8", 2, 8),
    4: ("int64", 7, 64),
    5: ("string", 8, 0),
    6: ("bool", 9, 8),
    7: ("int16", 5, 16),
    8: ("complex64", 14, 64),
    9: ("int8", 3, 8),
    10: ("float64", 11, 64),
    11: ("complex128", 15, 128),
    12: ("uint64", 13, 64),
    13: ("resource", 0, 0),
    14: ("variant", 0, 0),
    15: ("uint32", 12, 32),
    16: ("uint16", 4, 16),
    17: ("int4", 22, 4),
    18: ("bfloat16", 16, 16),
}


# ---- reading the FlatBuffer -----------------------------------------------------------


@dataclass
class TfliteTensor:
    """One tensor of the main subgraph."""

    index: int
    name: str
    shape: list[int]
    shape_signature: list[int] | None
    dtype: str
    onnx_type: int
    buffer: int
    #: Bytes of constant data in the file (0: an activation or an empty buffer).
    data_size: int
    #: Offset of the constant data in the file (``-1`` when there is none).
    data_offset: int
    quant_scales: int = 0
    sparse: bool = False
    is_variable: bool = False

    @property
    def is_constant(self) -> bool:
        """Whether the tensor holds data in the file (a weight or a constant)."""
        return self.data_size > 0

    @property
    def numel(self) -> int:
        """Element count (1 for a scalar)."""
        return math.prod(self.shape) if self.shape else 1


@dataclass
class TfliteOperator:
    """One operator: its builtin name (or ``CUSTOM:<code>``), tensors and options table."""

    index: int
    op: str
    inputs: list[int]
    outputs: list[int]
    options: Table | None = field(default=None, repr=False)

    def opt(self, slot: int, fmt: str, default: int | float = 0) -> int | float:
        """A scalar field of the builtin options (``default`` when absent)."""
        if self.options is None:
            return default
        return self.options.scalar(slot, fmt, default)


@dataclass
class TfliteModel:
    """The parts of a TFLite file graphrec analyses: its main subgraph."""

    version: int
    description: str
    tensors: list[TfliteTensor]
    operators: list[TfliteOperator]
    inputs: list[int]
    outputs: list[int]
    num_subgraphs: int
    file_size: int
    #: The buffer the tables point into (kept for the options tables).
    buffer: Any = field(default=None, repr=False)

    @cached_property
    def op_histogram(self) -> dict[str, int]:
        """Operators by TFLite name."""
        out: dict[str, int] = {}
        for op in self.operators:
            out[op.op] = out.get(op.op, 0) + 1
        return out


def is_tflite(path_or_data: str | os.PathLike[str] | Buffer) -> bool:
    """Whether a file (or bytes) is a TFLite FlatBuffer (its identifier is ``TFL3``)."""
    if isinstance(path_or_data, (str, os.PathLike)):
        try:
            with open(path_or_data, "rb") as fh:
                head = fh.read(8)
        except OSError:
            return False
        return file_identifier(head) == TFLITE_IDENTIFIER
    return file_identifier(path_or_data) == TFLITE_IDENTIFIER


def _fail(name: str | Path, reason: str) -> ModelFormatError:
    return ModelFormatError(name, f"not a readable TFLite model: {reason}")


def read_tflite(data: Buffer, *, name: str | Path = "<bytes>") -> TfliteModel:
    """Parse a TFLite FlatBuffer's main subgraph (every offset bounds-checked).

    Raises:
        ModelFormatError: Not TFLite, truncated, or an offset/index out of range.
        ModelLimitError: Counts or ranks beyond the safety limits.
        GraphStructureError: An operator names a tensor that does not exist.
    """
    if len(data) < 8 or file_identifier(data) != TFLITE_IDENTIFIER:
        raise _fail(name, "no 'TFL3' file identifier")
    try:
        return _read(data, name)
    except FlatBufferError as exc:
        raise _fail(name, str(exc)) from None
    except (struct.error, UnicodeDecodeError, OverflowError, ValueError) as exc:
        raise _fail(name, f"{type(exc).__name__}: {exc}") from None


def _read(buf: Buffer, name: str | Path) -> TfliteModel:
    model = root_table(buf)
    version = int(model.scalar(0, "<I", 0))
    codes: list[str] = []
    for oc in model.tables(1, limit=100_000):
        code = int(oc.scalar(3, "<i", 0))
        dep = int(oc.scalar(0, "<b", 0))
        code = max(code, dep)
        if code == 32:  # CUSTOM
            codes.append(f"CUSTOM:{oc.string(1) or '?'}")
        elif 0 <= code < len(_BUILTIN_NAMES):
            codes.append(_BUILTIN_NAMES[code])
        else:
            codes.append(f"BUILTIN_{code}")
    n_sub = model.vector_len(2)
    if n_sub == 0:
        raise _fail(name, "no subgraph")
    sub = model.tables(2, limit=1)[0]
    n_buffers = model.vector_len(4)
    buffers = model.tables(4, limit=n_buffers)
    n_tensors = sub.vector_len(0)
    if n_tensors > MAX_TENSORS:
        raise ModelLimitError(name, f"{n_tensors} tensors (limit {MAX_TENSORS})")
    n_ops = sub.vector_len(3)
    if n_ops > MAX_OPERATORS:
        raise ModelLimitError(name, f"{n_ops} operators (limit {MAX_OPERATORS})")
    tensors: list[TfliteTensor] = []
    for i, t in enumerate(sub.tables(0, limit=n_tensors)):
        if t.vector_len(0) > MAX_RANK:
            raise ModelLimitError(name, f"tensor {i} has rank {t.vector_len(0)} (limit {MAX_RANK})")
        shape = [int(d) for d in t.scalars(0, "<i")]
        if any(d < 0 for d in shape):
            raise _fail(name, f"tensor {i} has a negative dimension {shape}")
        if math.prod(shape) > MAX_ELEMENTS:
            raise ModelLimitError(name, f"tensor {i} declares {math.prod(shape)} elements")
        sig = [int(d) for d in t.scalars(7, "<i")] if t.has(7) else None
        ttype = int(t.scalar(1, "<b", 0))
        if ttype not in _TYPES:
            raise _fail(name, f"tensor {i} has unknown element type {ttype}")
        dtype, onnx_type, _bits = _TYPES[ttype]
        bidx = int(t.scalar(2, "<I", 0))
        data_size, data_offset = 0, -1
        if bidx >= n_buffers and n_buffers:
            raise _fail(name, f"tensor {i} refers to buffer {bidx} of {n_buffers}")
        if 0 < bidx < n_buffers:
            b = buffers[bidx]
            if b.has(0):
                vec = b._vector(0)  # the reader's own bounds-checked helper
                if vec is not None:
                    start, length = vec
                    if start + length > len(buf):
                        raise _fail(name, f"buffer {bidx} runs past the end of the file")
                    data_size, data_offset = length, start
            elif b.has(1):  # data outside the FlatBuffer (files > 2 GB)
                off = int(b.scalar(1, "<Q", 0))
                size = int(b.scalar(2, "<Q", 0))
                if off + size > len(buf):
                    raise _fail(
                        name, f"buffer {bidx} (offset {off}, size {size}) runs past the file"
                    )
                data_size, data_offset = size, off
        scales = 0
        q = t.table(4)
        if q is not None:
            scales = q.vector_len(2)
        tensors.append(
            TfliteTensor(
                index=i,
                name=t.string(3) or f"tensor_{i}",
                shape=shape,
                shape_signature=sig,
                dtype=dtype,
                onnx_type=onnx_type,
                buffer=bidx,
                data_size=data_size,
                data_offset=data_offset,
                quant_scales=scales,
                sparse=t.has(6),
                is_variable=bool(t.scalar(5, "<B", 0)),
            )
        )
    n_t = len(tensors)

    def check(idx: Sequence[int | float], what: str) -> list[int]:
        out = [int(v) for v in idx]
        for v in out:
            if v < -1 or v >= n_t:
                raise GraphStructureError(name, f"{what} refers to tensor {v} of {n_t}")
        return out

    operators: list[TfliteOperator] = []
    for k, op in enumerate(sub.tables(3, limit=n_ops)):
        ci = int(op.scalar(0, "<I", 0))
        if ci >= len(codes):
            raise _fail(name, f"operator {k} has opcode index {ci} of {len(codes)}")
        operators.append(
            TfliteOperator(
                index=k,
                op=codes[ci],
                inputs=check(op.scalars(1, "<i"), f"operator {k} input"),
                outputs=check(op.scalars(2, "<i"), f"operator {k} output"),
                options=op.table(4) if op.has(4) else None,
            )
        )
    desc = model.string(3) or ""
    return TfliteModel(
        version=version,
        description=desc,
        tensors=tensors,
        operators=operators,
        inputs=check(sub.scalars(1, "<i"), "subgraph input"),
        outputs=check(sub.scalars(2, "<i"), "subgraph output"),
        num_subgraphs=n_sub,
        file_size=len(buf),
        buffer=buf,
    )


# ---- a minimal protobuf writer (the ONNX messages the kernel reads) -------------------


def _varint_slow(v: int) -> bytes:
    if v < 0:
        v += 1 << 64
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


_SMALL_VARINTS = [_varint_slow(v) for v in range(1 << 14)]


def _varint(v: int) -> bytes:
    return _SMALL_VARINTS[v] if 0 <= v < 16384 else _varint_slow(v)


_KEYS: dict[tuple[int, int], bytes] = {}


def _key(fieldno: int, wire: int) -> bytes:
    k = _KEYS.get((fieldno, wire))
    if k is None:
        k = _KEYS[(fieldno, wire)] = _varint((fieldno << 3) | wire)
    return k


def _f_varint(fieldno: int, v: int) -> bytes:
    return _key(fieldno, 0) + _varint(int(v))


def _f_bytes(fieldno: int, payload: bytes) -> bytes:
    return _key(fieldno, 2) + _varint(len(payload)) + payload


def _f_str(fieldno: int, s: str) -> bytes:
    return _f_bytes(fieldno, s.encode("utf-8"))


def _f_float(fieldno: int, v: float) -> bytes:
    return _key(fieldno, 5) + struct.pack("<f", v)


def _attr(name: str, value: Any) -> bytes:
    """AttributeProto: name=1, f=2, i=3, s=4, floats=7, ints=8, type=20."""
    out = _f_str(1, name)
    if isinstance(value, (bool, int, np.integer)):
        return out + _f_varint(3, int(value)) + _f_varint(20, 2)
    if isinstance(value, float):
        return out + _f_float(2, value) + _f_varint(20, 1)
    if isinstance(value, str):
        return out + _f_bytes(4, value.encode()) + _f_varint(20, 3)
    vals = list(value)
    if vals and all(isinstance(v, float) for v in vals):
        return out + b"".join(_f_float(7, v) for v in vals) + _f_varint(20, 6)
    return out + b"".join(_f_varint(8, int(v)) for v in vals) + _f_varint(20, 7)


def _node(
    op_type: str,
    inputs: Sequence[str],
    outputs: Sequence[str],
    name: str,
    attrs: Mapping[str, Any],
    domain: str = "",
) -> bytes:
    """NodeProto: input=1, output=2, name=3, op_type=4, attribute=5, domain=7."""
    out = b"".join(_f_str(1, i) for i in inputs) + b"".join(_f_str(2, o) for o in outputs)
    out += _f_str(3, name) + _f_str(4, op_type)
    out += b"".join(_f_bytes(5, _attr(k, v)) for k, v in attrs.items())
    if domain:
        out += _f_str(7, domain)
    return out


def _tensor(name: str, onnx_type: int, dims: Sequence[int], raw: bytes | None = None) -> bytes:
    """TensorProto: dims=1, data_type=2, name=8, raw_data=9 (no raw data: shape only)."""
    out = b"".join(_f_varint(1, d) for d in dims) + _f_varint(2, onnx_type) + _f_str(8, name)
    if raw is not None:
        out += _f_bytes(9, raw)
    return out


def _value_info(name: str, onnx_type: int, dims: Sequence[int]) -> bytes:
    """ValueInfoProto{name=1, type=2{tensor_type=1{elem_type=1, shape=2{dim=1{dim_value=1}}}}}."""
    shape = b"".join(_f_bytes(1, _f_varint(1, d)) for d in dims)
    ttype = _f_varint(1, onnx_type) + _f_bytes(2, shape)
    return _f_str(1, name) + _f_bytes(2, _f_bytes(1, ttype))


# ---- TFLite -> ONNX description ------------------------------------------------------

_NCHW = (0, 3, 1, 2)  # canonical axis i holds TFLite (NHWC) axis _NCHW[i]
_NHWC_POS = (0, 2, 3, 1)  # TFLite axis a sits at canonical position _NHWC_POS[a]

# Operators whose first input and first output are NHWC images.
_SPATIAL = {
    "CONV_2D",
    "DEPTHWISE_CONV_2D",
    "TRANSPOSE_CONV",
    "AVERAGE_POOL_2D",
    "MAX_POOL_2D",
    "L2_POOL_2D",
    "RESIZE_BILINEAR",
    "RESIZE_NEAREST_NEIGHBOR",
    "DEPTH_TO_SPACE",
    "SPACE_TO_DEPTH",
    "LOCAL_RESPONSE_NORMALIZATION",
    "SPACE_TO_BATCH_ND",
    "BATCH_TO_SPACE_ND",
}
# Operators through which a rank-4 layout passes unchanged (same-rank data operands).
_NEUTRAL = {
    "ADD",
    "SUB",
    "MUL",
    "DIV",
    "MAXIMUM",
    "MINIMUM",
    "POW",
    "SQUARED_DIFFERENCE",
    "FLOOR_DIV",
    "FLOOR_MOD",
    "LESS",
    "LESS_EQUAL",
    "GREATER",
    "GREATER_EQUAL",
    "EQUAL",
    "NOT_EQUAL",
    "LOGICAL_AND",
    "LOGICAL_OR",
    "LOGICAL_NOT",
    "SELECT",
    "SELECT_V2",
    "LOGISTIC",
    "TANH",
    "RELU",
    "RELU6",
    "RELU_N1_TO_1",
    "RELU_0_TO_1",
    "EXP",
    "LOG",
    "SQRT",
    "RSQRT",
    "ABS",
    "NEG",
    "FLOOR",
    "CEIL",
    "ROUND",
    "SIN",
    "COS",
    "SQUARE",
    "HARD_SWISH",
    "LEAKY_RELU",
    "ELU",
    "GELU",
    "PRELU",
    "SIGN",
    "QUANTIZE",
    "DEQUANTIZE",
    "CAST",
    "CONCATENATION",
    "PAD",
    "PADV2",
    "MIRROR_PAD",
    "ADD_N",
    "SPLIT",
    "SPLIT_V",
    "L2_NORMALIZATION",
    "SOFTMAX",
    "LOG_SOFTMAX",
    "FAKE_QUANT",
    "ZEROS_LIKE",
    "TILE",
}

# Operators that keep the layout of their first input when its rank does not change.
_SAME_RANK = {"SLICE", "STRIDED_SLICE", "GATHER", "REVERSE_V2", "BROADCAST_TO"}

_UNARY = {
    "LOGISTIC": "Sigmoid",
    "TANH": "Tanh",
    "RELU": "Relu",
    "EXP": "Exp",
    "LOG": "Log",
    "SQRT": "Sqrt",
    "ABS": "Abs",
    "NEG": "Neg",
    "FLOOR": "Floor",
    "CEIL": "Ceil",
    "ROUND": "Round",
    "SIN": "Sin",
    "COS": "Cos",
    "HARD_SWISH": "HardSwish",
    "ELU": "Elu",
    "LOGICAL_NOT": "Not",
    "SIGN": "Sign",
    "ZEROS_LIKE": "Identity",
    "FAKE_QUANT": "Identity",
    "GELU": "Gelu",
}
_BINARY = {
    "ADD": "Add",
    "SUB": "Sub",
    "MUL": "Mul",
    "DIV": "Div",
    "MAXIMUM": "Max",
    "MINIMUM": "Min",
    "POW": "Pow",
    "FLOOR_DIV": "Div",
    "FLOOR_MOD": "Mod",
    "LESS": "Less",
    "LESS_EQUAL": "LessOrEqual",
    "GREATER": "Greater",
    "GREATER_EQUAL": "GreaterOrEqual",
    "EQUAL": "Equal",
    "LOGICAL_AND": "And",
    "LOGICAL_OR": "Or",
    "PRELU": "PRelu",
}
_REDUCE = {
    "MEAN": "ReduceMean",
    "SUM": "ReduceSum",
    "REDUCE_MAX": "ReduceMax",
    "REDUCE_MIN": "ReduceMin",
    "REDUCE_PROD": "ReduceProd",
    "REDUCE_ANY": "ReduceMax",
    "REDUCE_ALL": "ReduceMin",
}
# Inputs that hold shapes, axes, paddings or sizes (int64 in ONNX: not parameters).
_INDEX_INPUTS: dict[str, tuple[int, ...]] = {
    "RESHAPE": (1,),
    "MEAN": (1,),
    "SUM": (1,),
    "REDUCE_MAX": (1,),
    "REDUCE_MIN": (1,),
    "REDUCE_PROD": (1,),
    "REDUCE_ANY": (1,),
    "REDUCE_ALL": (1,),
    "PAD": (1,),
    "PADV2": (1,),
    "MIRROR_PAD": (1,),
    "TRANSPOSE": (1,),
    "STRIDED_SLICE": (1, 2, 3),
    "SLICE": (1, 2),
    "TILE": (1,),
    "EXPAND_DIMS": (1,),
    "RESIZE_BILINEAR": (1,),
    "RESIZE_NEAREST_NEIGHBOR": (1,),
    "SPLIT": (0,),
    "SPLIT_V": (1, 2),
    "BROADCAST_TO": (1,),
    "FILL": (0,),
    "ARG_MAX": (1,),
    "ARG_MIN": (1,),
    "SPACE_TO_BATCH_ND": (1, 2),
    "BATCH_TO_SPACE_ND": (1, 2),
    "TRANSPOSE_CONV": (0,),
    "GATHER": (1,),
    "GATHER_ND": (1,),
    "TOPK_V2": (1,),
    "ONE_HOT": (1,),
    "CUMSUM": (1,),
    "REVERSE_V2": (1,),
    "RANGE": (0, 1, 2),
}
# fused_activation_function slot of each operator's options table.
_FUSED_SLOT = {
    "CONV_2D": 3,
    "DEPTHWISE_CONV_2D": 4,
    "TRANSPOSE_CONV": 3,
    "FULLY_CONNECTED": 0,
    "ADD": 0,
    "SUB": 0,
    "MUL": 0,
    "DIV": 0,
    "AVERAGE_POOL_2D": 5,
    "MAX_POOL_2D": 5,
    "L2_POOL_2D": 5,
    "CONCATENATION": 1,
    "L2_NORMALIZATION": 0,
}


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        self.parent[self.find(a)] = self.find(b)


def _nhwc_tensors(m: TfliteModel) -> set[int]:
    """Rank-4 tensors described in NCHW order (connected to a spatial operator)."""
    rank4 = [len(t.shape) == 4 for t in m.tensors]
    uf = _UnionFind(len(m.tensors))
    seeds: set[int] = set()
    for op in m.operators:
        if op.op in _SPATIAL:
            for t in op.inputs[:1] if op.op != "TRANSPOSE_CONV" else op.inputs[2:3]:
                if t >= 0 and rank4[t]:
                    seeds.add(t)
            for t in op.outputs[:1]:
                if t >= 0 and rank4[t]:
                    seeds.add(t)
        elif op.op in _NEUTRAL or op.op in _SAME_RANK:
            members = [t for t in (*op.inputs, *op.outputs) if t >= 0 and rank4[t]]
            if op.op in _SAME_RANK:
                members = [t for t in (*op.inputs[:1], *op.outputs[:1]) if t >= 0 and rank4[t]]
            for a, b in itertools.pairwise(members):
                uf.union(a, b)
    roots = {uf.find(t) for t in seeds}
    return {i for i in range(len(m.tensors)) if rank4[i] and uf.find(i) in roots}


class _Builder:
    """Writes the ONNX GraphProto for one TFLite subgraph."""

    def __init__(self, m: TfliteModel) -> None:
        self.m = m
        self.nhwc = _nhwc_tensors(m)
        self.nodes: list[bytes] = []
        self.inits: list[bytes] = []
        self.declared: set[str] = set()
        self.value_infos: list[bytes] = []
        self.names = self._unique_names()
        self.unsupported: dict[str, int] = {}
        self.counter = 0
        self.dense_consts: set[int] = set()
        #: Tensors read from resource variables (streaming state): extra graph inputs.
        self.state_inputs: list[int] = []
        self.weight_names: dict[tuple[int, tuple[int, ...], bool], str] = {}

    def _unique_names(self) -> list[str]:
        seen: dict[str, int] = {}
        out = []
        for t in self.m.tensors:
            base = t.name or f"tensor_{t.index}"
            n = seen.get(base, 0)
            seen[base] = n + 1
            out.append(base if n == 0 else f"{base}__{n}")
        return out

    # -- shapes --
    def canon(self, t: int) -> list[int]:
        shape = self.m.tensors[t].shape
        if t in self.nhwc:
            return [shape[i] for i in _NCHW]
        return list(shape)

    def axis(self, t: int, a: int) -> int:
        rank = len(self.m.tensors[t].shape)
        a = a + rank if a < 0 else a
        return _NHWC_POS[a] if t in self.nhwc and 0 <= a < 4 else a

    # -- emitting --
    def fresh(self, base: str) -> str:
        self.counter += 1
        return f"{base}__g{self.counter}"

    def node(
        self,
        op_type: str,
        inputs: Sequence[str],
        outputs: Sequence[str],
        domain: str = "",
        **attrs: Any,
    ) -> None:
        name = outputs[0] if outputs and outputs[0] else self.fresh(op_type)
        self.nodes.append(_node(op_type, inputs, outputs, name, attrs, domain))

    def const_i64(self, values: Sequence[int], shape: Sequence[int] | None = None) -> str:
        name = self.fresh("const")
        arr = np.asarray(list(values), dtype="<i8")
        dims = list(shape) if shape is not None else [len(arr)]
        self.inits.append(_tensor(name, 7, dims, arr.tobytes()))
        self.declared.add(name)
        return name

    def weight(self, t: int, dims: Sequence[int] | None = None, *, as_index: bool = False) -> str:
        """A constant tensor declared by shape and type (its bytes stay in the file)."""
        tt = self.m.tensors[t]
        dims = list(dims) if dims is not None else self.canon(t)
        key = (t, tuple(dims), as_index)
        if key in self.weight_names:
            return self.weight_names[key]
        canonical = dims == self.canon(t) and not as_index
        name = self.names[t] if canonical else self.fresh(self.names[t])
        self.weight_names[key] = name
        self.declared.add(name)
        if as_index:
            vals = self.index_values(t)
            raw = None if vals is None else np.asarray(vals, "<i8").tobytes()
            self.inits.append(_tensor(name, 7, dims, raw))
        else:
            self.inits.append(_tensor(name, tt.onnx_type, dims))
        return name

    def index_values(self, t: int) -> list[int] | None:
        tt = self.m.tensors[t]
        if not tt.is_constant or tt.dtype not in ("int32", "int64") or tt.numel > 4096:
            return None
        size = 4 if tt.dtype == "int32" else 8
        if tt.data_size < tt.numel * size:
            return None
        raw = bytes(self.m.buffer[tt.data_offset : tt.data_offset + tt.numel * size])
        return [int(v) for v in np.frombuffer(raw, dtype="<i4" if size == 4 else "<i8")]

    def inp(self, t: int) -> str:
        """The ONNX name of TFLite tensor ``t`` as an operator input."""
        if t < 0:
            return ""
        if self.m.tensors[t].is_constant:
            return self.weight(t)
        return self.names[t]

    def out(self, t: int) -> str:
        return self.names[t]

    def bcast_const(self, t: int, other: int) -> str:
        """A constant operand broadcast against an NCHW tensor: align it as TFLite does."""
        tt = self.m.tensors[t]
        if other in self.nhwc and len(tt.shape) < 4 and tt.is_constant:
            full = [1] * (4 - len(tt.shape)) + list(tt.shape)
            return self.weight(t, [full[i] for i in _NCHW])
        return self.inp(t)

    def activation(self, op: TfliteOperator, out: str) -> str:
        """Emit the fused activation of ``op``; return the name its core must write."""
        slot = _FUSED_SLOT.get(op.op)
        code = int(op.opt(slot, "<b", 0)) if slot is not None else 0
        if code == 0:
            return out
        pre = self.fresh(out + "__preact")
        if code == 1:
            self.node("Relu", [pre], [out])
        elif code in (2, 3):  # RELU_N1_TO_1, RELU6
            lo, hi = (-1.0, 1.0) if code == 2 else (0.0, 6.0)
            self.node("Clip", [pre, self.scalar_f(lo), self.scalar_f(hi)], [out])
        elif code == 4:
            self.node("Tanh", [pre], [out])
        else:  # SIGN_BIT
            self.node("Sign", [pre], [out])
        return pre

    def scalar_f(self, v: float) -> str:
        name = self.fresh("scalar")
        self.inits.append(_tensor(name, 1, [], struct.pack("<f", v)))
        return name

    # -- the model --
    def build(self) -> bytes:
        produced = {t for op in self.m.operators for t in op.outputs if t >= 0}
        produced |= set(self.m.inputs)
        for op in self.m.operators:
            for t in op.inputs:
                tt = self.m.tensors[t] if t >= 0 else None
                if tt is not None and t not in produced and not tt.is_constant:
                    # state / empty-buffer tensors nobody writes: constants of their shape
                    produced.add(t)
                    self.declared.add(self.names[t])
                    self.inits.append(_tensor(self.names[t], tt.onnx_type or 1, self.canon(t)))
                    self.dense_consts.add(t)
        for op in self.m.operators:
            handler = _HANDLERS.get(op.op)
            if handler is None or not all(o >= 0 for o in op.outputs):
                self.opaque(op)
            else:
                handler(self, op)
        return self.graph()

    def opaque(self, op: TfliteOperator) -> None:
        """An operator without a rule: kept with its TFLite name (costs unknown)."""
        self.unsupported[op.op] = self.unsupported.get(op.op, 0) + 1
        op_type = op.op.split(":", 1)[1] if op.op.startswith("CUSTOM:") else op.op
        self.node(
            op_type,
            [self.inp(t) for t in op.inputs],
            [self.out(t) for t in op.outputs if t >= 0],
            domain="tflite",
        )

    def graph(self) -> bytes:
        m = self.m
        parts = [_f_bytes(1, n) for n in self.nodes]
        parts.append(_f_str(2, "tflite"))
        parts += [_f_bytes(5, t) for t in self.inits]
        for t in m.inputs:
            tt = m.tensors[t]
            parts.append(_f_bytes(11, _value_info(self.names[t], tt.onnx_type, self.canon(t))))
        for t in self.state_inputs:
            tt = m.tensors[t]
            parts.append(_f_bytes(11, _value_info(self.names[t], tt.onnx_type, self.canon(t))))
        for t in m.outputs:
            tt = m.tensors[t]
            parts.append(_f_bytes(12, _value_info(self.names[t], tt.onnx_type, self.canon(t))))
        graph_io = set(m.inputs) | set(m.outputs)
        for tt in m.tensors:
            if (
                tt.index not in graph_io
                and not tt.is_constant
                and tt.index not in self.dense_consts
                and tt.onnx_type != 0
            ):
                parts.append(
                    _f_bytes(
                        13, _value_info(self.names[tt.index], tt.onnx_type, self.canon(tt.index))
                    )
                )
        g = b"".join(parts)
        model = _f_varint(1, 8) + _f_str(2, "tflite") + _f_str(3, str(m.version)) + _f_bytes(7, g)
        model += _f_bytes(8, _f_str(1, "") + _f_varint(2, 17))
        return model


# ---- per-operator rules ---------------------------------------------------------------


def _same_pads(
    in_sp: Sequence[int],
    out_sp: Sequence[int],
    k: Sequence[int],
    s: Sequence[int],
    d: Sequence[int],
    same: bool,
) -> list[int]:
    n = len(k)
    pads = [0] * (2 * n)
    if not same:
        return pads
    for i in range(n):
        total = max((out_sp[i] - 1) * s[i] + (k[i] - 1) * d[i] + 1 - in_sp[i], 0)
        pads[i], pads[i + n] = total // 2, total - total // 2
    return pads


def _conv(b: _Builder, op: TfliteOperator) -> None:
    x, w = op.inputs[0], op.inputs[1]
    bias = op.inputs[2] if len(op.inputs) > 2 else -1
    y = op.outputs[0]
    xs, ws, ys = b.m.tensors[x].shape, b.m.tensors[w].shape, b.m.tensors[y].shape
    if len(xs) != 4 or len(ws) != 4 or len(ys) != 4:
        b.opaque(op)
        return
    dw = op.op == "DEPTHWISE_CONV_2D"
    slot_dil = (5, 6) if dw else (4, 5)
    s = [int(op.opt(2, "<i", 1)), int(op.opt(1, "<i", 1))]
    d = [int(op.opt(slot_dil[1], "<i", 1)), int(op.opt(slot_dil[0], "<i", 1))]
    k = [ws[1], ws[2]]
    same = int(op.opt(0, "<b", 0)) == 0
    pads = _same_pads(xs[1:3], ys[1:3], k, s, d, same)
    if dw:
        wdims = [ws[3], 1, ws[1], ws[2]]
        group = xs[3]
    else:
        wdims = [ws[0], ws[3], ws[1], ws[2]]
        group = max(1, xs[3] // max(ws[3], 1))
    if b.m.tensors[w].is_constant:
        wname = b.weight(w, wdims)
    else:  # a filter computed at run time (fp16/int8 weights behind DEQUANTIZE)
        wname = b.fresh(b.names[w] + "__oihw")
        b.node("Transpose", [b.inp(w)], [wname], perm=[3, 0, 1, 2] if dw else [0, 3, 1, 2])
    ins = [b.inp(x), wname] + (
        [
            b.weight(bias, [b.m.tensors[bias].numel])
            if b.m.tensors[bias].is_constant
            else b.inp(bias)
        ]
        if bias >= 0
        else []
    )
    core = b.activation(op, b.out(y))
    b.node("Conv", ins, [core], kernel_shape=k, strides=s, dilations=d, pads=pads, group=group)


def _transpose_conv(b: _Builder, op: TfliteOperator) -> None:
    w, x = op.inputs[1], op.inputs[2]
    bias = op.inputs[3] if len(op.inputs) > 3 else -1
    y = op.outputs[0]
    xs, ws, ys = b.m.tensors[x].shape, b.m.tensors[w].shape, b.m.tensors[y].shape
    if len(xs) != 4 or len(ws) != 4 or len(ys) != 4:
        b.opaque(op)
        return
    s = [int(op.opt(2, "<i", 1)), int(op.opt(1, "<i", 1))]
    k = [ws[1], ws[2]]
    pads, out_pad = [0, 0, 0, 0], [0, 0]
    for i in range(2):
        total = (xs[1 + i] - 1) * s[i] + k[i] - ys[1 + i]
        if total >= 0:
            pads[i], pads[i + 2] = total // 2, total - total // 2
        else:
            out_pad[i] = -total
    if b.m.tensors[w].is_constant:
        wname = b.weight(w, [ws[3], ws[0], ws[1], ws[2]])
    else:
        wname = b.fresh(b.names[w] + "__iohw")
        b.node("Transpose", [b.inp(w)], [wname], perm=[3, 0, 1, 2])
    ins = [b.inp(x), wname] + (
        [
            b.inp(bias)
            if not b.m.tensors[bias].is_constant
            else b.weight(bias, [b.m.tensors[bias].numel])
        ]
        if bias >= 0
        else []
    )
    core = b.activation(op, b.out(y))
    b.node(
        "ConvTranspose", ins, [core], kernel_shape=k, strides=s, pads=pads, output_padding=out_pad
    )


def _pool(b: _Builder, op: TfliteOperator) -> None:
    x, y = op.inputs[0], op.outputs[0]
    xs, ys = b.m.tensors[x].shape, b.m.tensors[y].shape
    if len(xs) != 4:
        b.opaque(op)
        return
    s = [int(op.opt(2, "<i", 1)), int(op.opt(1, "<i", 1))]
    k = [int(op.opt(4, "<i", 1)), int(op.opt(3, "<i", 1))]
    same = int(op.opt(0, "<b", 0)) == 0
    pads = _same_pads(xs[1:3], ys[1:3], k, s, [1, 1], same)
    core = b.activation(op, b.out(y))
    kind = {"AVERAGE_POOL_2D": "AveragePool", "MAX_POOL_2D": "MaxPool", "L2_POOL_2D": "LpPool"}[
        op.op
    ]
    b.node(kind, [b.inp(x)], [core], kernel_shape=k, strides=s, pads=pads)


def _fully_connected(b: _Builder, op: TfliteOperator) -> None:
    x, w = op.inputs[0], op.inputs[1]
    bias = op.inputs[2] if len(op.inputs) > 2 else -1
    y = op.outputs[0]
    xs, ws, ys = b.m.tensors[x].shape, b.m.tensors[w].shape, b.m.tensors[y].shape
    if len(ws) != 2:
        b.opaque(op)
        return
    n_out, n_in = ws
    rows = math.prod(xs) // max(n_in, 1)
    src = b.inp(x)
    core = b.activation(op, b.out(y))
    bias_name = ""
    if bias >= 0:
        bias_name = b.weight(bias, [n_out]) if b.m.tensors[bias].is_constant else b.inp(bias)
    if len(xs) == 2 and len(ys) == 2:
        b.node(
            "Gemm",
            [src, b.weight(w, [n_out, n_in]) if b.m.tensors[w].is_constant else b.inp(w)]
            + ([bias_name] if bias_name else []),
            [core],
            transB=1,
        )
        return
    if len(xs) <= 2 or len(ys) <= 2:
        # flattened to [rows, n_in] as TFLite does
        flat = b.fresh(b.names[x] + "__flat")
        b.node("Reshape", [src, b.const_i64([rows, n_in])], [flat])
        mid = core if len(ys) == 2 else b.fresh(b.names[y] + "__2d")
        b.node(
            "Gemm",
            [flat, b.weight(w, [n_out, n_in]) if b.m.tensors[w].is_constant else b.inp(w)]
            + ([bias_name] if bias_name else []),
            [mid],
            transB=1,
        )
        if mid != core:
            b.node("Reshape", [mid, b.const_i64(b.canon(y))], [core])
        return
    # keep_num_dims on a rank-3+ input: MatMul (+ Add), as an ONNX export of nn.Linear
    wname = b.weight(w, [n_in, n_out]) if b.m.tensors[w].is_constant else b.inp(w)
    src_in = src
    if x in b.nhwc:  # rank 4 in NCHW order: back to the TFLite order first
        src_in = b.fresh(b.names[x] + "__nhwc")
        b.node("Transpose", [src], [src_in], perm=list(_NHWC_POS))
    mm = core if not bias_name else b.fresh(b.names[y] + "__mm")
    b.node("MatMul", [src_in, wname], [mm])
    if bias_name:
        b.node("Add", [mm, bias_name], [core])


def _unary(b: _Builder, op: TfliteOperator) -> None:
    y = op.outputs[0]
    x = op.inputs[0]
    if op.op in ("RELU6", "RELU_N1_TO_1", "RELU_0_TO_1"):
        lo, hi = {"RELU6": (0.0, 6.0), "RELU_N1_TO_1": (-1.0, 1.0), "RELU_0_TO_1": (0.0, 1.0)}[
            op.op
        ]
        b.node("Clip", [b.inp(x), b.scalar_f(lo), b.scalar_f(hi)], [b.out(y)])
    elif op.op == "RSQRT":
        mid = b.fresh(b.names[y] + "__sqrt")
        b.node("Sqrt", [b.inp(x)], [mid])
        b.node("Reciprocal", [mid], [b.out(y)])
    elif op.op == "SQUARE":
        b.node("Mul", [b.inp(x), b.inp(x)], [b.out(y)])
    elif op.op == "LEAKY_RELU":
        b.node("LeakyRelu", [b.inp(x)], [b.out(y)], alpha=float(op.opt(0, "<f", 0.2)))
    else:
        b.node(_UNARY[op.op], [b.inp(x)], [b.out(y)])


def _binary(b: _Builder, op: TfliteOperator) -> None:
    y = op.outputs[0]
    x1, x2 = op.inputs[0], op.inputs[1]
    a = b.bcast_const(x1, x2)
    c = b.bcast_const(x2, x1)
    if op.op == "SQUARED_DIFFERENCE":
        mid = b.fresh(b.names[y] + "__diff")
        b.node("Sub", [a, c], [mid])
        b.node("Mul", [mid, mid], [b.out(y)])
        return
    core = b.activation(op, b.out(y))
    b.node(_BINARY[op.op], [a, c], [core])


def _quant(b: _Builder, op: TfliteOperator) -> None:
    x, y = op.inputs[0], op.outputs[0]
    tx, ty = b.m.tensors[x], b.m.tensors[y]
    if (op.op == "DEQUANTIZE" and tx.dtype in ("float16", "bfloat16")) or op.op == "CAST":
        b.node("Cast", [b.inp(x)], [b.out(y)], to=ty.onnx_type)
    elif op.op == "DEQUANTIZE":
        b.node("DequantizeLinear", [b.inp(x), b.scalar_f(1.0)], [b.out(y)])
    else:  # QUANTIZE (also requantize)
        b.node("QuantizeLinear", [b.inp(x), b.scalar_f(1.0)], [b.out(y)])


def _concat(b: _Builder, op: TfliteOperator) -> None:
    y = op.outputs[0]
    axis = b.axis(y, int(op.opt(0, "<i", 0)))
    core = b.activation(op, b.out(y))
    b.node("Concat", [b.inp(t) for t in op.inputs], [core], axis=axis)


def _add_n(b: _Builder, op: TfliteOperator) -> None:
    b.node("Sum", [b.inp(t) for t in op.inputs], [b.out(op.outputs[0])])


def _reshape_to(b: _Builder, src: str, y: int, op_type: str = "Reshape") -> None:
    b.node(op_type, [src, b.const_i64(b.canon(y))], [b.out(y)])


def _reshape(b: _Builder, op: TfliteOperator) -> None:
    _reshape_to(b, b.inp(op.inputs[0]), op.outputs[0])


def _transpose(b: _Builder, op: TfliteOperator) -> None:
    x, y = op.inputs[0], op.outputs[0]
    perm = b.index_values(op.inputs[1]) if len(op.inputs) > 1 else None
    rank = len(b.m.tensors[x].shape)
    if perm is None or len(perm) != rank:
        b.opaque(op)
        return
    p_in = list(_NCHW) if x in b.nhwc else list(range(rank))
    p_out = list(_NCHW) if y in b.nhwc else list(range(rank))
    inv_in = [p_in.index(i) for i in range(rank)]
    new = [inv_in[perm[p_out[i]]] for i in range(rank)]
    b.node("Transpose", [b.inp(x)], [b.out(y)], perm=new)


def _reduce(b: _Builder, op: TfliteOperator) -> None:
    x, y = op.inputs[0], op.outputs[0]
    axes = b.index_values(op.inputs[1]) if len(op.inputs) > 1 else None
    keep = int(op.opt(0, "<B", 0))
    xs, ys = b.m.tensors[x].shape, b.m.tensors[y].shape
    if axes is None:
        b.opaque(op)
        return
    canon_axes = sorted({b.axis(x, a) for a in axes})
    kind = _REDUCE[op.op]
    out = b.out(y)
    needs_reshape = not keep and x in b.nhwc and len(ys) != len(xs)
    mid = b.fresh(out + "__keep") if needs_reshape else out
    keep_attr = 1 if needs_reshape else keep
    if kind == "ReduceSum":
        b.node(kind, [b.inp(x), b.const_i64(canon_axes)], [mid], keepdims=keep_attr)
    else:
        b.node(kind, [b.inp(x)], [mid], axes=canon_axes, keepdims=keep_attr)
    if needs_reshape:
        _reshape_to(b, mid, y)


def _pad(b: _Builder, op: TfliteOperator) -> None:
    x, y = op.inputs[0], op.outputs[0]
    vals = b.index_values(op.inputs[1])
    rank = len(b.m.tensors[x].shape)
    if vals is None or len(vals) != 2 * rank:
        b.opaque(op)
        return
    begin = [0] * rank
    end = [0] * rank
    for a in range(rank):
        c = b.axis(x, a)
        begin[c], end[c] = vals[2 * a], vals[2 * a + 1]
    ins = [b.inp(x), b.const_i64(begin + end)]
    mode = "constant"
    if op.op == "MIRROR_PAD":
        mode = "reflect" if int(op.opt(0, "<b", 0)) == 0 else "edge"
    elif op.op == "PADV2" and len(op.inputs) > 2:
        ins.append(b.inp(op.inputs[2]))
    b.node("Pad", ins, [b.out(y)], mode=mode)


def _slice(b: _Builder, op: TfliteOperator) -> None:
    """SLICE / STRIDED_SLICE: the output's extent per axis (shapes are known), then a
    reshape where shrink/new axes change the rank."""
    x, y = op.inputs[0], op.outputs[0]
    xs, ys = b.m.tensors[x].shape, b.m.tensors[y].shape
    out = b.out(y)
    if len(xs) == len(ys):
        canon_out = b.canon(y) if (x in b.nhwc) == (y in b.nhwc) else None
        if canon_out is None:
            b.opaque(op)
            return
        axes = list(range(len(xs)))
        ends = canon_out
        b.node(
            "Slice",
            [b.inp(x), b.const_i64([0] * len(axes)), b.const_i64(ends), b.const_i64(axes)],
            [out],
        )
        return
    # rank changes: slice to the kept extent, then reshape
    numel = math.prod(ys) if ys else 1
    mid = b.fresh(out + "__slice")
    cx = b.canon(x)
    ends = list(cx)
    # take a leading block of ``numel`` elements' worth: extents 1 on all but the last axes
    remaining = numel
    for i in reversed(range(len(cx))):
        take = min(cx[i], remaining) if remaining > 0 else 1
        take = max(take, 1)
        ends[i] = take
        remaining = remaining // take if take else 0
    if math.prod(ends) != numel:
        b.opaque(op)
        return
    b.node(
        "Slice",
        [
            b.inp(x),
            b.const_i64([0] * len(cx)),
            b.const_i64(ends),
            b.const_i64(list(range(len(cx)))),
        ],
        [mid],
    )
    _reshape_to(b, mid, y)


def _gather(b: _Builder, op: TfliteOperator) -> None:
    x, idx, y = op.inputs[0], op.inputs[1], op.outputs[0]
    axis = b.axis(x, int(op.opt(0, "<i", 0)))
    index_name = b.weight(idx, None, as_index=True) if b.m.tensors[idx].is_constant else b.inp(idx)
    out = b.out(y)
    if (x in b.nhwc) != (y in b.nhwc) or (x in b.nhwc and len(b.m.tensors[y].shape) != 4):
        mid = b.fresh(out + "__gather")
        b.node("Gather", [b.inp(x), index_name], [mid], axis=axis)
        _reshape_to(b, mid, y)
        return
    b.node("Gather", [b.inp(x), index_name], [out], axis=axis)


def _split(b: _Builder, op: TfliteOperator) -> None:
    if op.op == "SPLIT":
        axis_t, x = op.inputs[0], op.inputs[1]
    else:
        x, axis_t = op.inputs[0], op.inputs[2]
    vals = b.index_values(axis_t)
    if not vals:
        b.opaque(op)
        return
    axis = b.axis(x, vals[0])
    sizes = [b.canon(t)[axis] if len(b.canon(t)) > axis else 1 for t in op.outputs]
    b.node("Split", [b.inp(x), b.const_i64(sizes)], [b.out(t) for t in op.outputs], axis=axis)


def _softmax(b: _Builder, op: TfliteOperator) -> None:
    x, y = op.inputs[0], op.outputs[0]
    kind = "Softmax" if op.op == "SOFTMAX" else "LogSoftmax"
    b.node(kind, [b.inp(x)], [b.out(y)], axis=b.axis(x, -1))


def _resize(b: _Builder, op: TfliteOperator) -> None:
    x, y = op.inputs[0], op.outputs[0]
    mode = "linear" if op.op == "RESIZE_BILINEAR" else "nearest"
    sizes = b.const_i64(b.canon(y))
    b.node("Resize", [b.inp(x), "", "", sizes], [b.out(y)], mode=mode)


def _depth_space(b: _Builder, op: TfliteOperator) -> None:
    kind = "DepthToSpace" if op.op == "DEPTH_TO_SPACE" else "SpaceToDepth"
    b.node(kind, [b.inp(op.inputs[0])], [b.out(op.outputs[0])], blocksize=int(op.opt(0, "<i", 1)))


def _batch_matmul(b: _Builder, op: TfliteOperator) -> None:
    x1, x2, y = op.inputs[0], op.inputs[1], op.outputs[0]
    names = []
    for t, slot in ((x1, 0), (x2, 1)):
        name = b.inp(t)
        rank = len(b.m.tensors[t].shape)
        if int(op.opt(slot, "<B", 0)) and rank >= 2:
            tr = b.fresh(name + "__adj")
            perm = [*range(rank - 2), rank - 1, rank - 2]
            b.node("Transpose", [name], [tr], perm=perm)
            name = tr
        names.append(name)
    b.node("MatMul", names, [b.out(y)])


def _pack(b: _Builder, op: TfliteOperator) -> None:
    y = op.outputs[0]
    axis = int(op.opt(1, "<i", 0))
    ys = b.m.tensors[y].shape
    ax = axis + len(ys) if axis < 0 else axis
    parts = []
    for t in op.inputs:
        shape = list(b.m.tensors[t].shape)
        shape.insert(ax, 1)
        if y in b.nhwc and len(shape) == 4:
            shape = [shape[i] for i in _NCHW]
        mid = b.fresh(b.names[t] + "__unsq")
        b.node("Reshape", [b.inp(t), b.const_i64(shape)], [mid])
        parts.append(mid)
    b.node("Concat", parts, [b.out(y)], axis=b.axis(y, ax))


def _unpack(b: _Builder, op: TfliteOperator) -> None:
    x = op.inputs[0]
    axis = b.axis(x, int(op.opt(1, "<i", 0)))
    mids = [b.fresh(b.names[t] + "__part") for t in op.outputs]
    b.node("Split", [b.inp(x), b.const_i64([1] * len(op.outputs))], mids, axis=axis)
    for mid, t in zip(mids, op.outputs, strict=True):
        _reshape_to(b, mid, t)


def _tile(b: _Builder, op: TfliteOperator) -> None:
    x, y = op.inputs[0], op.outputs[0]
    xs, ys = b.canon(x), b.canon(y)
    if len(xs) != len(ys) or any(a == 0 for a in xs):
        b.opaque(op)
        return
    b.node(
        "Tile", [b.inp(x), b.const_i64([o // i for o, i in zip(ys, xs, strict=True)])], [b.out(y)]
    )


def _expand(b: _Builder, op: TfliteOperator) -> None:
    b.node(
        "Expand", [b.inp(op.inputs[0]), b.const_i64(b.canon(op.outputs[0]))], [b.out(op.outputs[0])]
    )


def _select(b: _Builder, op: TfliteOperator) -> None:
    b.node("Where", [b.inp(t) for t in op.inputs[:3]], [b.out(op.outputs[0])])


def _argmax(b: _Builder, op: TfliteOperator) -> None:
    x, y = op.inputs[0], op.outputs[0]
    vals = b.index_values(op.inputs[1]) if len(op.inputs) > 1 else None
    if not vals:
        b.opaque(op)
        return
    kind = "ArgMax" if op.op == "ARG_MAX" else "ArgMin"
    mid = b.out(y)
    if x in b.nhwc:
        mid = b.fresh(mid + "__arg")
        b.node(kind, [b.inp(x)], [mid], axis=b.axis(x, vals[0]), keepdims=0)
        _reshape_to(b, mid, y)
        return
    b.node(kind, [b.inp(x)], [mid], axis=b.axis(x, vals[0]), keepdims=0)


def _l2norm(b: _Builder, op: TfliteOperator) -> None:
    x, y = op.inputs[0], op.outputs[0]
    out = b.activation(op, b.out(y))
    b.node("LpNormalization", [b.inp(x)], [out], axis=b.axis(x, -1), p=2)


def _lrn(b: _Builder, op: TfliteOperator) -> None:
    radius = int(op.opt(0, "<i", 5))
    b.node("LRN", [b.inp(op.inputs[0])], [b.out(op.outputs[0])], size=2 * radius + 1)


def _densify(b: _Builder, op: TfliteOperator) -> None:
    """A sparse constant made dense: the dense weight as ONNX would store it."""
    x, y = op.inputs[0], op.outputs[0]
    tx = b.m.tensors[x]
    name = b.out(y)
    if name not in b.declared:
        b.declared.add(name)
        b.inits.append(_tensor(name, tx.onnx_type, b.canon(y)))
    b.dense_consts.add(y)
    b.m.tensors[y].data_size = max(b.m.tensors[y].data_size, 0)


def _space_batch(b: _Builder, op: TfliteOperator) -> None:
    # pure data movement: described as a reshape to the output's shape
    _reshape_to(b, b.inp(op.inputs[0]), op.outputs[0])


def _state_read(b: _Builder, op: TfliteOperator) -> None:
    """READ_VARIABLE: the state a streaming model keeps, as ONNX has it: a graph input."""
    b.state_inputs.extend(t for t in op.outputs if t >= 0)


def _state_plumbing(b: _Builder, op: TfliteOperator) -> None:
    """VAR_HANDLE / ASSIGN_VARIABLE / CALL_ONCE move no data through the graph's math."""


_HANDLERS: dict[str, Any] = {
    "READ_VARIABLE": _state_read,
    "VAR_HANDLE": _state_plumbing,
    "ASSIGN_VARIABLE": _state_plumbing,
    "CALL_ONCE": _state_plumbing,
    "CONV_2D": _conv,
    "DEPTHWISE_CONV_2D": _conv,
    "TRANSPOSE_CONV": _transpose_conv,
    "AVERAGE_POOL_2D": _pool,
    "MAX_POOL_2D": _pool,
    "L2_POOL_2D": _pool,
    "FULLY_CONNECTED": _fully_connected,
    "CONCATENATION": _concat,
    "ADD_N": _add_n,
    "RESHAPE": _reshape,
    "SQUEEZE": _reshape,
    "EXPAND_DIMS": _reshape,
    "TRANSPOSE": _transpose,
    "PAD": _pad,
    "PADV2": _pad,
    "MIRROR_PAD": _pad,
    "SLICE": _slice,
    "STRIDED_SLICE": _slice,
    "GATHER": _gather,
    "SPLIT": _split,
    "SPLIT_V": _split,
    "SOFTMAX": _softmax,
    "LOG_SOFTMAX": _softmax,
    "RESIZE_BILINEAR": _resize,
    "RESIZE_NEAREST_NEIGHBOR": _resize,
    "DEPTH_TO_SPACE": _depth_space,
    "SPACE_TO_DEPTH": _depth_space,
    "BATCH_MATMUL": _batch_matmul,
    "PACK": _pack,
    "UNPACK": _unpack,
    "TILE": _tile,
    "BROADCAST_TO": _expand,
    "SELECT": _select,
    "SELECT_V2": _select,
    "ARG_MAX": _argmax,
    "ARG_MIN": _argmax,
    "L2_NORMALIZATION": _l2norm,
    "LOCAL_RESPONSE_NORMALIZATION": _lrn,
    "DENSIFY": _densify,
    "SPACE_TO_BATCH_ND": _space_batch,
    "BATCH_TO_SPACE_ND": _space_batch,
    "QUANTIZE": _quant,
    "DEQUANTIZE": _quant,
    "CAST": _quant,
    "SQUARED_DIFFERENCE": _binary,
    **dict.fromkeys(_BINARY, _binary),
    **dict.fromkeys(_UNARY, _unary),
    **dict.fromkeys(
        ("RELU6", "RELU_N1_TO_1", "RELU_0_TO_1", "RSQRT", "SQUARE", "LEAKY_RELU"), _unary
    ),
    **dict.fromkeys(_REDUCE, _reduce),
}


# ---- loading --------------------------------------------------------------------------


def to_onnx_bytes(model: TfliteModel) -> tuple[bytes, dict[str, int]]:
    """The ONNX description of a TFLite model's main subgraph, for the kernel.

    Returns:
        The serialized ``ModelProto`` (weights declared by shape and type, no bytes) and
        the TFLite operators that had no rule, by name (kept as ``tflite::NAME`` nodes).
    """
    b = _Builder(model)
    data = b.build()
    return data, dict(b.unsupported)


def _declared_dims(t: TfliteTensor) -> list[int | None]:
    sig = t.shape_signature
    if sig is None or len(sig) != len(t.shape):
        return list(t.shape)
    return [None if s < 0 else d for s, d in zip(sig, t.shape, strict=True)]


def load_tflite_bytes(
    data: Buffer,
    *,
    name: str | Path = "<bytes>",
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    batch_size: int = 1,
    dim_values: Mapping[str, int] | None = None,
) -> TfliteOperatorGraph:
    """Analyse a TFLite model held in memory (see :func:`load_tflite`)."""

    model = read_tflite(data, name=name)
    declared = {model.tensors[t].name: _declared_dims(model.tensors[t]) for t in model.inputs}
    resolved = resolve_input_shapes(
        declared, input_shapes, batch_size=batch_size, dim_values=dim_values
    )
    for t in model.inputs:
        tt = model.tensors[t]
        if list(resolved[tt.name]) != list(tt.shape):
            raise ShapeSpecError(
                f"{name}: input {tt.name!r} would be {resolved[tt.name]}, but a TFLite model is "
                f"analysed at the shapes stored in it ({tt.shape}); re-export it at that shape"
            )
    try:
        onnx_bytes, unsupported = to_onnx_bytes(model)
    except FlatBufferError as exc:  # an options table read while describing the operators
        raise _fail(name, str(exc)) from None
    except (
        struct.error,
        OverflowError,
        ValueError,
        IndexError,
        KeyError,
        ZeroDivisionError,
    ) as exc:
        raise _fail(name, f"cannot describe its operators ({type(exc).__name__}: {exc})") from None
    b_names = _Builder(model).names
    canon_shapes = {}
    nhwc = _nhwc_tensors(model)
    for t in model.inputs:
        shape = model.tensors[t].shape
        canon_shapes[b_names[t]] = [shape[i] for i in _NCHW] if t in nhwc else list(shape)
    try:
        raw = _core.analyze_bytes(
            onnx_bytes, "", input_shapes=canon_shapes, batch_size=batch_size, dim_values={}
        )
    except _core.KernelError as exc:
        raise _translate(exc, name) from None
    return TfliteOperatorGraph(
        raw, path=Path(name), model=model, unsupported=unsupported, nhwc=nhwc
    )


def load_tflite(
    path: str | os.PathLike[str],
    *,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    batch_size: int = 1,
    dim_values: Mapping[str, int] | None = None,
) -> TfliteOperatorGraph:
    """Parse a ``.tflite`` file into an :class:`~graphrec.graph.OperatorGraph`.

    The file is memory-mapped; weights are neither copied nor read (only small int32
    shape/axes constants). Inputs and outputs keep their TFLite names, shapes and order.

    Args:
        path: The ``.tflite`` file.
        input_shapes: Explicit input shapes by name; a TFLite model is analysed at the
            shapes stored in it, so these may only confirm them.
        batch_size: Size of dynamic batch dimensions (must match the stored shape).
        dim_values: Unused by TFLite (no symbolic dimensions); accepted for symmetry.

    Returns:
        A :class:`TfliteOperatorGraph` (an ``OperatorGraph`` with ``source_format``
        ``"tflite"``).

    Raises:
        ModelLoadError: Missing file or a directory.
        ModelFormatError: Not TFLite, truncated, or an offset out of range.
        ModelLimitError: Counts beyond the safety limits.
        GraphStructureError: An operator names a tensor that does not exist.
        ShapeSpecError: ``input_shapes`` disagree with the stored shapes.
    """
    p = Path(path)
    if not p.exists():
        raise ModelLoadError(p, "no such file")
    if p.is_dir():
        raise ModelLoadError(p, "is a directory, not a TFLite file")
    try:
        with p.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size == 0:
                raise _fail(p, "empty file")
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                g = load_tflite_bytes(
                    mm,
                    name=p,
                    input_shapes=input_shapes,
                    batch_size=batch_size,
                    dim_values=dim_values,
                )
                g._model.buffer = None  # the map closes here
                for op in g._model.operators:
                    op.options = None
                return g
    except OSError as exc:
        raise ModelLoadError(p, f"cannot read: {exc}") from None


class TfliteOperatorGraph(OperatorGraph):
    """An :class:`OperatorGraph` read from a TFLite file.

    Attributes:
        source_format: ``"tflite"``.
        tflite_ops: Operators by TFLite name.
        unsupported_tflite_ops: TFLite operators without a rule (their costs are
            unknown, like an ONNX operator without a cost rule).
        shape_mismatches: Tensors whose shape the kernel inferred differently from
            the shape stored in the file (the stored one is used where it can be).
    """

    source_format: str = "tflite"

    def __init__(
        self,
        raw: Mapping[str, Any],
        *,
        path: Path,
        model: TfliteModel,
        unsupported: Mapping[str, int],
        nhwc: set[int],
    ) -> None:
        shapes = {model.tensors[t].name: list(model.tensors[t].shape) for t in model.inputs}
        super().__init__(raw, path=path, input_shapes=shapes)
        self._model = model
        self.tflite_version = model.version
        self.description = model.description
        self.tflite_ops: dict[str, int] = dict(model.op_histogram)
        self.unsupported_tflite_ops: dict[str, int] = dict(unsupported)
        self.producer = f"TFLite schema v{model.version}" + (
            f" ({model.description})" if model.description else ""
        )
        self.shape_mismatches = self._check_shapes(model, nhwc)
        if model.num_subgraphs > 1:
            self.warnings.append(
                f"{model.num_subgraphs} subgraphs: only the main one is analysed "
                "(control-flow bodies are not folded in)"
            )
        if unsupported:
            self.warnings.append(
                "TFLite operators without a rule (costs unknown): "
                + ", ".join(f"{k} x{v}" for k, v in sorted(unsupported.items()))
            )
        if self.shape_mismatches:
            self.warnings.append(
                f"{len(self.shape_mismatches)} tensor shapes inferred differently from "
                f"the file, e.g. {self.shape_mismatches[0]}"
            )

    def _check_shapes(self, model: TfliteModel, nhwc: set[int]) -> list[str]:
        index = {n: i for i, n in enumerate(self.tensor_names)}
        names = _Builder(model).names
        bad = []
        for tt in model.tensors:
            i = index.get(names[tt.index])
            if i is None or tt.is_constant:
                continue
            got = self.tensor_shape(i)
            want = [tt.shape[k] for k in _NCHW] if tt.index in nhwc else list(tt.shape)
            if got is not None and list(got) != want:
                bad.append(f"{tt.name}: {list(got)} vs {want}")
        return bad

    @cached_property
    def inputs(self) -> list[TensorSpec]:
        """Graph inputs with their TFLite names, element types and (NHWC) shapes."""
        m = self._model
        return [
            TensorSpec(
                m.tensors[t].name,
                m.tensors[t].dtype,
                tuple(_declared_dims(m.tensors[t])),
                tuple(m.tensors[t].shape),
            )
            for t in m.inputs
        ]

    @cached_property
    def outputs(self) -> list[TensorSpec]:
        """Graph outputs with their TFLite names, element types and shapes."""
        m = self._model
        return [
            TensorSpec(m.tensors[t].name, m.tensors[t].dtype, None, tuple(m.tensors[t].shape))
            for t in m.outputs
        ]

    def summary(self, top_ops: int = 12) -> dict[str, Any]:
        out: dict[str, Any] = super().summary(top_ops)
        out["source_format"] = "tflite"
        out["tflite_ops"] = dict(sorted(self.tflite_ops.items(), key=lambda kv: -kv[1]))
        out["unsupported_tflite_ops"] = self.unsupported_tflite_ops
        out["shape_mismatches"] = self.shape_mismatches
        return out
