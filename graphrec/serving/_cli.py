"""``graphrec schedule``: run scheduling policies on a workload, simulated or on Ray."""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

__all__ = ["register"]

_METRICS = ("success_rate", "mean_accuracy", "utility", "p99_ms")


def _clean(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    return value


def _policies(arg: str) -> list[str] | None:
    return None if arg == "all" else [p.strip() for p in arg.split(",") if p.strip()]


def _check_policies(names: list[str] | None) -> None:
    from graphrec.errors import GraphRecError
    from graphrec.serving.policies import POLICY_NAMES

    for name in names or []:
        if name not in POLICY_NAMES:
            raise GraphRecError(f"unknown policy {name!r}; valid: all, {', '.join(POLICY_NAMES)}")


def _cmd_simulate(args: argparse.Namespace) -> int:
    from graphrec.serving import load_workload, simulate_workload

    names = _policies(args.policy)
    _check_policies(names)
    if args.seeds < 1:
        from graphrec.errors import GraphRecError

        raise GraphRecError("--seeds must be at least 1")
    workload = load_workload(args.workload)
    if args.tasks is not None:
        workload = workload.with_arrivals(tasks=args.tasks)
    result = simulate_workload(
        workload, names, seeds=args.seeds, first_seed=args.first_seed, load=args.load
    )
    if args.json:
        flat = {
            name: {
                **{m: _clean(s[m]["mean"]) for m in _METRICS},
                "intervals": {m: _clean([s[m]["ci_low"], s[m]["ci_high"]]) for m in _METRICS},
                "counts": s["counts"],
            }
            for name, s in result.items()
        }
        print(
            json.dumps({"workload": workload.name, "seeds": args.seeds, "policies": flat}, indent=2)
        )
        return 0
    from rich.table import Table

    from graphrec.cli import console

    load = args.load if args.load is not None else workload.arrivals.load
    table = Table(
        title=f"{workload.name}: {workload.arrivals.process} arrivals, load {load:g}, "
        f"{workload.arrivals.tasks} tasks, {args.seeds} seeds (mean [95 % interval])"
    )
    for col in (
        "policy",
        "success rate",
        "mean accuracy",
        "utility",
        "p99 ms",
        "rejected",
        "failed",
    ):
        table.add_column(col, justify="left" if col == "policy" else "right")

    def cell(s: dict[str, Any], m: str, digits: int) -> str:
        if math.isnan(s[m]["mean"]):
            return "-"
        return (
            f"{s[m]['mean']:.{digits}f} [{s[m]['ci_low']:.{digits}f}, {s[m]['ci_high']:.{digits}f}]"
        )

    for name, s in result.items():
        table.add_row(
            name,
            cell(s, "success_rate", 3),
            cell(s, "mean_accuracy", 3),
            cell(s, "utility", 3),
            cell(s, "p99_ms", 1),
            str(s["counts"]["rejected"]),
            str(s["counts"]["failed"]),
        )
    console().print(table)
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from graphrec.serving.policies import POLICY_NAMES
    from graphrec.serving.prototype import serve_workload

    names = _policies(args.policy) or list(POLICY_NAMES)
    _check_policies(names)
    out = serve_workload(
        args.workload,
        names,
        seed=args.seed,
        load=args.load,
        cache=args.cache,
        calibrate_runs=args.calibrate,
    )
    if args.json:
        print(json.dumps(_clean(out), indent=2))
        return 0
    from rich.table import Table

    from graphrec.cli import console

    table = Table(title=f"Ray prototype vs simulator, same instance ({out['latency_source']})")
    for col in (
        "policy",
        "success real",
        "success sim",
        "success sim as seen",
        "accuracy real",
        "accuracy sim",
        "p99 ms real",
    ):
        table.add_column(col, justify="left" if col == "policy" else "right")
    for name, r in out["policies"].items():
        real, sim = r["real"], r["simulated"]
        table.add_row(
            name,
            f"{real['success_rate']:.3f}",
            f"{sim['success_rate']:.3f}",
            f"{r['simulated_as_seen']['success_rate']:.3f}",
            f"{real['mean_accuracy']:.3f}",
            f"{sim['mean_accuracy']:.3f}",
            f"{real['p99_ms']:.1f}",
        )
    console().print(table)
    return 0


def register(subparsers: Any) -> None:
    """Add ``graphrec schedule`` to the CLI."""
    p = subparsers.add_parser(
        "schedule",
        help="schedule inference tasks across unequal servers (simulated or on Ray)",
        description="Schedule inference tasks with deadlines across unequal servers: where "
        "each task goes, which model variant runs it and in which order. Latencies come "
        "from graphrec's measured dataset.",
    )
    sub = p.add_subparsers(dest="schedule_command", metavar="ACTION", required=True)
    sim = sub.add_parser(
        "simulate",
        help="run policies on the same arrivals in the simulator, over several seeds",
    )
    sim.add_argument("--workload", required=True, metavar="W.yaml", help="workload file")
    sim.add_argument("--policy", default="all", help="a policy, a comma list, or all (default)")
    sim.add_argument("--seeds", type=int, default=30, help="number of seeds (default 30)")
    sim.add_argument("--first-seed", type=int, default=0, help="first seed (default 0)")
    sim.add_argument("--load", type=float, help="override the workload's load factor")
    sim.add_argument("--tasks", type=int, help="override the number of tasks per run")
    sim.add_argument("--json", action="store_true", help="print JSON instead of a table")
    sim.set_defaults(func=_cmd_simulate)
    serve = sub.add_parser("serve", help="serve the workload for real on Ray actors and compare")
    serve.add_argument("--workload", required=True, metavar="W.yaml", help="workload file")
    serve.add_argument(
        "--policy", default="two_step,edf,round_robin", help="a policy, a comma list, or all"
    )
    serve.add_argument("--seed", type=int, default=0, help="seed of the drawn tasks")
    serve.add_argument("--load", type=float, help="override the workload's load factor")
    serve.add_argument("--cache", metavar="DIR", help="keep the regenerated ONNX models here")
    serve.add_argument(
        "--calibrate",
        type=int,
        default=20,
        metavar="N",
        help="re-measure each variant on each server N times first (0: dataset only)",
    )
    serve.add_argument("--json", action="store_true", help="print JSON instead of a table")
    serve.set_defaults(func=_cmd_serve)
