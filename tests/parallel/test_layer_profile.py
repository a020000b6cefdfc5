"""Layer profiles: grouping by module scope, single-tensor cuts, per-sample costs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import graphrec.graph
from graphrec.errors import ModelFormatError, ModelLoadError
from graphrec.parallel.profile import (
    PlanInputError,
    load_profile,
    measure_layer_times,
    profile_graph,
)


def test_layers_are_the_sequential_blocks(tiny_mlp: Path) -> None:
    prof = load_profile(tiny_mlp)
    assert [la.name for la in prof.layers] == ["0", "1", "2", "3"]
    g = graphrec.graph.load(tiny_mlp, batch_size=1)
    assert sum(la.fwd_flops for la in prof.layers) == pytest.approx(g.total_flops)
    # Each block hands a [batch, 64] float tensor to the next; the last hands nothing.
    assert [la.out_bytes for la in prof.layers] == [256.0, 256.0, 256.0, 0.0]
    # Linear(32, 64) + bias in float32.
    assert prof.layers[0].param_bytes == (32 * 64 + 64) * 4


def test_costs_are_per_sample(tiny_mlp: Path) -> None:
    one = profile_graph(graphrec.graph.load(tiny_mlp, batch_size=1))
    eight = profile_graph(graphrec.graph.load(tiny_mlp, batch_size=8))
    for a, b in zip(one.layers, eight.layers, strict=True):
        assert b.fwd_flops == pytest.approx(a.fwd_flops)
        assert b.act_bytes == pytest.approx(a.act_bytes)
        assert b.param_bytes == a.param_bytes


def test_backward_rule(tiny_mlp: Path) -> None:
    prof = load_profile(tiny_mlp)
    first, middle = prof.layers[0], prof.layers[1]
    # The first layer needs no input gradient: its weighted ops count once.
    assert first.bwd_flops < 1.5 * first.fwd_flops
    # Later weighted layers: input and weight gradients, about 2x forward.
    assert middle.bwd_flops == pytest.approx(2 * middle.fwd_flops, rel=0.05)


def _chain_model(path: Path) -> Path:
    """x -> MatMul -> Relu -> MatMul -> Relu -> MatMul, node names without scopes."""
    inits, nodes = [], []
    prev = "x"
    for k in range(3):
        w = f"w{k}"
        inits.append(
            helper.make_tensor(w, TensorProto.FLOAT, [16, 16], np.ones(256, dtype=np.float32))
        )
        nodes.append(helper.make_node("MatMul", [prev, w], [f"m{k}"], name=f"mm{k}"))
        prev = f"m{k}"
        if k < 2:
            nodes.append(helper.make_node("Relu", [prev], [f"r{k}"], name=f"relu{k}"))
            prev = f"r{k}"
    graph = helper.make_graph(
        nodes,
        "chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 16])],
        [helper.make_tensor_value_info(prev, TensorProto.FLOAT, [4, 16])],
        inits,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_unscoped_models_are_cut_where_one_tensor_crosses(tmp_path: Path) -> None:
    path = _chain_model(tmp_path / "chain.onnx")
    prof = load_profile(path)
    assert "single-tensor cuts" in prof.notes[0]
    assert prof.num_layers == 5
    # Costs are per sample: the file's batch of 4 is divided out.
    assert prof.layers[0].fwd_flops == pytest.approx(2 * 16 * 16)
    coarse = load_profile(path, max_layers=2)
    assert coarse.num_layers == 2
    assert sum(la.fwd_flops for la in coarse.layers) == pytest.approx(
        sum(la.fwd_flops for la in prof.layers)
    )


def test_measured_times_grow_with_batch(tiny_cnn: Path) -> None:
    prof = measure_layer_times(load_profile(tiny_cnn), batch_sizes=(2, 16), repeats=2)
    assert prof.time_source == "measured"
    total = [sum(la.time_ms(b) for la in prof.layers) for b in (2, 16)]
    assert 0 < total[0] < total[1]


def test_bad_inputs_are_named(tmp_path: Path) -> None:
    bad = tmp_path / "corrupt.onnx"
    bad.write_bytes(b"\x08\x07garbage that is not a model")
    with pytest.raises(ModelFormatError, match=r"corrupt\.onnx"):
        load_profile(bad)
    with pytest.raises(ModelLoadError, match="no such file"):
        load_profile(tmp_path / "missing.onnx")
    with pytest.raises(PlanInputError, match="zoo:FAMILY:SEED"):
        load_profile("zoo:vit")
    with pytest.raises(PlanInputError, match="no torch source"):
        measure_layer_times(load_profile(_chain_model(tmp_path / "c.onnx")))


def test_measured_points_are_interpolated_not_a_line() -> None:
    from graphrec.parallel.profile import LayerProfile

    la = LayerProfile(
        "l",
        ("l",),
        1.0,
        2.0,
        0.0,
        0.0,
        0.0,
        fwd_ms=(9.0, 9.0),  # ignored once points are given
        fwd_points=((4.0, 2.0), (8.0, 3.0), (16.0, 7.0)),
        bwd_points=((4.0, 4.0), (16.0, 10.0)),
    )
    assert la.fwd_time_ms(8) == pytest.approx(3.0)
    assert la.fwd_time_ms(12) == pytest.approx(5.0)
    # Beyond the points, along the nearest segment (never negative).
    assert la.fwd_time_ms(32) == pytest.approx(15.0)
    assert la.fwd_time_ms(2) == pytest.approx(1.5)
    assert la.fwd_time_ms(0) == pytest.approx(1.0)
    assert la.bwd_time_ms(10) == pytest.approx(7.0)
    # A steep first segment does not make tiny batches cheaper per sample than batch 4.
    steep = LayerProfile("s", ("s",), 1.0, 2.0, 0.0, 0.0, 0.0, fwd_points=((4.0, 1.0), (8.0, 4.0)))
    assert steep.fwd_time_ms(1) == pytest.approx(0.25)


def test_points_cheaper_per_sample_than_a_larger_batch_are_raised() -> None:
    from graphrec.parallel.profile import _per_sample_monotone

    pts = _per_sample_monotone(((4.0, 1.0), (8.0, 4.0), (16.0, 6.0)))
    # 4 -> 8 costs 0.5 ms/sample at 8, so batch 4 takes at least 2 ms; 16 stays.
    assert pts == ((4.0, 2.0), (8.0, 4.0), (16.0, 6.0))


def test_layers_keep_a_point_per_batch_size_and_sum_to_the_whole_module(tiny_cnn: Path) -> None:
    prof = measure_layer_times(load_profile(tiny_cnn), batch_sizes=(2, 4, 8), repeats=2)
    for la in prof.layers:
        assert [b for b, _ in la.fwd_points] == [2.0, 4.0, 8.0]
        assert [b for b, _ in la.bwd_points] == [2.0, 4.0, 8.0]
        assert la.fwd_time_ms(4) == pytest.approx(la.fwd_points[1][1])
    split = measure_layer_times(
        load_profile(tiny_cnn), batch_sizes=(2, 8), repeats=2, whole_model=False
    )
    assert all(la.fwd_time_ms(2) > 0 for la in split.layers)
