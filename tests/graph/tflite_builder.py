"""Write small TFLite files with the ``flatbuffers`` builder (for tests and the fuzz corpus).

Only the schema fields the tests need: tensors (shape, type, buffer, name, quantization),
operators (opcode, inputs, outputs, builtin options as raw scalar slots), buffers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# BuiltinOperator codes and BuiltinOptions union types used here.
CONV_2D, DEQUANTIZE, FULLY_CONNECTED, ADD = 3, 6, 9, 0
OPT_CONV2D, OPT_FC, OPT_ADD = 1, 8, 11
# TensorType
FLOAT32, FLOAT16, INT32, INT8 = 0, 1, 2, 9


@dataclass
class T:
    """A tensor: shape, TensorType, constant data (bytes) and optional quantization."""

    name: str
    shape: Sequence[int]
    ttype: int = FLOAT32
    data: bytes | None = None
    scale: float | None = None
    zero_point: int = 0


@dataclass
class Op:
    """An operator: builtin code, tensor indices and options ``{slot: (struct code, value)}``."""

    code: int
    inputs: Sequence[int]
    outputs: Sequence[int]
    options_type: int = 0
    options: dict[int, tuple[str, Any]] = field(default_factory=dict)


def build_tflite(
    tensors: Sequence[T], ops: Sequence[Op], inputs: Sequence[int], outputs: Sequence[int]
) -> bytes:
    """Serialize one subgraph as a TFLite FlatBuffer (identifier ``TFL3``, schema v3)."""
    import flatbuffers

    b = flatbuffers.Builder(1024)

    def int_vector(values: Sequence[int]) -> int:
        b.StartVector(4, len(values), 4)
        for v in reversed(list(values)):
            b.PrependInt32(int(v))
        return int(b.EndVector())

    def offsets_vector(offs: Sequence[int]) -> int:
        b.StartVector(4, len(offs), 4)
        for o in reversed(list(offs)):
            b.PrependUOffsetTRelative(o)
        return int(b.EndVector())

    # buffers: 0 is the empty sentinel, then one per constant tensor
    buffer_offs = []
    b.StartObject(3)
    buffer_offs.append(b.EndObject())
    tensor_buffer = []
    for t in tensors:
        if t.data is None:
            tensor_buffer.append(0)
            continue
        data = b.CreateByteVector(t.data)
        b.StartObject(3)
        b.PrependUOffsetTRelativeSlot(0, data, 0)
        buffer_offs.append(b.EndObject())
        tensor_buffer.append(len(buffer_offs) - 1)

    tensor_offs = []
    for t, buf in zip(tensors, tensor_buffer, strict=True):
        name = b.CreateString(t.name)
        shape = int_vector(t.shape)
        quant = 0
        if t.scale is not None:
            b.StartVector(4, 1, 4)
            b.PrependFloat32(t.scale)
            scales = b.EndVector()
            b.StartVector(8, 1, 8)
            b.PrependInt64(t.zero_point)
            zps = b.EndVector()
            b.StartObject(7)
            b.PrependUOffsetTRelativeSlot(2, scales, 0)
            b.PrependUOffsetTRelativeSlot(3, zps, 0)
            quant = b.EndObject()
        b.StartObject(8)
        b.PrependUOffsetTRelativeSlot(0, shape, 0)
        b.PrependInt8Slot(1, t.ttype, 0)
        b.PrependUint32Slot(2, buf, 0)
        b.PrependUOffsetTRelativeSlot(3, name, 0)
        if quant:
            b.PrependUOffsetTRelativeSlot(4, quant, 0)
        tensor_offs.append(b.EndObject())

    codes = sorted({op.code for op in ops})
    op_offs = []
    for op in ops:
        opts = 0
        if op.options_type:
            b.StartObject(max(op.options, default=0) + 1)
            for slot, (kind, value) in sorted(op.options.items()):
                {"b": b.PrependInt8Slot, "i": b.PrependInt32Slot, "B": b.PrependBoolSlot}[kind](
                    slot, value, 0
                )
            opts = b.EndObject()
        ins = int_vector(op.inputs)
        outs = int_vector(op.outputs)
        b.StartObject(5)
        b.PrependUint32Slot(0, codes.index(op.code), 0)
        b.PrependUOffsetTRelativeSlot(1, ins, 0)
        b.PrependUOffsetTRelativeSlot(2, outs, 0)
        if opts:
            b.PrependUint8Slot(3, op.options_type, 0)
            b.PrependUOffsetTRelativeSlot(4, opts, 0)
        op_offs.append(b.EndObject())

    code_offs = []
    for c in codes:
        b.StartObject(4)
        b.PrependInt8Slot(0, min(c, 127), 0)
        b.PrependInt32Slot(2, 1, 1)
        b.PrependInt32Slot(3, c, 0)
        code_offs.append(b.EndObject())

    tensors_v = offsets_vector(tensor_offs)
    ops_v = offsets_vector(op_offs)
    in_v = int_vector(inputs)
    out_v = int_vector(outputs)
    sub_name = b.CreateString("main")
    b.StartObject(5)
    b.PrependUOffsetTRelativeSlot(0, tensors_v, 0)
    b.PrependUOffsetTRelativeSlot(1, in_v, 0)
    b.PrependUOffsetTRelativeSlot(2, out_v, 0)
    b.PrependUOffsetTRelativeSlot(3, ops_v, 0)
    b.PrependUOffsetTRelativeSlot(4, sub_name, 0)
    sub = b.EndObject()

    codes_v = offsets_vector(code_offs)
    subs_v = offsets_vector([sub])
    bufs_v = offsets_vector(buffer_offs)
    desc = b.CreateString("graphrec test model")
    b.StartObject(5)
    b.PrependUint32Slot(0, 3, 0)
    b.PrependUOffsetTRelativeSlot(1, codes_v, 0)
    b.PrependUOffsetTRelativeSlot(2, subs_v, 0)
    b.PrependUOffsetTRelativeSlot(3, desc, 0)
    b.PrependUOffsetTRelativeSlot(4, bufs_v, 0)
    model = b.EndObject()
    b.Finish(model, file_identifier=b"TFL3")
    return bytes(b.Output())


def conv_model(weights: str = "int8") -> bytes:
    """A 3x3 SAME conv, 3 -> 4 channels on 8x8, with a fused ReLU.

    ``weights``: ``"int8"`` (int8 activations and weights, int32 bias: a quantised
    model), ``"fp16"`` (fp16 weights behind DEQUANTIZE, float32 activations) or ``"fp32"``.
    """
    rng = np.random.default_rng(0)
    conv_opts = {0: ("b", 0), 1: ("i", 1), 2: ("i", 1), 3: ("b", 1), 4: ("i", 1), 5: ("i", 1)}
    if weights == "int8":
        w = rng.integers(-100, 100, size=(4, 3, 3, 3)).astype(np.int8)
        bias = rng.integers(-50, 50, size=4).astype(np.int32)
        tensors = [
            T("x", [1, 8, 8, 3], INT8, scale=0.05, zero_point=0),
            T("w", [4, 3, 3, 3], INT8, w.tobytes(), scale=0.01),
            T("b", [4], INT32, bias.tobytes(), scale=0.0005),
            T("y", [1, 8, 8, 4], INT8, scale=0.1, zero_point=-128),
        ]
        ops = [Op(CONV_2D, [0, 1, 2], [3], OPT_CONV2D, conv_opts)]
        return build_tflite(tensors, ops, [0], [3])
    if weights == "fp16":
        w16 = rng.standard_normal((4, 3, 3, 3)).astype(np.float16)
        tensors = [
            T("x", [1, 8, 8, 3]),
            T("w16", [4, 3, 3, 3], FLOAT16, w16.tobytes()),
            T("w", [4, 3, 3, 3]),
            T("b", [4], FLOAT32, rng.standard_normal(4).astype(np.float32).tobytes()),
            T("y", [1, 8, 8, 4]),
        ]
        ops = [Op(DEQUANTIZE, [1], [2]), Op(CONV_2D, [0, 2, 3], [4], OPT_CONV2D, conv_opts)]
        return build_tflite(tensors, ops, [0], [4])
    w32 = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    tensors = [
        T("x", [1, 8, 8, 3]),
        T("w", [4, 3, 3, 3], FLOAT32, w32.tobytes()),
        T("b", [4], FLOAT32, rng.standard_normal(4).astype(np.float32).tobytes()),
        T("y", [1, 8, 8, 4]),
    ]
    return build_tflite(tensors, [Op(CONV_2D, [0, 1, 2], [3], OPT_CONV2D, conv_opts)], [0], [3])
