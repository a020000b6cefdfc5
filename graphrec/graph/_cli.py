"""``graphrec inspect``: what the feature kernel sees in an ONNX or TFLite model."""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(sub: Any) -> None:
    """Add the ``inspect`` sub-command."""
    p = sub.add_parser(
        "inspect",
        help="summarize an ONNX or TFLite model: FLOPs, parameters, operators, shapes",
        description=(
            "Parse an ONNX or TFLite model with graphrec's C++ kernel and print its features "
            "(TFLite operators are shown under their ONNX counterparts)."
        ),
    )
    p.add_argument("model", help="path to an .onnx or .tflite file")
    p.add_argument("--batch-size", type=int, default=1, help="size of dynamic batch dims (1)")
    p.add_argument(
        "--input-shape",
        action="append",
        default=[],
        metavar="NAME=D1,D2,...",
        help="explicit shape of one input (repeatable)",
    )
    p.add_argument(
        "--dim",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="value of a symbolic dimension, e.g. seq=64 (repeatable)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.add_argument("--top", type=int, default=10, help="how many of the heaviest operators to list")
    p.set_defaults(func=_run)


def _fmt_count(v: float) -> str:
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(v) >= scale:
            return f"{v / scale:.2f} {unit}"
    return f"{v:.0f}"


def _fmt_bytes(v: float) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(v) >= scale:
            return f"{v / scale:.2f} {unit}"
    return f"{v:.0f} B"


def _run(args: argparse.Namespace) -> int:
    from graphrec.graph import load
    from graphrec.graph.shapes import parse_dim_value, parse_input_shape

    shapes = dict(parse_input_shape(s) for s in args.input_shape)
    dims = dict(parse_dim_value(s) for s in args.dim)
    g = load(args.model, input_shapes=shapes, batch_size=args.batch_size, dim_values=dims)
    summary = g.summary(top_ops=args.top)
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0

    from rich.table import Table

    from graphrec.cli import console as cli_console

    console = cli_console()
    t = g.totals
    tflite = getattr(g, "source_format", "onnx") == "tflite"
    if tflite:
        head = Table(title=f"{g.path.name}  ({g.producer})")
    else:
        head = Table(
            title=f"{g.path.name}  ({g.producer or 'unknown producer'}, IR {g.ir_version})"
        )
    head.add_column("figure")
    head.add_column("value", justify="right")
    opsets = ", ".join(f"{d or 'ai.onnx'}:{v}" for d, v in sorted(g.opset_imports.items()))
    if tflite:
        ops = getattr(g, "tflite_ops", {})
        opsets = ", ".join(f"{k} x{v}" for k, v in sorted(ops.items(), key=lambda kv: -kv[1]))
    rows = [
        ("TFLite operators" if tflite else "opsets", opsets),
        ("operators", f"{g.num_nodes} (+{int(t['num_nested_nodes'])} in subgraphs/functions)"),
        ("FLOPs", _fmt_count(t["flops"])),
        ("MACs", _fmt_count(t["macs"])),
        ("parameters", f"{_fmt_count(t['params'])} ({_fmt_bytes(t['param_bytes'])})"),
        (
            "weights by dtype",
            ", ".join(
                f"{k} {_fmt_bytes(v)}"
                for k, v in sorted(g.weight_bytes_by_dtype.items(), key=lambda kv: -kv[1])
            )
            or "-",
        ),
        ("peak activations", _fmt_bytes(t["peak_activation_bytes"])),
        ("depth / max width", f"{int(t['depth'])} / {int(t['max_width'])}"),
        ("critical-path FLOPs", _fmt_count(t["critical_path_flops"])),
        ("arithmetic intensity", f"{t['arithmetic_intensity']:.2f} FLOP/B"),
        (
            "unknown shapes",
            f"{int(t['num_unknown_shape_tensors'])} of {int(t['num_activation_tensors'])}",
        ),
    ]
    for k, v in rows:
        head.add_row(k, v)
    console.print(head)

    io = Table(title="inputs and outputs")
    for c in ("", "name", "dtype", "declared", "used"):
        io.add_column(c)
    for role, specs in (("in", g.inputs), ("out", g.outputs)):
        for s in specs:
            decl = "-" if s.declared_shape is None else str(list(s.declared_shape))
            used = "?" if s.shape is None else str([d if d >= 0 else "?" for d in s.shape])
            io.add_row(role, s.name, s.dtype, decl, used)
    console.print(io)

    hist = Table(title="operator types")
    hist.add_column("op type")
    hist.add_column("count", justify="right")
    hist.add_column("FLOPs share", justify="right")
    total = max(t["flops"], 1.0)
    flops_by: dict[str, float] = {}
    for op, f in zip(g.op_types, g.flops, strict=True):
        flops_by[op] = flops_by.get(op, 0.0) + float(f)
    for op, n in sorted(g.op_type_histogram.items(), key=lambda kv: -flops_by.get(kv[0], 0.0)):
        hist.add_row(op, str(n), f"{100 * flops_by.get(op, 0.0) / total:.1f} %")
    console.print(hist)

    if summary["heaviest_ops"]:
        heavy = Table(title=f"heaviest {len(summary['heaviest_ops'])} operators")
        for c in ("node", "op", "FLOPs", "params", "output shape"):
            heavy.add_column(c)
        for h in summary["heaviest_ops"]:
            heavy.add_row(
                h["name"] or "-",
                h["op_type"],
                _fmt_count(h["flops"]),
                _fmt_count(h["params"]),
                ", ".join(str(list(s)) if s is not None else "?" for s in h["output_shapes"]),
            )
        console.print(heavy)
    for w in g.warnings:
        console.print(f"[yellow]warning:[/] {w}")
    if g.unknown_ops:
        console.print(f"[yellow]operators without a cost rule:[/] {', '.join(g.unknown_ops)}")
    return 0
