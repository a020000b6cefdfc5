"""``graphrec port``: parameter dictionary, C code, storage plan, build and run on a target."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add the ``port`` sub-command."""
    p = subparsers.add_parser(
        "port",
        help="port an ONNX classifier to a microcontroller: C code, storage plan, simavr run",
        description=(
            "Write the parameter dictionary, generate C99 (float or fixed point) with a "
            "storage plan for the target, and with --run build it, run sample inputs "
            "(on AVR in simavr, over the simulated UART) and compare with onnxruntime."
        ),
    )
    p.add_argument("model", type=Path, help="the .onnx file (one input, one output, batch 1)")
    p.add_argument(
        "--dictionary", action="store_true", help="write and print the parameter dictionary"
    )
    p.add_argument(
        "--target",
        default="host",
        choices=["host", "atmega328p", "atmega2560"],
        help="where the code runs (default host)",
    )
    p.add_argument("--mode", default="float", choices=["float", "fixed"], help="numeric mode")
    p.add_argument("--weight-bits", type=int, default=8, choices=[8, 16], help="fixed mode")
    p.add_argument("--out", type=Path, default=None, help="output folder (default MODEL_port/)")
    p.add_argument("--name", default=None, help="C identifier prefix (default: the file name)")
    p.add_argument(
        "--media",
        default=None,
        help="comma-separated media the weights may use (sram, flash, eeprom, external)",
    )
    p.add_argument(
        "--external-bytes",
        type=int,
        default=0,
        help="AVR: an external SPI memory of this size may hold weights (default none)",
    )
    p.add_argument("--run", action="store_true", help="build, run and compare with onnxruntime")
    p.add_argument(
        "--inputs", type=Path, default=None, help=".npy of sample inputs (default: random normal)"
    )
    p.add_argument("--samples", type=int, default=8, help="random sample inputs when no --inputs")
    p.add_argument(
        "--calibration",
        type=Path,
        default=None,
        help="fixed mode: .npy of inputs that set the activation scales (default: --inputs)",
    )
    p.add_argument(
        "--tolerance",
        type=float,
        default=None,
        help="float mode: largest difference from onnxruntime (default 1e-5 host, 1e-4 AVR)",
    )
    p.add_argument(
        "--min-top1",
        type=float,
        default=0.9,
        help="fixed mode: least arg-max agreement with onnxruntime (default 0.9)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.set_defaults(func=_cmd_port)


def _load_npy(path: Path, what: str) -> Any:
    import numpy as np

    from graphrec.mcu.errors import PortError

    try:
        return np.load(path)
    except (OSError, ValueError) as exc:
        raise PortError(f"{path}: cannot read the {what} (.npy): {exc}") from None


def _dictionary(args: argparse.Namespace, out: Path) -> int:
    from graphrec.mcu.dictionary import parameter_dictionary

    d = parameter_dictionary(args.model)
    out.mkdir(parents=True, exist_ok=True)
    (out / "dictionary.json").write_text(json.dumps(d, indent=2))
    if args.json:
        print(json.dumps(d, indent=2))
        return 0
    from rich.table import Table

    from graphrec.cli import console

    con = console()
    t = Table(title=f"parameter dictionary of {args.model.name} (JSON: {out / 'dictionary.json'})")
    for col in ("name", "op", "kind", "dtype", "shape", "count", "bytes", "min", "max", "sparsity"):
        t.add_column(col, justify="right" if col in ("count", "bytes", "min", "max") else "left")
    for r in d["parameters"]:
        t.add_row(
            r["name"],
            r["op"],
            r["kind"],
            r["dtype"],
            "x".join(map(str, r["shape"])) or "scalar",
            str(r["count"]),
            str(r["bytes"]),
            "" if r["min"] is None else f"{r['min']:.4g}",
            "" if r["max"] is None else f"{r['max']:.4g}",
            f"{r['sparsity']:.1%}",
        )
    con.print(t)
    per = Table(title="per operator type")
    for col in ("op", "tensors", "parameters", "bytes", "sparsity"):
        per.add_column(col)
    for op, v in d["per_op"].items():
        per.add_row(op, str(v["tensors"]), str(v["count"]), str(v["bytes"]), f"{v['sparsity']:.1%}")
    tot = d["totals"]
    per.add_row(
        "total", str(tot["tensors"]), str(tot["count"]), str(tot["bytes"]), f"{tot['sparsity']:.1%}"
    )
    con.print(per)
    return 0


def _cmd_port(args: argparse.Namespace) -> int:
    import numpy as np

    from graphrec.mcu.port import port, run_port, sample_inputs

    out = args.out or Path(f"{args.model.stem}_port")
    if args.dictionary:
        return _dictionary(args, out)
    inputs = None if args.inputs is None else _load_npy(args.inputs, "inputs")
    cal = _load_npy(args.calibration, "calibration inputs") if args.calibration else inputs
    media = (
        None if args.media is None else tuple(m.strip() for m in args.media.split(",") if m.strip())
    )
    res = port(
        args.model,
        target=args.target,
        mode=args.mode,
        weight_bits=args.weight_bits,
        calibration=cal,
        out_dir=out,
        name=args.name,
        media=media,
        external_bytes=args.external_bytes,
    )
    summary: dict[str, Any] = {
        "files": sorted(str(p) for p in out.iterdir() if p.is_file()),
        "arena_bytes": res.arena.size,
        "arena_naive_bytes": res.arena.naive,
        "arena_optimum_bytes": res.arena.optimum,
        "weights": res.storage.to_dict(),
    }
    code = 0
    if args.run:
        x = sample_inputs(res.model, args.samples) if inputs is None else np.asarray(inputs)
        rep = run_port(res, x)
        tol = (
            args.tolerance if args.tolerance is not None else (1e-4 if res.target.is_avr else 1e-5)
        )
        if res.fixed is None:
            ok = rep.max_abs_error <= tol
        else:
            ok = bool(rep.bit_exact) and rep.top1_agreement >= args.min_top1
        summary["run"] = {
            "samples": int(x.shape[0]),
            "max_abs_error_vs_onnxruntime": rep.max_abs_error,
            "top1_agreement": rep.top1_agreement,
            "bit_exact_with_python_model": rep.bit_exact,
            "flash_bytes": rep.flash_bytes,
            "sram_bytes": rep.sram_bytes,
            "eeprom_bytes": rep.eeprom_bytes,
            "stack_bytes": rep.stack_bytes,
            "capacity": rep.capacity,
            "cycles_median": rep.cycles_median,
            "cycles_min": min(rep.cycles) if rep.cycles else None,
            "cycles_max": max(rep.cycles) if rep.cycles else None,
            "latency_ms_at_16mhz": rep.latency_ms(),
            "agree": ok,
            "linked_addresses": {
                k: {"address": a, "bytes": n} for k, (a, n) in sorted(rep.symbols.items())
            },
            "external_reads": rep.external_reads,
        }
        code = 0 if ok else 1
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
        return code
    _print(res, summary)
    return code


def _print(res: Any, s: dict[str, Any]) -> None:
    from rich.table import Table

    from graphrec.cli import console

    con = console()
    opt = s["arena_optimum_bytes"]
    con.print(
        f"[bold]{res.model.path.name}[/] -> {res.target.name}, {res.mode} mode, "
        f"{len(res.model.steps)} steps; files in {res.out_dir}"
    )
    con.print(
        f"arena {s['arena_bytes']} B (no sharing: {s['arena_naive_bytes']} B"
        + (f", brute-force optimum: {opt} B)" if opt is not None else ")")
    )
    run = s.get("run")
    linked = (run or {}).get("linked_addresses", {})
    from graphrec.mcu.codegen import external_layout

    ext, _ = external_layout(res.consts, res.storage)
    t = Table(title="weights across media (address-bound accessors)")
    for col in ("tensor", "medium", "bytes", "reads/inference", "address"):
        t.add_column(col)
    for p in res.storage.placements:
        if p.name in ext:
            where = f"SPI 0x{ext[p.name]:06X}"
        elif p.name in linked:
            where = f"0x{linked[p.name]['address']:06X}"
        else:
            where = "-"
        t.add_row(p.name, p.medium, str(p.bytes), f"{p.reads:g}", where)
    con.print(t)
    if not run:
        return
    if run["flash_bytes"] is not None:
        cap = run["capacity"]
        con.print(
            f"flash {run['flash_bytes']} / {cap['flash']} B, SRAM {run['sram_bytes']} / "
            f"{cap['sram']} B (stack peak {run['stack_bytes']} B), EEPROM "
            f"{run['eeprom_bytes']} / {cap['eeprom']} B"
        )
        con.print(
            f"cycles per inference: median {run['cycles_median']:.0f} (min {run['cycles_min']}, "
            f"max {run['cycles_max']}) = {run['latency_ms_at_16mhz']:.3f} ms at 16 MHz"
        )
    exact = run["bit_exact_with_python_model"]
    con.print(
        f"{run['samples']} samples vs onnxruntime: max |diff| {run['max_abs_error_vs_onnxruntime']:.3g}, "
        f"top-1 agreement {run['top1_agreement']:.1%}"
        + ("" if exact is None else f", bit-exact with the Python fixed-point model: {exact}")
    )
    con.print("[green]agree[/]" if run["agree"] else "[red]DISAGREE[/]")
