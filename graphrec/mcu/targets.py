"""Targets: the host (gcc) and two AVR microcontrollers (avr-gcc, run in simavr)."""

from __future__ import annotations

from dataclasses import dataclass, field

from graphrec.mcu.errors import PortError

__all__ = ["TARGETS", "Target", "get_target"]


@dataclass(frozen=True)
class Target:
    """A place the generated code runs.

    Attributes:
        name: ``host``, ``atmega328p`` or ``atmega2560``.
        mcu: The ``-mmcu`` name (``None`` for the host).
        flash_bytes: Program memory.
        sram_bytes: Data memory.
        eeprom_bytes: EEPROM.
        ram_start: First SRAM address (AVR data space).
        clock_hz: Clock the latency figures assume.
        cost_per_byte: Cycles to read one byte of a weight, per medium (the placement's
            weights; measured in simavr for SRAM, flash and EEPROM, nominal for external SPI).
        flash_code_reserve: Flash kept for code and the C library when placing weights
            (the build then measures the real figure).
        stack_reserve: SRAM kept for the stack and the serial harness.
    """

    name: str
    mcu: str | None
    flash_bytes: int
    sram_bytes: int
    eeprom_bytes: int
    ram_start: int
    clock_hz: int
    cost_per_byte: dict[str, float] = field(default_factory=dict)
    flash_code_reserve: int = 0
    stack_reserve: int = 0

    @property
    def is_avr(self) -> bool:
        """Whether the target is an AVR (built with avr-gcc, run in simavr)."""
        return self.mcu is not None


# Measured in simavr on the digits MLP-16 (fixed point, ATmega2560, -O2) with all weights
# in one medium: 27,465 / 31,019 / 66,431 cycles per inference for SRAM / flash / EEPROM,
# i.e. +2.8 and +30 cycles per weight byte over SRAM (``LD`` takes 2). The external SPI
# figure is a nominal 40: simavr 1.6 times every SPI byte at about 100 us.
_AVR_COSTS = {"sram": 2.0, "flash": 4.8, "eeprom": 32.0, "external": 40.0}

TARGETS: dict[str, Target] = {
    "host": Target("host", None, 1 << 31, 1 << 31, 0, 0, 0, {"flash": 1.0}),
    "atmega328p": Target(
        "atmega328p",
        "atmega328p",
        32 * 1024,
        2 * 1024,
        1024,
        0x100,
        16_000_000,
        dict(_AVR_COSTS),
        flash_code_reserve=6 * 1024,
        stack_reserve=192,
    ),
    "atmega2560": Target(
        "atmega2560",
        "atmega2560",
        256 * 1024,
        8 * 1024,
        4 * 1024,
        0x200,
        16_000_000,
        dict(_AVR_COSTS),
        flash_code_reserve=8 * 1024,
        stack_reserve=256,
    ),
}


def get_target(name: str) -> Target:
    """The target called ``name``.

    Raises:
        PortError: Unknown name (the message lists the valid ones).
    """
    try:
        return TARGETS[name]
    except KeyError:
        raise PortError(f"unknown target {name!r}; valid: {', '.join(TARGETS)}") from None
