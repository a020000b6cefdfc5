"""The torch modules behind tests/graph/tflite_models/*.tflite (see make_tflite_fixtures.py).

FLOPs and parameters do not depend on the weights, so a test exports the same
architecture to ONNX and compares the kernel's figures for the two files.
"""

from __future__ import annotations

from typing import Any

#: name -> example input shape
FIXTURES: dict[str, tuple[int, ...]] = {
    "tiny_cnn": (1, 3, 32, 32),
    "tiny_mlp": (4, 32),
}


def build(name: str) -> Any:
    """The module of fixture ``name`` (deterministic weights, eval mode)."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    if name == "tiny_cnn":
        net: nn.Module = nn.Sequential(
            nn.Conv2d(3, 16, 3, 2, 1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.Conv2d(16, 16, 3, 1, 1, groups=16),
            nn.Conv2d(16, 32, 1),
            nn.ReLU6(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, 2, 1),
            nn.Hardswish(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(64, 10),
        )
    elif name == "tiny_mlp":
        net = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 8))
    else:
        raise KeyError(name)
    return net.eval()
