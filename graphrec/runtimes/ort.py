"""onnxruntime adapter: CPU execution provider (graph optimisation level, threads,
dynamic int8 quantisation) and the CUDA / TensorRT providers when present.

Candidate ids: ``onnxruntime/cpu/fp32/opt=all/threads=2``,
``onnxruntime/cpu/int8/opt=all/threads=1`` (``onnxruntime.quantization.quantize_dynamic``),
``onnxruntime/cuda/fp32/opt=all/threads=0``. ``opt=disabled`` is the reference
configuration outputs are checked against (see :data:`REFERENCE_CANDIDATE`).
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from graphrec.runtimes.base import Candidate, ModelSpec, RuntimeAdapter

if TYPE_CHECKING:
    from graphrec.device import DeviceProfile

__all__ = ["REFERENCE_CANDIDATE", "OnnxRuntimeAdapter"]

#: The configuration whose outputs every other candidate is compared with: no graph
#: rewrites, one thread, fp32.
REFERENCE_CANDIDATE = Candidate.make("onnxruntime", "cpu", "fp32", 1, opt="disabled")

_OPT_LEVELS = ("disabled", "basic", "extended", "all")
_PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}


class OnnxRuntimeAdapter(RuntimeAdapter):
    """Adapter for `onnxruntime <https://onnxruntime.ai>`_."""

    name = "onnxruntime"
    install_hint = "pip install onnxruntime"
    modules = ("onnxruntime",)

    def version(self) -> str:
        import onnxruntime as ort

        return str(ort.__version__)

    def candidates(self, device: DeviceProfile, threads: Sequence[int] = (1,)) -> list[Candidate]:
        import onnxruntime as ort

        out = []
        for n in threads:
            out.append(Candidate.make(self.name, "cpu", "fp32", n, opt="basic"))
            out.append(Candidate.make(self.name, "cpu", "fp32", n, opt="all"))
            out.append(Candidate.make(self.name, "cpu", "int8", n, opt="all"))
        providers = set(ort.get_available_providers())
        if device.gpus and "CUDAExecutionProvider" in providers:
            out.append(Candidate.make(self.name, "cuda", "fp32", 0, opt="all"))
        if device.gpus and "TensorrtExecutionProvider" in providers:
            out.append(Candidate.make(self.name, "tensorrt", "fp32", 0, opt="all"))
        return out

    def check(self, model: ModelSpec, candidate: Candidate) -> str | None:
        if candidate.backend not in _PROVIDERS:
            return f"unknown onnxruntime backend {candidate.backend!r}"
        if candidate.option("opt", "all") not in _OPT_LEVELS:
            return f"unknown optimisation level {candidate.option('opt')!r}"
        if candidate.precision not in ("fp32", "int8"):
            return f"precision {candidate.precision} is not offered"
        return None

    def prepare(self, model: ModelSpec, candidate: Candidate, workdir: Path) -> Path:
        target = workdir / "model.onnx"
        if candidate.precision != "int8":
            # Copy (not link) so the cache stays valid if the source moves; external
            # weight files beside the model are copied too.
            _copy_with_external_data(model.onnx_path, target)
            return target
        from onnxruntime.quantization import QuantType, quantize_dynamic
        from onnxruntime.quantization.shape_inference import quant_pre_process

        pre = workdir / "pre.onnx"
        try:
            # Folds Constant-node weights into initializers so they can be quantised.
            quant_pre_process(str(model.onnx_path), str(pre), skip_symbolic_shape=True)
            src = pre
        except Exception:
            src = model.onnx_path
        quantize_dynamic(str(src), str(target), weight_type=QuantType.QInt8)
        pre.unlink(missing_ok=True)
        return target

    def load(self, artifact: Path, model: ModelSpec, candidate: Candidate) -> Any:
        import onnxruntime as ort

        so = ort.SessionOptions()
        level = candidate.option("opt", "all")
        so.graph_optimization_level = {
            "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[level or "all"]
        if candidate.threads > 0:
            so.intra_op_num_threads = candidate.threads
            so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.log_severity_level = 3
        provider = _PROVIDERS[candidate.backend]
        sess = ort.InferenceSession(str(artifact), sess_options=so, providers=[provider])
        if provider not in sess.get_providers():
            raise RuntimeError(f"{provider} is not usable here (got {sess.get_providers()})")
        names = [i.name for i in sess.get_inputs()]
        return (sess, names)

    def run(self, session: Any, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        sess, names = session
        return list(sess.run(None, dict(zip(names, inputs, strict=True))))


def _copy_with_external_data(src: Path, dst: Path) -> None:
    shutil.copyfile(src, dst)
    try:
        import onnx
        from onnx.external_data_helper import _get_all_tensors, uses_external_data
    except ImportError:  # pragma: no cover
        return
    proto = onnx.load(str(src), load_external_data=False)
    seen: set[str] = set()
    for tensor in _get_all_tensors(proto):
        if not uses_external_data(tensor):
            continue
        for entry in tensor.external_data:
            if entry.key == "location" and entry.value not in seen:
                seen.add(entry.value)
                loc = Path(entry.value)
                if loc.is_absolute() or ".." in loc.parts:
                    continue
                (dst.parent / loc).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src.parent / loc, dst.parent / loc)
