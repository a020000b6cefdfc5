"""Cross-validation folds that keep whole architecture families together.

A latency model that has seen ``resnet-s2`` predicts ``resnet-s3`` well for the wrong
reason; what a user needs is the error on architectures it never saw. Every place that
splits training data (the outer evaluation, the inner folds that fit the ranking's blend
weight, the particle swarm's inner folds) uses this one rule.

Example:
    >>> folds = family_folds(["a", "a", "b", "c", "c", "d"], k=2, seed=0)
    >>> sorted(int(i) for f in folds for i in f)
    [0, 1, 2, 3, 4, 5]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["family_folds", "family_of"]


def family_of(model_name: str) -> str:
    """Architecture family of a zoo model name (``resnet-s3-int8_static`` → ``resnet``).

    Names that are not zoo ids are their own family.
    """
    head = model_name.split("-", 1)[0]
    return head or model_name


def family_folds(families: Sequence[str], k: int, seed: int = 0) -> list[np.ndarray]:
    """Test-index arrays of ``k`` folds, each holding whole families.

    The distinct families are sorted, shuffled with ``seed`` and dealt round-robin to the
    folds, so folds are balanced in families (not in samples) and the split is the same
    for the same families and seed.

    Args:
        families: Family of each sample.
        k: Number of folds (fewer are returned when there are fewer families).
        seed: Seed of the shuffle.

    Returns:
        ``min(k, n_families)`` int64 index arrays; together they cover every sample once.

    Raises:
        ValueError: ``k < 1``.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k!r}")
    names = sorted(set(families))
    rng = np.random.default_rng(seed)
    rng.shuffle(names)
    fold_of = {f: i % k for i, f in enumerate(names)}
    fam = np.array([fold_of[f] for f in families], dtype=np.int64)
    return [np.flatnonzero(fam == i) for i in range(min(k, len(names)))]
