"""Leave-families-out evaluation of the recommender against baselines, in one run.

Grouped cross-validation: the architecture families are split into ``--folds`` groups;
each fold trains MEDN and the heads on the other families and evaluates on the held-out
ones, so every figure is for architectures the models never saw.

Methods compared on the same test samples:

* ``graphrec``: the full ranking (MEDN latencies + PSO-W-CatBoost, :mod:`graphrec.recommender.ranking`),
  trained by :func:`graphrec.recommender.train.fit_recommender` (blend weight fitted on inner folds);
  ablations ``graphrec_alpha_{0.5,0.8,0.2}`` (blend weight fixed) and ``graphrec_no_risk``
  (deployability treated as certain when ranking);
* ``medn``: fastest predicted latency among choices predicted deployable;
* ``pso_w_catboost`` / ``catboost_heuristic`` / ``catboost_plain``: the heads alone;
* baselines: ``best_on_average`` (lowest mean regret on the training folds),
  ``onnxruntime_default`` (fp32, graph optimisation ALL), ``flops_rule`` (one FLOPs
  threshold learnt on the training folds, best-on-average on each side), ``random``
  (expected value of a uniform pick) and ``oracle``.

Metrics: top-1 accuracy, mean / p90 / max latency regret (``lat(choice)/lat(best) - 1``;
a choice that fails costs ``max(worst regret, 1)``; every method picks among the
candidates measured for the sample, since an unmeasured choice cannot be scored), NDCG@3 (relevance ``lat(best)/lat``,
0 for failures), MEDN latency MAPE and share within ±10 %, cold-start error,
deployability precision / recall, and the wall time of ``graphrec.recommend`` against
the harness wall time of an exhaustive benchmark of the same model.

Usage::

    python benchmarks/eval_recommender.py --data runs/campaign.sqlite \
        --out benchmarks/results/eval_recommender.md
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

METHODS = (
    "graphrec",
    "graphrec_alpha_0.5",
    "graphrec_alpha_0.8",
    "graphrec_alpha_0.2",
    "graphrec_no_risk",
    "medn",
    "pso_w_catboost",
    "catboost_heuristic",
    "catboost_plain",
    "best_on_average",
    "onnxruntime_default",
    "flops_rule",
    "random",
    "oracle",
)

#: Methods broken down per family and per sample in the report.
_FAMILY_METHODS = ("graphrec", "medn", "catboost_plain", "best_on_average", "flops_rule")


def group_folds(families: list[str], k: int, seed: int) -> list[np.ndarray]:
    """Test-index arrays, whole families per fold (round-robin over shuffled families)."""
    names = sorted(set(families))
    rng = np.random.default_rng(seed)
    rng.shuffle(names)
    fold_of = {f: i % k for i, f in enumerate(names)}
    fam = np.array([fold_of[f] for f in families])
    return [np.flatnonzero(fam == i) for i in range(min(k, len(names)))]


def ndcg3(order: np.ndarray, rel: np.ndarray) -> float:
    disc = 1.0 / np.log2(np.arange(2, 5))
    gains = rel[order[:3]]
    ideal = np.sort(rel)[::-1][:3]
    idcg = float((ideal * disc[: len(ideal)]).sum())
    return float((gains * disc[: len(gains)]).sum()) / idcg if idcg > 0 else 0.0


def flops_rule(log_flops: np.ndarray, regret: np.ndarray) -> tuple[float, int, int]:
    regret = np.where(np.isnan(regret), np.nanmax(regret), regret)
    """Threshold on log FLOPs and the best-on-average choice below / above it."""
    best = (np.inf, 0.0, 0, 0)
    for t in np.unique(np.quantile(log_flops, np.linspace(0.1, 0.9, 9))):
        lo, hi = log_flops <= t, log_flops > t
        a = int(np.argmin(regret[lo].mean(axis=0))) if lo.any() else 0
        b = int(np.argmin(regret[hi].mean(axis=0))) if hi.any() else a
        cost = regret[lo, a].sum() + regret[hi, b].sum()
        if cost < best[0]:
            best = (cost, float(t), a, b)
    return best[1], best[2], best[3]


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


def _nanmean0(regret: np.ndarray) -> np.ndarray:
    """Mean regret per candidate over the samples where it was measured (inf if never)."""
    known = ~np.isnan(regret)
    total = np.where(known, regret, 0.0).sum(axis=0)
    return np.where(known.any(axis=0), total / np.maximum(known.sum(axis=0), 1), np.inf)


def summarise(regret: np.ndarray, top1: np.ndarray, ndcg: np.ndarray | None) -> dict[str, float]:
    return {
        "top1": float(np.mean(top1)),
        "mean_regret": float(np.mean(regret)),
        "p90_regret": float(np.quantile(regret, 0.9)),
        "max_regret": float(np.max(regret)),
        "ndcg3": float(np.mean(ndcg)) if ndcg is not None else float("nan"),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", nargs="+", required=True, help="results stores or dataset folders")
    ap.add_argument("--model-root", default=None, help="folder with the model files (zoo)")
    ap.add_argument("--out", default="benchmarks/results/eval_recommender.md")
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
    args = ap.parse_args(argv)

    import torch

    from graphrec.dataset.samples import (
        RecDataset,
        first_measured,
        masked_argmax,
        regret_matrix,
    )
    from graphrec.recommender.artefact import head_features
    from graphrec.recommender.pso_catboost import PSOWCatBoostClassifier
    from graphrec.recommender.ranking import rank_choices
    from graphrec.recommender.train import fit_recommender

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
    regret = regret_matrix(ds.log_latency_ms, ds.deployable)
    best = ds.best
    rel = np.where(
        ds.deployable == 1,
        np.exp(
            ds.log_latency_ms.min(axis=1, initial=np.inf, where=ds.deployable == 1)[:, None]
            - ds.log_latency_ms
        ),
        0.0,
    )
    rel = np.nan_to_num(rel)
    ort_default = [
        i for i, cid in enumerate(ds.candidates) if cid.startswith("onnxruntime/cpu/fp32/opt=all/")
    ]
    chosen: dict[str, np.ndarray] = {m: np.full(n, -1) for m in METHODS}
    ndcg: dict[str, np.ndarray] = {m: np.full(n, np.nan) for m in METHODS}
    pred_lat = np.full((n, c), np.nan)
    pred_lat_medn = np.full((n, c), np.nan)
    pred_lat_gbdt = np.full((n, c), np.nan)
    pred_cold = np.full((n, c), np.nan)
    pred_dep = np.full((n, c), np.nan)
    pick_loss = np.full(n, np.nan)  # graphrec's predicted expected loss of its pick
    pick_pfast = np.full(n, np.nan)  # and its P(fastest)
    rec_times: list[float] = []
    rec_models: list[str] = []
    fold_info: list[dict[str, Any]] = []
    folds = group_folds(ds.families, args.folds, args.seed)
    medn_params = {"epochs": args.epochs}
    for fi, test in enumerate(folds):
        train = np.setdiff1d(np.arange(n), test)
        tr, te = ds.subset(train), ds.subset(test)
        tf = time.perf_counter()
        # The product's own training path: MEDN, the PSO-W head (multi-fold search with
        # heuristic fallback) and the blend weight fitted on inner out-of-fold regret.
        rec = fit_recommender(
            tr,
            medn_params=medn_params,
            head_params={"n_particles": args.particles, "n_pso_iterations": args.pso_iterations},
            alpha=args.alpha if args.alpha == "auto" else float(args.alpha),
            inner_folds=args.inner_folds,
            seed=args.seed,
            latency_weight=args.latency_weight,
        )
        medn = rec.medn
        p_tr, p_te = medn.predict(tr), medn.predict(te)
        pred_lat_medn[test] = p_te.log_latency_ms
        if rec.latency_gbdt is not None:
            pred_lat_gbdt[test] = rec.latency_gbdt.predict_arrays(
                te.graph_features, te.device_features
            )[0]
        b_te = rec.blend_latency(p_te, te.graph_features, te.device_features)
        pred_lat[test], pred_cold[test], pred_dep[test] = (
            b_te.log_latency_ms,
            b_te.log_cold_start_ms,
            b_te.p_deployable,
        )
        X_tr = head_features(tr.graph_features, p_tr.embedding, tr.device_features)
        X_te = head_features(te.graph_features, p_te.embedding, te.device_features)
        heads = {"pso_w_catboost": rec.head}
        fold_info.append(
            {
                "alpha": rec.alpha,
                "alpha_fit": rec.info.get("alpha_fit"),
                "pso_accepted": rec.head.pso_accepted_,
                "pso_fallback": rec.head.pso_fallback_,
                "head_params": rec.head.best_params_,
                "pso_fold_costs": rec.head.pso_fold_costs_,
            }
        )
        for name, w in (("catboost_heuristic", "heuristic"), ("catboost_plain", "none")):
            heads[name] = PSOWCatBoostClassifier(weighting=w, seed=args.seed).fit(
                X_tr, regret[train], groups=tr.families
            )
        for name, head in heads.items():
            proba = head.predict_proba(X_te)
            chosen[name][test] = masked_argmax(proba, regret[test])
            for k, i in enumerate(test):
                ndcg[name][i] = ndcg3(np.argsort(-proba[k]), rel[i])
        proba = rec.head.predict_proba(X_te)
        for k, i in enumerate(test):
            r = rank_choices(
                b_te.log_latency_ms[k],
                b_te.log_latency_sigma,
                proba[k],
                p_te.p_deployable[k],
                alpha=rec.alpha,
                log_relative_sigma=b_te.log_latency_rel_sigma,
            )
            chosen["graphrec"][i] = first_measured(r.order, regret[i])
            pick_loss[i] = r.expected_loss[chosen["graphrec"][i]]
            pick_pfast[i] = r.p_fastest[chosen["graphrec"][i]]
            ndcg["graphrec"][i] = ndcg3(r.order, rel[i])
            # Ablations: the untuned blend weight; deployability taken as certain.
            for name, kw in (
                ("graphrec_alpha_0.5", {"alpha": 0.5}),
                ("graphrec_alpha_0.8", {"alpha": 0.8}),
                ("graphrec_alpha_0.2", {"alpha": 0.2}),
                ("graphrec_no_risk", {"alpha": rec.alpha, "risk_aware": False}),
            ):
                ra = rank_choices(
                    b_te.log_latency_ms[k],
                    b_te.log_latency_sigma,
                    proba[k],
                    p_te.p_deployable[k],
                    log_relative_sigma=b_te.log_latency_rel_sigma,
                    **kw,
                )
                chosen[name][i] = first_measured(ra.order, regret[i])
                ndcg[name][i] = ndcg3(ra.order, rel[i])
            mu = np.where(p_te.p_deployable[k] >= 0.5, b_te.log_latency_ms[k], np.inf)
            order = np.argsort(mu, kind="stable")
            chosen["medn"][i] = first_measured(order, regret[i])
            ndcg["medn"][i] = ndcg3(order, rel[i])
        avg_order = np.argsort(_nanmean0(regret[train]), kind="stable")
        for i in test:
            chosen["best_on_average"][i] = first_measured(avg_order, regret[i])
        for i in test:
            ndcg["best_on_average"][i] = ndcg3(avg_order, rel[i])
        if ort_default:
            for i in test:
                chosen["onnxruntime_default"][i] = first_measured(ort_default[::-1], regret[i])
        lf = np.log1p(ds.flops)
        t, a, b = flops_rule(lf[train], regret[train])
        for i in test:
            rule = a if lf[i] <= t else b
            chosen["flops_rule"][i] = first_measured([rule, *avg_order], regret[i])
        chosen["oracle"][test] = best[test]
        for i in test:
            ndcg["oracle"][i] = ndcg3(np.argsort(-rel[i]), rel[i])
        if fi == 0 and args.timing_models > 0:
            rec_times, rec_models = time_recommend(rec, te, args.timing_models)
        print(
            f"fold {fi + 1}/{len(folds)}: held out {sorted(set(te.families))} "
            f"({len(test)} samples), {time.perf_counter() - tf:.1f} s",
            flush=True,
        )

    results: dict[str, dict[str, float]] = {}
    rows = np.arange(n)
    for m in METHODS:
        if m == "random":
            rg = np.nanmean(regret, axis=1)
            results[m] = {
                "top1": float(np.mean((regret == 0).sum(axis=1) / (~np.isnan(regret)).sum(axis=1))),
                "mean_regret": float(rg.mean()),
                "p90_regret": float(np.quantile(rg, 0.9)),
                "max_regret": float(np.nanmax(regret)),
                "ndcg3": float("nan"),
            }
            continue
        if (chosen[m] < 0).any():
            continue
        rg = regret[rows, chosen[m]]
        nd = ndcg[m] if not np.isnan(ndcg[m]).any() else None
        results[m] = summarise(rg, chosen[m] == best, nd)

    lat_true = ds.log_latency_ms
    ok = (ds.deployable == 1) & ~np.isnan(lat_true)
    ape = np.abs(np.exp(pred_lat[ok] - lat_true[ok]) - 1.0)
    ape_medn = np.abs(np.exp(pred_lat_medn[ok] - lat_true[ok]) - 1.0)
    ape_gbdt = np.abs(np.exp(pred_lat_gbdt[ok] - lat_true[ok]) - 1.0)
    has_gbdt = bool(np.isfinite(ape_gbdt).all())
    cold_ok = ~np.isnan(ds.log_cold_start_ms)
    cold_ape = np.abs(np.exp(pred_cold[cold_ok] - ds.log_cold_start_ms[cold_ok]) - 1.0)
    dep_m = ~np.isnan(ds.deployable)
    y_fail = ds.deployable[dep_m] == 0
    p_fail = pred_dep[dep_m] < 0.5
    tp = int((y_fail & p_fail).sum())
    latency: dict[str, Any] = {
        "pairs": int(ok.sum()),
        "mape": float(ape.mean()),
        "median_ape": float(np.median(ape)),
        "within_10pct": float((ape <= 0.10).mean()),
        "within_25pct": float((ape <= 0.25).mean()),
        "medn_median_ape": float(np.median(ape_medn)),
        "medn_within_10pct": float((ape_medn <= 0.10).mean()),
        "gbdt_median_ape": float(np.median(ape_gbdt)) if has_gbdt else float("nan"),
        "gbdt_within_10pct": float((ape_gbdt <= 0.10).mean()) if has_gbdt else float("nan"),
        "cold_pairs": int(cold_ok.sum()),
        "cold_mape": float(cold_ape.mean()) if len(cold_ape) else float("nan"),
        "cold_median_ape": float(np.median(cold_ape)) if len(cold_ape) else float("nan"),
        "fail_pairs": int(y_fail.sum()),
        "fail_precision": tp / max(int(p_fail.sum()), 1),
        "fail_recall": tp / max(int(y_fail.sum()), 1),
        "deploy_precision": float(((~y_fail) & (~p_fail)).sum() / max(int((~p_fail).sum()), 1)),
        "deploy_recall": float(((~y_fail) & (~p_fail)).sum() / max(int((~y_fail).sum()), 1)),
    }
    # Accuracy per thread count (the second vCPU of a shared 2-vCPU machine is noisy).
    thr = np.array(
        [cid.rsplit("threads=", 1)[-1] if "threads=" in cid else "1" for cid in ds.candidates]
    )
    by_threads = {}
    for t in sorted(set(thr)):
        m = ok & (thr == t)[None, :]
        a = np.abs(np.exp(pred_lat[m] - lat_true[m]) - 1.0)
        if len(a):
            by_threads[t] = {
                "pairs": int(m.sum()),
                "median_ape": float(np.median(a)),
                "within_10pct": float((a <= 0.10).mean()),
            }
    latency["by_threads"] = by_threads
    # Calibration of what the table shows for the recommended choice.
    realised = regret[rows, chosen["graphrec"]]
    cal = ~np.isnan(pick_loss)
    latency["calibration"] = {
        "pred_expected_loss_mean": float(np.mean(pick_loss[cal])),
        "pred_expected_loss_median": float(np.median(pick_loss[cal])),
        "realised_regret_mean": float(np.mean(realised[cal])),
        "realised_regret_median": float(np.median(realised[cal])),
        "pred_p_fastest_mean": float(np.nanmean(pick_pfast)),
        "realised_top1": float(np.mean(chosen["graphrec"] == best)),
    }
    latency["noise_floor"] = noise_floor(list(args.data))
    timing: dict[str, Any] = {}
    if rec_times:
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
        for i in range(n)
    ]
    report = {
        "data": [str(p) for p in args.data],
        "samples": n,
        "models": len(set(ds.model_sha256)),
        "families": sorted(set(ds.families)),
        "devices": sorted(set(ds.device_ids)),
        "candidates": ds.candidates,
        "folds": len(folds),
        "params": vars(args),
        "methods": results,
        "latency": latency,
        "timing": timing,
        "fold_fits": fold_info,
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
        f"{report['wall_s']:.0f} s.",
        "",
        "| method | top-1 | mean regret | p90 regret | max regret | NDCG@3 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for m, r in report["methods"].items():
        nd = "–" if np.isnan(r["ndcg3"]) else f"{r['ndcg3']:.3f}"
        lines.append(
            f"| {m} | {100 * r['top1']:.1f} % | {100 * r['mean_regret']:.1f} % | "
            f"{100 * r['p90_regret']:.1f} % | {100 * r['max_regret']:.0f} % | {nd} |"
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
        f"{100 * la['median_ape']:.1f} %, within ±10 %: {100 * la['within_10pct']:.1f} %, "
        f"within ±25 %: {100 * la['within_25pct']:.1f} %",
        f"* the parts alone: MEDN median APE {100 * la['medn_median_ape']:.1f} %, within ±10 % "
        f"{100 * la['medn_within_10pct']:.1f} %; pooled regressor median APE "
        f"{100 * la['gbdt_median_ape']:.1f} %, within ±10 % {100 * la['gbdt_within_10pct']:.1f} %",
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
