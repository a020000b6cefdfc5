"""What each runtime can run, learned from the runtimes themselves, one operator at a time.

A deployment choice fails on a model for one of two kinds of reason:

* a rule of the adapter (:meth:`RuntimeAdapter.check`): ncnn has no batch dimension,
  LiteRT converts from the PyTorch module, ...;
* an operator its converter, loader or kernels cannot handle, or compute correctly
  (``If`` with a rank-2 condition, a ``Resize`` mode, a dtype).

The second kind is probed: every operator of a model is cut out into a **single-operator
model** that keeps the operator's attributes, dtypes and ranks, its weights and its
integer inputs (shapes, indices: the values the full model computes for them, taken from
an onnxruntime run of the full model), with its float inputs left as model inputs. Each
single-operator model goes through the real harness (conversion, load, one run, outputs
compared with onnxruntime), and the result is kept in a **support table** per runtime and
version, keyed by the operator's *signature* (:class:`OpSignature`).

:func:`blockers` then says, per candidate, what stops it from running a model: a rule, or
the first operator whose signature failed on that runtime version, with the reason, e.g.
``cannot run: If (cond rank 2) on openvino 2026.4.1: load_failed: ...``.

The tables live in ``graphrec/data/support/`` (shipped, built from the zoo and the
real-model training part with ``graphrec runtimes probe``) and in the user's cache
(``~/.cache/graphrec/support/``, what ``--probe`` adds on this machine); a table is only
used for the runtime version it was probed on.

Example:
    >>> from graphrec.runtimes.support import op_signatures  # doctest: +SKIP
    >>> sigs = op_signatures("model.onnx")  # doctest: +SKIP
    >>> sorted({s.op_type for s in sigs.values()})[:3]  # doctest: +SKIP
    ['Add', 'Conv', 'Relu']
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from graphrec.errors import GraphRecError, ModelLoadError

__all__ = [
    "PROBE_CANDIDATES",
    "TORCH_ROUTE_RUNTIMES",
    "Blocker",
    "OpSignature",
    "SupportTable",
    "blockers",
    "load_tables",
    "op_signatures",
    "probe_models",
    "reconcile",
    "route_check",
    "route_rules",
    "single_op_models",
    "tables_for",
    "uses_converter",
]

#: The shipped tables.
PACKAGED_DIR = Path(__file__).resolve().parent.parent / "data" / "support"
#: Probe statuses that mean "this runtime cannot run this operator as it is here".
FAILING = frozenset({"convert_failed", "load_failed", "run_failed", "crashed", "wrong_output"})
#: One candidate per way a runtime prepares a model (threads do not change what runs).
PROBE_CANDIDATES: tuple[str, ...] = (
    "onnxruntime/cpu/fp32/opt=all/threads=1",
    "onnxruntime/cpu/fp32/opt=basic/threads=1",
    "onnxruntime/cpu/int8/opt=all/threads=1",
    "openvino/cpu/fp32/hint=latency/threads=1",
    "openvino/cpu/bf16/hint=latency/threads=1",
    "mnn/cpu/fp32/threads=1",
    "ncnn/cpu/fp32/threads=1",
    "ncnn/cpu/fp16/threads=1",
    "tract/cpu/fp32/threads=1",
    # the torch route: a bare ONNX file goes through graphrec's ONNX -> torch converter,
    # then torch (eager, TorchScript trace) or torch.export (LiteRT, ExecuTorch)
    "torch/eager/fp32/threads=1",
    "torch/torchscript/fp32/threads=1",
    "litert/xnnpack/fp32/threads=1",
    "executorch/xnnpack/fp32/threads=1",
)
#: Runtimes that start from a torch module: for an ONNX file without a ``.torch.json``
#: sidecar they run what graphrec's ONNX -> torch converter makes of it, so their tables
#: (probed on bare single-operator files) describe that route, and are used only for
#: models that take it.
TORCH_ROUTE_RUNTIMES = frozenset({"torch", "litert", "executorch"})
#: Attributes whose values decide whether an operator runs (ints and strings kept in the
#: signature); other attributes only enter by name.
_KEY_ATTRS = frozenset(
    {
        "group",
        "axis",
        "axes",
        "keepdims",
        "mode",
        "coordinate_transformation_mode",
        "nearest_mode",
        "auto_pad",
        "direction",
        "layout",
        "transA",
        "transB",
        "ceil_mode",
        "count_include_pad",
        "storage_order",
        "to",
        "select_last_index",
        "largest",
        "sorted",
        "exclusive",
        "reverse",
        "noop_with_empty_axes",
        "allowzero",
        "blocksize",
        "approximate",
        "batch_dims",
        "reduction",
        "detect_negative",
        "detect_positive",
        "equation",
        "output_padding",
        "time_axis",
        "batch_axis",
        "is_causal",
        "num_heads",
    }
)
_ELEM = {
    1: "f32",
    2: "u8",
    3: "i8",
    4: "u16",
    5: "i16",
    6: "i32",
    7: "i64",
    8: "str",
    9: "bool",
    10: "f16",
    11: "f64",
    12: "u32",
    13: "u64",
    16: "bf16",
}
_FLOAT_ELEMS = frozenset({1, 10, 11, 16})
#: Largest weight kept in a single-operator model (bigger operators are not probed).
MAX_WEIGHT_BYTES = 64 << 20


@dataclass(frozen=True)
class OpSignature:
    """What decides whether a runtime runs one operator: its type, inputs and key attributes.

    Attributes:
        domain: Operator domain (``""`` for the standard one).
        op_type: Operator type.
        inputs: Per input: ``dtype:rank:kind``; kind ``w`` a weight/constant, ``x`` a
            computed tensor, ``-`` an omitted optional input.
        attrs: Key attributes (``name=value``) and the names of the others.
        opset: The model's default-domain opset.
    """

    domain: str
    op_type: str
    inputs: tuple[str, ...]
    attrs: tuple[str, ...]
    opset: int

    @functools.cached_property
    def key(self) -> str:
        """A short stable id (hash of the fields)."""
        text = json.dumps(
            [self.domain, self.op_type, self.inputs, self.attrs, self.opset], sort_keys=True
        )
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def describe(self) -> str:
        """A readable form for messages: ``If (cond bool rank 2)``."""
        name = f"{self.domain}.{self.op_type}" if self.domain else self.op_type
        parts = [i.replace(":w", " weight").replace(":x", "") for i in self.inputs if i != "-"]
        ranks = ", ".join(f"{p.split(':')[0]} rank {p.split(':')[1]}" for p in parts)
        keys = [a for a in self.attrs if "=" in a]
        extra = f"; {', '.join(keys)}" if keys else ""
        return f"{name} ({ranks}{extra})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "op_type": self.op_type,
            "inputs": list(self.inputs),
            "attrs": list(self.attrs),
            "opset": self.opset,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> OpSignature:
        return cls(
            str(d["domain"]),
            str(d["op_type"]),
            tuple(d["inputs"]),
            tuple(d["attrs"]),
            int(d["opset"]),
        )


def _attr_text(attr: Any) -> str:
    import onnx

    t = attr.type
    if attr.name in _KEY_ATTRS:
        if t == onnx.AttributeProto.INT:
            return f"{attr.name}={attr.i}"
        if t == onnx.AttributeProto.STRING:
            return f"{attr.name}={attr.s.decode(errors='replace')}"
        if t == onnx.AttributeProto.INTS and len(attr.ints) <= 8:
            return f"{attr.name}={','.join(str(v) for v in attr.ints)}"
    if t in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
        return f"{attr.name}:graph"
    return attr.name


def _default_opset(model: Any) -> int:
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            return int(imp.version)
    return 0


def _subgraph_refs(node: Any) -> list[str]:
    """Names a node's subgraphs read from the enclosing scope."""
    import onnx

    out: list[str] = []

    def walk(g: Any, outer_defined: set[str]) -> None:
        defined = set(outer_defined)
        defined.update(i.name for i in g.input)
        defined.update(t.name for t in g.initializer)
        for n in g.node:
            for name in n.input:
                if name and name not in defined and name not in out:
                    out.append(name)
            for a in n.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    walk(a.g, defined)
                elif a.type == onnx.AttributeProto.GRAPHS:
                    for sg in a.graphs:
                        walk(sg, defined)
            defined.update(n.output)

    for a in node.attribute:
        if a.type == onnx.AttributeProto.GRAPH:
            walk(a.g, set())
        elif a.type == onnx.AttributeProto.GRAPHS:
            for sg in a.graphs:
                walk(sg, set())
    return out


@dataclass
class _Typed:
    elem: int
    rank: int | None
    dims: tuple[int, ...] | None = None


def _bulky(t: Any) -> bool:
    """A float initializer of more than 64 elements (its values never decide a shape)."""
    n = 1
    for d in t.dims:
        n *= int(d)
    return int(t.data_type) in _FLOAT_ELEMS and n > 64


def _light_copy(model: Any) -> Any:
    """A copy of ``model`` without its bulky initializers (:func:`_bulky`), which are
    not copied at all (copying them cost more than the rest of a warm ``recommend``)."""
    import onnx
    from google.protobuf.descriptor import FieldDescriptor

    def copy_into(dst: Any, src: Any, skip: str | None) -> None:
        for fd, val in src.ListFields():
            if fd.name == skip:
                continue
            if fd.label == FieldDescriptor.LABEL_REPEATED:
                getattr(dst, fd.name).extend(val)
            elif fd.type == FieldDescriptor.TYPE_MESSAGE:
                getattr(dst, fd.name).CopyFrom(val)
            else:
                setattr(dst, fd.name, val)

    m = onnx.ModelProto()
    copy_into(m, model, "graph")
    copy_into(m.graph, model.graph, "initializer")
    m.graph.initializer.extend(t for t in model.graph.initializer if not _bulky(t))
    return m


def _inferred(
    model: Any, spec: Any, *, keep_weights: bool = True
) -> tuple[Any, dict[str, _Typed], set[str]]:
    """The model with concrete input shapes and inferred types; ``(model, types, weights)``.

    ``keep_weights=False`` hands back a model without its large float initializers (for
    callers that read types and nodes only); ``types`` and ``weights`` cover them anyway.
    """
    import onnx

    # Shape inference serialises the whole model; large float weights only need their
    # type and shape there, so they go in as typed graph inputs.
    m = _light_copy(model)
    shapes = dict(zip(spec.input_names, spec.input_shapes, strict=True))
    for vi in m.graph.input:
        if vi.name in shapes:
            dims = vi.type.tensor_type.shape.dim
            for d, v in zip(dims, shapes[vi.name], strict=False):
                d.Clear()
                d.dim_value = int(v)
    declared = {vi.name for vi in m.graph.input}
    added: set[str] = set()
    for t in model.graph.initializer:
        if _bulky(t) and t.name not in declared:
            m.graph.input.append(
                onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims))
            )
            added.add(t.name)
    # Inference is best effort: types it cannot infer stay unknown.
    with contextlib.suppress(Exception):
        m = onnx.shape_inference.infer_shapes(m, data_prop=True)
    if added:
        kept = onnx.GraphProto()
        kept.input.extend(vi for vi in m.graph.input if vi.name not in added)
        del m.graph.input[:]
        m.graph.input.extend(kept.input)
    if keep_weights and len(m.graph.initializer) != len(model.graph.initializer):
        del m.graph.initializer[:]
        m.graph.initializer.extend(model.graph.initializer)
    types: dict[str, _Typed] = {}

    def note(vi: Any) -> None:
        if vi.type.HasField("tensor_type"):
            tt = vi.type.tensor_type
            rank = len(tt.shape.dim) if tt.HasField("shape") else None
            dims = (
                tuple(int(d.dim_value) if d.HasField("dim_value") else -1 for d in tt.shape.dim)
                if tt.HasField("shape")
                else None
            )
            types[vi.name] = _Typed(int(tt.elem_type), rank, dims)

    for vi in (*m.graph.input, *m.graph.value_info, *m.graph.output):
        note(vi)
    weights = {t.name for t in model.graph.initializer}
    for t in model.graph.initializer:
        types[t.name] = _Typed(int(t.data_type), len(t.dims), tuple(int(d) for d in t.dims))
    for n in m.graph.node:
        if n.op_type == "Constant" and n.domain in ("", "ai.onnx"):
            weights.update(n.output)
            for a in n.attribute:
                if a.name == "value" and a.type == onnx.AttributeProto.TENSOR:
                    types[n.output[0]] = _Typed(
                        int(a.t.data_type), len(a.t.dims), tuple(int(d) for d in a.t.dims)
                    )
    # Tensors computed from weights alone (DequantizeLinear of int8 weights, a Reshape of
    # a constant): every runtime folds them, so they count as weights too.
    names_in = {i.name for i in m.graph.input} - weights
    for n in m.graph.node:
        if n.op_type in _NONDETERMINISTIC or any(
            a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in n.attribute
        ):
            continue
        ins = [i for i in n.input if i]
        if ins and all(i in weights and i not in names_in for i in ins):
            weights.update(o for o in n.output if o)
    return m, types, weights


_NONDETERMINISTIC = frozenset(
    {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial"}
)
#: Operators not probed: their output is the input's shape, which runtimes fold away.
_NOT_PROBED = frozenset({"Shape", "Size"})
_GROUPED = frozenset({"Conv", "ConvTranspose", "ConvInteger", "QLinearConv"})


def _group_kind(text: str, weight: _Typed | None) -> str:
    g = int(text.split("=", 1)[1])
    if g == 1:
        return "group=1"
    if (
        weight is not None
        and weight.dims is not None
        and len(weight.dims) > 1
        and weight.dims[1] == 1
    ):
        return "group=depthwise"
    return "group=grouped"


def _signature(
    node: Any, types: Mapping[str, _Typed], weights: set[str], opset: int
) -> OpSignature | None:
    ins: list[str] = []
    for name in node.input:
        if not name:
            ins.append("-")
            continue
        t = types.get(name)
        if t is None or t.rank is None:
            return None
        kind = "w" if name in weights else "x"
        ins.append(f"{_ELEM.get(t.elem, str(t.elem))}:{t.rank}:{kind}")
    for name in _subgraph_refs(node):
        t = types.get(name)
        if t is None or t.rank is None:
            return None
        ins.append(f"{_ELEM.get(t.elem, str(t.elem))}:{t.rank}:{'w' if name in weights else 'x'}")
    texts = [_attr_text(a) for a in node.attribute]
    if node.op_type in _GROUPED and len(node.input) > 1:
        # The group count matters as plain / depthwise / grouped, not as a number.
        w = types.get(node.input[1])
        texts = [_group_kind(t, w) if t.startswith("group=") else t for t in texts]
    attrs = tuple(sorted(texts))
    return OpSignature(node.domain or "", node.op_type, tuple(ins), attrs, opset)


def op_signatures(
    model_path: str | os.PathLike[str], *, spec: Any = None
) -> dict[str, OpSignature]:
    """Signatures of every operator of a model, by node name (or ``#index``).

    Operators whose input types cannot be inferred are left out. ``Constant`` nodes are
    left out (they become weights).

    Raises:
        ModelLoadError: The model cannot be read.
    """
    import onnx

    from graphrec.runtimes.inputs import model_spec

    path = Path(model_path)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise ModelLoadError(path, f"cannot read the ONNX file: {exc}") from exc
    spec = spec if spec is not None else model_spec(path)
    m, types, weights = _inferred(model, spec, keep_weights=False)
    opset = _default_opset(m)
    out: dict[str, OpSignature] = {}
    for i, node in enumerate(m.graph.node):
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            continue
        sig = _signature(node, types, weights, opset)
        if sig is not None:
            out[node.name or f"#{i}"] = sig
    return out


@dataclass
class SingleOp:
    """One single-operator model cut out of a model."""

    signature: OpSignature
    path: Path
    source: str  # "model-file-name:node-name"


def _capture(model: Any, spec: Any, names: Sequence[str]) -> dict[str, np.ndarray]:
    """Values of ``names`` in an onnxruntime run of the full model on the harness's inputs."""
    import onnx
    import onnxruntime as ort

    from graphrec.runtimes.inputs import make_inputs

    if not names:
        return {}
    m = onnx.ModelProto()
    m.CopyFrom(model)
    have = {o.name for o in m.graph.output}
    for n in names:
        if n not in have:
            m.graph.output.append(onnx.ValueInfoProto(name=n))
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    sess = ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    feeds = dict(zip(spec.input_names, make_inputs(spec), strict=True))
    vals = sess.run(list(names), feeds)
    return {n: np.asarray(v) for n, v in zip(names, vals, strict=True)}


def single_op_models(
    model_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    skip: Iterable[str] = (),
) -> list[SingleOp]:
    """Cut every operator with a new signature out of a model into its own ONNX file.

    Weights and integer/bool inputs (shapes, indices, conditions) become initializers
    holding the values the full model has for them (from an onnxruntime run on the
    harness's inputs); float computed inputs become model inputs. Operators with no
    float computed input, with unknown types, with weights above :data:`MAX_WEIGHT_BYTES`
    or with non-tensor inputs are not cut.

    Args:
        model_path: The model.
        out_dir: Folder for the files (``<signature key>.onnx``).
        skip: Signature keys already known (not cut again).

    Returns:
        One entry per new signature.

    Raises:
        ModelLoadError: The model cannot be read or onnxruntime cannot run it.
    """
    import onnx
    from onnx import helper, numpy_helper

    from graphrec.runtimes.inputs import model_spec

    path = Path(model_path)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    try:
        model = onnx.load(str(path))
    except Exception as exc:
        raise ModelLoadError(path, f"cannot read the ONNX file: {exc}") from exc
    spec = model_spec(path)
    m, types, weights = _inferred(model, spec)
    opset = _default_opset(m)
    inits = {t.name: t for t in m.graph.initializer}
    consts: dict[str, Any] = {}
    for n in m.graph.node:
        if n.op_type == "Constant" and n.domain in ("", "ai.onnx"):
            for a in n.attribute:
                if a.name == "value" and a.type == onnx.AttributeProto.TENSOR:
                    consts[n.output[0]] = a.t
    producer = {o: n for n in m.graph.node for o in n.output if o}
    seen = set(skip)
    chosen: list[tuple[Any, OpSignature, list[str]]] = []
    for node in m.graph.node:
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            continue
        sig = _signature(node, types, weights, opset)
        if sig is None or sig.key in seen:
            continue
        if node.op_type in _NOT_PROBED:
            continue
        reads = [n for n in node.input if n] + _subgraph_refs(node)
        computed = [n for n in reads if n not in weights]
        # Scalars become weights (a runtime folds a scalar-only operator away), so an
        # operator needs a float computed input of rank >= 1 to be probed.
        if not any(types[n].elem in _FLOAT_ELEMS and (types[n].rank or 0) >= 1 for n in computed):
            continue
        big = sum(int(np.prod(inits[n].dims, dtype=np.int64)) * 4 for n in reads if n in inits)
        if big > MAX_WEIGHT_BYTES:
            continue
        seen.add(sig.key)
        chosen.append((node, sig, computed))
    needed = sorted(
        {
            n
            for node, _, _ in chosen
            for n in [*(i for i in node.input if i), *_subgraph_refs(node)]
            if n not in spec.input_names and n not in inits and n not in consts
        }
    )
    try:
        values = _capture(m, spec, needed)
    except Exception as exc:
        raise ModelLoadError(path, f"onnxruntime cannot run the full model: {exc}") from exc
    from graphrec.runtimes.inputs import make_inputs

    values.update(dict(zip(spec.input_names, make_inputs(spec), strict=True)))
    result: list[SingleOp] = []
    for node, sig, computed in chosen:
        reads = [n for n in node.input if n] + _subgraph_refs(node)
        graph_inputs = []
        initializers: list[Any] = []
        init_names: set[str] = set()
        pre_nodes: list[Any] = []
        pre_outputs: set[str] = set()
        for name in dict.fromkeys(reads):
            if name in init_names:
                continue
            if name in inits:
                init_names.add(name)
                initializers.append(inits[name])
            elif name in consts:
                init_names.add(name)
                t = onnx.TensorProto()
                t.CopyFrom(consts[name])
                t.name = name
                initializers.append(t)
            elif name not in computed:  # computed from weights: keep the nodes that do it
                chain = _weight_chain(name, producer, inits, consts)
                if chain is None:
                    break
                for cn in chain:
                    if cn.output[0] in pre_outputs:
                        continue
                    pre_outputs.update(cn.output)
                    pre_nodes.append(cn)
                    for w in cn.input:
                        if w in inits and w not in init_names:
                            init_names.add(w)
                            initializers.append(inits[w])
                        elif w in consts and w not in init_names:
                            init_names.add(w)
                            t = onnx.TensorProto()
                            t.CopyFrom(consts[w])
                            t.name = w
                            initializers.append(t)
            else:
                v = values.get(name)
                if v is None or v.dtype == object:
                    break
                if types[name].elem in _FLOAT_ELEMS and v.ndim >= 1:
                    graph_inputs.append(
                        helper.make_tensor_value_info(name, types[name].elem, list(v.shape))
                    )
                else:
                    initializers.append(numpy_helper.from_array(v, name))
        else:
            outputs = []
            for o in node.output:
                if not o:
                    continue
                ot = types.get(o)
                outputs.append(helper.make_tensor_value_info(o, ot.elem if ot else 0, None))
            if any(o.type.tensor_type.elem_type == 0 for o in outputs):
                continue
            order = {id(n): i for i, n in enumerate(m.graph.node)}
            pre_nodes.sort(key=lambda n: order.get(id(n), 0))
            g = helper.make_graph(
                [*pre_nodes, node], f"op_{sig.op_type}", graph_inputs, outputs, initializers
            )
            single = helper.make_model(
                g, opset_imports=list(m.opset_import), ir_version=m.ir_version
            )
            file = out / f"{sig.key}.onnx"
            onnx.save(single, str(file))
            result.append(SingleOp(sig, file, f"{path.name}:{node.name}"))
    return result


def _weight_chain(
    name: str, producer: Mapping[str, Any], inits: Mapping[str, Any], consts: Mapping[str, Any]
) -> list[Any] | None:
    """The nodes that compute ``name`` from weights alone (producers first), or ``None``
    when that takes more than 16 nodes."""
    out: list[Any] = []
    stack = [name]
    seen: set[str] = set()
    while stack:
        n = stack.pop()
        if n in seen or n in inits or n in consts:
            continue
        seen.add(n)
        node = producer.get(n)
        if node is None:
            return None
        out.append(node)
        if len(out) > 16:
            return None
        stack.extend(i for i in node.input if i)
    return out[::-1]


@dataclass
class SupportTable:
    """Probe results of one runtime version: per candidate kind and signature, a status.

    Attributes:
        runtime: Adapter name.
        version: Runtime version the probes ran on.
        entries: ``{signature key: {"signature": ..., "results": {candidate: [status,
            error]}, "source": ...}}``.
    """

    runtime: str
    version: str
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: For a torch-route runtime, the ONNX -> torch converter the probes went through.
    converter: str | None = None
    #: For a torch-route runtime, whole-model route checks (:func:`route_check`) by model
    #: sha256: ``[status, error, name]``.
    models: dict[str, list[str]] = field(default_factory=dict)

    @property
    def filename(self) -> str:
        return f"{self.runtime}-{self.version}.json"

    def status(self, candidate: str, key: str) -> tuple[str, str] | None:
        """``(status, error)`` of a probe, or ``None`` when not probed."""
        return self.kind_status(_probe_kind(candidate), key)

    def kind_status(self, kind: str, key: str) -> tuple[str, str] | None:
        """:meth:`status` for a candidate kind (a candidate id without its threads)."""
        e = self.entries.get(key)
        if e is None:
            return None
        r = e["results"].get(kind)
        return None if r is None else (str(r[0]), str(r[1] or ""))

    def ran_in_context(self, candidate: str, key: str) -> bool:
        """Whether a whole model holding this signature ran correctly on the candidate's
        kind (:func:`reconcile`): the single-operator failure is then an artefact of the
        cut (a runtime that folds the operator away, or needs a neighbour)."""
        e = self.entries.get(key)
        return bool(e and e.get("in_context", {}).get(_probe_kind(candidate)))

    def add(self, sig: OpSignature, candidate: str, status: str, error: str, source: str) -> None:
        e = self.entries.setdefault(sig.key, {"signature": sig.to_dict(), "results": {}})
        e.setdefault("source", source)
        e["results"][_probe_kind(candidate)] = [status, (error or "")[:300]]

    def save(self, folder: str | os.PathLike[str]) -> Path:
        """Write the table atomically into ``folder``."""
        d = Path(folder)
        d.mkdir(parents=True, exist_ok=True)
        p = d / self.filename
        payload: dict[str, Any] = {
            "runtime": self.runtime,
            "version": self.version,
            "entries": self.entries,
        }
        if self.converter is not None:
            payload["converter"] = self.converter
        if self.models:
            payload["models"] = self.models
        fd, tmp = tempfile.mkstemp(dir=d, prefix=".support-", suffix=".json")
        with os.fdopen(fd, "w") as fh:
            json.dump(payload, fh, indent=0, sort_keys=True)
        os.chmod(tmp, 0o644)
        os.replace(tmp, p)
        return p

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SupportTable:
        p = Path(path)
        try:
            d = json.loads(p.read_text())
            conv = d.get("converter")
            return cls(
                str(d["runtime"]),
                str(d["version"]),
                dict(d["entries"]),
                None if conv is None else str(conv),
                {str(k): list(v) for k, v in dict(d.get("models") or {}).items()},
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise GraphRecError(f"{p}: not a support table ({exc})") from exc


def _probe_kind(candidate: str) -> str:
    """A candidate id without its thread count (threads do not change what runs)."""
    return "/".join(p for p in candidate.split("/") if not p.startswith("threads="))


def _route_converter(runtime: str) -> str | None:
    """The converter label a torch-route runtime's table is tied to (``None`` otherwise)."""
    if runtime not in TORCH_ROUTE_RUNTIMES:
        return None
    from graphrec.runtimes.convert import GRAPHREC_CONVERTER

    return GRAPHREC_CONVERTER


def uses_converter(model_path: str | os.PathLike[str]) -> bool:
    """Whether the torch-route runtimes take this file through graphrec's ONNX -> torch
    converter (an ONNX file without a ``.torch.json`` sidecar)."""
    from graphrec.runtimes.inputs import torch_source_for

    p = Path(model_path)
    if p.suffix.lower() != ".onnx":
        return False
    try:
        return torch_source_for(p) is None
    except GraphRecError:
        return False


def tables_for(
    tables: Mapping[str, Sequence[SupportTable]],
    runtime: str,
    version: str | None,
    *,
    converted: bool,
) -> list[SupportTable]:
    """The tables that speak for ``runtime`` (at ``version``; any when ``None``) on a model.

    A torch-route runtime's tables describe graphrec's converter route: they count only
    for a model that takes it (``converted``) and only for the converter they were probed
    with.
    """
    out = [t for t in tables.get(runtime, []) if version is None or t.version == version]
    if runtime in TORCH_ROUTE_RUNTIMES:
        if not converted:
            return []
        conv = _route_converter(runtime)
        out = [t for t in out if t.converter == conv]
    return out


#: Inputs the converter reads as Python integers while it builds each call (shapes, axes,
#: bounds): a value computed at run time there fails the conversion on every torch-route
#: runtime ("a shape/axes input is computed at run time", "Range with run-time bounds").
_STATIC_INPUTS: dict[str, tuple[int, ...]] = {
    "Reshape": (1,),
    "Unsqueeze": (1,),
    "Squeeze": (1,),
    "Slice": (1, 2, 3, 4),
    "Expand": (1,),
    "Tile": (1,),
    "ConstantOfShape": (0,),
    "Range": (0, 1, 2),
    "Split": (1,),
    "Pad": (1, 3),
    "ReduceMean": (1,),
    "ReduceSum": (1,),
    "ReduceMax": (1,),
    "ReduceMin": (1,),
    "ReduceProd": (1,),
    "ReduceL2": (1,),
    "Resize": (3,),
}
#: Inputs the converter turns into Python numbers with NumPy: in eager mode a run-time
#: tensor works, under ``torch.export`` (LiteRT, ExecuTorch) it is a fake tensor and
#: ``.numpy()`` fails.
_EXPORT_STATIC_INPUTS: dict[str, tuple[int, ...]] = {
    "Resize": (1, 2),
    "Upsample": (1,),
    "Pad": (2,),
}
#: The converter's parameter inputs that stay NumPy even when they are float
#: initializers (see ``graphrec.runtimes.convert``).
_PARAM_INPUTS = frozenset({("Resize", 1), ("Resize", 2), ("Upsample", 1)})
#: Probe kinds of the torch route that go through ``torch.export``.
_EXPORT_ROUTE = ("litert/", "executorch/")


def route_rules(model_path: str | os.PathLike[str], spec: Any = None) -> dict[str, str]:
    """What stops the torch route (graphrec's converter, then torch / torch.export) on a
    bare ONNX file, by probe kind (``torch/eager/fp32``, ``litert/xnnpack/fp32``, ...).

    Two rules, read from the graph without running it:

    * an operator the converter has no rule for (every torch-route kind);
    * a value the converter must know while it builds the call (a shape, axes, bounds,
      Resize scales) that is computed at run time from a model input: the converter keeps
      values it can fold (constants, ``Shape`` of anything, arithmetic on them) as NumPy;
      anything else is a tensor. Where it needs a Python integer, every kind fails; where
      it converts with NumPy (Resize scales, Pad value), eager torch and a TorchScript
      trace run, ``torch.export`` does not.

    Returns:
        ``{probe kind: reason}`` for the kinds that cannot run (empty: nothing known).
    """
    import onnx

    from graphrec.runtimes.convert import GRAPHREC_CONVERTER, torch_route_blocker

    path = Path(model_path)
    kinds = [_probe_kind(c) for c in PROBE_CANDIDATES if c.split("/", 1)[0] in TORCH_ROUTE_RUNTIMES]
    missing = torch_route_blocker(path)
    if missing:
        return {k: f"cannot run: {missing}" for k in kinds}
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception:
        return {}
    g = proto.graph
    params = {
        name
        for n in g.node
        for k, name in enumerate(n.input)
        if name and (n.op_type, k) in _PARAM_INPUTS
    }
    static: set[str] = set()
    for t in g.initializer:
        floating = t.data_type in _FLOAT_ELEMS
        if not floating or len(t.dims) == 0 or t.name in params:
            static.add(t.name)
    inputs = {i.name for i in g.input} - {t.name for t in g.initializer}
    static -= inputs
    everywhere: str | None = None
    export_only: str | None = None
    for node in g.node:
        op = node.op_type
        ins = list(node.input)
        for k in _STATIC_INPUTS.get(op, ()):
            if everywhere is None and k < len(ins) and ins[k] and ins[k] not in static:
                everywhere = (
                    f"cannot run: {op} input {k} ({ins[k]!r}) is computed at run time; "
                    f"{GRAPHREC_CONVERTER} needs it as a constant (data-dependent shape)"
                )
        for k in _EXPORT_STATIC_INPUTS.get(op, ()):
            if export_only is None and k < len(ins) and ins[k] and ins[k] not in static:
                export_only = (
                    f"cannot run: {op} input {k} ({ins[k]!r}) is computed at run time; "
                    f"torch.export cannot read it as a number (data-dependent value)"
                )
        if op in ("Constant", "Shape", "Size") or (
            op not in _NONDETERMINISTIC
            and not any(
                a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
                for a in node.attribute
            )
            and all(not i or i in static for i in ins)
        ):
            static.update(o for o in node.output if o)
    out: dict[str, str] = {}
    for kind in kinds:
        if everywhere:
            out[kind] = everywhere
        elif export_only and kind.startswith(_EXPORT_ROUTE):
            out[kind] = export_only
    return out


def route_check(model_path: str | os.PathLike[str], spec: Any = None) -> tuple[str, str]:
    """The first step of the torch route on a whole model, run here: graphrec's converter
    builds the module, which runs once on the harness's inputs and is compared with
    onnxruntime (what LiteRT, ExecuTorch and torch do before they convert further).

    Returns:
        ``(status, error)``: ``ok``, ``convert_failed`` (no rule, an attribute it cannot
        take, a run-time failure) or ``wrong_output`` (outputs outside the fp32 limits).
    """
    from graphrec.runtimes.convert import (
        ConversionError,
        ConversionMismatchError,
        check_conversion,
        onnx_torch_module,
    )
    from graphrec.runtimes.inputs import model_spec

    path = Path(model_path)
    try:
        spec = spec if spec is not None else model_spec(path)
        module = onnx_torch_module(str(path))
        check_conversion(module, spec)
    except ConversionMismatchError as exc:
        return "wrong_output", str(exc)
    except ConversionError as exc:
        return "convert_failed", str(exc)
    except Exception as exc:  # the module fails in a way the converter did not type
        return "convert_failed", f"{type(exc).__name__}: {exc}"
    return "ok", ""


def user_dir() -> Path:
    """Where ``--probe`` keeps this machine's tables (``$GRAPHREC_CACHE``/support)."""
    base = os.environ.get("GRAPHREC_CACHE") or str(Path.home() / ".cache" / "graphrec")
    return Path(base) / "support"


def load_tables(folders: Sequence[Path] | None = None) -> dict[str, list[SupportTable]]:
    """Every support table in ``folders`` (default: shipped + user cache), by runtime.

    A file that does not parse is skipped (it is reported by ``graphrec runtimes probe``).
    """
    out: dict[str, list[SupportTable]] = {}
    for folder in folders if folders is not None else (PACKAGED_DIR, user_dir()):
        if not folder.is_dir():
            continue
        for f in sorted(folder.glob("*.json")):
            try:
                t = SupportTable.load(f)
            except GraphRecError:
                continue
            out.setdefault(t.runtime, []).append(t)
    return out


def probe_models(
    models: Sequence[str | os.PathLike[str]],
    *,
    candidates: Sequence[str] = PROBE_CANDIDATES,
    out_dir: str | os.PathLike[str] | None = None,
    work_dir: str | os.PathLike[str] | None = None,
    known: Mapping[str, list[SupportTable]] | None = None,
    timeout_s: float = 60.0,
    on_model: Any = None,
) -> dict[str, SupportTable]:
    """Probe every new operator signature of ``models`` on ``candidates``; save the tables.

    Signatures already in ``known`` (default: :func:`load_tables`) for a candidate's
    runtime version are not probed again. Each single-operator model runs through the
    real harness (isolated worker, output check against onnxruntime) with a short timing
    phase: only the status matters.

    Args:
        models: ONNX files (or folders of them).
        candidates: Candidate ids to probe (one per way of preparing a model).
        out_dir: Where tables are saved (default: :func:`user_dir`).
        work_dir: Where single-operator models and the probe store go (default: temp).
        known: Existing tables.
        timeout_s: Limit per probe.
        on_model: Called with ``(model path, number of new signatures, error or None)``.

    Returns:
        The updated table of each probed runtime.
    """
    from graphrec.bench.harness import run_campaign
    from graphrec.bench.protocol import MeasureConfig
    from graphrec.bench.store import ResultStore
    from graphrec.runtimes.base import Candidate
    from graphrec.runtimes.registry import available_adapters, get_adapter

    files: list[Path] = []
    for m in models:
        p = Path(m)
        files.extend(sorted(p.rglob("*.onnx")) if p.is_dir() else [p])
    installed = {a.name for a in available_adapters()}
    cands = [c for c in candidates if Candidate.parse(c).runtime in installed]
    versions = {rt: get_adapter(rt).version() for rt in {Candidate.parse(c).runtime for c in cands}}
    save_to = Path(out_dir) if out_dir is not None else user_dir()
    have = dict(known) if known is not None else load_tables([PACKAGED_DIR, user_dir(), save_to])
    tables: dict[str, SupportTable] = {}
    for rt, ver in versions.items():
        conv = _route_converter(rt)
        same = [t for t in have.get(rt, []) if t.version == ver and t.converter == conv]
        merged = SupportTable(rt, ver, converter=conv)
        for t in same:
            merged.models.update(t.models)
            for k, e in t.entries.items():
                merged.entries.setdefault(k, {"signature": e["signature"], "results": {}})
                merged.entries[k]["results"].update(e["results"])
                merged.entries[k].setdefault("source", e.get("source", ""))
        tables[rt] = merged
    done = {k for k, e in next(iter(tables.values())).entries.items()} if tables else set()
    # A signature counts as known only if every candidate has a result for it.
    done = {
        k
        for k in done
        if all(tables[Candidate.parse(c).runtime].status(c, k) is not None for c in cands)
    }
    tries: dict[str, int] = {}
    cfg = MeasureConfig(
        warmup_runs=0,
        min_runs=1,
        max_runs=3,
        min_time_s=0.0,
        max_time_s=0.05,
        target_ci=0.0,
        timeout_s=timeout_s,
    )
    with tempfile.TemporaryDirectory(prefix="graphrec-probe-") as tmp:
        work = Path(work_dir) if work_dir is not None else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        with ResultStore(work / "probe.sqlite") as store:
            for f in files:
                try:
                    singles = single_op_models(f, work / "ops", skip=done)
                except GraphRecError as exc:
                    if on_model:
                        on_model(f, 0, str(exc))
                    continue
                if on_model:
                    on_model(f, len(singles), None)
                route_tables = [t for rt, t in tables.items() if rt in TORCH_ROUTE_RUNTIMES]
                if route_tables and uses_converter(f):
                    from graphrec.runtimes.inputs import file_sha256

                    sha = file_sha256(f)
                    if any(sha not in t.models for t in route_tables):
                        st, err = route_check(f)
                        for t in route_tables:
                            t.models[sha] = [st, err[:300], f.name]
                            t.save(save_to)
                if not singles:
                    continue
                by_path = {s.path.resolve(): s for s in singles}
                run_campaign(
                    [s.path for s in singles],
                    store=store,
                    runtimes=sorted({Candidate.parse(c).runtime for c in cands}),
                    patterns=cands,
                    threads=(1,),
                    config=cfg,
                    cache_dir=work / "cache",
                    resume=True,
                )
                # Every stored row of these single-operator models, also those of an
                # interrupted earlier call (resume skips them, so they are not returned).
                stems = {s.path.stem for s in singles}
                rows = [r for r in store.iter_rows() if str(r.get("model_name")) in stems]
                for row in rows:
                    s = _row_single(row, by_path)
                    if s is None:
                        continue
                    cid = str(row.get("candidate_id"))
                    if cid not in cands or row.get("status") == "unsupported":
                        # "unsupported" is an adapter rule about the cut model's inputs
                        # (ncnn's batch), checked on the whole model instead.
                        continue
                    rt = Candidate.parse(cid).runtime
                    if rt in tables:
                        tables[rt].add(
                            s.signature,
                            cid,
                            str(row.get("status")),
                            str(row.get("error") or ""),
                            s.source,
                        )
                for s in singles:
                    # Known once every candidate has a result (an adapter rule such as
                    # ncnn's batch gives none), or after three tries.
                    k = s.signature.key
                    tries[k] = tries.get(k, 0) + 1
                    if tries[k] >= 3 or all(
                        tables[Candidate.parse(c).runtime].status(c, k) is not None for c in cands
                    ):
                        done.add(k)
                for t in tables.values():
                    t.save(save_to)
    return tables


def reconcile(
    tables: Mapping[str, SupportTable],
    stores: Sequence[str | os.PathLike[str]],
    *,
    model_root: str | os.PathLike[str] | None = None,
) -> dict[str, int]:
    """Mark the failing signatures that ran inside a whole model measured ``ok``.

    For every model of the results stores, every (candidate kind) it ran correctly on
    (some round ``ok``, on the table's runtime version) counts as evidence that each of
    its operator signatures runs there; those signatures get ``in_context`` counts and
    stop blocking (:meth:`SupportTable.ran_in_context`).

    Returns:
        Per runtime, how many failing (signature, kind) results were overridden.
    """
    from graphrec.bench.store import ResultStore

    ok: dict[str, set[tuple[str, str, str]]] = {}
    paths: dict[str, Path] = {}
    for s in stores:
        with ResultStore(Path(s), readonly=True) as store:
            for sha, info in store.models().items():
                p = Path(str(info.get("path") or ""))
                if not p.is_file() and model_root is not None:
                    p = Path(model_root) / p.name
                if p.is_file():
                    paths[sha] = p
            for r in store.iter_rows():
                if r["status"] == "ok":
                    ok.setdefault(str(r["model_sha256"]), set()).add(
                        (
                            str(r["runtime"]),
                            str(r["runtime_version"]),
                            _probe_kind(str(r["candidate_id"])),
                        )
                    )
    overridden: dict[str, int] = {}
    for sha, runs in ok.items():
        path = paths.get(sha)
        if path is None:
            continue
        try:
            sigs = op_signatures(path)
        except GraphRecError:
            continue
        for rt, ver, kind in runs:
            t = tables.get(rt)
            if t is None or t.version != ver:
                continue
            for sig in sigs.values():
                e = t.entries.get(sig.key)
                if e is None:
                    continue
                ctx = e.setdefault("in_context", {})
                if not ctx.get(kind):
                    r = e["results"].get(kind)
                    if r is not None and r[0] in FAILING:
                        overridden[rt] = overridden.get(rt, 0) + 1
                ctx[kind] = int(ctx.get(kind, 0)) + 1
    return overridden


def _row_single(row: Mapping[str, Any], by_path: Mapping[Path, SingleOp]) -> SingleOp | None:
    name = str(row.get("model_name") or "")
    for p, s in by_path.items():
        if p.stem == name:
            return s
    return None


@dataclass
class Blocker:
    """Why a candidate cannot run a model (or run it correctly).

    Attributes:
        candidate_id: The candidate.
        reason: A readable sentence.
        kind: ``"rule"`` (the adapter's own check, or a torch-route rule),
            ``"operator"`` (a single-operator probe failed) or ``"probe"`` (the whole
            model's torch-route check failed, :func:`route_check`).
        operator: The blocking operator's description (``None`` for rules).
        status: The probe's status (``None`` for rules).
    """

    candidate_id: str
    reason: str
    kind: str
    operator: str | None = None
    status: str | None = None


def blockers(
    model_path: str | os.PathLike[str],
    candidate_ids: Sequence[str],
    *,
    tables: Mapping[str, list[SupportTable]] | None = None,
    spec: Any = None,
    versions: Mapping[str, str] | None = None,
    torch_route: bool = True,
) -> dict[str, Blocker | None]:
    """Per candidate, what stops it from running the model, or ``None``.

    Uses the adapter's rules when its runtime is installed here, the torch-route rules
    (:func:`route_rules`) for LiteRT, ExecuTorch and torch on a bare ONNX file, and the
    support tables of the installed version (or of ``versions[runtime]``; without a
    version every table of the runtime counts, newest file last). ``torch_route=False``
    leaves the torch-route rules out (what graphrec did before it had them; for
    comparisons).

    Raises:
        ModelLoadError: The model cannot be read.
    """
    from graphrec.runtimes.base import Candidate
    from graphrec.runtimes.inputs import model_spec
    from graphrec.runtimes.registry import get_adapter

    path = Path(model_path)
    spec = spec if spec is not None else model_spec(path)
    sigs = op_signatures(path, spec=spec)
    tabs = tables if tables is not None else load_tables()
    out: dict[str, Blocker | None] = {}
    adapters: dict[str, Any] = {}
    converted: bool | None = None  # found out at the first torch-route candidate
    route: dict[str, str] = {}
    for cid in candidate_ids:
        cand = Candidate.parse(cid)
        rt = cand.runtime
        if rt not in adapters:
            try:
                adapters[rt] = get_adapter(rt)
            except GraphRecError:
                adapters[rt] = None
        ad = adapters[rt]
        reason = None
        if ad is not None:
            try:
                reason = ad.check(spec, cand)
            except GraphRecError as exc:
                reason = str(exc)
        if reason:
            out[cid] = Blocker(cid, reason, "rule")
            continue
        ver = (versions or {}).get(rt)
        if ver is None and ad is not None:
            try:
                ver = ad.version()
            except Exception:
                ver = None
        if rt in TORCH_ROUTE_RUNTIMES and torch_route:
            if converted is None:
                converted = uses_converter(path)
                route = route_rules(path, spec) if converted else {}
            why = route.get(_probe_kind(cid))
            if why:
                out[cid] = Blocker(cid, why, "rule")
                continue
        if converted is None and rt in TORCH_ROUTE_RUNTIMES:
            converted = uses_converter(path)
        cands_t = tables_for(tabs, rt, ver, converted=bool(converted))
        found: Blocker | None = None
        for t in cands_t:
            checked = t.models.get(spec.sha256) if torch_route else None
            if checked and checked[0] in FAILING:
                first = checked[1].strip().splitlines()[0][:200] if checked[1].strip() else ""
                found = Blocker(
                    cid,
                    f"cannot run: the converted module {checked[0]} on this machine"
                    + (f" ({first})" if first else ""),
                    "probe",
                    None,
                    checked[0],
                )
                break
        if found:
            out[cid] = found
            continue
        kind = _probe_kind(cid)
        for sig in sigs.values():
            for t in cands_t:
                st = t.kind_status(kind, sig.key)
                if st is not None and st[0] in FAILING and not t.ran_in_context(cid, sig.key):
                    first = st[1].strip().splitlines()[0][:160] if st[1].strip() else ""
                    found = Blocker(
                        cid,
                        f"cannot run: {sig.describe()} on {rt} {t.version}: {st[0]}"
                        + (f" ({first})" if first else ""),
                        "operator",
                        sig.describe(),
                        st[0],
                    )
                    break
            if found:
                break
        out[cid] = found
    return out


def _now() -> float:  # pragma: no cover - tiny helper for progress
    return time.perf_counter()
