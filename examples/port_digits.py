"""Port a digits classifier to an Arduino Uno (ATmega328P) in fixed point, run it in simavr.

Trains a 64-32-10 MLP on scikit-learn's digits with PyTorch, exports it to ONNX, lets
``graphrec port`` generate fixed-point C with a storage plan for the ATmega328P, builds it
with avr-gcc and runs the whole test set in simavr over the simulated UART. Then the same
for a small CNN on the ATmega2560 (Arduino Mega).

    python examples/port_digits.py [--out runs/port_digits] [--test-samples 360]

Needs gcc-avr, avr-libc, simavr and libsimavr-dev (``make sysdeps``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from graphrec.mcu import port, run_port
from graphrec.mcu.port import RunReport, onnxruntime_outputs
from graphrec.mcu.tasks import load_digits_split, train_digits_cnn, train_digits_mlp


def _report(title: str, rep: RunReport, y: np.ndarray, ref: np.ndarray) -> None:
    float_acc = float(np.mean(ref.argmax(axis=1) == y))
    fixed_acc = float(np.mean(rep.outputs.argmax(axis=1) == y))
    cap = rep.capacity
    print(f"== {title}")
    print(
        f"   accuracy: float (onnxruntime) {float_acc:.2%}, fixed point on the MCU {fixed_acc:.2%}"
    )
    print(f"   bit-exact with the Python fixed-point model: {rep.bit_exact}")
    print(
        f"   flash {rep.flash_bytes}/{cap['flash']} B, SRAM {rep.sram_bytes}/{cap['sram']} B "
        f"(stack {rep.stack_bytes} B), EEPROM {rep.eeprom_bytes}/{cap['eeprom']} B"
    )
    print(f"   {rep.cycles_median:.0f} cycles per inference = {rep.latency_ms():.2f} ms at 16 MHz")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/port_digits"))
    ap.add_argument("--test-samples", type=int, default=360)
    args = ap.parse_args()
    data = load_digits_split()
    n = min(args.test_samples, len(data.x_test))
    x, y = data.x_test[:n], data.y_test[:n]

    mlp, _ = train_digits_mlp(args.out / "digits_mlp.onnx", data)
    res = port(
        mlp,
        target="atmega328p",
        mode="fixed",
        calibration=data.x_train,
        out_dir=args.out / "mlp_atmega328p",
        name="digits_mlp",
    )
    ref = onnxruntime_outputs(mlp, x)
    _report("MLP 64-32-10 on the ATmega328P (fixed point)", run_port(res, x, reference=ref), y, ref)

    cnn = train_digits_cnn(args.out / "digits_cnn.onnx", data)
    xc = x.reshape(-1, 1, 8, 8)
    res = port(
        cnn,
        target="atmega2560",
        mode="fixed",
        calibration=data.x_train.reshape(-1, 1, 8, 8),
        out_dir=args.out / "cnn_atmega2560",
        name="digits_cnn",
    )
    ref = onnxruntime_outputs(cnn, xc)
    _report("small CNN on the ATmega2560 (fixed point)", run_port(res, xc, reference=ref), y, ref)
    print(f"generated code and plans: {args.out}")


if __name__ == "__main__":
    main()
