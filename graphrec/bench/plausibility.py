"""Is a measured latency physically possible? A roofline lower bound from the device profile.

A runtime that skips the work (MNN "ran" a 4.6 GFLOP OCR recogniser in 0.02 ms, about
230 TFLOP/s on two cores) must not be stored as a success. For one inference of a model
with ``F`` FLOPs that must read at least ``B`` bytes (its weights and its inputs), on
``n`` cores at ``f`` Hz with SIMD vectors of ``L`` fp32 lanes:

* compute peak: ``n * f * L * 2 (multiply-add) * 2 (FMA ports) * p`` FLOP/s, where ``p``
  is the precision's speed-up over fp32 (fp16/bf16: 2, int8: 4; with AMX tiles: 16 and
  32);
* load peak: ``n * f * 2 (loads per cycle) * 4L`` bytes/s, the L1 bandwidth; bytes
  shrink with the precision (fp16/bf16: 1/2, int8: 1/4). It is the fastest any data can
  reach the cores, so the bound holds even when everything is in cache;

and the least possible time is ``max(F / compute peak, B / load peak)``. ``n`` is the
candidate's thread count (the device's available threads for 0), capped by the logical
cores; ``f`` is the maximum frequency (6 GHz when unknown); ``L`` comes from the ISA
flags (AVX-512: 16, AVX/AVX2: 8, SSE/NEON: 4, unknown: 16).

The bound is divided by a margin of :data:`MARGIN` = 32 before it is used: it covers fast
algorithms that do fewer FLOPs than the graph states (Winograd and FFT convolutions, up
to ~4x), runtimes that compute an fp32 candidate in a lower precision internally (~2-3x),
frequency above the profile's maximum, and FLOP counts of operators a runtime folds
away. A warm median latency below ``bound / MARGIN`` is :data:`Status.IMPLAUSIBLE
<graphrec.bench.protocol.Status>`; for the MNN example the limit is ~0.3 ms.

Example:
    >>> from graphrec.device import DeviceProfile
    >>> dev = DeviceProfile(name="x", logical_cores=2, threads_available=2,
    ...                     freq_max_mhz=3000.0, isa_flags=["avx2", "fma"])
    >>> round(roofline_ms(4.6e9, 1e7, dev, threads=2), 3)   # 4.6 GFLOP on 2 AVX2 cores
    23.958
    >>> round(plausible_floor_ms(4.6e9, 1e7, dev, threads=2), 3)
    0.749
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from graphrec.device import DeviceProfile

__all__ = [
    "MARGIN",
    "ModelWork",
    "model_work",
    "plausible_floor_ms",
    "roofline_ms",
    "simd_fp32_lanes",
]

#: Factor the roofline bound is divided by before a latency is called implausible.
MARGIN = 32.0
_UNKNOWN_FREQ_MHZ = 6000.0


def simd_fp32_lanes(isa_flags: Sequence[str]) -> int:
    """fp32 lanes of the widest SIMD unit the ISA flags name (16 when nothing is known)."""
    flags = {f.lower() for f in isa_flags}
    if any(f.startswith("avx512") for f in flags) or "sve" in flags or "sve2" in flags:
        return 16
    if flags & {"avx", "avx2", "fma", "fma3"}:
        return 8
    if any(f.startswith("sse") for f in flags) or flags & {"neon", "asimd", "asimdhp"}:
        return 4
    return 16


def _precision_factor(precision: str, isa_flags: Sequence[str]) -> tuple[float, float]:
    """``(compute speed-up over fp32, bytes per value / 4)`` of a precision."""
    flags = {f.lower() for f in isa_flags}
    if precision == "int8":
        return (32.0 if "amx_int8" in flags else 4.0), 0.25
    if precision in ("fp16", "bf16"):
        return (16.0 if flags & {"amx_bf16", "amx_fp16"} else 2.0), 0.5
    return 1.0, 1.0


def roofline_ms(
    flops: float,
    bytes_min: float,
    device: DeviceProfile,
    *,
    threads: int = 0,
    precision: str = "fp32",
) -> float:
    """The least time (ms) one inference can take on ``device`` (no margin; module doc)."""
    cores = threads if threads > 0 else max(device.threads_available, 1)
    cores = max(1, min(cores, max(device.logical_cores, device.threads_available, 1)))
    freq_hz = float(device.freq_max_mhz or _UNKNOWN_FREQ_MHZ) * 1e6
    lanes = simd_fp32_lanes(device.isa_flags)
    speedup, byte_scale = _precision_factor(precision, device.isa_flags)
    compute = cores * freq_hz * lanes * 2.0 * 2.0 * speedup
    load = cores * freq_hz * 2.0 * 4.0 * lanes
    return 1000.0 * max(max(flops, 0.0) / compute, max(bytes_min, 0.0) * byte_scale / load)


def plausible_floor_ms(
    flops: float,
    bytes_min: float,
    device: DeviceProfile,
    *,
    threads: int = 0,
    precision: str = "fp32",
    margin: float = MARGIN,
) -> float:
    """:func:`roofline_ms` divided by ``margin``: faster than this is implausible."""
    return roofline_ms(flops, bytes_min, device, threads=threads, precision=precision) / margin


@dataclass(frozen=True)
class ModelWork:
    """What one inference must do, from the graph kernel."""

    flops: float
    bytes_min: float


def model_work(
    onnx_path: str | Path, input_shapes: Mapping[str, Sequence[int]]
) -> ModelWork | None:
    """FLOPs and the least bytes (weights + inputs) of a model at the given input shapes.

    ``None`` when the kernel cannot analyse the model (then no bound is applied).
    """
    from graphrec.errors import GraphRecError
    from graphrec.graph import load

    try:
        g = load(onnx_path, input_shapes={k: list(v) for k, v in input_shapes.items()})
    except (GraphRecError, OSError, ValueError):
        return None
    weights = float(g.totals.get("param_bytes", 0.0))
    inputs = 0.0
    for shape in input_shapes.values():
        n = 1.0
        for d in shape:
            n *= float(d)
        inputs += 4.0 * n  # (as fp32; an int8 / fp16 input is scaled with the precision)
    return ModelWork(float(g.total_flops), weights + inputs)


def classify(
    row: dict[str, object], work: ModelWork | None, device: DeviceProfile
) -> dict[str, object]:
    """Mark ``row`` :data:`~graphrec.bench.protocol.Status.IMPLAUSIBLE` when too fast.

    Applies to rows whose status is ``ok`` or ``unverified`` and that have a warm median
    (``p50_ms``). Records ``plausible_floor_ms`` (the limit) in the row either way, and
    explains the verdict in ``error``. Returns the row (changed in place).
    """
    from graphrec.bench.protocol import Status

    if work is None:
        return row
    threads = row.get("threads")
    floor = plausible_floor_ms(
        work.flops,
        work.bytes_min,
        device,
        threads=int(threads) if isinstance(threads, int | float) else 0,
        precision=str(row.get("precision") or "fp32"),
    )
    row["plausible_floor_ms"] = floor
    p50 = row.get("p50_ms")
    if row.get("status") not in (Status.OK, Status.UNVERIFIED) or not isinstance(p50, int | float):
        return row
    if p50 < floor:
        was = row.get("status")
        row["status"] = Status.IMPLAUSIBLE
        row["error"] = (
            f"warm median {p50:.4g} ms is below the plausible floor {floor:.4g} ms "
            f"(roofline of {work.flops:.3g} FLOPs / {work.bytes_min:.3g} bytes on this "
            f"device, divided by {MARGIN:g}); the runtime cannot have done the model's "
            f"work (status was {was})"
        )
    return row
