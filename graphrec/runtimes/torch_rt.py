"""PyTorch adapter: eager, TorchScript (trace) and ``torch.compile`` for models with a
torch source: the sidecar's module, or a conversion of the ONNX file
(:mod:`graphrec.runtimes.convert`).

Threads are set with ``torch.set_num_threads`` at load. ``torch.compile`` compiles on the
first call, so its cost shows up in the cold start.

Candidate ids: ``torch/eager/fp32/threads=2``, ``torch/torchscript/fp32/threads=2``,
``torch/compile/fp32/threads=2`` (offered only when asked for: compiling is slow).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from graphrec.runtimes._torch_common import build_module_and_args, flatten_outputs
from graphrec.runtimes.base import Candidate, ModelSpec, RuntimeAdapter

if TYPE_CHECKING:
    from graphrec.device import DeviceProfile

__all__ = ["TorchAdapter"]

_BACKENDS = ("eager", "torchscript", "compile")


class TorchAdapter(RuntimeAdapter):
    """Adapter for PyTorch itself (CPU)."""

    name = "torch"
    install_hint = "pip install torch"
    modules = ("torch",)
    needs_torch_source = True

    #: Backends offered by :meth:`candidates` (``compile`` is valid but not offered by default).
    default_backends: tuple[str, ...] = ("eager", "torchscript")

    def version(self) -> str:
        import torch

        return str(torch.__version__).split("+")[0]

    def candidates(self, device: DeviceProfile, threads: Sequence[int] = (1,)) -> list[Candidate]:
        return [
            Candidate.make(self.name, b, "fp32", n) for n in threads for b in self.default_backends
        ]

    def check(self, model: ModelSpec, candidate: Candidate) -> str | None:
        if candidate.backend not in _BACKENDS or candidate.precision != "fp32":
            return f"only fp32 with backends {list(_BACKENDS)} is offered"
        return super().check(model, candidate)

    def prepare(self, model: ModelSpec, candidate: Candidate, workdir: Path) -> Path:
        import torch

        module, args = build_module_and_args(model)
        if candidate.backend == "torchscript":
            # TorchScript is deprecated in torch 2.x but still what many deployments ship.
            with torch.inference_mode(), warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                traced = torch.jit.trace(module, args, check_trace=False)
            target = workdir / "model.pt"
            traced.save(str(target))
            return target
        # eager / compile rebuild the module from its source at load time (a module
        # converted from ONNX was built and checked above, so a failed conversion is a
        # failed prepare)
        target = workdir / "source.json"
        assert model.torch_source is not None
        target.write_text(json.dumps(model.torch_source.to_dict()))
        return target

    def load(self, artifact: Path, model: ModelSpec, candidate: Candidate) -> Any:
        import torch

        if candidate.threads > 0:
            torch.set_num_threads(candidate.threads)
        if candidate.backend == "torchscript":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                return torch.jit.load(str(artifact)).eval()
        module, _ = build_module_and_args(model, check=False)
        if candidate.backend == "compile":
            return torch.compile(module)
        return module

    def run(self, session: Any, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        import torch

        with torch.inference_mode():
            out = session(*(torch.from_numpy(a) for a in inputs))
        return flatten_outputs(out)
