"""NumPy executor of the lowered steps in float (calibration, checks of the lowering).

The integer executor (the bit-exact model of the fixed-point C code) lives in
:mod:`graphrec.mcu.fixed` and shares the window helpers defined here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from graphrec.mcu.model import McuModel, Step

__all__ = ["conv_nchw", "pool_windows", "run_float"]


def _pad_end(size: int, out: int, stride: int, k: int, dil: int, begin: int) -> int:
    return max(0, (out - 1) * stride + (k - 1) * dil + 1 - size - begin)


def conv_nchw(x: np.ndarray, w: np.ndarray, a: dict[str, Any]) -> np.ndarray:
    """Grouped 2-D convolution of ``x`` ``(C, H, W)`` with ``w`` ``(OC, C/g, KH, KW)``.

    Works on float and on int64 arrays (exact integer sums); zero padding.
    """
    c, h, wd, oh, ow = a["c"], a["h"], a["w"], a["oh"], a["ow"]
    kh, kw, sh, sw, dh, dw = a["kh"], a["kw"], a["sh"], a["sw"], a["dh"], a["dw"]
    pt, pl, g = a["pt"], a["pl"], a["group"]
    x = x.reshape(c, h, wd)
    pb = _pad_end(h, oh, sh, kh, dh, pt)
    pr = _pad_end(wd, ow, sw, kw, dw, pl)
    xp = np.zeros((c, h + pt + pb, wd + pl + pr), dtype=x.dtype)
    xp[:, pt : pt + h, pl : pl + wd] = x
    oc = w.shape[0]
    cg, og = c // g, oc // g
    out = np.zeros((g, og, oh, ow), dtype=np.result_type(x.dtype, w.dtype))
    wg = w.reshape(g, og, cg, kh, kw)
    for ky in range(kh):
        for kx in range(kw):
            y0, x0 = ky * dh, kx * dw
            patch = xp[:, y0 : y0 + (oh - 1) * sh + 1 : sh, x0 : x0 + (ow - 1) * sw + 1 : sw]
            out += np.einsum("goc,gchw->gohw", wg[:, :, :, ky, kx], patch.reshape(g, cg, oh, ow))
    return out.reshape(oc, oh, ow)


def pool_windows(
    x: np.ndarray, a: dict[str, Any], fill: float | int
) -> tuple[np.ndarray, np.ndarray]:
    """The pooling windows of ``x`` ``(C, H, W)``: ``(C, OH, OW, KH*KW)`` values (``fill``
    outside the input) and a boolean mask of the taps inside the input."""
    c, h, wd, oh, ow = a["c"], a["h"], a["w"], a["oh"], a["ow"]
    kh, kw, sh, sw, dh, dw = a["kh"], a["kw"], a["sh"], a["sw"], a["dh"], a["dw"]
    pt, pl = a["pt"], a["pl"]
    x = x.reshape(c, h, wd)
    pb = _pad_end(h, oh, sh, kh, dh, pt)
    pr = _pad_end(wd, ow, sw, kw, dw, pl)
    xp = np.full((c, h + pt + pb, wd + pl + pr), fill, dtype=x.dtype)
    xp[:, pt : pt + h, pl : pl + wd] = x
    inside = np.zeros((h + pt + pb, wd + pl + pr), dtype=bool)
    inside[pt : pt + h, pl : pl + wd] = True
    vals, mask = [], []
    for ky in range(kh):
        for kx in range(kw):
            y0, x0 = ky * dh, kx * dw
            sl = (slice(y0, y0 + (oh - 1) * sh + 1, sh), slice(x0, x0 + (ow - 1) * sw + 1, sw))
            vals.append(xp[(slice(None), *sl)])
            mask.append(inside[sl])
    return np.stack(vals, axis=-1), np.stack(mask, axis=-1)


def avg_divisor(a: dict[str, Any]) -> np.ndarray:
    """Divisor of every average-pooling window ``(OH, OW)``.

    ``count_include_pad=0``: the taps inside the input. ``=1``: the taps inside the padded
    input (the declared pads; a ``ceil_mode`` window reaching past them counts less).
    """
    if not a["count_pad"]:
        _, mask = pool_windows(np.zeros((a["c"], a["h"], a["w"])), a, 0.0)
        return np.asarray(mask.sum(axis=-1), dtype=np.int64)

    def taps(size: int, out: int, s: int, k: int, d: int, pb_: int, pe: int) -> np.ndarray:
        res = np.zeros(out, dtype=np.int64)
        for o in range(out):
            start = o * s - pb_
            res[o] = sum(1 for t in range(k) if start + t * d < size + pe)
        return res

    th = taps(a["h"], a["oh"], a["sh"], a["kh"], a["dh"], a["pt"], a["pb"])
    tw = taps(a["w"], a["ow"], a["sw"], a["kw"], a["dw"], a["pl"], a["pr"])
    return np.outer(th, tw)


def _float_step(s: Step, xs: list[np.ndarray], weights: dict[str, np.ndarray]) -> np.ndarray:
    a = s.attrs
    x = xs[0]
    if s.op == "dense":
        y = weights[s.weights["w"]] @ x.reshape(-1) + weights[s.weights["b"]]
        return np.maximum(y, 0) if a["relu"] else y
    if s.op == "conv":
        y = conv_nchw(x, weights[s.weights["w"]], a) + weights[s.weights["b"]][:, None, None]
        return np.maximum(y, 0) if a["relu"] else y
    if s.op == "maxpool":
        v, _ = pool_windows(x, a, -np.inf)
        return np.asarray(v.max(axis=-1))
    if s.op == "avgpool":
        v, _ = pool_windows(x, a, 0.0)
        return np.asarray(v.sum(axis=-1) / avg_divisor(a))
    if s.op == "gavgpool":
        return np.asarray(x.reshape(a["c"], -1).mean(axis=1))
    if s.op == "gmaxpool":
        return np.asarray(x.reshape(a["c"], -1).max(axis=1))
    if s.op == "relu":
        return np.maximum(x, 0)
    if s.op == "leakyrelu":
        return np.where(x > 0, x, x * a["alpha"])
    if s.op == "sigmoid":
        return np.asarray(1.0 / (1.0 + np.exp(-x)))
    if s.op == "tanh":
        return np.tanh(x)
    if s.op == "softmax":
        z = x.reshape(a["outer"], a["inner"])
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return np.asarray(e / e.sum(axis=1, keepdims=True))
    if s.op == "add":
        other = xs[1] if len(xs) > 1 else weights[s.weights["c"]]
        return np.asarray(x.reshape(-1) + other.reshape(-1))
    if s.op == "concat":
        outer = a["outer"]
        parts = [t.reshape(outer, n) for t, n in zip(xs, a["chunks"], strict=True)]
        return np.concatenate(parts, axis=1)
    raise AssertionError(f"unknown step {s.op}")


def run_float(
    model: McuModel, x: np.ndarray, *, keep: bool = False
) -> np.ndarray | tuple[np.ndarray, dict[str, np.ndarray]]:
    """Run the lowered model in float64 on one input (batch dimension optional).

    Args:
        model: The lowered model.
        x: Input values of :attr:`McuModel.input_shape` (or with a leading 1).
        keep: Also return every activation tensor (by name).

    Returns:
        The output (flat), or ``(output, tensors)`` with ``keep``.
    """
    weights = {k: w.values for k, w in model.weights.items()}
    env: dict[str, np.ndarray] = {model.input: np.asarray(x, dtype=np.float64).reshape(-1)}
    for s in model.steps:
        xs = [env[model.root(t)] if t not in env else env[t] for t in s.inputs]
        env[s.output] = np.asarray(_float_step(s, xs, weights), dtype=np.float64).reshape(-1)
    out = env[model.root(model.output)] if model.output not in env else env[model.output]
    if keep:
        for t in model.alias:
            if t not in env:
                env[t] = env[model.root(t)]
        return out, env
    return out
