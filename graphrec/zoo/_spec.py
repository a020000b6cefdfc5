"""Building blocks shared by every zoo family: the parameter sampler and the family record."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import numpy as np
from torch import nn

T = TypeVar("T")

#: Parameters of one architecture: JSON-able scalars and lists, keyed by name.
Params = dict[str, Any]


class ParamSampler:
    """Draws architecture parameters from one seeded NumPy generator and records them.

    Every draw names the parameter it decides, so the resulting dict is the complete,
    JSON-able description of the architecture. Option lists are written cheapest first:
    in *tiny* mode the sampler always takes the first option, which gives the smallest
    member of a family (used by fast tests and smoke runs).

    Args:
        rng: The generator to draw from (owned by the caller; no global state is used).
        tiny: Take the first (cheapest) option of every draw instead of a random one.
    """

    def __init__(self, rng: np.random.Generator, *, tiny: bool = False) -> None:
        self.rng = rng
        self.tiny = tiny
        self.params: Params = {}

    def choice(self, name: str, options: Sequence[T], p: Sequence[float] | None = None) -> T:
        """Pick one of ``options`` (weighted by ``p`` if given) and record it as ``name``."""
        if not options:
            raise ValueError(f"parameter {name!r} has no options")
        if self.tiny:
            index = 0
        else:
            probs = None if p is None else np.asarray(p, dtype=np.float64) / float(np.sum(p))
            index = int(self.rng.choice(len(options), p=probs))
        value = options[index]
        self.params[name] = value
        return value

    def choices(self, name: str, options: Sequence[T], k: int) -> list[T]:
        """Pick ``k`` independent values from ``options``; records the list as ``name``."""
        if self.tiny:
            values = [options[0]] * k
        else:
            values = [options[int(i)] for i in self.rng.integers(0, len(options), size=k)]
        self.params[name] = list(values)
        return values

    def integer(self, name: str, low: int, high: int) -> int:
        """Pick an integer in ``[low, high]`` (inclusive); ``low`` in tiny mode."""
        value = low if self.tiny else int(self.rng.integers(low, high + 1))
        self.params[name] = value
        return value

    def set(self, name: str, value: T) -> T:
        """Record a derived (not drawn) parameter."""
        self.params[name] = value
        return value


@dataclass(frozen=True)
class InputSpec:
    """One model input: its name, static shape, dtype and value range.

    Attributes:
        name: The ONNX input name.
        shape: The static shape, batch first.
        dtype: ``"float32"`` (standard normal values) or ``"int64"`` (token ids etc.).
        high: For integer inputs, values are drawn from ``[low, high)``.
        low: Lower bound of integer inputs.
    """

    name: str
    shape: tuple[int, ...]
    dtype: Literal["float32", "int64"] = "float32"
    high: int = 1
    low: int = 0


@dataclass(frozen=True)
class Family:
    """One architecture family of the zoo.

    Attributes:
        name: Short identifier used on the command line and in model ids.
        summary: One line describing the family.
        domain: ``vision``, ``nlp``, ``speech``, ``audio``, ``detection``, ``segmentation``,
            ``tabular`` or ``nas``.
        sample: Draws the parameters (records them on the sampler).
        build: Builds the torch module from the parameters (weights come from the
            caller's seeded RNG).
        inputs: The input specs for the parameters.
        output_names: ONNX output names, in the module's output order.
        int8: Which int8 quantisation suits the family: ``"static"`` (QDQ, calibrated;
            convolution networks) or ``"dynamic"`` (weights int8, activations quantised at
            run time; transformers and RNNs).
        tags: Free-form labels.
        rewrite: Optional ONNX-level rewrite applied to the fp32 export before any int8
            quantisation: ``rewrite(onnx_bytes, params) -> onnx_bytes``. It must keep the
            function the torch module computes (the ``.torch.json`` sidecar still describes
            the model) and be deterministic in its arguments.
    """

    name: str
    summary: str
    domain: str
    sample: Callable[[ParamSampler], None]
    build: Callable[[Mapping[str, Any]], nn.Module]
    inputs: Callable[[Mapping[str, Any]], list[InputSpec]]
    output_names: tuple[str, ...] = ("output",)
    int8: Literal["static", "dynamic"] = "static"
    tags: tuple[str, ...] = field(default_factory=tuple)
    rewrite: Callable[[bytes, Mapping[str, Any]], bytes] | None = None


def image_input(params: Mapping[str, Any], channels: int = 3) -> list[InputSpec]:
    """The single NCHW image input used by the vision families."""
    res = int(params["resolution"])
    return [InputSpec("input", (int(params["batch"]), channels, res, res))]


def sample_batch(s: ParamSampler) -> int:
    """Batch size: 1 (70 %), 2 (20 %) or 4 (10 %)."""
    return s.choice("batch", [1, 2, 4], p=[0.7, 0.2, 0.1])


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to a multiple of ``divisor`` (never below 90 % of it)."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new
