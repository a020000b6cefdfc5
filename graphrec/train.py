"""Deprecated: use :mod:`graphrec.recommender.train` (kept for one release)."""

from __future__ import annotations

import warnings

from graphrec.recommender.train import train

__all__ = ["train"]

warnings.warn(
    "graphrec.train is deprecated and will be removed in the next release; "
    "use graphrec.recommender.train",
    DeprecationWarning,
    stacklevel=2,
)
