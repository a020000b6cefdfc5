"""The three tasks of ``graphrec automl``, all generated or shipped offline.

Every task is returned as ``float32`` arrays of shape ``(N, C, H, W)``; the one-dimensional
task has ``H == 1`` (the search spaces then use ``1 x k`` kernels). Inputs are standardised
with the training split's mean and standard deviation.

Splits (fixed by ``split_seed``, independent of the run seed, so every method and run
seed sees the same examples):

* ``digits``: scikit-learn's ``load_digits`` (1797 images, 8 x 8, 10 classes), stratified
  60 / 20 / 20 % train / validation / test.
* ``mnist1d``: ``mnist1d.data.make_dataset`` with its default arguments (5000 signals of
  length 40, 10 classes, generated from templates in the package, no download); its own
  4000 / 1000 train / test split, the last 1000 training signals held out for validation
  (3000 / 1000 / 1000).
* ``shapes``: a synthetic image task (:func:`make_shapes`): 3000 images 16 x 16, 8 shape
  classes drawn at a random position, size and rotation, over a random gradient
  background with a distractor line and Gaussian noise; stratified 60 / 20 / 20 %.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from graphrec.errors import GraphRecError

__all__ = ["TASKS", "AutoMLError", "Task", "load_task", "make_shapes"]

#: Task names :func:`load_task` knows.
TASKS: tuple[str, ...] = ("digits", "mnist1d", "shapes")

_SHAPE_CLASSES = ("disk", "ring", "square", "frame", "plus", "cross", "triangle", "bars")


class AutoMLError(GraphRecError, ValueError):
    """``graphrec automl`` was asked something it cannot do (the message says why)."""


@dataclass
class Task:
    """One classification task with its three splits.

    Attributes:
        name: The task name.
        x_train: Training inputs ``(N, C, H, W)``.
        y_train: Training labels.
        x_val: Validation inputs (search decisions only).
        y_val: Validation labels.
        x_test: Test inputs (reported accuracy only).
        y_test: Test labels.
        n_classes: Number of classes.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one example."""
        c, h, w = self.x_train.shape[1:]
        return int(c), int(h), int(w)

    @property
    def is_1d(self) -> bool:
        """Whether the task is one-dimensional (``H == 1``)."""
        return self.input_shape[1] == 1

    def subsample(self, fraction: float, seed: int = 0) -> Task:
        """A copy with only ``fraction`` of each split (for tiny smoke runs)."""
        rng = np.random.default_rng(seed)

        def cut(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            n = max(round(len(y) * fraction), self.n_classes)
            idx = np.sort(rng.permutation(len(y))[:n])
            return x[idx], y[idx]

        xtr, ytr = cut(self.x_train, self.y_train)
        xv, yv = cut(self.x_val, self.y_val)
        xte, yte = cut(self.x_test, self.y_test)
        return Task(self.name, xtr, ytr, xv, yv, xte, yte, self.n_classes)


def _stratified(
    y: np.ndarray, fractions: tuple[float, float], seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stratified train / validation / test indices (validation and test by fraction)."""
    rng = np.random.default_rng(seed)
    tr: list[np.ndarray] = []
    va: list[np.ndarray] = []
    te: list[np.ndarray] = []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_val = round(len(idx) * fractions[0])
        n_test = round(len(idx) * fractions[1])
        va.append(idx[:n_val])
        te.append(idx[n_val : n_val + n_test])
        tr.append(idx[n_val + n_test :])
    return (np.sort(np.concatenate(tr)), np.sort(np.concatenate(va)), np.sort(np.concatenate(te)))


def _finish(
    name: str,
    x: tuple[np.ndarray, np.ndarray, np.ndarray],
    y: tuple[np.ndarray, np.ndarray, np.ndarray],
    n_classes: int,
) -> Task:
    mean = float(x[0].mean())
    std = float(x[0].std()) or 1.0
    xs = [((a - mean) / std).astype(np.float32) for a in x]
    ys = [b.astype(np.int64) for b in y]
    return Task(name, xs[0], ys[0], xs[1], ys[1], xs[2], ys[2], n_classes)


def _line_mask(
    yy: np.ndarray, xx: np.ndarray, p0: np.ndarray, p1: np.ndarray, width: float
) -> np.ndarray:
    d = p1 - p0
    t = np.clip(((yy - p0[0]) * d[0] + (xx - p0[1]) * d[1]) / max(float(d @ d), 1e-9), 0.0, 1.0)
    dist = np.hypot(yy - (p0[0] + t * d[0]), xx - (p0[1] + t * d[1]))
    return np.clip(width - dist + 0.5, 0.0, 1.0)


def _shape(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """One 16 x 16 image of shape ``kind`` (values in [0, 1], before background/noise)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    cy, cx = rng.uniform(5.5, size - 6.5, size=2)
    r = rng.uniform(3.0, 5.0)
    ang = rng.uniform(-0.35, 0.35)
    ca, sa = np.cos(ang), np.sin(ang)
    u = ca * (xx - cx) + sa * (yy - cy)
    v = -sa * (xx - cx) + ca * (yy - cy)
    soft = 0.8
    if kind == "disk":
        img = np.clip(r - np.hypot(u, v) + soft, 0, 1)
    elif kind == "ring":
        d = np.abs(np.hypot(u, v) - r * 0.85)
        img = np.clip(1.2 - d, 0, 1)
    elif kind == "square":
        img = np.clip(r * 0.85 - np.maximum(np.abs(u), np.abs(v)) + soft, 0, 1)
    elif kind == "frame":
        d = np.abs(np.maximum(np.abs(u), np.abs(v)) - r * 0.8)
        img = np.clip(1.2 - d, 0, 1)
    elif kind == "plus":
        arm = (np.minimum(np.abs(u), np.abs(v)) < 1.0) & (np.maximum(np.abs(u), np.abs(v)) < r)
        img = arm.astype(np.float64)
    elif kind == "cross":
        a, b = (u + v) / np.sqrt(2), (u - v) / np.sqrt(2)
        arm = (np.minimum(np.abs(a), np.abs(b)) < 1.0) & (np.maximum(np.abs(a), np.abs(b)) < r)
        img = arm.astype(np.float64)
    elif kind == "triangle":
        inside = (v < r * 0.6) & (v > -r * 0.9 + 1.7 * np.abs(u)) & (np.abs(u) < r)
        img = inside.astype(np.float64)
    elif kind == "bars":
        img = ((np.abs(np.abs(u) - r * 0.55) < 0.9) & (np.abs(v) < r)).astype(np.float64)
    else:  # pragma: no cover - the class list is fixed
        raise AutoMLError(f"unknown shape {kind!r}")
    return img


def make_shapes(n: int = 3000, size: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The synthetic ``shapes`` task: ``n`` images, 8 balanced classes.

    Each image holds one shape (disk, ring, filled square, square frame, plus, diagonal
    cross, triangle, pair of bars) at a random position (centre within the middle
    ~5 pixels), radius 3-5 px and rotation ±20°, with random polarity-preserving
    contrast 0.6-1.0, over a random linear gradient background, plus one random
    distractor line segment and Gaussian noise (σ = 0.25). Discs vs squares and
    plus vs bars differ by a few pixels, so the task separates models by their
    receptive fields and invariances.

    Args:
        n: Number of images.
        size: Side in pixels (at least 14).
        seed: Generator seed.

    Returns:
        ``(x, y)``: ``x`` of shape ``(n, 1, size, size)`` float32, ``y`` int64 labels.
    """
    if size < 14:
        raise AutoMLError(f"shapes images must be at least 14 pixels wide, got {size}")
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    x = np.empty((n, 1, size, size), dtype=np.float32)
    y = np.arange(n) % len(_SHAPE_CLASSES)
    rng.shuffle(y)
    for i in range(n):
        img = _shape(_SHAPE_CLASSES[int(y[i])], size, rng) * rng.uniform(0.6, 1.0)
        g = rng.normal(size=2) * 0.03
        img = img + g[0] * (yy - size / 2) + g[1] * (xx - size / 2)
        p0, p1 = rng.uniform(0, size - 1, size=(2, 2))
        img = np.maximum(img, 0.6 * _line_mask(yy, xx, p0, p1, 0.5) * rng.uniform(0.3, 1.0))
        img = img + rng.normal(scale=0.25, size=img.shape)
        x[i, 0] = img
    return x, y.astype(np.int64)


def load_task(name: str, split_seed: int = 0) -> Task:
    """Load one of :data:`TASKS` with its documented splits.

    Args:
        name: ``digits``, ``mnist1d`` or ``shapes``.
        split_seed: Seed of the split (kept fixed across run seeds).

    Raises:
        AutoMLError: Unknown task, or its package (``mnist1d``) is missing.
    """
    if name == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        x = d.images.astype(np.float64)[:, None, :, :]
        y = d.target.astype(np.int64)
        tr, va, te = _stratified(y, (0.2, 0.2), split_seed)
        return _finish(name, (x[tr], x[va], x[te]), (y[tr], y[va], y[te]), 10)
    if name == "mnist1d":
        try:
            from mnist1d.data import get_dataset_args, make_dataset
        except ImportError as exc:
            raise AutoMLError(
                "the mnist1d task needs the mnist1d package: pip install mnist1d "
                "(or pip install -e '.[dev]')"
            ) from exc
        args = get_dataset_args()
        d = make_dataset(args)
        xtr_all = np.asarray(d["x"], dtype=np.float64)
        ytr_all = np.asarray(d["y"], dtype=np.int64)
        xte = np.asarray(d["x_test"], dtype=np.float64)
        yte = np.asarray(d["y_test"], dtype=np.int64)
        n_val = 1000
        xtr, ytr = xtr_all[:-n_val], ytr_all[:-n_val]
        xva, yva = xtr_all[-n_val:], ytr_all[-n_val:]
        r = lambda a: a[:, None, None, :]  # noqa: E731
        return _finish(name, (r(xtr), r(xva), r(xte)), (ytr, yva, yte), 10)
    if name == "shapes":
        x, y = make_shapes(seed=1000 + split_seed)
        tr, va, te = _stratified(y, (0.2, 0.2), split_seed)
        return _finish(name, (x[tr], x[va], x[te]), (y[tr], y[va], y[te]), len(_SHAPE_CLASSES))
    raise AutoMLError(f"unknown task {name!r}; valid: {', '.join(TASKS)}")
