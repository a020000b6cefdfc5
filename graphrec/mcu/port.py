"""``port`` and ``run_port``: ONNX -> C code + storage plan -> build -> run -> compare.

Example:
    >>> from graphrec.mcu import port, run_port
    >>> result = port("digits.onnx", target="atmega328p", mode="fixed",
    ...               calibration=x_train[:200], out_dir="build/digits")  # doctest: +SKIP
    >>> report = run_port(result, x_test[:20])  # doctest: +SKIP
    >>> report.flash_bytes, report.sram_bytes, report.cycles_median  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from graphrec.mcu.codegen import ConstTensor, const_tensors, external_layout, generate_c
from graphrec.mcu.errors import PortError, StorageFitError
from graphrec.mcu.fixed import FixedModel, fixed_summary, quantize_model
from graphrec.mcu.memplan import ArenaPlan, StoragePlan, plan_arena, plan_storage
from graphrec.mcu.model import McuModel, load_model
from graphrec.mcu.targets import Target, get_target

__all__ = ["PortResult", "RunReport", "onnxruntime_outputs", "port", "run_port", "sample_inputs"]

_NEAR_FLASH = 64 * 1024 - 4 * 1024  # pgm_read_* take 16-bit addresses


@dataclass
class PortResult:
    """The generated code and its plans.

    Attributes:
        model: The lowered model.
        mode: ``float`` or ``fixed``.
        target: The target.
        fixed: Fixed-point parameters (fixed mode).
        arena: The activation arena plan.
        storage: Where each constant lives.
        consts: The constants.
        out_dir: Folder of ``<name>.h``, ``<name>.c`` and ``plan.json``.
        external_image: The external SPI memory's contents (``None`` when unused).
    """

    model: McuModel
    mode: str
    target: Target
    fixed: FixedModel | None
    arena: ArenaPlan
    storage: StoragePlan
    consts: list[ConstTensor]
    out_dir: Path
    external_image: Path | None = None

    @property
    def value_dtype(self) -> np.dtype[Any]:
        """Element type of the input and output buffers."""
        return np.dtype(np.float32 if self.fixed is None else np.int8)

    def plan_dict(self) -> dict[str, Any]:
        """The plan as JSON-able data (written to ``plan.json``)."""
        return {
            "model": str(self.model.path),
            "name": self.model.name,
            "mode": self.mode,
            "target": self.target.name,
            "steps": [
                {"op": s.op, "onnx": s.onnx_ops, "nodes": s.nodes, "output": s.output}
                for s in self.model.steps
            ],
            "arena": {
                "bytes": self.arena.size,
                "naive_bytes": self.arena.naive,
                "optimum_bytes": self.arena.optimum,
                "buffers": [
                    {
                        "buffer": b.name,
                        "bytes": b.size,
                        "offset": b.offset,
                        "live": [b.start, b.end],
                    }
                    for b in self.arena.buffers
                ],
            },
            "storage": self.storage.to_dict(),
            "fixed_point": None if self.fixed is None else fixed_summary(self.fixed),
        }


def sample_inputs(model: McuModel, n: int, seed: int = 0) -> np.ndarray:
    """``n`` standard-normal inputs of the model's shape (a fixed seed)."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, *model.input_shape)).astype(np.float32)


def _capacities(
    target: Target, arena_bytes: int, sram_reserve: int | None, external_bytes: int = 0
) -> tuple[dict[str, int], dict[str, int]]:
    if not target.is_avr:
        return {"flash": target.flash_bytes}, {}
    reserve = target.stack_reserve if sram_reserve is None else sram_reserve
    fixed_needs = {"flash": target.flash_code_reserve, "sram": arena_bytes + reserve, "eeprom": 0}
    sram_left = target.sram_bytes - arena_bytes - reserve
    if sram_left < 0:
        raise StorageFitError(
            target.name,
            {"flash": target.flash_code_reserve, "sram": arena_bytes + reserve, "eeprom": 0},
            {"flash": target.flash_bytes, "sram": target.sram_bytes, "eeprom": target.eeprom_bytes},
            f"the activation arena alone needs {arena_bytes} B of SRAM plus {reserve} B of stack",
        )
    flash_left = min(target.flash_bytes - target.flash_code_reserve, _NEAR_FLASH)
    cap = {"sram": sram_left, "flash": flash_left, "eeprom": target.eeprom_bytes}
    if external_bytes > 0:
        cap["external"] = int(external_bytes)
    return cap, fixed_needs


def port(
    path: str | os.PathLike[str],
    *,
    target: str = "host",
    mode: str = "float",
    weight_bits: int = 8,
    calibration: np.ndarray | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    name: str | None = None,
    media: tuple[str, ...] | None = None,
    sram_reserve: int | None = None,
    external_bytes: int = 0,
) -> PortResult:
    """Lower, quantize (fixed mode), plan memory and generate C for ``target``.

    Args:
        path: The ONNX model.
        target: ``host``, ``atmega328p`` or ``atmega2560``.
        mode: ``float`` or ``fixed``.
        weight_bits: Fixed mode: 8 or 16-bit weights.
        calibration: Fixed mode: sample inputs setting the activation scales (default:
            64 standard-normal inputs; pass real data for real ranges).
        out_dir: Where the files go (default: a new temporary folder).
        name: C identifier prefix (default: the file name).
        media: Restrict weights to these media (e.g. ``("flash", "eeprom")``).
        sram_reserve: SRAM bytes kept for the stack (default: the target's).
        external_bytes: Size of an external SPI memory (23LC1024-style serial SRAM on
            SPI0) that may hold weights (AVR; 0: none).

    Returns:
        The :class:`PortResult` (files written).

    Raises:
        UnsupportedOperatorError: The model has an operator the generator lacks.
        StorageFitError: The model does not fit the target (needed vs available per medium).
    """
    if mode not in ("float", "fixed"):
        raise PortError(f"unknown mode {mode!r}; valid: float, fixed")
    tgt = get_target(target)
    model = load_model(path, name=name)
    fixed = None
    if mode == "fixed":
        cal = sample_inputs(model, 64) if calibration is None else np.asarray(calibration)
        fixed = quantize_model(model, cal, weight_bits=weight_bits)
    elem = 4 if fixed is None else 1
    arena = plan_arena(model, elem, align=4 if fixed is None else 1)
    consts = const_tensors(model, fixed)
    if external_bytes and not tgt.is_avr:
        raise PortError("an external SPI memory is only modelled on the AVR targets")
    if external_bytes < 0 or external_bytes > 1 << 24:
        raise PortError(f"external memory of {external_bytes} B: give 0 to 16 MiB")
    capacity, fixed_needs = _capacities(tgt, arena.size, sram_reserve, external_bytes)
    image_room = capacity.get("flash", 0)
    if media is not None:
        for m in media:
            if m not in capacity:
                raise PortError(f"medium {m!r} is not on {tgt.name}; valid: {', '.join(capacity)}")
        capacity = {m: (c if m in media else 0) for m, c in capacity.items()}
    cost = {m: tgt.cost_per_byte.get(m, 1.0) for m in capacity}
    storage = plan_storage(
        [(c.name, c.bytes, c.reads) for c in consts],
        capacity,
        cost,
        target=tgt.name,
        fixed_needs=fixed_needs,
        sram_copies_to_flash=tgt.is_avr,
        flash_image_bytes=image_room,
    )
    out = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix="graphrec-port-"))
    out.mkdir(parents=True, exist_ok=True)
    src = generate_c(model, fixed, arena, storage, consts)
    (out / src.header_name).write_text(src.header)
    (out / src.source_name).write_text(src.source)
    _, image = external_layout(consts, storage)
    ext = None
    if image:
        ext = out / f"{model.name}_external.bin"
        ext.write_bytes(image)
    result = PortResult(model, mode, tgt, fixed, arena, storage, consts, out, ext)
    (out / "plan.json").write_text(json.dumps(result.plan_dict(), indent=2))
    return result


def onnxruntime_outputs(path: str | os.PathLike[str], inputs: np.ndarray) -> np.ndarray:
    """Reference outputs of onnxruntime, one inference per input, flattened ``(N, -1)``."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    outs = [
        np.asarray(sess.run(None, {name: x[None].astype(np.float32)})[0]).reshape(-1)
        for x in np.asarray(inputs)
    ]
    return np.stack(outs)


@dataclass
class RunReport:
    """What building and running the generated code measured.

    Attributes:
        outputs: Float outputs of the generated code ``(N, out)`` (dequantized in fixed mode).
        raw_outputs: Its raw outputs (int8 in fixed mode).
        reference: onnxruntime's outputs.
        max_abs_error: Largest difference from onnxruntime.
        top1_agreement: Fraction of inputs whose arg-max equals onnxruntime's.
        bit_exact: Fixed mode: whether every output byte equals the Python model's.
        flash_bytes, sram_bytes, eeprom_bytes: Measured use (AVR; ``sram`` includes the
            stack peak measured by painting).
        stack_bytes: Stack peak (AVR).
        cycles: Cycles of each inference (AVR, from simavr).
        external_reads: Bytes the simulated external SPI memory served (AVR).
        capacity: The target's flash/SRAM/EEPROM.
    """

    outputs: np.ndarray
    raw_outputs: np.ndarray
    reference: np.ndarray
    max_abs_error: float
    top1_agreement: float
    bit_exact: bool | None
    flash_bytes: int | None = None
    sram_bytes: int | None = None
    eeprom_bytes: int | None = None
    stack_bytes: int | None = None
    cycles: list[int] = field(default_factory=list)
    capacity: dict[str, int] = field(default_factory=dict)
    symbols: dict[str, tuple[int, int]] = field(default_factory=dict)
    external_reads: int | None = None

    @property
    def cycles_median(self) -> float | None:
        """Median cycles per inference."""
        return float(statistics.median(self.cycles)) if self.cycles else None

    def latency_ms(self, clock_hz: int = 16_000_000) -> float | None:
        """Median latency at ``clock_hz``."""
        c = self.cycles_median
        return None if c is None else c / clock_hz * 1e3

    def fits(self) -> bool:
        """Whether every measured figure is within the target's capacity."""
        used = {"flash": self.flash_bytes, "sram": self.sram_bytes, "eeprom": self.eeprom_bytes}
        return all(v is None or v <= self.capacity.get(k, v) for k, v in used.items())


def run_port(
    result: PortResult,
    inputs: np.ndarray,
    *,
    reference: np.ndarray | None = None,
    opt: str | None = None,
) -> RunReport:
    """Build the generated code for its target, run ``inputs`` and compare with onnxruntime.

    On AVR the inputs go over the simulated UART of simavr, and the report has the
    measured flash/SRAM/EEPROM use and the cycles of each inference.

    Args:
        result: From :func:`port`.
        inputs: Float inputs ``(N, *input_shape)``.
        reference: onnxruntime's outputs when already computed.
        opt: Compiler optimization flag (default ``-O2``; on AVR ``-Os`` ran the digits MLP 2.8x slower for 10 B less flash).

    Raises:
        ToolchainError: A compiler or the simulator is missing or failed.
        StorageFitError: The build does not fit the target (measured numbers).
    """
    from graphrec.mcu import toolchain

    m, tgt = result.model, result.target
    x = np.asarray(inputs, dtype=np.float32).reshape(-1, *m.input_shape)
    ref = onnxruntime_outputs(m.path, x) if reference is None else np.asarray(reference)
    feed = x if result.fixed is None else result.fixed.quantize_input(x)
    n_out = m.numel(m.output)
    rep_extra: dict[str, Any] = {}
    if not tgt.is_avr:
        exe = toolchain.build_host(result.out_dir, m.name, opt=opt or "-O2")
        raw = toolchain.run_host(exe, feed, result.value_dtype, n_out)
    else:
        fw = toolchain.build_avr(result.out_dir, m.name, tgt, opt=opt or "-O2")
        cap = {"flash": tgt.flash_bytes, "sram": tgt.sram_bytes, "eeprom": tgt.eeprom_bytes}
        if (
            fw.flash_bytes > tgt.flash_bytes
            or fw.static_sram_bytes > tgt.sram_bytes
            or fw.eeprom > tgt.eeprom_bytes
        ):
            raise StorageFitError(
                tgt.name,
                {"flash": fw.flash_bytes, "sram": fw.static_sram_bytes, "eeprom": fw.eeprom},
                cap,
                "measured on the build",
            )
        run = toolchain.run_avr(
            fw, tgt, feed, result.value_dtype, n_out, ext_image=result.external_image
        )
        raw = run.outputs
        sram = fw.static_sram_bytes + run.stack_bytes
        rep_extra = {
            "flash_bytes": fw.flash_bytes,
            "sram_bytes": sram,
            "eeprom_bytes": fw.eeprom,
            "stack_bytes": run.stack_bytes,
            "cycles": run.cycles,
            "capacity": cap,
            "symbols": fw.symbols,
            "external_reads": int(run.raw.get("external_reads", 0)),
        }
        if sram > tgt.sram_bytes:
            raise StorageFitError(
                tgt.name,
                {"flash": fw.flash_bytes, "sram": sram, "eeprom": fw.eeprom},
                cap,
                f"measured: static {fw.static_sram_bytes} B + stack peak {run.stack_bytes} B",
            )
    if result.fixed is None:
        outs = raw.astype(np.float64)
        exact = None
    else:
        outs = result.fixed.dequantize_output(raw)
        expected = result.fixed.run_batch(feed)
        exact = bool(np.array_equal(expected, raw))
    err = float(np.max(np.abs(outs - ref))) if outs.size else 0.0
    top1 = float(np.mean(outs.argmax(axis=1) == ref.argmax(axis=1))) if outs.size else 1.0
    return RunReport(outs, raw, ref, err, top1, exact, **rep_extra)
