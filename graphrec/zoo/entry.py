"""Zoo entries: one sampled architecture, its torch module, and its deterministic ONNX export."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import tempfile
import warnings
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from graphrec.errors import ZooError, ZooUnknownFamilyError
from graphrec.zoo._spec import Family, InputSpec, Params, ParamSampler
from graphrec.zoo.families import FAMILIES

#: ONNX opset of every export (the legacy exporter; pnnx mis-converts opset-18 ReduceMean).
OPSET = 17
#: Largest forward cost a sampled architecture may have (FLOPs, multiply-add = 2).
FLOP_BUDGET = 3.0e9
#: Largest parameter count a sampled architecture may have (keeps files under ~40 MB).
PARAM_BUDGET = 10_000_000
#: Draws tried per seed before the cheapest one over budget is rejected.
MAX_DRAWS = 32

Variant = Literal["fp32", "int8_static", "int8_dynamic"]
VARIANTS: tuple[str, ...] = ("fp32", "int8_static", "int8_dynamic")


def get_family(name: str) -> Family:
    """The family called ``name``; raises :class:`ZooUnknownFamilyError` listing valid names."""
    try:
        return FAMILIES[name]
    except KeyError:
        valid = ", ".join(FAMILIES)
        raise ZooUnknownFamilyError(f"unknown zoo family {name!r}; valid: {valid}") from None


def _stream_seed(family: str, seed: int, stream: int) -> list[int]:
    """Entropy for one independent random stream of ``(family, seed)``."""
    return [int(seed) & 0xFFFFFFFF, int(seed) >> 32, zlib.crc32(family.encode()), stream]


def _torch_seed(family: str, seed: int, stream: int) -> int:
    state = np.random.SeedSequence(_stream_seed(family, seed, stream)).generate_state(2)
    return (int(state[0]) << 31) ^ int(state[1])


@contextlib.contextmanager
def _seeded_torch(seed: int) -> Iterator[None]:
    """Seed torch's CPU generator inside the block and restore the caller's state after it."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def _deterministic() -> Iterator[None]:
    previous = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous, warn_only=warn_only)


def estimate_cost(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> tuple[int, int]:
    """Forward FLOPs (torch's flop counter: matmuls and convolutions) and parameter count."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        module(*inputs)
    params = sum(p.numel() for p in module.parameters())
    return int(counter.get_total_flops()), int(params)


def _make_inputs(specs: list[InputSpec], seed: int) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    out = []
    for spec in specs:
        if spec.dtype == "int64":
            out.append(torch.randint(spec.low, spec.high, spec.shape, generator=gen))
        else:
            out.append(torch.randn(spec.shape, generator=gen))
    return tuple(out)


@dataclass(frozen=True)
class ExportInfo:
    """What :meth:`ZooEntry.export` wrote.

    Attributes:
        path: The ONNX file.
        sha256: SHA-256 of its bytes.
        graph_hash: Structural hash (see :func:`graphrec.zoo.hashing.graph_hash`).
        num_bytes: File size.
    """

    path: Path
    sha256: str
    graph_hash: str
    num_bytes: int


@dataclass(frozen=True)
class ZooEntry:
    """One zoo model: a family, a seed, the sampled parameters and a numeric variant.

    The entry is fully determined by ``(family, seed, variant, tiny)``: :meth:`sample`
    redraws the same parameters, :meth:`build_module` the same weights and
    :meth:`export` the same bytes.

    Attributes:
        family: Family name (a key of :data:`graphrec.zoo.FAMILIES`).
        seed: The non-negative integer seed.
        params: The architecture parameters (JSON-able).
        variant: ``fp32``, ``int8_static`` (QDQ, calibrated) or ``int8_dynamic``.
        tiny: Whether the parameters were drawn in tiny mode (cheapest option of each).

    Example:
        >>> entry = ZooEntry.sample("mobilenet_v2", seed=3)
        >>> module = entry.build_module()          # torch source for torch-based runtimes
        >>> info = entry.export("mnv2.onnx")       # opset 17, weights inside the file
    """

    family: str
    seed: int
    params: Params = field(compare=False)
    variant: str = "fp32"
    tiny: bool = False

    @classmethod
    def sample(
        cls, family: str, seed: int, *, variant: str = "fp32", tiny: bool = False
    ) -> ZooEntry:
        """Draw the architecture of ``family`` for ``seed`` (deterministic).

        Draws are repeated from the same seeded stream until one fits the
        :data:`FLOP_BUDGET` and :data:`PARAM_BUDGET`.

        Raises:
            ZooUnknownFamilyError: ``family`` is not a zoo family.
            ZooError: ``variant`` is unknown, the seed is negative, or no draw fits the budget.
        """
        fam = get_family(family)
        if variant not in VARIANTS:
            raise ZooError(f"unknown variant {variant!r}; valid: {', '.join(VARIANTS)}")
        if seed < 0:
            raise ZooError(f"zoo seeds are non-negative integers, got {seed}")
        rng = np.random.default_rng(_stream_seed(family, seed, 0))
        for _ in range(MAX_DRAWS):
            sampler = ParamSampler(rng, tiny=tiny)
            fam.sample(sampler)
            entry = cls(family, seed, sampler.params, variant, tiny)
            flops, n_params = entry.cost()
            if flops <= FLOP_BUDGET and n_params <= PARAM_BUDGET:
                return entry
        raise ZooError(f"{family} seed {seed}: no draw within budget after {MAX_DRAWS} tries")

    @classmethod
    def from_model_id(cls, model_id: str) -> ZooEntry:
        """Re-create an entry from its :attr:`model_id` (e.g. a results-store model name).

        Example:
            >>> ZooEntry.from_model_id("bert-s7-int8_dynamic").variant
            'int8_dynamic'

        Raises:
            ZooError: The id does not look like ``family-sSEED[-variant][-tiny]``.
            ZooUnknownFamilyError: The family is unknown.
        """
        parts = model_id.split("-")
        tiny = parts[-1] == "tiny"
        if tiny:
            parts = parts[:-1]
        variant = parts.pop() if len(parts) == 3 else "fp32"
        if len(parts) != 2 or not parts[1].startswith("s") or not parts[1][1:].isdigit():
            raise ZooError(f"{model_id!r} is not a zoo model id (family-sSEED[-variant][-tiny])")
        return cls.sample(parts[0], int(parts[1][1:]), variant=variant, tiny=tiny)

    @property
    def model_id(self) -> str:
        """Stable identifier, e.g. ``resnet-s42``, ``bert-s7-int8_dynamic``, ``vgg-s0-tiny``."""
        parts = [f"{self.family}-s{self.seed}"]
        if self.variant != "fp32":
            parts.append(self.variant)
        if self.tiny:
            parts.append("tiny")
        return "-".join(parts)

    @property
    def family_spec(self) -> Family:
        """The :class:`Family` record of this entry."""
        return get_family(self.family)

    @property
    def input_specs(self) -> list[InputSpec]:
        """Names, static shapes and dtypes of the model inputs."""
        return self.family_spec.inputs(self.params)

    @property
    def output_names(self) -> tuple[str, ...]:
        """ONNX output names."""
        return self.family_spec.output_names

    def build_module(self) -> nn.Module:
        """The torch module in eval mode, with weights drawn from this entry's seed.

        The caller's global torch RNG state is left untouched.
        """
        with _seeded_torch(_torch_seed(self.family, self.seed, 1)):
            module = self.family_spec.build(self.params)
        return module.eval()

    def example_inputs(self) -> tuple[torch.Tensor, ...]:
        """Deterministic example inputs (standard normal floats, in-range integer ids)."""
        return _make_inputs(self.input_specs, _torch_seed(self.family, self.seed, 2))

    def calibration_inputs(self, count: int = 4) -> list[dict[str, np.ndarray]]:
        """``count`` deterministic input feeds for static int8 calibration."""
        seed = _torch_seed(self.family, self.seed, 3)
        feeds = []
        for i in range(count):
            tensors = _make_inputs(self.input_specs, seed + i)
            feeds.append(
                {s.name: t.numpy() for s, t in zip(self.input_specs, tensors, strict=True)}
            )
        return feeds

    def cost(self) -> tuple[int, int]:
        """Forward FLOPs and parameter count (measured on a meta-device copy when possible)."""
        try:
            with _seeded_torch(0), torch.device("meta"):
                module = self.family_spec.build(self.params).eval()
            inputs = tuple(t.to("meta") for t in self.example_inputs())
            return estimate_cost(module, inputs)
        except (NotImplementedError, RuntimeError):
            return estimate_cost(self.build_module(), self.example_inputs())

    def onnx_bytes(self) -> bytes:
        """The serialized ONNX model (fp32 or the int8 variant), bit-identical per entry."""
        fp32 = self._export_fp32()
        rewrite = self.family_spec.rewrite
        if rewrite is not None:
            try:
                fp32 = rewrite(fp32, self.params)
            except Exception as exc:  # onnx tooling raises many unrelated types
                raise ZooError(f"{self.model_id}: ONNX rewrite failed: {exc}") from exc
        if self.variant == "fp32":
            return fp32
        return self._quantize(fp32)

    def export(self, path: str | Path) -> ExportInfo:
        """Write the model to ``path`` (atomically) and describe what was written."""
        import onnx

        from graphrec.zoo.hashing import graph_hash

        data = self.onnx_bytes()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        tmp.write_bytes(data)
        tmp.replace(path)
        return ExportInfo(
            path,
            hashlib.sha256(data).hexdigest(),
            graph_hash(onnx.load_from_string(data)),
            len(data),
        )

    # ---------------------------------------------------------------- internals

    def _export_fp32(self) -> bytes:
        module = self.build_module()
        inputs = self.example_inputs()
        try:
            with (
                tempfile.TemporaryDirectory(prefix="graphrec-zoo-") as tmp,
                _deterministic(),
                torch.no_grad(),
                warnings.catch_warnings(),
            ):
                target = Path(tmp) / "model.onnx"
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    module,
                    inputs,
                    target,
                    dynamo=False,
                    opset_version=OPSET,
                    input_names=[s.name for s in self.input_specs],
                    output_names=list(self.output_names),
                    do_constant_folding=True,
                    export_params=True,
                )
                return target.read_bytes()
        except Exception as exc:  # the exporter raises many unrelated types
            raise ZooError(f"{self.model_id}: ONNX export failed: {exc}") from exc

    def _quantize(self, fp32: bytes) -> bytes:
        try:
            from onnxruntime.quantization import (
                CalibrationDataReader,
                QuantFormat,
                QuantType,
                quantize_dynamic,
                quantize_static,
            )
        except ImportError as exc:
            from graphrec.errors import RuntimeUnavailableError

            raise RuntimeUnavailableError(
                "int8 zoo variants need onnxruntime: pip install onnxruntime"
            ) from exc

        feeds = self.calibration_inputs()

        class _Reader(CalibrationDataReader):
            def __init__(self) -> None:
                self._it = iter(feeds)

            def get_next(self) -> dict[str, np.ndarray] | None:
                return next(self._it, None)

        quiet = logging.getLogger()
        level = quiet.level
        try:
            with tempfile.TemporaryDirectory(prefix="graphrec-zoo-") as tmp:
                src = Path(tmp) / "fp32.onnx"
                dst = Path(tmp) / "int8.onnx"
                src.write_bytes(fp32)
                quiet.setLevel(logging.ERROR)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    if self.variant == "int8_static":
                        quantize_static(
                            src,
                            dst,
                            _Reader(),
                            quant_format=QuantFormat.QDQ,
                            activation_type=QuantType.QUInt8,
                            weight_type=QuantType.QInt8,
                        )
                    else:
                        quantize_dynamic(src, dst, weight_type=QuantType.QInt8)
                return dst.read_bytes()
        except Exception as exc:  # quantisation tooling raises many unrelated types
            raise ZooError(f"{self.model_id}: int8 quantisation failed: {exc}") from exc
        finally:
            quiet.setLevel(level)

    def to_record(self) -> dict[str, Any]:
        """The JSON-able identity of this entry (family, seed, variant, tiny, params)."""
        return {
            "model_id": self.model_id,
            "family": self.family,
            "seed": self.seed,
            "variant": self.variant,
            "tiny": self.tiny,
            "params": dict(self.params),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> ZooEntry:
        """Re-create an entry from :meth:`to_record` output (parameters are redrawn from
        the seed and must match the recorded ones)."""
        entry = cls.sample(
            str(record["family"]),
            int(record["seed"]),
            variant=str(record.get("variant", "fp32")),
            tiny=bool(record.get("tiny", False)),
        )
        if "params" in record and dict(record["params"]) != entry.params:
            raise ZooError(
                f"{entry.model_id}: recorded parameters differ from the ones this version draws"
            )
        return entry


#: ``TorchSource`` factory string of zoo models (see :func:`torch_module`).
TORCH_FACTORY = "graphrec.zoo.entry:torch_module"


def torch_module(
    family: str, seed: int, tiny: bool = False, params: Mapping[str, Any] | None = None
) -> nn.Module:
    """Build a zoo model's torch module (the factory named in ``.torch.json`` sidecars).

    Args:
        family: Family name.
        seed: The model's seed.
        tiny: Whether it was drawn in tiny mode.
        params: The recorded parameters; when given they must equal the redrawn ones.

    Raises:
        ZooError: The recorded parameters differ from what this version draws.
    """
    record: dict[str, Any] = {"family": family, "seed": seed, "tiny": tiny}
    if params is not None:
        record["params"] = dict(params)
    return ZooEntry.from_record(record).build_module()
