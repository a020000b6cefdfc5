"""Dense-prediction families: UNet segmentation, SSD and YOLO-style detection heads."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from graphrec.zoo._spec import Family, ParamSampler, image_input, make_divisible, sample_batch
from graphrec.zoo.families._layers import ConvBNAct

# --------------------------------------------------------------------------- UNet


class _UNet(nn.Module):
    def __init__(self, p: Mapping[str, Any]) -> None:
        super().__init__()
        base = int(p["base_width"])
        depth = int(p["depth"])
        self.mode = str(p["upsample"])
        a = str(p["activation"])
        widths = [base * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList()
        cin = 3
        for w in widths:
            self.down.append(
                nn.Sequential(ConvBNAct(cin, w, 3, act_name=a), ConvBNAct(w, w, 3, act_name=a))
            )
            cin = w
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList()
        self.fuse = nn.ModuleList()
        for w in reversed(widths[:-1]):
            if self.mode == "transpose":
                self.up.append(nn.ConvTranspose2d(cin, w, 2, 2))
            else:
                self.up.append(nn.Conv2d(cin, w, 1))
            self.fuse.append(
                nn.Sequential(ConvBNAct(2 * w, w, 3, act_name=a), ConvBNAct(w, w, 3, act_name=a))
            )
            cin = w
        self.out = nn.Conv2d(cin, int(p["classes"]), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else self.pool(x))
            skips.append(x)
        skips.pop()
        for up, fuse in zip(self.up, self.fuse, strict=True):
            if self.mode == "transpose":
                x = up(x)
            else:
                x = up(F.interpolate(x, scale_factor=2.0, mode=self.mode))
            x = fuse(torch.cat([x, skips.pop()], 1))
        return self.out(x)


def _unet_sample(s: ParamSampler) -> None:
    sample_batch(s)
    s.choice("resolution", [64, 96, 128, 160, 256])
    s.choice("depth", [2, 3, 4])
    s.choice("base_width", [8, 16, 24, 32])
    s.choice("upsample", ["nearest", "bilinear", "transpose"])
    s.choice("activation", ["relu", "leaky", "silu"])
    s.choice("classes", [1, 2, 4, 8, 21])


UNET = Family(
    "unet",
    "UNet segmentation: encoder-decoder with skip concatenation, transposed-conv or resize",
    "segmentation",
    _unet_sample,
    _UNet,
    image_input,
    output_names=("mask",),
)

# --------------------------------------------------------------------------- SSD


class _SSD(nn.Module):
    def __init__(self, p: Mapping[str, Any]) -> None:
        super().__init__()
        w = float(p["width_mult"])
        lite = p["backbone"] == "mobilenet"
        self.classes = int(p["classes"])
        anchors = int(p["anchors"])

        def block(cin: int, cout: int, stride: int) -> nn.Module:
            if lite:
                return nn.Sequential(
                    ConvBNAct(cin, cin, 3, stride, groups=cin, act_name="relu6"),
                    ConvBNAct(cin, cout, 1, act_name="relu6"),
                )
            return ConvBNAct(cin, cout, 3, stride)

        widths = [make_divisible(c * w) for c in (32, 64, 128, 256, 512)]
        stages: list[nn.Module] = []
        cin = 3
        for i, c in enumerate(widths):
            stages.append(
                nn.Sequential(
                    ConvBNAct(cin, c, 3, 2) if i == 0 else block(cin, c, 2), block(c, c, 1)
                )
            )
            cin = c
        for _ in range(int(p["extra_layers"])):
            c = make_divisible(256 * w)
            stages.append(nn.Sequential(ConvBNAct(cin, c // 2, 1), ConvBNAct(c // 2, c, 3, 2)))
            cin = c
        self.stages = nn.ModuleList(stages)
        self.first_source = 3
        sources = [widths[3], widths[4]] + [make_divisible(256 * w)] * int(p["extra_layers"])

        def head(cin: int, cout: int) -> nn.Module:
            if lite:
                return nn.Sequential(
                    ConvBNAct(cin, cin, 3, groups=cin, act_name="relu6"), nn.Conv2d(cin, cout, 1)
                )
            return nn.Conv2d(cin, cout, 3, padding=1)

        self.loc = nn.ModuleList(head(c, anchors * 4) for c in sources)
        self.conf = nn.ModuleList(head(c, anchors * self.classes) for c in sources)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i >= self.first_source:
                feats.append(x)
        b = x.shape[0]
        boxes = [
            loc(f).permute(0, 2, 3, 1).reshape(b, -1, 4)
            for loc, f in zip(self.loc, feats, strict=True)
        ]
        scores = [
            conf(f).permute(0, 2, 3, 1).reshape(b, -1, self.classes)
            for conf, f in zip(self.conf, feats, strict=True)
        ]
        return torch.cat(boxes, 1), torch.softmax(torch.cat(scores, 1), dim=-1)


def _ssd_sample(s: ParamSampler) -> None:
    sample_batch(s)
    s.choice("resolution", [128, 160, 224, 256, 300])
    s.choice("backbone", ["mobilenet", "vgg"])
    s.choice("width_mult", [0.25, 0.5, 0.75, 1.0])
    s.choice("extra_layers", [0, 1, 2])
    s.choice("anchors", [4, 6])
    s.choice("classes", [2, 5, 21, 91])


SSD = Family(
    "ssd",
    "SSD / SSDLite detection: multi-scale box and class heads on a plain or depthwise backbone",
    "detection",
    _ssd_sample,
    _SSD,
    image_input,
    output_names=("boxes", "scores"),
)

# --------------------------------------------------------------------------- YOLO


class _C3(nn.Module):
    """CSP block: split into a bottleneck path and a shortcut path, concatenated."""

    def __init__(self, cin: int, cout: int, n: int, act_name: str, shortcut: bool) -> None:
        super().__init__()
        mid = cout // 2
        self.cv1 = ConvBNAct(cin, mid, 1, act_name=act_name)
        self.cv2 = ConvBNAct(cin, mid, 1, act_name=act_name)
        self.blocks = nn.ModuleList(
            nn.Sequential(
                ConvBNAct(mid, mid, 1, act_name=act_name), ConvBNAct(mid, mid, 3, act_name=act_name)
            )
            for _ in range(n)
        )
        self.shortcut = shortcut
        self.cv3 = ConvBNAct(2 * mid, cout, 1, act_name=act_name)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv1(x)
        for block in self.blocks:
            y = y + block(y) if self.shortcut else block(y)
        return self.cv3(torch.cat([y, self.cv2(x)], 1))


class _YOLO(nn.Module):
    def __init__(self, p: Mapping[str, Any]) -> None:
        super().__init__()
        a = str(p["activation"])
        n = int(p["depth"])
        w = float(p["width_mult"])
        self.no = 5 + int(p["classes"])
        self.na = int(p["anchors"])
        c1, c2, c3, c4, c5 = (make_divisible(c * w) for c in (64, 128, 256, 512, 1024))
        self.stem = ConvBNAct(3, c1, 3, 2, act_name=a)
        self.s2 = nn.Sequential(ConvBNAct(c1, c2, 3, 2, act_name=a), _C3(c2, c2, n, a, True))
        self.s3 = nn.Sequential(ConvBNAct(c2, c3, 3, 2, act_name=a), _C3(c3, c3, n, a, True))
        self.s4 = nn.Sequential(ConvBNAct(c3, c4, 3, 2, act_name=a), _C3(c4, c4, n, a, True))
        self.s5 = nn.Sequential(ConvBNAct(c4, c5, 3, 2, act_name=a), _C3(c5, c5, n, a, True))
        self.spp = ConvBNAct(c5, c4, 1, act_name=a)
        self.pool = nn.MaxPool2d(5, 1, 2)
        self.spp_out = ConvBNAct(c4 * 2, c5, 1, act_name=a)
        self.lat5 = ConvBNAct(c5, c4, 1, act_name=a)
        self.td4 = _C3(2 * c4, c4, n, a, False)
        self.lat4 = ConvBNAct(c4, c3, 1, act_name=a)
        self.td3 = _C3(2 * c3, c3, n, a, False)
        self.pan = bool(p["pan"])
        if self.pan:
            self.bu3 = ConvBNAct(c3, c3, 3, 2, act_name=a)
            self.bu4 = _C3(c3 + c3, c4, n, a, False)
            self.bu4d = ConvBNAct(c4, c4, 3, 2, act_name=a)
            self.bu5 = _C3(c4 + c4, c5, n, a, False)
        self.heads = nn.ModuleList(nn.Conv2d(c, self.na * self.no, 1) for c in (c3, c4, c5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x3 = self.s3(self.s2(self.stem(x)))
        x4 = self.s4(x3)
        y = self.spp(self.s5(x4))
        p5 = self.spp_out(torch.cat([y, self.pool(y)], 1))
        l5 = self.lat5(p5)
        p4 = self.td4(torch.cat([F.interpolate(l5, scale_factor=2.0, mode="nearest"), x4], 1))
        l4 = self.lat4(p4)
        p3 = self.td3(torch.cat([F.interpolate(l4, scale_factor=2.0, mode="nearest"), x3], 1))
        if self.pan:
            n4 = self.bu4(torch.cat([self.bu3(p3), l4], 1))
            n5 = self.bu5(torch.cat([self.bu4d(n4), l5], 1))
            feats = [p3, n4, n5]
        else:
            feats = [p3, p4, p5]
        b = x.shape[0]
        outs = []
        for head, f in zip(self.heads, feats, strict=True):
            y = head(f)
            h, w = y.shape[2], y.shape[3]
            y = y.reshape(b, self.na, self.no, h, w).permute(0, 1, 3, 4, 2)
            outs.append(torch.sigmoid(y).reshape(b, -1, self.no))
        return torch.cat(outs, 1)


def _yolo_sample(s: ParamSampler) -> None:
    sample_batch(s)
    s.choice("resolution", [128, 160, 224, 256, 320])
    s.choice("width_mult", [0.125, 0.25, 0.375, 0.5])
    s.choice("depth", [1, 2, 3])
    s.choice("activation", ["silu", "leaky", "relu"])
    s.choice("pan", [False, True])
    s.choice("anchors", [3, 1])
    s.choice("classes", [1, 20, 80])


YOLO = Family(
    "yolo",
    "YOLO-style detector: CSP backbone, SPP-lite, FPN/PAN neck, sigmoid anchor heads",
    "detection",
    _yolo_sample,
    _YOLO,
    image_input,
    output_names=("detections",),
)
