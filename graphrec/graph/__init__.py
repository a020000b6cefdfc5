"""ONNX → :class:`OperatorGraph` → PyTorch Geometric ``HeteroData``.

The heavy lifting (protobuf decoding, shape propagation, per-operator costs, graph
statistics) happens in the C++ kernel ``graphrec._core``; this package wraps its
arrays.

Example:
    >>> import graphrec.graph
    >>> g = graphrec.graph.load("model.onnx", batch_size=1)  # doctest: +SKIP
    >>> g.total_flops, g.total_params, g.depth  # doctest: +SKIP
    >>> data = g.to_hetero_data()  # doctest: +SKIP
"""

from graphrec.graph.operator_graph import (
    GRAPH_FEATURE_NAMES,
    NODE_FEATURE_NAMES,
    OperatorGraph,
    TensorSpec,
    describe,
    load,
    load_bytes,
)
from graphrec.graph.shapes import resolve_input_shapes

__all__ = [
    "GRAPH_FEATURE_NAMES",
    "NODE_FEATURE_NAMES",
    "OperatorGraph",
    "TensorSpec",
    "describe",
    "load",
    "load_bytes",
    "resolve_input_shapes",
]
