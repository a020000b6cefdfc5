"""The parameter dictionary: every parameter of a model, its type and its quantities."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["parameter_dictionary"]


def parameter_dictionary(path: str | os.PathLike[str]) -> dict[str, Any]:
    """List every initializer (and ``Constant``) of an ONNX model with its quantities.

    Each entry: name, the operator and node that read it, dtype, shape, element count,
    bytes, value range, mean magnitude and sparsity (fraction of exact zeros). Integer
    tensors (shapes, indices) are listed with ``kind="index"`` and not counted as
    parameters, as the graph kernel does. Per-operator-type and total quantities follow.

    Args:
        path: The ``.onnx`` file.

    Returns:
        ``{"model", "parameters": [...], "per_op": {...}, "totals": {...}}``.

    Raises:
        ModelLoadError: The file is missing or not ONNX.
    """
    from graphrec.mcu.model import _Lowering

    low = _Lowering(Path(path), None)
    rows: list[dict[str, Any]] = []
    per_op: dict[str, dict[str, float]] = {}
    for name, arr in low.consts.items():
        node, op = low.initializer_users.get(name, ("", "(unused)"))
        a = np.asarray(arr)
        is_param = a.dtype.kind in "fc" or (a.dtype.kind in "iu" and a.dtype.itemsize <= 2)
        kind = "parameter" if is_param else "index"
        nz = int(np.count_nonzero(a))
        fa = a.astype(np.float64) if a.size and a.dtype.kind in "fiub" else None
        rows.append(
            {
                "name": name,
                "op": op,
                "node": node,
                "kind": kind,
                "dtype": str(a.dtype),
                "shape": list(a.shape),
                "count": int(a.size),
                "bytes": int(a.nbytes),
                "min": float(fa.min()) if fa is not None else None,
                "max": float(fa.max()) if fa is not None else None,
                "mean_abs": float(np.abs(fa).mean()) if fa is not None else None,
                "sparsity": (1.0 - nz / a.size) if a.size else 0.0,
            }
        )
        if kind == "parameter":
            agg = per_op.setdefault(op, {"tensors": 0, "count": 0, "bytes": 0, "zeros": 0})
            agg["tensors"] += 1
            agg["count"] += int(a.size)
            agg["bytes"] += int(a.nbytes)
            agg["zeros"] += int(a.size) - nz
    params = [r for r in rows if r["kind"] == "parameter"]
    total_count = sum(int(r["count"]) for r in params)
    zeros = sum(int(v["zeros"]) for v in per_op.values())
    by_dtype: dict[str, int] = {}
    for r in params:
        by_dtype[str(r["dtype"])] = by_dtype.get(str(r["dtype"]), 0) + int(r["bytes"])
    for v in per_op.values():
        v["sparsity"] = v["zeros"] / v["count"] if v["count"] else 0.0
    return {
        "model": str(path),
        "operators": dict(low.graph.op_type_histogram),
        "parameters": rows,
        "per_op": per_op,
        "totals": {
            "tensors": len(params),
            "count": total_count,
            "bytes": sum(int(r["bytes"]) for r in params),
            "bytes_by_dtype": by_dtype,
            "sparsity": zeros / total_count if total_count else 0.0,
            "macs": low.graph.total_macs,
        },
    }
