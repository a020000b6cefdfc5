"""Arena liveness planning and weight placement across media."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from mcu_helpers import cnn, mlp

from graphrec.mcu import StorageFitError, load_model
from graphrec.mcu.memplan import (
    Buffer,
    greedy_arena,
    knapsack,
    optimal_arena,
    plan_arena,
    plan_storage,
)


def _valid(buffers: list[Buffer]) -> bool:
    for a, b in itertools.combinations(buffers, 2):
        if a.overlaps_in_time(b) and a.offset < b.offset + b.size and b.offset < a.offset + a.size:
            return False
    return True


def _exhaustive(buffers: list[Buffer], unit: int) -> int:
    """The optimum by trying every offset (multiples of ``unit``) for every buffer."""
    best = sum(b.size for b in buffers)
    top = best
    choices = [range(0, top - b.size + 1, unit) for b in buffers]
    for offs in itertools.product(*choices):
        for b, o in zip(buffers, offs, strict=True):
            b.offset = o
        if _valid(buffers):
            best = min(best, max(o + b.size for b, o in zip(buffers, offs, strict=True)))
    return best


@pytest.mark.parametrize("seed", range(12))
def test_brute_force_optimum_is_the_true_optimum_and_greedy_is_valid(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 6))
    bufs = []
    for i in range(n):
        s = int(rng.integers(0, 6))
        bufs.append(Buffer(f"b{i}", int(rng.integers(1, 4)) * 2, s, s + int(rng.integers(0, 3))))
    opt = optimal_arena(bufs)
    assert opt == _exhaustive([Buffer(b.name, b.size, b.start, b.end) for b in bufs], 2)
    size = greedy_arena(bufs)
    assert _valid(bufs)
    assert opt is not None and opt <= size <= sum(b.size for b in bufs)


def test_arena_shares_memory_by_liveness(tmp_path: Path) -> None:
    m = load_model(mlp(tmp_path / "mlp.onnx", (64, 32, 16, 10)))
    plan = plan_arena(m, 1, align=1)
    # input 64 and hidden 32 are live together, then 32+16, then 16+10 (softmax in place)
    assert plan.naive == 64 + 32 + 16 + 10
    assert plan.size == plan.optimum == 96
    c = load_model(cnn(tmp_path / "cnn.onnx"))
    cp = plan_arena(c, 4)
    assert cp.size < cp.naive
    assert cp.optimum is not None and cp.optimum <= cp.size
    for b in cp.buffers:
        assert b.offset % 4 == 0


def test_knapsack_is_exact_against_enumeration() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        sizes = [int(v) for v in rng.integers(1, 40, 7)]
        values = [float(v) for v in rng.random(7)]
        cap = int(rng.integers(10, 120))
        got = knapsack(sizes, values, cap)
        assert sum(sizes[i] for i in got) <= cap
        best = max(
            sum(values[i] for i in sub)
            for r in range(8)
            for sub in itertools.combinations(range(7), r)
            if sum(sizes[i] for i in sub) <= cap
        )
        assert sum(values[i] for i in got) == pytest.approx(best)


def test_placement_prefers_cheap_media_for_frequently_read_tensors() -> None:
    tensors = [("conv_w", 300, 64.0), ("dense_w", 900, 1.0), ("bias", 40, 64.0)]
    plan = plan_storage(
        tensors,
        {"sram": 400, "flash": 2000, "eeprom": 1000},
        {"sram": 2, "flash": 3, "eeprom": 12},
        target="t",
    )
    assert plan.medium_of("conv_w") == "sram" and plan.medium_of("bias") == "sram"
    assert plan.medium_of("dense_w") == "flash"
    assert plan.used["flash"] == 900 + 340  # SRAM weights keep their image in flash
    spill = plan_storage(
        tensors,
        {"sram": 0, "flash": 500, "eeprom": 1000},
        {"sram": 2, "flash": 3, "eeprom": 12},
        target="t",
    )
    assert spill.medium_of("dense_w") == "eeprom"


def test_a_model_that_cannot_fit_names_needed_and_available_per_medium() -> None:
    with pytest.raises(StorageFitError) as info:
        plan_storage(
            [("w", 5000, 1.0), ("v", 3000, 1.0)],
            {"sram": 100, "flash": 4000, "eeprom": 1024},
            {"sram": 2, "flash": 3, "eeprom": 12},
            target="atmega328p",
            fixed_needs={"flash": 6144, "sram": 300},
        )
    msg = str(info.value)
    assert "atmega328p" in msg and "flash: needed" in msg and "available" in msg
    assert info.value.needed["flash"] > info.value.available["flash"]


def test_sram_weights_keep_their_flash_image_when_flash_is_not_a_weight_medium() -> None:
    plan = plan_storage(
        [("w", 300, 1.0)],
        {"sram": 400, "flash": 0, "eeprom": 0},
        {"sram": 2, "flash": 3, "eeprom": 12},
        target="t",
        flash_image_bytes=1000,
    )
    assert plan.medium_of("w") == "sram"
    with pytest.raises(StorageFitError):
        plan_storage(
            [("w", 300, 1.0)],
            {"sram": 400, "flash": 0, "eeprom": 0},
            {"sram": 2, "flash": 3, "eeprom": 12},
            target="t",
            flash_image_bytes=200,
        )
