"""MNN adapter: ONNX converted with MNN's Python converter entry, run with the Session API.

The converter is called through the compiled ``_tools.mnnconvert`` entry, never through
the ``MNN.tools`` package or the ``mnnconvert`` console script, which try to pip-install
a telemetry package (and reach the network) on first use. Models with LSTM layers are
converted with ``--useOriginRNNImpl``. The Session API sets threads reliably.

Candidate ids: ``mnn/cpu/fp32/threads=2`` (precision "high"); ``fp16`` (precision "low")
is offered on ARM CPUs with fp16 arithmetic.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from graphrec.runtimes._quiet import stdout_to_stderr
from graphrec.runtimes.base import Candidate, ModelSpec, RuntimeAdapter

if TYPE_CHECKING:
    from graphrec.device import DeviceProfile

__all__ = ["MnnAdapter"]


def _mnn() -> Any:
    """``import MNN``, with what its import prints (``The device supports: ...``) on stderr."""
    with stdout_to_stderr():
        import MNN
    return MNN


class MnnAdapter(RuntimeAdapter):
    """Adapter for `MNN <https://github.com/alibaba/MNN>`_ (CPU backend)."""

    name = "mnn"
    install_hint = "pip install MNN"
    modules = ("MNN", "_tools")

    def version(self) -> str:
        return str(_mnn().version())

    def candidates(self, device: DeviceProfile, threads: Sequence[int] = (1,)) -> list[Candidate]:
        precisions = ["fp32"]
        if device.arch in ("aarch64", "arm32") and "fp16_arith" in device.isa_flags:
            precisions.append("fp16")
        return [Candidate.make(self.name, "cpu", p, n) for n in threads for p in precisions]

    def check(self, model: ModelSpec, candidate: Candidate) -> str | None:
        if candidate.backend != "cpu" or candidate.precision not in ("fp32", "fp16"):
            return "only cpu fp32/fp16 is offered"
        return None

    def prepare(self, model: ModelSpec, candidate: Candidate, workdir: Path) -> Path:
        with stdout_to_stderr():  # its import prints the CPU's features on stdout
            import _tools  # MNN's compiled converter; importing MNN.tools would phone home

        target = workdir / "model.mnn"
        argv = [
            "mnnconvert",
            "-f",
            "ONNX",
            "--modelFile",
            str(model.onnx_path),
            "--MNNModel",
            str(target),
            "--bizCode",
            "graphrec",
        ]
        if _has_rnn(model.onnx_path):
            argv.append("--useOriginRNNImpl")
        ok = _tools.mnnconvert(argv)
        if not ok or not target.is_file():
            raise RuntimeError("MNN converter failed (see the worker log for its messages)")
        return target

    def load(self, artifact: Path, model: ModelSpec, candidate: Candidate) -> Any:
        MNN = _mnn()

        interp = MNN.Interpreter(str(artifact))
        config = {
            "backend": "CPU",
            "precision": "high" if candidate.precision == "fp32" else "low",
            "numThread": max(1, candidate.threads),
        }
        session = interp.createSession(config)
        tensors = interp.getSessionInputAll(session)
        inputs = []
        for name, shape in zip(model.input_names, model.input_shapes, strict=True):
            if name not in tensors:
                raise RuntimeError(f"MNN model has no input {name!r} (has {sorted(tensors)})")
            t = tensors[name]
            if list(t.getShape()) != list(shape):
                interp.resizeTensor(t, tuple(shape))
            inputs.append(t)
        interp.resizeSession(session)
        return (interp, session, inputs, list(model.output_names))

    def run(self, session: Any, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        MNN = _mnn()

        interp, sess, in_tensors, out_names = session
        for tensor, arr in zip(in_tensors, inputs, strict=True):
            if arr.dtype.kind in "iub":
                arr = arr.astype(np.int32)  # MNN's integer tensors are 32-bit
            host = MNN.Tensor(
                tuple(arr.shape), _halide_type(MNN, arr.dtype), arr, MNN.Tensor_DimensionType_Caffe
            )
            tensor.copyFrom(host)
        interp.runSession(sess)
        outs = interp.getSessionOutputAll(sess)
        results: list[np.ndarray] = []
        for name in out_names:
            o = outs[name] if name in outs else list(outs.values())[len(results)]
            shape = tuple(o.getShape())
            host = MNN.Tensor(
                shape,
                MNN.Halide_Type_Float,
                np.zeros(shape, np.float32),
                MNN.Tensor_DimensionType_Caffe,
            )
            o.copyToHostTensor(host)
            results.append(np.array(host.getNumpyData(), copy=True).reshape(shape))
        return results


def _halide_type(mnn: Any, dtype: np.dtype) -> Any:
    if dtype.kind == "f":
        return mnn.Halide_Type_Float
    if dtype.kind in "iub":
        return mnn.Halide_Type_Int
    raise RuntimeError(f"MNN adapter cannot feed dtype {dtype}")


def _has_rnn(path: Path) -> bool:
    try:
        import onnx

        proto = onnx.load(str(path), load_external_data=False)
    except Exception:
        return False
    return any(n.op_type in ("LSTM", "GRU", "RNN") for n in proto.graph.node)
