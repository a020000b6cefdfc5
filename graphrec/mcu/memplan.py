"""Memory plan: activations in one arena by liveness; weights across storage media.

**Arena.** Every activation buffer (reshapes share their source's) lives from the step
that writes it to the last step that reads it (the input from the start, the output to
the end). Elementwise steps whose input dies there run in place. Buffers are placed by
the greedy-by-size rule (largest first, each at the lowest offset free during its
lifetime); :func:`optimal_arena` finds the true optimum by trying that lowest-fit rule
in every order, which is exact (placing the buffers of an optimal layout in order of
their offsets, lowest-fit never puts one higher than the optimum does).

**Weights.** Media are taken cheapest access first (per byte: SRAM, flash, EEPROM,
external SPI memory); each one gets, by an exact 0/1 knapsack over bytes, the subset of
the remaining tensors that maximizes the reads per inference it serves, under its
capacity. What is left after the last medium is an error with the numbers.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from graphrec.mcu.errors import StorageFitError
from graphrec.mcu.model import McuModel

__all__ = [
    "ArenaPlan",
    "Buffer",
    "Placement",
    "StoragePlan",
    "greedy_arena",
    "knapsack",
    "optimal_arena",
    "plan_arena",
    "plan_storage",
]

_INPLACE = ("relu", "leakyrelu", "sigmoid", "tanh", "softmax")


@dataclass
class Buffer:
    """An activation buffer: a name, a size and the steps it is live in (inclusive)."""

    name: str
    size: int
    start: int
    end: int
    offset: int = -1

    def overlaps_in_time(self, other: Buffer) -> bool:
        """Whether the two buffers are live at a common step."""
        return self.start <= other.end and other.start <= self.end


@dataclass
class ArenaPlan:
    """The activation arena.

    Attributes:
        buffers: Buffers with their offsets.
        tensor_buffer: Every activation tensor to the buffer holding it.
        size: Arena bytes (greedy layout).
        naive: Sum of all buffer sizes (no sharing).
        optimum: The brute-force optimum when there are few enough buffers, else ``None``.
    """

    buffers: list[Buffer]
    tensor_buffer: dict[str, str]
    size: int
    naive: int
    optimum: int | None

    def offset_of(self, tensor: str) -> int:
        """Arena offset of ``tensor``."""
        name = self.tensor_buffer[tensor]
        return next(b.offset for b in self.buffers if b.name == name)


def _lowest_fit(order: Sequence[Buffer]) -> int:
    placed: list[tuple[int, int, Buffer]] = []
    top = 0
    for b in order:
        busy = sorted((o, o + s) for o, s, p in placed if p.overlaps_in_time(b))
        off = 0
        for lo, hi in busy:
            if off + b.size <= lo:
                break
            off = max(off, hi)
        placed.append((off, b.size, b))
        b.offset = off
        top = max(top, off + b.size)
    return top


def greedy_arena(buffers: Sequence[Buffer]) -> int:
    """Place ``buffers`` largest first at the lowest free offset; returns the arena size."""
    order = sorted(buffers, key=lambda b: (-b.size, b.start, b.name))
    return _lowest_fit(order)


def optimal_arena(buffers: Sequence[Buffer], max_buffers: int = 8) -> int | None:
    """The smallest arena for ``buffers`` by trying lowest-fit in every order.

    Returns ``None`` when there are more than ``max_buffers`` buffers. Leaves the offsets
    of ``buffers`` untouched.
    """
    if len(buffers) > max_buffers:
        return None
    copies = [Buffer(b.name, b.size, b.start, b.end) for b in buffers]
    best = sum(b.size for b in copies)
    for perm in itertools.permutations(copies):
        best = min(best, _lowest_fit(perm))
    return best


def plan_arena(model: McuModel, elem_bytes: int, *, align: int = 4) -> ArenaPlan:
    """Plan the activation arena of ``model`` with ``elem_bytes`` per element.

    Args:
        model: The lowered model.
        elem_bytes: 4 (float) or 1 (int8).
        align: Every buffer starts at a multiple of this.
    """
    n = len(model.steps)
    owner: dict[str, str] = {model.input: model.input}
    first: dict[str, int] = {model.input: 0}
    last: dict[str, int] = {model.input: 0}
    size: dict[str, int] = {model.input: model.numel(model.input) * elem_bytes}

    def buf(t: str) -> str:
        return owner[t] if t in owner else owner[model.root(t)]

    for i, s in enumerate(model.steps):
        for t in s.inputs:
            last[buf(t)] = i
        src = buf(s.inputs[0])
        inplace = (
            s.op in _INPLACE
            and last[src] == i
            and src != buf(model.input)
            and sum(1 for t in s.inputs if buf(t) == src) == 1
            and not _read_later(model, src, i, owner)
        )
        if inplace:
            owner[s.output] = src
            last[src] = i
        else:
            owner[s.output] = s.output
            first[s.output] = i
            last[s.output] = i
            size[s.output] = model.numel(s.output) * elem_bytes
    last[buf(model.output)] = n
    buffers = [
        Buffer(name, -(-size[name] // align) * align, first[name], last[name]) for name in size
    ]
    total = greedy_arena(buffers)
    optimum = optimal_arena(buffers)
    tensor_buffer = {t: buf(t) for t in list(owner) + list(model.alias)}
    return ArenaPlan(buffers, tensor_buffer, total, sum(b.size for b in buffers), optimum)


def _read_later(model: McuModel, src: str, i: int, owner: Mapping[str, str]) -> bool:
    for s in model.steps[i + 1 :]:
        for t in s.inputs:
            if owner.get(t, owner.get(model.root(t))) == src:
                return True
    return model.root(model.output) == src or owner.get(model.root(model.output)) == src


# ---- weights across media --------------------------------------------------------------
@dataclass(frozen=True)
class Placement:
    """Where one weight tensor lives."""

    name: str
    medium: str
    bytes: int
    reads: float


@dataclass
class StoragePlan:
    """Weights per medium, with the capacities the plan respected.

    Attributes:
        placements: One per weight tensor.
        capacity: Bytes available for weights per medium.
        cost_per_byte: Access cycles per byte assumed per medium.
        used: Bytes of weights per medium.
        read_cycles: Estimated cycles spent reading weights per inference.
    """

    placements: list[Placement]
    capacity: dict[str, int]
    cost_per_byte: dict[str, float]
    used: dict[str, int] = field(default_factory=dict)
    read_cycles: float = 0.0

    def medium_of(self, name: str) -> str:
        """The medium holding weight ``name``."""
        return next(p.medium for p in self.placements if p.name == name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "capacity_bytes": self.capacity,
            "cost_cycles_per_byte": self.cost_per_byte,
            "used_bytes": self.used,
            "estimated_weight_read_cycles": round(self.read_cycles),
            "placements": [
                {
                    "tensor": p.name,
                    "medium": p.medium,
                    "bytes": p.bytes,
                    "reads_per_inference": p.reads,
                }
                for p in self.placements
            ],
        }


def knapsack(sizes: Sequence[int], values: Sequence[float], capacity: int) -> list[int]:
    """Exact 0/1 knapsack: indices of the items of largest total value within ``capacity``.

    Dynamic programming over bytes (sizes are first divided by their common divisor).
    """
    items = [i for i, s in enumerate(sizes) if s <= capacity]
    if not items or capacity <= 0:
        return []
    if sum(sizes[i] for i in items) <= capacity:
        return items
    g = int(np.gcd.reduce(np.array([sizes[i] for i in items], dtype=np.int64)))
    cap = capacity // g
    best = np.zeros(cap + 1)
    take = np.zeros((len(items), cap + 1), dtype=bool)
    for k, i in enumerate(items):
        s = sizes[i] // g
        cand = np.full(cap + 1, -np.inf)
        cand[s:] = best[: cap + 1 - s] + values[i]
        better = cand > best
        take[k] = better
        best = np.where(better, cand, best)
    chosen, c = [], cap
    for k in range(len(items) - 1, -1, -1):
        if take[k, c]:
            chosen.append(items[k])
            c -= sizes[items[k]] // g
    return sorted(chosen)


def plan_storage(
    tensors: Sequence[tuple[str, int, float]],
    capacity: Mapping[str, int],
    cost_per_byte: Mapping[str, float],
    *,
    target: str,
    fixed_needs: Mapping[str, int] | None = None,
    sram_copies_to_flash: bool = True,
    flash_image_bytes: int | None = None,
) -> StoragePlan:
    """Place weight tensors across media.

    Args:
        tensors: ``(name, bytes, reads per inference)`` per tensor.
        capacity: Bytes each medium has left for weights (media absent or 0 are unused).
        cost_per_byte: Access cycles per byte; media are filled cheapest first.
        target: Named in the error.
        fixed_needs: Bytes each medium needs besides weights (for the error message).
        sram_copies_to_flash: A weight placed in SRAM also occupies flash (its initial
            image, as on AVR where ``.data`` is copied from flash at start-up).
        flash_image_bytes: Flash available for those images (default: the flash capacity;
            give it when flash is excluded as a weight medium but still holds ``.data``).

    Raises:
        StorageFitError: Some tensors fit no medium; gives needed vs available per medium.
    """
    cap = {m: int(c) for m, c in capacity.items()}
    images = flash_image_bytes if flash_image_bytes is not None else cap.get("flash", 0)
    left = list(range(len(tensors)))
    placed: dict[int, str] = {}
    for medium in sorted(cap, key=lambda m: cost_per_byte[m]):
        if cap[medium] <= 0 or not left:
            continue
        room = cap[medium]
        if medium == "sram" and sram_copies_to_flash:
            room = min(room, images)
        sizes = [tensors[i][1] for i in left]
        values = [tensors[i][2] * tensors[i][1] + 1e-9 for i in left]
        chosen = [left[k] for k in knapsack(sizes, values, room)]
        for i in chosen:
            placed[i] = medium
            cap[medium] -= tensors[i][1]
            if medium == "sram" and sram_copies_to_flash:
                images -= tensors[i][1]
                if "flash" in cap:
                    cap["flash"] = min(cap["flash"], images)
        left = [i for i in left if i not in placed]
    base = dict(fixed_needs or {})
    used = {m: 0 for m in capacity}
    for i, m in placed.items():
        used[m] += tensors[i][1]
        if m == "sram" and sram_copies_to_flash and "flash" in used:
            used["flash"] += tensors[i][1]
    if left:
        needed = {m: base.get(m, 0) + used[m] for m in capacity}
        needed["flash"] = needed.get("flash", 0) + sum(tensors[i][1] for i in left)
        available = {m: base.get(m, 0) + int(capacity[m]) for m in capacity}
        names = ", ".join(tensors[i][0] for i in left[:4]) + (" ..." if len(left) > 4 else "")
        raise StorageFitError(
            target, needed, available, f"{len(left)} weight tensors fit no medium: {names}"
        )
    placements = [Placement(t[0], placed[i], t[1], t[2]) for i, t in enumerate(tensors)]
    cycles = sum(p.bytes * p.reads * cost_per_byte[p.medium] for p in placements)
    return StoragePlan(placements, dict(capacity), dict(cost_per_byte), used, cycles)
