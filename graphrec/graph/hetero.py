"""``OperatorGraph`` → PyTorch Geometric ``HeteroData``.

Layout version :data:`HETERO_LAYOUT_VERSION` (bump it, and retrain, when it changes):

Node types
    ``"op"``: operators, except ``Constant`` (whose outputs are weights).
        ``x``: float32 ``[num_ops, len(OP_FEATURES)]``; ``op_type``: int64 ids into
        :data:`graphrec.graph.vocab.OP_TYPES` (vocabulary version
        :data:`graphrec.graph.vocab.OP_VOCAB_VERSION`) for an embedding table.
    ``"act"``: activation tensors, graph inputs included.
        ``x``: float32 ``[num_act, len(ACT_FEATURES)]``.
    ``"weight"``: initializers and ``Constant`` outputs.
        ``x``: float32 ``[num_weight, len(WEIGHT_FEATURES)]``.

Edge types
    ``("act", "input_of", "op")``, ``("weight", "input_of", "op")``,
    ``("op", "produces", "act")`` and ``("op", "next", "op")`` (data flow between
    operators). Each ``edge_index`` is int64 ``[2, E]``; ``("act", "input_of", "op")``
    and ``("weight", "input_of", "op")`` also carry ``edge_attr`` = the input slot
    (float32 ``[E, 1]``), since the role of an operand depends on its position.

Magnitudes (FLOPs, bytes, element counts) enter as ``log1p`` so that models of very
different sizes share one scale. The model-level vector
(:data:`graphrec.graph.columns.GRAPH_FEATURE_NAMES`, log1p-scaled) is stored as
``data.graph_features`` ``[1, F]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from torch_geometric.data import HeteroData

    from graphrec.graph.operator_graph import OperatorGraph

HETERO_LAYOUT_VERSION = 1

OP_FEATURES: tuple[str, ...] = (
    "log_flops",
    "log_macs",
    "log_params",
    "log_weight_bytes",
    "log_bytes_read",
    "log_bytes_written",
    "log_arithmetic_intensity",
    "log_out_numel",
    "relative_level",
    "cost_exact",
    "unknown_op",
    "log_subgraph_nodes",
    "num_inputs",
    "num_outputs",
)

ACT_FEATURES: tuple[str, ...] = (
    "log_numel",
    "rank",
    "log_bytes",
    "shape_known",
    "is_graph_input",
    "is_graph_output",
    "dtype_float",
    "dtype_half",
    "dtype_int8",
    "dtype_int",
    "dtype_bool",
)

WEIGHT_FEATURES: tuple[str, ...] = (
    "log_numel",
    "rank",
    "log_bytes",
    "dtype_float",
    "dtype_half",
    "dtype_int8",
    "dtype_int",
    "dtype_bool",
)

# ONNX dtype ids grouped into coarse classes.
_FLOAT = (1, 11)
_HALF = (10, 16)
_INT8 = (2, 3, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26)
_INT = (4, 5, 6, 7, 12, 13)
_BOOL = (9,)


def _dtype_onehot(dtype: np.ndarray) -> np.ndarray:
    return np.column_stack([np.isin(dtype, g) for g in (_FLOAT, _HALF, _INT8, _INT, _BOOL)]).astype(
        np.float64
    )


def _log(a: np.ndarray) -> np.ndarray:
    return np.log1p(np.maximum(np.asarray(a, dtype=np.float64), 0.0))


def to_hetero_data(g: OperatorGraph) -> HeteroData:
    """Build the ``HeteroData`` described in the module docstring."""
    return to_hetero_graph(g).to_hetero_data()


def to_hetero_graph(g: OperatorGraph) -> HeteroGraph:
    """Build the graph of the module docstring as a :class:`HeteroGraph` (no PyG import)."""
    import torch

    nf = g.node_features
    names = ("flops", "macs", "params", "weight_bytes", "bytes_read", "bytes_written")
    from graphrec.graph.columns import NODE_FEATURE_NAMES

    col = {n: i for i, n in enumerate(NODE_FEATURE_NAMES)}
    n_nodes = g.num_nodes
    is_op = ~g.op_type_mask("Constant")
    op_ids = np.flatnonzero(is_op)
    op_local = np.full(n_nodes, -1, dtype=np.int64)
    op_local[op_ids] = np.arange(len(op_ids))
    depth = max(g.depth, 1)
    if n_nodes:
        op_x = np.column_stack(
            [_log(nf[:, col[n]]) for n in names]
            + [
                _log(nf[:, col["arithmetic_intensity"]]),
                _log(nf[:, col["out_numel"]]),
                nf[:, col["level"]] / depth,
                nf[:, col["cost_exact"]],
                nf[:, col["unknown_op"]],
                _log(nf[:, col["subgraph_nodes"]]),
                nf[:, col["num_inputs"]],
                nf[:, col["num_outputs"]],
            ]
        )[op_ids]
    else:
        op_x = np.zeros((0, len(OP_FEATURES)))

    kind = g.tensor_kind
    act_ids = np.flatnonzero(kind != 1)
    w_ids = np.flatnonzero(kind == 1)
    t_local = np.full(len(kind), -1, dtype=np.int64)
    t_local[act_ids] = np.arange(len(act_ids))
    t_local[w_ids] = np.arange(len(w_ids))
    numel = g.tensor_numel.astype(np.float64)
    nbytes = g.tensor_bytes
    rank = g.tensor_rank.astype(np.float64)
    onehot = _dtype_onehot(g.tensor_dtype)
    # A tensor's shape is known when its rank is known and no dim is -1.
    neg = np.zeros(len(kind), dtype=np.int64)
    if len(g.shape_dims):
        owner = np.repeat(np.arange(len(kind)), np.diff(g.shape_ptr))
        neg = np.bincount(owner, weights=(g.shape_dims < 0), minlength=len(kind)).astype(np.int64)
    shape_known = ((g.tensor_rank >= 0) & (neg == 0)).astype(np.float64)
    act_x = np.column_stack(
        [
            _log(numel),
            np.maximum(rank, -1),
            _log(nbytes),
            shape_known,
            (kind == 2).astype(np.float64),
            g.tensor_is_output.astype(np.float64),
            onehot,
        ]
    )[act_ids]
    w_x = np.column_stack([_log(numel), np.maximum(rank, -1), _log(nbytes), onehot])[w_ids]

    # Edges from the CSR input/output lists, vectorized.
    in_node = np.repeat(np.arange(n_nodes), np.diff(g.input_ptr))
    in_slot = (
        np.arange(len(g.input_tensor)) - np.repeat(g.input_ptr[:-1], np.diff(g.input_ptr))
    ).astype(np.float64)
    in_t = g.input_tensor
    keep = (in_t >= 0) & is_op[in_node] if n_nodes else np.zeros(0, bool)
    in_node, in_t, in_slot = in_node[keep], in_t[keep], in_slot[keep]
    a_mask = kind[in_t] != 1
    out_node = np.repeat(np.arange(n_nodes), np.diff(g.output_ptr))
    out_t = g.output_tensor
    o_keep = (kind[out_t] == 0) & is_op[out_node] if n_nodes else np.zeros(0, bool)
    src = np.repeat(np.arange(n_nodes), np.diff(g.succ_ptr))
    dst = g.succ_idx
    s_keep = is_op[src] & is_op[dst] if n_nodes else np.zeros(0, bool)

    def ei(a: np.ndarray, b: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.vstack([a, b]).astype(np.int64)).reshape(2, -1)

    op_x_t = torch.from_numpy(op_x.astype(np.float32)).reshape(-1, len(OP_FEATURES))
    nodes = {
        "op": {"x": op_x_t, "op_type": torch.from_numpy(g.op_type_ids[op_ids].astype(np.int64))},
        "act": {"x": torch.from_numpy(act_x.astype(np.float32)).reshape(-1, len(ACT_FEATURES))},
        "weight": {"x": torch.from_numpy(w_x.astype(np.float32)).reshape(-1, len(WEIGHT_FEATURES))},
    }
    edges = {
        ("act", "input_of", "op"): {
            "edge_index": ei(t_local[in_t[a_mask]], op_local[in_node[a_mask]]),
            "edge_attr": torch.from_numpy(in_slot[a_mask].astype(np.float32)).reshape(-1, 1),
        },
        ("weight", "input_of", "op"): {
            "edge_index": ei(t_local[in_t[~a_mask]], op_local[in_node[~a_mask]]),
            "edge_attr": torch.from_numpy(in_slot[~a_mask].astype(np.float32)).reshape(-1, 1),
        },
        ("op", "produces", "act"): {
            "edge_index": ei(op_local[out_node[o_keep]], t_local[out_t[o_keep]])
        },
        ("op", "next", "op"): {"edge_index": ei(op_local[src[s_keep]], op_local[dst[s_keep]])},
    }
    gf = torch.from_numpy(_log(g.graph_features()).astype(np.float32)).reshape(1, -1)
    return HeteroGraph(nodes, edges, gf)


class _Store:
    """The attributes of one node or edge type (``graph["op"].x``)."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)

    def __repr__(self) -> str:
        return f"_Store({', '.join(sorted(self.__dict__))})"


class HeteroGraph:
    """The heterogeneous graph without PyTorch Geometric: the same tensors as
    :func:`to_hetero_data`, with the same dict-style access (``graph["op"].x``,
    ``graph["act", "input_of", "op"].edge_index``, ``node_types``, ``edge_types``,
    ``graph_features``, ``layout_version``).

    Inference needs nothing more (:func:`graphrec.recommender.encoder.collate` batches
    these and ``HeteroData`` alike); :meth:`to_hetero_data` gives the PyG object.

    Example:
        >>> hg = to_hetero_graph(graphrec.graph.load("model.onnx"))  # doctest: +SKIP
        >>> hg["op"].x.shape[1] == len(OP_FEATURES)  # doctest: +SKIP
        True
    """

    def __init__(
        self,
        nodes: dict[str, dict[str, Any]],
        edges: dict[tuple[str, str, str], dict[str, Any]],
        graph_features: Any,
        layout_version: int = HETERO_LAYOUT_VERSION,
    ) -> None:
        self._nodes = {k: _Store(v) for k, v in nodes.items()}
        self._edges = {k: _Store(v) for k, v in edges.items()}
        self.graph_features = graph_features
        self.layout_version = layout_version

    def __getitem__(self, key: str | tuple[str, str, str]) -> Any:
        if isinstance(key, tuple):
            return self._edges[key]
        return self._nodes[key]

    @property
    def node_types(self) -> list[str]:
        """Node types, in layout order."""
        return list(self._nodes)

    @property
    def edge_types(self) -> list[tuple[str, str, str]]:
        """Edge types, in layout order."""
        return list(self._edges)

    def to_hetero_data(self) -> HeteroData:
        """The PyTorch Geometric ``HeteroData`` holding the same tensors."""
        from torch_geometric.data import HeteroData

        data = HeteroData()
        for t, store in self._nodes.items():
            for k, v in vars(store).items():
                setattr(data[t], k, v)
        for et, store in self._edges.items():
            for k, v in vars(store).items():
                setattr(data[et], k, v)
        data.graph_features = self.graph_features
        data.layout_version = self.layout_version
        return data
