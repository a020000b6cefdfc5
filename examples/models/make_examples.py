"""Regenerate the example models shipped in this folder (random weights, deterministic).

Run: ``.venv/bin/python examples/models/make_examples.py``. Needs torch.

* ``tiny_convnet.onnx``: a small MobileNetV2-style image classifier (3x224x224 input,
  dynamic batch, inverted residual blocks with depthwise convolutions), exported with
  the legacy exporter at opset 17 with weights inside the file.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


class InvertedResidual(nn.Module):
    """MobileNetV2 block: expand 1x1, depthwise 3x3, project 1x1, residual when shapes match."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        self.use_res = stride == 1 and cin == cout
        self.body = nn.Sequential(
            nn.Conv2d(cin, hidden, 1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.use_res else y


class TinyConvNet(nn.Module):
    """A 0.35-width MobileNetV2-like network with 10 classes."""

    def __init__(self) -> None:
        super().__init__()
        cfg = [(16, 1, 1), (24, 2, 4), (24, 1, 4), (32, 2, 4), (32, 1, 4), (64, 2, 4), (96, 1, 4)]
        layers: list[nn.Module] = [
            nn.Conv2d(3, 16, 3, 2, 1, bias=False),
            nn.BatchNorm2d(16),
            nn.ReLU6(),
        ]
        cin = 16
        for cout, stride, expand in cfg:
            layers.append(InvertedResidual(cin, cout, stride, expand))
            cin = cout
        layers += [nn.Conv2d(cin, 256, 1, bias=False), nn.BatchNorm2d(256), nn.ReLU6()]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
        return self.head(x)


def main() -> None:
    """Export every example model next to this script."""
    torch.manual_seed(0)
    here = Path(__file__).resolve().parent
    model = TinyConvNet().eval()
    torch.onnx.export(
        model,
        (torch.randn(1, 3, 224, 224),),
        str(here / "tiny_convnet.onnx"),
        dynamo=False,
        opset_version=17,
        input_names=["image"],
        output_names=["logits"],
        dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
    )
    print("wrote", here / "tiny_convnet.onnx")


if __name__ == "__main__":
    main()
