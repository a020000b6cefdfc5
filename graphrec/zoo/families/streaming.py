"""Streaming and control-flow families: models with state inputs, ``If`` and ``Loop``.

* ``vad_stream``: a Silero-style voice-activity detector. One audio chunk, the recurrent
  state and the sample rate go in; a speech probability and the next state come out.
  The sample rate selects an ``If`` branch (scaling only, or a whole convolution
  front end per branch, as the real model has, with branch outputs of equal or of
  different lengths).
* ``rnn_decoder``: an RNN decoder with its hidden state as input and output: either one
  streaming step (no control flow) or a greedy attention decoder whose steps run in an
  ONNX ``Loop`` (trip count from the encoder length), fed back through ``ArgMax``.

Both modules are TorchScript-compiled so that the exporter keeps the control flow; the
``.torch.json`` sidecar rebuilds the same scripted module.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from graphrec.zoo._spec import Family, InputSpec, ParamSampler
from graphrec.zoo.families import _rewrite

# --------------------------------------------------------------------------- cells


class _LSTMStep(nn.Module):
    """One LSTM step from Linear layers (TorchScript-exportable, unlike ``nn.LSTMCell``)."""

    def __init__(self, cin: int, hidden: int) -> None:
        super().__init__()
        self.ih = nn.Linear(cin, 4 * hidden)
        self.hh = nn.Linear(hidden, 4 * hidden)

    def forward(
        self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        i, f, g, o = (self.ih(x) + self.hh(h)).chunk(4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


class _GRUStep(nn.Module):
    """One GRU step from Linear layers (TorchScript-exportable, unlike ``nn.GRUCell``)."""

    def __init__(self, cin: int, hidden: int) -> None:
        super().__init__()
        self.ih = nn.Linear(cin, 3 * hidden)
        self.hh = nn.Linear(hidden, 3 * hidden)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        ir, iz, inn = self.ih(x).chunk(3, 1)
        hr, hz, hn = self.hh(h).chunk(3, 1)
        r = torch.sigmoid(ir + hr)
        z = torch.sigmoid(iz + hz)
        n = torch.tanh(inn + r * hn)
        return (1 - z) * n + z * h


# --------------------------------------------------------------------------- VAD


class _Frontend(nn.Module):
    """STFT-like strided Conv1d → magnitude (square + sqrt) → log."""

    def __init__(self, filters: int, window: int, hop: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, filters, window, hop, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x.unsqueeze(1))
        return torch.log(torch.sqrt(y * y + 1e-6) + 1e-3)


class _VAD(nn.Module):
    def __init__(self, p: Mapping[str, Any]) -> None:
        super().__init__()
        filters, window, hop = int(p["filters"]), int(p["window"]), int(p["hop"])
        self.conv_branches = p["branch"] != "scale"
        self.front16 = _Frontend(filters, window, hop)
        # the 8 kHz branch: its own front end (with half the window and hop, its output is
        # longer than the 16 kHz branch's: the branches disagree on shapes), or the shared
        # one after a scaling
        half = p["branch"] == "frontend_resample"
        self.front8 = _Frontend(filters, window // 2 if half else window, hop // 2 if half else hop)
        self.scale8 = nn.Parameter(torch.rand(1) + 0.5)
        layers: list[nn.Module] = []
        cin = filters
        ch = int(p["channels"])
        for i in range(int(p["blocks"])):
            layers += [nn.Conv1d(cin, ch, 3, 2 if i % 2 == 0 else 1, 1), nn.ReLU()]
            cin = ch
        self.encoder = nn.Sequential(*layers)
        self.cell = _LSTMStep(ch, int(p["hidden"]))
        self.out = nn.Linear(int(p["hidden"]), 1)

    def forward(
        self, x: torch.Tensor, state: torch.Tensor, sr: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if bool(sr == 16000):
            feats = self.front16(x)
        elif self.conv_branches:
            feats = self.front8(x)
        else:
            feats = self.front16(x * self.scale8)
        z = self.encoder(feats).mean(2)
        h, c = self.cell(z, state[0], state[1])
        prob = torch.sigmoid(self.out(torch.relu(h)))
        return prob, torch.stack([h, c])


def _script(module: nn.Module) -> nn.Module:
    """TorchScript-compile ``module`` (the exporter then keeps its If and Loop)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.script(module)


def _canonical(data: bytes, p: Mapping[str, Any]) -> bytes:
    """Scripted exports carry process-dependent names: rename them canonically."""
    return _rewrite.apply(data, canonical=True)


def _vad_build(p: Mapping[str, Any]) -> nn.Module:
    return _script(_VAD(p))


def _vad_sample(s: ParamSampler) -> None:
    s.set("batch", 1)
    s.choice("chunk", [256, 512, 1024])
    s.choice("branch", ["scale", "frontend", "frontend_resample"])
    s.choice("filters", [32, 64, 129])
    window = s.choice("window", [128, 256])
    s.set("hop", window // 2)
    s.integer("blocks", 1, 4)
    s.choice("channels", [32, 64, 128])
    s.choice("hidden", [32, 64, 128])


def _vad_inputs(p: Mapping[str, Any]) -> list[InputSpec]:
    b = int(p["batch"])
    return [
        InputSpec("input", (b, int(p["chunk"]))),
        InputSpec("state", (2, b, int(p["hidden"]))),
        InputSpec("sr", (), "int64", low=16000, high=16001),
    ]


VAD_STREAM = Family(
    "vad_stream",
    "Silero-style streaming VAD: chunk + LSTM state + sample rate, If on the sample rate",
    "audio",
    _vad_sample,
    _vad_build,
    _vad_inputs,
    output_names=("output", "stateN"),
    int8="dynamic",
    tags=("control-flow", "stateful"),
    rewrite=_canonical,
)

# --------------------------------------------------------------------------- RNN decoder


class _Decoder(nn.Module):
    def __init__(self, p: Mapping[str, Any]) -> None:
        super().__init__()
        vocab, emb, hidden, enc = (int(p[k]) for k in ("vocab", "embed", "hidden", "enc_dim"))
        self.loop = p["mode"] == "loop"
        self.ratio = int(p["step_ratio"])
        self.embed = nn.Embedding(vocab, emb)
        self.query = nn.Linear(hidden, enc)
        self.cell = _GRUStep(emb + enc, hidden)
        self.out = nn.Linear(hidden + enc, vocab)

    def _step(
        self, enc: torch.Tensor, h: torch.Tensor, tok: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        scores = torch.bmm(enc, self.query(h).unsqueeze(2)).squeeze(2)
        attn = torch.softmax(scores, 1)
        context = torch.bmm(attn.unsqueeze(1), enc).squeeze(1)
        h = self.cell(torch.cat([self.embed(tok), context], 1), h)
        return self.out(torch.cat([h, context], 1)), h

    def forward(
        self, enc: torch.Tensor, hidden: torch.Tensor, token: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.loop:
            logits, h = self._step(enc, hidden, token)
            return logits.unsqueeze(1), h
        h = hidden
        tok = token
        outs: list[torch.Tensor] = []
        for _ in range(enc.size(1) // self.ratio):
            logits, h = self._step(enc, h, tok)
            tok = torch.argmax(logits, 1)
            outs.append(logits)
        return torch.stack(outs, 1), h


def _decoder_build(p: Mapping[str, Any]) -> nn.Module:
    return _script(_Decoder(p))


def _decoder_sample(s: ParamSampler) -> None:
    s.choice("batch", [1, 2, 4], p=[0.7, 0.2, 0.1])
    s.choice("mode", ["step", "loop"])
    s.choice("enc_len", [16, 32, 64, 100])
    s.choice("step_ratio", [4, 2, 1])
    s.choice("enc_dim", [64, 128, 256])
    s.choice("vocab", [100, 1000, 5000])
    s.choice("embed", [32, 64, 128])
    s.choice("hidden", [64, 128, 256])


def _decoder_inputs(p: Mapping[str, Any]) -> list[InputSpec]:
    b = int(p["batch"])
    return [
        InputSpec("encoder_out", (b, int(p["enc_len"]), int(p["enc_dim"]))),
        InputSpec("hidden", (b, int(p["hidden"]))),
        InputSpec("token", (b,), "int64", high=int(p["vocab"])),
    ]


RNN_DECODER = Family(
    "rnn_decoder",
    "Attention GRU decoder with state in/out: one streaming step, or greedy steps in a Loop",
    "speech",
    _decoder_sample,
    _decoder_build,
    _decoder_inputs,
    output_names=("logits", "hidden_out"),
    int8="dynamic",
    tags=("control-flow", "stateful"),
    rewrite=_canonical,
)
