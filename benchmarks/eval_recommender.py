"""Leave-families-out evaluation of the recommender against baselines, in one run.

Grouped cross-validation (:mod:`graphrec.recommender.evaluate`): the architecture families
are split into ``--folds`` groups; each fold fits a :class:`graphrec.recommender.Recommender`
on the other families and ranks the held-out ones through the same call that
``graphrec.recommend`` makes, so every figure is for the path users run and for
architectures the models never saw. Headline figures carry 95 % bootstrap intervals that
resample whole families.

Methods, metrics and baselines: see :mod:`graphrec.recommender.evaluate`. Besides them this
script reports cold-start error, deployability precision / recall, calibration of the
predicted expected loss, the measurement noise floor, and the wall time of
``graphrec.recommend`` against the harness wall time of an exhaustive benchmark.

Usage::

    python benchmarks/eval_recommender.py --data graphrec/data/measurements --model-root runs/zoo \
        --out benchmarks/reports/eval_recommender.md
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

#: Methods broken down per family and per sample in the report.
_FAMILY_METHODS = ("graphrec", "medn", "catboost_plain", "best_on_average", "flops_rule")


def noise_floor(stores: list[str]) -> dict[str, Any]:
    """What repeated measurements of the same pair agree on: the ceiling of any predictor.

    From every (model, candidate, device) measured in several rounds (fresh processes):
    the share of rounds within ±10 % of the series median (overall and per thread count),
    and, for models whose candidates all have two rounds, how often the fastest of round
    0 is the fastest of round 1 and the mean regret of that pick measured in round 1.
    """
    from collections import defaultdict
    from pathlib import Path

    from graphrec.dataset.samples import _read_store

    raw: dict[tuple[str, str, str], list[tuple[int, float]]] = defaultdict(list)
    for st in stores:
        rows, _m, _d = _read_store(Path(st))
        for r in rows:
            if r["status"] == "ok" and r["p50_ms"]:
                raw[(r["model_sha256"], r["candidate_id"], r["device_id"])].append(
                    (int(r.get("round") or 0), float(r["p50_ms"]))
                )
    # Each series in round order.
    series = {k: [x for _, x in sorted(v)] for k, v in raw.items()}
    out: dict[str, Any] = {"series": 0}
    by_t: dict[str, list[float]] = defaultdict(list)
    for (_sha, cid, _dev), v in series.items():
        if len(v) < 2:
            continue
        med = float(np.median(v))
        t = cid.rsplit("threads=", 1)[-1] if "threads=" in cid else "1"
        by_t[t] += [abs(x / med - 1.0) for x in v]
        out["series"] += 1
    if not by_t:
        return out
    allv = np.concatenate([np.asarray(x) for x in by_t.values()])
    out["within_10pct"] = float((allv <= 0.10).mean())
    out["within_10pct_by_threads"] = {
        t: float((np.asarray(x) <= 0.10).mean()) for t, x in sorted(by_t.items())
    }
    per_model: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(dict)
    for (sha, cid, dev), v in series.items():
        per_model[(sha, dev)][cid] = v
    hits, regrets = [], []
    sub_hits: list[bool] = []
    sub_regrets: list[float] = []
    sub_sizes: list[int] = []
    for cands in per_model.values():
        if len(cands) >= 2 and min(len(v) for v in cands.values()) >= 2:
            ids = sorted(cands)
            r0 = np.array([cands[c][0] for c in ids])
            r1 = np.array([cands[c][1] for c in ids])
            pick = int(np.argmin(r0))
            hits.append(pick == int(np.argmin(r1)))
            regrets.append(float(r1[pick] / r1.min() - 1.0))
        # The candidates of this model measured in 3+ rounds (the re-measured contenders):
        # pick the fastest by one round, score the pick on each other round.
        rep = sorted(c for c, v in cands.items() if len(v) >= 3)
        if len(rep) >= 2:
            sub_sizes.append(len(rep))
            k = min(len(cands[c]) for c in rep)
            m = np.array([cands[c][:k] for c in rep])  # [candidates, rounds]
            for a in range(k):
                for b in range(k):
                    if a != b:
                        pick = int(np.argmin(m[:, a]))
                        sub_hits.append(pick == int(np.argmin(m[:, b])))
                        sub_regrets.append(float(m[pick, b] / m[:, b].min() - 1.0))
    if hits:
        out["remeasure_models"] = len(hits)
        out["remeasure_top1"] = float(np.mean(hits))
        out["remeasure_mean_regret"] = float(np.mean(regrets))
    if sub_hits:
        out["repeated_subset"] = {
            "pairs": len(sub_hits),
            "models": len(sub_sizes),
            "modal_candidates": int(np.bincount(sub_sizes).argmax()),
            "top1": float(np.mean(sub_hits)),
            "mean_regret": float(np.mean(sub_regrets)),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", nargs="+", required=True, help="results stores or dataset folders")
    ap.add_argument("--model-root", default=None, help="folder with the model files (zoo)")
    ap.add_argument("--out", default="benchmarks/reports/eval_recommender.md")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=120)
    ap.add_argument("--particles", type=int, default=8)
    ap.add_argument("--pso-iterations", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--alpha", default="auto", help="blend weight, or 'auto' (fitted)")
    ap.add_argument("--inner-folds", type=int, default=3, help="folds to fit alpha")
    ap.add_argument(
        "--candidates",
        action="append",
        metavar="PATTERN",
        help="evaluate on candidates matching these shell patterns only (e.g. '*threads=1')",
    )
    ap.add_argument(
        "--latency-weight", type=float, default=0.5, help="weight of MEDN in the latency average"
    )
    ap.add_argument("--timing-models", type=int, default=10, help="models timed per fold 0")
    ap.add_argument("--bootstrap", type=int, default=2000, help="bootstrap draws for intervals")
    args = ap.parse_args(argv)

    import torch

    from graphrec.dataset.samples import RecDataset
    from graphrec.recommender.evaluate import leave_family_out, summarise

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    ds_all = RecDataset.from_stores(args.data, model_root=args.model_root)
    if args.candidates:
        import fnmatch

        keep = [c for c in ds_all.candidates if any(fnmatch.fnmatch(c, p) for p in args.candidates)]
        ds_all = RecDataset.from_stores(args.data, candidates=keep, model_root=args.model_root)
    ds = ds_all.subset(np.flatnonzero(ds_all.best >= 0))
    n, c = ds.log_latency_ms.shape
    print(
        f"dataset: {n} samples, {len(set(ds.model_sha256))} models, {len(set(ds.families))} "
        f"families, {len(set(ds.device_ids))} device(s), {c} candidates "
        f"({time.perf_counter() - t0:.1f} s to load)",
        flush=True,
    )
    params = {
        "medn_params": {"epochs": args.epochs},
        "head_params": {"n_particles": args.particles, "n_pso_iterations": args.pso_iterations},
        "alpha": args.alpha if args.alpha == "auto" else float(args.alpha),
        "inner_folds": args.inner_folds,
        "latency_weight": args.latency_weight,
    }
    res = leave_family_out(
        ds, folds=args.folds, seed=args.seed, params=params, progress=lambda s: print(s, flush=True)
    )
    summary = summarise(res, n_boot=args.bootstrap, seed=args.seed)
    ds, regret, best, chosen = res.dataset, res.regret, res.best, res.chosen
    rows = np.arange(len(ds))
    latency: dict[str, Any] = dict(summary["latency"])
    lat_true = ds.log_latency_ms
    ok = (ds.deployable == 1) & ~np.isnan(lat_true)
    cold_ok = ~np.isnan(ds.log_cold_start_ms) & ~np.isnan(res.pred_log_cold)
    cold_ape = np.abs(np.exp(res.pred_log_cold[cold_ok] - ds.log_cold_start_ms[cold_ok]) - 1.0)
    dep_m = ~np.isnan(ds.deployable)
    y_fail = ds.deployable[dep_m] == 0
    p_fail = res.pred_p_deployable[dep_m] < 0.5
    tp = int((y_fail & p_fail).sum())
    latency.update(
        {
            "cold_pairs": int(cold_ok.sum()),
            "cold_mape": float(cold_ape.mean()) if len(cold_ape) else float("nan"),
            "cold_median_ape": float(np.median(cold_ape)) if len(cold_ape) else float("nan"),
            "fail_pairs": int(y_fail.sum()),
            "fail_precision": tp / max(int(p_fail.sum()), 1),
            "fail_recall": tp / max(int(y_fail.sum()), 1),
            "deploy_precision": float(((~y_fail) & (~p_fail)).sum() / max(int((~p_fail).sum()), 1)),
            "deploy_recall": float(((~y_fail) & (~p_fail)).sum() / max(int((~y_fail).sum()), 1)),
        }
    )
    # Accuracy per thread count (the second vCPU of a shared 2-vCPU machine is noisy).
    thr = np.array(
        [cid.rsplit("threads=", 1)[-1] if "threads=" in cid else "1" for cid in ds.candidates]
    )
    by_threads = {}
    for t in sorted(set(thr)):
        m = ok & (thr == t)[None, :]
        a = np.abs(np.exp(res.pred_log_latency[m] - lat_true[m]) - 1.0)
        if len(a):
            by_threads[t] = {
                "pairs": int(m.sum()),
                "median_ape": float(np.median(a)),
                "within_10pct": float((a <= 0.10).mean()),
            }
    latency["by_threads"] = by_threads
    realised = regret[rows, chosen["graphrec"]]
    cal = ~np.isnan(res.pick_expected_loss)
    latency["calibration"] = {
        "pred_expected_loss_mean": float(np.mean(res.pick_expected_loss[cal])),
        "pred_expected_loss_median": float(np.median(res.pick_expected_loss[cal])),
        "realised_regret_mean": float(np.mean(realised[cal])),
        "realised_regret_median": float(np.median(realised[cal])),
        "pred_p_fastest_mean": float(np.nanmean(res.pick_p_fastest)),
        "realised_top1": float(np.mean(chosen["graphrec"] == best)),
    }
    latency["noise_floor"] = noise_floor(list(args.data))
    timing: dict[str, Any] = {}
    if args.timing_models > 0 and res.fitted:
        te = ds.subset(res.folds[0])
        rec_times, rec_models = time_recommend(res.fitted[0], te, args.timing_models)
        walls = [
            float(ds.measure_wall_s[ds.model_paths.index(p)])
            for p in rec_models
            if p in ds.model_paths
        ]
        timing = {
            "models": len(rec_times),
            "recommend_median_ms": 1000 * float(np.median(rec_times)),
            "exhaustive_bench_median_s": float(np.median(walls)) if walls else float("nan"),
        }
        if walls:
            timing["speedup"] = timing["exhaustive_bench_median_s"] / (
                timing["recommend_median_ms"] / 1000
            )
    # Per family and per sample, so a reader can see where the regret comes from.
    by_family: dict[str, dict[str, float]] = {}
    fam = np.array(ds.families)
    for f in sorted(set(ds.families)):
        idx = np.flatnonzero(fam == f)
        by_family[f] = {"samples": len(idx)}
        for m in _FAMILY_METHODS:
            if (chosen[m][idx] >= 0).all():
                by_family[f][m] = float(np.mean(regret[idx, chosen[m][idx]]))
    per_sample = [
        {
            "model": ds.model_names[i],
            "family": ds.families[i],
            "best": ds.candidates[int(best[i])],
            **{
                m: [ds.candidates[int(chosen[m][i])], round(float(regret[i, chosen[m][i]]), 4)]
                for m in _FAMILY_METHODS
                if chosen[m][i] >= 0
            },
        }
        for i in range(len(ds))
    ]
    report = {
        "data": [str(p) for p in args.data],
        "samples": len(ds),
        "models": len(set(ds.model_sha256)),
        "families": sorted(set(ds.families)),
        "devices": sorted(set(ds.device_ids)),
        "candidates": ds.candidates,
        "folds": len(res.folds),
        "params": vars(args),
        "methods": summary["methods"],
        "latency": latency,
        "timing": timing,
        "fold_fits": res.fold_info,
        "by_family": by_family,
        "per_sample": per_sample,
        "wall_s": time.perf_counter() - t0,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    md = render(report, regret, chosen, best, out)
    out.write_text(md)
    print(md)
    return 0


def time_recommend(rec: Any, te: Any, k: int) -> tuple[list[float], list[str]]:
    """Median-of-3 warm wall time of graphrec.recommend on up to ``k`` held-out models."""
    from graphrec.api import recommend
    from graphrec.device import DeviceProfile

    times: list[float] = []
    paths: list[str] = []
    with tempfile.TemporaryDirectory() as d:
        rec.save(d)
        seen: set[str] = set()
        for i, p in enumerate(te.model_paths):
            if p in seen or len(paths) >= k:
                continue
            seen.add(p)
            dev = DeviceProfile.from_dict(te.device_profiles[te.device_ids[i]])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                recommend(p, dev, artefact=d)  # warm-up (artefact load, imports)
                ts = []
                for _ in range(3):
                    t = time.perf_counter()
                    recommend(p, dev, artefact=d)
                    ts.append(time.perf_counter() - t)
            times.append(float(np.median(ts)))
            paths.append(p)
    return times, paths


def _noise_line(nf: dict[str, Any]) -> str:
    if not nf.get("series"):
        return "* measurement repeatability: no repeated rounds in the data"
    per = ", ".join(
        f"threads={t} {100 * v:.1f} %" for t, v in nf.get("within_10pct_by_threads", {}).items()
    )
    line = (
        f"* the ceiling — repeat measurements of the same pair in fresh processes "
        f"({nf['series']} series): within ±10 % of their median {100 * nf['within_10pct']:.1f} % "
        f"({per})"
    )
    if "remeasure_models" in nf:
        line += (
            f"; picking by one exhaustive benchmark and re-measuring ({nf['remeasure_models']} "
            f"models): top-1 {100 * nf['remeasure_top1']:.1f} %, mean regret "
            f"{100 * nf['remeasure_mean_regret']:.1f} %"
        )
    rs = nf.get("repeated_subset")
    if rs:
        line += (
            f"; among each model's candidates measured in 3+ rounds ({rs['models']} models, "
            f"mostly {rs['modal_candidates']} candidates), picking the fastest by one round "
            f"and re-measuring it in another ({rs['pairs']} round pairs): top-1 "
            f"{100 * rs['top1']:.1f} %, mean regret {100 * rs['mean_regret']:.1f} %"
        )
    return line


def _ci(v: dict[str, float], *, pct: bool = True, signed: bool = False) -> str:
    """``value [low, high]`` of a :func:`~graphrec.recommender.evaluate.cluster_bootstrap`."""
    k = 100.0 if pct else 1.0
    unit = " %" if pct else ""
    d = 1 if pct else 3
    sg = "+" if signed else ""
    return f"{k * v['value']:{sg}.{d}f}{unit} [{k * v['low']:{sg}.{d}f}, {k * v['high']:{sg}.{d}f}]"


def render(
    report: dict[str, Any],
    regret: np.ndarray,
    chosen: dict[str, np.ndarray],
    best: np.ndarray,
    out: Path,
) -> str:
    lines = [
        "# Recommender evaluation (leave families out)",
        "",
        f"Data: {', '.join(report['data'])} — {report['samples']} samples, {report['models']} "
        f"models, {len(report['families'])} families, {len(report['devices'])} device(s), "
        f"{len(report['candidates'])} candidates; {report['folds']}-fold grouped CV by family; "
        f"{report['wall_s']:.0f} s. Figures: value [95 % interval, bootstrap over families].",
        "",
        "| method | top-1 | mean regret | vs best-on-average (paired) | p90 regret | max regret "
        "| NDCG@3 |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for m, r in report["methods"].items():
        nd = "–" if r["ndcg3"] is None else _ci(r["ndcg3"], pct=False)
        diff = r.get("regret_minus_best_on_average")
        dv = "–" if diff is None else _ci(diff, signed=True)
        lines.append(
            f"| {m} | {_ci(r['top1'])} | {_ci(r['mean_regret'])} | {dv} | "
            f"{_ci(r['p90_regret'])} | {100 * r['max_regret']:.0f} % | {nd} |"
        )
    la = report["latency"]
    lines += [
        "",
        "Regret = latency(choice) / latency(best) − 1 (a failing choice costs max(worst, 100 %)).",
        "",
        "## Latency model on held-out families",
        "",
        f"* warm latency (MEDN + pooled regressor average) over {la['pairs']} (model, "
        f"candidate) pairs: MAPE {100 * la['mape']:.1f} %, median APE "
        f"{_ci(la['median_ape'])}, within ±10 %: {_ci(la['within_10pct'])}, "
        f"within ±25 %: {_ci(la['within_25pct'])}",
        f"* the parts alone: MEDN median APE {100 * la['medn_median_ape']:.1f} %, within ±10 % "
        f"{100 * la['medn_within_10pct']:.1f} %; pooled regressor median APE "
        f"{100 * la.get('gbdt_median_ape', float('nan')):.1f} %, within ±10 % "
        f"{100 * la.get('gbdt_within_10pct', float('nan')):.1f} %",
        *(
            f"* threads={t}: {v['pairs']} pairs, median APE {100 * v['median_ape']:.1f} %, "
            f"within ±10 % {100 * v['within_10pct']:.1f} %"
            for t, v in la.get("by_threads", {}).items()
        ),
        _noise_line(la.get("noise_floor") or {}),
        *(
            [
                f"* calibration of the recommended choice: predicted expected loss mean "
                f"{100 * ca['pred_expected_loss_mean']:.1f} % (median "
                f"{100 * ca['pred_expected_loss_median']:.1f} %) vs realised regret mean "
                f"{100 * ca['realised_regret_mean']:.1f} % (median "
                f"{100 * ca['realised_regret_median']:.1f} %); predicted P(fastest) mean "
                f"{ca['pred_p_fastest_mean']:.2f} vs realised top-1 {ca['realised_top1']:.2f}"
            ]
            if (ca := la.get("calibration"))
            else []
        ),
        f"* cold start over {la['cold_pairs']} pairs: MAPE {100 * la['cold_mape']:.1f} %, "
        f"median APE {100 * la['cold_median_ape']:.1f} %",
        f"* deployability: {la['fail_pairs']} failing pairs; failure precision "
        f"{100 * la['fail_precision']:.0f} %, recall {100 * la['fail_recall']:.0f} %; "
        f"deployable precision {100 * la['deploy_precision']:.1f} %, recall "
        f"{100 * la['deploy_recall']:.1f} %",
    ]
    bf = report.get("by_family") or {}
    if bf:
        ms = [m for m in _FAMILY_METHODS if all(m in v for v in bf.values())]
        lines += [
            "",
            "## Mean regret per held-out family",
            "",
            "| family | samples | " + " | ".join(ms) + " |",
            "|---|---:|" + "---:|" * len(ms),
        ]
        order = sorted(bf, key=lambda f: -bf[f].get("best_on_average", 0.0))
        for f in order:
            v = bf[f]
            cells = " | ".join(f"{100 * v[m]:.1f} %" for m in ms)
            lines.append(f"| {f} | {v['samples']} | {cells} |")
    ff = report.get("fold_fits") or []
    if ff:
        lines += [
            "",
            "## Fitted per outer fold",
            "",
            "* blend weight alpha (fitted on inner out-of-fold log latency ratio): "
            + ", ".join(f"{f['alpha']:g}" for f in ff),
            "* PSO point accepted (beat the better of the heuristic and plain points by "
            "> 1 SE on inner folds): "
            + ", ".join(
                "yes" if f["pso_accepted"] else f"no (kept {f.get('pso_fallback')})" for f in ff
            ),
            "* head's class-balance exponent / sample-weight exponent: "
            + ", ".join(
                f"{f['head_params'].get('class_balance', 1.0):.2f} / "
                f"{f['head_params'].get('sample_weight_power', 1.0):.2f}"
                for f in ff
                if f.get("head_params")
            ),
        ]
    tm = report["timing"]
    if tm:
        lines += [
            "",
            "## Time to answer",
            "",
            f"* `graphrec.recommend` warm, median over {tm['models']} held-out models: "
            f"{tm['recommend_median_ms']:.1f} ms",
            f"* exhaustive benchmark of all candidates (harness wall time), median: "
            f"{tm['exhaustive_bench_median_s']:.1f} s"
            + (f" → {tm['speedup']:.0f}× faster" if "speedup" in tm else ""),
        ]
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        rows = np.arange(len(best))
        for m in ("graphrec", "pso_w_catboost", "catboost_plain", "best_on_average", "flops_rule"):
            if (chosen[m] >= 0).all():
                r = np.sort(regret[rows, chosen[m]])
                ax.plot(100 * r, np.linspace(0, 1, len(r)), label=m)
        ax.set_xscale("symlog")
        ax.set_xlabel("latency regret (%)")
        ax.set_ylabel("share of samples")
        ax.legend()
        fig.tight_layout()
        png = out.with_suffix(".png")
        fig.savefig(png, dpi=100)
        lines += ["", f"![regret CDF]({png.name})"]
    except ImportError:
        pass
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
