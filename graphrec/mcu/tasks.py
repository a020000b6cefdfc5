"""The real task of ``graphrec port``: scikit-learn's digits, an MLP and a small CNN.

Both are trained with PyTorch (CPU, fixed seeds) and exported to ONNX; the example
``examples/port_digits.py`` and ``benchmarks/bench_port.py`` use them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["DigitsData", "load_digits_split", "train_digits_cnn", "train_digits_mlp"]


@dataclass
class DigitsData:
    """The 8x8 digits, pixels scaled to [0, 1], split 80/20 (stratified, seed 0)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load_digits_split(seed: int = 0) -> DigitsData:
    """scikit-learn's ``load_digits`` (1797 images), as float32 in [0, 1], 80/20 split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.2, random_state=seed, stratify=y)
    return DigitsData(xtr, ytr.astype(np.int64), xte, yte.astype(np.int64))


def _train(model: object, x: np.ndarray, y: np.ndarray, epochs: int, seed: int) -> None:
    import torch

    torch.set_num_threads(1)  # tiny models: threads only contend
    torch.manual_seed(seed)
    net: torch.nn.Module = model  # type: ignore[assignment]
    opt = torch.optim.Adam(net.parameters(), lr=3e-3, weight_decay=1e-4)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    gen = torch.Generator().manual_seed(seed)
    net.train()
    for _ in range(epochs):
        perm = torch.randperm(len(xt), generator=gen)
        for k in range(0, len(xt), 64):
            idx = perm[k : k + 64]
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
    net.eval()


def _export(net: object, example_shape: tuple[int, ...], path: Path) -> Path:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        net,  # type: ignore[arg-type]
        (torch.zeros(example_shape),),
        str(path),
        input_names=["x"],
        output_names=["logits"],
        opset_version=17,
        dynamo=False,
    )
    return path


def train_digits_mlp(
    out: str | os.PathLike[str],
    data: DigitsData,
    *,
    hidden: int = 32,
    epochs: int = 40,
    seed: int = 0,
) -> tuple[Path, dict[str, np.ndarray]]:
    """Train a 64-``hidden``-10 ReLU MLP and export it (outputs: logits).

    Returns:
        The ONNX path and the weights ``{"w1", "b1", "w2", "b2"}`` (``w`` as ``[out, in]``).
    """
    import torch

    torch.manual_seed(seed)
    first, last = torch.nn.Linear(64, hidden), torch.nn.Linear(hidden, 10)
    net = torch.nn.Sequential(first, torch.nn.ReLU(), last)
    _train(net, data.x_train, data.y_train, epochs, seed)
    weights = {
        "w1": first.weight.detach().numpy().copy(),
        "b1": first.bias.detach().numpy().copy(),
        "w2": last.weight.detach().numpy().copy(),
        "b2": last.bias.detach().numpy().copy(),
    }
    return _export(net, (1, 64), Path(out)), weights


def train_digits_cnn(
    out: str | os.PathLike[str], data: DigitsData, *, epochs: int = 30, seed: int = 0
) -> Path:
    """Train a small CNN on the 1x8x8 images and export it (outputs: logits).

    Conv 3x3 (8) + BatchNorm + ReLU, MaxPool 2, depthwise Conv 3x3 + ReLU, Conv 1x1 (16)
    + ReLU, MaxPool 2, Flatten, Linear 64 -> 10.
    """
    import torch

    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1),
        torch.nn.BatchNorm2d(8),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(8, 8, 3, padding=1, groups=8),
        torch.nn.ReLU(),
        torch.nn.Conv2d(8, 16, 1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(64, 10),
    )
    x = data.x_train.reshape(-1, 1, 8, 8)
    _train(net, x, data.y_train, epochs, seed)
    return _export(net, (1, 1, 8, 8), Path(out))
