"""Heterogeneous GNN encoder: ``OperatorGraph.to_hetero_data()`` → a graph embedding.

Operators, activation tensors and weight tensors (layout in :mod:`graphrec.graph.hetero`)
are projected to one width (operators also get an embedding of their op type), updated
by ``layers`` rounds of :class:`torch_geometric.nn.HeteroConv` with one
:class:`~torch_geometric.nn.SAGEConv` per edge type, then pooled per node type
(mean and max over operators, mean over tensors) and mixed into ``out_dim`` numbers.

Two classes compute it. :class:`HeteroGraphEncoder` is built from the PyG layers (and
their initialisation) for training. :class:`PlainHeteroGraphEncoder` is the same
computation in plain torch, with the same parameter names, for inference: loading a
trained artefact and answering ``graphrec recommend`` then never imports
``torch_geometric`` (a second or more of start-up). Both read a batch made by
:func:`collate` (or a PyG ``Batch``).

Example:
    >>> enc = HeteroGraphEncoder(hidden=32, out_dim=16)
    >>> batch = collate([g.to_hetero_data()])  # doctest: +SKIP
    >>> enc(batch).shape  # doctest: +SKIP
    torch.Size([1, 16])
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from graphrec.graph.hetero import ACT_FEATURES, OP_FEATURES, WEIGHT_FEATURES, HeteroGraph
from graphrec.graph.vocab import OP_TYPES

__all__ = ["EDGE_TYPES", "HeteroGraphEncoder", "PlainHeteroGraphEncoder", "collate"]

#: Edge types the encoder passes messages along (the layout's four edge types).
EDGE_TYPES: tuple[tuple[str, str, str], ...] = (
    ("act", "input_of", "op"),
    ("weight", "input_of", "op"),
    ("op", "produces", "act"),
    ("op", "next", "op"),
)
_IN_DIMS = {"op": len(OP_FEATURES), "act": len(ACT_FEATURES), "weight": len(WEIGHT_FEATURES)}


def collate(graphs: Sequence[Any]) -> HeteroGraph:
    """Batch graphs (:class:`~graphrec.graph.hetero.HeteroGraph` or PyG ``HeteroData``)
    into one, as ``torch_geometric.data.Batch.from_data_list`` does for what the encoder
    reads: node tensors concatenated, edge indices shifted by the node counts before
    them, a ``batch`` vector per node type and ``num_graphs``."""
    node_types = [t for t in _IN_DIMS]
    edge_types: list[tuple[str, str, str]] = []
    for g in graphs:
        for et in g.edge_types:
            if et not in edge_types:
                edge_types.append(et)
    counts = {t: [int(g[t].x.shape[0]) for g in graphs] for t in node_types}
    nodes: dict[str, dict[str, Any]] = {}
    for t in node_types:
        store: dict[str, Any] = {"x": torch.cat([g[t].x for g in graphs], dim=0)}
        if t == "op":
            store["op_type"] = torch.cat([g[t].op_type for g in graphs], dim=0)
        store["batch"] = torch.repeat_interleave(
            torch.arange(len(graphs)), torch.tensor(counts[t], dtype=torch.long)
        )
        nodes[t] = store
    edges: dict[tuple[str, str, str], dict[str, Any]] = {}
    for et in edge_types:
        src, _, dst = et
        parts = []
        off_src = off_dst = 0
        for i, g in enumerate(graphs):
            if et in g.edge_types:
                e = g[et].edge_index
                parts.append(e + torch.tensor([[off_src], [off_dst]], dtype=e.dtype))
            off_src += counts[src][i]
            off_dst += counts[dst][i]
        edges[et] = {"edge_index": torch.cat(parts, dim=1)}
    out = HeteroGraph(nodes, edges, None)
    out.num_graphs = len(graphs)  # type: ignore[attr-defined]
    return out


def _scatter(src: torch.Tensor, index: torch.Tensor, dim_size: int, reduce: str) -> torch.Tensor:
    """``torch_geometric.utils.scatter`` along dim 0 (same operations, so same numbers)."""
    size = (dim_size, *src.shape[1:])
    idx = index.view(-1, *([1] * (src.dim() - 1))).expand_as(src)
    if reduce == "mean":
        count = src.new_zeros(dim_size)
        count.scatter_add_(0, index, src.new_ones(src.size(0)))
        count = count.clamp(min=1)
        out = src.new_zeros(size).scatter_add_(0, idx, src)
        return out / count.view(-1, *([1] * (out.dim() - 1))).expand_as(out)
    if reduce == "max":
        return src.new_zeros(size).scatter_reduce_(0, idx, src, reduce="amax", include_self=False)
    raise ValueError(f"reduce must be 'mean' or 'max', got {reduce!r}")


def _key(edge_type: tuple[str, str, str]) -> str:
    """PyG's ``ModuleDict`` key of an edge type (so state dicts are interchangeable)."""
    return "<" + "___".join(edge_type) + ">"


class _SAGE(nn.Module):
    """``SAGEConv(hidden, hidden)`` with its defaults: mean of the sources, ``lin_l`` on it
    plus ``lin_r`` (no bias) on the destination."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.lin_l = nn.Linear(hidden, hidden)
        self.lin_r = nn.Linear(hidden, hidden, bias=False)

    def forward(
        self, x_src: torch.Tensor, x_dst: torch.Tensor, edge_index: torch.Tensor
    ) -> torch.Tensor:
        x_j = x_src.index_select(0, edge_index[0])
        agg = _scatter(x_j, edge_index[1], int(x_dst.shape[0]), "mean")
        out: torch.Tensor = self.lin_l(agg) + self.lin_r(x_dst)
        return out


class _HeteroSAGE(nn.Module):
    """``HeteroConv({et: SAGEConv}, aggr="sum")``: per destination type, the sum (in edge
    type order) of the convolutions of the edge types present."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.convs = nn.ModuleDict({_key(et): _SAGE(hidden) for et in EDGE_TYPES})

    def forward(
        self, x: dict[str, torch.Tensor], edges: dict[tuple[str, str, str], torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        outs: dict[str, list[torch.Tensor]] = {}
        for et in EDGE_TYPES:
            if et not in edges:
                continue
            src, _, dst = et
            outs.setdefault(dst, []).append(self.convs[_key(et)](x[src], x[dst], edges[et]))
        return {
            t: v[0] if len(v) == 1 else torch.stack(v, dim=0).sum(dim=0) for t, v in outs.items()
        }


class _EncoderBase(nn.Module):
    """What both encoders share: input projections, op embedding, readout, forward."""

    convs: nn.ModuleList
    readout: nn.Sequential

    def _init_common(self, hidden: int, out_dim: int, op_vocab: int | None) -> None:
        self.hidden = hidden
        self.out_dim = out_dim
        self.op_vocab = op_vocab if op_vocab is not None else len(OP_TYPES) + 1
        self.proj = nn.ModuleDict({t: nn.Linear(d, hidden) for t, d in _IN_DIMS.items()})
        self.op_embed = nn.Embedding(self.op_vocab, hidden)

    def forward(self, batch: Any) -> torch.Tensor:
        """Return ``[num_graphs, out_dim]`` embeddings of a :func:`collate` batch (or a
        PyG ``Batch``)."""
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
            _scatter(x["op"], op_b, n_graphs, "mean"),
            _scatter(x["op"], op_b, n_graphs, "max"),
            _scatter(x["act"], vec("act"), n_graphs, "mean"),
            _scatter(x["weight"], vec("weight"), n_graphs, "mean"),
        ]
        out: torch.Tensor = self.readout(torch.cat(pooled, dim=1))
        return out


class HeteroGraphEncoder(_EncoderBase):
    """Encode a batch of heterogeneous operator graphs into fixed-size vectors.

    Built from ``torch_geometric.nn.HeteroConv`` / ``SAGEConv`` (imported here, not at
    module import), with their initialisation: the encoder that training fits.

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
        from torch_geometric.nn import HeteroConv, SAGEConv

        self._init_common(hidden, out_dim, op_vocab)
        with warnings.catch_warnings():
            # Weight nodes only send messages (by design); PyG warns about that.
            warnings.simplefilter("ignore", UserWarning)
            self.convs = nn.ModuleList(
                HeteroConv({et: SAGEConv(hidden, hidden) for et in EDGE_TYPES}, aggr="sum")
                for _ in range(layers)
            )
        self.readout = nn.Sequential(nn.Linear(4 * hidden, out_dim), nn.ReLU())


class PlainHeteroGraphEncoder(_EncoderBase):
    """:class:`HeteroGraphEncoder`'s computation in plain torch (no ``torch_geometric``),
    with the same parameter names: it loads that encoder's state dict and gives the same
    embeddings. Its own initialisation is torch's default, so train the PyG one.

    Args: as :class:`HeteroGraphEncoder`.
    """

    def __init__(
        self, hidden: int = 32, out_dim: int = 32, layers: int = 2, op_vocab: int | None = None
    ) -> None:
        super().__init__()
        self._init_common(hidden, out_dim, op_vocab)
        self.convs = nn.ModuleList(_HeteroSAGE(hidden) for _ in range(layers))
        self.readout = nn.Sequential(nn.Linear(4 * hidden, out_dim), nn.ReLU())
