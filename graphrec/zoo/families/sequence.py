"""Sequence and audio families: LSTM/GRU models and 1-D audio CNNs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from graphrec.zoo._spec import Family, InputSpec, ParamSampler, sample_batch

# --------------------------------------------------------------------------- LSTM / GRU


class _RNNModel(nn.Module):
    def __init__(self, p: Mapping[str, Any]) -> None:
        super().__init__()
        self.tokens = p["input_kind"] == "tokens"
        if self.tokens:
            self.embed: nn.Module = nn.Embedding(int(p["vocab"]), int(p["embed_dim"]))
            feat = int(p["embed_dim"])
        else:
            self.embed = nn.Identity()
            feat = int(p["features"])
        cls = nn.LSTM if p["cell"] == "lstm" else nn.GRU
        hidden = int(p["hidden"])
        bidir = bool(p["bidirectional"])
        self.rnn = cls(feat, hidden, int(p["layers"]), batch_first=True, bidirectional=bidir)
        self.last_only = p["output"] == "last"
        self.head = nn.Linear(hidden * (2 if bidir else 1), int(p["classes"]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.rnn(self.embed(x))
        if self.last_only:
            y = y[:, -1]
        return self.head(y)


def _rnn_sample(s: ParamSampler) -> None:
    sample_batch(s)
    kind = s.choice("input_kind", ["features", "tokens"])
    s.choice("seq_len", [16, 32, 64, 100, 200])
    if kind == "tokens":
        s.choice("vocab", [1000, 4000, 8000])
        s.choice("embed_dim", [32, 64, 128])
    else:
        s.choice("features", [13, 40, 80])
    s.choice("cell", ["gru", "lstm"])
    s.choice("hidden", [32, 64, 128, 256])
    s.choice("layers", [1, 2, 3], p=[0.45, 0.45, 0.1])
    s.choice("bidirectional", [False, True])
    s.choice("output", ["last", "sequence"])
    s.choice("classes", [2, 10, 29, 100])


def _rnn_inputs(p: Mapping[str, Any]) -> list[InputSpec]:
    b, t = int(p["batch"]), int(p["seq_len"])
    if p["input_kind"] == "tokens":
        return [InputSpec("input_ids", (b, t), "int64", high=int(p["vocab"]))]
    return [InputSpec("input", (b, t, int(p["features"])))]


RNN = Family(
    "rnn",
    "LSTM / GRU sequence models: (bi)directional stacks over features or token embeddings",
    "speech",
    _rnn_sample,
    _RNNModel,
    _rnn_inputs,
    int8="dynamic",
)

# --------------------------------------------------------------------------- 1-D audio CNN


class _Conv1dBlock(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int, separable: bool) -> None:
        super().__init__()
        pad = kernel // 2
        if separable:
            conv: nn.Module = nn.Sequential(
                nn.Conv1d(cin, cin, kernel, stride, pad, groups=cin, bias=False),
                nn.Conv1d(cin, cout, 1, bias=False),
            )
        else:
            conv = nn.Conv1d(cin, cout, kernel, stride, pad, bias=False)
        self.body = nn.Sequential(conv, nn.BatchNorm1d(cout))
        self.short: nn.Module | None = None
        if stride == 1 and cin == cout:
            self.short = nn.Identity()
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        if self.short is not None:
            y = y + self.short(x)
        return self.relu(y)


class _AudioCNN(nn.Module):
    def __init__(self, p: Mapping[str, Any]) -> None:
        super().__init__()
        ch = int(p["channels"])
        sep = bool(p["separable"])
        layers: list[nn.Module] = []
        if p["frontend"] == "waveform":
            k = int(p["first_kernel"])
            layers += [
                nn.Conv1d(1, ch, k, int(p["first_stride"]), k // 2),
                nn.BatchNorm1d(ch),
                nn.ReLU(),
                nn.MaxPool1d(4),
            ]
        else:
            layers += [nn.Conv1d(int(p["n_mels"]), ch, 3, 1, 1), nn.BatchNorm1d(ch), nn.ReLU()]
        cin = ch
        for i in range(int(p["blocks"])):
            cout = ch * 2 ** (i // 2)
            stride = 2 if i % 2 == 1 else 1
            layers.append(_Conv1dBlock(cin, cout, int(p["kernel"]), stride, sep))
            if p["frontend"] == "waveform" and i % 2 == 1:
                layers.append(nn.MaxPool1d(2))
            cin = cout
        layers += [nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(cin, int(p["classes"]))]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _audio_sample(s: ParamSampler) -> None:
    sample_batch(s)
    frontend = s.choice("frontend", ["mel", "waveform"])
    if frontend == "waveform":
        s.choice("samples", [4000, 8000, 16000])
        s.choice("first_kernel", [80, 160, 400])
        s.choice("first_stride", [4, 8, 16])
    else:
        s.choice("n_mels", [40, 64, 80])
        s.choice("frames", [49, 101, 201])
    s.choice("channels", [16, 32, 48, 64])
    s.choice("blocks", [2, 3, 4, 6])
    s.choice("kernel", [3, 5, 9, 15])
    s.choice("separable", [False, True])
    s.choice("classes", [2, 12, 35, 50])


def _audio_inputs(p: Mapping[str, Any]) -> list[InputSpec]:
    b = int(p["batch"])
    if p["frontend"] == "waveform":
        return [InputSpec("input", (b, 1, int(p["samples"])))]
    return [InputSpec("input", (b, int(p["n_mels"]), int(p["frames"])))]


AUDIO_CNN = Family(
    "audio_cnn",
    "1-D audio CNNs: raw-waveform (M5-like) or mel-frame (TC-ResNet-like) convolutions",
    "audio",
    _audio_sample,
    _AudioCNN,
    _audio_inputs,
)
