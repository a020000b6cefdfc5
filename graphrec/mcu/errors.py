"""Errors of ``graphrec port`` (all children of :class:`graphrec.errors.GraphRecError`)."""

from __future__ import annotations

from collections.abc import Mapping

from graphrec.errors import GraphRecError

__all__ = [
    "PortError",
    "StorageFitError",
    "ToolchainError",
    "UnsupportedModelError",
    "UnsupportedOperatorError",
]


class PortError(GraphRecError):
    """A model could not be ported to a microcontroller (the message says why)."""


class UnsupportedOperatorError(PortError):
    """The model uses an operator (or an attribute value) that the code generator lacks.

    Attributes:
        op_type: The ONNX operator type.
        node: The node's name (or its first output when unnamed).
    """

    def __init__(self, model: str, op_type: str, node: str, detail: str = "") -> None:
        self.op_type = op_type
        self.node = node
        extra = f": {detail}" if detail else ""
        super().__init__(f"{model}: operator {op_type} (node {node!r}) is not supported{extra}")


class UnsupportedModelError(PortError):
    """The model's structure is outside what ``graphrec port`` handles (several inputs,
    unknown shapes, non-constant weights, ...)."""


class StorageFitError(PortError):
    """The model does not fit the target: the message gives needed vs available bytes
    for every medium.

    Attributes:
        target: The target's name.
        needed: Bytes needed per medium.
        available: Bytes available per medium.
    """

    def __init__(
        self,
        target: str,
        needed: Mapping[str, int],
        available: Mapping[str, int],
        detail: str = "",
    ) -> None:
        self.target = target
        self.needed = dict(needed)
        self.available = dict(available)
        parts = []
        for medium in available:
            need, have = int(needed.get(medium, 0)), int(available[medium])
            flag = "  <-- over" if need > have else ""
            parts.append(f"{medium}: needed {need} B, available {have} B{flag}")
        extra = f" ({detail})" if detail else ""
        super().__init__(f"the model does not fit {target}{extra}; " + "; ".join(parts))


class ToolchainError(PortError):
    """A compiler or simulator is missing or failed; the message says which and how to fix."""
