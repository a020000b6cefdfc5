"""Helpers shared by the adapters whose conversion starts from a torch module."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from graphrec.runtimes.base import ModelSpec, UnsupportedModelError
from graphrec.runtimes.inputs import make_inputs

#: Input keys whose converted module already passed the check in this process.
_CHECKED: set[str] = set()


def build_module_and_args(model: ModelSpec, *, check: bool = True) -> tuple[Any, tuple[Any, ...]]:
    """Build the model's torch module and example inputs (the benchmark's own inputs).

    A module converted from the ONNX file (no sidecar: :mod:`graphrec.runtimes.convert`)
    is checked against onnxruntime on these inputs first, once per process and input key
    (``check=False`` skips it, for a load after a checked prepare).

    Raises:
        UnsupportedModelError: The model has no torch source at all.
        ConversionError: The ONNX -> torch conversion failed (``convert_failed``).
        ConversionMismatchError: The converted module disagrees with onnxruntime
            (``wrong_output``).
    """
    import torch

    from graphrec.runtimes.base import input_key
    from graphrec.runtimes.convert import check_conversion, is_conversion

    if model.torch_source is None:
        raise UnsupportedModelError("needs a torch source (bare ONNX file)")
    module = model.torch_source.build()
    if check and is_conversion(model.torch_source):
        key = f"{input_key(model)}:{model.torch_source.kwargs.get('converter')}"
        if key not in _CHECKED:
            check_conversion(module, model)
            _CHECKED.add(key)
    args = tuple(torch.from_numpy(a) for a in make_inputs(model))
    return module, args


def flatten_outputs(out: Any) -> list[np.ndarray]:
    """Flatten a module's (nested) tensor outputs into NumPy arrays, in order."""
    import torch

    if isinstance(out, torch.Tensor):
        return [out.detach().cpu().numpy()]
    if isinstance(out, dict):
        return [a for v in out.values() for a in flatten_outputs(v)]
    if isinstance(out, Sequence) and not isinstance(out, str):
        return [a for v in out for a in flatten_outputs(v)]
    raise TypeError(f"unsupported module output type {type(out).__name__}")


def index_order(names: Sequence[str]) -> list[int]:
    """Order of tensor names by their trailing number (``args_10`` after ``args_2``)."""

    def key(i: int) -> tuple[int, str]:
        m = re.search(r"(\d+)(?!.*\d)", names[i])
        return (int(m.group(1)) if m else -1, names[i])

    return sorted(range(len(names)), key=key)
