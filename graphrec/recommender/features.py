"""Model and device features for the learned models.

A *sample* is one (model, device) pair. Its inputs are the model's heterogeneous graph
(:meth:`graphrec.graph.OperatorGraph.to_hetero_data`), the model-level numeric features
(:func:`model_feature_names`: :data:`graphrec.graph.GRAPH_FEATURE_NAMES` and the op mix
of :func:`op_mix_features`, ``log1p``-scaled) and the device features
(:meth:`graphrec.device.DeviceProfile.to_features`).

Example:
    >>> from graphrec.recommender.features import model_inputs
    >>> mi = model_inputs("model.onnx")  # doctest: +SKIP
    >>> mi.graph_features.shape  # doctest: +SKIP
    (22,)
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from graphrec.device import DeviceProfile
    from graphrec.graph.hetero import HeteroGraph

__all__ = [
    "OP_CATEGORIES",
    "ModelInputs",
    "device_vector",
    "model_feature_names",
    "model_inputs",
    "op_mix_features",
]

#: Operator categories of the op-mix features (op types without their domain). Runtimes
#: differ most by category: one has fast convolutions and slow attention, another the
#: reverse, and tiny models are dominated by per-operator overhead (the counts).
OP_CATEGORIES: dict[str, frozenset[str]] = {
    "conv": frozenset({"Conv", "ConvTranspose", "QLinearConv", "ConvInteger", "FusedConv"}),
    "matmul": frozenset(
        {"MatMul", "Gemm", "MatMulInteger", "QLinearMatMul", "QGemm", "FusedMatMul", "Einsum"}
    ),
    "attention": frozenset({"Attention", "MultiHeadAttention", "Softmax", "LogSoftmax"}),
    "rnn": frozenset({"LSTM", "GRU", "RNN", "Loop", "Scan"}),
    "norm": frozenset(
        {
            "BatchNormalization",
            "LayerNormalization",
            "InstanceNormalization",
            "GroupNormalization",
            "RMSNormalization",
            "SkipLayerNormalization",
            "LpNormalization",
        }
    ),
    "pool": frozenset(
        {
            "MaxPool",
            "AveragePool",
            "GlobalAveragePool",
            "GlobalMaxPool",
            "ReduceMean",
            "ReduceSum",
            "ReduceMax",
            "ReduceMin",
            "ReduceProd",
            "ReduceL2",
        }
    ),
    "resize": frozenset({"Resize", "Upsample", "GridSample", "DepthToSpace", "SpaceToDepth"}),
    "movement": frozenset(
        {
            "Reshape",
            "Transpose",
            "Concat",
            "Split",
            "Slice",
            "Gather",
            "GatherElements",
            "ScatterND",
            "Squeeze",
            "Unsqueeze",
            "Flatten",
            "Expand",
            "Tile",
            "Pad",
            "Shape",
            "Cast",
            "Identity",
        }
    ),
    "quant": frozenset(
        {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "QLinearAdd", "QLinearMul"}
    ),
}

_CATEGORY_OF: dict[str, str] = {op: cat for cat, ops in OP_CATEGORIES.items() for op in ops}
_MIX_STATS = ("count", "flops", "bytes")
_MIX_CATEGORIES = (*OP_CATEGORIES, "elementwise")


def _op_mix_names() -> tuple[str, ...]:
    names = [f"{cat}_{stat}" for cat in _MIX_CATEGORIES for stat in _MIX_STATS]
    return (*names, "conv_intensity", "matmul_intensity")


def model_feature_names() -> tuple[str, ...]:
    """Names of :attr:`ModelInputs.graph_features`, in order: the kernel's graph features
    (:data:`graphrec.graph.GRAPH_FEATURE_NAMES`), then the op mix (:func:`op_mix_features`).
    """
    from graphrec.graph import GRAPH_FEATURE_NAMES

    return (*GRAPH_FEATURE_NAMES, *_op_mix_names())


def op_mix_features(op_types: Sequence[str], node_features: np.ndarray) -> np.ndarray:
    """Per operator category: node count, FLOPs and bytes moved, plus the arithmetic
    intensity (FLOPs per byte) of the convolutions and of the matrix products.

    Args:
        op_types: Operator type per node (a domain prefix ``"dom::Op"`` is ignored).
        node_features: ``[num_nodes, len(NODE_FEATURE_NAMES)]`` from
            :attr:`graphrec.graph.OperatorGraph.node_features`.

    Returns:
        Raw (not log-scaled) values in the order of the op-mix part of
        :func:`model_feature_names`.
    """
    cats = list(_MIX_CATEGORIES)
    idx = np.array(
        [cats.index(_CATEGORY_OF.get(o.rsplit("::", 1)[-1], "elementwise")) for o in op_types],
        dtype=np.int64,
    )
    nf = np.asarray(node_features, dtype=np.float64).reshape(len(idx), -1)
    flops = nf[:, 0] if len(idx) else np.zeros(0)
    traffic = nf[:, 4] + nf[:, 5] if len(idx) else np.zeros(0)
    k = len(cats)
    count = np.bincount(idx, minlength=k).astype(np.float64)
    fl = np.bincount(idx, weights=flops, minlength=k)
    by = np.bincount(idx, weights=traffic, minlength=k)
    out = np.column_stack([count, fl, by]).ravel()
    conv, mm = cats.index("conv"), cats.index("matmul")
    intensity = [fl[c] / by[c] if by[c] > 0 else 0.0 for c in (conv, mm)]
    return np.concatenate([out, intensity])


@dataclass
class ModelInputs:
    """What the learned models see of one ONNX model.

    Attributes:
        path: The ONNX file.
        graph_features: ``log1p`` of the model-level features
            (:func:`model_feature_names`: the kernel's graph features, then the op mix),
            float64 ``[F]``.
        hetero: The heterogeneous graph, as a :class:`~graphrec.graph.hetero.HeteroGraph`
            (the tensors of ``HeteroData`` without importing PyG; ``.to_hetero_data()``
            gives the PyG object).
        input_shapes: The concrete input shapes the features were computed with.
        flops: Total FLOPs (raw, for the FLOPs-rule baseline).
    """

    path: Path
    graph_features: np.ndarray
    hetero: HeteroGraph
    input_shapes: dict[str, list[int]]
    flops: float


def model_inputs(
    path: str | os.PathLike[str],
    *,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    batch_size: int = 1,
    dim_values: Mapping[str, int] | None = None,
) -> ModelInputs:
    """Load an ONNX model with the C++ kernel and return its learned-model inputs.

    Dynamic dimensions are resolved by the same rule as ``graphrec bench``
    (:func:`graphrec.graph.shapes.resolve_input_shapes`).

    Raises:
        ModelLoadError: The file cannot be read as ONNX (the subclass says why).
        ShapeSpecError: ``input_shapes`` does not fit the model.
    """
    import graphrec.graph
    from graphrec.graph.hetero import to_hetero_graph

    g = graphrec.graph.load(
        path, input_shapes=input_shapes, batch_size=batch_size, dim_values=dim_values
    )
    raw = np.concatenate(
        [g.graph_features().astype(np.float64), op_mix_features(g.op_types, g.node_features)]
    )
    feats = np.log1p(np.maximum(raw, 0.0))
    return ModelInputs(
        path=Path(path),
        graph_features=feats,
        hetero=to_hetero_graph(g),
        input_shapes={k: list(v) for k, v in g.input_shapes.items()},
        flops=float(g.total_flops),
    )


def device_vector(profile: DeviceProfile | Mapping[str, Any]) -> np.ndarray:
    """Device features in :meth:`DeviceProfile.feature_names` order (float64)."""
    from graphrec.device import DeviceProfile

    prof = profile if isinstance(profile, DeviceProfile) else DeviceProfile.from_dict(dict(profile))
    feats = prof.to_features()
    return np.array([feats[n] for n in DeviceProfile.feature_names()], dtype=np.float64)
