"""ncnn adapter: ONNX converted by pnnx, run by ncnn's Python binding.

``pnnx model.onnx inputshape=[...] fp16=0`` writes several files beside its input, so it
runs in the candidate's scratch folder on a copy of the model. Weights are stored as
fp32 (``fp16=0``); the ``fp16`` candidate turns on ncnn's fp16 storage/arithmetic at
load time instead. ncnn has no batch dimension: models whose inputs have a batch other
than 1 are unsupported, and the leading 1 is dropped when feeding. Blobs are named
``in0``, ``in1``, ... and ``out0``, ... by pnnx. pnnx has been seen to mis-convert
silently (an opset-18 ReduceMean), which the harness's output check catches.

Candidate ids: ``ncnn/cpu/fp32/threads=2``, ``ncnn/cpu/fp16/threads=2``.
"""

from __future__ import annotations

import importlib.util
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from graphrec.runtimes.base import Candidate, ModelSpec, RuntimeAdapter
from graphrec.runtimes.ort import _copy_with_external_data

if TYPE_CHECKING:
    from graphrec.device import DeviceProfile

__all__ = ["NcnnAdapter", "pnnx_executable"]

_PNNX_DTYPES = {"float32": "f32", "float16": "f16", "int64": "i64", "int32": "i32", "uint8": "u8"}


def pnnx_executable() -> Path:
    """Path of the pnnx binary shipped in the ``pnnx`` wheel (without importing it)."""
    spec = importlib.util.find_spec("pnnx")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("pnnx is not installed (pip install pnnx)")
    exe = Path(next(iter(spec.submodule_search_locations))) / "pnnx"
    if not exe.is_file():
        raise RuntimeError(f"pnnx binary not found at {exe}")
    return exe


class NcnnAdapter(RuntimeAdapter):
    """Adapter for `ncnn <https://github.com/Tencent/ncnn>`_ through pnnx."""

    name = "ncnn"
    install_hint = "pip install ncnn pnnx"
    modules = ("ncnn", "pnnx")

    def version(self) -> str:
        import ncnn

        return str(ncnn.__version__)

    def candidates(self, device: DeviceProfile, threads: Sequence[int] = (1,)) -> list[Candidate]:
        return [Candidate.make(self.name, "cpu", p, n) for n in threads for p in ("fp32", "fp16")]

    def check(self, model: ModelSpec, candidate: Candidate) -> str | None:
        if candidate.backend != "cpu" or candidate.precision not in ("fp32", "fp16"):
            return "only cpu fp32/fp16 is offered"
        for name, shape in zip(model.input_names, model.input_shapes, strict=True):
            if shape and shape[0] != 1:
                return f"input {name!r} has batch {shape[0]}; ncnn has no batch dimension"
            if len(shape) > 5:
                return f"input {name!r} has rank {len(shape)}; ncnn takes at most 4 dims"
        return None

    def prepare(self, model: ModelSpec, candidate: Candidate, workdir: Path) -> Path:
        src = workdir / "model.onnx"
        _copy_with_external_data(model.onnx_path, src)
        shapes = []
        for shape, dtype in zip(model.input_shapes, model.input_dtypes, strict=True):
            dims = ",".join(str(d) for d in shape)
            shapes.append(f"[{dims}]{_PNNX_DTYPES.get(dtype, 'f32')}")
        argv = [str(pnnx_executable()), src.name, "inputshape=" + ",".join(shapes), "fp16=0"]
        proc = subprocess.run(
            argv, cwd=workdir, capture_output=True, text=True, timeout=600, check=False
        )
        param = workdir / "model.ncnn.param"
        if (
            proc.returncode != 0
            or not param.is_file()
            or not (workdir / "model.ncnn.bin").is_file()
        ):
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            raise RuntimeError(f"pnnx failed (exit {proc.returncode}): {' | '.join(tail)}")
        for extra in workdir.glob("model.pnnx*"):
            extra.unlink()
        return param

    def load(self, artifact: Path, model: ModelSpec, candidate: Candidate) -> Any:
        import ncnn

        net = ncnn.Net()
        fp16 = candidate.precision == "fp16"
        net.opt.use_vulkan_compute = False
        net.opt.use_fp16_storage = fp16
        net.opt.use_fp16_packed = fp16
        net.opt.use_fp16_arithmetic = fp16
        net.opt.num_threads = max(1, candidate.threads)
        if net.load_param(str(artifact)) != 0:
            raise RuntimeError(f"ncnn could not read {artifact}")
        if net.load_model(str(artifact.with_suffix(".bin"))) != 0:
            raise RuntimeError(f"ncnn could not read {artifact.with_suffix('.bin')}")
        in_names = list(net.input_names())
        out_names = list(net.output_names())
        if len(in_names) != len(model.input_names):
            raise RuntimeError(
                f"ncnn model has inputs {in_names}, expected {len(model.input_names)}"
            )
        return (net, in_names, out_names)

    def run(self, session: Any, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        import ncnn

        net, in_names, out_names = session
        keep = []  # ncnn.Mat(numpy) does not own its memory: keep arrays alive until extract
        with net.create_extractor() as ex:
            for name, arr in zip(in_names, inputs, strict=True):
                a = np.ascontiguousarray(arr[0] if arr.ndim > 1 else arr, dtype=np.float32)
                keep.append(a)
                ex.input(name, ncnn.Mat(a))
            outs = []
            for name in out_names:
                ret, mat = ex.extract(name)
                if ret != 0:
                    raise RuntimeError(f"ncnn extract({name!r}) failed with {ret}")
                outs.append(np.array(mat, copy=True))
        del keep
        return outs
