"""ONNX -> torch conversion (graphrec-onnx2torch): every rule against onnxruntime, typed
failures, and the harness rows a bare ONNX file gets from the torch-sourced runtimes."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from graphrec.runtimes.convert import (
    GRAPHREC_CONVERTER,
    SUPPORTED_OPS,
    ConversionError,
    ConversionMismatchError,
    check_conversion,
    conversion_source,
    has_torch_route,
    is_conversion,
    onnx_torch_module,
)
from graphrec.runtimes.inputs import make_inputs, model_spec

F = TensorProto.FLOAT
I64 = TensorProto.INT64


def _save(
    path: Path,
    nodes: list[Any],
    inputs: list[Any],
    outputs: list[Any],
    inits: list[Any],
    opset: int = 17,
) -> Path:
    graph = helper.make_graph(nodes, path.stem, inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _w(name: str, shape: tuple[int, ...], seed: int = 0) -> Any:
    rng = np.random.default_rng(seed)
    return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32) * 0.3, name)


def _i(name: str, values: list[int]) -> Any:
    return numpy_helper.from_array(np.array(values, dtype=np.int64), name)


def _vi(name: str, shape: list[int], dtype: int = F) -> Any:
    return helper.make_tensor_value_info(name, dtype, shape)


# One small graph per family of rules: (name, nodes, inputs, outputs, initializers, opset).
CASES: list[tuple[str, list[Any], list[Any], list[Any], list[Any], int]] = [
    (
        "conv_asym_pool",
        [
            helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[0, 1, 1, 0], strides=[2, 1]),
            helper.make_node(
                "MaxPool", ["c"], ["m"], kernel_shape=[3, 3], pads=[1, 0, 0, 1], strides=[2, 2]
            ),
            helper.make_node("AveragePool", ["m"], ["a"], kernel_shape=[2, 2], ceil_mode=1),
            helper.make_node("GlobalAveragePool", ["a"], ["y"]),
        ],
        [_vi("x", [1, 3, 11, 9])],
        [_vi("y", [1, 4, 1, 1])],
        [_w("w", (4, 3, 3, 3)), _w("b", (4,), 1)],
        17,
    ),
    (
        "conv_same_group_transpose",
        [
            helper.make_node(
                "Conv", ["x", "w"], ["c"], auto_pad="SAME_UPPER", group=2, strides=[2, 2]
            ),
            helper.make_node(
                "ConvTranspose",
                ["c", "wt"],
                ["t"],
                strides=[2, 2],
                pads=[1, 1, 1, 1],
                output_padding=[1, 1],
            ),
            helper.make_node("BatchNormalization", ["t", "s", "bb", "mu", "var"], ["y"]),
        ],
        [_vi("x", [1, 4, 8, 8])],
        [_vi("y", [1, 3, 8, 8])],
        [
            _w("w", (6, 2, 3, 3)),
            _w("wt", (6, 3, 3, 3), 2),
            _w("s", (3,), 3),
            _w("bb", (3,), 4),
            _w("mu", (3,), 5),
            numpy_helper.from_array(np.array([1.0, 0.5, 2.0], np.float32), "var"),
        ],
        17,
    ),
    (
        "shape_arith_reshape",
        [
            helper.make_node("Shape", ["x"], ["s"]),
            helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
            helper.make_node("Unsqueeze", ["n", "zero1"], ["n1"]),
            helper.make_node("Concat", ["n1", "minus1"], ["shape"], axis=0),
            helper.make_node("Reshape", ["x", "shape"], ["r"]),
            helper.make_node("Gemm", ["r", "w", "b"], ["g"], transB=1),
            helper.make_node("Softmax", ["g"], ["y"], axis=1),
        ],
        [_vi("x", [2, 3, 4])],
        [_vi("y", [2, 5])],
        [
            numpy_helper.from_array(np.array(0, np.int64), "zero"),
            _i("zero1", [0]),
            _i("minus1", [-1]),
            _w("w", (5, 12)),
            _w("b", (5,), 1),
        ],
        13,
    ),
    (
        "slice_split_pad_tile",
        [
            helper.make_node("Slice", ["x", "st", "en", "ax", "sp"], ["s"]),
            helper.make_node("Split", ["s", "split"], ["a", "b"], axis=1),
            helper.make_node("Pad", ["a", "pads"], ["p"], mode="reflect"),
            helper.make_node("Tile", ["b", "reps"], ["t"]),
            helper.make_node("Concat", ["p", "t"], ["y"], axis=1),
        ],
        [_vi("x", [1, 6, 5])],
        [_vi("y", [1, 3, 10])],
        [
            _i("st", [-1, 0]),
            _i("en", [-100, 100]),
            _i("ax", [1, 2]),
            _i("sp", [-2, 1]),
            _i("split", [1, 2]),
            _i("pads", [0, 0, 2, 0, 0, 3]),
            _i("reps", [1, 1, 2]),
        ],
        17,
    ),
    (
        "layernorm_matmul_gelu",
        [
            helper.make_node("LayerNormalization", ["x", "g", "be"], ["l"], axis=-1),
            helper.make_node("MatMul", ["l", "w"], ["m"]),
            helper.make_node("Div", ["m", "sq2"], ["d"]),
            helper.make_node("Erf", ["d"], ["e"]),
            helper.make_node("Add", ["e", "one"], ["e1"]),
            helper.make_node("Mul", ["m", "e1"], ["h"]),
            helper.make_node("Transpose", ["h"], ["tr"], perm=[0, 2, 1]),
            helper.make_node("ReduceMean", ["tr"], ["y"], axes=[2], keepdims=0),
        ],
        [_vi("x", [1, 7, 8])],
        [_vi("y", [1, 6])],
        [
            _w("g", (8,)),
            _w("be", (8,), 1),
            _w("w", (8, 6), 2),
            numpy_helper.from_array(np.array(1.4142135, np.float32), "sq2"),
            numpy_helper.from_array(np.array(1.0, np.float32), "one"),
        ],
        17,
    ),
    (
        # YOLO-style heads: a grid from a shape, through a scalar Gather and a float Cast
        "shape_gather_cast_range",
        [
            helper.make_node("Shape", ["x"], ["s"]),
            helper.make_node("Gather", ["s", "one_i"], ["n"], axis=0),
            helper.make_node("Cast", ["n"], ["nf"], to=TensorProto.FLOAT),
            helper.make_node("Range", ["zero_f", "nf", "one_f"], ["grid"]),
            helper.make_node("Add", ["x", "grid"], ["y"]),
        ],
        [_vi("x", [2, 5])],
        [_vi("y", [2, 5])],
        [
            numpy_helper.from_array(np.array(1, np.int64), "one_i"),
            numpy_helper.from_array(np.array(0.0, np.float32), "zero_f"),
            numpy_helper.from_array(np.array(1.0, np.float32), "one_f"),
        ],
        17,
    ),
    (
        # a Clip bound computed at run time beside a constant one (torch.clamp takes two
        # numbers or two tensors)
        "clip_runtime_bound",
        [
            helper.make_node("ReduceMean", ["x"], ["m0"], keepdims=0),
            helper.make_node("Unsqueeze", ["m0", "ax0"], ["m"]),  # shape (1,), as exported
            helper.make_node("Clip", ["x", "m", "hi"], ["y"]),
        ],
        [_vi("x", [2, 6])],
        [_vi("y", [2, 6])],
        [numpy_helper.from_array(np.array(0.8, np.float32), "hi"), _i("ax0", [0])],
        17,
    ),
    (
        "resize_clip_where",
        [
            helper.make_node(
                "Resize",
                ["x", "", "scales"],
                ["r"],
                mode="nearest",
                coordinate_transformation_mode="asymmetric",
                nearest_mode="floor",
            ),
            helper.make_node("Resize", ["x", "", "", "sizes"], ["rl"], mode="linear"),
            helper.make_node("Clip", ["r", "lo", "hi"], ["c"]),
            helper.make_node("HardSigmoid", ["rl"], ["hs"], alpha=0.25),
            helper.make_node("Greater", ["c", "lo"], ["gt"]),
            helper.make_node("Where", ["gt", "c", "hs"], ["y"]),
        ],
        [_vi("x", [1, 2, 3, 4])],
        [_vi("y", [1, 2, 6, 8])],
        [
            numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales"),
            _i("sizes", [1, 2, 6, 8]),
            numpy_helper.from_array(np.array(-0.5, np.float32), "lo"),
            numpy_helper.from_array(np.array(0.7, np.float32), "hi"),
        ],
        17,
    ),
    (
        "gather_embed_expand",
        [
            helper.make_node("Gather", ["emb", "ids"], ["e"], axis=0),
            helper.make_node(
                "ConstantOfShape", ["shp"], ["ones"], value=helper.make_tensor("v", F, [1], [1.0])
            ),
            helper.make_node("Expand", ["bias", "shp"], ["bx"]),
            helper.make_node("Mul", ["bx", "ones"], ["bo"]),
            helper.make_node("Add", ["e", "bo"], ["y"]),
        ],
        [_vi("ids", [1, 5], I64)],
        [_vi("y", [1, 5, 4])],
        [_w("emb", (10, 4)), _w("bias", (4,), 1), _i("shp", [1, 5, 4])],
        17,
    ),
]


CASES += [
    (
        # a reduction to a 0-d tensor times a 0-d constant stays 0-d (it became shape (1,))
        "scalar_reduce_mul",
        [
            helper.make_node("ReduceMax", ["x"], ["m"], keepdims=0),
            helper.make_node("Mul", ["m", "c"], ["y"]),
        ],
        [_vi("x", [2, 3])],
        [_vi("y", [])],
        [numpy_helper.from_array(np.array(0.5, dtype=np.float32), "c")],
        17,
    ),
    (
        "lstm_bidirectional",
        [
            helper.make_node(
                "LSTM",
                ["x", "w", "r", "b"],
                ["y", "yh", "yc"],
                direction="bidirectional",
                hidden_size=3,
            )
        ],
        [_vi("x", [5, 2, 4])],
        [_vi("y", [5, 2, 2, 3]), _vi("yh", [2, 2, 3]), _vi("yc", [2, 2, 3])],
        [_w("w", (2, 12, 4)), _w("r", (2, 12, 3), 1), _w("b", (2, 24), 2)],
        17,
    ),
    (
        "gru_linear_before_reset",
        [
            helper.make_node(
                "GRU",
                ["x", "w", "r", "b", "", "h0"],
                ["y", "yh"],
                hidden_size=3,
                linear_before_reset=1,
            ),
            helper.make_node(
                "GRU", ["x", "w", "r", "b"], ["y2"], hidden_size=3, direction="reverse"
            ),
        ],
        [_vi("x", [4, 1, 5])],
        [_vi("y", [4, 1, 1, 3]), _vi("yh", [1, 1, 3]), _vi("y2", [4, 1, 1, 3])],
        [_w("w", (1, 9, 5)), _w("r", (1, 9, 3), 1), _w("b", (1, 18), 2), _w("h0", (1, 1, 3), 3)],
        17,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_rules_match_onnxruntime(case: tuple[Any, ...], tmp_path: Path) -> None:
    name, nodes, ins, outs, inits, opset = case
    path = _save(tmp_path / f"{name}.onnx", nodes, ins, outs, inits, opset)
    spec = model_spec(path)
    assert is_conversion(spec.torch_source)
    module = onnx_torch_module(str(path))
    check_conversion(module, spec)  # raises on any disagreement with onnxruntime
    # the check compares flattened values; the shapes must match too
    import onnxruntime as ort
    import torch

    from graphrec.runtimes._torch_common import flatten_outputs

    inputs = make_inputs(spec, seed=0)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ref = sess.run(None, dict(zip(spec.input_names, inputs, strict=True)))
    with torch.inference_mode():
        got = flatten_outputs(module(*(torch.from_numpy(a.copy()) for a in inputs)))
    assert [tuple(g.shape) for g in got] == [r.shape for r in ref]


def test_converted_module_exports(tmp_path: Path) -> None:
    """The module ``torch.export`` sees (ExecuTorch's and litert-torch's input) is static."""
    import torch

    _name, nodes, ins, outs, inits, opset = CASES[2]
    path = _save(tmp_path / "m.onnx", nodes, ins, outs, inits, opset)
    spec = model_spec(path)
    module = onnx_torch_module(str(path))
    args = tuple(torch.from_numpy(a) for a in make_inputs(spec))
    exported = torch.export.export(module, args)
    np.testing.assert_allclose(
        exported.module()(*args).numpy(), module(*args).numpy(), rtol=1e-6, atol=1e-6
    )


def test_sidecar_wins_over_conversion(cnn_path: Path) -> None:
    spec = model_spec(cnn_path)
    assert spec.torch_source is not None and not is_conversion(spec.torch_source)
    assert has_torch_route(cnn_path)


def test_unsupported_operator_is_a_typed_failure(tmp_path: Path) -> None:
    path = _save(
        tmp_path / "topk.onnx",
        [helper.make_node("TopK", ["x", "k"], ["v", "i"])],
        [_vi("x", [1, 8])],
        [_vi("v", [1, 3]), _vi("i", [1, 3], I64)],
        [_i("k", [3])],
    )
    assert "TopK" not in SUPPORTED_OPS
    assert not has_torch_route(path)
    with pytest.raises(ConversionError, match=rf"{GRAPHREC_CONVERTER}.*TopK"):
        onnx_torch_module(str(path))
    with pytest.raises(ConversionError, match="unknown ONNX -> torch converter"):
        onnx_torch_module(str(path), converter="nope")
    with pytest.raises(ConversionError, match="no such file"):
        onnx_torch_module(str(tmp_path / "missing.onnx"))
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage")
    with pytest.raises(ConversionError, match="not a readable ONNX model"):
        onnx_torch_module(str(bad))


def test_mismatch_names_the_converter(mlp_path: Path, tmp_path: Path) -> None:
    from tiny_models import make_mlp

    other = make_mlp(tmp_path / "other.onnx", seed=1)  # same signature, other weights
    spec = model_spec(mlp_path)
    with pytest.raises(ConversionMismatchError, match=GRAPHREC_CONVERTER):
        check_conversion(onnx_torch_module(str(other)), spec)


def test_harness_rows_for_a_bare_file(cnn_path: Path, mlp_path: Path, tmp_path: Path) -> None:
    """A bare copy of the CNN gets ``ok`` torch rows; a wrong conversion ``wrong_output``
    and an unconvertible model ``convert_failed``, each naming the converter."""
    from tiny_models import make_mlp

    from graphrec.bench.harness import run_campaign
    from graphrec.bench.protocol import MeasureConfig
    from graphrec.bench.store import ResultStore
    from graphrec.device import DeviceProfile

    bare = tmp_path / "bare" / "cnn.onnx"
    bare.parent.mkdir()
    shutil.copy(cnn_path, bare)
    other = make_mlp(tmp_path / "other.onnx", seed=1)
    wrong = replace(model_spec(mlp_path), torch_source=conversion_source(other))
    topk = _save(
        tmp_path / "topk.onnx",
        [helper.make_node("TopK", ["x", "k"], ["v", "i"])],
        [_vi("x", [1, 8])],
        [_vi("v", [1, 3]), _vi("i", [1, 3], I64)],
        [_i("k", [3])],
    )
    config = MeasureConfig(
        warmup_runs=1,
        min_runs=3,
        max_runs=30,
        min_time_s=0.0,
        max_time_s=0.05,
        timeout_s=120.0,
        memory_limit_mb=4096,
    )
    with ResultStore(tmp_path / "r.sqlite") as store:
        run_campaign(
            [model_spec(bare), wrong, model_spec(topk)],
            store=store,
            device=DeviceProfile.detect(probe_gpus=False),
            patterns=["torch/eager/*"],
            threads=(1,),
            config=config,
            cache_dir=tmp_path / "cache",
        )
        rows = {str(r["model_name"] if "model_name" in r else r["name"]): r for r in store.rows()}
    statuses = {k: (r["status"], r.get("error")) for k, r in rows.items()}
    assert statuses["cnn"][0] == "ok", statuses
    assert statuses["mlp"][0] == "wrong_output", statuses
    assert GRAPHREC_CONVERTER in str(statuses["mlp"][1])
    assert statuses["topk"][0] == "convert_failed", statuses
    assert GRAPHREC_CONVERTER in str(statuses["topk"][1])


@pytest.mark.parametrize(
    "name", ["resize_clip_where", "clip_runtime_bound", "shape_gather_cast_range"]
)
def test_conversions_that_torch_export_takes(name: str, tmp_path: Path) -> None:
    """Patterns of real exports that ``torch.export`` (LiteRT's and ExecuTorch's first step)
    used to refuse: Resize's float ``scales`` initializer was a buffer ('.numpy() is not
    supported for tensor subclasses', FPN-style detectors); a Clip with one run-time and
    one constant bound ('clamp() received an invalid combination of arguments')."""
    import torch

    _name, nodes, ins, outs, inits, opset = next(c for c in CASES if c[0] == name)
    path = _save(tmp_path / f"{name}.onnx", nodes, ins, outs, inits, opset)
    spec = model_spec(path)
    module = onnx_torch_module(str(path))
    args = tuple(torch.from_numpy(a) for a in make_inputs(spec))
    exported = torch.export.export(module, args)
    np.testing.assert_allclose(
        exported.module()(*args).numpy(), module(*args).numpy(), rtol=1e-6, atol=1e-6
    )
