"""Mobile CNN families: MobileNetV1/V2/V3, EfficientNet, ShuffleNetV2, GhostNet."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from graphrec.zoo._spec import Family, ParamSampler, image_input, make_divisible, sample_batch
from graphrec.zoo.families._layers import (
    ClassifierHead,
    ConvBNAct,
    InvertedResidual,
    SqueezeExcite,
    act,
)

# --------------------------------------------------------------------------- MobileNetV1

_V1_STAGES = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)]


def _mnv1_sample(s: ParamSampler) -> None:
    sample_batch(s)
    s.choice("resolution", [96, 128, 160, 192, 224])
    s.choice("width_mult", [0.25, 0.35, 0.5, 0.75, 1.0])
    s.choice("repeat_512", [1, 2, 3, 4, 5])
    s.choice("kernel", [3, 3, 5])
    s.choice("activation", ["relu", "relu6"])
    s.choice("classes", [10, 100, 1000])


def _mnv1_build(p: Mapping[str, Any]) -> nn.Module:
    w = float(p["width_mult"])
    k = int(p["kernel"])
    a = str(p["activation"])
    cin = make_divisible(32 * w)
    layers: list[nn.Module] = [ConvBNAct(3, cin, 3, 2, act_name=a)]
    stages = [*_V1_STAGES, *[(512, 1)] * int(p["repeat_512"]), (1024, 2), (1024, 1)]
    for cout_base, stride in stages:
        cout = make_divisible(cout_base * w)
        layers += [
            ConvBNAct(cin, cin, k, stride, groups=cin, act_name=a),
            ConvBNAct(cin, cout, 1, act_name=a),
        ]
        cin = cout
    layers.append(ClassifierHead(cin, int(p["classes"])))
    return nn.Sequential(*layers)


MOBILENET_V1 = Family(
    "mobilenet_v1",
    "MobileNetV1: depthwise-separable convolutions, width multiplier",
    "vision",
    _mnv1_sample,
    _mnv1_build,
    image_input,
)

# --------------------------------------------------------------------------- MobileNetV2

# (expansion placeholder, channels, repeats, stride)
_V2_STAGES = [(16, 1, 1), (24, 2, 2), (32, 3, 2), (64, 4, 2), (96, 3, 1), (160, 3, 2), (320, 1, 1)]


def _mnv2_sample(s: ParamSampler) -> None:
    sample_batch(s)
    s.choice("resolution", [96, 128, 160, 192, 224])
    s.choice("width_mult", [0.35, 0.5, 0.75, 1.0])
    s.choice("expansion", [2, 3, 4, 6])
    s.choices("repeat_delta", [0, -1, 1], len(_V2_STAGES))
    s.choices("kernels", [3, 5], len(_V2_STAGES))
    s.choice("classes", [10, 100, 1000])


def _mnv2_build(p: Mapping[str, Any]) -> nn.Module:
    w = float(p["width_mult"])
    cin = make_divisible(32 * w)
    layers: list[nn.Module] = [ConvBNAct(3, cin, 3, 2, act_name="relu6")]
    for i, (c, n, stride) in enumerate(_V2_STAGES):
        cout = make_divisible(c * w)
        expand = 1 if i == 0 else int(p["expansion"])
        for j in range(max(1, n + int(p["repeat_delta"][i]))):
            k = int(p["kernels"][i])
            layers.append(InvertedResidual(cin, cout, k, stride if j == 0 else 1, expand))
            cin = cout
    last = make_divisible(1280 * max(1.0, w))
    layers += [ConvBNAct(cin, last, 1, act_name="relu6"), ClassifierHead(last, int(p["classes"]))]
    return nn.Sequential(*layers)


MOBILENET_V2 = Family(
    "mobilenet_v2",
    "MobileNetV2: inverted residual blocks with linear bottlenecks",
    "vision",
    _mnv2_sample,
    _mnv2_build,
    image_input,
)

# --------------------------------------------------------------------------- MobileNetV3

# kernel, expansion size, out, SE, activation, stride
_V3_LARGE = [
    (3, 16, 16, False, "relu", 1),
    (3, 64, 24, False, "relu", 2),
    (3, 72, 24, False, "relu", 1),
    (5, 72, 40, True, "relu", 2),
    (5, 120, 40, True, "relu", 1),
    (5, 120, 40, True, "relu", 1),
    (3, 240, 80, False, "hswish", 2),
    (3, 200, 80, False, "hswish", 1),
    (3, 184, 80, False, "hswish", 1),
    (3, 184, 80, False, "hswish", 1),
    (3, 480, 112, True, "hswish", 1),
    (3, 672, 112, True, "hswish", 1),
    (5, 672, 160, True, "hswish", 2),
    (5, 960, 160, True, "hswish", 1),
    (5, 960, 160, True, "hswish", 1),
]
_V3_SMALL = [
    (3, 16, 16, True, "relu", 2),
    (3, 72, 24, False, "relu", 2),
    (3, 88, 24, False, "relu", 1),
    (5, 96, 40, True, "hswish", 2),
    (5, 240, 40, True, "hswish", 1),
    (5, 240, 40, True, "hswish", 1),
    (5, 120, 48, True, "hswish", 1),
    (5, 144, 48, True, "hswish", 1),
    (5, 288, 96, True, "hswish", 2),
    (5, 576, 96, True, "hswish", 1),
    (5, 576, 96, True, "hswish", 1),
]


def _mnv3_sample(s: ParamSampler) -> None:
    sample_batch(s)
    s.choice("resolution", [96, 128, 160, 192, 224])
    s.choice("variant", ["small", "large"])
    s.choice("width_mult", [0.35, 0.5, 0.75, 1.0])
    s.choice("use_se", [True, False])
    s.choice("kernel_override", [0, 3, 5, 7])
    s.choice("classes", [10, 100, 1000])


def _mnv3_build(p: Mapping[str, Any]) -> nn.Module:
    w = float(p["width_mult"])
    cfg = _V3_SMALL if p["variant"] == "small" else _V3_LARGE
    cin = make_divisible(16 * w)
    layers: list[nn.Module] = [ConvBNAct(3, cin, 3, 2, act_name="hswish")]
    for k, exp, out, se, a, stride in cfg:
        k = int(p["kernel_override"]) or k
        cout = make_divisible(out * w)
        hidden = make_divisible(exp * w)
        se_ratio = 0.25 if (se and p["use_se"]) else 0.0
        layers.append(
            InvertedResidual(cin, cout, k, stride, hidden / cin, a, se_ratio, se_gate="hsigmoid")
        )
        cin = cout
    last = make_divisible(cin * 6)
    head = 1024 if p["variant"] == "small" else 1280
    layers += [
        ConvBNAct(cin, last, 1, act_name="hswish"),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(last, head),
        nn.Hardswish(),
        nn.Linear(head, int(p["classes"])),
    ]
    return nn.Sequential(*layers)


MOBILENET_V3 = Family(
    "mobilenet_v3",
    "MobileNetV3 small/large: inverted residuals with h-swish and h-sigmoid SE",
    "vision",
    _mnv3_sample,
    _mnv3_build,
    image_input,
)

# --------------------------------------------------------------------------- EfficientNet

# kernel, stride, out channels, repeats, expansion  (EfficientNet-B0)
_B0 = [
    (3, 1, 16, 1, 1),
    (3, 2, 24, 2, 6),
    (5, 2, 40, 2, 6),
    (3, 2, 80, 3, 6),
    (5, 1, 112, 3, 6),
    (5, 2, 192, 4, 6),
    (3, 1, 320, 1, 6),
]


def _effnet_sample(s: ParamSampler) -> None:
    sample_batch(s)
    s.choice("resolution", [128, 160, 192, 224])
    s.choice("width_mult", [0.5, 0.75, 1.0])
    s.choice("depth_mult", [0.5, 0.75, 1.0, 1.2])
    s.choice("expansion", [6, 4])
    s.choices("kernels", [3, 5], len(_B0))
    s.choice("se_ratio", [0.25, 0.0])
    s.choice("classes", [10, 100, 1000])


def _effnet_build(p: Mapping[str, Any]) -> nn.Module:
    w = float(p["width_mult"])
    cin = make_divisible(32 * w)
    layers: list[nn.Module] = [ConvBNAct(3, cin, 3, 2, act_name="silu")]
    for i, (_, stride, out, repeats, expand) in enumerate(_B0):
        cout = make_divisible(out * w)
        n = max(1, math.ceil(repeats * float(p["depth_mult"])))
        e = expand if expand == 1 else int(p["expansion"])
        for j in range(n):
            layers.append(
                InvertedResidual(
                    cin,
                    cout,
                    int(p["kernels"][i]),
                    stride if j == 0 else 1,
                    e,
                    "silu",
                    float(p["se_ratio"]),
                )
            )
            cin = cout
    last = make_divisible(1280 * w)
    layers += [ConvBNAct(cin, last, 1, act_name="silu"), ClassifierHead(last, int(p["classes"]))]
    return nn.Sequential(*layers)


EFFICIENTNET = Family(
    "efficientnet",
    "EfficientNet: MBConv blocks with SiLU and SE, compound width/depth scaling of B0",
    "vision",
    _effnet_sample,
    _effnet_build,
    image_input,
)

# --------------------------------------------------------------------------- ShuffleNetV2


def _channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    b, c, h, w = x.shape
    x = x.reshape(b, groups, c // groups, h, w).transpose(1, 2)
    return x.reshape(b, c, h, w)


class _ShuffleBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, kernel: int) -> None:
        super().__init__()
        self.stride = stride
        branch = cout // 2
        if stride > 1:
            self.left: nn.Module = nn.Sequential(
                ConvBNAct(cin, cin, kernel, stride, groups=cin, act_name=None),
                ConvBNAct(cin, branch, 1),
            )
        else:
            self.left = nn.Identity()
        right_in = cin if stride > 1 else branch
        self.right = nn.Sequential(
            ConvBNAct(right_in, branch, 1),
            ConvBNAct(branch, branch, kernel, stride, groups=branch, act_name=None),
            ConvBNAct(branch, branch, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            a, b = x.chunk(2, dim=1)
            out = torch.cat([a, self.right(b)], 1)
        else:
            out = torch.cat([self.left(x), self.right(x)], 1)
        return _channel_shuffle(out, 2)


_SHUFFLE_WIDTHS = {0.5: (48, 96, 192, 1024), 1.0: (116, 232, 464, 1024), 1.5: (176, 352, 704, 1024)}


def _shufflenet_sample(s: ParamSampler) -> None:
    sample_batch(s)
    s.choice("resolution", [96, 128, 160, 192, 224])
    s.choice("width", [0.5, 1.0, 1.5])
    s.integer("repeats_0", 2, 4)
    s.integer("repeats_1", 4, 8)
    s.integer("repeats_2", 2, 4)
    s.choice("kernel", [3, 5])
    s.choice("classes", [10, 100, 1000])


def _shufflenet_build(p: Mapping[str, Any]) -> nn.Module:
    widths = _SHUFFLE_WIDTHS[float(p["width"])]
    cin = 24
    layers: list[nn.Module] = [ConvBNAct(3, cin, 3, 2), nn.MaxPool2d(3, 2, 1)]
    for i, cout in enumerate(widths[:3]):
        for j in range(int(p[f"repeats_{i}"])):
            layers.append(_ShuffleBlock(cin, cout, 2 if j == 0 else 1, int(p["kernel"])))
            cin = cout
    layers += [ConvBNAct(cin, widths[3], 1), ClassifierHead(widths[3], int(p["classes"]))]
    return nn.Sequential(*layers)


SHUFFLENET_V2 = Family(
    "shufflenet_v2",
    "ShuffleNetV2: channel split, depthwise convolutions and channel shuffle",
    "vision",
    _shufflenet_sample,
    _shufflenet_build,
    image_input,
)

# --------------------------------------------------------------------------- GhostNet


class _GhostModule(nn.Module):
    def __init__(self, cin: int, cout: int, relu: bool, dw_kernel: int = 3) -> None:
        super().__init__()
        self.cout = cout
        primary = math.ceil(cout / 2)
        a = "relu" if relu else None
        self.primary = ConvBNAct(cin, primary, 1, act_name=a)
        self.cheap = ConvBNAct(primary, primary, dw_kernel, groups=primary, act_name=a)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.primary(x)
        return torch.cat([y, self.cheap(y)], 1)[:, : self.cout]


class _GhostBottleneck(nn.Module):
    def __init__(
        self, cin: int, hidden: int, cout: int, kernel: int, stride: int, se: bool
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [_GhostModule(cin, hidden, True)]
        if stride > 1:
            layers.append(ConvBNAct(hidden, hidden, kernel, stride, groups=hidden, act_name=None))
        if se:
            layers.append(SqueezeExcite(hidden, make_divisible(hidden / 4, 4), "relu", "hsigmoid"))
        layers.append(_GhostModule(hidden, cout, False))
        self.body = nn.Sequential(*layers)
        if stride == 1 and cin == cout:
            self.short: nn.Module = nn.Identity()
        else:
            self.short = nn.Sequential(
                ConvBNAct(cin, cin, kernel, stride, groups=cin, act_name=None),
                ConvBNAct(cin, cout, 1, act_name=None),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.short(x)


# kernel, hidden, out, SE, stride
_GHOST = [
    (3, 16, 16, False, 1),
    (3, 48, 24, False, 2),
    (3, 72, 24, False, 1),
    (5, 72, 40, True, 2),
    (5, 120, 40, True, 1),
    (3, 240, 80, False, 2),
    (3, 200, 80, False, 1),
    (3, 184, 80, False, 1),
    (3, 480, 112, True, 1),
    (3, 672, 112, True, 1),
    (5, 672, 160, True, 2),
    (5, 960, 160, False, 1),
    (5, 960, 160, True, 1),
]


def _ghost_sample(s: ParamSampler) -> None:
    sample_batch(s)
    s.choice("resolution", [96, 128, 160, 192, 224])
    s.choice("width_mult", [0.5, 0.75, 1.0])
    s.choice("blocks", [8, 10, 13])
    s.choice("use_se", [True, False])
    s.choice("classes", [10, 100, 1000])


def _ghost_build(p: Mapping[str, Any]) -> nn.Module:
    w = float(p["width_mult"])
    cin = make_divisible(16 * w, 4)
    layers: list[nn.Module] = [ConvBNAct(3, cin, 3, 2)]
    for k, hid, out, se, stride in _GHOST[: int(p["blocks"])]:
        cout = make_divisible(out * w, 4)
        hidden = make_divisible(hid * w, 4)
        layers.append(_GhostBottleneck(cin, hidden, cout, k, stride, se and bool(p["use_se"])))
        cin = cout
    last = make_divisible(960 * w, 4)
    layers += [
        ConvBNAct(cin, last, 1),
        nn.AdaptiveAvgPool2d(1),
        nn.Conv2d(last, 1280, 1),
        act("relu"),
        nn.Flatten(),
        nn.Linear(1280, int(p["classes"])),
    ]
    return nn.Sequential(*layers)


GHOSTNET = Family(
    "ghostnet",
    "GhostNet: ghost modules (cheap depthwise features concatenated to primary ones)",
    "vision",
    _ghost_sample,
    _ghost_build,
    image_input,
)
