"""tract adapter (Sonos' pure-Rust ONNX engine) through its Python binding.

tract's Python API offers no thread control, so tract is offered with one thread only.
Concrete input facts are set before optimisation; when that fails (models carrying
symbolic shape annotations), the symbols are kept and given values instead.

Candidate id: ``tract/cpu/fp32/threads=1``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from graphrec.runtimes.base import Candidate, ModelSpec, RuntimeAdapter
from graphrec.runtimes.ort import _copy_with_external_data

if TYPE_CHECKING:
    from graphrec.device import DeviceProfile

__all__ = ["TractAdapter"]

_TRACT_DTYPES = {
    "float32": "f32",
    "float16": "f16",
    "float64": "f64",
    "int64": "i64",
    "int32": "i32",
    "int8": "i8",
    "uint8": "u8",
    "bool": "bool",
}


class TractAdapter(RuntimeAdapter):
    """Adapter for `tract <https://github.com/sonos/tract>`_ (one thread)."""

    name = "tract"
    install_hint = "pip install tract"
    modules = ("tract",)

    def version(self) -> str:
        import tract

        return str(tract.version())

    def candidates(self, device: DeviceProfile, threads: Sequence[int] = (1,)) -> list[Candidate]:
        return [Candidate.make(self.name, "cpu", "fp32", 1)] if 1 in threads else []

    def check(self, model: ModelSpec, candidate: Candidate) -> str | None:
        if candidate.threads != 1:
            return "tract's Python API runs one thread only"
        if candidate.backend != "cpu" or candidate.precision != "fp32":
            return "only cpu fp32 is offered"
        return None

    def prepare(self, model: ModelSpec, candidate: Candidate, workdir: Path) -> Path:
        target = workdir / "model.onnx"
        _copy_with_external_data(model.onnx_path, target)
        return target

    def load(self, artifact: Path, model: ModelSpec, candidate: Candidate) -> Any:
        import tract

        try:
            inf = tract.onnx().load(str(artifact))
            for i, (shape, dtype) in enumerate(
                zip(model.input_shapes, model.input_dtypes, strict=True)
            ):
                dims = ",".join(str(d) for d in shape)
                inf.set_input_fact(i, f"{dims},{_TRACT_DTYPES.get(dtype, 'f32')}")
            runnable = inf.into_model().into_runnable()
        except Exception as first:
            # Keep the declared (symbolic) facts and give the symbols values instead.
            symbols = _symbol_values(model)
            if not symbols:
                raise
            try:
                typed = tract.onnx().load(str(artifact)).into_model()
                typed.transform(tract.SetSymbols(symbols))
                runnable = typed.into_runnable()
            except Exception as second:
                raise RuntimeError(f"{first}; with symbols {symbols}: {second}") from second
        return runnable

    def run(self, session: Any, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        return [t.to_numpy() for t in session.run(list(inputs))]


def _symbol_values(model: ModelSpec) -> dict[str, int]:
    try:
        import onnx

        proto = onnx.load(str(model.onnx_path), load_external_data=False)
    except Exception:
        return {}
    values: dict[str, int] = {}
    by_name = dict(zip(model.input_names, model.input_shapes, strict=True))
    for vi in proto.graph.input:
        shape = by_name.get(vi.name)
        if shape is None:
            continue
        for i, d in enumerate(vi.type.tensor_type.shape.dim):
            if d.HasField("dim_param") and d.dim_param and i < len(shape):
                values[d.dim_param] = int(shape[i])
    return values
