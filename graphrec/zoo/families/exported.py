"""Converter-style families: graphs shaped like Paddle2ONNX and tf2onnx output.

Real third-party ONNX files rarely come from ``torch.onnx.export``. Two common shapes:

* ``paddle_cnn``: PP-LCNet / ESNet-style backbones (depthwise-separable blocks,
  hard-swish, SE, channel shuffle written as Reshape → Transpose → Reshape, flatten as
  Reshape) whose weights sit in ``Constant`` nodes and whose edges carry chains of
  ``Identity`` nodes, optionally with a dynamic batch named like Paddle2ONNX names it.
* ``tf_nhwc_cnn``: NHWC models as tf2onnx leaves them: an NHWC input, a Transpose to
  NCHW before every convolution and pooling and one back after it, TensorFlow ``SAME``
  padding as an explicit asymmetric Pad, elementwise ops and the head in NHWC.

Both compute exactly what their torch module computes (the NHWC permutes are in the
module; the Paddle-style rewrite is done on the ONNX graph and keeps the function), so
their ``.torch.json`` sidecars are valid.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from graphrec.zoo._spec import Family, InputSpec, ParamSampler, make_divisible, sample_batch
from graphrec.zoo.families import _rewrite
from graphrec.zoo.families._layers import ConvBNAct

# --------------------------------------------------------------------------- Paddle-style


class _PaddleSE(nn.Module):
    """SE as PaddleClas writes it: pool → 1x1 conv → ReLU → 1x1 conv → hard-sigmoid."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.conv1 = nn.Conv2d(channels, max(1, channels // 4), 1)
        self.conv2 = nn.Conv2d(max(1, channels // 4), channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = F.hardsigmoid(self.conv2(F.relu(self.conv1(self.pool(x)))))
        return x * g


class _DepthSep(nn.Module):
    """PP-LCNet block: depthwise conv → (SE) → pointwise conv, hard-swish."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, se: bool) -> None:
        super().__init__()
        layers: list[nn.Module] = [ConvBNAct(cin, cin, kernel, stride, cin, "hswish")]
        if se:
            layers.append(_PaddleSE(cin))
        layers.append(ConvBNAct(cin, cout, 1, act_name="hswish"))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class _ShuffleUnit(nn.Module):
    """ESNet stride-1 unit: split, transform one half, concat, channel shuffle by Reshape."""

    def __init__(self, channels: int, kernel: int, se: bool) -> None:
        super().__init__()
        half = channels // 2
        layers: list[nn.Module] = [
            ConvBNAct(half, half, 1, act_name="hswish"),
            ConvBNAct(half, half, kernel, 1, half, None),
        ]
        if se:
            layers.append(_PaddleSE(half))
        layers.append(ConvBNAct(half, half, 1, act_name="hswish"))
        self.branch = nn.Sequential(*layers)
        self.split = half

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = x[:, : self.split], x[:, self.split :]
        y = torch.cat([a, self.branch(b)], 1)
        _, c, h, w = y.shape
        y = y.reshape(-1, 2, c // 2, h, w).transpose(1, 2)
        return y.reshape(-1, c, h, w)


#: PP-LCNet stages: (output channels at scale 1, stride, uses the large kernel).
_LCNET_STAGES = ((32, 1, False), (64, 2, False), (64, 1, False), (128, 2, False))


class _PaddleCNN(nn.Module):
    def __init__(self, p: Mapping[str, Any]) -> None:
        super().__init__()
        scale = float(p["scale"])
        k = int(p["kernel"])
        se = bool(p["se"])

        def ch(c: int) -> int:
            return make_divisible(c * scale)

        layers: list[nn.Module] = [ConvBNAct(3, ch(16), 3, 2, act_name="hswish")]
        cin = ch(16)
        for cout, stride, _ in _LCNET_STAGES:
            layers.append(_DepthSep(cin, ch(cout), 3, stride, False))
            cin = ch(cout)
        layers.append(_DepthSep(cin, ch(256), k, 2, False))
        cin = ch(256)
        for _ in range(int(p["repeats"])):
            if p["blocks"] == "esnet":
                layers.append(_ShuffleUnit(cin, k, se))
            else:
                layers.append(_DepthSep(cin, cin, k, 1, False))
        layers.append(_DepthSep(cin, ch(512), k, 2, se))
        layers.append(_DepthSep(ch(512), ch(512), k, 1, se))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.last = nn.Conv2d(ch(512), int(p["head_dim"]), 1)
        self.head_dim = int(p["head_dim"])
        self.fc = nn.Linear(int(p["head_dim"]), int(p["classes"]))
        self.softmax = p["task"] == "text_cls"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.hardswish(self.last(self.pool(self.features(x))))
        y = self.fc(y.reshape(-1, self.head_dim))
        return F.softmax(y, -1) if self.softmax else y


def _paddle_sample(s: ParamSampler) -> None:
    sample_batch(s)
    task = s.choice("task", ["cls", "text_cls"], p=[0.7, 0.3])
    if task == "text_cls":  # PP-OCR text-direction classifier: 3x48x192, two classes
        s.set("height", 48)
        s.set("width", 192)
        s.set("classes", 2)
    else:
        res = s.choice("resolution", [128, 160, 192, 224])
        s.set("height", res)
        s.set("width", res)
        s.choice("classes", [10, 100, 1000])
    s.choice("scale", [0.25, 0.35, 0.5, 0.75, 1.0])
    s.choice("blocks", ["lcnet", "esnet"])
    s.integer("repeats", 1, 5)
    s.choice("kernel", [3, 5])
    s.choice("se", [False, True])
    s.choice("head_dim", [256, 640, 1280])
    s.choice("identity_share", [0.05, 0.1, 0.2, 0.3])
    s.integer("identity_max", 1, 3)
    s.integer("rewrite_seed", 0, 2**31 - 1)
    s.choice("dynamic_batch", [False, True])


def _paddle_inputs(p: Mapping[str, Any]) -> list[InputSpec]:
    return [InputSpec("x", (int(p["batch"]), 3, int(p["height"]), int(p["width"])))]


def _paddle_rewrite(data: bytes, p: Mapping[str, Any]) -> bytes:
    dynamic = {"x": {0: "p2o.DynamicDimension.0"}} if p["dynamic_batch"] else None
    identity = (int(p["rewrite_seed"]), float(p["identity_share"]), int(p["identity_max"]))
    return _rewrite.apply(data, constants=True, identity=identity, dynamic=dynamic)


PADDLE_CNN = Family(
    "paddle_cnn",
    "Paddle2ONNX-style PP-LCNet/ESNet: weights in Constant nodes, Identity chains, shuffles",
    "vision",
    _paddle_sample,
    _PaddleCNN,
    _paddle_inputs,
    output_names=("save_infer_model/scale_0.tmp_1",),
    int8="static",
    tags=("exporter:paddle2onnx",),
    rewrite=_paddle_rewrite,
)

# --------------------------------------------------------------------------- tf2onnx NHWC


class _NHWCConv(nn.Module):
    """Conv (+bias, BN folded as TF converters do) wrapped in NHWC↔NCHW transposes."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, groups: int, pad: str):
        super().__init__()
        self.asym = pad == "asymmetric" and stride == 2
        padding = 0 if self.asym else kernel // 2
        self.kernel = kernel
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding, groups=groups, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.permute(0, 3, 1, 2)
        if self.asym:  # TensorFlow SAME padding for stride 2: the extra row/column at the end
            lo = (self.kernel - 1) // 2
            hi = self.kernel - 1 - lo
            y = F.pad(y, (lo, hi, lo, hi))
        return self.conv(y).permute(0, 2, 3, 1)


def _nhwc_act(name: str, x: torch.Tensor) -> torch.Tensor:
    return F.relu6(x) if name == "relu6" else F.relu(x)


class _NHWCBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, p: Mapping[str, Any]) -> None:
        super().__init__()
        k = int(p["kernel"])
        pad = str(p["padding"])
        self.act = str(p["act"])
        self.depthwise = p["arch"] == "mobilenet"
        if self.depthwise:
            self.a = _NHWCConv(cin, cin, k, stride, cin, pad)
            self.b = _NHWCConv(cin, cout, 1, 1, 1, pad)
        else:
            self.a = _NHWCConv(cin, cout, k, stride, 1, pad)
            self.b = _NHWCConv(cout, cout, k, 1, 1, pad)
        self.short: nn.Module | None = None
        if not self.depthwise:
            self.short = (
                nn.Identity()
                if stride == 1 and cin == cout
                else _NHWCConv(cin, cout, 1, stride, 1, pad)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.b(_nhwc_act(self.act, self.a(x)))
        if self.short is not None:
            y = y + self.short(x)
        return _nhwc_act(self.act, y)


class _NHWCNet(nn.Module):
    def __init__(self, p: Mapping[str, Any]) -> None:
        super().__init__()
        width = float(p["width"])
        pad = str(p["padding"])
        self.act = str(p["act"])
        c0 = make_divisible(32 * width)
        self.stem = _NHWCConv(3, c0, 3, 2, 1, pad)
        self.pool_stem = p["stem_pool"]
        blocks: list[nn.Module] = []
        cin = c0
        for i, depth in enumerate(p["depths"]):
            cout = make_divisible(64 * width * 2**i)
            for j in range(int(depth)):
                blocks.append(_NHWCBlock(cin, cout, 2 if j == 0 and i > 0 else 1, p))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, int(p["classes"]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = _nhwc_act(self.act, self.stem(x))
        if self.pool_stem:
            y = F.max_pool2d(y.permute(0, 3, 1, 2), 3, 2, 1).permute(0, 2, 3, 1)
        y = self.blocks(y)
        y = y.mean(dim=(1, 2))
        return F.softmax(self.fc(y), -1)


def _nhwc_sample(s: ParamSampler) -> None:
    sample_batch(s)
    s.choice("resolution", [96, 128, 160, 192, 224])
    arch = s.choice("arch", ["mobilenet", "resnet"])
    s.choice("width", [0.25, 0.5, 0.75, 1.0])
    stages = s.integer("stages", 3, 4)
    s.choices("depths", [1, 2, 3] if arch == "resnet" else [1, 2, 4], stages)
    s.choice("kernel", [3, 5])
    s.choice("act", ["relu", "relu6"])
    s.choice("padding", ["asymmetric", "symmetric"])
    s.choice("stem_pool", [False, True])
    s.choice("classes", [10, 100, 1000])


def _nhwc_inputs(p: Mapping[str, Any]) -> list[InputSpec]:
    res = int(p["resolution"])
    return [InputSpec("input_1", (int(p["batch"]), res, res, 3))]


TF_NHWC_CNN = Family(
    "tf_nhwc_cnn",
    "tf2onnx-style NHWC CNNs: Transpose around every conv, SAME padding as Pad, NHWC head",
    "vision",
    _nhwc_sample,
    _NHWCNet,
    _nhwc_inputs,
    output_names=("Identity",),
    int8="static",
    tags=("exporter:tf2onnx",),
)
