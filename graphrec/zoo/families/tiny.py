"""Tiny overhead-dominated models: a few Gemms over a feature vector (10-100 µs a call).

Such models (tabular classifiers, wake-word and anomaly heads, file-type detectors'
last stages) run so briefly that a runtime's per-call overhead, not its kernels, decides
which one wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from graphrec.zoo._spec import Family, InputSpec, ParamSampler
from graphrec.zoo.families import _rewrite

_ACTS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
}


class _TinyMLP(nn.Module):
    def __init__(self, p: Mapping[str, Any]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        if p["input_norm"]:
            layers.append(nn.LayerNorm(int(p["features"])))
        cin = int(p["features"])
        for width in p["widths"]:
            layers += [nn.Linear(cin, int(width)), _ACTS[str(p["act"])]()]
            cin = int(width)
        if p["kind"] == "autoencoder":  # reconstruct the input (anomaly scoring)
            layers.append(nn.Linear(cin, int(p["features"])))
        else:
            layers.append(nn.Linear(cin, int(p["classes"])))
        self.body = nn.Sequential(*layers)
        self.head = str(p["head"]) if p["kind"] == "classifier" else "none"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        if self.head == "softmax":
            return torch.softmax(y, -1)
        if self.head == "sigmoid":
            return torch.sigmoid(y)
        return y


def _tiny_sample(s: ParamSampler) -> None:
    s.choice("batch", [1, 2, 8, 32], p=[0.6, 0.15, 0.15, 0.1])
    s.choice("features", [8, 16, 32, 64, 128])
    kind = s.choice("kind", ["classifier", "autoencoder"], p=[0.75, 0.25])
    depth = s.integer("depth", 1, 4)
    if kind == "autoencoder":
        base = s.choice("bottleneck", [4, 8, 16])
        s.set("widths", [base * 2 ** abs(depth // 2 - i) for i in range(depth)])
    else:
        s.choices("widths", [16, 32, 64, 128, 256], depth)
    s.choice("act", ["relu", "tanh", "sigmoid", "gelu"])
    s.choice("input_norm", [False, True])
    s.choice("classes", [2, 5, 10, 100])
    s.choice("head", ["none", "softmax", "sigmoid"])
    s.choice("dynamic_batch", [False, True])


def _tiny_inputs(p: Mapping[str, Any]) -> list[InputSpec]:
    return [InputSpec("input", (int(p["batch"]), int(p["features"])))]


def _tiny_rewrite(data: bytes, p: Mapping[str, Any]) -> bytes:
    if not p["dynamic_batch"]:
        return data
    return _rewrite.apply(data, dynamic={"input": {0: "N"}})


TINY_MLP = Family(
    "tiny_mlp",
    "Tiny MLPs (1-4 Gemms, classifier or autoencoder): per-call overhead decides the winner",
    "tabular",
    _tiny_sample,
    _TinyMLP,
    _tiny_inputs,
    int8="dynamic",
    tags=("overhead-bound",),
    rewrite=_tiny_rewrite,
)
