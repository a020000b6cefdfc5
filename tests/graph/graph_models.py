"""Models for the graph tests, built in the tests themselves (torch exports and onnx.helper graphs).

Each builder returns ``(path, expected)`` where ``expected`` holds counts computed
independently of graphrec: torch's ``FlopCounterMode`` for convolutions and matrix
products, closed-form formulas for recurrent and control-flow models, and the onnx
Python package for parameter counts.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


@dataclass
class Built:
    """A model file and what an independent count says about it."""

    path: Path
    macs: float | None  # independent multiply-accumulate count (None: not checked)
    params: int  # independent parameter count (onnx package)
    torch_params: int | None = None  # torch's own count where the export keeps every weight


def onnx_param_count(model: onnx.ModelProto) -> int:
    """Elements of initializers and Constant tensors, except int64/bool/string (graphrec's rule)."""
    skip = {TensorProto.INT64, TensorProto.BOOL, TensorProto.STRING}

    def graph_count(g: onnx.GraphProto) -> int:
        n = sum(int(np.prod(t.dims)) for t in g.initializer if t.data_type not in skip)
        for node in g.node:
            for a in node.attribute:
                if node.op_type == "Constant" and a.name == "value" and a.t.data_type not in skip:
                    n += int(np.prod(a.t.dims))
                elif node.op_type == "Constant" and a.name in ("value_float",):
                    n += 1
                elif node.op_type == "Constant" and a.name in ("value_floats",):
                    n += len(a.floats)
                if a.type == onnx.AttributeProto.GRAPH:
                    n += graph_count(a.g)
        return n

    return graph_count(model.graph)


def torch_macs(module: nn.Module, *inputs: torch.Tensor) -> float:
    """MACs from torch's FlopCounterMode (it reports 2 FLOPs per multiply-accumulate)."""
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        module(*inputs)
    return fc.get_total_flops() / 2


def export(module: nn.Module, inputs: tuple[torch.Tensor, ...], path: Path, **kw: object) -> Path:
    """Legacy exporter, opset 17, weights inside the file."""
    module.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, inputs, str(path), dynamo=False, opset_version=17, **kw)  # type: ignore[arg-type]
    return path


class SmallCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 16, 3, stride=2, padding=1)
        self.c2 = nn.Conv2d(16, 32, 5, padding=2, bias=False)
        self.c3 = nn.Conv2d(32, 32, 3, padding=2, dilation=2)
        self.fc = nn.Linear(32 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.c1(x))
        x = nn.functional.max_pool2d(torch.relu(self.c2(x)), 2)
        x = nn.functional.avg_pool2d(torch.relu(self.c3(x)), 2, ceil_mode=True)
        return self.fc(torch.flatten(x, 1))


class DepthwiseCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 24, 3, 2, 1, bias=False)
        self.dw = nn.Conv2d(24, 24, 3, 1, 1, groups=24, bias=False)
        self.pw = nn.Conv2d(24, 48, 1)
        self.dw2 = nn.Conv2d(48, 48, 5, 2, 2, groups=48)
        self.grp = nn.Conv2d(48, 64, 3, 1, 1, groups=4)
        self.up = nn.ConvTranspose2d(64, 16, 4, stride=2, padding=1)
        self.bn = nn.BatchNorm2d(48)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.relu6(self.stem(x))
        x = nn.functional.hardswish(self.pw(self.dw(x)))
        x = self.grp(torch.sigmoid(self.bn(self.dw2(x))))
        return self.up(x)


class Encoder(nn.Module):
    """A transformer encoder block written with explicit matmuls."""

    def __init__(self, d: int = 64, heads: int = 4, ff: int = 128) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln1 = nn.LayerNorm(d)
        self.ln2 = nn.LayerNorm(d)
        self.ff1 = nn.Linear(d, ff)
        self.ff2 = nn.Linear(ff, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).chunk(3, dim=-1)
        h = self.heads

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(b, s, h, d // h).transpose(1, 2)

        q, k, v = split(q), split(k), split(v)
        att = torch.softmax(q @ k.transpose(-1, -2) / (d // h) ** 0.5, dim=-1)
        y = (att @ v).transpose(1, 2).reshape(b, s, d)
        x = x + self.proj(y)
        return x + self.ff2(nn.functional.gelu(self.ff1(self.ln2(x))))


class Mlp(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 8)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class TinyUNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.d1 = nn.Conv2d(1, 8, 3, padding=1)
        self.d2 = nn.Conv2d(8, 16, 3, padding=1)
        self.u = nn.ConvTranspose2d(16, 8, 2, stride=2)
        self.o = nn.Conv2d(16, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = torch.relu(self.d1(x))
        b = torch.relu(self.d2(nn.functional.max_pool2d(a, 2)))
        up = nn.functional.interpolate(b, scale_factor=2.0, mode="nearest")
        return self.o(torch.cat([a, self.u(b) + up[:, :8]], dim=1))


def _count_from(path: Path) -> int:
    return onnx_param_count(onnx.load(str(path)))


def _torch_case(
    name: str,
    factory: Callable[[], nn.Module],
    *shape: int,
    keep_all_params: bool = False,
    **kw: object,
) -> Callable[[Path], Built]:
    def build(d: Path) -> Built:
        torch.manual_seed(0)
        m = factory().eval()
        x = torch.randn(*shape)
        p = export(m, (x,), d / f"{name}.onnx", **kw)
        tp = sum(q.numel() for q in m.parameters()) if keep_all_params else None
        return Built(p, torch_macs(m, x), _count_from(p), tp)

    return build


def _lstm(d: Path) -> Built:
    torch.manual_seed(0)
    seq, batch, inp, hid = 12, 2, 20, 32
    m = nn.LSTM(inp, hid, num_layers=2).eval()
    p = export(m, (torch.randn(seq, batch, inp),), d / "lstm.onnx")
    macs = seq * batch * 4 * hid * (inp + hid) + seq * batch * 4 * hid * (hid + hid)
    return Built(p, float(macs), _count_from(p))


def _gru(d: Path) -> Built:
    torch.manual_seed(0)
    seq, batch, inp, hid = 10, 3, 16, 24
    m = nn.GRU(inp, hid, bidirectional=True, batch_first=True).eval()
    p = export(m, (torch.randn(batch, seq, inp),), d / "gru.onnx")
    macs = 2 * seq * batch * 3 * hid * (inp + hid)
    return Built(p, float(macs), _count_from(p))


def _quantized(d: Path) -> Built:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    src = _torch_case("mlp_for_q", Mlp, 4, 32)(d)
    out = d / "mlp_int8.onnx"
    quantize_dynamic(str(src.path), str(out), weight_type=QuantType.QInt8)
    return Built(out, src.macs, _count_from(out))


def _quantized_conv(d: Path) -> Built:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        quantize_static,
    )

    src = _torch_case("cnn_for_q", SmallCNN, 1, 3, 32, 32, input_names=["x"])(d)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            rng = np.random.default_rng(0)
            self.items = iter(
                [{"x": rng.standard_normal((1, 3, 32, 32)).astype(np.float32)} for _ in range(2)]
            )

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.items, None)

    out = d / "cnn_qlinear.onnx"
    quantize_static(str(src.path), str(out), Reader(), quant_format=QuantFormat.QOperator)
    return Built(out, src.macs, _count_from(out))


def _if_model(d: Path) -> Built:
    """If whose branches run matmuls of different sizes; the condition is a runtime input."""
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.standard_normal((16, 32)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.standard_normal((16, 8)).astype(np.float32), "w2")
    then_g = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w1"], ["t"]),
            helper.make_node("ReduceSum", ["t"], ["y_then"], keepdims=1),
        ],
        "then",
        [],
        [helper.make_tensor_value_info("y_then", TensorProto.FLOAT, [1, 1])],
        [w1],
    )
    else_g = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w2"], ["e"]),
            helper.make_node("ReduceSum", ["e"], ["y_else"], keepdims=1),
        ],
        "else",
        [],
        [helper.make_tensor_value_info("y_else", TensorProto.FLOAT, [1, 1])],
        [w2],
    )
    g = helper.make_graph(
        [helper.make_node("If", ["cond"], ["y"], then_branch=then_g, else_branch=else_g)],
        "if_model",
        [
            helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1])],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(m)
    p = d / "if_model.onnx"
    onnx.save(m, str(p))
    # batch resolves to 1: the dearer branch is 1*16*32 MACs.
    return Built(p, 16.0 * 32, 16 * 32 + 16 * 8)


def _loop_model(d: Path) -> Built:
    """Loop with a constant trip count of 5 around a 1x24 @ 24x24 matmul."""
    rng = np.random.default_rng(1)
    w = numpy_helper.from_array(rng.standard_normal((24, 24)).astype(np.float32), "w")
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("MatMul", ["h_in", "w"], ["mm"]),
            helper.make_node("Tanh", ["mm"], ["h_out"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("h_in", TensorProto.FLOAT, [1, 24]),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("h_out", TensorProto.FLOAT, [1, 24]),
        ],
    )
    g = helper.make_graph(
        [
            helper.make_node(
                "Constant",
                [],
                ["trips"],
                value=numpy_helper.from_array(np.array(5, dtype=np.int64)),
            ),
            helper.make_node("Constant", [], ["go"], value=numpy_helper.from_array(np.array(True))),
            helper.make_node("Loop", ["trips", "go", "h0"], ["h"], body=body),
        ],
        "loop_model",
        [helper.make_tensor_value_info("h0", TensorProto.FLOAT, [1, 24])],
        [helper.make_tensor_value_info("h", TensorProto.FLOAT, [1, 24])],
        [w],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(m)
    p = d / "loop_model.onnx"
    onnx.save(m, str(p))
    return Built(p, 5.0 * 24 * 24, 24 * 24)


def _function_model(d: Path) -> Built:
    """A model-local function (MatMul + Relu) called twice."""
    fn = helper.make_function(
        "local",
        "Dense",
        ["x", "w"],
        ["y"],
        [helper.make_node("MatMul", ["x", "w"], ["t"]), helper.make_node("Relu", ["t"], ["y"])],
        opset_imports=[helper.make_opsetid("", 17)],
    )
    rng = np.random.default_rng(2)
    w1 = numpy_helper.from_array(rng.standard_normal((8, 16)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.standard_normal((16, 4)).astype(np.float32), "w2")
    g = helper.make_graph(
        [
            helper.make_node("Dense", ["x", "w1"], ["h"], domain="local"),
            helper.make_node("Dense", ["h", "w2"], ["y"], domain="local"),
        ],
        "fn_model",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 4])],
        [w1, w2],
    )
    m = helper.make_model(
        g,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("local", 1)],
        functions=[fn],
    )
    onnx.checker.check_model(m)
    p = d / "fn_model.onnx"
    onnx.save(m, str(p))
    return Built(p, 3.0 * 8 * 16 + 3 * 16 * 4, 8 * 16 + 16 * 4)


def to_constant_nodes(model: onnx.ModelProto) -> onnx.ModelProto:
    """Move every initializer into a Constant node, as several real exporters do."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    consts = [helper.make_node("Constant", [], [t.name], value=t) for t in m.graph.initializer]
    init_names = {t.name for t in m.graph.initializer}
    keep_inputs = [i for i in m.graph.input if i.name not in init_names]
    del m.graph.initializer[:]
    del m.graph.input[:]
    m.graph.input.extend(keep_inputs)
    nodes = list(m.graph.node)
    del m.graph.node[:]
    m.graph.node.extend(consts + nodes)
    return m


def _constant_weights(d: Path) -> Built:
    src = _torch_case("cnn_src", SmallCNN, 1, 3, 32, 32)(d)
    m = to_constant_nodes(onnx.load(str(src.path)))
    onnx.checker.check_model(m)
    p = d / "cnn_constant_weights.onnx"
    onnx.save(m, str(p))
    return Built(p, src.macs, onnx_param_count(m), sum(q.numel() for q in SmallCNN().parameters()))


def _external(d: Path) -> Built:
    src = _torch_case("enc_src", Encoder, 2, 16, 64)(d)
    m = onnx.load(str(src.path))
    sub = d / "external"
    sub.mkdir(exist_ok=True)
    p = sub / "encoder_ext.onnx"
    onnx.save_model(
        m,
        str(p),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="encoder_ext.onnx.data",
        size_threshold=0,
    )
    return Built(p, src.macs, src.params)


def _dynamo_cnn(d: Path) -> Built:
    torch.manual_seed(0)
    m = SmallCNN().eval()
    x = torch.randn(1, 3, 32, 32)
    p = d / "cnn_dynamo.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(m, (x,), str(p), dynamo=True, external_data=False)
    return Built(p, torch_macs(m, x), _count_from(p), sum(q.numel() for q in m.parameters()))


CASES: dict[str, Callable[[Path], Built]] = {
    "cnn": _torch_case(
        "cnn",
        SmallCNN,
        1,
        3,
        32,
        32,
        keep_all_params=True,
        input_names=["x"],
        dynamic_axes={"x": {0: "batch"}},
    ),
    "depthwise_cnn": _torch_case("dw", DepthwiseCNN, 1, 3, 64, 64),
    # (the exporter merges the identical LayerNorm initializers, so torch's count is not comparable)
    "transformer_encoder": _torch_case("enc", Encoder, 2, 16, 64),
    "mlp": _torch_case("mlp", Mlp, 4, 32, keep_all_params=True),
    "unet": _torch_case("unet", TinyUNet, 1, 1, 32, 32, keep_all_params=True),
    "lstm": _lstm,
    "gru": _gru,
    "quantized_dynamic": _quantized,
    "quantized_qlinear": _quantized_conv,
    "if_subgraph": _if_model,
    "loop": _loop_model,
    "local_function": _function_model,
    "constant_node_weights": _constant_weights,
    "external_data": _external,
    "dynamo_opset18": _dynamo_cnn,
}
