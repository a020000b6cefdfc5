"""Attention and MLP-only families: ViT/DeiT, BERT-style encoders, GPT-style decoders, MLP-Mixer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from graphrec.zoo._spec import Family, InputSpec, ParamSampler, image_input, sample_batch
from graphrec.zoo.families._layers import TransformerBlock

# --------------------------------------------------------------------------- ViT / DeiT


class _ViT(nn.Module):
    def __init__(self, p: Mapping[str, Any]) -> None:
        super().__init__()
        dim = int(p["dim"])
        patch = int(p["patch"])
        tokens = (int(p["resolution"]) // patch) ** 2
        self.distilled = bool(p["distilled"])
        self.pool = str(p["pool"])
        extra = 2 if self.distilled else 1
        self.embed = nn.Conv2d(3, dim, patch, patch)
        self.cls = nn.Parameter(torch.randn(1, extra, dim) * 0.02)
        self.pos = nn.Parameter(torch.randn(1, tokens + extra, dim) * 0.02)
        self.blocks = nn.ModuleList(
            TransformerBlock(dim, int(p["heads"]), float(p["mlp_ratio"]))
            for _ in range(int(p["depth"]))
        )
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, int(p["classes"]))
        self.head_dist = nn.Linear(dim, int(p["classes"])) if self.distilled else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.embed(x).flatten(2).transpose(1, 2)
        y = torch.cat([self.cls.expand(y.shape[0], -1, -1), y], 1) + self.pos
        for block in self.blocks:
            y = block(y)
        y = self.norm(y)
        if self.pool == "mean":
            return self.head(y.mean(dim=1))
        out = self.head(y[:, 0])
        if self.head_dist is not None:
            out = (out + self.head_dist(y[:, 1])) * 0.5
        return out


def _vit_sample(s: ParamSampler) -> None:
    sample_batch(s)
    res = s.choice("resolution", [32, 64, 96, 128, 160, 224])
    s.choice("patch", [16, 8] if res >= 96 else [8, 4])
    dim = s.choice("dim", [64, 96, 128, 192, 256])
    s.choice("heads", [h for h in (2, 3, 4, 6, 8) if dim % h == 0 and dim // h >= 16])
    s.choice("depth", [2, 3, 4, 6, 8])
    s.choice("mlp_ratio", [2.0, 3.0, 4.0])
    s.choice("distilled", [False, True])
    s.choice("pool", ["cls", "mean"])
    s.choice("classes", [10, 100, 1000])


VIT = Family(
    "vit",
    "ViT / DeiT: patch embedding, pre-norm transformer, class (+distillation) token",
    "vision",
    _vit_sample,
    _ViT,
    image_input,
    int8="dynamic",
)

# --------------------------------------------------------------------------- BERT


class _Bert(nn.Module):
    def __init__(self, p: Mapping[str, Any]) -> None:
        super().__init__()
        dim = int(p["dim"])
        seq = int(p["seq_len"])
        self.with_mask = bool(p["with_mask"])
        self.head_kind = str(p["head"])
        self.word = nn.Embedding(int(p["vocab"]), dim)
        self.position = nn.Embedding(seq, dim)
        self.token_type = nn.Embedding(2, dim)
        self.register_buffer("positions", torch.arange(seq).unsqueeze(0), persistent=False)
        self.register_buffer("types", torch.zeros(1, seq, dtype=torch.long), persistent=False)
        self.norm = nn.LayerNorm(dim)
        self.blocks = nn.ModuleList(
            TransformerBlock(dim, int(p["heads"]), float(p["mlp_ratio"]), pre_norm=False)
            for _ in range(int(p["layers"]))
        )
        self.pooler = nn.Linear(dim, dim)
        self.classifier = nn.Linear(dim, int(p["classes"]))

    def forward(self, ids: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        y = self.word(ids) + self.position(self.positions) + self.token_type(self.types)
        y = self.norm(y)
        bias = None
        if mask is not None:
            bias = (1.0 - mask[:, None, None, :].to(torch.float32)) * -10000.0
        for block in self.blocks:
            y = block(y, bias)
        if self.head_kind == "hidden":
            return y
        return self.classifier(torch.tanh(self.pooler(y[:, 0])))


def _bert_sample(s: ParamSampler) -> None:
    sample_batch(s)
    s.choice("seq_len", [16, 32, 64, 128, 256], p=[0.15, 0.25, 0.25, 0.25, 0.1])
    s.choice("vocab", [1000, 4000, 8000, 16000])
    dim = s.choice("dim", [64, 128, 192, 256, 384])
    s.choice("heads", [h for h in (2, 4, 6, 8, 12) if dim % h == 0 and dim // h >= 16])
    s.choice("layers", [1, 2, 3, 4, 6])
    s.choice("mlp_ratio", [2.0, 4.0])
    s.choice("with_mask", [False, True])
    s.choice("head", ["cls", "hidden"])
    s.choice("classes", [2, 3, 10])


def _bert_inputs(p: Mapping[str, Any]) -> list[InputSpec]:
    shape = (int(p["batch"]), int(p["seq_len"]))
    specs = [InputSpec("input_ids", shape, "int64", high=int(p["vocab"]))]
    if p["with_mask"]:
        specs.append(InputSpec("attention_mask", shape, "int64", high=2, low=1))
    return specs


BERT = Family(
    "bert",
    "BERT-style encoder: token/position/type embeddings, post-norm blocks, pooler head",
    "nlp",
    _bert_sample,
    _Bert,
    _bert_inputs,
    int8="dynamic",
)

# --------------------------------------------------------------------------- GPT


class _GPT(nn.Module):
    def __init__(self, p: Mapping[str, Any]) -> None:
        super().__init__()
        dim = int(p["dim"])
        seq = int(p["seq_len"])
        self.word = nn.Embedding(int(p["vocab"]), dim)
        self.position = nn.Parameter(torch.randn(1, seq, dim) * 0.02)
        self.blocks = nn.ModuleList(
            TransformerBlock(dim, int(p["heads"]), float(p["mlp_ratio"]), True, True, seq)
            for _ in range(int(p["layers"]))
        )
        self.norm = nn.LayerNorm(dim)
        self.lm_head = nn.Linear(dim, int(p["vocab"]), bias=False)
        self.last_only = bool(p["last_token_only"])

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        y = self.word(ids) + self.position
        for block in self.blocks:
            y = block(y)
        y = self.norm(y)
        if self.last_only:
            y = y[:, -1]
        return self.lm_head(y)


def _gpt_sample(s: ParamSampler) -> None:
    sample_batch(s)
    s.choice("seq_len", [16, 32, 64, 128, 256], p=[0.15, 0.25, 0.25, 0.25, 0.1])
    s.choice("vocab", [1000, 4000, 8000, 16000])
    dim = s.choice("dim", [64, 128, 192, 256, 384])
    s.choice("heads", [h for h in (2, 4, 6, 8, 12) if dim % h == 0 and dim // h >= 16])
    s.choice("layers", [1, 2, 3, 4, 6])
    s.choice("mlp_ratio", [2.0, 4.0])
    s.choice("last_token_only", [True, False])


def _gpt_inputs(p: Mapping[str, Any]) -> list[InputSpec]:
    shape = (int(p["batch"]), int(p["seq_len"]))
    return [InputSpec("input_ids", shape, "int64", high=int(p["vocab"]))]


GPT = Family(
    "gpt",
    "GPT-style decoder: causal pre-norm blocks over a fixed sequence, LM head",
    "nlp",
    _gpt_sample,
    _GPT,
    _gpt_inputs,
    output_names=("logits",),
    int8="dynamic",
)

# --------------------------------------------------------------------------- MLP-Mixer


class _MixerBlock(nn.Module):
    def __init__(self, tokens: int, dim: int, token_hidden: int, channel_hidden: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.token_mlp = nn.Sequential(
            nn.Linear(tokens, token_hidden), nn.GELU(), nn.Linear(token_hidden, tokens)
        )
        self.norm2 = nn.LayerNorm(dim)
        self.channel_mlp = nn.Sequential(
            nn.Linear(dim, channel_hidden), nn.GELU(), nn.Linear(channel_hidden, dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.token_mlp(self.norm1(x).transpose(1, 2)).transpose(1, 2)
        return x + self.channel_mlp(self.norm2(x))


class _Mixer(nn.Module):
    def __init__(self, p: Mapping[str, Any]) -> None:
        super().__init__()
        dim = int(p["dim"])
        patch = int(p["patch"])
        tokens = (int(p["resolution"]) // patch) ** 2
        self.embed = nn.Conv2d(3, dim, patch, patch)
        self.blocks = nn.Sequential(
            *(
                _MixerBlock(tokens, dim, int(p["token_hidden"]), int(dim * p["channel_ratio"]))
                for _ in range(int(p["depth"]))
            )
        )
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, int(p["classes"]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.blocks(self.embed(x).flatten(2).transpose(1, 2))
        return self.head(self.norm(y).mean(dim=1))


def _mixer_sample(s: ParamSampler) -> None:
    sample_batch(s)
    res = s.choice("resolution", [32, 64, 96, 128, 160, 224])
    s.choice("patch", [16, 8] if res >= 96 else [8, 4])
    s.choice("dim", [64, 128, 192, 256])
    s.choice("depth", [2, 4, 6, 8])
    s.choice("token_hidden", [32, 64, 128, 256])
    s.choice("channel_ratio", [2.0, 4.0])
    s.choice("classes", [10, 100, 1000])


MLP_MIXER = Family(
    "mlp_mixer",
    "MLP-Mixer: patch embedding, token-mixing and channel-mixing MLPs",
    "vision",
    _mixer_sample,
    _Mixer,
    image_input,
    int8="dynamic",
)
