"""graphrec: which inference library and deployment runs an ONNX model fastest on a device.

The public face is kept small; heavy modules (torch, runtimes) are imported only
when used, so ``import graphrec`` is cheap and has no side effects.
"""

from __future__ import annotations

from graphrec._lazy import lazy_attributes

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing at start-up
if TYPE_CHECKING:
    from graphrec._core import __version__
    from graphrec.api import select
    from graphrec.errors import GraphRecError

__all__ = [
    "DeviceProfile",
    "GraphRecError",
    "Recommendation",
    "__version__",
    "calibrate",
    "recommend",
    "select",
    "verify",
]

# Public names imported on first access (module-level __getattr__, PEP 562).
__getattr__ = lazy_attributes(
    __name__,
    {
        "__version__": "graphrec._core",
        "GraphRecError": "graphrec.errors",
        "recommend": "graphrec.api",
        "Recommendation": "graphrec.api",
        "verify": "graphrec.api",
        "select": "graphrec.api",
        "DeviceProfile": "graphrec.device",
        "calibrate": "graphrec.device.calibrate",
    },
)
