"""Figures of ``graphrec schedule`` for the README: optimum gap, load sweep, Ray vs simulator.

Prints and writes (``--out``, default ``benchmarks/reports/``) ``schedule.md`` and
``schedule.json``:

1. **Exact optimum** on small instances (``--small-tasks`` tasks of ``two_apps.yaml``,
   loads 0.8 / 1.0 / 1.2, ``--seeds`` seeds each): each policy's utility over the
   clairvoyant CP-SAT optimum's (which knows every arrival and every real latency).
2. **Load sweep** 0.5-1.5 on ``two_apps.yaml`` and ``tight_slo.yaml`` (Poisson), and
   the bursty / diurnal / failover examples at their own load: every policy, mean and
   95 % t interval over seeds 0..N-1.
3. **Acceptance at load 0.8 / 1.0 / 1.2**: two_step minus EDF and minus round-robin,
   paired by seed (mean difference and its 95 % interval), for success rate and mean
   accuracy; INFaaS-style SLO misses against the fixed-variant baselines.
4. **Ray prototype vs simulator** (``ray_small.yaml``, unless ``--no-ray``): the same
   drawn instance served by Ray actors with real onnxruntime sessions and simulated.

Never asserts; run it under ``nice`` on a shared machine::

    nice -n 19 .venv/bin/python benchmarks/bench_schedule.py --seeds 30
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WORKLOADS = ROOT / "examples" / "workloads"
#: Policies shown in the narrower tables (every policy is in the JSON).
SHOWN = (
    "two_step",
    "two_step_floor",
    "infaas",
    "edf",
    "edf_accurate",
    "edf_fastest",
    "round_robin",
)
#: Columns of the SLO-miss table.
MISS_COLUMNS = (
    "edf",
    "edf_accurate",
    "edf_fastest",
    "fifo",
    "round_robin",
    "least_loaded",
    "two_step",
    "two_step_floor",
)
#: The baselines the two-step policies are compared with, paired by seed.
BASELINES = ("edf", "edf_accurate", "edf_fastest", "round_robin")


def _ci(values: list[float]) -> tuple[float, float, float]:
    from scipy import stats

    arr = np.array([v for v in values if not math.isnan(v)], dtype=float)
    if len(arr) == 0:
        return math.nan, math.nan, math.nan
    mean = float(arr.mean())
    if len(arr) < 2 or arr.std() == 0:
        return mean, mean, mean
    half = float(stats.t.ppf(0.975, len(arr) - 1) * stats.sem(arr))
    return mean, mean - half, mean + half


def _fmt(triple: tuple[float, float, float], digits: int = 3, scale: float = 1.0) -> str:
    m, lo, hi = (x * scale for x in triple)
    if math.isnan(m):
        return "-"
    return f"{m:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def run_per_seed(
    workload: Any, seeds: int, load: float | None = None
) -> dict[str, list[dict[str, Any]]]:
    from graphrec.serving.arrivals import draw_instance
    from graphrec.serving.latency import latency_table
    from graphrec.serving.policies import POLICY_NAMES, make_policy
    from graphrec.serving.simulator import metrics, simulate

    wl = workload if load is None else workload.with_arrivals(load=load)
    table = latency_table(wl)
    out: dict[str, list[dict[str, Any]]] = {p: [] for p in POLICY_NAMES}
    for seed in range(seeds):
        inst = draw_instance(wl, table, seed)
        for p in POLICY_NAMES:
            out[p].append(metrics(inst, simulate(inst, make_policy(p, seed)).outcomes))
    return out


def optimum_gap(seeds: int, tasks: int, lines: list[str], report: dict[str, Any]) -> None:
    from graphrec.serving.arrivals import draw_instance
    from graphrec.serving.latency import latency_table
    from graphrec.serving.optimum import solve_optimum
    from graphrec.serving.policies import POLICY_NAMES, make_policy
    from graphrec.serving.simulator import metrics, simulate
    from graphrec.serving.workload import load_workload

    wl = load_workload(WORKLOADS / "two_apps.yaml")
    table = latency_table(wl)
    lines += [
        "## 1. Two-step vs the exact optimum (small instances)",
        "",
        f"`two_apps.yaml`, {tasks} tasks per instance, {seeds} seeds per load. Optimum: CP-SAT, "
        "clairvoyant (every arrival and every real latency known), non-preemptive. Ratio = "
        "policy utility / optimum utility per instance; mean [95 % interval], worst, and "
        "the ratio of the utilities summed over instances.",
        "",
        "| load | policy | mean ratio | worst | ratio of sums | instances >= 0.95 |",
        "|---|---|---|---|---|---|",
    ]
    report["optimum"] = {}
    for load in (0.8, 1.0, 1.2):
        w = wl.with_arrivals(load=load, tasks=tasks)
        ratios: dict[str, list[float]] = {p: [] for p in POLICY_NAMES}
        sums = {p: 0.0 for p in POLICY_NAMES}
        opt_sum = 0.0
        proven = 0
        solve_s = 0.0
        for seed in range(seeds):
            inst = draw_instance(w, table, seed)
            t0 = time.perf_counter()
            best = solve_optimum(inst, time_limit_s=30)
            solve_s += time.perf_counter() - t0
            proven += best.proven
            opt_sum += best.utility
            for p in POLICY_NAMES:
                u = metrics(inst, simulate(inst, make_policy(p, seed)).outcomes)["utility"]
                ratios[p].append(u / best.utility if best.utility > 0 else 1.0)
                sums[p] += u
        report["optimum"][str(load)] = {
            "proven_optimal": proven,
            "instances": seeds,
            "mean_solve_s": solve_s / seeds,
            "policies": {
                p: {
                    "mean_ratio": _ci(ratios[p]),
                    "worst": min(ratios[p]),
                    "ratio_of_sums": sums[p] / opt_sum,
                    "share_at_least_95": float(np.mean(np.array(ratios[p]) >= 0.95)),
                }
                for p in POLICY_NAMES
            },
        }
        for p in SHOWN:
            r = report["optimum"][str(load)]["policies"][p]
            lines.append(
                f"| {load} | {p} | {_fmt(r['mean_ratio'])} | {r['worst']:.3f} | "
                f"{r['ratio_of_sums']:.3f} | {r['share_at_least_95']:.2f} |"
            )
        lines.append(
            f"| {load} | (optimum) | proven optimal {proven}/{seeds}, "
            f"{solve_s / seeds:.2f} s per solve | | | |"
        )
    lines.append("")


def sweep(seeds: int, lines: list[str], report: dict[str, Any]) -> dict[str, dict[float, Any]]:
    from graphrec.serving.policies import POLICY_NAMES
    from graphrec.serving.workload import load_workload

    kept: dict[str, dict[float, Any]] = {}
    report["sweep"] = {}
    for name in ("two_apps", "tight_slo"):
        wl = load_workload(WORKLOADS / f"{name}.yaml")
        kept[name] = {}
        report["sweep"][name] = {}
        lines += [
            f"## 2. Load sweep, `{name}.yaml` (Poisson, {wl.arrivals.tasks} tasks, {seeds} seeds)",
            "",
            "Success rate, mean [95 % interval].",
            "",
            "| load | " + " | ".join(POLICY_NAMES) + " |",
            "|---|" + "---|" * len(POLICY_NAMES),
        ]
        for load in [round(0.5 + 0.1 * k, 1) for k in range(11)]:
            per = run_per_seed(wl, seeds, load)
            kept[name][load] = per
            report["sweep"][name][str(load)] = {
                p: {
                    m: _ci([r[m] for r in rows])
                    for m in ("success_rate", "mean_accuracy", "utility", "p99_ms")
                }
                for p, rows in per.items()
            }
            cells = [_fmt(_ci([r["success_rate"] for r in per[p]]), 3) for p in POLICY_NAMES]
            lines.append(f"| {load} | " + " | ".join(cells) + " |")
        lines += [
            "",
            f"Mean accuracy of the tasks served on time, `{name}.yaml`, mean [95 % interval]:",
            "",
            "| load | " + " | ".join(SHOWN) + " |",
            "|---|" + "---|" * len(SHOWN),
        ]
        for load, per in kept[name].items():
            cells = [_fmt(_ci([r["mean_accuracy"] for r in per[p]]), 4) for p in SHOWN]
            lines.append(f"| {load} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += [
        f"### Other arrival processes and events ({seeds} seeds, each file's own load)",
        "",
        "| workload | policy | success rate | mean accuracy | utility | p99 ms | rejected | failed |",
        "|---|---|---|---|---|---|---|---|",
    ]
    report["other"] = {}
    for name in ("failover", "diurnal"):
        wl = load_workload(WORKLOADS / f"{name}.yaml")
        per = run_per_seed(wl, seeds)
        report["other"][name] = {}
        for p in POLICY_NAMES:
            rows = per[p]
            figures = {
                m: _ci([r[m] for r in rows])
                for m in ("success_rate", "mean_accuracy", "utility", "p99_ms")
            }
            counts = {k: sum(r["counts"][k] for r in rows) for k in rows[0]["counts"]}
            report["other"][name][p] = {**figures, "counts": counts}
            lines.append(
                f"| {name} | {p} | {_fmt(figures['success_rate'])} | "
                f"{_fmt(figures['mean_accuracy'])} | {_fmt(figures['utility'])} | "
                f"{_fmt(figures['p99_ms'], 1)} | {counts['rejected']} | {counts['failed']} |"
            )
    lines.append("")
    return kept


def acceptance(kept: dict[str, dict[float, Any]], lines: list[str], report: dict[str, Any]) -> None:
    lines += [
        "## 3. Acceptance: the two-step policies against each baseline, paired by seed",
        "",
        "Differences in points (x100), mean [95 % interval]. `accuracy` is the mean accuracy "
        "of the tasks served on time; `acc x success` counts a missed task as accuracy 0. "
        "`headroom` is 100 minus the baseline's success rate: no policy can beat the "
        "baseline's success by more.",
        "",
        "| workload | load | policy | vs | success (points) | accuracy (points) | "
        "acc x success (points) | headroom |",
        "|---|---|---|---|---|---|---|---|",
    ]
    report["acceptance"] = {}
    for name, by_load in kept.items():
        report["acceptance"][name] = {}
        for load in (0.8, 0.9, 1.0, 1.1, 1.2):
            per = by_load[load]
            entry: dict[str, Any] = {}
            for mine in ("two_step", "two_step_floor"):
                entry[mine] = {}
                for other in BASELINES:
                    a, b = per[mine], per[other]
                    ds = [x["success_rate"] - y["success_rate"] for x, y in zip(a, b, strict=True)]
                    da = [
                        x["mean_accuracy"] - y["mean_accuracy"] for x, y in zip(a, b, strict=True)
                    ]
                    de = [
                        x["success_rate"] * x["mean_accuracy"]
                        - y["success_rate"] * y["mean_accuracy"]
                        for x, y in zip(a, b, strict=True)
                    ]
                    room = 1 - float(np.mean([y["success_rate"] for y in b]))
                    entry[mine][other] = {
                        "success": _ci(ds),
                        "accuracy": _ci(da),
                        "effective": _ci(de),
                        "headroom": room,
                    }
                    lines.append(
                        f"| {name} | {load} | {mine} | {other} | {_fmt(_ci(ds), 1, 100)} | "
                        f"{_fmt(_ci(da), 1, 100)} | {_fmt(_ci(de), 1, 100)} | {100 * room:.1f} |"
                    )
            report["acceptance"][name][str(load)] = entry
    lines += [
        "",
        "### SLO misses (tasks not served on time), INFaaS-style vs the rest",
        "",
        "Misses summed over seeds; `x` = misses of that policy / misses of infaas "
        "(INFaaS reports 1.6x fewer misses than its baselines).",
        "",
        "| workload | load | infaas misses | " + " | ".join(p for p in MISS_COLUMNS) + " |",
        "|---|---|---|" + "---|" * len(MISS_COLUMNS),
    ]
    report["slo_misses"] = {}
    for name, by_load in kept.items():
        report["slo_misses"][name] = {}
        for load in (0.8, 1.0, 1.2):
            per = by_load[load]
            miss = {
                p: sum(
                    r["counts"]["late"] + r["counts"]["rejected"] + r["counts"]["failed"]
                    for r in rows
                )
                for p, rows in per.items()
            }
            report["slo_misses"][name][str(load)] = miss
            base = max(miss["infaas"], 1)
            cells = [f"{miss[p]} ({miss[p] / base:.2f}x)" for p in MISS_COLUMNS]
            lines.append(f"| {name} | {load} | {miss['infaas']} | " + " | ".join(cells) + " |")
    lines.append("")


def ray_vs_sim(
    lines: list[str],
    report: dict[str, Any],
    seeds: list[int],
    calibrate: int,
    cache: Path,
    only_new: bool = False,
) -> None:
    """Section 4. Each seed's result is kept in ``cache`` (``ray_seed<S>.json``); a seed
    already there is read back, not served again, so the section runs in chunks (one seed
    per measurement-lock hold) and the last call writes the whole table."""
    from graphrec.serving.policies import POLICY_NAMES
    from graphrec.serving.prototype import serve_workload

    lines += [
        "## 4. Ray prototype vs simulator (`ray_small.yaml`, every policy)",
        "",
        "Same drawn instance: served by two Ray actors with real onnxruntime sessions of "
        "zoo models (one under artificial load), and simulated. Latencies for planning and "
        f"simulating re-measured on the actors ({calibrate} round trips per pair, all "
        "actors busy at once): once to set the arrival rate, then again on each policy's "
        "fresh actors just before they serve; the simulator runs on the latter.",
        "",
        "`sim` runs on the latencies re-measured just before the real run (a prediction); "
        "`sim as seen` on the p10/p50/p90 of the round trips the real run itself saw per "
        "(variant, server) (it checks the simulator's queueing, not the forecast of how "
        "busy the shared machine will be).",
        "",
        "| seed | policy | success real | success sim | diff (points) | sim as seen | "
        "diff as seen | accuracy real | accuracy sim |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    report["ray"] = []
    cache.mkdir(parents=True, exist_ok=True)
    diffs: dict[str, list[float]] = {p: [] for p in POLICY_NAMES}
    diffs_seen: dict[str, list[float]] = {}
    for seed in seeds:
        path = cache / f"ray_seed{seed}.json"
        if path.exists():
            out = json.loads(path.read_text())
        elif only_new:
            continue
        else:
            t0 = time.perf_counter()
            out = serve_workload(
                WORKLOADS / "ray_small.yaml",
                list(POLICY_NAMES),
                seed=seed,
                cache=ROOT / "runs" / "serving_onnx",
                calibrate_runs=calibrate,
            )
            out["wall_s"] = time.perf_counter() - t0
            print(f"ray seed {seed}: {out['wall_s']:.0f} s", flush=True)
            out["generated"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
            path.write_text(json.dumps(out, indent=1, default=str) + "\n")
        report["ray"].append({"seed": seed, **out})
        for p, r in out["policies"].items():
            real, sim = r["real"], r["simulated"]
            seen = r.get("simulated_as_seen")
            diffs.setdefault(p, []).append(100 * (real["success_rate"] - sim["success_rate"]))
            seen_cells = "- | -"
            if seen is not None:
                d = 100 * (real["success_rate"] - seen["success_rate"])
                diffs_seen.setdefault(p, []).append(d)
                seen_cells = f"{seen['success_rate']:.3f} | {d:+.1f}"
            lines.append(
                f"| {seed} | {p} | {real['success_rate']:.3f} | {sim['success_rate']:.3f} | "
                f"{100 * (real['success_rate'] - sim['success_rate']):+.1f} | {seen_cells} | "
                f"{real['mean_accuracy']:.3f} | {sim['mean_accuracy']:.3f} |"
            )
        lines.append(
            f"| {seed} | (served {out.get('generated', '?')}, "
            f"{float(out.get('wall_s', math.nan)):.0f} s for all policies) | | | | | | | |"
        )
        first = next(iter(out["policies"]))
        lines.append(
            f"| {seed} | (arrival-rate p50 ms) | {json.dumps(out['latency_p50_ms'])} | | | | | | |"
        )
        lines.append(
            f"| {seed} | ({first}: p50 ms before serving) | "
            f"{json.dumps(out['policies'][first]['latency_p50_ms'])} | | | | | | |"
        )
    lines += [
        "",
        "Real minus simulated success per policy over the seeds above (points): "
        "mean, largest |difference|, seeds within 5 points.",
        "",
        "| policy | vs | mean diff | max abs diff | within 5 points |",
        "|---|---|---|---|---|",
    ]
    report["ray_summary"] = {}
    for label, table in (("sim", diffs), ("sim as seen", diffs_seen)):
        for p, ds in table.items():
            if not ds:
                continue
            arr = np.array(ds)
            within = int((np.abs(arr) <= 5).sum())
            report["ray_summary"].setdefault(label, {})[p] = {
                "mean_diff": float(arr.mean()),
                "max_abs_diff": float(np.abs(arr).max()),
                "within_5": within,
                "seeds": len(ds),
            }
            lines.append(
                f"| {p} | {label} | {arr.mean():+.1f} | {np.abs(arr).max():.1f} | "
                f"{within}/{len(ds)} |"
            )
    lines.append("")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--small-tasks", type=int, default=10)
    parser.add_argument("--no-ray", action="store_true")
    parser.add_argument(
        "--only-ray", action="store_true", help="only section 4, to schedule_ray.md / .json"
    )
    parser.add_argument("--ray-seeds", type=int, default=3, help="seeds 0..N-1 of section 4")
    parser.add_argument(
        "--ray-seed",
        type=int,
        action="append",
        help="serve only this seed (repeatable); the report then lists the cached seeds",
    )
    parser.add_argument(
        "--ray-cache",
        type=Path,
        default=ROOT / "runs" / "schedule_ray",
        help="folder keeping each Ray seed's result (resumable)",
    )
    parser.add_argument("--calibrate", type=int, default=20)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "reports")
    args = parser.parse_args(argv)
    import os

    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [
        "# graphrec schedule: benchmark report",
        "",
        f"Generated by `benchmarks/bench_schedule.py {' '.join(argv or sys.argv[1:])}` on "
        f"{started} (Ray seeds: served at the time each row says), "
        f"{platform.machine()} with {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f} at the start (a shared machine). Latencies: graphrec's "
        "measured dataset "
        "(`graphrec/data/measurements`); accuracies: digits MLPs "
        "(`graphrec.serving.accuracy`), see each workload's `accuracy_source`.",
        "",
    ]
    report: dict[str, Any] = {"seeds": args.seeds, "generated": started}
    t0 = time.perf_counter()
    mark = 0
    if not args.only_ray:
        optimum_gap(args.seeds, args.small_tasks, lines, report)
        print("\n".join(lines), flush=True)
        mark = len(lines)
        kept = sweep(args.seeds, lines, report)
        acceptance(kept, lines, report)
        print("\n".join(lines[mark:]), flush=True)
        mark = len(lines)
    if not args.no_ray:
        wanted = list(range(args.ray_seeds))
        if args.ray_seed:
            for seed in args.ray_seed:  # serve (or read back) just these first
                ray_vs_sim([], {}, [seed], args.calibrate, args.ray_cache)
            wanted = sorted(set(wanted) | set(args.ray_seed))
        ray_vs_sim(
            lines, report, wanted, args.calibrate, args.ray_cache, only_new=bool(args.ray_seed)
        )
        print("\n".join(lines[mark:]), flush=True)
    lines.append(
        f"Total wall time {time.perf_counter() - t0:.0f} s; load average "
        f"{os.getloadavg()[0]:.1f} at the end."
    )
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "schedule_ray" if args.only_ray else "schedule"
    (args.out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    (args.out / f"{stem}.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    print(f"wrote {args.out / stem}.md and .json", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
