"""Does a recommender trained on two devices rank better, per device, than a one-device one?

The question of the devices issue: the shipped artefact was trained on one CPU. On a
second CPU, is a recommender that also saw measurements of that CPU better than the
one-device artefact, and do the rankings differ between the devices at all?

Method (one run, the same folds for every arm):

* Samples are (model, device) pairs. Only models measured on **both** devices are used,
  so every figure is paired: the same models, the same held-out families.
* Families are split into ``--folds`` groups (:func:`graphrec.dataset.folds.family_folds`).
  For each fold, on the other families:

  * ``one-device``: fitted on the first device's samples only (what ships today);
  * ``two-device``: fitted on both devices' samples;

  and each ranks the held-out families' samples **of each device**, through the same call
  ``graphrec.recommend`` makes (:meth:`Recommender.rank_predictions`).
* Baselines in the same run: the best single candidate on average in each arm's training
  samples of that device (``best-on-average``; for the one-device arm on the second
  device, the first device's), and ``other device's fastest``: the candidate measured
  fastest on the *other* device for the same model (an oracle for one device applied to
  the other: what a perfect one-device ranking would cost on this device).
* A pick is the first candidate of a ranking that was measured on that device (so a
  candidate the campaign did not measure there is skipped for every arm alike); regret is
  ``lat(pick) / lat(fastest measured) - 1`` with a failed pick charged as in
  :func:`graphrec.dataset.samples.regret_matrix`.

Usage::

    nice -n 19 python benchmarks/eval_devices.py --stores graphrec/data/measurements \\
        runs/devices/amd-epyc-f127f524f4.sqlite --model-root runs/zoo-full \\
        --out benchmarks/reports/eval_devices.md
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

ARMS = ("one-device", "two-device")


def _paired(ds: Any, first: str, second: str) -> Any:
    """The samples of models measured (with a fastest candidate) on both devices."""
    by_dev: dict[str, set[str]] = {first: set(), second: set()}
    best = ds.best
    for i, (sha, dev) in enumerate(zip(ds.model_sha256, ds.device_ids, strict=True)):
        if dev in by_dev and best[i] >= 0:
            by_dev[dev].add(sha)
    both = by_dev[first] & by_dev[second]
    keep = [
        i
        for i, (sha, dev) in enumerate(zip(ds.model_sha256, ds.device_ids, strict=True))
        if sha in both and dev in by_dev
    ]
    return ds.subset(np.asarray(keep, dtype=np.int64))


def evaluate(
    ds: Any,
    first: str,
    second: str,
    *,
    folds: int,
    seed: int,
    params: dict[str, Any],
    progress: Any = print,
) -> dict[str, Any]:
    """Per-sample picks and regrets of every arm and baseline (see the module docstring)."""
    from graphrec.dataset.folds import family_folds
    from graphrec.dataset.samples import first_measured, regret_matrix
    from graphrec.recommender.baselines import BestOnAverage
    from graphrec.recommender.estimator import Recommender

    n = len(ds)
    regret = regret_matrix(ds.log_latency_ms, ds.deployable)
    dev = np.asarray(ds.device_ids)
    sha = np.asarray(ds.model_sha256)
    pick: dict[str, np.ndarray] = {
        name: np.full(n, -1, dtype=np.int64)
        for name in (*ARMS, "best-on-average one-device", "best-on-average two-device")
    }
    pick["other device's fastest"] = np.full(n, -1, dtype=np.int64)
    pred_ms: dict[str, np.ndarray] = {a: np.full(n, np.nan) for a in ARMS}
    # The other device's measured order of the same model.
    index = {(s, d): i for i, (s, d) in enumerate(zip(sha, dev, strict=True))}
    for i in range(n):
        j = index[(sha[i], second if dev[i] == first else first)]
        lat = np.where(ds.deployable[j] == 1, ds.log_latency_ms[j], np.inf)
        lat = np.where(np.isnan(lat), np.inf, lat)
        pick["other device's fastest"][i] = first_measured(
            np.argsort(lat, kind="stable"), regret[i]
        )
    fold_tests = family_folds(ds.families, folds, seed)
    walls: list[float] = []
    for fi, test in enumerate(fold_tests):
        t0 = time.perf_counter()
        train = np.setdiff1d(np.arange(n), test)
        train_by_arm = {
            "one-device": train[dev[train] == first],
            "two-device": train,
        }
        te = ds.subset(test)
        for arm, tr_idx in train_by_arm.items():
            tr = ds.subset(tr_idx)
            rec = Recommender(**{"seed": seed, **params}).fit(tr)
            pred, proba = rec.predict(te)
            lat_ms = np.exp(np.clip(pred.log_latency_ms, -30.0, 30.0))
            for k, (i, r) in enumerate(zip(test, rec.rank_predictions(pred, proba), strict=True)):
                pick[arm][i] = first_measured(r.order, regret[i])
                pred_ms[arm][i] = lat_ms[k, pick[arm][i]]
            for d in (first, second):
                # Best on average over this arm's training samples of device d (the
                # one-device arm knows only the first device's).
                src = tr_idx[dev[tr_idx] == (d if arm == "two-device" else first)]
                avg = BestOnAverage().fit_regret(regret[src])
                for i in test[dev[test] == d]:
                    pick[f"best-on-average {arm}"][i] = first_measured(avg.order_, regret[i])
        walls.append(time.perf_counter() - t0)
        progress(
            f"fold {fi + 1}/{len(fold_tests)}: held out {sorted(set(te.families))} "
            f"({len(test)} samples), {walls[-1]:.0f} s"
        )
    return {
        "regret": regret,
        "pick": pick,
        "pred_ms": pred_ms,
        "device": dev,
        "families": np.asarray(ds.families),
        "sha": sha,
        "best": ds.best,
        "log_latency_ms": ds.log_latency_ms,
        "wall_s": walls,
        "folds": [sorted(set(np.asarray(ds.families)[t])) for t in fold_tests],
    }


def summarise(
    res: dict[str, Any], first: str, second: str, candidates: list[str]
) -> dict[str, Any]:
    """Per device and method: mean / median regret (family-bootstrap interval), top-1."""
    from graphrec.recommender.evaluate import cluster_bootstrap

    regret, dev, fam = res["regret"], res["device"], res["families"]
    out: dict[str, Any] = {"devices": {}}
    for d in (first, second):
        rows = np.flatnonzero(dev == d)
        per: dict[str, Any] = {}
        for name, p in res["pick"].items():
            r = regret[rows, p[rows]]
            per[name] = {
                "mean_regret": cluster_bootstrap(r, fam[rows], np.mean),
                "median_regret": float(np.median(r)),
                "top1": float(np.mean(r <= 1e-9)),
                "n": len(rows),
            }
        for arm in ARMS:
            p = res["pick"][arm][rows]
            meas = np.exp(res["log_latency_ms"][rows, p])
            ape = np.abs(res["pred_ms"][arm][rows] - meas) / meas
            ok = np.isfinite(ape)
            per[arm]["pick_latency_median_error"] = float(np.median(ape[ok])) if ok.any() else None
            per[arm]["pick_latency_within_10"] = (
                float(np.mean(ape[ok] <= 0.10)) if ok.any() else None
            )
        out["devices"][d] = per
    # Do the devices differ? Same model, fastest measured candidate on each device.
    sha = res["sha"]
    best = res["best"]
    first_rows = {s: i for i, (s, d) in enumerate(zip(sha, dev, strict=True)) if d == first}
    second_rows = {s: i for i, (s, d) in enumerate(zip(sha, dev, strict=True)) if d == second}
    models = sorted(set(first_rows) & set(second_rows))
    fastest_differs = [best[first_rows[s]] != best[second_rows[s]] for s in models]
    pick_two = res["pick"]["two-device"]
    pick_one = res["pick"]["one-device"]
    out["models"] = len(models)
    out["fastest_differs"] = float(np.mean(fastest_differs))
    out["two_device_pick_differs"] = float(
        np.mean([pick_two[first_rows[s]] != pick_two[second_rows[s]] for s in models])
    )
    out["one_device_pick_differs"] = float(
        np.mean([pick_one[first_rows[s]] != pick_one[second_rows[s]] for s in models])
    )
    # Paired difference on the second device, per model: one-device - two-device regret.
    rows = np.flatnonzero(dev == second)
    diff = regret[rows, pick_one[rows]] - regret[rows, pick_two[rows]]
    out["second_device_paired_diff"] = cluster_bootstrap(diff, res["families"][rows], np.mean)
    rows = np.flatnonzero(dev == first)
    diff = regret[rows, pick_one[rows]] - regret[rows, pick_two[rows]]
    out["first_device_paired_diff"] = cluster_bootstrap(diff, res["families"][rows], np.mean)
    # What each device's fastest choice is, counted.
    out["fastest_counts"] = {
        d: _counts([candidates[best[i]] for i in np.flatnonzero(dev == d)]) for d in (first, second)
    }
    return out


def _counts(names: list[str]) -> dict[str, int]:
    c: dict[str, int] = {}
    for x in names:
        c[x] = c.get(x, 0) + 1
    return dict(sorted(c.items(), key=lambda kv: -kv[1])[:6])


def _pct(x: dict[str, float] | float | None) -> str:
    if x is None:
        return "-"
    if isinstance(x, dict):
        return f"{100 * x['value']:.1f} % [{100 * x['low']:.1f}, {100 * x['high']:.1f}]"
    return f"{100 * x:.1f} %"


def markdown(report: dict[str, Any]) -> str:
    """The report as Markdown."""
    s = report["summary"]
    first, second = report["first"], report["second"]
    lines = [
        "# Two devices: a two-device recommender against the one-device one",
        "",
        f"Stores: {', '.join(report['stores'])}. Devices: `{first}` (first: the shipped "
        f"artefact's) and `{second}` (second). {s['models']} models measured on both, "
        f"{len(report['families'])} families, {report['folds']}-fold leave-families-out, "
        f"{report['wall_s']:.0f} s; {len(report['candidates'])} candidates "
        f"(precision {report['params']['precision']}). Intervals: 95 % bootstrap over families. "
        f"Written {report['written']}.",
        "",
    ]
    for d in (first, second):
        lines += [
            f"## On `{d}`",
            "",
            "| method | mean regret | median | top-1 | pick latency: median error | within ±10 % |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for name, m in s["devices"][d].items():
            lines.append(
                f"| {name} | {_pct(m['mean_regret'])} | {_pct(m['median_regret'])} | "
                f"{_pct(m['top1'])} | {_pct(m.get('pick_latency_median_error'))} | "
                f"{_pct(m.get('pick_latency_within_10'))} |"
            )
        lines.append("")
    lines += [
        "## Do the devices differ?",
        "",
        f"* The fastest measured choice differs between the devices for "
        f"{_pct(s['fastest_differs'])} of the models.",
        f"* The two-device recommender picks differently per device for "
        f"{_pct(s['two_device_pick_differs'])} of the models; the one-device one for "
        f"{_pct(s['one_device_pick_differs'])}.",
        f"* Paired, one-device minus two-device regret: on `{second}` "
        f"{_pct(s['second_device_paired_diff'])}, on `{first}` "
        f"{_pct(s['first_device_paired_diff'])} (positive: the two-device one is better).",
        "",
        "Fastest choice per device (most frequent):",
        "",
    ]
    for d, c in s["fastest_counts"].items():
        lines.append(f"* `{d}`: " + ", ".join(f"{k} {v}" for k, v in c.items()))
    lines += [
        "",
        "Folds (held-out families): " + "; ".join(", ".join(f) for f in report["fold_families"]),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Command line (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stores", nargs="+", required=True, help="results stores / dataset folders")
    ap.add_argument("--model-root", default="runs/zoo-full")
    ap.add_argument("--first", default=None, help="the one-device artefact's device id")
    ap.add_argument("--second", default=None, help="the other device id")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=120)
    ap.add_argument("--particles", type=int, default=8)
    ap.add_argument("--pso-iterations", type=int, default=6)
    ap.add_argument(
        "--precision",
        default="fp32",
        help="candidate precisions ranked (default fp32: what recommend ranks by default; 'all')",
    )
    ap.add_argument("--out", default="benchmarks/reports/eval_devices.md")
    args = ap.parse_args(argv)

    from graphrec.dataset.samples import RecDataset
    from graphrec.runtimes.base import Candidate

    # Models of the first device's dataset that were not generated here are skipped (only
    # models measured on both devices are used anyway).
    warnings.filterwarnings("ignore", message=".*model file not found.*")

    t0 = time.perf_counter()
    ds = RecDataset.from_stores(args.stores, model_root=args.model_root)
    if args.precision != "all":
        # What `recommend` ranks by default: exact choices only (lossy ones are opt-in).
        keep = [
            c for c in ds.candidates if Candidate.parse(c).precision in args.precision.split(",")
        ]
        ds = RecDataset.from_stores(args.stores, model_root=args.model_root, candidates=keep)
    devs = sorted(set(ds.device_ids), key=lambda d: -ds.device_ids.count(d))
    if len(devs) < 2:
        print(f"eval_devices: the stores hold one device only ({devs})", file=sys.stderr)
        return 1
    if args.first is None:
        # The shipped artefact's (first) training device, when it is one of them.
        meta = json.loads(
            (Path(__file__).parent.parent / "graphrec/data/recommender/meta.json").read_text()
        )
        shipped = [d for d in meta.get("info", {}).get("device_ids", []) if d in devs]
        args.first = shipped[0] if shipped else devs[0]
    first = args.first
    second = args.second or next(d for d in devs if d != first)
    ds = _paired(ds, first, second)
    print(f"{len(ds)} samples ({len(ds) // 2} models on both {first} and {second})", flush=True)
    params = {
        "medn_params": {"epochs": args.epochs},
        "head_params": {"n_particles": args.particles, "n_pso_iterations": args.pso_iterations},
    }
    res = evaluate(ds, first, second, folds=args.folds, seed=args.seed, params=params)
    summary = summarise(res, first, second, ds.candidates)
    report = {
        "stores": [str(s) for s in args.stores],
        "first": first,
        "second": second,
        "families": sorted(set(ds.families)),
        "candidates": list(ds.candidates),
        "folds": args.folds,
        "fold_families": res["folds"],
        "params": vars(args),
        "wall_s": time.perf_counter() - t0,
        "written": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "summary": summary,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(markdown(report), encoding="utf-8")
    out.with_suffix(".json").write_text(
        json.dumps(report, indent=1, default=float), encoding="utf-8"
    )
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
