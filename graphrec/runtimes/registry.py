"""Lazy registry of runtime adapters.

Built-in adapters are named by dotted path and imported on first use; third-party
adapters register under the entry-point group :data:`ENTRY_POINT_GROUP`::

    [project.entry-points."graphrec.runtimes"]
    myruntime = "mypkg.adapter:MyRuntimeAdapter"

Example:
    >>> from graphrec.runtimes.registry import adapter_names, get_adapter
    >>> "onnxruntime" in adapter_names()
    True
    >>> get_adapter("onnxruntime").name
    'onnxruntime'
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points

from graphrec.errors import CandidateSpecError, RuntimeUnavailableError
from graphrec.runtimes.base import RuntimeAdapter

__all__ = [
    "BUILTIN_ADAPTERS",
    "ENTRY_POINT_GROUP",
    "AdapterEntry",
    "adapter_entries",
    "adapter_names",
    "available_adapters",
    "get_adapter",
]

#: Entry-point group third-party adapters register under.
ENTRY_POINT_GROUP = "graphrec.runtimes"


@dataclass(frozen=True)
class AdapterEntry:
    """Where an adapter lives and how to install its runtime."""

    name: str
    target: str  # "package.module:ClassName"
    install_hint: str


#: Built-in adapters, in the default measuring order.
BUILTIN_ADAPTERS: tuple[AdapterEntry, ...] = (
    AdapterEntry(
        "onnxruntime", "graphrec.runtimes.ort:OnnxRuntimeAdapter", "pip install onnxruntime"
    ),
    AdapterEntry(
        "openvino", "graphrec.runtimes.openvino_rt:OpenVinoAdapter", "pip install openvino"
    ),
    AdapterEntry("mnn", "graphrec.runtimes.mnn_rt:MnnAdapter", "pip install MNN"),
    AdapterEntry("ncnn", "graphrec.runtimes.ncnn_rt:NcnnAdapter", "pip install ncnn pnnx"),
    AdapterEntry("tract", "graphrec.runtimes.tract_rt:TractAdapter", "pip install tract"),
    AdapterEntry(
        "litert",
        "graphrec.runtimes.litert_rt:LiteRtAdapter",
        "pip install ai-edge-litert litert-torch",
    ),
    AdapterEntry(
        "executorch", "graphrec.runtimes.executorch_rt:ExecuTorchAdapter", "pip install executorch"
    ),
    AdapterEntry("torch", "graphrec.runtimes.torch_rt:TorchAdapter", "pip install torch"),
)


def adapter_entries() -> dict[str, AdapterEntry]:
    """Built-in and entry-point adapters by name (built-ins win on a name clash)."""
    entries = {e.name: e for e in BUILTIN_ADAPTERS}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in entries:
            dist = getattr(ep, "dist", None)
            hint = f"pip install {dist.name}" if dist is not None else "see its package"
            entries[ep.name] = AdapterEntry(ep.name, ep.value, hint)
    return entries


def adapter_names() -> list[str]:
    """Names of every known adapter (installed or not)."""
    return list(adapter_entries())


@cache
def _load_class(target: str) -> type[RuntimeAdapter]:
    mod_name, _, cls_name = target.partition(":")
    module = importlib.import_module(mod_name)
    cls = getattr(module, cls_name)
    if not (isinstance(cls, type) and issubclass(cls, RuntimeAdapter)):
        raise TypeError(f"{target} is not a RuntimeAdapter subclass")
    return cls


def get_adapter(name: str, *, require_available: bool = False) -> RuntimeAdapter:
    """Instantiate the adapter called ``name``.

    Args:
        name: Adapter name (first component of a candidate id).
        require_available: Raise if the runtime library is not installed.

    Raises:
        CandidateSpecError: No adapter has that name (the message lists valid names).
        RuntimeUnavailableError: The adapter (or, with ``require_available``, its
            runtime) cannot be imported; the message says how to install it.
    """
    # A built-in name needs no scan of the installed packages' entry points (built-ins
    # win on a name clash anyway); the scan costs tens of milliseconds per call.
    entry = next((e for e in BUILTIN_ADAPTERS if e.name == name), None)
    entries = {name: entry} if entry is not None else adapter_entries()
    entry = entries.get(name)
    if entry is None:
        raise CandidateSpecError(f"unknown runtime {name!r}; known runtimes: {sorted(entries)}")
    try:
        cls = _load_class(entry.target)
    except ImportError as exc:
        raise RuntimeUnavailableError(
            f"runtime adapter {name!r} cannot be imported ({exc}); "
            f"install with: {entry.install_hint}"
        ) from exc
    if require_available and not cls.is_available():
        raise RuntimeUnavailableError(
            f"runtime {name!r} is not installed; install with: {entry.install_hint}"
        )
    return cls()


def available_adapters() -> list[RuntimeAdapter]:
    """Adapters whose runtime library is installed, in registry order."""
    out = []
    for name in adapter_names():
        try:
            adapter = get_adapter(name)
        except RuntimeUnavailableError:
            continue
        if adapter.is_available():
            out.append(adapter)
    return out
