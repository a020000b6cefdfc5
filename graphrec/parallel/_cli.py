"""``graphrec plan``: choose a distributed-training strategy for a model."""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["register"]


def _cmd_plan(args: argparse.Namespace) -> int:
    from graphrec.parallel.cluster import Network, calibrate_gloo
    from graphrec.parallel.planner import make_plan
    from graphrec.parallel.profile import PlanInputError
    from graphrec.parallel.search import KINDS

    if args.devices is None and args.device_profile is None:
        raise PlanInputError("say how many devices to plan for: --devices N or --device-profile")
    if args.devices is not None and args.devices < 1:
        raise PlanInputError(f"--devices must be at least 1, got {args.devices}")
    kinds = KINDS if args.strategy == "auto" else (args.strategy.replace("-", " "),)
    network: Network | None = None
    if args.calibrate:
        network, _ = calibrate_gloo()
    plan = make_plan(
        args.model,
        devices=args.devices,
        cluster=args.device_profile,
        batch=args.batch,
        optimizer=args.optimizer,
        method=args.search,
        kinds=kinds,
        micro_batches=args.micro_batches,
        memory_mb=args.memory_mb,
        network=network,
        max_layers=args.max_layers,
        times=args.times,
    )
    if args.emit:
        from graphrec.parallel.engine import emit_script

        emit_script(plan, args.emit)
    d = plan.to_dict()
    if args.json:
        print(json.dumps(d, indent=2))
        return 0
    _print_plan(d, args.emit)
    return 0


def _print_plan(d: dict[str, Any], emitted: str | None) -> None:
    from rich.table import Table

    from graphrec.cli import console

    out = console()
    sched = f", {d['schedule']} schedule" if d["schedule"] else ""
    out.print(
        f"[bold]{d['name']}[/bold]: {d['strategy']} — {d['pipeline_stages']} stage(s) x "
        f"{d['dp']} replica(s), {d['micro_batches']} micro-batch(es){sched}, batch {d['batch']}"
    )
    table = Table(show_header=True)
    for col in ("stage", "layers", "from", "to", "devices", "memory MiB"):
        table.add_column(col)
    for s in d["stages"]:
        a, b = s["layers"]
        table.add_row(
            str(s["stage"]),
            f"{a}-{b - 1}",
            s["first_layer"],
            s["last_layer"],
            ",".join(map(str, s["devices"])),
            f"{s['memory_mb']:.1f}",
        )
    out.print(table)
    br = d["breakdown_ms"]
    out.print(
        f"predicted step time {d['step_time_ms']:.2f} ms (busiest stage: compute "
        f"{br['compute']:.2f}, pipeline idle {br['bubble']:.2f}, exposed all-reduce "
        f"{br['allreduce_exposed']:.2f}, optimizer {br['optimizer']:.2f}); layer times "
        f"{d['time_source']}"
    )
    if "search" in d:
        s = d["search"]
        out.print(
            f"found by {s['method']}: {s['evaluations']} strategies scored in {s['seconds']:.2f} s"
        )
    if emitted:
        world = d["pipeline_stages"] * d["dp"]
        out.print(f"wrote {emitted}; run it with: torchrun --nproc-per-node {world} {emitted}")


def register(subparsers: Any) -> None:
    """Add ``graphrec plan`` to the CLI."""
    p = subparsers.add_parser(
        "plan",
        help="plan distributed training: data parallel, pipeline or both",
        description="Profile a model layer by layer and choose how to split its training "
        "over devices (data parallel, GPipe/1F1B pipeline, or both) with a particle swarm "
        "search over a simulated step time. MODEL is an .onnx file (a model.torch.json "
        "sidecar lets graphrec time its layers and run the plan) or zoo:FAMILY:SEED[:tiny].",
    )
    p.add_argument("model", metavar="MODEL", help="an .onnx file or zoo:FAMILY:SEED[:tiny]")
    p.add_argument("--devices", type=int, metavar="N", help="number of equal local devices")
    p.add_argument(
        "--device-profile",
        metavar="JSON",
        help="devices (speed, memory_mb, count) and network; see graphrec.parallel.cluster",
    )
    p.add_argument("--batch", type=int, default=32, help="global batch per step (default 32)")
    p.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd")
    p.add_argument(
        "--strategy",
        choices=("auto", "single", "dp", "pp", "dp-x-pp"),
        default="auto",
        help="restrict the kind of strategy (default: any)",
    )
    p.add_argument(
        "--search",
        choices=("pso", "exhaustive", "pipedream", "dp-only"),
        default="pso",
        help="search method (default pso)",
    )
    p.add_argument("--micro-batches", type=int, metavar="M", help="fix the micro-batch count")
    p.add_argument("--memory-mb", type=float, help="memory per local device in MiB")
    p.add_argument("--max-layers", type=int, default=16, help="merge layers down to this many")
    p.add_argument(
        "--times",
        choices=("auto", "measured", "estimated"),
        default="auto",
        help="layer times: measured with torch here, or estimated from FLOPs (default: "
        "measured when the torch module is known)",
    )
    p.add_argument(
        "--calibrate",
        action="store_true",
        help="measure the network (gloo all-reduce and send/recv) before planning",
    )
    p.add_argument("--emit", metavar="PATH", help="write a runnable torchrun script of the plan")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_cmd_plan)
