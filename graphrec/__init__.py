"""graphrec: which inference library and deployment runs an ONNX model fastest on a device.

The public face is kept small; heavy modules (torch, runtimes) are imported only
when used, so ``import graphrec`` is cheap and has no side effects.
"""

from __future__ import annotations

from graphrec._core import __version__
from graphrec.errors import GraphRecError

__all__ = ["GraphRecError", "__version__"]
