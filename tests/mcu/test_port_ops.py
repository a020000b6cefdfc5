"""Single-operator checks of the generated C over attribute variants.

Float mode is compiled with the host gcc and must match onnxruntime within 1e-5; the
fixed-point build of the same model must equal the Python model of its arithmetic byte
for byte.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mcu_helpers import rnd, save_model
from onnx import helper

from graphrec.mcu import port, run_port

R = np.random.default_rng(7)


def _conv(
    cin: int, cout: int, k: tuple[int, ...], x_sp: tuple[int, ...], bias: bool = True, **attrs: Any
) -> tuple[list[Any], tuple[int, ...], dict[str, np.ndarray]]:
    g = int(attrs.get("group", 1))
    inits = {"w": rnd(R, cout, cin // g, *k)}
    ins = ["x", "w"]
    if bias:
        inits["b"] = rnd(R, cout, scale=0.2)
        ins.append("b")
    return [helper.make_node("Conv", ins, ["y"], **attrs)], (1, cin, *x_sp), inits


def _single(
    op: str, x: tuple[int, ...], **attrs: Any
) -> tuple[list[Any], tuple[int, ...], dict[str, np.ndarray]]:
    return [helper.make_node(op, ["x"], ["y"], **attrs)], x, {}


def _bn(c: int, x: tuple[int, ...]) -> tuple[list[Any], tuple[int, ...], dict[str, np.ndarray]]:
    inits = {
        "s": (1 + rnd(R, c, scale=0.2)),
        "b": rnd(R, c, scale=0.2),
        "m": rnd(R, c, scale=0.2),
        "v": (1 + np.abs(rnd(R, c, scale=0.3))).astype(np.float32),
    }
    return [helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"])], x, inits


def _gemm(
    k: int, n: int, trans_b: int, c: str | None, **attrs: Any
) -> tuple[list[Any], tuple[int, ...], dict[str, np.ndarray]]:
    inits = {"w": rnd(R, *((n, k) if trans_b else (k, n)))}
    ins = ["x", "w"]
    if c == "vector":
        inits["c"] = rnd(R, n, scale=0.2)
        ins.append("c")
    elif c == "scalar":
        inits["c"] = np.array(0.3, dtype=np.float32)
        ins.append("c")
    return [helper.make_node("Gemm", ins, ["y"], transB=trans_b, **attrs)], (1, k), inits


def _gemm_bn() -> tuple[list[Any], tuple[int, ...], dict[str, np.ndarray]]:
    nodes, x, inits = _gemm(12, 6, 1, "vector")
    nodes[0].output[0] = "h"
    bn, _, bni = _bn(6, (1, 6))
    bn[0].input[0] = "h"
    return nodes + bn, x, {**inits, **bni}


def _two(op: str) -> tuple[list[Any], tuple[int, ...], dict[str, np.ndarray]]:
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node(op, ["x", "r"], ["y"])]
    return nodes, (1, 3, 4, 4), {}


CASES: dict[str, Any] = {
    "conv2d_3x3": lambda: _conv(2, 3, (3, 3), (6, 6)),
    "conv2d_pads_asym": lambda: _conv(2, 3, (3, 3), (6, 5), pads=[0, 1, 1, 0]),
    "conv2d_stride2": lambda: _conv(2, 4, (3, 3), (7, 7), strides=[2, 2], pads=[1, 1, 1, 1]),
    "conv2d_dilation2": lambda: _conv(2, 3, (3, 3), (8, 8), dilations=[2, 2], pads=[2, 2, 2, 2]),
    "conv2d_group2": lambda: _conv(4, 6, (3, 3), (5, 5), group=2, pads=[1, 1, 1, 1]),
    "conv2d_depthwise": lambda: _conv(4, 4, (3, 3), (6, 6), group=4, strides=[2, 1]),
    "conv2d_same_upper_nobias": lambda: _conv(
        3, 2, (3, 3), (5, 6), bias=False, auto_pad="SAME_UPPER", strides=[2, 2]
    ),
    "conv2d_1x1": lambda: _conv(5, 3, (1, 1), (4, 4)),
    "conv1d": lambda: _conv(2, 3, (3,), (10,), pads=[1, 1]),
    "conv1d_stride_dilation": lambda: _conv(3, 2, (3,), (12,), strides=[2], dilations=[2]),
    "maxpool_2x2": lambda: _single("MaxPool", (1, 3, 6, 6), kernel_shape=[2, 2], strides=[2, 2]),
    "maxpool_3x3_pad": lambda: _single(
        "MaxPool", (1, 2, 7, 7), kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]
    ),
    "maxpool_ceil": lambda: _single(
        "MaxPool", (1, 2, 7, 7), kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1
    ),
    "maxpool_dilation": lambda: _single(
        "MaxPool", (1, 2, 8, 8), kernel_shape=[2, 2], dilations=[2, 2]
    ),
    "maxpool_1d": lambda: _single("MaxPool", (1, 3, 9), kernel_shape=[3], strides=[2]),
    "avgpool_2x2": lambda: _single(
        "AveragePool", (1, 3, 6, 6), kernel_shape=[2, 2], strides=[2, 2]
    ),
    "avgpool_pad_exclude": lambda: _single(
        "AveragePool", (1, 2, 5, 5), kernel_shape=[3, 3], pads=[1, 1, 1, 1]
    ),
    "avgpool_pad_include": lambda: _single(
        "AveragePool", (1, 2, 5, 5), kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=1
    ),
    "avgpool_ceil": lambda: _single(
        "AveragePool", (1, 2, 7, 7), kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1
    ),
    "avgpool_1d": lambda: _single("AveragePool", (1, 2, 8), kernel_shape=[2], strides=[2]),
    "global_avgpool": lambda: _single("GlobalAveragePool", (1, 4, 5, 3)),
    "global_maxpool": lambda: _single("GlobalMaxPool", (1, 4, 5, 3)),
    "gemm_transb": lambda: _gemm(16, 7, 1, "vector"),
    "gemm_notrans_scalar_c": lambda: _gemm(9, 5, 0, "scalar"),
    "gemm_alpha_beta": lambda: _gemm(8, 4, 1, "vector", alpha=0.5, beta=2.0),
    "gemm_no_c": lambda: _gemm(8, 4, 0, None),
    "matmul": lambda: (
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        (1, 10),
        {"w": rnd(R, 10, 6)},
    ),
    "batchnorm_4d": lambda: _bn(3, (1, 3, 4, 4)),
    "batchnorm_folded_into_gemm": _gemm_bn,
    "relu": lambda: _single("Relu", (1, 20)),
    "leakyrelu": lambda: _single("LeakyRelu", (1, 3, 4, 4), alpha=0.2),
    "sigmoid": lambda: _single("Sigmoid", (1, 24)),
    "tanh": lambda: _single("Tanh", (1, 2, 12)),
    "softmax_last": lambda: _single("Softmax", (1, 10), axis=-1),
    "softmax_3d": lambda: _single("Softmax", (1, 3, 5), axis=2),
    "add_two_activations": lambda: _two("Add"),
    "add_constant_per_channel": lambda: (
        [helper.make_node("Add", ["x", "c"], ["y"])],
        (1, 3, 2, 2),
        {"c": rnd(R, 3, 1, 1)},
    ),
    "concat_channels": lambda: (
        [
            helper.make_node("Relu", ["x"], ["r"]),
            helper.make_node("Concat", ["x", "r"], ["y"], axis=1),
        ],
        (1, 2, 3, 3),
        {},
    ),
    "concat_width": lambda: (
        [
            helper.make_node("Sigmoid", ["x"], ["r"]),
            helper.make_node("Concat", ["r", "x"], ["y"], axis=3),
        ],
        (1, 2, 3, 3),
        {},
    ),
    "flatten_gemm": lambda: (
        [
            helper.make_node("Flatten", ["x"], ["f"]),
            helper.make_node("Gemm", ["f", "w"], ["y"], transB=1),
        ],
        (1, 2, 3, 3),
        {"w": rnd(R, 4, 18)},
    ),
    "reshape_softmax": lambda: (
        [
            helper.make_node("Reshape", ["x", "shape"], ["r"]),
            helper.make_node("Softmax", ["r"], ["y"], axis=1),
        ],
        (1, 2, 6),
        {"shape": np.array([1, 12], dtype=np.int64)},
    ),
}


def _build(tmp_path: Path, case: str) -> Path:
    nodes, x_shape, inits = CASES[case]()
    return save_model(tmp_path / f"{case}.onnx", nodes, x_shape, None, inits)


@pytest.mark.parametrize("case", sorted(CASES))
def test_float_matches_onnxruntime_and_fixed_is_bit_exact(tmp_path: Path, case: str) -> None:
    path = _build(tmp_path, case)
    res = port(path, mode="float", out_dir=tmp_path / "float")
    x = np.random.default_rng(3).standard_normal((6, *res.model.input_shape)).astype(np.float32)
    rep = run_port(res, x, opt="-O0")
    assert rep.reference.shape == rep.outputs.shape
    assert rep.max_abs_error <= 1e-5, case
    fixed = port(path, mode="fixed", calibration=x, out_dir=tmp_path / "fixed")
    frep = run_port(fixed, x, reference=rep.reference, opt="-O0")
    assert frep.bit_exact, case
    # the fixed-point result is also close to the float one (8-bit activations)
    scale = float(np.max(np.abs(rep.reference))) + 1e-9
    assert frep.max_abs_error <= 0.15 * scale + 0.05, (case, frep.max_abs_error)


def test_classifiers_on_host_float_and_16_bit_weights(tmp_path: Path) -> None:
    from mcu_helpers import cnn, mlp

    for path in (mlp(tmp_path / "mlp.onnx"), cnn(tmp_path / "cnn.onnx")):
        res = port(path, mode="float", out_dir=tmp_path / f"{path.stem}_f")
        x = np.random.default_rng(5).standard_normal((8, *res.model.input_shape)).astype(np.float32)
        rep = run_port(res, x, opt="-O0")
        assert rep.max_abs_error <= 1e-5
        q16 = port(
            path, mode="fixed", weight_bits=16, calibration=x, out_dir=tmp_path / f"{path.stem}_16"
        )
        r16 = run_port(q16, x, reference=rep.reference, opt="-O0")
        assert r16.bit_exact
        assert "int16_t GR_FLASH" in (q16.out_dir / f"{path.stem}.c").read_text()
