"""Benchmark of graphrec automl: augmentation search, staged architecture search,
latency-aware search, against their baselines, over tasks and seeds.

Resumable: each finished (part, task, method, seed) appends one JSON line to
``--results`` (default ``benchmarks/reports/automl.jsonl``); a run skips lines already
there, so it can be stopped at any point and started again. ``--report`` summarises the
file into ``automl.json`` / ``automl.md`` (means, 95 % t-intervals over seeds, paired
differences) without running anything.

Parts:

* ``aug``: per task and seed, the fixed child CNN trained with no augmentation, a
  RandAugment-style policy (N=2, M=0.5), the differentiable search's policy and the
  discrete search's policy (given 10x the differentiable search's CPU time).
* ``nas``: staged search, plain DARTS and random search (given the staged search's CPU
  time), each found genotype trained from scratch at the final depth.
* ``latency``: the staged search without and with the latency term (target: a fraction
  of the first model's predicted latency), both deployed with graphrec recommend and
  measured with graphrec's harness on this machine.

All CPU figures are process CPU seconds with one torch thread; the machine is shared
(other jobs ran at the same time), which inflates wall time but hardly CPU time.

Usage:
    nice -n 19 python benchmarks/bench_automl.py --part aug --tasks digits --seeds 0-4
    python benchmarks/bench_automl.py --report
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

REPORTS = Path(__file__).parent / "reports"

#: Budgets per task. The augmentation part keeps the budgets it was run with first.
#: Architecture part, one rule for every method and task (sized so that the 5-seed x
#: 3-task benchmark fits about an hour of one core): each search gets ``NAS_EPOCHS`` weight
#: epochs over the task's search proxy -- plain DARTS ``NAS_EPOCHS`` epochs at the final
#: depth, the staged search ``NAS_EPOCHS / 4`` epochs in each of its 4 stages, random search
#: the staged search's CPU time with ``proxy_epochs`` per candidate on the same proxy --
#: and every found genotype is trained from scratch on the full training split for
#: ``NAS_FINAL_EPOCHS`` epochs.
BUDGETS: dict[str, dict[str, Any]] = {
    "digits": {"final_epochs": 20, "aug_epochs": 3, "search_fraction": 1.0},
    "mnist1d": {"final_epochs": 15, "aug_epochs": 2, "search_fraction": 0.35},
    "shapes": {"final_epochs": 15, "aug_epochs": 2, "search_fraction": 0.25},
}
#: ``search_fraction``: the search proxy is this fraction of the training and validation
#: splits (a fixed subsample, the same for every method and seed; test is never used by
#: a search): digits 1078 / 359 examples, mnist1d 1050 / 350, shapes 450 / 150.
NAS_EPOCHS = 4
STAGE_EPOCHS = (1, 1, 1, 1)
PROXY_EPOCHS = 1
NAS_FINAL_EPOCHS = 10
SEARCH_BATCH = 128
DEPTH, CHANNELS = 5, 8
LATENCY_FRACTION = 0.75
#: The latency part runs two searches per seed: smaller budgets than the nas part.
LATENCY_STAGES = (1, 1, 1, 1)
LATENCY_FINAL_EPOCHS = 10


def _load(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut by an interruption
    return rows


def _append(path: Path, row: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps(row) + "\n")
        f.flush()


def _find(rows: list[dict[str, Any]], **key: Any) -> dict[str, Any] | None:
    for r in rows:
        if all(r.get(k) == v for k, v in key.items()):
            return r
    return None


def search_proxy(task: Any) -> Any:
    """The fixed subsample of the training and validation splits the searches see."""
    f = BUDGETS[task.name]["search_fraction"]
    return task if f >= 1.0 else task.subsample(f, seed=0)


def _final_nas(task: Any, geno: Any, seed: int, epochs: int) -> tuple[dict[str, Any], Any]:
    import torch

    from graphrec.automl.space import build_network
    from graphrec.automl.train import train_model

    torch.manual_seed(seed)
    net = build_network(geno, task.input_shape, task.n_classes, depth=DEPTH, c=CHANNELS)
    return train_model(net, task, epochs=epochs, seed=seed), net


def run_aug(task: Any, seed: int, rows: list[dict[str, Any]], path: Path) -> None:
    import torch

    from graphrec.automl import augment as aug
    from graphrec.automl.train import small_cnn, train_model

    b = BUDGETS[task.name]
    key = {"part": "aug", "task": task.name, "seed": seed}

    def final(policy: Any) -> dict[str, Any]:
        torch.manual_seed(seed)
        model = small_cnn(task.input_shape, task.n_classes)
        return train_model(model, task, epochs=b["final_epochs"], seed=seed, augment=policy)

    for method in ("none", "randaugment", "differentiable", "discrete"):
        if _find(rows, method=method, **key):
            continue
        search_cpu = 0.0
        if method == "none":
            pol = aug.no_policy()
        elif method == "randaugment":
            pol = aug.randaugment_policy(task.is_1d)
        elif method == "differentiable":
            pol = aug.differentiable_search(task, epochs=b["aug_epochs"], seed=seed)
            search_cpu = float(pol.meta["cpu_s"])
        else:
            diff = _find(rows, method="differentiable", **key)
            assert diff is not None
            pol = aug.discrete_search(
                task, budget_cpu_s=10.0 * diff["search_cpu_s"], seed=seed, child_epochs=2
            )
            search_cpu = float(pol.meta["cpu_s"])
        r = final(pol)
        row = {
            **key,
            "method": method,
            "test_accuracy": r["test_accuracy"],
            "val_accuracy": r["val_accuracy"],
            "search_cpu_s": search_cpu,
            "train_cpu_s": r["cpu_s"],
            "policy": {k: v for k, v in pol.to_dict().items() if k != "meta"},
            "evaluated": pol.meta.get("evaluated"),
        }
        _append(path, row)
        rows.append(row)
        print(f"aug {task.name} seed {seed} {method}: test {r['test_accuracy']:.4f}", flush=True)


def run_nas(task: Any, seed: int, rows: list[dict[str, Any]], path: Path) -> None:
    from graphrec.automl.search import darts_search, default_stages, random_search, staged_search

    key = {"part": "nas", "task": task.name, "seed": seed}
    proxy = search_proxy(task)
    for method in ("staged", "darts", "random"):
        if _find(rows, method=method, **key):
            continue
        if method == "staged":
            res = staged_search(
                proxy,
                seed=seed,
                stages=default_stages(STAGE_EPOCHS),
                c=CHANNELS,
                batch_size=SEARCH_BATCH,
            )
        elif method == "darts":
            res = darts_search(
                proxy,
                seed=seed,
                epochs=NAS_EPOCHS,
                depth=DEPTH,
                c=CHANNELS,
                batch_size=SEARCH_BATCH,
            )
        else:
            st = _find(rows, method="staged", **key)
            assert st is not None
            res = random_search(
                proxy,
                seed=seed,
                budget_cpu_s=st["search_cpu_s"],
                depth=DEPTH,
                c=CHANNELS,
                proxy_epochs=PROXY_EPOCHS,
            )
        r, _ = _final_nas(task, res.genotype, seed, NAS_FINAL_EPOCHS)
        d = res.to_dict()
        row = {
            **key,
            "method": method,
            "test_accuracy": r["test_accuracy"],
            "val_accuracy": r["val_accuracy"],
            "search_cpu_s": res.cpu_s,
            "train_cpu_s": r["cpu_s"],
            "skip_count": d["skip_count"],
            "parameter_free_count": d["parameter_free_count"],
            "genotype": d["genotype"],
            "early_stops": [h.get("early_stop") for h in res.history if h.get("early_stop")],
            "candidates": len(res.history) if method == "random" else None,
        }
        _append(path, row)
        rows.append(row)
        print(
            f"nas {task.name} seed {seed} {method}: test {r['test_accuracy']:.4f}, "
            f"search {res.cpu_s:.0f} CPU-s, skips {d['skip_count']}",
            flush=True,
        )


def run_latency(task: Any, seed: int, rows: list[dict[str, Any]], path: Path) -> None:
    import tempfile

    from graphrec.automl.latency import build_latency_table, deploy, export_onnx
    from graphrec.automl.search import default_stages, staged_search
    from graphrec.automl.space import LIGHT_OPS, Genotype

    key = {"part": "latency", "task": task.name, "seed": seed}
    ref = Genotype(
        normal=[("conv_3x3", i) for _ in range(3) for i in (0, 1)],
        reduce=[("conv_3x3", i) for _ in range(3) for i in (0, 1)],
    )
    table = build_latency_table(
        task.input_shape,
        task.n_classes,
        LIGHT_OPS,
        depth=DEPTH,
        c=CHANNELS,
        reference=ref,
        cache=REPORTS.parent.parent / "runs" / "automl" / "latency_cache.json",
    )
    free = _find(rows, method="free", **key)
    for method in ("free", "target"):
        if _find(rows, method=method, **key):
            continue
        target = measured_target = None
        if method == "target":
            assert free is not None
            # the search works on the table's scale; the check is on the measured scale
            target = LATENCY_FRACTION * free["table_latency_ms"]
            measured_target = LATENCY_FRACTION * free["measured_latency_ms"]
        res = staged_search(
            search_proxy(task),
            seed=seed,
            stages=default_stages(LATENCY_STAGES),
            c=CHANNELS,
            batch_size=SEARCH_BATCH,
            latency_fn=table if target is not None else None,
            latency_target_ms=target,
            latency_weight=2.0,
        )
        r, net = _final_nas(task, res.genotype, seed, LATENCY_FINAL_EPOCHS)
        with tempfile.TemporaryDirectory(prefix="bench-automl-") as tmp:
            onnx_path = export_onnx(net, task.input_shape, Path(tmp) / "model.onnx")
            dep = deploy(onnx_path, "auto", measure=True)
        row = {
            **key,
            "method": method,
            "test_accuracy": r["test_accuracy"],
            "search_cpu_s": res.cpu_s,
            "latency_target_ms": measured_target,
            "table_target_ms": target,
            "table_latency_ms": table.genotype_ms(res.genotype),
            "predicted_latency_ms": dep["predicted_latency_ms"],
            "measured_latency_ms": dep["measured_latency_ms"],
            "measured_status": dep["measured_status"],
            "candidate_id": dep["candidate_id"],
            "genotype": res.genotype.to_dict(),
        }
        _append(path, row)
        rows.append(row)
        if method == "free":
            free = row
        print(
            f"latency {task.name} seed {seed} {method}: test {r['test_accuracy']:.4f}, "
            f"predicted {dep['predicted_latency_ms']:.4f} ms, measured "
            f"{dep['measured_latency_ms']} ms (target {target})",
            flush=True,
        )


#: The collapse check: both searches at COLLAPSE_FACTOR x the nas part's epochs.
COLLAPSE_FACTOR = 5


def run_collapse(task: Any, seed: int, rows: list[dict[str, Any]], path: Path) -> None:
    """Plain DARTS and the staged search at a longer budget (no final training): the
    normal cell's skip connections epoch by epoch (DARTS's collapse grows with the search
    length; at the nas part's 4 epochs there may be none to see)."""
    from graphrec.automl.search import darts_search, default_stages, staged_search

    key = {"part": "collapse", "task": task.name, "seed": seed}
    proxy = search_proxy(task)
    for method in ("darts", "staged"):
        if _find(rows, method=method, **key):
            continue
        if method == "darts":
            res = darts_search(
                proxy,
                seed=seed,
                epochs=COLLAPSE_FACTOR * NAS_EPOCHS,
                depth=DEPTH,
                c=CHANNELS,
                batch_size=SEARCH_BATCH,
            )
        else:
            res = staged_search(
                proxy,
                seed=seed,
                stages=default_stages([COLLAPSE_FACTOR * e for e in STAGE_EPOCHS]),
                c=CHANNELS,
                batch_size=SEARCH_BATCH,
            )
        d = res.to_dict()
        row = {
            **key,
            "method": method,
            "search_cpu_s": res.cpu_s,
            "skip_count": d["skip_count"],
            "parameter_free_count": d["parameter_free_count"],
            "skips_by_epoch": [h["skip_count"] for h in res.history],
            "val_by_epoch": [h["val_accuracy"] for h in res.history],
            "early_stops": [
                (h.get("stage"), h["epoch"], h["early_stop"])
                for h in res.history
                if h.get("early_stop")
            ],
            "genotype": d["genotype"],
        }
        _append(path, row)
        rows.append(row)
        print(
            f"collapse {task.name} seed {seed} {method}: skips by epoch "
            f"{row['skips_by_epoch']}, {res.cpu_s:.0f} CPU-s",
            flush=True,
        )


# ----------------------------------------------------------------------------- report


def _ci(values: list[float]) -> dict[str, Any]:
    from scipy import stats

    a = np.asarray(values, dtype=float)
    n = len(a)
    mean = float(a.mean()) if n else math.nan
    if n < 2:
        return {"n": n, "mean": mean, "ci_low": None, "ci_high": None}
    half = float(stats.t.ppf(0.975, n - 1) * a.std(ddof=1) / math.sqrt(n))
    return {"n": n, "mean": mean, "ci_low": mean - half, "ci_high": mean + half}


def _paired(
    rows: list[dict[str, Any]], part: str, task: str, a: str, b: str, field: str
) -> dict[str, Any]:
    by: dict[str, dict[int, float]] = {a: {}, b: {}}
    for r in rows:
        if r["part"] == part and r["task"] == task and r["method"] in by:
            v = r.get(field)
            if v is not None:
                by[r["method"]][r["seed"]] = float(v)
    seeds = sorted(set(by[a]) & set(by[b]))
    return {**_ci([by[a][s] - by[b][s] for s in seeds]), "seeds": seeds}


def report(results: list[Path]) -> dict[str, Any]:
    rows = [r for f in results for r in _load(f)]
    out: dict[str, Any] = {
        "results": [str(f) for f in results],
        "machine": f"{platform.machine()}, {platform.python_version()}, shared 2-vCPU host",
        "budgets": {
            "tasks": BUDGETS,
            "nas_epochs": NAS_EPOCHS,
            "stage_epochs": list(STAGE_EPOCHS),
            "proxy_epochs": PROXY_EPOCHS,
            "nas_final_epochs": NAS_FINAL_EPOCHS,
            "latency_stages": list(LATENCY_STAGES),
            "latency_final_epochs": LATENCY_FINAL_EPOCHS,
        },
        "tables": {},
        "paired": {},
    }
    lines = [
        "# graphrec automl benchmark",
        "",
        f"From {', '.join(f'`{f.name}`' for f in results)} ({len(rows)} rows), written "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Mean [95 % t-interval] over "
        "seeds; CPU seconds are process CPU time with one torch thread on a 2-vCPU machine "
        "shared with other jobs (wall time was several times longer; CPU time is the cost).",
        "",
    ]
    for part in ("aug", "nas", "latency"):
        prow = [r for r in rows if r["part"] == part]
        if not prow:
            continue
        lines += [
            f"## {part}",
            "",
            "| task | method | seeds | test accuracy | search CPU-s |"
            + (" skips (normal cell) |" if part == "nas" else "")
            + (" predicted ms | measured ms |" if part == "latency" else ""),
            "|---|---|---|---|---|"
            + ("---|" if part == "nas" else "")
            + ("---|---|" if part == "latency" else ""),
        ]
        for task in sorted({r["task"] for r in prow}):
            for method in dict.fromkeys(r["method"] for r in prow if r["task"] == task):
                sel = [r for r in prow if r["task"] == task and r["method"] == method]
                acc = _ci([r["test_accuracy"] for r in sel])
                cpu = _ci([r["search_cpu_s"] for r in sel])
                entry: dict[str, Any] = {"test_accuracy": acc, "search_cpu_s": cpu}
                cell = _fmt(acc, 4)
                extra = ""
                if part == "nas":
                    entry["skip_count"] = _ci([r["skip_count"] for r in sel])
                    extra = f" {_fmt(entry['skip_count'], 2)} |"
                if part == "latency":
                    entry["predicted_latency_ms"] = _ci([r["predicted_latency_ms"] for r in sel])
                    meas = [r["measured_latency_ms"] for r in sel if r["measured_latency_ms"]]
                    entry["measured_latency_ms"] = _ci(meas)
                    entry["meets_target"] = [
                        r["measured_latency_ms"] <= r["latency_target_ms"]
                        for r in sel
                        if r.get("latency_target_ms") and r["measured_latency_ms"]
                    ]
                    extra = (
                        f" {_fmt(entry['predicted_latency_ms'], 4)} |"
                        f" {_fmt(entry['measured_latency_ms'], 4)} |"
                    )
                out["tables"].setdefault(part, {}).setdefault(task, {})[method] = entry
                lines.append(
                    f"| {task} | {method} | {acc['n']} | {cell} | {cpu['mean']:.1f} |{extra}"
                )
        lines.append("")
    pairs = {
        "aug": [
            ("differentiable", "discrete"),
            ("differentiable", "none"),
            ("differentiable", "randaugment"),
        ],
        "nas": [("staged", "random"), ("staged", "darts")],
        "latency": [("target", "free")],
    }
    crow = [r for r in rows if r["part"] == "collapse"]
    if crow:
        lines += [
            f"## collapse (searches at {COLLAPSE_FACTOR}x the nas part's epochs, no final "
            "training)",
            "",
            "| task | method | seed | search CPU-s | skips in the normal cell, by epoch "
            "| early stops (stage, epoch, why) |",
            "|---|---|---|---|---|---|",
        ]
        for r in sorted(crow, key=lambda r: (r["task"], r["method"], r["seed"])):
            lines.append(
                f"| {r['task']} | {r['method']} | {r['seed']} | {r['search_cpu_s']:.0f} | "
                f"{r['skips_by_epoch']} | {r['early_stops'] or '-'} |"
            )
            out["tables"].setdefault("collapse", {}).setdefault(r["task"], {}).setdefault(
                r["method"], []
            ).append(r)
        lines.append("")
    lines += ["## CPU cost of this benchmark (search + training, CPU-minutes)", ""]
    for part in ("aug", "nas", "latency", "collapse"):
        for task in sorted({r["task"] for r in rows if r["part"] == part}):
            sel = [r for r in rows if r["part"] == part and r["task"] == task]
            tot = sum(
                float(r.get("search_cpu_s") or 0) + float(r.get("train_cpu_s") or 0) for r in sel
            )
            out.setdefault("cpu_minutes", {}).setdefault(part, {})[task] = tot / 60
            lines.append(f"* {part} {task}: {tot / 60:.1f} ({len(sel)} rows)")
    lines.append("")
    lines += ["## Paired differences (same seed), test accuracy in points", ""]
    for part, plist in pairs.items():
        for task in sorted({r["task"] for r in rows if r["part"] == part}):
            for a, b in plist:
                d = _paired(rows, part, task, a, b, "test_accuracy")
                if d["n"] == 0:
                    continue
                out["paired"].setdefault(part, {}).setdefault(task, {})[f"{a}-{b}"] = d
                lines.append(f"* {part} {task}: {a} - {b}: {_fmt(d, 2, 100)} (n={d['n']})")
                if part == "nas" and b == "darts":
                    t = _paired(rows, part, task, b, a, "search_cpu_s")
                    ratio = _ratio(rows, part, task, b, a)
                    out["paired"][part][task]["darts/staged search time"] = ratio
                    lines.append(
                        f"  search time DARTS / staged: {_fmt(ratio, 2)} (DARTS - staged "
                        f"{_fmt(t, 0)} CPU-s)"
                    )
                if part == "latency":
                    ratio = _ratio(rows, part, task, a, b, "measured_latency_ms")
                    out["paired"][part][task]["measured latency target/free"] = ratio
                    lines.append(f"  measured latency target / free: {_fmt(ratio, 3)}")
    lines.append("")
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / "automl.json").write_text(json.dumps(out, indent=2))
    (REPORTS / "automl.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return out


def _ratio(
    rows: list[dict[str, Any]], part: str, task: str, a: str, b: str, field: str = "search_cpu_s"
) -> dict[str, Any]:
    va = {
        r["seed"]: r[field] for r in rows if (r["part"], r["task"], r["method"]) == (part, task, a)
    }
    vb = {
        r["seed"]: r[field] for r in rows if (r["part"], r["task"], r["method"]) == (part, task, b)
    }
    seeds = sorted(s for s in set(va) & set(vb) if va[s] and vb[s])
    return _ci([va[s] / vb[s] for s in seeds])


def _fmt(c: dict[str, Any], digits: int, scale: float = 1.0) -> str:
    if c["n"] == 0:
        return "-"
    m = c["mean"] * scale
    if c["ci_low"] is None:
        return f"{m:.{digits}f}"
    return f"{m:.{digits}f} [{c['ci_low'] * scale:.{digits}f}, {c['ci_high'] * scale:.{digits}f}]"


def _seeds(spec: str) -> list[int]:
    out: list[int] = []
    for part in spec.split(","):
        if "-" in part:
            lo, hi = part.split("-")
            out.extend(range(int(lo), int(hi) + 1))
        elif part:
            out.append(int(part))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--part", choices=("aug", "nas", "latency", "collapse"), action="append")
    p.add_argument("--tasks", default="digits,mnist1d,shapes")
    p.add_argument("--seeds", default="0-4", help="e.g. 0-4 or 0,2")
    p.add_argument(
        "--results",
        type=Path,
        action="append",
        help="results file (repeat to read several; rows go to the first; "
        "default benchmarks/reports/automl.jsonl)",
    )
    p.add_argument("--report", action="store_true", help="only summarise the results file")
    args = p.parse_args(argv)
    files = args.results or [REPORTS / "automl.jsonl"]
    if args.report:
        report(files)
        return 0
    import torch

    from graphrec.automl.data import load_task

    torch.set_num_threads(1)
    parts = args.part or ["aug", "nas"]
    tasks = {name: load_task(name) for name in args.tasks.split(",")}
    rows = _load(files[0])
    runners = {"aug": run_aug, "nas": run_nas, "latency": run_latency, "collapse": run_collapse}
    for seed in _seeds(args.seeds):
        for task in tasks.values():
            for part in parts:
                runners[part](task, seed, rows, files[0])
    report(files)
    return 0


if __name__ == "__main__":
    sys.exit(main())
