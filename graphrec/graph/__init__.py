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

from __future__ import annotations

from typing import TYPE_CHECKING

from graphrec._lazy import lazy_attributes

if TYPE_CHECKING:
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


# Imported on first access (PEP 562), so importing the package (or its _cli) stays cheap.
__getattr__ = lazy_attributes(
    __name__,
    {
        "GRAPH_FEATURE_NAMES": "graphrec.graph.operator_graph",
        "NODE_FEATURE_NAMES": "graphrec.graph.operator_graph",
        "OperatorGraph": "graphrec.graph.operator_graph",
        "TensorSpec": "graphrec.graph.operator_graph",
        "describe": "graphrec.graph.operator_graph",
        "load": "graphrec.graph.operator_graph",
        "load_bytes": "graphrec.graph.operator_graph",
        "resolve_input_shapes": "graphrec.graph.shapes",
    },
)
