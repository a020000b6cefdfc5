"""OperatorGraph: FLOPs, MACs and parameters against independent counts; API contracts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from graph_models import CASES, Built

import graphrec.graph as G
from graphrec.errors import ShapeSpecError


@pytest.mark.parametrize("case", sorted(CASES))
def test_costs_match_independent_counts(case: str, built_models: dict[str, Built]) -> None:
    b = built_models[case]
    g = G.load(b.path)
    if b.macs is not None:
        assert g.total_macs == pytest.approx(b.macs, rel=1e-9), (case, g.total_macs, b.macs)
    assert g.total_params == b.params, (case, g.total_params, b.params)
    if b.torch_params is not None:
        # Exports that keep every torch parameter: graphrec's count covers at least those
        # (plus scalar constants the exporter adds, never more than a handful).
        assert b.torch_params <= g.total_params <= b.torch_params + 64, (
            case,
            g.total_params,
            b.torch_params,
        )
    assert g.total_flops >= 2 * g.total_macs
    assert g.totals["num_unknown_shape_tensors"] == 0, case
    assert not g.unknown_ops


def test_output_shapes_match_onnxruntime(built_models: dict[str, Built]) -> None:
    """Shapes graphrec infers for graph outputs equal what onnxruntime actually returns."""
    rng = np.random.default_rng(0)
    for name in (
        "cnn",
        "depthwise_cnn",
        "transformer_encoder",
        "lstm",
        "gru",
        "unet",
        "loop",
        "local_function",
    ):
        g = G.load(built_models[name].path)
        sess = ort.InferenceSession(str(g.path), providers=["CPUExecutionProvider"])
        feeds = {}
        for spec in g.inputs:
            assert spec.shape is not None
            feeds[spec.name] = rng.standard_normal(spec.shape).astype(np.float32)
        outs = sess.run(None, feeds)
        for spec, value in zip(g.outputs, outs, strict=True):
            assert spec.shape == value.shape, (name, spec.name, spec.shape, value.shape)


def test_constant_weights_and_external_data_change_nothing(
    built_models: dict[str, Built], model_dir: Path
) -> None:
    ext = G.load(built_models["external_data"].path)
    internal = G.load(model_dir / "enc_src.onnx")
    assert ext.total_flops == internal.total_flops
    assert ext.total_params == internal.total_params
    const = G.load(built_models["constant_node_weights"].path)
    plain = G.load(model_dir / "cnn_src.onnx")
    assert const.total_flops == plain.total_flops
    assert const.total_params == plain.total_params
    assert const.op_type_histogram["Constant"] >= 7


def test_batch_size_scales_costs(built_models: dict[str, Built]) -> None:
    path = built_models["cnn"].path
    g1 = G.load(path, batch_size=1)
    g4 = G.load(path, batch_size=4)
    assert g1.inputs[0].shape == (1, 3, 32, 32)
    assert g4.inputs[0].shape == (4, 3, 32, 32)
    assert g4.total_macs == 4 * g1.total_macs
    assert g4.total_params == g1.total_params
    g = G.load(path, input_shapes={"x": [5, 3, 32, 32]})
    assert g.total_macs == 5 * g1.total_macs
    with pytest.raises(ShapeSpecError, match="fixed to 32"):
        G.load(path, input_shapes={"x": [1, 3, 64, 64]})


def test_bad_input_shape_is_a_clear_error(built_models: dict[str, Built]) -> None:
    path = built_models["cnn"].path
    with pytest.raises(ShapeSpecError, match="no model input is named 'nope'"):
        G.load(path, input_shapes={"nope": [1]})
    with pytest.raises(ShapeSpecError, match="rank"):
        G.load(path, input_shapes={"x": [1, 3, 32]})


def test_node_arrays_are_consistent(built_models: dict[str, Built]) -> None:
    g = G.load(built_models["transformer_encoder"].path)
    n = g.num_nodes
    assert g.node_features.shape == (n, len(G.NODE_FEATURE_NAMES))
    assert len(g.op_types) == n == len(g.op_type_ids) == len(g.node_names)
    assert (g.op_type_ids > 0).all()  # every op of this model is in the vocabulary
    assert g.input_ptr[-1] == len(g.input_tensor) and g.output_ptr[-1] == len(g.output_tensor)
    assert float(g.node_features[:, 0].sum()) == pytest.approx(g.totals["flops"])
    assert sum(g.op_type_histogram.values()) == n
    # Topological order: every producer comes before its consumers.
    for v in range(n):
        for t in g.input_tensor[g.input_ptr[v] : g.input_ptr[v + 1]]:
            if t >= 0:
                assert g.tensor_producer[t] < v
    assert g.depth >= 10
    assert g.peak_activation_bytes > 0
    assert g.totals["critical_path_flops"] <= g.totals["flops"]
    assert len(g.graph_features()) == len(G.GRAPH_FEATURE_NAMES)


def test_summary_is_json(built_models: dict[str, Built]) -> None:
    s = G.load(built_models["if_subgraph"].path).summary()
    text = json.dumps(s)
    assert '"If"' in text
    assert s["totals"]["num_nested_nodes"] == 4
    assert s["nested_op_type_histogram"]["MatMul"] == 2


def test_load_bytes_matches_load(built_models: dict[str, Built]) -> None:
    path = built_models["mlp"].path
    a = G.load(path)
    b = G.load_bytes(path.read_bytes(), name="mlp")
    assert a.total_flops == b.total_flops and a.total_params == b.total_params


def test_symbolic_dims_resolve(tmp_path: Path) -> None:
    from onnx import TensorProto, helper

    g = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])],
        "sym",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, ["unk__214", "seq", 16]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, [16, -1]),
        ],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, None)],
    )
    p = tmp_path / "sym.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(p))
    m = G.load(p, batch_size=2, dim_values={"seq": 10})
    assert m.shape_of("a") == (2, 10, 16)
    assert m.shape_of("b") == (16, 128)
    assert m.shape_of("c") == (2, 10, 128)
    assert m.total_macs == 2 * 10 * 16 * 128


def test_torch_pad_pattern_folds_to_constants(tmp_path: Path) -> None:
    """torch exports F.pad as Concat -> Reshape -> Slice(step -1) -> Transpose -> Reshape -> Cast."""
    import torch
    from graph_models import export

    class PadConv(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = torch.nn.functional.pad(x.unsqueeze(1), (128, 64), mode="reflect")
            return torch.nn.functional.conv1d(y, torch.ones(4, 1, 16), stride=8)

    path = export(PadConv(), (torch.randn(1, 576),), tmp_path / "pad.onnx", input_names=["x"])
    g = G.load(path)
    assert "Pad" in g.op_type_histogram
    assert g.totals["num_unknown_shape_tensors"] == 0
    (out,) = g.outputs
    assert (
        out.shape
        == tuple(PadConv()(torch.randn(1, 576)).shape)
        == (1, 4, (576 + 192 - 16) // 8 + 1)
    )
    assert g.total_macs == 4 * 16 * out.shape[-1]


def test_bytes_by_dtype(built_models: dict[str, Built]) -> None:
    q = G.load(built_models["quantized_qlinear"].path)
    f = G.load(built_models["cnn"].path)
    assert set(f.weight_bytes_by_dtype) == {"float32"}
    assert f.weight_bytes_by_dtype["float32"] == f.totals["param_bytes"]
    # QLinearConv weights are int8 (or uint8); biases int32; scales float32.
    assert q.weight_bytes_by_dtype.get("int8", 0) + q.weight_bytes_by_dtype.get("uint8", 0) > 0
    assert "uint8" in q.activation_bytes_by_dtype or "int8" in q.activation_bytes_by_dtype
    assert sum(f.activation_bytes_by_dtype.values()) == f.totals["activation_bytes"]
