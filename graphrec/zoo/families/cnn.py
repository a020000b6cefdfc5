"""Classic server-class CNN families: ResNet/ResNeXt, VGG, SqueezeNet, DenseNet, RegNet, ConvNeXt."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from graphrec.zoo._spec import Family, ParamSampler, image_input, sample_batch
from graphrec.zoo.families._layers import ClassifierHead, ConvBNAct, SqueezeExcite

# --------------------------------------------------------------------------- ResNet / ResNeXt


class _BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = ConvBNAct(cin, cout, 3, stride)
        self.conv2 = ConvBNAct(cout, cout, 3, 1, act_name=None)
        self.down: nn.Module = (
            ConvBNAct(cin, cout, 1, stride, act_name=None)
            if stride != 1 or cin != cout
            else nn.Identity()
        )
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv2(self.conv1(x)) + self.down(x))


class _Bottleneck(nn.Module):
    def __init__(self, cin: int, mid: int, cout: int, stride: int, groups: int) -> None:
        super().__init__()
        self.conv1 = ConvBNAct(cin, mid, 1)
        self.conv2 = ConvBNAct(mid, mid, 3, stride, groups=groups)
        self.conv3 = ConvBNAct(mid, cout, 1, act_name=None)
        self.down: nn.Module = (
            ConvBNAct(cin, cout, 1, stride, act_name=None)
            if stride != 1 or cin != cout
            else nn.Identity()
        )
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv3(self.conv2(self.conv1(x))) + self.down(x))


def _resnet_sample(s: ParamSampler) -> None:
    sample_batch(s)
    s.choice("resolution", [64, 96, 128, 160, 192, 224])
    block = s.choice("block", ["basic", "bottleneck"])
    stages = s.choice("stages", [3, 4])
    s.choices("depths", [1, 2, 3] if block == "bottleneck" else [1, 2, 3, 4], stages)
    s.choice("base_width", [16, 24, 32, 48, 64])
    s.choice("stem_kernel", [3, 5, 7])
    s.choice("stem_pool", [False, True])
    s.choice("groups", [1, 1, 4, 8, 16] if block == "bottleneck" else [1])
    s.choice("classes", [10, 100, 1000])


def _resnet_build(p: Mapping[str, Any]) -> nn.Module:
    base = int(p["base_width"])
    stem_stride = 2 if p["stem_pool"] else 1
    layers: list[nn.Module] = [ConvBNAct(3, base, int(p["stem_kernel"]), stem_stride)]
    if p["stem_pool"]:
        layers.append(nn.MaxPool2d(3, 2, 1))
    cin = base
    groups = int(p["groups"])
    for i, depth in enumerate(p["depths"]):
        width = base * 2**i
        for j in range(int(depth)):
            stride = 2 if (j == 0 and i > 0) else 1
            if p["block"] == "basic":
                layers.append(_BasicBlock(cin, width, stride))
                cin = width
            else:
                mid = width * (2 if groups > 1 else 1)
                layers.append(_Bottleneck(cin, mid, width * 4, stride, groups))
                cin = width * 4
    layers.append(ClassifierHead(cin, int(p["classes"])))
    return nn.Sequential(*layers)


RESNET = Family(
    "resnet",
    "ResNet / ResNeXt: basic or bottleneck residual blocks, optional grouped 3x3 (ResNeXt)",
    "vision",
    _resnet_sample,
    _resnet_build,
    image_input,
)

# --------------------------------------------------------------------------- VGG


def _vgg_sample(s: ParamSampler) -> None:
    sample_batch(s)
    s.choice("resolution", [32, 64, 96, 128, 160])
    stages = s.choice("stages", [3, 4, 5])
    s.choices("convs_per_stage", [1, 2, 3], stages)
    s.choice("base_width", [16, 24, 32, 48])
    s.choice("kernel", [3, 3, 5])
    s.choice("batch_norm", [True, False])
    s.choice("hidden", [128, 256, 512, 1024])
    s.choice("classes", [10, 100, 1000])


def _vgg_build(p: Mapping[str, Any]) -> nn.Module:
    layers: list[nn.Module] = []
    cin = 3
    k = int(p["kernel"])
    for i, convs in enumerate(p["convs_per_stage"]):
        width = min(int(p["base_width"]) * 2**i, 256)
        for _ in range(int(convs)):
            layers.append(nn.Conv2d(cin, width, k, 1, k // 2, bias=not p["batch_norm"]))
            if p["batch_norm"]:
                layers.append(nn.BatchNorm2d(width))
            layers.append(nn.ReLU())
            cin = width
        layers.append(nn.MaxPool2d(2, 2))
    res = int(p["resolution"]) // 2 ** len(p["convs_per_stage"])
    hidden = int(p["hidden"])
    layers += [
        nn.Flatten(),
        nn.Linear(cin * res * res, hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, int(p["classes"])),
    ]
    return nn.Sequential(*layers)


VGG = Family(
    "vgg",
    "VGG: plain conv stacks with max pooling and a fully connected classifier",
    "vision",
    _vgg_sample,
    _vgg_build,
    image_input,
)

# --------------------------------------------------------------------------- SqueezeNet


class _Fire(nn.Module):
    def __init__(self, cin: int, squeeze: int, expand: int) -> None:
        super().__init__()
        self.squeeze = nn.Sequential(nn.Conv2d(cin, squeeze, 1), nn.ReLU())
        self.e1 = nn.Sequential(nn.Conv2d(squeeze, expand, 1), nn.ReLU())
        self.e3 = nn.Sequential(nn.Conv2d(squeeze, expand, 3, padding=1), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.squeeze(x)
        return torch.cat([self.e1(s), self.e3(s)], 1)


def _squeezenet_sample(s: ParamSampler) -> None:
    sample_batch(s)
    s.choice("resolution", [64, 96, 128, 160, 224])
    s.choice("version", ["1.1", "1.0"])
    s.choice("width_mult", [0.5, 0.75, 1.0])
    s.choice("fire_modules", [4, 6, 8])
    s.choice("classes", [10, 100, 1000])


def _squeezenet_build(p: Mapping[str, Any]) -> nn.Module:
    w = float(p["width_mult"])
    stem_ch = int((96 if p["version"] == "1.0" else 64) * w)
    stem_k = 7 if p["version"] == "1.0" else 3
    layers: list[nn.Module] = [
        nn.Conv2d(3, stem_ch, stem_k, 2),
        nn.ReLU(),
        nn.MaxPool2d(3, 2, ceil_mode=True),
    ]
    cin = stem_ch
    n = int(p["fire_modules"])
    for i in range(n):
        squeeze = max(8, int((16 + 16 * (i // 2)) * w))
        expand = squeeze * 4
        layers.append(_Fire(cin, squeeze, expand))
        cin = 2 * expand
        if i in (n // 4, n // 2) and i < n - 1:
            layers.append(nn.MaxPool2d(3, 2, ceil_mode=True))
    layers += [
        nn.Conv2d(cin, int(p["classes"]), 1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    ]
    return nn.Sequential(*layers)


SQUEEZENET = Family(
    "squeezenet",
    "SqueezeNet 1.0/1.1: fire modules (1x1 squeeze, 1x1+3x3 expand, concat)",
    "vision",
    _squeezenet_sample,
    _squeezenet_build,
    image_input,
)

# --------------------------------------------------------------------------- DenseNet


class _DenseLayer(nn.Module):
    def __init__(self, cin: int, growth: int, bn_size: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm2d(cin),
            nn.ReLU(),
            nn.Conv2d(cin, bn_size * growth, 1, bias=False),
            nn.BatchNorm2d(bn_size * growth),
            nn.ReLU(),
            nn.Conv2d(bn_size * growth, growth, 3, padding=1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.body(x)], 1)


def _densenet_sample(s: ParamSampler) -> None:
    sample_batch(s)
    s.choice("resolution", [32, 64, 96, 128, 160])
    s.choice("growth", [8, 12, 16, 24, 32])
    blocks = s.choice("blocks", [3, 4])
    s.choices("layers_per_block", [2, 3, 4, 6, 8], blocks)
    s.choice("bn_size", [2, 4])
    s.choice("compression", [0.5, 1.0])
    s.choice("classes", [10, 100, 1000])


def _densenet_build(p: Mapping[str, Any]) -> nn.Module:
    growth = int(p["growth"])
    cin = 2 * growth
    stride = 1 if int(p["resolution"]) <= 64 else 2
    layers: list[nn.Module] = [ConvBNAct(3, cin, 3, stride)]
    blocks = list(p["layers_per_block"])
    for i, n in enumerate(blocks):
        for _ in range(int(n)):
            layers.append(_DenseLayer(cin, growth, int(p["bn_size"])))
            cin += growth
        if i < len(blocks) - 1:
            cout = int(cin * float(p["compression"]))
            layers += [
                nn.BatchNorm2d(cin),
                nn.ReLU(),
                nn.Conv2d(cin, cout, 1, bias=False),
                nn.AvgPool2d(2, 2),
            ]
            cin = cout
    layers += [nn.BatchNorm2d(cin), nn.ReLU(), ClassifierHead(cin, int(p["classes"]))]
    return nn.Sequential(*layers)


DENSENET = Family(
    "densenet",
    "DenseNet-BC: dense blocks of concatenated bottleneck layers with transitions",
    "vision",
    _densenet_sample,
    _densenet_build,
    image_input,
)

# --------------------------------------------------------------------------- RegNet


def _regnet_widths(w0: int, wa: float, wm: float, depth: int, group: int) -> list[int]:
    """Quantised linear widths of RegNet (Radosavovic et al. 2020), one per block."""
    ws_cont = np.arange(depth) * wa + w0
    ks = np.round(np.log(ws_cont / w0) / np.log(wm))
    ws = w0 * np.power(wm, ks)
    widths = [int(round(w / 8) * 8) for w in ws]
    return [max(group, w // group * group) for w in widths]


class _RegNetBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, group: int, se: bool) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            ConvBNAct(cin, cout, 1),
            ConvBNAct(cout, cout, 3, stride, groups=cout // group),
        ]
        if se:
            layers.append(SqueezeExcite(cout, max(1, cin // 4)))
        layers.append(ConvBNAct(cout, cout, 1, act_name=None))
        self.body = nn.Sequential(*layers)
        self.down: nn.Module = (
            ConvBNAct(cin, cout, 1, stride, act_name=None)
            if stride != 1 or cin != cout
            else nn.Identity()
        )
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.down(x))


def _regnet_sample(s: ParamSampler) -> None:
    sample_batch(s)
    s.choice("resolution", [64, 96, 128, 160, 192, 224])
    w0 = s.choice("w0", [16, 24, 32, 48])
    wa = s.choice("wa", [8.0, 12.0, 16.0, 24.0, 36.0])
    wm = s.choice("wm", [2.0, 2.25, 2.5, 2.75])
    depth = s.choice("depth", [6, 8, 10, 13, 16])
    group = s.choice("group_width", [8, 16, 24])
    s.choice("se", [False, True])
    s.choice("classes", [10, 100, 1000])
    s.set("widths", _regnet_widths(w0, wa, wm, depth, group))


def _regnet_build(p: Mapping[str, Any]) -> nn.Module:
    layers: list[nn.Module] = [ConvBNAct(3, 32, 3, 2)]
    cin = 32
    prev = -1
    for w in p["widths"]:
        w = int(w)
        stride = 2 if w != prev else 1
        layers.append(_RegNetBlock(cin, w, stride, int(p["group_width"]), bool(p["se"])))
        cin = prev = w
    layers.append(ClassifierHead(cin, int(p["classes"])))
    return nn.Sequential(*layers)


REGNET = Family(
    "regnet",
    "RegNetX/Y: quantised-linear stage widths, grouped bottlenecks, optional SE (RegNetY)",
    "vision",
    _regnet_sample,
    _regnet_build,
    image_input,
)

# --------------------------------------------------------------------------- ConvNeXt


class _ConvNeXtBlock(nn.Module):
    def __init__(self, dim: int, kernel: int, mlp_ratio: int) -> None:
        super().__init__()
        self.dw = nn.Conv2d(dim, dim, kernel, padding=kernel // 2, groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, mlp_ratio * dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(mlp_ratio * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), 1e-2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dw(x).permute(0, 2, 3, 1)
        y = self.fc2(self.act(self.fc1(self.norm(y)))) * self.gamma
        return x + y.permute(0, 3, 1, 2)


class _ChannelsLayerNorm(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class _ConvNeXt(nn.Module):
    def __init__(self, p: Mapping[str, Any]) -> None:
        super().__init__()
        base = int(p["base_dim"])
        kernel = int(p["kernel"])
        mlp = int(p["mlp_ratio"])
        layers: list[nn.Module] = [nn.Conv2d(3, base, 4, 4), _ChannelsLayerNorm(base)]
        cin = base
        for i, depth in enumerate(p["depths"]):
            dim = base * 2**i
            if i > 0:
                layers += [_ChannelsLayerNorm(cin), nn.Conv2d(cin, dim, 2, 2)]
            layers += [_ConvNeXtBlock(dim, kernel, mlp) for _ in range(int(depth))]
            cin = dim
        self.features = nn.Sequential(*layers)
        self.norm = nn.LayerNorm(cin)
        self.head = nn.Linear(cin, int(p["classes"]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.features(x).mean(dim=(2, 3))
        return self.head(self.norm(y))


def _convnext_sample(s: ParamSampler) -> None:
    sample_batch(s)
    s.choice("resolution", [64, 96, 128, 160, 192, 224])
    s.choice("base_dim", [16, 24, 32, 48])
    stages = s.choice("stages", [3, 4])
    s.choices("depths", [1, 2, 3], stages)
    s.choice("kernel", [3, 5, 7])
    s.choice("mlp_ratio", [2, 3, 4])
    s.choice("classes", [10, 100, 1000])


CONVNEXT = Family(
    "convnext",
    "ConvNeXt: patchify stem, depthwise 7x7-style blocks, LayerNorm + GELU MLP",
    "vision",
    _convnext_sample,
    _ConvNeXt,
    image_input,
)

__all__ = ["CONVNEXT", "DENSENET", "REGNET", "RESNET", "SQUEEZENET", "VGG"]
