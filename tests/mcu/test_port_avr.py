"""AVR targets: avr-gcc builds run in simavr, inputs and outputs over the simulated UART.

These need gcc-avr, avr-libc, simavr and libsimavr-dev (``make sysdeps`` installs them);
they fail, not skip, when the tools are missing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from mcu_helpers import cnn, mlp

from graphrec.mcu import StorageFitError, port, run_port


def _x(n: int, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, *shape)).astype(np.float32)


def test_fixed_mlp_on_atmega328p_is_bit_exact_fits_and_counts_cycles(tmp_path: Path) -> None:
    path = mlp(tmp_path / "mlp.onnx", (64, 32, 16, 10), softmax=False)
    x = _x(5, (64,))
    res = port(
        path,
        target="atmega328p",
        mode="fixed",
        calibration=_x(32, (64,), 1),
        out_dir=tmp_path / "o",
    )
    rep = run_port(res, np.concatenate([x, x[:1]]))
    assert rep.bit_exact
    assert rep.flash_bytes is not None and 0 < rep.flash_bytes <= 32 * 1024
    assert rep.sram_bytes is not None and 0 < rep.sram_bytes <= 2 * 1024
    assert rep.stack_bytes is not None and rep.stack_bytes > 0
    assert len(rep.cycles) == 6 and min(rep.cycles) > 64 * 32  # at least a cycle per MAC
    assert rep.cycles[0] == rep.cycles[5]  # same input, same cycles: simavr is deterministic
    assert rep.top1_agreement >= 0.8
    # weights bound to their addresses: every constant is a symbol of the firmware
    assert set(rep.symbols) == {p.name for p in res.storage.placements}


def test_weights_in_eeprom_read_through_their_accessors(tmp_path: Path) -> None:
    path = mlp(tmp_path / "small.onnx", (16, 12, 6), softmax=False)
    x = _x(3, (16,))
    res = port(
        path,
        target="atmega328p",
        mode="fixed",
        calibration=x,
        out_dir=tmp_path / "e",
        media=("eeprom",),
    )
    assert {p.medium for p in res.storage.placements} == {"eeprom"}
    rep = run_port(res, x)
    assert rep.bit_exact
    assert rep.eeprom_bytes == sum(p.bytes for p in res.storage.placements)


def test_float_cnn_on_atmega2560_matches_onnxruntime(tmp_path: Path) -> None:
    path = cnn(tmp_path / "cnn.onnx")
    res = port(path, target="atmega2560", mode="float", out_dir=tmp_path / "c")
    rep = run_port(res, _x(2, (1, 8, 8)))
    assert rep.max_abs_error <= 1e-5
    assert rep.sram_bytes is not None and rep.sram_bytes <= 8 * 1024


def test_a_model_too_big_for_the_uno_gets_needed_vs_available(tmp_path: Path) -> None:
    path = mlp(tmp_path / "big.onnx", (256, 160, 10), softmax=False)  # 42 KB of int8 weights
    with pytest.raises(StorageFitError) as info:
        port(path, target="atmega328p", mode="fixed", out_dir=tmp_path / "b")
    msg = str(info.value)
    assert "atmega328p" in msg and "flash: needed" in msg and "sram: needed" in msg
    assert info.value.needed["flash"] > info.value.available["flash"]
    wide = mlp(tmp_path / "wide.onnx", (1900, 8, 10), softmax=False)  # arena + stack > 2 KB
    with pytest.raises(StorageFitError, match="arena"):
        port(wide, target="atmega328p", mode="fixed", out_dir=tmp_path / "w")


def test_weights_in_external_spi_memory_are_read_over_spi(tmp_path: Path) -> None:
    path = mlp(tmp_path / "ext.onnx", (16, 12, 6), softmax=False)
    x = _x(3, (16,))
    res = port(
        path,
        target="atmega328p",
        mode="fixed",
        calibration=x,
        out_dir=tmp_path / "x",
        media=("external",),
        external_bytes=128 * 1024,
    )
    assert {p.medium for p in res.storage.placements} == {"external"}
    assert res.external_image is not None
    total = sum(p.bytes for p in res.storage.placements)
    assert res.external_image.stat().st_size == total
    rep = run_port(res, x)
    assert rep.bit_exact
    assert (
        rep.external_reads == 3 * total
    )  # every weight byte crossed the SPI bus once per inference
    assert rep.symbols == {}  # nothing of the model's constants is left in the firmware
