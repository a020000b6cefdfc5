"""``OperatorGraph``: an ONNX model as operators, tensors and per-operator costs."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from graphrec import _core
from graphrec.errors import (
    ExternalDataError,
    GraphStructureError,
    ModelFormatError,
    ModelLimitError,
    ModelLoadError,
    ShapeSpecError,
)
from graphrec.graph.columns import GRAPH_FEATURE_NAMES, NODE_FEATURE_NAMES
from graphrec.graph.shapes import DeclaredDim, resolve_input_shapes
from graphrec.graph.vocab import OP_TYPE_TO_ID

if TYPE_CHECKING:
    from torch_geometric.data import HeteroData

__all__ = [
    "GRAPH_FEATURE_NAMES",
    "NODE_FEATURE_NAMES",
    "OperatorGraph",
    "TensorSpec",
    "describe",
    "load",
    "load_bytes",
]


_ERRORS: dict[type[BaseException], type[ModelLoadError]] = {
    _core.FormatError: ModelFormatError,
    _core.LimitError: ModelLimitError,
    _core.ExternalDataError: ExternalDataError,
    _core.StructureError: GraphStructureError,
    _core.IoError: ModelLoadError,
}


@dataclass(frozen=True)
class TensorSpec:
    """A graph input or output.

    Attributes:
        name: Tensor name.
        dtype: Element type (``"float32"``, ``"int64"``, ...).
        declared_shape: Dims as declared in the model (ints, symbolic names, ``None``);
            ``None`` when the model declares no shape.
        shape: Dims used for the analysis (``-1`` where unknown).
    """

    name: str
    dtype: str
    declared_shape: tuple[DeclaredDim, ...] | None
    shape: tuple[int, ...] | None


def _translate(exc: BaseException, path: str | Path | None) -> BaseException:
    for core_type, ours in _ERRORS.items():
        if isinstance(exc, core_type):
            return ours(path, str(exc))
    if isinstance(exc, _core.ArgumentError):
        return ShapeSpecError(f"{path}: {exc}")
    return ModelLoadError(path, str(exc))


def describe(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a model's declared inputs, outputs and opsets without analyzing it.

    Returns:
        ``{"inputs": [(name, dtype, dims|None)], "outputs": [...], "opset_imports": {...},
        "ir_version": int, "producer_name": str}``.

    Raises:
        ModelLoadError: (or a subclass) naming the file and the reason.
    """
    p = Path(path)
    if not p.exists():
        raise ModelLoadError(p, "no such file")
    if p.is_dir():
        raise ModelLoadError(p, "is a directory, not an ONNX file")
    try:
        return dict(_core.describe_file(str(p)))
    except _core.KernelError as exc:
        raise _translate(exc, p) from None


def _is_tflite(p: Path) -> bool:
    """Whether ``p`` is a TFLite FlatBuffer (identifier ``TFL3`` at byte 4)."""
    try:
        with p.open("rb") as fh:
            head = fh.read(8)
    except OSError:
        return False
    return len(head) == 8 and head[4:8] == b"TFL3"


def _declared(info: Mapping[str, Any]) -> dict[str, Sequence[DeclaredDim] | None]:
    return {name: dims for name, _dtype, dims in info["inputs"]}


def load(
    path: str | os.PathLike[str],
    *,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    batch_size: int = 1,
    dim_values: Mapping[str, int] | None = None,
) -> OperatorGraph:
    """Parse an ONNX (or TFLite) model with the C++ kernel and compute per-operator features.

    A ``.tflite`` file (or any file with the TFLite identifier) is read by
    :func:`graphrec.graph.tflite.load_tflite` into the same graph.

    The file is memory-mapped; weight payloads are neither copied nor read. Dynamic
    input dimensions are resolved by :func:`graphrec.graph.shapes.resolve_input_shapes`
    (the same rule ``graphrec bench`` uses).

    Args:
        path: The ``.onnx`` file; external data files are looked up beside it.
        input_shapes: Explicit input shapes by name, e.g. ``{"x": [1, 3, 320, 320]}``.
        batch_size: Size of dynamic batch dimensions.
        dim_values: Sizes of symbolic dimensions by name, e.g. ``{"seq": 64}``.

    Returns:
        The analyzed :class:`OperatorGraph`.

    Raises:
        ModelFormatError: Not ONNX, truncated or corrupt.
        ModelLimitError: Declared sizes beyond the safety limits.
        ExternalDataError: External tensor data missing, outside the folder, or short.
        GraphStructureError: A cycle, a tensor produced twice, a dangling reference.
        ShapeSpecError: ``input_shapes`` names no input or has the wrong rank.

    Example:
        >>> g = graphrec.graph.load("model.onnx", batch_size=1)  # doctest: +SKIP
        >>> g.total_flops, g.op_type_histogram["Conv"]  # doctest: +SKIP
    """
    p = Path(path)
    if p.suffix.lower() == ".tflite" or _is_tflite(p):
        from graphrec.graph.tflite import load_tflite

        return load_tflite(
            p, input_shapes=input_shapes, batch_size=batch_size, dim_values=dim_values
        )
    info = describe(p)
    shapes = resolve_input_shapes(
        _declared(info), input_shapes, batch_size=batch_size, dim_values=dim_values
    )
    try:
        raw = _core.analyze_file(
            str(p), input_shapes=shapes, batch_size=batch_size, dim_values=dict(dim_values or {})
        )
    except _core.KernelError as exc:
        raise _translate(exc, p) from None
    return OperatorGraph(raw, path=p, input_shapes=shapes)


def load_bytes(
    data: bytes | bytearray | memoryview,
    *,
    name: str = "<bytes>",
    base_dir: str | os.PathLike[str] | None = None,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    batch_size: int = 1,
    dim_values: Mapping[str, int] | None = None,
) -> OperatorGraph:
    """Like :func:`load` for a serialized model held in memory.

    Args:
        data: The serialized ``ModelProto``.
        name: How errors and summaries name the model.
        base_dir: Folder for external data (``None``: external data is an error).
        input_shapes: See :func:`load`.
        batch_size: See :func:`load`.
        dim_values: See :func:`load`.
    """
    base = "" if base_dir is None else str(base_dir)
    try:
        info = dict(_core.describe_bytes(data, base))
    except _core.KernelError as exc:
        raise _translate(exc, name) from None
    shapes = resolve_input_shapes(
        _declared(info), input_shapes, batch_size=batch_size, dim_values=dim_values
    )
    try:
        raw = _core.analyze_bytes(
            data,
            base,
            input_shapes=shapes,
            batch_size=batch_size,
            dim_values=dict(dim_values or {}),
        )
    except _core.KernelError as exc:
        raise _translate(exc, name) from None
    return OperatorGraph(raw, path=Path(name), input_shapes=shapes)


class OperatorGraph:
    """An analyzed ONNX model: operators (in topological order), tensors and costs.

    Per-operator arrays are aligned with :attr:`op_types`; per-tensor arrays with
    :attr:`tensor_names`. FLOPs count a multiply-add as two operations; MACs count the
    multiply-accumulates of Conv/Gemm/MatMul/RNN/attention operators. Costs of
    ``If``/``Loop``/``Scan`` bodies and model-local functions are folded into the
    operator that runs them (``Loop``/``Scan`` bodies times their trip count when it is
    known). Parameters are the elements of initializers and ``Constant`` outputs,
    except int64/bool/string tensors (shapes and indices).

    Do not construct it directly: use :func:`load` or :func:`load_bytes`.
    """

    #: The file format it was read from: ``"onnx"``, or ``"tflite"``
    #: (:class:`graphrec.graph.tflite.TfliteOperatorGraph`).
    source_format: str = "onnx"

    def __init__(
        self, raw: Mapping[str, Any], *, path: Path, input_shapes: Mapping[str, list[int]]
    ):
        self._raw = raw
        self.path = path
        self.input_shapes: dict[str, list[int]] = {k: list(v) for k, v in input_shapes.items()}
        self.totals: dict[str, float] = dict(raw["totals"])
        self.op_type_histogram: dict[str, int] = dict(raw["op_histogram"])
        #: Bytes of weights (initializers, Constant outputs) and of activations, by dtype name.
        self.weight_bytes_by_dtype: dict[str, float] = dict(raw["weight_bytes_by_dtype"])
        self.activation_bytes_by_dtype: dict[str, float] = dict(raw["activation_bytes_by_dtype"])
        self.nested_op_type_histogram: dict[str, int] = dict(raw["nested_op_histogram"])
        self.opset_imports: dict[str, int] = dict(raw["opset_imports"])
        self.warnings: list[str] = list(raw["warnings"])
        self.unknown_ops: list[str] = list(raw["unknown_ops"])
        self.functions: list[str] = list(raw["functions"])
        self.producer: str = f"{raw['producer_name']} {raw['producer_version']}".strip()
        self.ir_version: int = int(raw["ir_version"])
        # Per-node arrays.
        self.node_names: list[str] = list(raw["node_names"])
        self.input_ptr: np.ndarray = raw["input_ptr"]
        self.input_tensor: np.ndarray = raw["input_tensor"]
        self.output_ptr: np.ndarray = raw["output_ptr"]
        self.output_tensor: np.ndarray = raw["output_tensor"]
        self.flops: np.ndarray = raw["flops"]
        self.macs: np.ndarray = raw["macs"]
        self.params: np.ndarray = raw["params"]
        self.level: np.ndarray = raw["level"]
        self.cost_exact: np.ndarray = raw["cost_exact"]
        self.unknown_op: np.ndarray = raw["unknown_op"]
        # Node-to-node data-flow edges, CSR by source node.
        self.succ_ptr: np.ndarray = raw["succ_ptr"]
        self.succ_idx: np.ndarray = raw["succ_idx"]
        # Per-tensor arrays.
        self.tensor_names: list[str] = list(raw["tensor_names"])
        self.tensor_kind: np.ndarray = raw["tensor_kind"]  # 0 activation, 1 weight, 2 graph input
        self.tensor_dtype: np.ndarray = raw["tensor_dtype"]
        self.tensor_producer: np.ndarray = raw["tensor_producer"]
        self.tensor_rank: np.ndarray = raw["tensor_rank"]
        self.tensor_numel: np.ndarray = raw["tensor_numel"]
        self.tensor_bytes: np.ndarray = raw["tensor_bytes"]
        self.shape_ptr: np.ndarray = raw["shape_ptr"]
        self.shape_dims: np.ndarray = raw["shape_dims"]
        self.tensor_is_output: np.ndarray = raw["tensor_is_output"]
        self._dtype_names: list[str] = list(raw["dtype_names"])

    # ---- operators -------------------------------------------------------------------
    @property
    def num_nodes(self) -> int:
        """Number of top-level operators."""
        return len(self.node_names)

    @cached_property
    def op_types(self) -> list[str]:
        """Operator type per node (``"Conv"``, ``"com.microsoft::Attention"``)."""
        vocab = self._raw["op_types"]
        return [vocab[i] for i in self._raw["node_op_type_id"]]

    def op_type_mask(self, op_type: str) -> np.ndarray:
        """Boolean mask of the nodes whose op type is ``op_type`` (vectorized)."""
        vocab = list(self._raw["op_types"])
        ids: np.ndarray = self._raw["node_op_type_id"]
        if op_type not in vocab:
            return np.zeros(len(ids), dtype=bool)
        mask: np.ndarray = ids == vocab.index(op_type)
        return mask

    @cached_property
    def op_type_ids(self) -> np.ndarray:
        """Ids of :attr:`op_types` in the versioned vocabulary of :mod:`graphrec.graph.vocab`."""
        local = np.array([OP_TYPE_TO_ID.get(o, 0) for o in self._raw["op_types"]], dtype=np.int64)
        ids: np.ndarray = local[self._raw["node_op_type_id"]] if len(local) else local
        return ids

    @cached_property
    def node_features(self) -> np.ndarray:
        """Per-operator features, float64 ``[num_nodes, len(NODE_FEATURE_NAMES)]``."""
        r = self._raw
        traffic = r["bytes_read"] + r["bytes_written"]
        intensity = np.divide(r["flops"], traffic, out=np.zeros_like(traffic), where=traffic > 0)
        cols = [
            r["flops"],
            r["macs"],
            r["params"],
            r["weight_bytes"],
            r["bytes_read"],
            r["bytes_written"],
            intensity,
            r["out_numel"].astype(np.float64),
            r["level"].astype(np.float64),
            r["cost_exact"].astype(np.float64),
            r["unknown_op"].astype(np.float64),
            r["subgraph_nodes"].astype(np.float64),
            np.diff(r["input_ptr"]).astype(np.float64),
            np.diff(r["output_ptr"]).astype(np.float64),
        ]
        if not self.num_nodes:
            return np.zeros((0, len(NODE_FEATURE_NAMES)))
        return np.column_stack(cols)

    # ---- totals ----------------------------------------------------------------------
    @property
    def total_flops(self) -> int:
        """FLOPs of one inference (multiply-add = 2)."""
        return round(self.totals["flops"])

    @property
    def total_macs(self) -> int:
        """Multiply-accumulates of one inference."""
        return round(self.totals["macs"])

    @property
    def total_params(self) -> int:
        """Number of parameters (see the class docstring for what counts)."""
        return round(self.totals["params"])

    @property
    def depth(self) -> int:
        """Operators on the longest path from an input to an output."""
        return int(self.totals["depth"])

    @property
    def peak_activation_bytes(self) -> int:
        """Peak bytes of live activations when running in topological order."""
        return int(self.totals["peak_activation_bytes"])

    def graph_features(self) -> np.ndarray:
        """Model-level numeric features in :data:`GRAPH_FEATURE_NAMES` order (float64)."""
        return np.array([float(self.totals.get(k, 0.0)) for k in GRAPH_FEATURE_NAMES])

    # ---- tensors ---------------------------------------------------------------------
    def tensor_dtype_name(self, index: int) -> str:
        """Element type name of tensor ``index``."""
        d = int(self.tensor_dtype[index])
        return self._dtype_names[d] if 0 <= d < len(self._dtype_names) else "undefined"

    def tensor_shape(self, index: int) -> tuple[int, ...] | None:
        """Shape of tensor ``index`` (``-1`` for unknown dims), ``None`` if the rank is unknown."""
        if self.tensor_rank[index] < 0:
            return None
        a, b = self.shape_ptr[index], self.shape_ptr[index + 1]
        return tuple(int(d) for d in self.shape_dims[a:b])

    @cached_property
    def _tensor_index(self) -> dict[str, int]:
        return {n: i for i, n in enumerate(self.tensor_names)}

    def shape_of(self, name: str) -> tuple[int, ...] | None:
        """Shape of the tensor called ``name`` (see :meth:`tensor_shape`)."""
        return self.tensor_shape(self._tensor_index[name])

    def _specs(self, ids: np.ndarray, declared: list[Any] | None) -> list[TensorSpec]:
        out = []
        for k, t in enumerate(ids):
            i = int(t)
            decl = None
            if declared is not None and k < len(declared):
                decl = tuple(declared[k])
            out.append(
                TensorSpec(
                    self.tensor_names[i], self.tensor_dtype_name(i), decl, self.tensor_shape(i)
                )
            )
        return out

    @cached_property
    def inputs(self) -> list[TensorSpec]:
        """Graph inputs (initializers excluded) with declared and resolved shapes."""
        return self._specs(self._raw["graph_inputs"], list(self._raw["declared_input_dims"]))

    @cached_property
    def outputs(self) -> list[TensorSpec]:
        """Graph outputs with their inferred shapes."""
        return self._specs(self._raw["graph_outputs"], None)

    # ---- exports ---------------------------------------------------------------------
    def summary(self, top_ops: int = 12) -> dict[str, Any]:
        """A JSON-able summary: totals, histogram, inputs/outputs, heaviest operators."""
        order = np.argsort(-self.flops, kind="stable")[:top_ops]
        types = self.op_types
        heaviest = [
            {
                "name": self.node_names[i],
                "op_type": types[i],
                "flops": float(self.flops[i]),
                "params": float(self.params[i]),
                "output_shapes": [
                    self.tensor_shape(int(t))
                    for t in self.output_tensor[self.output_ptr[i] : self.output_ptr[i + 1]]
                ],
            }
            for i in map(int, order)
            if self.flops[i] > 0
        ]
        return {
            "path": str(self.path),
            "producer": self.producer,
            "ir_version": self.ir_version,
            "opset_imports": self.opset_imports,
            "inputs": [_spec_dict(s) for s in self.inputs],
            "outputs": [_spec_dict(s) for s in self.outputs],
            "totals": {k: _num(v) for k, v in sorted(self.totals.items())},
            "weight_bytes_by_dtype": {k: _num(v) for k, v in self.weight_bytes_by_dtype.items()},
            "activation_bytes_by_dtype": {
                k: _num(v) for k, v in self.activation_bytes_by_dtype.items()
            },
            "op_type_histogram": dict(
                sorted(self.op_type_histogram.items(), key=lambda kv: -kv[1])
            ),
            "nested_op_type_histogram": self.nested_op_type_histogram,
            "functions": self.functions,
            "unknown_ops": self.unknown_ops,
            "warnings": self.warnings,
            "heaviest_ops": heaviest,
        }

    def to_hetero_data(self) -> HeteroData:
        """Convert to a PyTorch Geometric ``HeteroData`` (layout: :mod:`graphrec.graph.hetero`)."""
        from graphrec.graph.hetero import to_hetero_data

        return to_hetero_data(self)

    def __repr__(self) -> str:
        return (
            f"OperatorGraph({str(self.path)!r}, nodes={self.num_nodes}, "
            f"flops={self.total_flops:.3e}, params={self.total_params})"
        )


def _spec_dict(s: TensorSpec) -> dict[str, Any]:
    return {
        "name": s.name,
        "dtype": s.dtype,
        "declared_shape": None if s.declared_shape is None else list(s.declared_shape),
        "shape": None if s.shape is None else list(s.shape),
    }


def _num(v: float) -> float | int:
    return int(v) if math.isfinite(v) and float(v).is_integer() else float(v)
