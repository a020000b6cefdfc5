"""Inference runtime adapters behind one interface, and deployment candidates.

Nothing heavy is imported here: adapters load through :mod:`graphrec.runtimes.registry`
on first use, and each adapter imports its runtime library inside its methods.
"""

from __future__ import annotations

from graphrec.runtimes.base import Candidate, ModelSpec, RuntimeAdapter, TorchSource
from graphrec.runtimes.registry import adapter_names, available_adapters, get_adapter

__all__ = [
    "Candidate",
    "ModelSpec",
    "RuntimeAdapter",
    "TorchSource",
    "adapter_names",
    "available_adapters",
    "get_adapter",
]
