"""OpenVINO adapter: CPU plugin with an explicit inference precision, LATENCY hint, threads.

The model is converted once to OpenVINO IR with static input shapes (``prepare``);
``load`` reads the IR and compiles it. The inference precision is always set
explicitly: OpenVINO's default on CPUs with AVX-512 BF16 is bf16, which is slower and
less exact without AMX. fp32 candidates also disable dynamic activation quantisation
(``DYNAMIC_QUANTIZATION_GROUP_SIZE=0``) so they compute what the model says.

Candidate ids: ``openvino/cpu/fp32/hint=latency/threads=2``; ``bf16`` is offered on CPUs
with AVX-512 BF16 or AMX, ``fp16`` on ARM CPUs with fp16 arithmetic.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from graphrec.runtimes.base import Candidate, ModelSpec, RuntimeAdapter

if TYPE_CHECKING:
    from graphrec.device import DeviceProfile

__all__ = ["OpenVinoAdapter"]

_PRECISION = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}


class OpenVinoAdapter(RuntimeAdapter):
    """Adapter for `OpenVINO <https://docs.openvino.ai>`_ (CPU device)."""

    name = "openvino"
    install_hint = "pip install openvino"
    modules = ("openvino",)

    def __init__(self) -> None:
        self._core: Any = None

    def _get_core(self) -> Any:
        if self._core is None:
            import openvino as ov

            self._core = ov.Core()
        return self._core

    def version(self) -> str:
        import openvino as ov

        return str(ov.__version__).split("-")[0]

    def candidates(self, device: DeviceProfile, threads: Sequence[int] = (1,)) -> list[Candidate]:
        precisions = ["fp32"]
        flags = set(device.isa_flags)
        if flags & {"avx512_bf16", "amx_bf16"}:
            precisions.append("bf16")
        if device.arch in ("aarch64", "arm32") and "fp16_arith" in flags:
            precisions.append("fp16")
        return [
            Candidate.make(self.name, "cpu", p, n, hint="latency")
            for n in threads
            for p in precisions
        ]

    def check(self, model: ModelSpec, candidate: Candidate) -> str | None:
        if candidate.backend != "cpu":
            return f"backend {candidate.backend!r} is not offered (cpu only)"
        if candidate.precision not in _PRECISION:
            return f"precision {candidate.precision} is not offered"
        return None

    def prepare(self, model: ModelSpec, candidate: Candidate, workdir: Path) -> Path:
        import openvino as ov

        core = self._get_core()
        net = core.read_model(str(model.onnx_path))
        shapes = {
            net.input(i).get_any_name(): ov.PartialShape(shape)
            for i, shape in enumerate(model.input_shapes)
        }
        if shapes:
            net.reshape(shapes)
        target = workdir / "model.xml"
        ov.save_model(net, str(target), compress_to_fp16=False)
        return target

    def load(self, artifact: Path, model: ModelSpec, candidate: Candidate) -> Any:
        core = self._get_core()
        config: dict[str, Any] = {
            "INFERENCE_PRECISION_HINT": _PRECISION[candidate.precision],
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": 1,
        }
        if candidate.precision == "fp32":
            config["DYNAMIC_QUANTIZATION_GROUP_SIZE"] = 0
        if candidate.threads > 0:
            config["INFERENCE_NUM_THREADS"] = candidate.threads
        compiled = core.compile_model(core.read_model(str(artifact)), "CPU", config)
        return (compiled, compiled.create_infer_request(), len(compiled.outputs))

    def run(self, session: Any, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        _, request, n_out = session
        request.infer(list(inputs))
        return [np.array(request.get_output_tensor(i).data, copy=True) for i in range(n_out)]
