"""ExecuTorch adapter: ``torch.export`` -> XNNPACK-delegated ``.pte`` -> portable runtime.

Conversion starts from the torch module: the sidecar's, or for a bare ONNX file a
conversion of it (:mod:`graphrec.runtimes.convert`, checked against onnxruntime). Without the XNNPACK delegate ExecuTorch's portable kernels
are ~100x slower, so only the delegated form is offered. Threads are set through the
runtime's thread pool before loading.

Candidate id: ``executorch/xnnpack/fp32/threads=2``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from graphrec.runtimes._torch_common import build_module_and_args, flatten_outputs
from graphrec.runtimes.base import Candidate, ModelSpec, RuntimeAdapter

if TYPE_CHECKING:
    from graphrec.device import DeviceProfile

__all__ = ["ExecuTorchAdapter"]


class ExecuTorchAdapter(RuntimeAdapter):
    """Adapter for `ExecuTorch <https://pytorch.org/executorch>`_ with XNNPACK."""

    name = "executorch"
    install_hint = "pip install executorch"
    modules = ("executorch", "torch")
    needs_torch_source = True

    def version(self) -> str:
        from graphrec.runtimes.base import dist_version

        return dist_version("executorch")

    def candidates(self, device: DeviceProfile, threads: Sequence[int] = (1,)) -> list[Candidate]:
        return [Candidate.make(self.name, "xnnpack", "fp32", n) for n in threads]

    def check(self, model: ModelSpec, candidate: Candidate) -> str | None:
        if candidate.backend != "xnnpack" or candidate.precision != "fp32":
            return "only xnnpack fp32 is offered"
        return super().check(model, candidate)

    def prepare(self, model: ModelSpec, candidate: Candidate, workdir: Path) -> Path:
        import torch
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
        from executorch.exir import to_edge_transform_and_lower

        module, args = build_module_and_args(model)
        exported = torch.export.export(module, args)
        program = to_edge_transform_and_lower(
            exported, partitioner=[XnnpackPartitioner()]
        ).to_executorch()
        target = workdir / "model.pte"
        target.write_bytes(program.buffer)
        return target

    def load(self, artifact: Path, model: ModelSpec, candidate: Candidate) -> Any:
        from executorch.extension.pybindings import portable_lib

        if candidate.threads > 0:
            portable_lib._unsafe_reset_threadpool(candidate.threads)
        return portable_lib._load_for_executorch(str(artifact))

    def run(self, session: Any, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        import torch

        return flatten_outputs(session.forward(tuple(torch.from_numpy(a) for a in inputs)))
