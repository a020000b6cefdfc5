"""TFLite models in the harness: their inputs, which runtimes take them, their reference.

A ``.tflite`` file is benchmarked as itself: :func:`tflite_model_spec` describes its
inputs and outputs (from the FlatBuffer, no weights read), the runtimes in
:data:`TFLITE_RUNTIMES` run it, the others are refused with a reason ("does not take
TFLite models"), and the outputs every candidate is checked against come from LiteRT's
reference kernels (no delegate) instead of onnxruntime.

Example:
    >>> from graphrec.runtimes.tflite_models import tflite_model_spec
    >>> spec = tflite_model_spec("model.tflite")  # doctest: +SKIP
    >>> spec.input_names, spec.input_shapes  # doctest: +SKIP
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from graphrec.errors import GraphRecError, ModelLoadError, ShapeSpecError
from graphrec.runtimes.base import Candidate, ModelSpec

__all__ = [
    "TFLITE_RUNTIMES",
    "is_tflite_file",
    "is_tflite_spec",
    "tflite_blockers",
    "tflite_model_spec",
    "tflite_reason",
    "tflite_reference",
]

#: Runtimes the harness runs a TFLite model on, and how.
TFLITE_RUNTIMES: dict[str, str] = {
    "litert": "runs the file (XNNPACK delegate, or the reference kernels)",
    "openvino": "reads TFLite itself (core.read_model)",
}


def is_tflite_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a TFLite file (``.tflite`` suffix or the ``TFL3`` identifier)."""
    p = Path(path)
    if p.suffix.lower() == ".tflite":
        return True
    try:
        with p.open("rb") as fh:
            head = fh.read(8)
    except OSError:
        return False
    return len(head) == 8 and head[4:8] == b"TFL3"


def is_tflite_spec(model: ModelSpec) -> bool:
    """Whether a model spec describes a TFLite file."""
    return is_tflite_file(model.onnx_path)


def tflite_reason(runtime: str, model: ModelSpec) -> str | None:
    """Why ``runtime`` cannot take ``model`` because it is a TFLite file, or ``None``."""
    if runtime not in TFLITE_RUNTIMES and is_tflite_spec(model):
        return "does not take TFLite models"
    return None


def tflite_model_spec(
    path: str | os.PathLike[str],
    *,
    overrides: Mapping[str, Sequence[int]] | None = None,
    batch_size: int = 1,
    input_values: Mapping[str, float] | None = None,
) -> ModelSpec:
    """Describe a TFLite file for benchmarking (the counterpart of ``model_spec``).

    TFLite models run at the input shapes stored in them; ``overrides`` and
    ``batch_size`` may only confirm those.

    Raises:
        ModelLoadError: Missing or unreadable file (a subclass says why).
        ShapeSpecError: An override names no input or changes a stored shape.
    """
    from graphrec.graph.tflite import read_tflite
    from graphrec.runtimes.inputs import file_sha256

    p = Path(path)
    if not p.is_file():
        raise ModelLoadError(p, "no such file")
    with p.open("rb") as fh:
        if os.fstat(fh.fileno()).st_size == 0:
            from graphrec.errors import ModelFormatError

            raise ModelFormatError(p, "not a readable TFLite model: empty file")
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            m = read_tflite(mm, name=p)
            ins = [m.tensors[t] for t in m.inputs]
            outs = [m.tensors[t] for t in m.outputs]
            m.buffer = None
            for op in m.operators:
                op.options = None
    names = [t.name for t in ins]
    for what, given in (("shape", overrides), ("value", input_values)):
        unknown = sorted(set(given or ()) - set(names))
        if unknown:
            raise ShapeSpecError(
                f"{p}: no input named {unknown} (for a {what}); inputs are {names}"
            )
    for t in ins:
        want = list((overrides or {}).get(t.name, t.shape))
        if want != list(t.shape) or (t.shape and batch_size != 1 and t.shape[0] != batch_size):
            raise ShapeSpecError(
                f"{p}: input {t.name!r} is stored at shape {t.shape}; a TFLite model runs at "
                "the shapes stored in it"
            )
    return ModelSpec(
        onnx_path=p.resolve(),
        sha256=file_sha256(p),
        name=p.stem,
        input_names=names,
        input_shapes=[list(t.shape) for t in ins],
        input_dtypes=[t.dtype for t in ins],
        output_names=[t.name for t in outs],
        torch_source=None,
        input_values={str(k): float(v) for k, v in (input_values or {}).items()},
    )


def tflite_reference(model: ModelSpec, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Outputs of LiteRT's reference kernels (no delegate, one thread): the check's truth."""
    from graphrec.runtimes.litert_rt import LiteRtAdapter

    adapter = LiteRtAdapter()
    cand = Candidate.make("litert", "builtin", "fp32", 1)
    session = adapter.load(Path(model.onnx_path), model, cand)
    return adapter.run(session, inputs)


def tflite_blockers(
    model_path: str | os.PathLike[str], candidate_ids: Sequence[str]
) -> dict[str, str] | None:
    """For a TFLite file, why each candidate cannot run it (``None`` for other files).

    A runtime outside :data:`TFLITE_RUNTIMES` "does not take TFLite models"; the others
    get their adapter's rule, when it has one.
    """
    if not is_tflite_file(model_path):
        return None
    from graphrec.runtimes.registry import get_adapter

    try:
        spec: Any = tflite_model_spec(model_path)
    except GraphRecError:
        spec = None
    out: dict[str, str] = {}
    for cid in candidate_ids:
        cand = Candidate.parse(cid)
        if spec is None and cand.runtime not in TFLITE_RUNTIMES:
            out[cid] = "does not take TFLite models"
            continue
        if spec is None:
            continue
        reason = tflite_reason(cand.runtime, spec)
        if reason is None:
            try:
                reason = get_adapter(cand.runtime).check(spec, cand)
            except GraphRecError as exc:
                reason = str(exc)
        if reason:
            out[cid] = reason
    return out
