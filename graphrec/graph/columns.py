"""Column names of the kernel's per-operator and per-model feature arrays.

Kept apart from :mod:`graphrec.graph.operator_graph` and :mod:`graphrec.graph.hetero` so
that both read the same names without importing each other.
"""

from __future__ import annotations

__all__ = ["GRAPH_FEATURE_NAMES", "NODE_FEATURE_NAMES"]

#: Columns of :attr:`graphrec.graph.OperatorGraph.node_features`, in order.
NODE_FEATURE_NAMES: tuple[str, ...] = (
    "flops",
    "macs",
    "params",
    "weight_bytes",
    "bytes_read",
    "bytes_written",
    "arithmetic_intensity",
    "out_numel",
    "level",
    "cost_exact",
    "unknown_op",
    "subgraph_nodes",
    "num_inputs",
    "num_outputs",
)

#: Keys of :meth:`graphrec.graph.OperatorGraph.graph_features` (numeric model-level features), in order.
GRAPH_FEATURE_NAMES: tuple[str, ...] = (
    "flops",
    "macs",
    "params",
    "param_bytes",
    "activation_bytes",
    "peak_activation_bytes",
    "bytes_read",
    "bytes_written",
    "arithmetic_intensity",
    "num_nodes",
    "num_nested_nodes",
    "num_subgraphs",
    "num_functions",
    "depth",
    "critical_path_flops",
    "max_width",
    "num_fanout_tensors",
    "num_merge_nodes",
    "mean_out_degree",
    "num_unknown_shape_tensors",
    "num_unknown_op_nodes",
    "num_inexact_nodes",
)
