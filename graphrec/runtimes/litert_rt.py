"""LiteRT (TensorFlow Lite) adapter: torch module -> ``litert-torch`` -> ``.tflite``,
run by the ``ai-edge-litert`` interpreter with the XNNPACK delegate.

The practical route to a ``.tflite`` here starts from the torch module (the ONNX ->
TensorFlow -> TFLite route needs TensorFlow): the sidecar's module, or for a bare ONNX
file a conversion of it (:mod:`graphrec.runtimes.convert`, checked against onnxruntime).

A ``.tflite`` file (see :mod:`graphrec.runtimes.tflite_models`) runs as it is.

Candidate ids: ``litert/xnnpack/fp32/threads=2``, ``litert/builtin/fp32/threads=1``
(reference kernels, no delegate).
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from graphrec.runtimes._torch_common import build_module_and_args, index_order
from graphrec.runtimes.base import Candidate, ModelSpec, RuntimeAdapter

if TYPE_CHECKING:
    from graphrec.device import DeviceProfile

__all__ = ["LiteRtAdapter"]


class LiteRtAdapter(RuntimeAdapter):
    """Adapter for `LiteRT <https://ai.google.dev/edge/litert>`_ (XNNPACK on CPU)."""

    name = "litert"
    install_hint = "pip install ai-edge-litert litert-torch"
    modules = ("ai_edge_litert", "litert_torch", "torch")
    needs_torch_source = True

    def version(self) -> str:
        from graphrec.runtimes.base import dist_version

        return dist_version("ai-edge-litert")

    def candidates(self, device: DeviceProfile, threads: Sequence[int] = (1,)) -> list[Candidate]:
        return [Candidate.make(self.name, "xnnpack", "fp32", n) for n in threads]

    def check(self, model: ModelSpec, candidate: Candidate) -> str | None:
        from graphrec.runtimes.tflite_models import is_tflite_spec

        if candidate.backend not in ("xnnpack", "builtin") or candidate.precision != "fp32":
            return "only xnnpack/builtin fp32 is offered"
        if is_tflite_spec(model):
            return None  # a .tflite file runs as it is
        return super().check(model, candidate)

    def prepare(self, model: ModelSpec, candidate: Candidate, workdir: Path) -> Path:
        from graphrec.runtimes.tflite_models import is_tflite_spec

        if is_tflite_spec(model):
            target = workdir / "model.tflite"
            shutil.copyfile(model.onnx_path, target)
            return target
        import litert_torch

        module, args = build_module_and_args(model)
        edge = litert_torch.convert(module, args)
        target = workdir / "model.tflite"
        edge.export(str(target))
        return target

    def load(self, artifact: Path, model: ModelSpec, candidate: Candidate) -> Any:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        kwargs: dict[str, Any] = {"model_path": str(artifact)}
        if candidate.threads > 0:
            kwargs["num_threads"] = candidate.threads
        if candidate.backend == "builtin":
            kwargs["experimental_op_resolver_type"] = (
                OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
            )
        interp = Interpreter(**kwargs)
        interp.allocate_tensors()
        ins = interp.get_input_details()
        outs = interp.get_output_details()
        by_name = {d["name"]: d["index"] for d in ins}
        out_by_name = {d["name"]: d["index"] for d in outs}
        if all(n in by_name for n in model.input_names) and all(
            n in out_by_name for n in model.output_names
        ):  # a .tflite file: its own tensor names
            in_idx = [by_name[n] for n in model.input_names]
            out_idx = [out_by_name[n] for n in model.output_names]
        else:  # converted by litert-torch: args_0, args_1, ... in the ONNX order
            in_idx = [ins[i]["index"] for i in index_order([d["name"] for d in ins])]
            out_idx = [outs[i]["index"] for i in index_order([d["name"] for d in outs])]
        if len(in_idx) != len(model.input_names):
            raise RuntimeError(
                f"tflite model has {len(in_idx)} inputs, expected {len(model.input_names)}"
            )
        dtypes = {d["index"]: np.dtype(d["dtype"]) for d in ins}
        return (interp, in_idx, out_idx, [dtypes[i] for i in in_idx])

    def run(self, session: Any, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        interp, in_idx, out_idx, dtypes = session
        for idx, arr, dt in zip(in_idx, inputs, dtypes, strict=True):
            # litert-torch stores int64 inputs (token ids) as int32
            interp.set_tensor(idx, arr if arr.dtype == dt else arr.astype(dt))
        interp.invoke()
        return [np.array(interp.get_tensor(i), copy=True) for i in out_idx]
