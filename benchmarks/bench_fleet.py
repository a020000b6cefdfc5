"""Fleet throughput on Ray against the single-machine harness, and store copy figures.

In one run, on the same tiny models, candidates and protocol settings:

* **harness**: :func:`graphrec.bench.harness.run_campaign` in this process, every model
  in one call, into a SQLite store (the single-machine campaign of today);
* **fleet, W workers**: :func:`graphrec.bench.fleet.run_fleet` on a local Ray cluster
  whose node offers W measurement slots (W = 1 .. the cores, or ``--workers``), into a
  PostgreSQL server this script starts (``initdb``/``pg_ctl``, as the tests do), with
  one model per work item and with the models split into W items (``batch``: an item's
  models share the harness's worker processes); W = 1 into SQLite as well (the cost of
  the store backend, apart);
* **store copy** of the shipped campaign (``benchmarks/campaign_snapshot``, schema
  version 1, migrated on the way): SQLite -> PostgreSQL -> SQLite, with the digest
  check.

Figures: measurements per minute (rows / wall time of the run, Ray start-up excluded
and reported apart), their median and min-max over ``--repeat`` runs (each into a fresh
store, so every run measures everything), and the overhead per measurement of each
fleet configuration against the harness (wall time per row minus the harness's, and
the throughput ratio), paired within rounds: each round runs every configuration once,
in a shuffled order, so that they share the machine's state. The conversion cache is warmed first so that no configuration
pays the int8 quantisation alone.

Usage::

    python benchmarks/bench_fleet.py [--models 8] [--repeat 3] [--workers 1,2]

Writes ``benchmarks/reports/fleet.json`` and ``fleet.md``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "bench"))  # the throwaway PostgreSQL server

from pg_server import PgServer, start_server  # noqa: E402

from graphrec.bench.fleet import FleetSettings, node_resources, run_fleet  # noqa: E402
from graphrec.bench.harness import run_campaign  # noqa: E402
from graphrec.bench.protocol import MeasureConfig  # noqa: E402
from graphrec.bench.store import ResultStore, copy_store  # noqa: E402

REPORTS = ROOT / "benchmarks" / "reports"
SHIPPED = ROOT / "benchmarks" / "campaign_snapshot" / "campaign.sqlite.gz"


def make_mlp(path: Path, seed: int) -> Path:
    """A 2-layer MLP on a 1x64 input (a measurement of well under a millisecond)."""
    rng = np.random.default_rng(seed)
    w1 = numpy_helper.from_array(rng.standard_normal((64, 128)).astype(np.float32) * 0.1, "w1")
    w2 = numpy_helper.from_array(rng.standard_normal((128, 8)).astype(np.float32) * 0.1, "w2")
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"]),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("MatMul", ["r", "w2"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        f"mlp{seed}",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])],
        [w1, w2],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _config(max_time: float) -> MeasureConfig:
    return MeasureConfig(
        warmup_runs=2, min_runs=5, max_runs=2000, min_time_s=0.0, max_time_s=max_time
    )


def _stats(values: list[float]) -> dict[str, float]:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def _harness_run(models: list[Path], store: str, cfg: MeasureConfig, cache: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    with ResultStore(store) as s:
        rows = run_campaign(
            models,
            store=s,
            runtimes=["onnxruntime"],
            threads=(1,),
            config=cfg,
            cache_dir=cache,
        )
    wall = time.perf_counter() - t0
    return {"rows": len(rows), "wall_s": wall}


def _fleet_run(
    models: list[Path], store: str, cfg: MeasureConfig, cache: Path, batch: int = 1
) -> dict[str, Any]:
    settings = FleetSettings(
        runtimes=["onnxruntime"], threads=(1,), config=cfg, cache_dir=str(cache)
    )
    t0 = time.perf_counter()
    report = run_fleet(models, store=store, settings=settings, batch=batch, progress=False)
    wall = time.perf_counter() - t0
    if report.failed:
        raise RuntimeError(f"fleet items failed: {report.failed}")
    return {
        "rows": report.rows_added,
        "wall_s": wall,
        "item_s": sum(r.seconds for r in report.results),
        "pids": len({r.pid for r in report.results}),
    }


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    per_min = [r["rows"] / r["wall_s"] * 60.0 for r in runs]
    per_row = [r["wall_s"] / r["rows"] for r in runs]
    return {
        "runs": runs,
        "measurements_per_min": _stats(per_min),
        "s_per_measurement": _stats(per_row),
    }


def bench_throughput(args: argparse.Namespace, server: PgServer, tmp: Path) -> dict[str, Any]:
    import ray

    models = [make_mlp(tmp / f"mlp{i}.onnx", seed=i) for i in range(args.models)]
    cfg = _config(args.max_time)
    cache = tmp / "cache"
    out: dict[str, Any] = {"configs": {}, "ray_start_s": {}}
    # warm the conversion/input/reference cache for everyone
    _harness_run(models, str(tmp / "warm.sqlite"), cfg, cache)

    def fresh_pg() -> str:
        return server.create_database("b_" + uuid.uuid4().hex[:10])

    runs: dict[str, list[dict[str, Any]]] = {}
    paired: dict[str, list[tuple[float, float]]] = {}  # (harness s/row, config s/row)
    rng = random.Random(0)
    for w in args.workers:
        t0 = time.perf_counter()
        for attempt in range(3):  # (Ray gives its raylet 30 s: a loaded machine can miss it)
            try:
                ray.init(
                    num_cpus=max(w, 1),
                    resources=node_resources(w),
                    include_dashboard=False,
                    log_to_driver=False,
                    configure_logging=False,
                )
                break
            except Exception as exc:
                ray.shutdown()
                if attempt == 2:
                    raise
                print(f"ray.init failed ({exc}); again", flush=True)
        out["ray_start_s"][str(w)] = time.perf_counter() - t0
        try:
            # the first tasks of a fresh cluster start Ray's worker processes (imports of
            # graphrec and the runtimes): timed apart, not in the figures
            warm = _fleet_run(models, fresh_pg(), cfg, cache)
            out.setdefault("first_run_s", {})[str(w)] = warm["wall_s"]
            batch = -(-args.models // w)  # one item per worker
            configs: dict[str, Any] = {
                "harness (1 process, SQLite)": lambda i, w=w: _harness_run(
                    models, str(tmp / f"harness-{w}-{i}.sqlite"), cfg, cache
                ),
                f"fleet W={w} (Ray, PostgreSQL), 1 model/item": lambda i: _fleet_run(
                    models, fresh_pg(), cfg, cache
                ),
                f"fleet W={w} (Ray, PostgreSQL), {batch} models/item": lambda i, b=batch: (
                    _fleet_run(models, fresh_pg(), cfg, cache, b)
                ),
            }
            if w == 1:
                configs["fleet W=1 (Ray, SQLite), 1 model/item"] = lambda i: _fleet_run(
                    models, str(tmp / f"fleet-sqlite-{i}.sqlite"), cfg, cache
                )
            for i in range(args.repeat):
                # one run of each configuration per round, in a shuffled order, so that
                # they share the machine's state; ratios are paired within a round
                order = list(configs)
                rng.shuffle(order)
                got = {name: configs[name](i) for name in order}
                base = got["harness (1 process, SQLite)"]
                for name, r in got.items():
                    print(f"round {i} {name}: {r}", flush=True)
                    runs.setdefault(name, []).append(r)
                    paired.setdefault(name, []).append(
                        (base["wall_s"] / base["rows"], r["wall_s"] / r["rows"])
                    )
        finally:
            ray.shutdown()
    for name, rs in runs.items():
        summary = _summary(rs)
        pairs = paired[name]
        summary["overhead_ms_per_measurement_vs_harness"] = statistics.median(
            (c - h) * 1000.0 for h, c in pairs
        )
        summary["throughput_ratio_vs_harness"] = statistics.median(h / c for h, c in pairs)
        out["configs"][name] = summary
    base_runs = runs["harness (1 process, SQLite)"]
    out["models"] = args.models
    out["candidates_per_model"] = base_runs[0]["rows"] // args.models
    out["max_time_s"] = args.max_time
    return out


def bench_copy(args: argparse.Namespace, server: PgServer, tmp: Path) -> dict[str, Any]:
    src = tmp / "campaign.sqlite"
    with gzip.open(SHIPPED, "rb") as fin, src.open("wb") as fout:
        shutil.copyfileobj(fin, fout)
    runs: list[dict[str, Any]] = []
    for i in range(args.repeat):
        url = server.create_database("c_" + uuid.uuid4().hex[:10])
        there = copy_store(src, url)
        back_path = tmp / f"back{i}.sqlite"
        back = copy_store(url, back_path)
        runs.append(
            {
                "rows": there.rows,
                "sqlite_to_pg_s": there.seconds,
                "of_which_migration_s": there.migrate_seconds,
                "pg_to_sqlite_s": back.seconds,
                "identical_there": there.identical,
                "identical_back": back.identical,
                "round_trip_identical": there.source_digest == back.destination_digest,
                "digest": back.destination_digest,
                "migrated_from": there.migrated_from,
            }
        )
        print(f"copy run {i}: {runs[-1]}", flush=True)
        back_path.unlink()
    return {
        "source": str(SHIPPED.relative_to(ROOT)),
        "rows": runs[0]["rows"],
        "runs": runs,
        "sqlite_to_pg_s": _stats([r["sqlite_to_pg_s"] for r in runs]),
        "pg_to_sqlite_s": _stats([r["pg_to_sqlite_s"] for r in runs]),
        "migration_s": _stats([r["of_which_migration_s"] for r in runs]),
        "sqlite_to_pg_rows_per_s": statistics.median(r["rows"] / r["sqlite_to_pg_s"] for r in runs),
        "pg_to_sqlite_rows_per_s": statistics.median(r["rows"] / r["pg_to_sqlite_s"] for r in runs),
        "all_round_trips_identical": all(r["round_trip_identical"] for r in runs),
    }


def _markdown(report: dict[str, Any]) -> str:
    t = report["throughput"]
    lines = [
        "# Fleet throughput and store copy (`benchmarks/bench_fleet.py`)",
        "",
        f"Machine: {report['machine']}. {report['note']}",
        "",
        f"{t['models']} tiny MLPs x {t['candidates_per_model']} onnxruntime candidates "
        f"(1 thread) = {t['models'] * t['candidates_per_model']} measurements per run, "
        f"burst protocol up to {t['max_time_s']} s of timed runs each; "
        f"{report['repeat']} runs per configuration, each into a fresh store.",
        "",
        "| configuration | measurements/min, median (min-max) | s/measurement | "
        "overhead vs harness, ms/measurement (paired median) | throughput vs harness "
        "(paired median) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, s in t["configs"].items():
        m, p = s["measurements_per_min"], s["s_per_measurement"]
        lines.append(
            f"| {name} | {m['median']:.0f} ({m['min']:.0f}-{m['max']:.0f}) | "
            f"{p['median']:.3f} | {s['overhead_ms_per_measurement_vs_harness']:+.0f} | "
            f"{s['throughput_ratio_vs_harness']:.2f}x |"
        )
    starts = ", ".join(f"W={w}: {s:.1f} s" for w, s in t["ray_start_s"].items())
    firsts = ", ".join(f"W={w}: {s:.1f} s" for w, s in t["first_run_s"].items())
    lines += [
        "",
        f"Not in the figures above: Ray start-up ({starts}) and the first run on a fresh "
        f"cluster, which starts Ray's worker processes ({firsts}).",
        "",
    ]
    c = report["copy"]
    lines += [
        f"## `graphrec store copy` of the shipped campaign ({c['source']}, {c['rows']} rows, "
        "schema 1, migrated on the way)",
        "",
        "| direction | seconds, median (min-max) | rows/s |",
        "| --- | --- | --- |",
        f"| SQLite -> PostgreSQL | {c['sqlite_to_pg_s']['median']:.2f} "
        f"({c['sqlite_to_pg_s']['min']:.2f}-{c['sqlite_to_pg_s']['max']:.2f}) | "
        f"{c['sqlite_to_pg_rows_per_s']:.0f} |",
        f"| PostgreSQL -> SQLite | {c['pg_to_sqlite_s']['median']:.2f} "
        f"({c['pg_to_sqlite_s']['min']:.2f}-{c['pg_to_sqlite_s']['max']:.2f}) | "
        f"{c['pg_to_sqlite_rows_per_s']:.0f} |",
        "",
        f"SQLite -> PostgreSQL includes migrating a temporary copy of the schema-1 file "
        f"(median {c['migration_s']['median']:.2f} s; the source file is not touched).",
        "",
        f"Row-set digest identical after every round trip: {c['all_round_trips_identical']} "
        f"(`{c['runs'][0]['digest'][:16]}...`).",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--max-time", type=float, default=0.2)
    parser.add_argument(
        "--workers",
        type=lambda s: [int(x) for x in s.split(",")],
        default=None,
        help="worker counts (default 1..usable cores, at most 8)",
    )
    parser.add_argument("--out", default=str(REPORTS / "fleet"))
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    if args.workers is None:
        args.workers = list(range(1, min(cores, 8) + 1))
    server = start_server()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-fleet-") as d:
            tmp = Path(d)
            report: dict[str, Any] = {
                "machine": f"{platform.node()}, {cores} usable cores, {platform.processor()}",
                "note": (
                    "A shared VM: other jobs ran beside this one, so the spread between runs "
                    "is part of the figure. With W workers the node has W one-core slots "
                    "(W=1: one slot holding every core, as the harness pins)."
                ),
                "repeat": args.repeat,
                "workers": args.workers,
            }
            report["throughput"] = bench_throughput(args, server, tmp)
            report["copy"] = bench_copy(args, server, tmp)
    finally:
        server.cleanup()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    md = _markdown(report)
    out.with_suffix(".md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
