"""Names a package imports on first access (PEP 562), so importing it stays cheap.

Example:
    >>> __getattr__ = lazy_attributes(__name__, {"OperatorGraph": "graphrec.graph.operator_graph"})
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing at start-up
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

__all__ = ["lazy_attributes"]


def lazy_attributes(module_name: str, names: Mapping[str, str]) -> Callable[[str], Any]:
    """A module-level ``__getattr__`` that imports each name from its module when first
    read, and keeps it in the package so the next read costs nothing.

    Args:
        module_name: The package's ``__name__``.
        names: Public name → the module that defines it.
    """
    table = dict(names)

    def __getattr__(name: str) -> Any:
        target = table.get(name)
        if target is None:
            raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
        import importlib
        import sys

        value = getattr(importlib.import_module(target), name)
        setattr(sys.modules[module_name], name, value)
        return value

    return __getattr__
