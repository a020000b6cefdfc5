"""Training and evaluation shared by every search and by the final training.

All costs are counted in process CPU seconds (:func:`cpu_seconds`): the searches run with
one torch thread, so on a shared machine CPU time measures the work a method did, where
wall time would also count the other processes' load.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from graphrec.automl.data import Task

__all__ = [
    "batches",
    "cpu_seconds",
    "evaluate",
    "seed_everything",
    "small_cnn",
    "train_model",
]


def cpu_seconds() -> float:
    """CPU time of this process (user + system), in seconds."""
    return time.process_time()


def seed_everything(seed: int) -> np.random.Generator:
    """Seed torch's generator; return a numpy generator of the same seed."""
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def batches(
    x: np.ndarray, y: np.ndarray, batch_size: int, rng: np.random.Generator | None
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Mini-batches as tensors, shuffled when ``rng`` is given."""
    idx = rng.permutation(len(y)) if rng is not None else np.arange(len(y))
    for s in range(0, len(y), batch_size):
        b = idx[s : s + batch_size]
        yield torch.from_numpy(x[b]), torch.from_numpy(y[b])


@torch.no_grad()
def evaluate(model: nn.Module, x: np.ndarray, y: np.ndarray, batch_size: int = 512) -> float:
    """Accuracy of ``model`` on ``(x, y)`` (eval mode; restores the previous mode)."""
    was = model.training
    model.eval()
    correct = 0
    for xb, yb in batches(x, y, batch_size, None):
        correct += int((model(xb).argmax(dim=1) == yb).sum())
    model.train(was)
    return correct / max(len(y), 1)


def small_cnn(in_shape: tuple[int, int, int], n_classes: int, width: int = 16) -> nn.Module:
    """The fixed child network of the augmentation experiments (3 convolutions, GAP)."""
    is_1d = in_shape[1] == 1
    k = (1, 3) if is_1d else 3
    p = (0, 1) if is_1d else 1
    s2 = (1, 2) if is_1d else 2
    return nn.Sequential(
        nn.Conv2d(in_shape[0], width, k, padding=p, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(),
        nn.Conv2d(width, 2 * width, k, stride=s2, padding=p, bias=False),
        nn.BatchNorm2d(2 * width),
        nn.ReLU(),
        nn.Conv2d(2 * width, 2 * width, k, padding=p, bias=False),
        nn.BatchNorm2d(2 * width),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(2 * width, n_classes),
    )


def train_model(
    model: nn.Module,
    task: Task,
    *,
    epochs: int,
    seed: int,
    lr: float = 0.05,
    weight_decay: float = 5e-4,
    batch_size: int = 64,
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
    use_val: bool = False,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train with SGD (momentum 0.9, cosine schedule) and report accuracies.

    Args:
        model: The network (trained in place).
        task: The task.
        epochs: Epochs over the training split.
        seed: Seed of the batch order and the augmentation draws.
        lr: Initial learning rate.
        weight_decay: L2 weight decay.
        batch_size: Mini-batch size.
        augment: ``augment(x, generator)`` applied to each training batch.
        use_val: Also train on the validation split (final training of a found model
            after the search decisions are made).
        progress: Called with a line after each epoch.

    Returns:
        ``{"val_accuracy", "test_accuracy", "cpu_s", "epochs"}`` (``val_accuracy`` is
        on data trained on when ``use_val``).
    """
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    x, y = task.x_train, task.y_train
    if use_val:
        x = np.concatenate([x, task.x_val])
        y = np.concatenate([y, task.y_val])
    opt = torch.optim.SGD(
        model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay
    )
    steps = max(epochs * math.ceil(len(y) / batch_size), 1)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda t: 0.5 * (1 + math.cos(math.pi * min(t / steps, 1.0)))
    )
    loss_fn = nn.CrossEntropyLoss()
    t0 = cpu_seconds()
    model.train()
    for ep in range(epochs):
        for xb, yb in batches(x, y, batch_size, rng):
            if augment is not None:
                with torch.no_grad():
                    xb = augment(xb, gen)
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            sched.step()
        if progress is not None:
            progress(f"epoch {ep + 1}/{epochs} loss {float(loss):.3f}")
    return {
        "val_accuracy": evaluate(model, task.x_val, task.y_val),
        "test_accuracy": evaluate(model, task.x_test, task.y_test),
        "cpu_s": cpu_seconds() - t0,
        "epochs": epochs,
    }
