"""Three small trainable models for validating plans on a real engine: MLP, CNN, transformer.

Each is an ``nn.Sequential`` of blocks, so its ONNX export carries one module scope per
block and the planner's layers are the blocks. :func:`write_model` exports one to ONNX
with a ``.torch.json`` sidecar (factory :func:`build`), which is what ``graphrec plan``
needs to measure layers and run a plan.

Example:
    >>> path = write_model("mlp", "/tmp/models", width=256)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from graphrec.parallel.profile import PlanInputError

__all__ = ["KINDS", "build", "input_shape", "write_model"]

#: Model kinds and their default sizes.
KINDS: dict[str, dict[str, int]] = {
    "mlp": {"width": 512, "depth": 8, "features": 256, "classes": 10},
    "cnn": {"width": 32, "depth": 6, "resolution": 32, "classes": 10},
    "transformer": {"dim": 128, "depth": 4, "seq": 32, "heads": 4, "classes": 10},
}


class _Block(nn.Module):
    """A pre-norm transformer encoder block (attention + MLP)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        qkv = self.qkv(self.norm1(x)).reshape(b, n, 3, self.heads, d // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        att = torch.softmax(q @ k.transpose(-2, -1) * (d // self.heads) ** -0.5, dim=-1)
        x = x + self.proj((att @ v).transpose(1, 2).reshape(b, n, d))
        return x + self.mlp(self.norm2(x))


class _Pool(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=1)


def _sizes(kind: str, overrides: dict[str, Any]) -> dict[str, int]:
    if kind not in KINDS:
        raise PlanInputError(f"unknown model kind {kind!r}; choose one of {sorted(KINDS)}")
    unknown = sorted(set(overrides) - set(KINDS[kind]))
    if unknown:
        raise PlanInputError(f"{kind}: unknown size {unknown}; sizes are {sorted(KINDS[kind])}")
    return {**KINDS[kind], **{k: int(v) for k, v in overrides.items()}}


def build(kind: str, seed: int = 0, **sizes: Any) -> nn.Module:
    """Build one of :data:`KINDS` with weights drawn from ``seed``.

    Raises:
        PlanInputError: An unknown kind or size name.
    """
    s = _sizes(kind, sizes)
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        layers: list[nn.Module]
        if kind == "mlp":
            w = s["width"]
            layers = [nn.Sequential(nn.Linear(s["features"], w), nn.ReLU())]
            layers += [nn.Sequential(nn.Linear(w, w), nn.ReLU()) for _ in range(s["depth"] - 2)]
            layers.append(nn.Linear(w, s["classes"]))
        elif kind == "cnn":
            w = s["width"]
            layers = [nn.Sequential(nn.Conv2d(3, w, 3, padding=1), nn.ReLU())]
            for _ in range(s["depth"] - 2):
                layers.append(nn.Sequential(nn.Conv2d(w, w, 3, padding=1), nn.ReLU()))
            layers.append(
                nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(w, s["classes"]))
            )
        else:
            d = s["dim"]
            layers = [nn.Linear(d, d)]
            layers += [_Block(d, s["heads"]) for _ in range(s["depth"])]
            layers.append(nn.Sequential(_Pool(), nn.Linear(d, s["classes"])))
        return nn.Sequential(*layers)
    finally:
        torch.random.set_rng_state(state)


def input_shape(kind: str, batch: int, **sizes: Any) -> list[int]:
    """The input shape of a model of ``kind`` for ``batch`` samples."""
    s = _sizes(kind, sizes)
    if kind == "mlp":
        return [batch, s["features"]]
    if kind == "cnn":
        return [batch, 3, s["resolution"], s["resolution"]]
    return [batch, s["seq"], s["dim"]]


def write_model(kind: str, out_dir: str | Path, *, name: str | None = None, **sizes: Any) -> Path:
    """Export a model of ``kind`` to ``out_dir/NAME.onnx`` with its ``.torch.json`` sidecar.

    Returns:
        The ONNX path.
    """
    s = _sizes(kind, sizes)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name or kind}.onnx"
    module = build(kind, **{k: v for k, v in s.items()}).eval()
    x = torch.randn(input_shape(kind, 1, **s))
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (x,),
            str(path),
            dynamo=False,
            opset_version=17,
            input_names=["x"],
            output_names=["y"],
            dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
        )
    side = path.with_suffix(".torch.json")
    kwargs = {"kind": kind, **s}
    side.write_text(
        json.dumps({"factory": "graphrec.parallel.models:build", "kwargs": kwargs}, indent=1)
        + "\n",
        encoding="utf-8",
    )
    return path
