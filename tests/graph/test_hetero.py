"""OperatorGraph.to_hetero_data: node and edge types, feature values per column, edges.

Feature values are checked column by column against numbers worked out by hand for a
small model written with ``onnx.helper`` (so swapping two columns, or two features'
inputs, fails), and every edge type is checked against the ONNX graph itself.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from graph_models import Built
from onnx import TensorProto, helper, numpy_helper

import graphrec.graph as G
from graphrec.graph.hetero import ACT_FEATURES, HETERO_LAYOUT_VERSION, OP_FEATURES, WEIGHT_FEATURES
from graphrec.graph.vocab import OP_TYPES


def _hand_model(path: Path) -> Path:
    """x[1,3,8,8] -> Conv(4x3x3x3, bias, pad 1) -> Relu -> Mul(Constant 0.5) -> Reshape([1,256])
    -> Gemm(256x10, bias) -> y[1,10]."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w1"),
        numpy_helper.from_array(np.zeros(4, np.float32), "b1"),
        numpy_helper.from_array(np.array([1, 256], np.int64), "shape"),
        numpy_helper.from_array(rng.standard_normal((256, 10)).astype(np.float32), "w2"),
        numpy_helper.from_array(np.zeros(10, np.float32), "b2"),
    ]
    half = numpy_helper.from_array(np.array(0.5, np.float32), "half_value")
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("Constant", [], ["half"], name="const", value=half),
        helper.make_node("Mul", ["r", "half"], ["m"], name="mul"),
        helper.make_node("Reshape", ["m", "shape"], ["f"], name="reshape"),
        helper.make_node("Gemm", ["f", "w2", "b2"], ["y"], name="gemm"),
    ]
    graph = helper.make_graph(
        nodes,
        "hand",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def hand(tmp_path_factory: pytest.TempPathFactory) -> tuple[G.OperatorGraph, object]:
    g = G.load(_hand_model(tmp_path_factory.mktemp("hetero") / "hand.onnx"))
    return g, g.to_hetero_data()


def _rows(d: object, node_type: str, features: tuple[str, ...]) -> list[dict[str, float]]:
    x = d[node_type].x.double().numpy()  # type: ignore[index]
    return [dict(zip(features, row, strict=True)) for row in x]


def _check(row: dict[str, float], expected: dict[str, float], what: str) -> None:
    for key, value in expected.items():
        assert row[key] == pytest.approx(value, rel=1e-5, abs=1e-6), f"{what}.{key}"


def test_op_feature_values_by_column(hand: tuple[G.OperatorGraph, object]) -> None:
    g, d = hand
    # Op rows: the non-Constant nodes, identified by their op type (the embedding ids).
    types = [OP_TYPES[int(i)] for i in d["op"].op_type]  # type: ignore[index]
    assert types == ["Conv", "Relu", "Mul", "Reshape", "Gemm"]
    rows = dict(zip(types, _rows(d, "op", OP_FEATURES), strict=True))
    f = 4.0  # float32 bytes
    # Conv: 256 outputs x 27 MACs; FLOPs = 2 MACs + one bias add per output.
    conv_macs, conv_out = 4 * 8 * 8 * 27, 4 * 8 * 8
    conv_flops = 2 * conv_macs + conv_out
    conv_read, conv_written = f * (3 * 8 * 8 + 4 * 27 + 4), f * conv_out
    _check(
        rows["Conv"],
        {
            "log_flops": np.log1p(conv_flops),
            "log_macs": np.log1p(conv_macs),
            "log_params": np.log1p(4 * 27 + 4),
            "log_weight_bytes": np.log1p(f * (4 * 27 + 4)),
            "log_bytes_read": np.log1p(conv_read),
            "log_bytes_written": np.log1p(conv_written),
            "log_arithmetic_intensity": np.log1p(conv_flops / (conv_read + conv_written)),
            "log_out_numel": np.log1p(conv_out),
            "relative_level": 0.0,
            "cost_exact": 1.0,
            "unknown_op": 0.0,
            "log_subgraph_nodes": 0.0,
            "num_inputs": 3.0,
            "num_outputs": 1.0,
        },
        "Conv",
    )
    # Gemm: [1,256] x [256,10] + bias; level 4 of depth 5 (Conv, Relu, Mul, Reshape, Gemm).
    gemm_macs = 256 * 10
    gemm_flops = 2 * gemm_macs + 10
    gemm_read, gemm_written = f * (256 + 2560 + 10), f * 10
    _check(
        rows["Gemm"],
        {
            "log_flops": np.log1p(gemm_flops),
            "log_macs": np.log1p(gemm_macs),
            "log_params": np.log1p(2570),
            "log_weight_bytes": np.log1p(f * 2570),
            "log_bytes_read": np.log1p(gemm_read),
            "log_bytes_written": np.log1p(gemm_written),
            "log_arithmetic_intensity": np.log1p(gemm_flops / (gemm_read + gemm_written)),
            "log_out_numel": np.log1p(10),
            "relative_level": 4 / 5,
            "num_inputs": 3.0,
            "num_outputs": 1.0,
        },
        "Gemm",
    )
    # Relu and Mul: no MACs, no parameters; the Constant feeding Mul is a weight, not an op.
    _check(rows["Relu"], {"log_macs": 0.0, "log_params": 0.0, "log_weight_bytes": 0.0}, "Relu")
    _check(rows["Relu"], {"log_bytes_read": np.log1p(f * 256), "relative_level": 1 / 5}, "Relu")
    _check(rows["Mul"], {"log_weight_bytes": np.log1p(f), "num_inputs": 2.0}, "Mul")
    _check(rows["Reshape"], {"log_macs": 0.0, "log_out_numel": np.log1p(256)}, "Reshape")
    assert g.depth == 5


def test_tensor_feature_values_by_column(hand: tuple[G.OperatorGraph, object]) -> None:
    g, d = hand
    act_names = [n for n, k in zip(g.tensor_names, g.tensor_kind, strict=True) if k != 1]
    w_names = [n for n, k in zip(g.tensor_names, g.tensor_kind, strict=True) if k == 1]
    assert sorted(act_names) == ["c", "f", "m", "r", "x", "y"]
    assert sorted(w_names) == ["b1", "b2", "half", "shape", "w1", "w2"]
    act = dict(zip(act_names, _rows(d, "act", ACT_FEATURES), strict=True))
    weight = dict(zip(w_names, _rows(d, "weight", WEIGHT_FEATURES), strict=True))
    floats = {"dtype_float": 1.0, "dtype_half": 0.0, "dtype_int8": 0.0, "dtype_int": 0.0}
    _check(
        act["x"],
        {
            "log_numel": np.log1p(3 * 8 * 8),
            "rank": 4.0,
            "log_bytes": np.log1p(4 * 3 * 8 * 8),
            "shape_known": 1.0,
            "is_graph_input": 1.0,
            "is_graph_output": 0.0,
            **floats,
            "dtype_bool": 0.0,
        },
        "x",
    )
    _check(
        act["f"],
        {"log_numel": np.log1p(256), "rank": 2.0, "log_bytes": np.log1p(1024)},
        "f",
    )
    _check(act["f"], {"is_graph_input": 0.0, "is_graph_output": 0.0}, "f")
    _check(act["y"], {"log_numel": np.log1p(10), "rank": 2.0, "is_graph_output": 1.0}, "y")
    _check(act["y"], {"is_graph_input": 0.0}, "y")
    _check(
        weight["w1"],
        {"log_numel": np.log1p(108), "rank": 4.0, "log_bytes": np.log1p(432), **floats},
        "w1",
    )
    _check(weight["w2"], {"log_numel": np.log1p(2560), "rank": 2.0}, "w2")
    _check(weight["w2"], {"log_bytes": np.log1p(10240)}, "w2")
    # An int64 shape tensor and a Constant node's scalar output.
    _check(
        weight["shape"],
        {"log_numel": np.log1p(2), "rank": 1.0, "log_bytes": np.log1p(16), "dtype_int": 1.0},
        "shape",
    )
    _check(weight["shape"], {"dtype_float": 0.0}, "shape")
    _check(
        weight["half"], {"log_numel": np.log1p(1), "rank": 0.0, "log_bytes": np.log1p(4)}, "half"
    )
    _check(weight["half"], floats, "half")
    # The model-level vector is the log1p of the graph features, column by column.
    gf = dict(zip(G.GRAPH_FEATURE_NAMES, d.graph_features[0].double().numpy(), strict=True))  # type: ignore[attr-defined]
    flops = (2 * 6912 + 256) + 256 + 256 + 0 + (2 * 2560 + 10)  # Conv, Relu, Mul, Reshape, Gemm
    assert gf["flops"] == pytest.approx(np.log1p(flops), rel=1e-6)
    assert gf["macs"] == pytest.approx(np.log1p(6912 + 2560), rel=1e-6)
    assert gf["params"] == pytest.approx(np.log1p(112 + 2570 + 1), rel=1e-6)
    assert gf["num_nodes"] == pytest.approx(np.log1p(6), rel=1e-6)
    assert gf["depth"] == pytest.approx(np.log1p(5), rel=1e-6)


def _onnx_edges(
    model: onnx.ModelProto,
) -> tuple[set[tuple[str, str, int]], set[tuple[str, str, int]], set[tuple[str, str]], set]:
    """(act -> op, slot), (weight -> op, slot), op -> act and op -> op edges of the top graph,
    by tensor and node names, read from the ONNX protobuf."""
    weights = {i.name for i in model.graph.initializer}
    producer: dict[str, str] = {}
    for n in model.graph.node:
        for o in n.output:
            if o:
                producer[o] = n.name
            if n.op_type == "Constant":
                weights.add(o)
    ops = [n for n in model.graph.node if n.op_type != "Constant"]
    act_in: set[tuple[str, str, int]] = set()
    w_in: set[tuple[str, str, int]] = set()
    produces: set[tuple[str, str]] = set()
    nxt: set[tuple[str, str]] = set()
    for n in ops:
        for slot, t in enumerate(n.input):
            if not t:
                continue
            (w_in if t in weights else act_in).add((t, n.name, slot))
            p = producer.get(t)
            if p is not None and t not in weights:
                nxt.add((p, n.name))
        produces |= {(n.name, o) for o in n.output if o}
    return act_in, w_in, produces, nxt


def _hetero_edges(g: G.OperatorGraph, d: object) -> tuple[set, set, set, set]:
    ops = [n for n, t in zip(g.node_names, g.op_types, strict=True) if t != "Constant"]
    acts = [n for n, k in zip(g.tensor_names, g.tensor_kind, strict=True) if k != 1]
    ws = [n for n, k in zip(g.tensor_names, g.tensor_kind, strict=True) if k == 1]

    def pairs(key: tuple[str, str, str], src: list[str], dst: list[str]) -> list[tuple[str, str]]:
        ei = d[key].edge_index  # type: ignore[index]
        assert ei.dtype == torch.int64 and ei.shape[0] == 2
        return [(src[a], dst[b]) for a, b in ei.t().tolist()]

    def slotted(key: tuple[str, str, str], src: list[str]) -> set[tuple[str, str, int]]:
        slots = d[key].edge_attr.flatten().tolist()  # type: ignore[index]
        return {(a, b, int(s)) for (a, b), s in zip(pairs(key, src, ops), slots, strict=True)}

    act_in = slotted(("act", "input_of", "op"), acts)
    w_in = slotted(("weight", "input_of", "op"), ws)
    produces = pairs(("op", "produces", "act"), ops, acts)
    nxt = pairs(("op", "next", "op"), ops, ops)
    assert len(set(produces)) == len(produces) and len(set(nxt)) == len(nxt)
    return act_in, w_in, set(produces), set(nxt)


def test_edges_match_the_onnx_graph(hand: tuple[G.OperatorGraph, object]) -> None:
    g, d = hand
    act_in, w_in, produces, nxt = _hetero_edges(g, d)
    assert act_in == {("x", "conv", 0), ("c", "relu", 0), ("r", "mul", 0), ("m", "reshape", 0),
                      ("f", "gemm", 0)}  # fmt: skip
    assert w_in == {("w1", "conv", 1), ("b1", "conv", 2), ("half", "mul", 1),
                    ("shape", "reshape", 1), ("w2", "gemm", 1), ("b2", "gemm", 2)}  # fmt: skip
    assert produces == {("conv", "c"), ("relu", "r"), ("mul", "m"), ("reshape", "f"),
                        ("gemm", "y")}  # fmt: skip
    assert nxt == {("conv", "relu"), ("relu", "mul"), ("mul", "reshape"), ("reshape", "gemm")}
    assert (act_in, w_in, produces, nxt) == _onnx_edges(onnx.load(str(g.path)))


@pytest.mark.parametrize("case", ["cnn", "transformer_encoder", "constant_node_weights"])
def test_edges_match_the_onnx_graph_of_exported_models(
    built_models: dict[str, Built], case: str, tmp_path: Path
) -> None:
    model = onnx.load(str(built_models[case].path))
    for i, n in enumerate(model.graph.node):  # unique names to join the two sides on
        n.name = f"{i}:{n.name}"
    path = tmp_path / "named.onnx"
    onnx.save(model, str(path))
    g = G.load(path)
    assert _hetero_edges(g, g.to_hetero_data()) == _onnx_edges(model)


def test_layout_and_counts(built_models: dict[str, Built]) -> None:
    g = G.load(built_models["cnn"].path)
    d = g.to_hetero_data()
    n_ops = g.num_nodes - g.op_type_histogram.get("Constant", 0)
    assert d.layout_version == HETERO_LAYOUT_VERSION
    assert d["op"].x.shape == (n_ops, len(OP_FEATURES))
    assert d["op"].op_type.shape == (n_ops,)
    n_w = int((g.tensor_kind == 1).sum())
    assert d["weight"].x.shape == (n_w, len(WEIGHT_FEATURES))
    assert d["act"].x.shape == (len(g.tensor_names) - n_w, len(ACT_FEATURES))
    assert d.graph_features.shape == (1, len(G.GRAPH_FEATURE_NAMES))
    assert torch.isfinite(d["op"].x).all() and torch.isfinite(d["act"].x).all()


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
