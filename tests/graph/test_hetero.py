"""OperatorGraph.to_hetero_data: node and edge types, sizes and feature layout."""

from __future__ import annotations

import torch
from graph_models import Built

import graphrec.graph as G
from graphrec.graph.hetero import ACT_FEATURES, HETERO_LAYOUT_VERSION, OP_FEATURES, WEIGHT_FEATURES


def test_layout_and_counts(built_models: dict[str, Built]) -> None:
    g = G.load(built_models["cnn"].path)
    d = g.to_hetero_data()
    n_const = g.op_type_histogram.get("Constant", 0)
    n_ops = g.num_nodes - n_const
    assert d.layout_version == HETERO_LAYOUT_VERSION
    assert d["op"].x.shape == (n_ops, len(OP_FEATURES))
    assert d["op"].op_type.shape == (n_ops,)
    n_w = int((g.tensor_kind == 1).sum())
    assert d["weight"].x.shape == (n_w, len(WEIGHT_FEATURES))
    assert d["act"].x.shape == (len(g.tensor_names) - n_w, len(ACT_FEATURES))
    # Every non-Constant operator's activation inputs and weight inputs become edges.
    ei = d["act", "input_of", "op"].edge_index
    ew = d["weight", "input_of", "op"].edge_index
    n_inputs = sum(
        int((g.input_tensor[g.input_ptr[v] : g.input_ptr[v + 1]] >= 0).sum())
        for v in range(g.num_nodes)
        if g.op_types[v] != "Constant"
    )
    assert ei.shape[1] + ew.shape[1] == n_inputs
    assert ei.dtype == torch.int64 and ei.max() < d["act"].x.shape[0] and ei[1].max() < n_ops
    assert ew[0].max() < n_w
    produced = d["op", "produces", "act"].edge_index
    assert produced.shape[1] == n_ops  # one output each in this CNN
    assert d["op", "next", "op"].edge_index.shape[1] == len(g.succ_idx)
    assert d.graph_features.shape == (1, len(G.GRAPH_FEATURE_NAMES))
    assert torch.isfinite(d["op"].x).all() and torch.isfinite(d["act"].x).all()
    # Conv weights are the second input slot.
    assert set(d["weight", "input_of", "op"].edge_attr.flatten().tolist()) <= {1.0, 2.0}


def test_constant_weights_become_weight_nodes(built_models: dict[str, Built]) -> None:
    a = G.load(built_models["constant_node_weights"].path).to_hetero_data()
    b = G.load(built_models["cnn"].path).to_hetero_data()
    assert a["op"].x.shape == b["op"].x.shape
    assert a["weight"].x.shape[0] >= b["weight"].x.shape[0]
    assert torch.equal(a["op"].op_type, b["op"].op_type)


def test_works_with_pyg_transforms(built_models: dict[str, Built]) -> None:
    from torch_geometric.transforms import ToUndirected

    d = ToUndirected()(G.load(built_models["transformer_encoder"].path).to_hetero_data())
    assert ("op", "rev_input_of", "act") in d.edge_types
