"""Tiny models made in the tests: a torch CNN (with a torch-source sidecar) and
onnx.helper graphs. Nothing is downloaded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def build_cnn() -> Any:
    """A 2-conv CNN with a mean-pool head (deterministic weights)."""
    import torch

    class TinyCnn(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c1 = torch.nn.Conv2d(3, 8, 3, padding=1)
            self.c2 = torch.nn.Conv2d(8, 8, 3, padding=1)
            self.fc = torch.nn.Linear(8, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = torch.relu(self.c1(x))
            x = torch.relu(self.c2(x))
            return self.fc(x.mean(dim=(2, 3)))

    torch.manual_seed(0)
    return TinyCnn().eval()


def export_cnn(folder: Path, name: str = "cnn") -> Path:
    """Export :func:`build_cnn` to ``folder/name.onnx`` (opset 17) with its sidecar."""
    import torch

    path = folder / f"{name}.onnx"
    module = build_cnn()
    x = torch.randn(1, 3, 16, 16)
    torch.onnx.export(
        module,
        (x,),
        str(path),
        dynamo=False,
        opset_version=17,
        input_names=["x"],
        output_names=["y"],
    )
    sidecar = {"factory": f"{Path(__file__).resolve()}:build_cnn"}
    path.with_suffix(".torch.json").write_text(json.dumps(sidecar))
    return path


def make_mlp(path: Path, *, dynamic_batch: bool = False, seed: int = 0) -> Path:
    """``y = relu(x @ W1 + b1) @ W2`` on a (1 or N) x 16 input, built with onnx.helper."""
    rng = np.random.default_rng(seed)
    w1 = numpy_helper.from_array(rng.standard_normal((16, 32)).astype(np.float32) * 0.3, "w1")
    b1 = numpy_helper.from_array(rng.standard_normal(32).astype(np.float32) * 0.1, "b1")
    w2 = numpy_helper.from_array(rng.standard_normal((32, 4)).astype(np.float32) * 0.3, "w2")
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h0"]),
        helper.make_node("Add", ["h0", "b1"], ["h1"]),
        helper.make_node("Relu", ["h1"], ["h2"]),
        helper.make_node("MatMul", ["h2", "w2"], ["y"]),
    ]
    batch: int | str = "N" if dynamic_batch else 1
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 4])],
        [w1, b1, w2],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def make_outlier_matmul(path: Path) -> Path:
    """``y = (x + C) @ W - C @ W`` where C has one huge element.

    Mathematically ``y = x @ W``, and fp32 runtimes agree with the reference, but dynamic
    int8 quantisation quantises the activation ``x + C`` with one scale: the outlier
    stretches the range so the real signal rounds away and the output is wrong. (The
    activation-outlier failure of per-tensor int8 quantisation.)
    """
    rng = np.random.default_rng(1)
    w = rng.standard_normal((64, 64)).astype(np.float32)
    c = np.zeros((1, 64), np.float32)
    c[0, 0] = 1000.0
    cw = (c.astype(np.float64) @ w.astype(np.float64)).astype(np.float32)
    inits = [
        numpy_helper.from_array(w, "w"),
        numpy_helper.from_array(c, "c"),
        numpy_helper.from_array(cw, "cw"),
    ]
    nodes = [
        helper.make_node("Add", ["x", "c"], ["xc"]),
        helper.make_node("MatMul", ["xc", "w"], ["m"]),
        helper.make_node("Sub", ["m", "cw"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "outlier",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
