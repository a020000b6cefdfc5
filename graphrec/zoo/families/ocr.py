"""OCR families: CRNN-style text recognisers and DB-style text detectors.

* ``ocr_rec``: a text-line image (height 32 or 48, width 100-320) through a CNN that
  keeps the width (VGG-style CRNN or PP-OCR-style depthwise blocks with (2, 1) strides),
  a BiLSTM or self-attention neck over the columns, and a per-column CTC head
  (softmax or log-softmax over 37-6625 characters). The width (and the batch) may be
  dynamic, as in PP-OCR's exported recognisers.
* ``ocr_det``: a DBNet-style detector on a large image (320-960 pixels a side): a
  MobileNetV3-style backbone, an FPN neck with nearest upsampling, and a probability map
  at full resolution from two transposed convolutions; height and width may be dynamic.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from graphrec.zoo._spec import Family, InputSpec, ParamSampler, make_divisible, sample_batch
from graphrec.zoo.families import _rewrite
from graphrec.zoo.families._layers import ConvBNAct, InvertedResidual

# --------------------------------------------------------------------------- recogniser


class _ColumnAttention(nn.Module):
    """Self-attention over the columns, batch-first; reshapes keep the width dynamic."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        qkv = self.qkv(self.norm1(x)).unflatten(-1, (3, self.heads, self.head_dim))
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        attn = torch.softmax(torch.matmul(q, k.transpose(-2, -1)) * self.head_dim**-0.5, -1)
        y = torch.matmul(attn, v).transpose(1, 2).flatten(2)
        x = x + self.proj(y)
        return x + self.mlp(self.norm2(x))


class _OCRRec(nn.Module):
    def __init__(self, p: Mapping[str, Any]) -> None:
        super().__init__()
        c = int(p["channels"])
        layers: list[nn.Module] = []
        if p["backbone"] == "vgg":  # CRNN: pools of (2, 2), (2, 2), then (2, 1)
            plan = [(c, (2, 2)), (2 * c, (2, 2)), (4 * c, (2, 1)), (8 * c, (2, 1))]
            cin = 3
            for cout, pool in plan:
                layers += [ConvBNAct(cin, cout, 3), nn.MaxPool2d(pool, pool)]
                cin = cout
        else:  # PP-OCR mobile: depthwise blocks whose later strides keep the width
            layers.append(ConvBNAct(3, c, 3, 2, act_name="hswish"))
            cin = c
            for i, stride in enumerate([(1, 1), (2, 1), (2, 1), (2, 1)]):
                cout = make_divisible(c * 2 ** (i // 2 + 1))
                layers += [
                    ConvBNAct(cin, cin, 3, 1, cin, "hswish"),
                    nn.MaxPool2d(stride, stride) if stride != (1, 1) else nn.Identity(),
                    ConvBNAct(cin, cout, 1, act_name="hswish"),
                ]
                cin = cout
        self.cnn = nn.Sequential(*layers)
        self.neck_kind = str(p["neck"])
        hidden = int(p["hidden"])
        if self.neck_kind == "bilstm":
            self.neck: nn.Module = nn.LSTM(
                cin, hidden, int(p["neck_layers"]), batch_first=True, bidirectional=True
            )
            feat = 2 * hidden
        else:
            self.inp = nn.Linear(cin, hidden)
            self.neck = nn.Sequential(
                *[_ColumnAttention(hidden, int(p["heads"])) for _ in range(int(p["neck_layers"]))]
            )
            feat = hidden
        self.head = nn.Linear(feat, int(p["classes"]))
        self.log = p["head_act"] == "log_softmax"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cnn(x).mean(2).permute(0, 2, 1)  # (batch, columns, channels)
        if self.neck_kind == "bilstm":
            y, _ = self.neck(y)
        else:
            y = self.neck(self.inp(y))
        logits = self.head(y)
        return F.log_softmax(logits, -1) if self.log else F.softmax(logits, -1)


def _rec_sample(s: ParamSampler) -> None:
    sample_batch(s)
    s.choice("height", [32, 48])
    s.choice("width", [100, 160, 200, 320])
    s.choice("backbone", ["vgg", "mobile"])
    s.choice("channels", [16, 32, 64])
    s.choice("neck", ["bilstm", "attention"])
    s.integer("neck_layers", 1, 2)
    s.choice("hidden", [48, 96, 128, 256])
    s.choice("heads", [2, 4])
    s.choice("classes", [37, 97, 6625], p=[0.4, 0.3, 0.3])
    s.choice("head_act", ["softmax", "log_softmax"])
    s.choice("dynamic", ["none", "width", "batch_width"], p=[0.4, 0.3, 0.3])


def _rec_inputs(p: Mapping[str, Any]) -> list[InputSpec]:
    return [InputSpec("x", (int(p["batch"]), 3, int(p["height"]), int(p["width"])))]


def _rec_rewrite(data: bytes, p: Mapping[str, Any]) -> bytes:
    if p["dynamic"] == "none":
        return data
    axes = {3: "width"} if p["dynamic"] == "width" else {0: "batch", 3: "width"}
    return _rewrite.apply(data, dynamic={"x": axes})


OCR_REC = Family(
    "ocr_rec",
    "CRNN / PP-OCR-style text recognisers: CNN + BiLSTM or attention + CTC head",
    "vision",
    _rec_sample,
    _OCRRec,
    _rec_inputs,
    int8="dynamic",
    tags=("dynamic-shape",),
    rewrite=_rec_rewrite,
)

# --------------------------------------------------------------------------- detector

#: Backbone stages at strides 4, 8, 16, 32: (channels at width 1, blocks, kernel).
_DET_STAGES = ((24, 2, 3), (40, 3, 5), (80, 3, 3), (160, 2, 5))


class _OCRDet(nn.Module):
    def __init__(self, p: Mapping[str, Any]) -> None:
        super().__init__()
        w = float(p["width_mult"])
        act = str(p["act"])
        self.stem = ConvBNAct(3, make_divisible(16 * w), 3, 2, act_name=act)
        cin = make_divisible(16 * w)
        self.stages = nn.ModuleList()
        outs = []
        for cout_1, blocks, k in _DET_STAGES:
            cout = make_divisible(cout_1 * w)
            stage: list[nn.Module] = []
            for j in range(int(blocks)):
                stage.append(InvertedResidual(cin, cout, k, 2 if j == 0 else 1, 3.0, act))
                cin = cout
            self.stages.append(nn.Sequential(*stage))
            outs.append(cout)
        inner = int(p["inner"])
        self.lateral = nn.ModuleList([nn.Conv2d(c, inner, 1, bias=False) for c in outs])
        self.smooth = nn.ModuleList(
            [nn.Conv2d(inner, inner // 4, 3, 1, 1, bias=False) for _ in outs]
        )
        q = inner // 4
        self.head = nn.Sequential(
            nn.Conv2d(inner, q, 3, 1, 1, bias=False),
            nn.BatchNorm2d(q),
            nn.ReLU(),
            nn.ConvTranspose2d(q, q, 2, 2),
            nn.BatchNorm2d(q),
            nn.ReLU(),
            nn.ConvTranspose2d(q, int(p["maps"]), 2, 2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.stem(x)
        feats = []
        for stage in self.stages:
            y = stage(y)
            feats.append(y)
        lat = [conv(f) for conv, f in zip(self.lateral, feats, strict=True)]
        for i in range(len(lat) - 2, -1, -1):  # top-down path
            lat[i] = lat[i] + F.interpolate(lat[i + 1], scale_factor=2.0, mode="nearest")
        maps = []
        for i, (conv, f) in enumerate(zip(self.smooth, lat, strict=True)):
            m = conv(f)
            if i > 0:
                m = F.interpolate(m, scale_factor=float(2**i), mode="nearest")
            maps.append(m)
        return torch.sigmoid(self.head(torch.cat(maps[::-1], 1)))


def _det_sample(s: ParamSampler) -> None:
    s.choice("batch", [1, 2], p=[0.85, 0.15])
    s.choice("height", [320, 480, 640, 736, 960])
    s.choice("image_width", [320, 480, 640, 736, 960])
    s.choice("width_mult", [0.35, 0.5, 0.75])
    s.choice("act", ["relu", "hswish"])
    s.choice("inner", [64, 96, 128, 256])
    s.choice("maps", [1, 2])
    s.choice("dynamic", [False, True])


def _det_inputs(p: Mapping[str, Any]) -> list[InputSpec]:
    return [InputSpec("x", (int(p["batch"]), 3, int(p["height"]), int(p["image_width"])))]


def _det_rewrite(data: bytes, p: Mapping[str, Any]) -> bytes:
    if not p["dynamic"]:
        return data
    return _rewrite.apply(data, dynamic={"x": {0: "batch", 2: "height", 3: "width"}})


OCR_DET = Family(
    "ocr_det",
    "DBNet-style text detectors on large images: MobileNetV3 backbone, FPN, full-size map",
    "detection",
    _det_sample,
    _OCRDet,
    _det_inputs,
    int8="static",
    tags=("dynamic-shape", "large-input"),
    rewrite=_det_rewrite,
)
