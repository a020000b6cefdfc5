"""ONNX -> PyTorch: a torch source for a bare ONNX file.

LiteRT, ExecuTorch and torch convert from a ``torch.nn.Module``. Zoo models carry one
(their ``.torch.json`` sidecar); a bare ONNX file gets one from this module: the ONNX
graph is rebuilt as an ``nn.Module`` whose ``forward`` runs one torch operation per ONNX
node, and the module is checked against onnxruntime's outputs before any runtime
converts it further.

Why graphrec's own converter: ``onnx2torch`` (PyPI) requires ``torchvision``, which this
project cannot install beside its pinned torch, so it is used only when it happens to be
importable (``converter="onnx2torch"``). graphrec's converter, ``graphrec-onnx2torch``,
covers the operators of the zoo's families and of common exported CNNs and transformers.

Values that only describe shapes (``Shape``, int64 initializers, ``Constant`` outputs and
anything computed from them alone) are kept as NumPy arrays while ``forward`` runs, so
``Reshape``/``Slice``/``Expand`` see plain integers: the module then exports with
``torch.export`` and converts with ``litert-torch`` at the model's concrete shapes.

Failures are typed: :class:`ConversionError` (an operator without a rule, a malformed
attribute: the harness records ``convert_failed``) and :class:`ConversionMismatchError`
(the module runs but disagrees with onnxruntime: ``wrong_output``). Both name the
converter.

Example:
    >>> from graphrec.runtimes.convert import onnx_torch_module
    >>> net = onnx_torch_module("model.onnx")  # doctest: +SKIP
    >>> net(torch.randn(1, 3, 224, 224))  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from graphrec.errors import GraphRecError

if TYPE_CHECKING:
    from graphrec.runtimes.base import ModelSpec, TorchSource

__all__ = [
    "CONVERTERS",
    "CONVERTER_FACTORY",
    "GRAPHREC_CONVERTER",
    "SUPPORTED_OPS",
    "ConversionError",
    "ConversionMismatchError",
    "check_conversion",
    "conversion_source",
    "has_torch_route",
    "is_conversion",
    "onnx_torch_module",
    "torch_route_blocker",
    "unsupported_ops",
]

#: Name (and rule version) of graphrec's own converter, as failure messages give it.
GRAPHREC_CONVERTER = "graphrec-onnx2torch/1"
#: Converters :func:`onnx_torch_module` knows.
CONVERTERS: tuple[str, ...] = ("graphrec", "onnx2torch")
#: The :class:`~graphrec.runtimes.base.TorchSource` factory of a converted module.
CONVERTER_FACTORY = "graphrec.runtimes.convert:onnx_torch_module"


class ConversionError(GraphRecError):
    """The ONNX model could not be converted to a torch module (``convert_failed``)."""


class ConversionMismatchError(ConversionError):
    """The converted module runs but its outputs differ from onnxruntime's (``wrong_output``)."""


def _converter_label(converter: str) -> str:
    if converter == "graphrec":
        return GRAPHREC_CONVERTER
    try:
        from importlib.metadata import version

        return f"{converter}/{version(converter)}"
    except Exception:
        return converter


# ---- values ---------------------------------------------------------------------------
# A value is a torch.Tensor (data that flows at run time) or a np.ndarray (static: known
# from the graph and the input shapes alone).

_NP_DTYPES: dict[int, Any] = {
    1: np.float32,
    2: np.uint8,
    3: np.int8,
    5: np.int16,
    6: np.int32,
    7: np.int64,
    9: np.bool_,
    10: np.float16,
    11: np.float64,
}


def _torch_dtype(onnx_type: int) -> Any:
    import torch

    table = {
        1: torch.float32,
        2: torch.uint8,
        3: torch.int8,
        5: torch.int16,
        6: torch.int32,
        7: torch.int64,
        9: torch.bool,
        10: torch.float16,
        11: torch.float64,
        16: torch.bfloat16,
    }
    if onnx_type not in table:
        raise ConversionError(f"{GRAPHREC_CONVERTER}: element type {onnx_type} has no torch dtype")
    return table[onnx_type]


def _t(v: Any) -> Any:
    """A value as a torch tensor."""
    import torch

    if isinstance(v, torch.Tensor):
        return v
    # np.ascontiguousarray would turn a 0-d array into shape (1,)
    arr = np.asarray(v)
    if not (arr.flags.c_contiguous and arr.flags.writeable):
        arr = np.array(arr, order="C", copy=True)
    return torch.from_numpy(arr)


def _ints(v: Any) -> list[int]:
    """A static value as a list of Python ints."""
    if v is None:
        return []
    if isinstance(v, np.ndarray):
        return [int(x) for x in v.reshape(-1)]
    raise ConversionError(
        f"{GRAPHREC_CONVERTER}: a shape/axes input is computed at run time "
        "(data-dependent shapes are not supported)"
    )


def _static(v: Any) -> bool:
    return isinstance(v, np.ndarray)


# ---- operator rules -------------------------------------------------------------------
# Each rule: (attrs, inputs) -> list of outputs. ``inputs`` holds None for absent ones.

Rule = Callable[[Mapping[str, Any], list[Any]], list[Any]]
_RULES: dict[str, Rule] = {}


def _rule(*names: str) -> Callable[[Rule], Rule]:
    def deco(fn: Rule) -> Rule:
        for n in names:
            _RULES[n] = fn
        return fn

    return deco


def _elementwise(fn_name: str) -> Rule:
    def run(attrs: Mapping[str, Any], ins: list[Any]) -> list[Any]:
        import torch

        return [getattr(torch, fn_name)(_t(ins[0]))]

    return run


for _op, _fn in {
    "Relu": "relu",
    "Sigmoid": "sigmoid",
    "Tanh": "tanh",
    "Erf": "erf",
    "Exp": "exp",
    "Log": "log",
    "Sqrt": "sqrt",
    "Neg": "neg",
    "Abs": "abs",
    "Reciprocal": "reciprocal",
    "Floor": "floor",
    "Ceil": "ceil",
    "Round": "round",
    "Sign": "sign",
    "Sin": "sin",
    "Cos": "cos",
    "Not": "logical_not",
}.items():
    _RULES[_op] = _elementwise(_fn)


def _binary(fn: Callable[[Any, Any], Any], np_fn: Callable[[Any, Any], Any]) -> Rule:
    """A broadcasting binary rule: NumPy on static values (shape arithmetic stays plain
    integers under ``torch.export`` and tracing), torch otherwise."""

    def run(attrs: Mapping[str, Any], ins: list[Any]) -> list[Any]:
        a, b = ins[0], ins[1]
        if _static(a) and _static(b):
            return [np.asarray(np_fn(a, b))]
        return [fn(_t(a), _t(b))]

    return run


def _np_div(a: Any, b: Any) -> Any:
    if a.dtype.kind in "iu" and b.dtype.kind in "iu":
        return (np.trunc(a / b)).astype(np.result_type(a, b))
    return a / b


def _np_pow(a: Any, b: Any) -> Any:
    return np.power(a, b).astype(a.dtype)


def _div(a: Any, b: Any) -> Any:
    import torch

    if not a.dtype.is_floating_point:
        return torch.div(a, b, rounding_mode="trunc")
    return a / b


def _pow(a: Any, b: Any) -> Any:
    import torch

    if b.numel() == 1 and b.dim() == 0:
        return torch.pow(a, b.item()) if b.dtype.is_floating_point else torch.pow(a, int(b))
    return torch.pow(a, b.to(a.dtype))


_RULES.update(
    {
        "Add": _binary(lambda a, b: a + b, lambda a, b: a + b),
        "Sub": _binary(lambda a, b: a - b, lambda a, b: a - b),
        "Mul": _binary(lambda a, b: a * b, lambda a, b: a * b),
        "Div": _binary(_div, _np_div),
        "Pow": _binary(_pow, _np_pow),
        "Equal": _binary(lambda a, b: a == b, np.equal),
        "Less": _binary(lambda a, b: a < b, np.less),
        "LessOrEqual": _binary(lambda a, b: a <= b, np.less_equal),
        "Greater": _binary(lambda a, b: a > b, np.greater),
        "GreaterOrEqual": _binary(lambda a, b: a >= b, np.greater_equal),
        "And": _binary(lambda a, b: a & b, np.logical_and),
        "Or": _binary(lambda a, b: a | b, np.logical_or),
        "Mod": _binary(lambda a, b: a % b, np.mod),
    }
)


def _fold(values: list[Any], fn: Callable[[Any, Any], Any]) -> Any:
    out = values[0]
    for v in values[1:]:
        out = fn(out, v)
    return out


@_rule("Max", "Min", "Sum", "Mean")
def _variadic(attrs: Mapping[str, Any], ins: list[Any]) -> list[Any]:
    import torch

    op = attrs["__op__"]
    if all(_static(v) for v in ins):
        np_fn = {"Max": np.maximum, "Min": np.minimum}.get(op, np.add)
        acc = ins[0]
        for v in ins[1:]:
            acc = np_fn(acc, v)
        return [np.asarray(acc / len(ins) if op == "Mean" else acc)]
    vals = [_t(v) for v in ins]
    if op == "Max":
        out = _fold(vals, torch.maximum)
    elif op == "Min":
        out = _fold(vals, torch.minimum)
    else:
        out = _fold(vals, lambda a, b: a + b)
        if op == "Mean":
            out = out / len(vals)
    return [out]


@_rule("Where")
def _where(attrs: Mapping[str, Any], ins: list[Any]) -> list[Any]:
    import torch

    if all(_static(v) for v in ins):
        return [np.where(ins[0], ins[1], ins[2])]
    return [torch.where(_t(ins[0]), _t(ins[1]), _t(ins[2]))]


@_rule("Identity", "Dropout")
def _identity(attrs: Mapping[str, Any], ins: list[Any]) -> list[Any]:
    return [ins[0]]


@_rule("Cast")
def _cast(attrs: Mapping[str, Any], ins: list[Any]) -> list[Any]:
    to = int(attrs["to"])
    if _static(ins[0]) and to in _NP_DTYPES:
        return [ins[0].astype(_NP_DTYPES[to])]
    return [_t(ins[0]).to(_torch_dtype(to))]


@_rule("Clip")
def _clip(attrs: Mapping[str, Any], ins: list[Any]) -> list[Any]:
    import torch

    x = _t(ins[0])
    lo = ins[1] if len(ins) > 1 and ins[1] is not None else attrs.get("min")
    hi = ins[2] if len(ins) > 2 and ins[2] is not None else attrs.get("max")
    lo_v = None if lo is None else float(np.asarray(lo).reshape(-1)[0]) if _static_like(lo) else lo
    hi_v = None if hi is None else float(np.asarray(hi).reshape(-1)[0]) if _static_like(hi) else hi
    if isinstance(lo_v, torch.Tensor) or isinstance(hi_v, torch.Tensor):
        # torch.clamp takes two numbers or two tensors, not one of each
        lo_t = None if lo_v is None else _t(lo_v).to(x.dtype)
        hi_t = None if hi_v is None else _t(hi_v).to(x.dtype)
        return [torch.clamp(x, lo_t, hi_t)]
    return [torch.clamp(x, lo_v, hi_v)]


def _static_like(v: Any) -> bool:
    return isinstance(v, (np.ndarray, float, int))


@_rule("LeakyRelu")
def _leaky(attrs: Mapping[str, Any], ins: list[Any]) -> list[Any]:
    import torch.nn.functional as F

    return [F.leaky_relu(_t(ins[0]), float(attrs.get("alpha", 0.01)))]


@_rule("Elu")
def _elu(attrs: Mapping[str, Any], ins: list[Any]) -> list[Any]:
    import torch.nn.functional as F

    return [F.elu(_t(ins[0]), float(attrs.get("alpha", 1.0)))]


@_rule("HardSigmoid")
def _hardsigmoid(attrs: Mapping[str, Any], ins: list[Any]) -> list[Any]:
    import torch

    alpha, beta = float(attrs.get("alpha", 0.2)), float(attrs.get("beta", 0.5))
    return [torch.clamp(_t(ins[0]) * alpha + beta, 0.0, 1.0)]


@_rule("HardSwish")
def _hardswish(attrs: Mapping[str, Any], ins: list[Any]) -> list[Any]:
    import torch.nn.functional as F

    return [F.hardswish(_t(ins[0]))]


@_rule("Softplus")
def _softplus(attrs: Mapping[str, Any], ins: list[Any]) -> list[Any]:
    import torch.nn.functional as F

    return [F.softplus(_t(ins[0]))]


@_rule("Gelu")
def _gelu(attrs: Mapping[str, Any], ins: list[Any]) -> list[Any]:
    import torch.nn.functional as F

    return [F.gelu(_t(ins[0]), approximate=str(attrs.get("approximate", "none")))]


@_rule("PRelu")
def _prelu(attrs: Mapping[str, Any], ins: list[Any]) -> list[Any]:
    import torch

    x = _t(ins[0])
    return [torch.where(x >= 0, x, x * _t(ins[1]))]


def _axis(a: int, rank: int) -> int:
    return a + rank if a < 0 else a


@_rule("Softmax", "LogSoftmax")
def _softmax(attrs: Mapping[str, Any], ins: list[Any]) -> list[Any]:
    import torch

    x = _t(ins[0])
    opset = int(attrs["__opset__"])
    axis = _axis(int(attrs.get("axis", -1 if opset >= 13 else 1)), x.dim())
    log = attrs["__op__"] == "LogSoftmax"
    if opset < 13 and axis != x.dim() - 1:
        shape = x.shape
        flat = x.reshape(math.prod(shape[:axis]), -1)
        out = torch.log_softmax(flat, 1) if log else torch.softmax(flat, 1)
        return [out.reshape(shape)]
    return [torch.log_softmax(x, axis) if log else torch.softmax(x, axis)]


@_rule("Flatten")
def _flatten(attrs: Mapping[str, Any], ins: list[Any]) -> list[Any]:
    x = ins[0]
    axis = _axis(int(attrs.get("axis", 1)), len(x.shape))
    shape = (math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))
    return [x.reshape(shape)]


@_rule("Reshape")
def _reshape(attrs: Mapping[str, Any], ins: list[Any]) -> list[Any]:
    x = ins[0]
    target = _ints(ins[1])
    if not int(attrs.get("allowzero", 0)):
        target = [int(x.shape[i]) if d == 0 else d for i, d in enumerate(target)]
    return [x.reshape(target)]


@_rule("Transpose")
def _transpose(attrs: Mapping[str, Any], ins: list[Any]) -> list[Any]:
    x = ins[0]
    perm = list(attrs.get("perm", reversed(range(len(x.shape)))))
    if _static(x):
        return [np.transpose(x, perm)]
    return [x.permute(perm)]


@_rule("Shape")
def _shape(attrs: Mapping[str, Any], ins: list[Any]) -> list[Any]:
    dims = [int(d) for d in ins[0].shape]
    start = int(attrs.get("start", 0))
    end = attrs.get("end")
    return [np.array(dims[start : None if end is None else int(end)], dtype=np.int64)]


@_rule("Size")
def _size(attrs: Mapping[str, Any], ins: list[Any]) -> list[Any]:
    return [np.array(math.prod(ins[0].shape), dtype=np.int64)]


@_rule("Concat")
def _concat(attrs: Mapping[str, Any], ins: list[Any]) -> list[Any]:
    import torch

    vals = [v for v in ins if v is not None]
    axis = int(attrs["axis"])
    if all(_static(v) for v in vals):
        return [np.concatenate(vals, axis=axis)]
    return [torch.cat([_t(v) for v in vals], dim=axis)]


@_rule("Unsqueeze")
def _unsqueeze(attrs: Mapping[str, Any], ins: list[Any]) -> list[Any]:
    x = ins[0]
    axes = _ints(ins[1]) if len(ins) > 1 and ins[1] is not None else list(attrs["axes"])
    rank = len(x.shape) + len(axes)
    shape = list(x.shape)
    for a in sorted(_axis(a, rank) for a in axes):
        shape.insert(a, 1)
    return [x.reshape(shape)]


@_rule("Squeeze")
def _squeeze(attrs: Mapping[str, Any], ins: list[Any]) -> list[Any]:
    x = ins[0]
    axes = _ints(ins[1]) if len(ins) > 1 and ins[1] is not None else list(attrs.get("axes", []))
    rank = len(x.shape)
    drop = {_axis(a, rank) for a in axes} if axes else {i for i, d in enumerate(x.shape) if d == 1}
    shape = [d for i, d in enumerate(x.shape) if i not in drop]
    return [x.reshape(shape)]


@_rule("Gather")
def _gather(attrs: Mapping[str, Any], ins: list[Any]) -> list[Any]:
    import torch

    data, idx = ins[0], ins[1]
    axis = _axis(int(attrs.get("axis", 0)), len(data.shape))
    if _static(data) and _static(idx):
        return [np.take(data, idx, axis=axis)]
    if _static(idx):
        idx_np = np.where(idx < 0, idx + int(data.shape[axis]), idx).astype(np.int64)
        if idx_np.ndim == 0:
            return [_t(data).select(axis, int(idx_np))]
        flat = torch.from_numpy(idx_np.reshape(-1).copy())
        out = torch.index_select(_t(data), axis, flat)
        shape = [int(d) for d in data.shape[:axis]] + list(idx_np.shape)
        shape += [int(d) for d in data.shape[axis + 1 :]]
        return [out.reshape(shape)]
    ti = _t(idx).to(torch.int64)
    ti = torch.where(ti < 0, ti + int(data.shape[axis]), ti)
    flat = torch.index_select(_t(data), axis, ti.reshape(-1))
    shape = list(data.shape[:axis]) + list(ti.shape) + list(data.shape[axis + 1 :])
    return [flat.reshape(shape)]


@_rule("Slice")
def _slice(attrs: Mapping[str, Any], ins: list[Any]) -> list[Any]:
    import torch

    x = ins[0]
    rank = len(x.shape)
    if len(ins) > 1:
        starts, ends = _ints(ins[1]), _ints(ins[2])
        axes = _ints(ins[3]) if len(ins) > 3 and ins[3] is not None else list(range(len(starts)))
        steps = _ints(ins[4]) if len(ins) > 4 and ins[4] is not None else [1] * len(starts)
    else:
        starts, ends = list(attrs["starts"]), list(attrs["ends"])
        axes = list(attrs.get("axes", range(len(starts))))
        steps = [1] * len(starts)
    index: list[slice] = [slice(None)] * rank
    flips: list[int] = []
    for s, e, a, st in zip(starts, ends, axes, steps, strict=True):
        a = _axis(a, rank)
        n = int(x.shape[a])
        if st > 0:
            s = max(0, min(n, s + n if s < 0 else s))
            e = max(0, min(n, e + n if e < 0 else e))
            index[a] = slice(s, max(s, e), st)
        elif st < 0:
            s = max(-1, min(n - 1, s + n if s < 0 else s))
            e = max(-1, min(n - 1, e + n if e < 0 else e))
            # elements s, s+st, ... > e: take them from the flipped axis
            count = max(0, (s - e + (-st) - 1) // (-st))
            fs = n - 1 - s
            index[a] = slice(fs, fs + (count - 1) * (-st) + 1 if count else fs, -st)
            flips.append(a)
        else:
            raise ConversionError(f"{GRAPHREC_CONVERTER}: Slice with step 0")
    if _static(x):
        arr = np.flip(x, tuple(flips)) if flips else x
        return [np.array(arr[tuple(index)], order="C")]
    t = torch.flip(x, flips) if flips else x
    return [t[tuple(index)]]


@_rule("Expand")
def _expand(attrs: Mapping[str, Any], ins: list[Any]) -> list[Any]:
    x = ins[0]
    shape = list(np.broadcast_shapes(tuple(x.shape), tuple(_ints(ins[1]))))
    if _static(x):
        return [np.broadcast_to(x, shape).copy()]
    return [x.expand(shape)]


@_rule("Tile")
def _tile(attrs: Mapping[str, Any], ins: list[Any]) -> list[Any]:
    reps = _ints(ins[1])
    if _static(ins[0]):
        return [np.tile(ins[0], reps)]
    return [ins[0].repeat(reps)]


@_rule("ConstantOfShape")
def _constant_of_shape(attrs: Mapping[str, Any], ins: list[Any]) -> list[Any]:
    value = attrs.get("value")
    fill = np.zeros(1, np.float32) if value is None else np.asarray(value).reshape(-1)
    return [np.full(_ints(ins[0]), fill[0], dtype=fill.dtype)]


@_rule("Range")
def _range(attrs: Mapping[str, Any], ins: list[Any]) -> list[Any]:
    if not all(_static(v) for v in ins[:3]):
        raise ConversionError(f"{GRAPHREC_CONVERTER}: Range with run-time bounds")
    a, b, d = (np.asarray(v).reshape(-1)[0].item() for v in ins[:3])
    return [np.arange(a, b, d).astype(np.asarray(ins[0]).dtype)]


@_rule("Split")
def _split(attrs: Mapping[str, Any], ins: list[Any]) -> list[Any]:
    import torch

    x = ins[0]
    axis = _axis(int(attrs.get("axis", 0)), len(x.shape))
    if len(ins) > 1 and ins[1] is not None:
        sizes = _ints(ins[1])
    elif "split" in attrs:
        sizes = list(attrs["split"])
    else:
        k = int(attrs.get("num_outputs", attrs["__nout__"]))
        n = int(x.shape[axis])
        each = -(-n // k)
        sizes = [min(each, n - i * each) for i in range(k)]
    if _static(x):
        return list(np.split(x, np.cumsum(sizes)[:-1], axis=axis))
    return list(torch.split(x, sizes, dim=axis))


@_rule("Pad")
def _pad(attrs: Mapping[str, Any], ins: list[Any]) -> list[Any]:
    import torch.nn.functional as F

    x = _t(ins[0])
    rank = x.dim()
    pads = _ints(ins[1]) if len(ins) > 1 and ins[1] is not None else list(attrs["pads"])
    value = 0.0
    if len(ins) > 2 and ins[2] is not None:
        value = float(np.asarray(ins[2]).reshape(-1)[0])
    else:
        value = float(attrs.get("value", 0.0))
    if len(ins) > 3 and ins[3] is not None:
        axes = [_axis(a, rank) for a in _ints(ins[3])]
    else:
        axes = list(range(rank))
    full = [0] * (2 * rank)
    for k, a in enumerate(axes):
        full[a], full[a + rank] = pads[k], pads[k + len(axes)]
    torch_pads: list[int] = []
    for a in reversed(range(rank)):
        torch_pads += [full[a], full[a + rank]]
    while len(torch_pads) > 2 and torch_pads[-1] == 0 and torch_pads[-2] == 0:
        torch_pads = torch_pads[:-2]
    mode = str(attrs.get("mode", "constant"))
    if mode == "constant":
        return [F.pad(x, torch_pads, value=value)]
    torch_mode = {"reflect": "reflect", "edge": "replicate"}.get(mode)
    if torch_mode is None:
        raise ConversionError(f"{GRAPHREC_CONVERTER}: Pad mode {mode!r}")
    return [F.pad(x, torch_pads, mode=torch_mode)]


def _spatial_pads(
    attrs: Mapping[str, Any],
    in_sp: Sequence[int],
    k: Sequence[int],
    s: Sequence[int],
    d: Sequence[int],
) -> list[int]:
    n = len(k)
    auto = str(attrs.get("auto_pad", "NOTSET"))
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = [0] * (2 * n)
        for i in range(n):
            out = -(-in_sp[i] // s[i])
            total = max(0, (out - 1) * s[i] + (k[i] - 1) * d[i] + 1 - in_sp[i])
            small, big = total // 2, total - total // 2
            pads[i], pads[i + n] = (small, big) if auto == "SAME_UPPER" else (big, small)
        return pads
    if auto == "VALID":
        return [0] * (2 * n)
    return list(attrs.get("pads", [0] * (2 * n)))


def _pad_asym(x: Any, pads: list[int], value: float) -> tuple[Any, list[int]]:
    """Pad ``x`` where begin/end pads differ; return the symmetric pads left for the op."""
    import torch.nn.functional as F

    n = len(pads) // 2
    if all(pads[i] == pads[i + n] for i in range(n)):
        return x, pads[:n]
    extra: list[int] = []
    for i in reversed(range(n)):
        extra += [pads[i], pads[i + n]]
    return F.pad(x, extra, value=value), [0] * n


@_rule("Conv")
def _conv(attrs: Mapping[str, Any], ins: list[Any]) -> list[Any]:
    import torch.nn.functional as F

    x, w = _t(ins[0]), _t(ins[1])
    b = _t(ins[2]) if len(ins) > 2 and ins[2] is not None else None
    n = w.dim() - 2
    k = list(attrs.get("kernel_shape", w.shape[2:]))
    s = list(attrs.get("strides", [1] * n))
    d = list(attrs.get("dilations", [1] * n))
    pads = _spatial_pads(attrs, list(x.shape[2:]), k, s, d)
    x, sym = _pad_asym(x, pads, 0.0)
    fn = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}.get(n)
    if fn is None:
        raise ConversionError(f"{GRAPHREC_CONVERTER}: Conv of {n} spatial dims")
    return [fn(x, w, b, s, sym, d, int(attrs.get("group", 1)))]


@_rule("ConvTranspose")
def _conv_transpose(attrs: Mapping[str, Any], ins: list[Any]) -> list[Any]:
    import torch.nn.functional as F

    x, w = _t(ins[0]), _t(ins[1])
    b = _t(ins[2]) if len(ins) > 2 and ins[2] is not None else None
    n = w.dim() - 2
    s = list(attrs.get("strides", [1] * n))
    d = list(attrs.get("dilations", [1] * n))
    if "output_shape" in attrs or str(attrs.get("auto_pad", "NOTSET")) != "NOTSET":
        raise ConversionError(f"{GRAPHREC_CONVERTER}: ConvTranspose with output_shape/auto_pad")
    pads = list(attrs.get("pads", [0] * (2 * n)))
    out_pad = list(attrs.get("output_padding", [0] * n))
    if any(pads[i] != pads[i + n] for i in range(n)):
        raise ConversionError(f"{GRAPHREC_CONVERTER}: ConvTranspose with asymmetric pads")
    fn = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}.get(n)
    if fn is None:
        raise ConversionError(f"{GRAPHREC_CONVERTER}: ConvTranspose of {n} spatial dims")
    return [fn(x, w, b, s, pads[:n], out_pad, int(attrs.get("group", 1)), d)]


def _pool_params(
    attrs: Mapping[str, Any], x: Any
) -> tuple[list[int], list[int], list[int], list[int]]:
    k = list(attrs["kernel_shape"])
    n = len(k)
    s = list(attrs.get("strides", [1] * n))
    d = list(attrs.get("dilations", [1] * n))
    return k, s, d, _spatial_pads(attrs, list(x.shape[2:]), k, s, d)


@_rule("MaxPool")
def _maxpool(attrs: Mapping[str, Any], ins: list[Any]) -> list[Any]:
    import torch.nn.functional as F

    x = _t(ins[0])
    k, s, d, pads = _pool_params(attrs, x)
    n = len(k)
    ceil = bool(attrs.get("ceil_mode", 0))
    x, sym = _pad_asym(x, pads, float("-inf"))
    fn = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}.get(n)
    if fn is None:
        raise ConversionError(f"{GRAPHREC_CONVERTER}: MaxPool of {n} spatial dims")
    return [fn(x, k, s, sym, d, ceil_mode=ceil)]


@_rule("AveragePool")
def _avgpool(attrs: Mapping[str, Any], ins: list[Any]) -> list[Any]:
    import torch.nn.functional as F

    x = _t(ins[0])
    k, s, d, pads = _pool_params(attrs, x)
    n = len(k)
    if any(v != 1 for v in d):
        raise ConversionError(f"{GRAPHREC_CONVERTER}: AveragePool with dilations")
    include = bool(attrs.get("count_include_pad", 0))
    ceil = bool(attrs.get("ceil_mode", 0))
    if any(pads[i] != pads[i + n] for i in range(n)):
        if not include:
            raise ConversionError(
                f"{GRAPHREC_CONVERTER}: AveragePool with asymmetric pads excluding padding"
            )
        x, sym = _pad_asym(x, pads, 0.0)
    else:
        sym = pads[:n]
    fn = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}.get(n)
    if fn is None:
        raise ConversionError(f"{GRAPHREC_CONVERTER}: AveragePool of {n} spatial dims")
    return [fn(x, k, s, sym, ceil_mode=ceil, count_include_pad=include)]


@_rule("GlobalAveragePool", "GlobalMaxPool")
def _global_pool(attrs: Mapping[str, Any], ins: list[Any]) -> list[Any]:
    x = _t(ins[0])
    dims = list(range(2, x.dim()))
    if attrs["__op__"] == "GlobalAveragePool":
        return [x.mean(dim=dims, keepdim=True)]
    return [x.amax(dim=dims, keepdim=True)]


@_rule("Gemm")
def _gemm(attrs: Mapping[str, Any], ins: list[Any]) -> list[Any]:
    import torch.nn.functional as F

    a, b = _t(ins[0]), _t(ins[1])
    c = _t(ins[2]) if len(ins) > 2 and ins[2] is not None else None
    alpha, beta = float(attrs.get("alpha", 1.0)), float(attrs.get("beta", 1.0))
    if int(attrs.get("transA", 0)):
        a = a.t()
    if int(attrs.get("transB", 0)) and alpha == 1.0 and beta == 1.0 and (c is None or c.dim() <= 1):
        return [F.linear(a, b, c)]
    if int(attrs.get("transB", 0)):
        b = b.t()
    y = a @ b
    if alpha != 1.0:
        y = y * alpha
    if c is not None:
        y = y + (c * beta if beta != 1.0 else c)
    return [y]


@_rule("MatMul")
def _matmul(attrs: Mapping[str, Any], ins: list[Any]) -> list[Any]:
    import torch

    return [torch.matmul(_t(ins[0]), _t(ins[1]))]


@_rule("Einsum")
def _einsum(attrs: Mapping[str, Any], ins: list[Any]) -> list[Any]:
    import torch

    return [torch.einsum(str(attrs["equation"]), *[_t(v) for v in ins])]


@_rule("BatchNormalization")
def _batchnorm(attrs: Mapping[str, Any], ins: list[Any]) -> list[Any]:
    import torch.nn.functional as F

    x, scale, bias, mean, var = (_t(v) for v in ins[:5])
    eps = float(attrs.get("epsilon", 1e-5))
    return [F.batch_norm(x, mean, var, scale, bias, False, 0.0, eps)]


@_rule("InstanceNormalization")
def _instancenorm(attrs: Mapping[str, Any], ins: list[Any]) -> list[Any]:
    import torch.nn.functional as F

    x, scale, bias = (_t(v) for v in ins[:3])
    return [F.instance_norm(x, weight=scale, bias=bias, eps=float(attrs.get("epsilon", 1e-5)))]


@_rule("LayerNormalization")
def _layernorm(attrs: Mapping[str, Any], ins: list[Any]) -> list[Any]:
    import torch.nn.functional as F

    x = _t(ins[0])
    axis = _axis(int(attrs.get("axis", -1)), x.dim())
    shape = list(x.shape[axis:])
    scale = _t(ins[1]).expand(shape) if ins[1] is not None else None
    bias = _t(ins[2]).expand(shape) if len(ins) > 2 and ins[2] is not None else None
    return [F.layer_norm(x, shape, scale, bias, float(attrs.get("epsilon", 1e-5)))]


@_rule("ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2")
def _reduce(attrs: Mapping[str, Any], ins: list[Any]) -> list[Any]:
    import torch

    x = _t(ins[0])
    axes = _ints(ins[1]) if len(ins) > 1 and ins[1] is not None else list(attrs.get("axes", []))
    keep = bool(attrs.get("keepdims", 1))
    if not axes:
        if int(attrs.get("noop_with_empty_axes", 0)):
            return [x]
        axes = list(range(x.dim()))
    dims = sorted(_axis(a, x.dim()) for a in axes)
    op = attrs["__op__"]
    if op == "ReduceMean":
        return [x.mean(dim=dims, keepdim=keep)]
    if op == "ReduceSum":
        return [x.sum(dim=dims, keepdim=keep)]
    if op == "ReduceMax":
        return [x.amax(dim=dims, keepdim=keep)]
    if op == "ReduceMin":
        return [x.amin(dim=dims, keepdim=keep)]
    if op == "ReduceL2":
        return [torch.sqrt((x * x).sum(dim=dims, keepdim=keep))]
    out = x
    for dim in reversed(dims):
        out = out.prod(dim=dim, keepdim=keep)
    return [out]


@_rule("ArgMax", "ArgMin")
def _argmax(attrs: Mapping[str, Any], ins: list[Any]) -> list[Any]:
    import torch

    x = _t(ins[0])
    if int(attrs.get("select_last_index", 0)):
        raise ConversionError(f"{GRAPHREC_CONVERTER}: {attrs['__op__']} with select_last_index")
    axis = _axis(int(attrs.get("axis", 0)), x.dim())
    keep = bool(attrs.get("keepdims", 1))
    fn = torch.argmax if attrs["__op__"] == "ArgMax" else torch.argmin
    return [fn(x, dim=axis, keepdim=keep)]


@_rule("Resize", "Upsample")
def _resize(attrs: Mapping[str, Any], ins: list[Any]) -> list[Any]:
    import torch.nn.functional as F

    x = _t(ins[0])
    if attrs["__op__"] == "Upsample":
        scales = [float(v) for v in np.asarray(ins[1]).reshape(-1)]
        sizes: list[int] = []
    else:
        scales = (
            [float(v) for v in np.asarray(ins[2]).reshape(-1)]
            if len(ins) > 2 and ins[2] is not None
            else []
        )
        sizes = _ints(ins[3]) if len(ins) > 3 and ins[3] is not None else []
    if attrs.get("axes") is not None:
        raise ConversionError(f"{GRAPHREC_CONVERTER}: Resize with axes")
    if not sizes:
        if len(scales) != x.dim() or scales[0] != 1.0 or scales[1] != 1.0:
            raise ConversionError(f"{GRAPHREC_CONVERTER}: Resize scaling batch/channel dims")
        sizes = [math.floor(x.shape[i] * scales[i]) for i in range(x.dim())]
    elif sizes[:2] != [int(x.shape[0]), int(x.shape[1])]:
        raise ConversionError(f"{GRAPHREC_CONVERTER}: Resize changing batch/channel dims")
    mode = str(attrs.get("mode", "nearest"))
    ctm = str(attrs.get("coordinate_transformation_mode", "half_pixel"))
    out_sp = sizes[2:]
    if mode == "nearest":
        nearest = str(attrs.get("nearest_mode", "round_prefer_floor"))
        if attrs["__op__"] == "Upsample" or (ctm == "asymmetric" and nearest == "floor"):
            return [F.interpolate(x, size=out_sp, mode="nearest")]
        if ctm in ("half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn") and nearest in (
            "round_prefer_ceil",
            "round_prefer_floor",
            "floor",
        ):
            exact = all(o % i == 0 for o, i in zip(out_sp, x.shape[2:], strict=True))
            if exact:  # integer upscale: all of these agree with nearest-exact
                return [F.interpolate(x, size=out_sp, mode="nearest-exact")]
        raise ConversionError(
            f"{GRAPHREC_CONVERTER}: Resize nearest with {ctm}/{nearest} at these sizes"
        )
    if mode == "linear":
        interp = {3: "linear", 4: "bilinear", 5: "trilinear"}.get(x.dim())
        if interp is None:
            raise ConversionError(f"{GRAPHREC_CONVERTER}: linear Resize of rank {x.dim()}")
        if ctm == "align_corners":
            return [F.interpolate(x, size=out_sp, mode=interp, align_corners=True)]
        if ctm in ("half_pixel", "pytorch_half_pixel"):
            return [F.interpolate(x, size=out_sp, mode=interp, align_corners=False)]
        raise ConversionError(f"{GRAPHREC_CONVERTER}: linear Resize with {ctm}")
    raise ConversionError(f"{GRAPHREC_CONVERTER}: Resize mode {mode!r}")


@_rule("DepthToSpace")
def _depth_to_space(attrs: Mapping[str, Any], ins: list[Any]) -> list[Any]:
    x = _t(ins[0])
    bs = int(attrs["blocksize"])
    n, c, h, w = (int(v) for v in x.shape)
    if str(attrs.get("mode", "DCR")) == "DCR":
        y = x.reshape(n, bs, bs, c // (bs * bs), h, w).permute(0, 3, 4, 1, 5, 2)
    else:
        y = x.reshape(n, c // (bs * bs), bs, bs, h, w).permute(0, 1, 4, 2, 5, 3)
    return [y.reshape(n, c // (bs * bs), h * bs, w * bs)]


@_rule("SpaceToDepth")
def _space_to_depth(attrs: Mapping[str, Any], ins: list[Any]) -> list[Any]:
    x = _t(ins[0])
    bs = int(attrs["blocksize"])
    n, c, h, w = (int(v) for v in x.shape)
    y = x.reshape(n, c, h // bs, bs, w // bs, bs).permute(0, 3, 5, 1, 2, 4)
    return [y.reshape(n, c * bs * bs, h // bs, w // bs)]


def _rnn_common(attrs: Mapping[str, Any], ins: list[Any], gates: int) -> tuple[Any, ...]:
    import torch

    op = attrs["__op__"]
    for bad in ("clip", "activations", "activation_alpha", "activation_beta"):
        if bad in attrs:
            raise ConversionError(f"{GRAPHREC_CONVERTER}: {op} with {bad}")
    if op == "LSTM" and int(attrs.get("input_forget", 0)):
        raise ConversionError(f"{GRAPHREC_CONVERTER}: LSTM with input_forget")
    x, w, r = _t(ins[0]), _t(ins[1]), _t(ins[2])
    if int(attrs.get("layout", 0)):
        x = x.transpose(0, 1)
    seq, batch = int(x.shape[0]), int(x.shape[1])
    dirs, hidden = int(w.shape[0]), int(r.shape[2])
    b = _t(ins[3]) if len(ins) > 3 and ins[3] is not None else None
    lens = ins[4] if len(ins) > 4 else None
    if lens is not None and (
        not _static(lens) or any(int(v) != seq for v in np.asarray(lens).reshape(-1))
    ):
        raise ConversionError(f"{GRAPHREC_CONVERTER}: {op} with varying sequence_lens")
    h0 = _t(ins[5]) if len(ins) > 5 and ins[5] is not None else None
    if h0 is not None and int(attrs.get("layout", 0)):
        h0 = h0.transpose(0, 1)
    if h0 is None:
        h0 = torch.zeros(dirs, batch, hidden, dtype=x.dtype)
    return x, w, r, b, h0, seq, dirs, hidden


def _rnn_outputs(attrs: Mapping[str, Any], ys: list[Any], finals: list[list[Any]]) -> list[Any]:
    import torch

    y = torch.stack(ys, dim=0)  # [seq, dirs, batch, hidden]
    out = [torch.stack(f, dim=0) for f in finals]  # each [dirs, batch, hidden]
    if int(attrs.get("layout", 0)):
        y = y.permute(2, 0, 1, 3)
        out = [o.transpose(0, 1) for o in out]
    return [y, *out]


@_rule("LSTM")
def _lstm(attrs: Mapping[str, Any], ins: list[Any]) -> list[Any]:
    import torch

    x, w, r, b, h0, seq, dirs, hidden = _rnn_common(attrs, ins, 4)
    if len(ins) > 7 and ins[7] is not None:
        raise ConversionError(f"{GRAPHREC_CONVERTER}: LSTM with peepholes")
    c0 = _t(ins[6]) if len(ins) > 6 and ins[6] is not None else None
    if c0 is not None and int(attrs.get("layout", 0)):
        c0 = c0.transpose(0, 1)
    if c0 is None:
        c0 = torch.zeros_like(h0)
    direction = str(attrs.get("direction", "forward"))
    order = ["reverse"] if direction == "reverse" else ["forward", "reverse"][:dirs]
    per_dir: list[list[Any]] = []
    hs, cs = [], []
    for d, how in enumerate(order):
        wx = torch.matmul(x, w[d].t())  # [seq, batch, 4H]
        if b is not None:
            wx = wx + b[d, : 4 * hidden] + b[d, 4 * hidden :]
        h, c = h0[d], c0[d]
        steps = range(seq - 1, -1, -1) if how == "reverse" else range(seq)
        outs: list[Any] = [None] * seq
        for t in steps:
            g = wx[t] + torch.matmul(h, r[d].t())
            i, o, f, cc = torch.split(g, hidden, dim=-1)
            i, o, f = torch.sigmoid(i), torch.sigmoid(o), torch.sigmoid(f)
            c = f * c + i * torch.tanh(cc)
            h = o * torch.tanh(c)
            outs[t] = h
        per_dir.append(outs)
        hs.append(h)
        cs.append(c)
    ys = [torch.stack([per_dir[d][t] for d in range(len(order))], dim=0) for t in range(seq)]
    return _rnn_outputs(attrs, ys, [hs, cs])


@_rule("GRU")
def _gru(attrs: Mapping[str, Any], ins: list[Any]) -> list[Any]:
    import torch

    x, w, r, b, h0, seq, dirs, hidden = _rnn_common(attrs, ins, 3)
    before = int(attrs.get("linear_before_reset", 0))
    direction = str(attrs.get("direction", "forward"))
    order = ["reverse"] if direction == "reverse" else ["forward", "reverse"][:dirs]
    per_dir: list[list[Any]] = []
    hs = []
    for d, how in enumerate(order):
        wx = torch.matmul(x, w[d].t())  # [seq, batch, 3H]
        wb = b[d, : 3 * hidden] if b is not None else None
        rb = b[d, 3 * hidden :] if b is not None else None
        if wb is not None:
            wx = wx + wb
        rz, rr, rh = torch.split(r[d], hidden, dim=0)
        h = h0[d]
        steps = range(seq - 1, -1, -1) if how == "reverse" else range(seq)
        outs: list[Any] = [None] * seq
        for t in steps:
            xz, xr, xh = torch.split(wx[t], hidden, dim=-1)
            hz = torch.matmul(h, rz.t())
            hr = torch.matmul(h, rr.t())
            if rb is not None:
                hz = hz + rb[:hidden]
                hr = hr + rb[hidden : 2 * hidden]
            z = torch.sigmoid(xz + hz)
            rg = torch.sigmoid(xr + hr)
            if before:
                hh = torch.matmul(h, rh.t())
                if rb is not None:
                    hh = hh + rb[2 * hidden :]
                n = torch.tanh(xh + rg * hh)
            else:
                hh = torch.matmul(rg * h, rh.t())
                if rb is not None:
                    hh = hh + rb[2 * hidden :]
                n = torch.tanh(xh + hh)
            h = (1 - z) * n + z * h
            outs[t] = h
        per_dir.append(outs)
        hs.append(h)
    ys = [torch.stack([per_dir[d][t] for d in range(len(order))], dim=0) for t in range(seq)]
    return _rnn_outputs(attrs, ys, [hs])


@_rule("Constant")
def _constant(attrs: Mapping[str, Any], ins: list[Any]) -> list[Any]:
    for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        if key in attrs:
            v = attrs[key]
            if key in ("value_float", "value_floats"):
                return [np.asarray(v, dtype=np.float32)]
            if key in ("value_int", "value_ints"):
                return [np.asarray(v, dtype=np.int64)]
            return [np.asarray(v)]
    raise ConversionError(f"{GRAPHREC_CONVERTER}: Constant without a supported value")


#: ONNX operators (default domain) graphrec's converter has a rule for.
SUPPORTED_OPS: frozenset[str] = frozenset(_RULES)


# ---- the module -----------------------------------------------------------------------


def _attr_value(attr: Any) -> Any:
    from onnx import helper, numpy_helper

    if attr.type == attr.TENSOR:
        return numpy_helper.to_array(attr.t)
    value = helper.get_attribute_value(attr)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, list):
        return [v.decode() if isinstance(v, bytes) else v for v in value]
    return value


def _load_proto(path: Path) -> Any:
    import onnx

    if not path.is_file():
        raise ConversionError(f"{path}: no such file")
    try:
        return onnx.load(str(path))
    except Exception as exc:
        raise ConversionError(f"{path}: not a readable ONNX model ({exc})") from None


def unsupported_ops(proto: Any) -> list[str]:
    """Operators of an ONNX ``ModelProto`` that graphrec's converter has no rule for."""
    missing = set()
    for node in proto.graph.node:
        if node.domain not in ("", "ai.onnx") or node.op_type not in _RULES:
            missing.add(f"{node.domain}::{node.op_type}" if node.domain else node.op_type)
    return sorted(missing)


def _static_results(values: list[Any]) -> list[Any]:
    """A rule's outputs with NumPy scalars (``np.take`` with a 0-d index gives one) as 0-d
    arrays, so that they stay static for the rules that read shapes and bounds."""
    return [np.asarray(v) if isinstance(v, np.generic) else v for v in values]


#: (operator, input index) pairs whose value parameterises the operator (never a weight).
_PARAMETER_INPUTS = frozenset({("Resize", 1), ("Resize", 2), ("Upsample", 1)})


def _build_graphrec(path: Path) -> Any:
    import torch
    from onnx import numpy_helper

    proto = _load_proto(path)
    missing = unsupported_ops(proto)
    if missing:
        raise ConversionError(
            f"{path}: {GRAPHREC_CONVERTER} has no rule for operator(s) {', '.join(missing)}"
        )
    opset = next((int(o.version) for o in proto.opset_import if o.domain in ("", "ai.onnx")), 13)

    class OnnxGraphModule(torch.nn.Module):
        """An ONNX graph run node by node with torch operations."""

        def __init__(self) -> None:
            super().__init__()
            self._static: dict[str, np.ndarray] = {}
            self._buffer_of: dict[str, str] = {}
            # float constants that say how to compute (Resize's roi and scales), not
            # weights: kept as NumPy, so that torch.export sees Python numbers there
            params = {
                name
                for node in proto.graph.node
                for k, name in enumerate(node.input)
                if name and (node.op_type, k) in _PARAMETER_INPUTS
            }
            for k, init in enumerate(proto.graph.initializer):
                arr = numpy_helper.to_array(init)
                if arr.dtype.kind == "f" and arr.ndim > 0 and init.name not in params:
                    name = f"w{k}"
                    self.register_buffer(name, torch.from_numpy(np.array(arr)))
                    self._buffer_of[init.name] = name
                else:
                    self._static[init.name] = np.array(arr)
            inits = {i.name for i in proto.graph.initializer}
            self._inputs = [vi.name for vi in proto.graph.input if vi.name not in inits]
            self._outputs = [vi.name for vi in proto.graph.output]
            self._nodes: list[tuple[str, list[str], list[str], dict[str, Any]]] = []
            for node in proto.graph.node:
                attrs = {a.name: _attr_value(a) for a in node.attribute}
                attrs["__op__"] = node.op_type
                attrs["__opset__"] = opset
                attrs["__nout__"] = len(node.output)
                self._nodes.append((node.op_type, list(node.input), list(node.output), attrs))
            self._fold_constants()

        def _fold_constants(self) -> None:
            """Run the nodes that depend on constants alone once, at construction."""
            kept = []
            for op, ins, outs, attrs in self._nodes:
                if all(not i or i in self._static for i in ins) and op != "Shape":
                    vals = _static_results(
                        _RULES[op](attrs, [self._static[i] if i else None for i in ins])
                    )
                    if all(isinstance(v, np.ndarray) for v in vals):
                        for name, v in zip(outs, vals, strict=False):
                            if name:
                                self._static[name] = v
                        continue
                kept.append((op, ins, outs, attrs))
            self._nodes = kept

        def forward(self, *args: Any) -> Any:
            env: dict[str, Any] = dict(self._static)
            for name, buf in self._buffer_of.items():
                env[name] = getattr(self, buf)
            for name, a in zip(self._inputs, args, strict=True):
                env[name] = a
            for op, ins, outs, attrs in self._nodes:
                vals = [env[i] if i else None for i in ins]
                res = _static_results(_RULES[op](attrs, vals))
                for name, v in zip(outs, res, strict=False):
                    if name:
                        env[name] = v
            result = tuple(_t(env[o]) for o in self._outputs)
            return result[0] if len(result) == 1 else result

    try:
        return OnnxGraphModule().eval()
    except ConversionError as exc:
        raise ConversionError(f"{path}: {exc}") from None
    except Exception as exc:
        raise ConversionError(f"{path}: {GRAPHREC_CONVERTER} failed: {exc}") from None


def _build_onnx2torch(path: Path) -> Any:
    try:
        from onnx2torch import convert  # type: ignore[import-not-found,unused-ignore]
    except Exception as exc:
        raise ConversionError(
            f"{path}: converter onnx2torch is not usable here ({type(exc).__name__}: {exc}); "
            "it requires torchvision"
        ) from None
    try:
        return convert(str(path)).eval()
    except Exception as exc:
        raise ConversionError(f"{path}: {_converter_label('onnx2torch')} failed: {exc}") from None


def onnx_torch_module(path: str, converter: str = "graphrec") -> Any:
    """Convert an ONNX file to a ``torch.nn.Module`` in eval mode (a torch-source factory).

    Args:
        path: The ``.onnx`` file (external data beside it is read).
        converter: ``"graphrec"`` (graphrec's own rules) or ``"onnx2torch"`` (the PyPI
            package, when importable).

    Returns:
        A module whose positional inputs are the ONNX graph inputs in order and whose
        output is one tensor or a tuple (the ONNX outputs in order).

    Raises:
        ConversionError: Unknown converter, unreadable file, or an operator or attribute
            the converter cannot take (the message names the converter).
    """
    p = Path(path)
    if converter == "graphrec":
        return _build_graphrec(p)
    if converter == "onnx2torch":
        return _build_onnx2torch(p)
    raise ConversionError(
        f"unknown ONNX -> torch converter {converter!r}; choose from {list(CONVERTERS)}"
    )


def conversion_source(onnx_path: str | Path, converter: str = "graphrec") -> TorchSource:
    """The :class:`~graphrec.runtimes.base.TorchSource` that converts ``onnx_path``."""
    from graphrec.runtimes.base import TorchSource

    return TorchSource(
        CONVERTER_FACTORY, {"path": str(Path(onnx_path).resolve()), "converter": converter}
    )


def torch_route_blocker(path: str | Path) -> str | None:
    """Why the runtimes that start from torch cannot take this model file, or ``None``.

    ``None`` when it has a ``.torch.json`` sidecar, or when it is an ONNX file whose
    operators graphrec's converter all has rules for (the conversion may still fail on
    an attribute, or disagree with onnxruntime: the benchmark records that). Otherwise a
    sentence naming the operators the converter lacks, or why the file cannot be read.
    Reads the graph without its weights.
    """
    from graphrec.runtimes.inputs import torch_source_for

    p = Path(path)
    try:
        if torch_source_for(p) is not None:
            return None
    except GraphRecError as exc:
        return str(exc)
    if p.suffix.lower() != ".onnx" or not p.is_file():
        return "needs the PyTorch module or an ONNX file (converts from torch)"
    try:
        import onnx

        proto = onnx.load(str(p), load_external_data=False)
    except Exception as exc:
        return f"not a readable ONNX model ({type(exc).__name__})"
    missing = unsupported_ops(proto)
    if not missing:
        return None
    shown = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
    return f"graphrec's ONNX-to-torch converter has no rule for {shown} (converts from torch)"


def has_torch_route(path: str | Path) -> bool:
    """Whether the runtimes that start from torch can take this model file.

    See :func:`torch_route_blocker` (this is ``torch_route_blocker(path) is None``).
    """
    return torch_route_blocker(path) is None


def is_conversion(source: TorchSource | None) -> bool:
    """Whether a torch source is a conversion of the ONNX file (not the original module)."""
    return source is not None and source.factory == CONVERTER_FACTORY


def check_conversion(module: Any, model: ModelSpec, *, seed: int = 0) -> None:
    """Check a converted module against onnxruntime on the benchmark's inputs.

    Uses the harness's fp32 output check (relative error limits of
    :func:`graphrec.bench.protocol.tolerance_for`).

    Raises:
        ConversionMismatchError: The outputs differ (the message names the converter and
            the error).
        ConversionError: The module fails to run on the inputs.
    """
    import onnxruntime as ort
    import torch

    from graphrec.bench.protocol import compare_outputs
    from graphrec.runtimes._torch_common import flatten_outputs
    from graphrec.runtimes.inputs import make_inputs

    converter = "graphrec"
    if model.torch_source is not None:
        converter = str(model.torch_source.kwargs.get("converter", "graphrec"))
    label = _converter_label(converter)
    inputs = make_inputs(model, seed=seed)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(model.onnx_path), opts, providers=["CPUExecutionProvider"])
    ref = sess.run(None, dict(zip(model.input_names, inputs, strict=True)))
    try:
        with torch.inference_mode():
            got = flatten_outputs(module(*(torch.from_numpy(a.copy()) for a in inputs)))
    except Exception as exc:
        raise ConversionError(
            f"{model.onnx_path}: module converted by {label} fails to run: {exc}"
        ) from None
    if len(got) != len(ref):
        raise ConversionMismatchError(
            f"{model.onnx_path}: module converted by {label} gives {len(got)} outputs, "
            f"onnxruntime {len(ref)}"
        )
    for i, (g, r) in enumerate(zip(got, ref, strict=True)):
        if tuple(np.shape(g)) != tuple(np.shape(r)):
            raise ConversionMismatchError(
                f"{model.onnx_path}: module converted by {label} gives output {i} the shape "
                f"{tuple(np.shape(g))}, onnxruntime {tuple(np.shape(r))}"
            )
    agree = compare_outputs(got, [np.asarray(r) for r in ref], "fp32", inputs=inputs)
    if not agree.ok:
        raise ConversionMismatchError(
            f"{model.onnx_path}: module converted by {label} differs from onnxruntime: "
            f"{agree.reason}"
        )
