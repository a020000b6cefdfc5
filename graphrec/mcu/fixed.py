"""Fixed-point mode in the SeeDot manner, and the bit-exact Python model of its arithmetic.

Every activation tensor is int8 with a power-of-two scale ``2**-f`` (``f`` fractional
bits); weights are int8 (or int16) with their own power-of-two scale; a conv/dense
accumulates ``int8 x int8`` products in int32 at scale ``2**-(fx+fw)`` with the bias
quantized to that scale, then shifts right to the output's scale.

Scales come from value ranges: weights from their own maximum magnitude, activations
from the maximum magnitude seen on calibration inputs (``f`` is the largest value with
``max|v| * 2**f <= 127``). The output of a shift never has more fractional bits than its
input (so every requantization is a right shift).

**Rounding rule** (the same everywhere: weights, inputs, shifts, divisions): round half
up, ``round(v) = floor(v + 1/2)``. A right shift by ``s > 0`` is
``(acc + 2**(s-1)) >> s`` with an arithmetic shift, an average is
``floor((2*sum + n) / (2*n))``; results saturate to [-128, 127]. Sigmoid, Tanh and
LeakyRelu read a 256-entry int8 table indexed by the input byte; Softmax reads a
256-entry table of ``exp(-d * 2**-f) * 2**15`` indexed by ``max - x`` (clamped to 255) and
writes ``min(127, floor((e*128 + sum/2) / sum))`` at scale ``2**-7``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from graphrec.mcu.errors import PortError
from graphrec.mcu.model import McuModel, Step, frac_bits_for
from graphrec.mcu.reference import avg_divisor, conv_nchw, pool_windows, run_float

__all__ = ["FixedModel", "quantize_model", "round_half_up"]

_ACC_LIMIT = (1 << 31) - 1


def round_half_up(v: np.ndarray | float) -> np.ndarray:
    """``floor(v + 1/2)`` as int64 (the rounding rule of the fixed-point mode)."""
    return np.floor(np.asarray(v, dtype=np.float64) + 0.5).astype(np.int64)


def _sat(v: np.ndarray, lo: int = -128, hi: int = 127) -> np.ndarray:
    return np.clip(v, lo, hi)


def _shift(acc: np.ndarray, s: int) -> np.ndarray:
    if s == 0:
        return acc
    return (acc + (1 << (s - 1))) >> s


def _floordiv_round(total: np.ndarray, n: np.ndarray | int) -> np.ndarray:
    return (2 * total + n) // (2 * np.asarray(n, dtype=np.int64))


@dataclass
class FixedModel:
    """A lowered model with its fixed-point parameters.

    Attributes:
        model: The lowered model.
        weight_bits: 8 or 16.
        frac: Fractional bits of every activation tensor.
        qweights: Integer weights, biases (int32 at the accumulator's scale), constants.
        wfrac: Fractional bits of every weight.
        tables: Step index to its lookup table (int8 for unary functions, uint16 for Softmax).
        shifts: Step index to its right shifts (one per input for Add/Concat).
    """

    model: McuModel
    weight_bits: int
    frac: dict[str, int]
    qweights: dict[str, np.ndarray]
    wfrac: dict[str, int]
    tables: dict[int, np.ndarray] = field(default_factory=dict)
    shifts: dict[int, list[int]] = field(default_factory=dict)

    def frac_of(self, tensor: str) -> int:
        """Fractional bits of ``tensor`` (reshapes share their source's)."""
        if tensor in self.frac:
            return self.frac[tensor]
        return self.frac[self.model.root(tensor)]

    @property
    def input_frac(self) -> int:
        """Fractional bits of the input."""
        return self.frac_of(self.model.input)

    @property
    def output_frac(self) -> int:
        """Fractional bits of the output."""
        return self.frac_of(self.model.output)

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        """Float inputs to int8 (round half up, saturating); keeps the leading axes."""
        return _sat(round_half_up(np.asarray(x) * 2.0**self.input_frac)).astype(np.int8)

    def dequantize_output(self, q: np.ndarray) -> np.ndarray:
        """int8 outputs to float."""
        return np.asarray(q, dtype=np.float64) * 2.0**-self.output_frac

    # ---- the bit-exact model ---------------------------------------------------------
    def run(self, xq: np.ndarray) -> np.ndarray:
        """Run the integer arithmetic of the generated C code on one int8 input.

        Returns:
            The int8 output (flat), equal byte for byte to what the C code writes.
        """
        m = self.model
        env: dict[str, np.ndarray] = {m.input: np.asarray(xq, dtype=np.int64).reshape(-1)}
        for i, s in enumerate(m.steps):
            xs = [env[t] if t in env else env[m.root(t)] for t in s.inputs]
            env[s.output] = self._step(i, s, xs).reshape(-1)
        out = env[m.output] if m.output in env else env[m.root(m.output)]
        return out.astype(np.int8)

    def run_batch(self, xq: np.ndarray) -> np.ndarray:
        """:meth:`run` over the first axis."""
        return np.stack([self.run(x) for x in xq])

    def _step(self, i: int, s: Step, xs: list[np.ndarray]) -> np.ndarray:
        a = s.attrs
        x = xs[0]
        q = self.qweights
        if s.op in ("dense", "conv"):
            w = q[s.weights["w"]].astype(np.int64)
            b = q[s.weights["b"]].astype(np.int64)
            acc = w @ x + b if s.op == "dense" else conv_nchw(x, w, a) + b[:, None, None]
            y = _sat(_shift(acc, self.shifts[i][0]))
            return np.maximum(y, 0) if a["relu"] else y
        if s.op == "maxpool":
            v, _ = pool_windows(x, a, -(1 << 20))
            return np.asarray(v.max(axis=-1))
        if s.op == "avgpool":
            v, _ = pool_windows(x, a, 0)
            return _floordiv_round(v.sum(axis=-1), avg_divisor(a))
        if s.op == "gavgpool":
            return _floordiv_round(x.reshape(a["c"], -1).sum(axis=1), a["hw"])
        if s.op == "gmaxpool":
            return np.asarray(x.reshape(a["c"], -1).max(axis=1))
        if s.op == "relu":
            return np.maximum(x, 0)
        if s.op in ("leakyrelu", "sigmoid", "tanh"):
            return self.tables[i].astype(np.int64)[x + 128]
        if s.op == "softmax":
            z = x.reshape(a["outer"], a["inner"])
            d = np.minimum(z.max(axis=1, keepdims=True) - z, 255)
            e = self.tables[i].astype(np.int64)[d]
            tot = e.sum(axis=1, keepdims=True)
            return np.minimum(127, (e * 128 + tot // 2) // tot)
        if s.op == "add":
            other = xs[1] if len(xs) > 1 else q[s.weights["c"]].astype(np.int64)
            sa, sb, sy = self.shifts[i]
            total = x * (1 << sa) + other.reshape(-1) * (1 << sb)
            return _sat(_shift(total, sy))
        if s.op == "concat":
            parts = [
                _sat(_shift(t.reshape(a["outer"], n), sh))
                for t, n, sh in zip(xs, a["chunks"], self.shifts[i], strict=True)
            ]
            return np.concatenate(parts, axis=1)
        raise AssertionError(f"unknown step {s.op}")


def quantize_model(model: McuModel, calibration: np.ndarray, *, weight_bits: int = 8) -> FixedModel:
    """Choose the power-of-two scales and quantize the weights.

    Args:
        model: The lowered model.
        calibration: Sample inputs ``(N, *input_shape)`` whose ranges set the activation scales.
        weight_bits: 8 or 16 bits per weight.

    Returns:
        The :class:`FixedModel`.

    Raises:
        PortError: Bad arguments, or an int32 accumulator that could overflow.
    """
    if weight_bits not in (8, 16):
        raise PortError(f"weight bits must be 8 or 16, not {weight_bits}")
    cal = np.asarray(calibration, dtype=np.float64)
    if cal.ndim == len(model.input_shape):
        cal = cal[None]
    if cal.shape[0] == 0 or int(np.prod(cal.shape[1:])) != model.numel(model.input):
        raise PortError(
            f"calibration inputs of shape {cal.shape} do not match the input {model.input_shape}"
        )
    peak: dict[str, float] = {}
    for x in cal:
        _, env = run_float(model, x, keep=True)
        for name, v in env.items():
            peak[name] = max(peak.get(name, 0.0), float(np.max(np.abs(v))) if v.size else 0.0)
    frac: dict[str, int] = {model.input: frac_bits_for(peak[model.input])}
    qweights: dict[str, np.ndarray] = {}
    wfrac: dict[str, int] = {}
    fm = FixedModel(model, weight_bits, frac, qweights, wfrac)
    wtype = np.int8 if weight_bits == 8 else np.int16

    def quant_weight(name: str, bits: int = weight_bits) -> tuple[np.ndarray, int]:
        v = model.weights[name].values
        f = frac_bits_for(float(np.max(np.abs(v))) if v.size else 0.0, bits)
        top = (1 << (bits - 1)) - 1
        return np.clip(round_half_up(v * 2.0**f), -top - 1, top), f

    for i, s in enumerate(model.steps):
        fx = [fm.frac_of(t) for t in s.inputs]
        want = frac_bits_for(peak.get(s.output, 0.0))
        if s.op in ("dense", "conv"):
            wq, fw = quant_weight(s.weights["w"])
            qweights[s.weights["w"]] = wq.astype(wtype)
            wfrac[s.weights["w"]] = fw
            facc = fx[0] + fw
            bq = round_half_up(model.weights[s.weights["b"]].values * 2.0**facc)
            wflat = wq.reshape(wq.shape[0], -1)
            bound = np.abs(wflat).sum(axis=1) * 128 + np.abs(bq)
            if bound.max() > _ACC_LIMIT:
                raise PortError(
                    f"{model.path}: step {i} ({s.nodes[0]}) could overflow its int32 "
                    f"accumulator (worst case {int(bound.max())}); use 8-bit weights"
                )
            qweights[s.weights["b"]] = bq.astype(np.int32)
            wfrac[s.weights["b"]] = facc
            fy = min(want, facc)
            fm.shifts[i] = [facc - fy]
        elif s.op in ("maxpool", "avgpool", "gavgpool", "gmaxpool", "relu"):
            fy = fx[0]
        elif s.op in ("sigmoid", "tanh", "leakyrelu"):
            grid = np.arange(-128, 128, dtype=np.float64) * 2.0 ** -fx[0]
            if s.op == "sigmoid":
                vals, fy = 1.0 / (1.0 + np.exp(-grid)), 7
            elif s.op == "tanh":
                vals, fy = np.tanh(grid), 7
            else:
                vals, fy = np.where(grid > 0, grid, grid * s.attrs["alpha"]), fx[0]
            fm.tables[i] = _sat(round_half_up(vals * 2.0**fy)).astype(np.int8)
        elif s.op == "softmax":
            d = np.arange(256, dtype=np.float64) * 2.0 ** -fx[0]
            fm.tables[i] = round_half_up(np.exp(-d) * 32768.0).astype(np.uint16)
            fy = 7
        elif s.op == "add":
            if len(s.inputs) > 1:
                fb = fx[1]
            else:
                cq, fb = quant_weight(s.weights["c"], 8)
                qweights[s.weights["c"]] = cq.astype(np.int8)
                wfrac[s.weights["c"]] = fb
            f = max(fx[0], fb)
            fy = min(want, f)
            fm.shifts[i] = [f - fx[0], f - fb, f - fy]
            if f - min(fx[0], fb) > 20:
                raise PortError(
                    f"{model.path}: step {i} ({s.nodes[0]}) adds operands whose scales differ "
                    f"by 2**{f - min(fx[0], fb)}"
                )
        elif s.op == "concat":
            fy = min([want, *fx])
            fm.shifts[i] = [f - fy for f in fx]
        else:  # pragma: no cover - the lowering emits no other op
            raise AssertionError(s.op)
        frac[s.output] = fy
    return fm


def fixed_summary(fm: FixedModel) -> dict[str, Any]:
    """A JSON-able summary of the scales and shifts."""
    return {
        "weight_bits": fm.weight_bits,
        "activation_bits": 8,
        "rounding": "round half up: floor(v + 1/2); arithmetic right shifts; saturating",
        "input_frac_bits": fm.input_frac,
        "output_frac_bits": fm.output_frac,
        "tensor_frac_bits": dict(fm.frac),
        "weight_frac_bits": dict(fm.wfrac),
        "shifts": {str(k): v for k, v in fm.shifts.items()},
    }
