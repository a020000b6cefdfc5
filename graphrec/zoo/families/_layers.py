"""Small torch layers shared by several zoo families (all export with the legacy exporter)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from graphrec.zoo._spec import make_divisible

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "hswish": nn.Hardswish,
    "silu": nn.SiLU,
    "gelu": nn.GELU,
    "leaky": nn.LeakyReLU,
}


def act(name: str) -> nn.Module:
    """A fresh activation module by name (see :data:`ACTIVATIONS`)."""
    return ACTIVATIONS[name]()


class ConvBNAct(nn.Sequential):
    """Conv2d → BatchNorm2d → activation (``act_name=None`` leaves the activation out)."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int = 3,
        stride: int = 1,
        groups: int = 1,
        act_name: str | None = "relu",
    ) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
        ]
        if act_name is not None:
            layers.append(act(act_name))
        super().__init__(*layers)


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation: global pool → reduce → act → expand → gate."""

    def __init__(
        self, channels: int, reduced: int, act_name: str = "relu", gate: str = "sigmoid"
    ) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, max(1, reduced), 1)
        self.act = act(act_name)
        self.fc2 = nn.Conv2d(max(1, reduced), channels, 1)
        self.gate: nn.Module = nn.Hardsigmoid() if gate == "hsigmoid" else nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.fc2(self.act(self.fc1(self.pool(x)))))


class InvertedResidual(nn.Module):
    """MobileNetV2/V3 and EfficientNet MBConv block: expand → depthwise → (SE) → project."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int,
        stride: int,
        expand: float,
        act_name: str = "relu6",
        se_ratio: float = 0.0,
        se_gate: str = "sigmoid",
    ) -> None:
        super().__init__()
        hidden = make_divisible(cin * expand)
        layers: list[nn.Module] = []
        if hidden != cin:
            layers.append(ConvBNAct(cin, hidden, 1, act_name=act_name))
        layers.append(ConvBNAct(hidden, hidden, kernel, stride, groups=hidden, act_name=act_name))
        if se_ratio > 0:
            reduced = (
                make_divisible(cin * se_ratio) if se_gate == "hsigmoid" else int(cin * se_ratio)
            )
            layers.append(SqueezeExcite(hidden, max(1, reduced), "relu", se_gate))
        layers.append(ConvBNAct(hidden, cout, 1, act_name=None))
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.residual else y


class ClassifierHead(nn.Module):
    """Global average pool → flatten → (dropout-free) linear classifier."""

    def __init__(self, channels: int, classes: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(x), 1))


class MultiHeadSelfAttention(nn.Module):
    """Plain multi-head self-attention written with Linear/MatMul/Softmax (no fused kernels).

    Args:
        dim: Model width.
        heads: Number of heads (must divide ``dim``).
        causal: Mask future positions (GPT-style) with a fixed ``seq_len`` x ``seq_len`` mask.
        seq_len: Sequence length for the causal mask.
    """

    def __init__(self, dim: int, heads: int, causal: bool = False, seq_len: int = 0) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.causal = causal
        if causal:
            mask = torch.triu(torch.full((seq_len, seq_len), float("-inf")), diagonal=1)
            self.register_buffer("mask", mask, persistent=False)

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        scores = torch.matmul(q, k.transpose(-2, -1)) * (self.head_dim**-0.5)
        if self.causal:
            scores = scores + self.mask
        if bias is not None:
            scores = scores + bias
        attn = F.softmax(scores, dim=-1)
        out = torch.matmul(attn, v).transpose(1, 2).reshape(b, n, d)
        return self.proj(out)


class TransformerBlock(nn.Module):
    """Transformer layer, pre-norm (ViT/GPT) or post-norm (BERT), GELU MLP."""

    def __init__(
        self,
        dim: int,
        heads: int,
        mlp_ratio: float,
        pre_norm: bool = True,
        causal: bool = False,
        seq_len: int = 0,
    ) -> None:
        super().__init__()
        self.pre_norm = pre_norm
        self.norm1 = nn.LayerNorm(dim)
        self.attn = MultiHeadSelfAttention(dim, heads, causal, seq_len)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        if self.pre_norm:
            x = x + self.attn(self.norm1(x), bias)
            return x + self.mlp(self.norm2(x))
        x = self.norm1(x + self.attn(x, bias))
        return self.norm2(x + self.mlp(x))
