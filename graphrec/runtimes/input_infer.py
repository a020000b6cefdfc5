"""Inputs a model accepts, inferred from its graph (and, last, from the reference runtime).

Real models check their inputs: a voice-activity detector compares its ``sr`` input with
16000, a text recogniser only works at height 48, a streaming model's state must have the
shape of the state it returns. :func:`infer_inputs` reads these facts from the ONNX graph,
input by input, and says which rule decided each one:

* ``given`` — the caller's explicit shape / value (``--shape`` / ``--value``) wins;
* ``declared`` — every dimension is fixed in the graph;
* ``compared-value`` — a one-element input compared with a constant
  (``Equal(sr, 16000)``, also through Cast/Squeeze/... and inside ``If`` branches) is
  filled with that constant;
* ``index-range`` — an integer input used as ``Gather`` indices (an embedding lookup) or
  clipped by ``Clip`` is given a value inside the allowed range when today's 0/1 data
  would fall outside it (a one-row table, a clip to ``[2, 5]``);
* ``state`` — an input that feeds back from an output (``state``/``stateN``,
  ``h0``/``hN``, ``past_*``/``present_*``) takes the output's declared sizes, and its
  unknown sizes are the batch (streaming states are per sample);
* ``reshape-constant`` — a rank-2+ input whose elements go straight into a ``Reshape``
  with a constant shape, or through ``Flatten`` into a ``Gemm``/``MatMul`` with a weight
  of K rows, gets the one unknown size (or a square pair) that makes the counts match;
* ``ocr-recogniser`` — an image input with free height and width whose model ends in a
  per-time-step class score (``[N, T, classes]``), the PP-OCR / CRNN recogniser pattern,
  gets the convention 48 x 320;
* ``layout-nhwc`` — a rank-4 input whose last size is 1, 3 or 4 and whose second is free
  is NHWC: height and width are the image default, not the channel count;
* ``probe`` — when the shape chosen so far still leaves sizes to the default rule and
  onnxruntime rejects the model with them, the conventional sizes (audio chunks of 512
  samples, spectrogram frames, image sides) are tried in onnxruntime, and the first it
  accepts is kept;
* ``default`` — nothing is known: today's rule (:mod:`graphrec.graph.shapes`; random
  normal floats, 0/1 integers).

Example:
    >>> from graphrec.runtimes.input_infer import infer_inputs
    >>> inf = infer_inputs("silero_vad.onnx")  # doctest: +SKIP
    >>> inf.values, inf.rules["sr"]  # doctest: +SKIP
    ({'sr': 16000.0}, 'compared-value: Equal(sr, 16000)')
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from graphrec.errors import ModelFormatError, ModelLoadError
from graphrec.graph.shapes import (
    DEFAULT_IMAGE_SIZE,
    DeclaredDim,
    resolve_input_shapes,
)

__all__ = ["RULES", "InputInference", "infer_inputs"]

#: Every rule name, in the order they are tried.
RULES = (
    "given",
    "declared",
    "compared-value",
    "index-range",
    "state",
    "reshape-constant",
    "ocr-recogniser",
    "layout-nhwc",
    "probe",
    "default",
)

#: Ops through which an input's values reach a comparison / lookup unchanged.
_VALUE_PASS = {
    "Cast",
    "Identity",
    "Squeeze",
    "Unsqueeze",
    "Reshape",
    "Flatten",
    "Expand",
    "Gather",
    "Slice",
}
#: Ops that keep an input's element count (for the Reshape / Flatten rule).
_COUNT_PASS = {
    "Cast",
    "Identity",
    "Relu",
    "Sigmoid",
    "Tanh",
    "Neg",
    "Abs",
    "Sqrt",
    "Exp",
    "Log",
    "Softmax",
    "LeakyRelu",
    "Clip",
    "Transpose",
    "BatchNormalization",
    "Dropout",
}
_COMPARE = {"Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"}
#: OCR recogniser convention (PP-OCRv3+ and most CRNN exports): height 48, width 320.
OCR_REC_HEIGHT, OCR_REC_WIDTH = 48, 320
#: Conventional sizes the probe tries for a free sequence / audio dimension, in order.
PROBE_LENGTHS = (512, 1280, 256, 1024, 576, 16000, 64, 32, 16, 8, 1)
#: Conventional image sides the probe tries (square), in order.
PROBE_SIDES = (320, 640, 256, 416, 512, 128, 96, 64, 48, 32, 12)


@dataclass
class InputInference:
    """What :func:`infer_inputs` decided.

    Attributes:
        shapes: Concrete shapes of the inputs some rule decided (name to shape); the
            others are left to :func:`graphrec.graph.shapes.resolve_input_shapes`.
        values: Constants to fill inputs with (name to value).
        rules: Name to the rule that decided the input, with a short reason
            (``"compared-value: Equal(sr, 16000)"``); every input has one.
        ranges: Integer ranges ``[low, high)`` that Gather / Clip allow, by input name.
    """

    shapes: dict[str, list[int]] = field(default_factory=dict)
    values: dict[str, float] = field(default_factory=dict)
    rules: dict[str, str] = field(default_factory=dict)
    ranges: dict[str, tuple[int, int]] = field(default_factory=dict)

    def rule_names(self) -> dict[str, str]:
        """Input name to the bare rule name (``"compared-value"``)."""
        return {k: v.split(":", 1)[0] for k, v in self.rules.items()}


# ----------------------------------------------------------------------------- graph view
@dataclass
class _Graph:
    """Flat view of a model: nodes of the main graph and every subgraph, constants."""

    nodes: list[Any]
    consumers: dict[str, list[tuple[Any, int]]]
    const_dims: dict[str, list[int]]
    small: dict[str, np.ndarray]
    outputs: dict[str, list[DeclaredDim]]
    output_dtype: dict[str, int]


def _walk(graph: Any) -> Iterator[Any]:
    import onnx

    for n in graph.node:
        yield n
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                yield from _walk(a.g)
            elif a.type == onnx.AttributeProto.GRAPHS:
                for g in a.graphs:
                    yield from _walk(g)


def _inits(graph: Any) -> Iterator[Any]:
    import onnx

    yield from graph.initializer
    for n in graph.node:
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                yield from _inits(a.g)


def _small_array(t: Any, limit: int = 4096) -> np.ndarray | None:
    from onnx import numpy_helper

    if t.data_location == 1 or math.prod(t.dims) > limit:  # external data or large
        return None
    try:
        return np.asarray(numpy_helper.to_array(t))
    except Exception:  # a tensor we cannot decode is simply not a constant
        return None


def _dims_of(vi: Any) -> list[DeclaredDim]:
    out: list[DeclaredDim] = []
    for d in vi.type.tensor_type.shape.dim:
        if d.HasField("dim_value") and d.dim_value > 0:
            out.append(int(d.dim_value))
        elif d.HasField("dim_param") and d.dim_param:
            out.append(d.dim_param)
        else:
            out.append(None)
    return out


def _view(proto: Any) -> _Graph:
    nodes = list(_walk(proto.graph))
    consumers: dict[str, list[tuple[Any, int]]] = {}
    for n in nodes:
        for i, name in enumerate(n.input):
            if name:
                consumers.setdefault(name, []).append((n, i))
    const_dims: dict[str, list[int]] = {}
    small: dict[str, np.ndarray] = {}
    for t in _inits(proto.graph):
        const_dims[t.name] = [int(d) for d in t.dims]
        arr = _small_array(t)
        if arr is not None:
            small[t.name] = arr
    for n in nodes:
        if n.op_type == "Constant" and n.output:
            for a in n.attribute:
                if a.name == "value" and a.HasField("t"):
                    const_dims[n.output[0]] = [int(d) for d in a.t.dims]
                    arr = _small_array(a.t)
                    if arr is not None:
                        small[n.output[0]] = arr
                elif a.name in ("value_int", "value_float"):
                    v = a.i if a.name == "value_int" else a.f
                    const_dims[n.output[0]] = []
                    small[n.output[0]] = np.asarray(v)
                elif a.name in ("value_ints", "value_floats"):
                    vals = list(a.ints if a.name == "value_ints" else a.floats)
                    const_dims[n.output[0]] = [len(vals)]
                    small[n.output[0]] = np.asarray(vals)
    outputs = {o.name: _dims_of(o) for o in proto.graph.output}
    output_dtype = {o.name: int(o.type.tensor_type.elem_type) for o in proto.graph.output}
    return _Graph(nodes, consumers, const_dims, small, outputs, output_dtype)


def _reach(g: _Graph, name: str, passing: set[str]) -> Iterator[tuple[Any, int, str]]:
    """Nodes that consume ``name``'s values through ``passing`` ops: (node, input index, via)."""
    seen = {name}
    todo = [name]
    while todo:
        cur = todo.pop()
        for node, idx in g.consumers.get(cur, []):
            yield node, idx, cur
            if node.op_type in passing and idx == 0:
                for out in node.output:
                    if out and out not in seen:
                        seen.add(out)
                        todo.append(out)


def _attr(node: Any, name: str, default: Any = None) -> Any:
    import onnx

    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


# ----------------------------------------------------------------------------- rules
def _compared_value(g: _Graph, name: str) -> tuple[float, str] | None:
    found: list[tuple[float, str]] = []
    for node, idx, _ in _reach(g, name, _VALUE_PASS):
        if node.op_type not in _COMPARE or len(node.input) != 2:
            continue
        other = node.input[1 - idx]
        arr = g.small.get(other)
        if arr is None or arr.size != 1:
            continue
        v = float(arr.reshape(-1)[0])
        if node.op_type == "Equal":
            found.append((v, f"Equal({name}, {v:g})"))
    if not found:
        return None
    return max(found)  # several accepted values (8000 / 16000): the largest


def _index_range(g: _Graph, name: str) -> tuple[int, int, str] | None:
    lo, hi, why = None, None, ""
    for node, idx, _ in _reach(g, name, _VALUE_PASS):
        if node.op_type == "Gather" and idx == 1 and node.input[0] in g.const_dims:
            dims = g.const_dims[node.input[0]]
            axis = int(_attr(node, "axis", 0))
            if dims and -len(dims) <= axis < len(dims):
                n = dims[axis]
                if hi is None or n < hi:
                    lo, hi, why = 0, n, f"Gather table of {n} rows"
        elif node.op_type == "Clip" and idx == 0:
            mn = g.small.get(node.input[1]) if len(node.input) > 1 else None
            mx = g.small.get(node.input[2]) if len(node.input) > 2 else None
            if mn is None and mx is None:
                mn_a, mx_a = _attr(node, "min"), _attr(node, "max")
                mn = None if mn_a is None else np.asarray(mn_a)
                mx = None if mx_a is None else np.asarray(mx_a)
            if mn is not None and mn.size == 1 and mx is not None and mx.size == 1:
                a, b = math.ceil(float(mn.reshape(-1)[0])), math.floor(float(mx.reshape(-1)[0]))
                if b >= a and (hi is None or b + 1 - a < hi - (lo or 0)):
                    lo, hi, why = a, b + 1, f"Clip to [{a}, {b}]"
    if lo is None or hi is None or hi <= lo:
        return None
    return lo, hi, why


_STATE_WORDS = re.compile(r"(state|hidden|cache|past|memory|^h$|^c$|^h0$|^c0$|^h_|^c_)", re.I)


def _norm(name: str) -> str:
    s = name.lower()
    s = re.sub(r"(past|present)[._-]?", "", s)
    s = re.sub(r"[._-]?(in|out|input|output|new|next|prev|n|0|1|t)$", "", s)
    return re.sub(r"[^a-z0-9]", "", s)


def _state_partner(g: _Graph, name: str, rank: int) -> str | None:
    key = _norm(name)
    for out, dims in g.outputs.items():
        if out != name and len(dims) == rank and key and _norm(out) == key:
            return out
    return None


def _reshape_constant(
    g: _Graph, name: str, dims: list[DeclaredDim], free: list[int]
) -> tuple[dict[int, int], str] | None:
    """Sizes for the ``free`` dims from a constant Reshape / Flatten→Gemm downstream."""
    fixed = [d for i, d in enumerate(dims) if i not in free and i != 0 and isinstance(d, int)]
    known = 1
    for d in fixed:
        known *= d
    spatial = [i for i in free if i != 0]
    if not spatial or known <= 0:
        return None
    for node, idx, _ in _reach(g, name, _COUNT_PASS):
        if idx != 0:
            continue
        target: int | None = None
        why = ""
        if node.op_type == "Reshape" and len(node.input) > 1:
            shape = g.small.get(node.input[1])
            if shape is not None and shape.size >= 2 and (shape[1:] > 0).all():
                target = int(np.prod(shape[1:]))  # dim 0 stays the batch
                why = f"Reshape to {shape.tolist()}"
        elif node.op_type == "Flatten" and int(_attr(node, "axis", 1)) == 1:
            for nxt, j, _ in _reach(g, node.output[0], {"Cast", "Identity", "Dropout"}):
                if nxt.op_type in ("Gemm", "MatMul") and j == 0 and len(nxt.input) > 1:
                    w = g.const_dims.get(nxt.input[1])
                    if w and len(w) == 2:
                        trans = nxt.op_type == "Gemm" and int(_attr(nxt, "transB", 0)) == 1
                        target = w[1] if trans else w[0]
                        why = f"Flatten into {nxt.op_type} with {target} inputs"
                        break
        if target is None or target % known:
            continue
        rest = target // known
        if len(spatial) == 1:
            return {spatial[0]: rest}, why
        if len(spatial) == 2:
            side = math.isqrt(rest)
            if side * side == rest:
                return {spatial[0]: side, spatial[1]: side}, why + " (square)"
    return None


def _is_ocr_recogniser(g: _Graph) -> str | None:
    if not any(n.op_type == "Conv" for n in g.nodes):
        return None
    for out, dims in g.outputs.items():
        if (
            len(dims) == 3
            and isinstance(dims[2], int)
            and dims[2] >= 30
            and not isinstance(dims[1], int)
        ):
            return f"output {out!r} scores {dims[2]} classes per time step"
    return None


# ----------------------------------------------------------------------------- probe
def _probe_ok(
    session: Any,
    names: Sequence[str],
    dtypes: Sequence[str],
    shapes: Mapping[str, list[int]],
    values: Mapping[str, float],
) -> bool:
    rng = np.random.default_rng(0)
    feed: dict[str, np.ndarray] = {}
    for n, dt in zip(names, dtypes, strict=True):
        shape = shapes[n]
        dtype = np.dtype(dt)
        if math.prod(shape) > 64_000_000:
            return False
        if n in values:
            feed[n] = np.full(shape, values[n]).astype(dtype)
        elif dtype.kind == "f":
            feed[n] = rng.standard_normal(shape).astype(dtype)
        elif dtype.kind == "b":
            feed[n] = rng.integers(0, 2, size=shape).astype(bool)
        else:
            feed[n] = rng.integers(0, 2, size=shape).astype(dtype)
    try:
        session.run(None, feed)
    except Exception:  # any rejection means "not these inputs"
        return False
    return True


def _session(path: Path) -> Any | None:
    try:
        import onnxruntime as ort
    except ImportError:  # pragma: no cover - onnxruntime is a core dependency
        return None
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 4
    try:
        return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    except Exception:  # a model onnxruntime cannot load is not probed
        return None


# ----------------------------------------------------------------------------- main
def infer_inputs(
    model: str | Path | Any,
    *,
    declared: Mapping[str, list[DeclaredDim]] | None = None,
    dtypes: Mapping[str, str] | None = None,
    overrides: Mapping[str, Sequence[int]] | None = None,
    input_values: Mapping[str, float] | None = None,
    dim_values: Mapping[str, int] | None = None,
    batch_size: int = 1,
    probe: bool = True,
    path: str | Path | None = None,
) -> InputInference:
    """Infer the shape and data rule of every input of an ONNX model.

    Args:
        model: An ONNX file or a loaded ``ModelProto`` (weights need not be loaded).
        declared: Declared dims by input name (read from the graph when ``None``).
        dtypes: NumPy dtype names by input name (read from the graph when ``None``).
        overrides: Shapes the caller gave (rule ``given``); never changed.
        input_values: Values the caller gave (rule ``given``); never changed.
        dim_values: Sizes of symbolic dimensions the caller gave; kept.
        batch_size: Size of the batch dimension.
        probe: Whether onnxruntime may be asked about shapes the graph leaves open
            (needs the file: ``model`` as a path, or ``path``).
        path: The file ``model`` was read from, for the probe.

    Returns:
        An :class:`InputInference`; inputs no rule decides are left to today's rule.

    Raises:
        ModelLoadError: ``model`` is a path to no file.
        ModelFormatError: ``model`` is a file but not a readable ONNX model.
    """
    import onnx

    if isinstance(model, str | Path):
        path = Path(model)
        if not path.is_file():
            raise ModelLoadError(path, "no such file")
        try:
            proto = onnx.load(str(path), load_external_data=False)
        except Exception as exc:
            raise ModelFormatError(path, f"not a readable ONNX model: {exc}") from None
    else:
        proto = model
    inits = {t.name for t in proto.graph.initializer}
    graph_inputs = [vi for vi in proto.graph.input if vi.name not in inits]
    decl = (
        {k: list(v) for k, v in declared.items()}
        if declared is not None
        else {vi.name: _dims_of(vi) for vi in graph_inputs}
    )
    if dtypes is None:
        from graphrec.runtimes.inputs import _ONNX_DTYPES

        dtypes = {
            vi.name: _ONNX_DTYPES.get(vi.type.tensor_type.elem_type, "float32")
            for vi in graph_inputs
        }
    given_shapes = dict(overrides or {})
    given_values = dict(input_values or {})
    sym = dict(dim_values or {})
    g = _view(proto)
    res = InputInference()
    uses: dict[str, int] = {}
    for dims in decl.values():
        for d in dims:
            if isinstance(d, str) and d:
                uses[d] = uses.get(d, 0) + 1
    learned: dict[str, int] = {}
    batch_syms = {d[0] for d in decl.values() if d and isinstance(d[0], str)}
    # Every input starts at "default"; the rules below refine.
    decided: dict[str, list[DeclaredDim]] = {}
    for name, dims in decl.items():
        dt = np.dtype(dtypes.get(name, "float32"))
        why: list[str] = []
        if name in given_shapes or name in given_values:
            res.rules[name] = "given"
            if name in given_values:
                continue
        # ---- values
        numel_one = all(isinstance(d, int) and d == 1 for d in dims)
        if numel_one or not dims:
            cv = _compared_value(g, name)
            if cv is not None:
                res.values[name] = cv[0]
                res.rules.setdefault(name, f"compared-value: {cv[1]}")
                continue
        if dt.kind in "iu":
            rng = _index_range(g, name)
            if rng is not None:
                lo, hi, reason = rng
                res.ranges[name] = (lo, hi)
                if lo > 0 or hi < 2:  # today's 0/1 data would be out of range
                    res.values[name] = float(lo)
                why.append(f"index-range: [{lo}, {hi}) from {reason}")
        if name in given_shapes:
            continue
        # ---- shapes
        cur: list[DeclaredDim] = [
            d if isinstance(d, int) else (sym[d] if isinstance(d, str) and d in sym else d)
            for d in dims
        ]
        free = [i for i, d in enumerate(cur) if not isinstance(d, int)]
        if not free and not why:
            res.rules.setdefault(name, "declared")
        rank = len(cur)
        partner = _state_partner(g, name, rank) if free else None
        if free and (partner is not None or _STATE_WORDS.search(name)) and rank >= 2:
            out_dims = g.outputs.get(partner or "", [])
            took: list[int] = []
            for i in free:
                od = out_dims[i] if i < len(out_dims) else None
                d = cur[i]
                if isinstance(od, int):
                    cur[i] = od
                elif isinstance(d, str) and d and uses.get(d, 0) > 1:
                    continue  # a size shared with other inputs follows them
                elif partner is None and isinstance(d, str) and d:
                    continue  # a named size of an input that only looks like a state
                else:
                    cur[i] = batch_size
                took.append(i)
            if partner is not None and all(i == 0 or cur[i] in batch_syms for i in free):
                took = list(free)  # only the batch is free: shaped like its output
            if took:
                src = f"output {partner!r}" if partner else "a state input"
                why.append(f"state: shaped like {src}, free sizes are the batch")
                free = [i for i in free if i not in took]
        if free and rank >= 2 and any(i != 0 for i in free):
            rc = _reshape_constant(g, name, cur, free)
            if rc is not None:
                for i, v in rc[0].items():
                    cur[i] = v
                free = [i for i in free if i not in rc[0]]
                why.append(f"reshape-constant: {rc[1]}")
        if rank == 4 and 3 in free and cur[1] in (1, 3, 4) and (2 in free or cur[2] == 48):
            ocr = _is_ocr_recogniser(g)
            if ocr is not None:
                what = "height 48 and width 320" if 2 in free else "width 320"
                cur[2], cur[3] = OCR_REC_HEIGHT, OCR_REC_WIDTH
                free = [i for i in free if i not in (2, 3)]
                why.append(f"ocr-recogniser: {ocr}, {what} by convention")
        if rank == 4 and 1 in free and isinstance(cur[3], int) and cur[3] in (1, 3, 4):
            for i in (1, 2):
                if i in free:
                    cur[i] = DEFAULT_IMAGE_SIZE
            free = [i for i in free if i not in (1, 2)]
            why.append(f"layout-nhwc: last size {cur[3]} is the channels")
        if why:
            res.rules.setdefault(name, "; ".join(why))
            if cur != dims:
                decided[name] = cur
                for d, c in zip(dims, cur, strict=True):
                    if isinstance(d, str) and d and isinstance(c, int) and d not in sym:
                        learned.setdefault(d, c)
        elif name not in res.rules:
            if not free:
                res.rules[name] = "declared"
            elif all(i == 0 or cur[i] in batch_syms for i in free):
                res.rules[name] = "declared: dynamic batch"
            else:
                res.rules[name] = "default"
    # Concrete shapes of everything decided, the rest by today's rule (shared symbols).
    resolved = resolve_input_shapes(
        {n: decided.get(n, d) for n, d in decl.items()},
        given_shapes,
        batch_size=batch_size,
        dim_values={**learned, **sym},
    )
    for n, dims in decl.items():
        if n in decided or any(isinstance(d, str) and d in learned for d in dims):
            res.shapes[n] = resolved[n]
    if probe and path is not None:
        _probe(
            res,
            Path(path),
            decl,
            decided,
            dtypes,
            resolved,
            given_shapes,
            given_values,
            batch_size,
            sym,
        )
    return res


def _probe(
    res: InputInference,
    path: Path,
    decl: Mapping[str, list[DeclaredDim]],
    decided: Mapping[str, list[DeclaredDim]],
    dtypes: Mapping[str, str],
    resolved: Mapping[str, list[int]],
    given_shapes: Mapping[str, Sequence[int]],
    given_values: Mapping[str, float],
    batch_size: int,
    sym: Mapping[str, int],
) -> None:
    """Try conventional sizes for the dims today's rule chose, if onnxruntime rejects them."""
    batch_syms = {d[0] for d in decl.values() if d and isinstance(d[0], str)}
    open_dims: dict[str, list[int]] = {}
    for n, dims in decl.items():
        if n in given_shapes:
            continue
        cur = decided.get(n, dims)
        idx = [
            i
            for i, d in enumerate(cur)
            if i != 0
            and not isinstance(d, int)
            and not (isinstance(d, str) and (d in sym or d in batch_syms))
        ]
        if idx:
            open_dims[n] = idx
    if not open_dims:
        return
    names = list(decl)
    values = {**res.values, **given_values}
    shapes = {n: list(resolved[n]) for n in names}
    try:
        st = path.stat()
    except OSError:
        return
    key = (
        str(path.resolve()),
        st.st_mtime_ns,
        st.st_size,
        repr(shapes),
        repr(sorted(values.items())),
    )
    if key not in _PROBED:
        _PROBED[key] = _probe_search(path, decl, open_dims, dtypes, shapes, values)
    found = _PROBED[key]
    if found is None:
        return
    new_shapes, what = found
    for n in open_dims:
        prev = res.rules.get(n, "default")
        if what is None:
            res.rules[n] = f"{prev}; probe: onnxruntime accepted none of the conventional sizes"
        elif new_shapes[n] != shapes[n]:
            res.shapes[n] = new_shapes[n]
            note = f"probe: onnxruntime rejected {shapes[n]}, accepted {what}"
            res.rules[n] = note if prev == "default" else f"{prev}; {note}"


#: Probe results of this process, by file identity and starting inputs.
_PROBED: dict[tuple[Any, ...], tuple[dict[str, list[int]], str | None] | None] = {}


def _probe_search(
    path: Path,
    decl: Mapping[str, list[DeclaredDim]],
    open_dims: Mapping[str, list[int]],
    dtypes: Mapping[str, str],
    shapes: Mapping[str, list[int]],
    values: Mapping[str, float],
) -> tuple[dict[str, list[int]], str | None] | None:
    """``None`` when the starting shapes run (or nothing can be probed); else the first
    accepted shapes and what they are, or ``(shapes, None)`` when none was accepted."""
    names = list(decl)
    session = _session(path)
    if session is None:
        return None
    if _probe_ok(session, names, [dtypes[n] for n in names], shapes, values):
        return None

    def spatial(n: str, i: int) -> bool:
        dims = decl[n]
        if len(dims) != 4:
            return False
        nhwc = not isinstance(dims[1], int) and isinstance(dims[3], int) and dims[3] in (1, 3, 4)
        return i in ((1, 2) if nhwc else (2, 3))

    # All open dims of one kind move together (inputs sharing a "seq" stay equal).
    def with_size(size: int, image: bool) -> dict[str, list[int]]:
        out = {n: list(s) for n, s in shapes.items()}
        for n, idx in open_dims.items():
            for i in idx:
                if spatial(n, i) == image:
                    out[n][i] = size
        return out

    kinds = {spatial(n, i) for n, idx in open_dims.items() for i in idx}
    has_image, has_seq = True in kinds, False in kinds
    trials: list[tuple[dict[str, list[int]], str]] = []
    if has_seq:
        trials += [(with_size(n, False), f"length {n}") for n in PROBE_LENGTHS]
    if has_image:
        trials += [(with_size(s, True), f"side {s}") for s in PROBE_SIDES]
    for shp, what in trials:
        if _probe_ok(session, names, [dtypes[n] for n in names], shp, values):
            return shp, what
    return dict(shapes), None
