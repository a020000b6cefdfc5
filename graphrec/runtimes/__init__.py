"""Inference runtime adapters behind one interface, and deployment candidates.

Nothing heavy is imported here: adapters load through :mod:`graphrec.runtimes.registry`
on first use, and each adapter imports its runtime library inside its methods.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from graphrec._lazy import lazy_attributes

if TYPE_CHECKING:
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


# Imported on first access (PEP 562), so importing the package (or its _cli) stays cheap.
__getattr__ = lazy_attributes(
    __name__,
    {
        "Candidate": "graphrec.runtimes.base",
        "ModelSpec": "graphrec.runtimes.base",
        "RuntimeAdapter": "graphrec.runtimes.base",
        "TorchSource": "graphrec.runtimes.base",
        "adapter_names": "graphrec.runtimes.registry",
        "available_adapters": "graphrec.runtimes.registry",
        "get_adapter": "graphrec.runtimes.registry",
    },
)
