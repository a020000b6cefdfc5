"""Heterogeneous GNN encoder: ``OperatorGraph.to_hetero_data()`` → a graph embedding.

Operators, activation tensors and weight tensors (layout in :mod:`graphrec.graph.hetero`)
are projected to one width (operators also get an embedding of their op type), updated
by ``layers`` rounds of :class:`torch_geometric.nn.HeteroConv` with one
:class:`~torch_geometric.nn.SAGEConv` per edge type, then pooled per node type
(mean and max over operators, mean over tensors) and mixed into ``out_dim`` numbers.

Example:
    >>> import torch
    >>> from torch_geometric.data import Batch
    >>> enc = HeteroGraphEncoder(hidden=32, out_dim=16)
    >>> batch = Batch.from_data_list([g.to_hetero_data()])  # doctest: +SKIP
    >>> enc(batch).shape  # doctest: +SKIP
    torch.Size([1, 16])
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn
from torch_geometric.nn import HeteroConv, SAGEConv
from torch_geometric.utils import scatter

from graphrec.graph.hetero import ACT_FEATURES, OP_FEATURES, WEIGHT_FEATURES
from graphrec.graph.vocab import OP_TYPES

__all__ = ["EDGE_TYPES", "HeteroGraphEncoder"]

#: Edge types the encoder passes messages along (the layout's four edge types).
EDGE_TYPES: tuple[tuple[str, str, str], ...] = (
    ("act", "input_of", "op"),
    ("weight", "input_of", "op"),
    ("op", "produces", "act"),
    ("op", "next", "op"),
)
_IN_DIMS = {"op": len(OP_FEATURES), "act": len(ACT_FEATURES), "weight": len(WEIGHT_FEATURES)}


class HeteroGraphEncoder(nn.Module):
    """Encode a batch of heterogeneous operator graphs into fixed-size vectors.

    Args:
        hidden: Width of node states.
        out_dim: Size of the graph embedding.
        layers: Message-passing rounds.
        op_vocab: Size of the op-type vocabulary (default: ``len(OP_TYPES) + 1``; the last
            id is used for ids outside the table).
    """

    def __init__(
        self, hidden: int = 32, out_dim: int = 32, layers: int = 2, op_vocab: int | None = None
    ) -> None:
        super().__init__()
        self.hidden = hidden
        self.out_dim = out_dim
        self.op_vocab = op_vocab if op_vocab is not None else len(OP_TYPES) + 1
        self.proj = nn.ModuleDict({t: nn.Linear(d, hidden) for t, d in _IN_DIMS.items()})
        self.op_embed = nn.Embedding(self.op_vocab, hidden)
        with warnings.catch_warnings():
            # Weight nodes only send messages (by design); PyG warns about that.
            warnings.simplefilter("ignore", UserWarning)
            self.convs = nn.ModuleList(
                HeteroConv({et: SAGEConv(hidden, hidden) for et in EDGE_TYPES}, aggr="sum")
                for _ in range(layers)
            )
        self.readout = nn.Sequential(nn.Linear(4 * hidden, out_dim), nn.ReLU())

    def forward(self, batch: Any) -> torch.Tensor:
        """Return ``[num_graphs, out_dim]`` embeddings of a PyG (Hetero) ``Batch``."""
        n_graphs = int(batch.num_graphs) if hasattr(batch, "num_graphs") else 1
        x: dict[str, torch.Tensor] = {}
        for t in _IN_DIMS:
            x[t] = self.proj[t](batch[t].x)
        op_ids = batch["op"].op_type.clamp(min=0, max=self.op_vocab - 1)
        x["op"] = x["op"] + self.op_embed(op_ids)
        x = {t: torch.relu(v) for t, v in x.items()}
        edges = {et: batch[et].edge_index for et in EDGE_TYPES if et in batch.edge_types}
        for conv in self.convs:
            upd = conv(x, edges)
            x = {t: torch.relu(upd[t]) + x[t] if t in upd else x[t] for t in x}

        def vec(t: str) -> torch.Tensor:
            b = getattr(batch[t], "batch", None)
            if b is None:
                b = torch.zeros(x[t].shape[0], dtype=torch.long)
            return b

        op_b = vec("op")
        pooled = [
            scatter(x["op"], op_b, dim=0, dim_size=n_graphs, reduce="mean"),
            scatter(x["op"], op_b, dim=0, dim_size=n_graphs, reduce="max"),
            scatter(x["act"], vec("act"), dim=0, dim_size=n_graphs, reduce="mean"),
            scatter(x["weight"], vec("weight"), dim=0, dim_size=n_graphs, reduce="mean"),
        ]
        out: torch.Tensor = self.readout(torch.cat(pooled, dim=1))
        return out
