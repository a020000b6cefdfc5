"""Port an ONNX classifier to a microcontroller (``graphrec port``).

Parameter dictionary, C99 code generation (float, and fixed point in the SeeDot
manner), a memory plan (activations in one arena by liveness, weights across flash,
SRAM and EEPROM by a knapsack), builds for the host (gcc) and AVR (avr-gcc), and runs in
simavr with inputs and outputs over the simulated UART.

Example:
    >>> from graphrec.mcu import port, run_port
    >>> r = port("digits.onnx", target="atmega328p", mode="fixed", calibration=x)  # doctest: +SKIP
    >>> rep = run_port(r, x[:10])  # doctest: +SKIP
    >>> rep.bit_exact, rep.flash_bytes, rep.cycles_median  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from graphrec._lazy import lazy_attributes

if TYPE_CHECKING:
    from graphrec.mcu.dictionary import parameter_dictionary
    from graphrec.mcu.errors import (
        PortError,
        StorageFitError,
        ToolchainError,
        UnsupportedModelError,
        UnsupportedOperatorError,
    )
    from graphrec.mcu.fixed import FixedModel, quantize_model
    from graphrec.mcu.model import McuModel, load_model
    from graphrec.mcu.port import PortResult, RunReport, port, run_port
    from graphrec.mcu.targets import TARGETS, Target

__all__ = [
    "TARGETS",
    "FixedModel",
    "McuModel",
    "PortError",
    "PortResult",
    "RunReport",
    "StorageFitError",
    "Target",
    "ToolchainError",
    "UnsupportedModelError",
    "UnsupportedOperatorError",
    "load_model",
    "parameter_dictionary",
    "port",
    "quantize_model",
    "run_port",
]

__getattr__ = lazy_attributes(
    __name__,
    {
        "TARGETS": "graphrec.mcu.targets",
        "Target": "graphrec.mcu.targets",
        "FixedModel": "graphrec.mcu.fixed",
        "quantize_model": "graphrec.mcu.fixed",
        "McuModel": "graphrec.mcu.model",
        "load_model": "graphrec.mcu.model",
        "PortError": "graphrec.mcu.errors",
        "StorageFitError": "graphrec.mcu.errors",
        "ToolchainError": "graphrec.mcu.errors",
        "UnsupportedModelError": "graphrec.mcu.errors",
        "UnsupportedOperatorError": "graphrec.mcu.errors",
        "PortResult": "graphrec.mcu.port",
        "RunReport": "graphrec.mcu.port",
        "port": "graphrec.mcu.port",
        "run_port": "graphrec.mcu.port",
        "parameter_dictionary": "graphrec.mcu.dictionary",
    },
)
