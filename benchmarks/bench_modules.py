"""Per-module latency prediction: module level, model level (zoo, leave families out; real
held-out models), noise floor, background load, fusion check, speed. Prints and writes
``benchmarks/reports/modules.md`` / ``.json``; never asserts.

Inputs (all measured on this machine):

* ``--dir`` module-dataset folder (``graphrec modules generate`` / ``measure``);
* ``--artefact`` the fitted module regressors (``graphrec modules fit``, which also writes
  ``fit_report.json`` into ``--dir``: the held-out test predictions of every regressor);
* ``--wholegraph`` today's whole-graph predictions, leave-family-out on the zoo (an ``.npz``
  written by ``runs/modules/wholegraph_lfo.py``: the protocol of
  ``benchmarks/eval_recommender.py --candidates '*threads=1' --alpha 0.5``);
* ``--real-store`` the measured real models (held-out split of ``graphrec/data/real``).

Usage::

    python benchmarks/bench_modules.py --dir runs/modules --artefact graphrec/data/modules \\
        --wholegraph runs/modules/wholegraph_lfo.npz --real-store runs/real/real.sqlite
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

CANDS = (
    "onnxruntime/cpu/fp32/opt=all/threads=1",
    "openvino/cpu/fp32/hint=latency/threads=1",
)


def _stats(
    pred_ms: np.ndarray, true_ms: np.ndarray, fam: np.ndarray | None = None
) -> dict[str, Any]:
    from graphrec.recommender.evaluate import cluster_bootstrap

    ok = np.isfinite(pred_ms) & np.isfinite(true_ms) & (true_ms > 0)
    ape = np.abs(pred_ms[ok] / true_ms[ok] - 1.0)
    out: dict[str, Any] = {"n": int(ok.sum())}
    if not ok.any():
        return out
    out["median_ape"] = float(np.median(ape))
    out["within10"] = float((ape <= 0.10).mean())
    out["within25"] = float((ape <= 0.25).mean())
    if fam is not None:
        f = fam[ok]
        out["median_ape_ci"] = cluster_bootstrap(ape, f, np.median, n_boot=1000)
        out["within10_ci"] = cluster_bootstrap((ape <= 0.10).astype(float), f, np.mean, n_boot=1000)
    return out


# --------------------------------------------------------------------------- module level
def module_level(dir_: Path, artefact: Path) -> dict[str, Any]:
    rep = json.loads((dir_ / "fit_report.json").read_text())
    out: dict[str, Any] = {"summary": rep["summary"], "selection": rep["selection"]}
    per_type: dict[str, Any] = {}
    for t, info in rep["types"].items():
        per_type[t] = {
            "n_train": info["n_train"],
            "n_test": info["n_test"],
            "runtimes": {
                c: {
                    "selected": r["selected"],
                    "pareto": r["pareto"],
                    "entries": {e["regressor"]: e for e in r["entries"]},
                }
                for c, r in info["runtimes"].items()
            },
        }
    out["types"] = per_type
    out["overhead_ms"] = rep["overhead_ms"]
    out["fit_s"] = rep.get("fit_s")
    return out


def noise_floor(dir_: Path) -> dict[str, Any]:
    """Points measured in two rounds (fresh processes): how often round 1 lands within ±10 %
    of round 0 (a perfect predictor of one round, scored against the other)."""
    from graphrec.recommender.modules.select import module_table

    out: dict[str, Any] = {}
    for c in CANDS:
        pairs = []
        for r in module_table(dir_, CANDS):
            v = r["rounds_ms"][c]
            if len(v) >= 2:
                pairs.append((v[0], v[1]))
        if pairs:
            a = np.array(pairs)
            rel = np.abs(a[:, 1] / a[:, 0] - 1.0)
            out[c] = {
                "points": len(a),
                "within10": float((rel <= 0.10).mean()),
                "median_rel_diff": float(np.median(rel)),
            }
    return out


def load_effect(dir_: Path) -> dict[str, Any]:
    """Latency under the 0.5 background load against the same points unloaded."""
    from graphrec.recommender.modules.measure import store_path
    from graphrec.recommender.modules.select import module_table

    if not store_path(dir_, 0.5).exists():
        return {}
    base = {r["point_id"]: r for r in module_table(dir_, CANDS, 0.0)}
    out: dict[str, Any] = {}
    loaded = module_table(dir_, CANDS, 0.5)
    for c in CANDS:
        ratios = [
            r["latency_ms"][c] / base[r["point_id"]]["latency_ms"][c]
            for r in loaded
            if r["point_id"] in base and math.isfinite(r["latency_ms"][c])
        ]
        if ratios:
            q = np.quantile(ratios, [0.1, 0.5, 0.9])
            out[c] = {
                "points": len(ratios),
                "ratio_p10": q[0],
                "ratio_median": q[1],
                "ratio_p90": q[2],
            }
    return out


# --------------------------------------------------------------------------- model level
def _module_sums(pred: Any, paths: list[Path]) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """Raw module sums ``[models, candidates]``, per-type work ``[models, candidates, types]``."""
    from graphrec import graph
    from graphrec.recommender.modules.predictor import type_work
    from graphrec.recommender.modules.vocab import MODULE_TYPES

    out = np.full((len(paths), len(pred.candidates)), np.nan)
    work = np.full((len(paths), len(pred.candidates), len(MODULE_TYPES)), np.nan)
    times = []
    for i, p in enumerate(paths):
        try:
            t0 = time.perf_counter()
            res = pred.predict_graph(graph.load(p))
            times.append(time.perf_counter() - t0)
        except Exception as exc:
            print(f"  {p}: {exc}", file=sys.stderr)
            continue
        out[i] = [res["raw_latency_ms"][c] for c in pred.candidates]
        for j, c in enumerate(pred.candidates):
            work[i, j] = type_work(res["modules"], c)
    return out, work, times


def _calibrate(log_msum: np.ndarray, log_true: np.ndarray) -> tuple[float, float]:
    ok = np.isfinite(log_msum) & np.isfinite(log_true)
    a = np.column_stack([log_msum[ok], np.ones(ok.sum())])
    coef, *_ = np.linalg.lstsq(a, log_true[ok], rcond=None)
    return float(coef[0]), float(coef[1])


def zoo_level(artefact: Path, wholegraph: Path, zoo: Path) -> dict[str, Any]:
    from graphrec.recommender.modules.predictor import ModuleLatencyPredictor, fit_type_scales
    from graphrec.recommender.modules.vocab import MODULE_TYPES

    pred = ModuleLatencyPredictor.load(artefact)
    z = np.load(wholegraph)
    names = [str(n) for n in z["model_names"]]
    fams = np.array([str(f) for f in z["families"]])
    cands = [str(c) for c in z["candidates"]]
    folds = [np.array([int(i) for i in s.split(",")]) for s in z["folds"]]
    keep = np.array(["int8" not in n for n in names])
    paths = [zoo / f"{n}.onnx" for n in names]
    msum, wk, times = _module_sums(pred, [p for p, k in zip(paths, keep, strict=True) if k])
    full = np.full((len(names), len(pred.candidates)), np.nan)
    full[keep] = msum
    work = np.full((len(names), *wk.shape[1:]), np.nan)
    work[keep] = wk
    out: dict[str, Any] = {
        "models": int(keep.sum()),
        "families": len(set(fams[keep])),
        "per_runtime": {},
    }
    out["module_sum_ms_per_model"] = {
        "median": float(np.median(times)) * 1e3,
        "max": float(np.max(times)) * 1e3,
    }
    pooled: dict[str, list[np.ndarray]] = {}
    per_family: dict[str, dict[str, Any]] = {}
    for j, c in enumerate(pred.candidates):
        k = cands.index(c)
        t = np.exp(z["true_log"][:, k])
        wg = np.exp(z["pred_log"][:, k])
        raw = full[:, j]
        cal = np.full(len(names), np.nan)
        blend = np.full(len(names), np.nan)
        weights = []
        typed = np.full(len(names), np.nan)
        blend_t = np.full(len(names), np.nan)
        weights_t = []
        for te in folds:
            tr = np.setdiff1d(np.arange(len(names)), te)
            tr = tr[keep[tr]]
            f = fit_type_scales(work[tr, j], t[tr])
            typed[te] = np.maximum(work[te, j] @ f[:-1] + f[-1], 1e-4)
            typed_tr = np.maximum(work[tr, j] @ f[:-1] + f[-1], 1e-4)
            errs_t = [
                np.nanmedian(
                    np.abs(np.exp(w * np.log(typed_tr) + (1 - w) * np.log(wg[tr])) / t[tr] - 1)
                )
                for w in np.linspace(0, 1, 21)
            ]
            wt = float(np.linspace(0, 1, 21)[int(np.nanargmin(errs_t))])
            weights_t.append(wt)
            blend_t[te] = np.exp(wt * np.log(typed[te]) + (1 - wt) * np.log(wg[te]))
            b, a = _calibrate(np.log(raw[tr]), np.log(t[tr]))
            cal[te] = np.exp(a + b * np.log(raw[te]))
            cal_tr = np.exp(a + b * np.log(raw[tr]))
            grid = np.linspace(0, 1, 21)  # blend weight of the module sum, on training families
            errs = [
                np.nanmedian(
                    np.abs(np.exp(w * np.log(cal_tr) + (1 - w) * np.log(wg[tr])) / t[tr] - 1)
                )
                for w in grid
            ]
            w = float(grid[int(np.nanargmin(errs))])
            weights.append(w)
            blend[te] = np.exp(w * np.log(cal[te]) + (1 - w) * np.log(wg[te]))
        m = keep & np.isfinite(t)
        res = {
            "whole_graph": _stats(wg[m], t[m], fams[m]),
            "module_sum_raw": _stats(raw[m], t[m], fams[m]),
            "module_sum_calibrated": _stats(cal[m], t[m], fams[m]),
            "blend": _stats(blend[m], t[m], fams[m]),
            "blend_weights": weights,
            "module_sum_type_scaled": _stats(typed[m], t[m], fams[m]),
            "blend_type_scaled": _stats(blend_t[m], t[m], fams[m]),
            "blend_type_scaled_weights": weights_t,
            "type_scales_all_families": dict(
                zip(
                    [*MODULE_TYPES, "constant_ms"],
                    fit_type_scales(work[keep, j], t[keep]).tolist(),
                    strict=True,
                )
            ),
        }
        out["per_runtime"][c] = res
        for name, v in (
            ("whole_graph", wg),
            ("module_sum_raw", raw),
            ("module_sum_calibrated", cal),
            ("blend", blend),
            ("module_sum_type_scaled", typed),
            ("blend_type_scaled", blend_t),
        ):
            pooled.setdefault(name, []).append(np.column_stack([v[m], t[m]]))
        for f in sorted(set(fams[m])):
            fm = m & (fams == f)
            d = per_family.setdefault(f, {})
            for name, v in (
                ("whole_graph", wg),
                ("module_sum_raw", raw),
                ("module_sum_calibrated", cal),
                ("module_sum_type_scaled", typed),
            ):
                d.setdefault(name, []).extend(np.abs(v[fm] / t[fm] - 1).tolist())
    fam_all = np.concatenate(
        [
            fams[keep & np.isfinite(np.exp(z["true_log"][:, cands.index(c)]))]
            for c in pred.candidates
        ]
    )
    out["pooled"] = {
        name: _stats(np.concatenate(v)[:, 0], np.concatenate(v)[:, 1], fam_all)
        for name, v in pooled.items()
    }
    out["per_family_median_ape"] = {
        f: {k: float(np.median(v)) for k, v in d.items()} for f, d in per_family.items()
    }
    return out


def real_level(artefact: Path, store: Path) -> dict[str, Any]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from eval_real import MANIFEST, measured

    import graphrec
    from graphrec.errors import GraphRecError, OutOfDistributionWarning
    from graphrec.recommender.modules.predictor import ModuleLatencyPredictor

    pred = ModuleLatencyPredictor.load(artefact)
    manifest = json.loads(MANIFEST.read_text())
    split = {m["sha256"]: m["split"] for m in manifest["models"]}
    ids = {m["sha256"]: m["id"] for m in manifest["models"]}
    meas, models = measured(store)
    rows = []
    for sha, m in sorted(meas.items()):
        if split.get(sha) != "heldout":
            continue
        if not any(m.get(c, ("", None))[1] for c in CANDS):
            continue
        info = models.get(sha, {})
        path = Path(str(info.get("path") or ""))
        spec = info.get("spec") or {}
        shapes = dict(zip(spec.get("input_names", []), spec.get("input_shapes", []), strict=False))
        row: dict[str, Any] = {"model": ids[sha]}
        try:
            from graphrec import graph

            g = graph.load(path, input_shapes=shapes or None)
            res = pred.predict_graph(g)
            row["module_sum"] = res["latency_ms"]
            row["module_sum_raw"] = res["raw_latency_ms"]
            row["other_share"] = float(
                np.mean([x["module_type"] == "other" for x in res["modules"]] or [0])
            )
        except GraphRecError as exc:
            row["module_error"] = str(exc)[:120]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", OutOfDistributionWarning)
                rec = graphrec.recommend(path, input_shapes=shapes or None, candidates=list(CANDS))
            row["whole_graph"] = {ch.candidate_id: ch.latency_ms for ch in rec.choices}
        except GraphRecError as exc:
            row["whole_error"] = str(exc)[:120]
        row["measured"] = {c: m.get(c, ("", None))[1] for c in CANDS}
        rows.append(row)
    out: dict[str, Any] = {"models": len(rows), "rows": rows, "per_runtime": {}}
    pooled: dict[str, list[tuple[float, float]]] = {}
    for c in CANDS:
        res = {}
        for name in ("whole_graph", "module_sum_raw", "module_sum"):
            pts = [
                (r[name][c], r["measured"][c])
                for r in rows
                if name in r and r["measured"].get(c) and r[name].get(c)
            ]
            pooled.setdefault(name, []).extend(pts)
            a = np.array(pts).reshape(-1, 2)
            res[name] = _stats(a[:, 0], a[:, 1])
        out["per_runtime"][c] = res
    out["pooled"] = {
        k: _stats(np.array(v)[:, 0], np.array(v)[:, 1]) for k, v in pooled.items() if v
    }
    return out


def fusion(models: list[Path]) -> dict[str, Any]:
    """The module cut against what the runtimes execute (profile / runtime model)."""
    from collections import Counter

    from graphrec.recommender.modules.fusion import fusion_check

    rows = {}
    for p in models:
        try:
            rows[p.stem] = fusion_check(p)
        except Exception as exc:
            rows[p.stem] = {"error": str(exc)[:160]}
    ok = [r for r in rows.values() if "error" not in r]
    agg: dict[str, Any] = {"models": len(ok), "per_model": rows}
    for rt in ("openvino", "onnxruntime"):
        keys = [k for k in ok[0][rt] if isinstance(ok[0][rt][k], float)] if ok else []
        agg[rt] = {k: float(np.mean([r[rt][k] for r in ok if r[rt][k] is not None])) for k in keys}
    cross: Counter[str] = Counter()
    for r in ok:
        cross.update(r["openvino"]["cross_module_fusions"])
    agg["openvino"]["cross_module_fusions"] = dict(cross.most_common(8))
    return agg


def speed(artefact: Path, models: list[Path]) -> dict[str, Any]:
    """Warm ``graphrec.recommend`` (unchanged default path) and the module-sum prediction."""
    import graphrec
    from graphrec import graph
    from graphrec.recommender.modules.predictor import ModuleLatencyPredictor

    pred = ModuleLatencyPredictor.load(artefact)
    rec_ms, mod_ms = [], []
    for p in models:
        graphrec.recommend(p)  # warm
        t0 = time.perf_counter()
        graphrec.recommend(p)
        rec_ms.append((time.perf_counter() - t0) * 1e3)
        pred.predict_graph(graph.load(p))
        t0 = time.perf_counter()
        pred.predict_graph(graph.load(p))
        mod_ms.append((time.perf_counter() - t0) * 1e3)
    return {
        "models": len(models),
        "recommend_warm_ms": {"median": float(np.median(rec_ms)), "max": float(np.max(rec_ms))},
        "module_sum_ms": {"median": float(np.median(mod_ms)), "max": float(np.max(mod_ms))},
        "artefact_bytes": int(sum(f.stat().st_size for f in artefact.iterdir() if f.is_file())),
    }


# --------------------------------------------------------------------------- report
def _pct(x: Any) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f} %"


def _ci(d: dict[str, Any], key: str) -> str:
    v = d.get(key)
    ci = d.get(f"{key}_ci")
    if v is None:
        return "–"
    if ci:
        return f"{100 * v:.1f} % [{100 * ci['low']:.1f}, {100 * ci['high']:.1f}]"
    return f"{100 * v:.1f} %"


def render(rep: dict[str, Any]) -> str:
    ml = rep["module_level"]
    lines = ["# Per-module latency prediction (`benchmarks/bench_modules.py`)", ""]
    lines += [f"Run {rep['when']}, {rep['wall_s']:.0f} s. Device: this 2-vCPU VM (shared).", ""]
    lines += ["## Module level: held-out parameter points (20 % of each type), threads=1", ""]
    lines += [
        "| runtime | regressor | within ±10 % | R² (log) | median error | n |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for c, regs in ml["summary"].items():
        for name, m in sorted(regs.items(), key=lambda kv: (kv[0] != "selected", kv[0])):
            lines.append(
                f"| {c} | {'**auto-selected set**' if name == 'selected' else name} | {_pct(m.get('within10'))} "
                f"| {m.get('r2_log', float('nan')):.3f} | {_pct(m.get('median_err'))} | {m.get('n')} |"
            )
    nf = rep.get("noise_floor") or {}
    if nf:
        lines += ["", "Noise floor (the same points re-measured in fresh processes):", ""]
        for c, v in nf.items():
            lines.append(
                f"* {c}: {v['points']} points, round 1 within ±10 % of round 0 in {_pct(v['within10'])}, "
                f"median difference {_pct(v['median_rel_diff'])}"
            )
    lines += [
        "",
        "## Per module type: every regressor (4-fold CV on the training points; test = held-out points)",
        "",
    ]
    lines += [
        "| type | runtime | regressor | CV within ±10 % | test within ±10 % | test R² | predict µs | size kB | selected | Pareto |",
        "|---|---|---|---:|---:|---:|---:|---:|:-:|:-:|",
    ]
    for t, info in sorted(ml["types"].items()):
        for c, r in info["runtimes"].items():
            for name, e in r["entries"].items():
                lines.append(
                    f"| {t} ({info['n_train']}+{info['n_test']}) | {c.split('/')[0]} | {name} | {_pct(e['within10'])} "
                    f"| {_pct(e.get('test_within10'))} | {e.get('test_r2_log', float('nan')):.2f} "
                    f"| {e['predict_us']:.0f} | {e['size_bytes'] / 1024:.1f} "
                    f"| {'✓' if name == r['selected'] else ''} | {'✓' if name in r['pareto'] else ''} |"
                )
    lines += [
        "",
        "Per-inference overhead (Identity model): "
        + ", ".join(f"{c.split('/')[0]} {v:.3f} ms" for c, v in ml["overhead_ms"].items()),
    ]
    le = rep.get("load_effect") or {}
    if le:
        lines += [
            "",
            "Background load 0.5 (a competing process busy half of every 10 ms on the worker's core), latency ratio loaded / idle:",
            "",
        ]
        for c, v in le.items():
            lines.append(
                f"* {c}: {v['points']} points, median ×{v['ratio_median']:.2f} (p10 ×{v['ratio_p10']:.2f}, p90 ×{v['ratio_p90']:.2f})"
            )
    zl = rep.get("zoo_level")
    if zl:
        lines += [
            "",
            f"## Model level: zoo, leave families out ({zl['models']} fp32 models, {zl['families']} families, threads=1)",
            "",
        ]
        lines += [
            "Module regressors never see a zoo model; the calibration (log-linear, per runtime) and the blend weight are fitted on the training families of each of the 5 folds that today's whole-graph predictor uses.",
            "",
        ]
        lines += [
            "| method | runtime | median error | within ±10 % | within ±25 % |",
            "|---|---|---:|---:|---:|",
        ]
        for name in (
            "whole_graph",
            "module_sum_raw",
            "module_sum_calibrated",
            "blend",
            "module_sum_type_scaled",
            "blend_type_scaled",
        ):
            for c, r in zl["per_runtime"].items():
                s = r[name]
                lines.append(
                    f"| {name} | {c.split('/')[0]} | {_ci(s, 'median_ape')} | {_ci(s, 'within10')} | {_pct(s.get('within25'))} |"
                )
            s = zl["pooled"][name]
            lines.append(
                f"| {name} | **both** | {_ci(s, 'median_ape')} | {_ci(s, 'within10')} | {_pct(s.get('within25'))} |"
            )
        lines += [
            "",
            "Blend weights of the module sum per fold: "
            + "; ".join(
                f"{c.split('/')[0]} " + ", ".join(f"{w:.2f}" for w in r["blend_weights"])
                for c, r in zl["per_runtime"].items()
            ),
        ]
        lines += [
            "",
            "Median error per held-out family:",
            "",
            "| family | whole graph | module sum (raw) | module sum (calibrated) | module sum (type-scaled) |",
            "|---|---:|---:|---:|---:|",
        ]
        for f, d in sorted(zl["per_family_median_ape"].items()):
            lines.append(
                f"| {f} | {_pct(d['whole_graph'])} | {_pct(d['module_sum_raw'])} "
                f"| {_pct(d['module_sum_calibrated'])} | {_pct(d['module_sum_type_scaled'])} |"
            )
        lines += [
            "",
            "Blend weights of the type-scaled module sum per fold: "
            + "; ".join(
                f"{c.split('/')[0]} "
                + ", ".join(f"{w:.2f}" for w in r["blend_type_scaled_weights"])
                for c, r in zl["per_runtime"].items()
            ),
            "",
            "Per-type factors fitted on all families (what survives of a module's isolated "
            "cost inside a whole model; 0 = fused away or not identifiable):",
            "",
        ]
        for c, r in zl["per_runtime"].items():
            sc = r["type_scales_all_families"]
            lines.append(
                f"* {c.split('/')[0]}: "
                + ", ".join(f"{k} {v:.2f}" for k, v in sc.items() if v > 0 or k == "conv")
            )
    rl = rep.get("real_level")
    if rl:
        lines += [
            "",
            f"## Model level: held-out real models ({rl['models']} measured at threads=1)",
            "",
        ]
        lines += [
            "| method | runtime | median error | within ±10 % | n |",
            "|---|---|---:|---:|---:|",
        ]
        for c, r in rl["per_runtime"].items():
            for name, s in r.items():
                lines.append(
                    f"| {name} | {c.split('/')[0]} | {_pct(s.get('median_ape'))} | {_pct(s.get('within10'))} | {s['n']} |"
                )
        for name, s in rl["pooled"].items():
            lines.append(
                f"| {name} | **both** | {_pct(s.get('median_ape'))} | {_pct(s.get('within10'))} | {s['n']} |"
            )
    fu = rep.get("fusion")
    if fu:
        lines += [
            "",
            f"## Fusion: the module cut against what the runtimes execute ({fu['models']} zoo models, one per family)",
            "",
        ]
        ov_, ort_ = fu["openvino"], fu["onnxruntime"]
        lines += [
            f"* OpenVINO (runtime model, `originalLayersNames`): {_pct(ov_.get('layers_within_one_module'))} of executed layers lie within one detected module; "
            f"{_pct(ov_.get('modules_split'))} of modules run as several layers; fusions across module boundaries: "
            + (
                ", ".join(f"{k} ×{v}" for k, v in ov_.get("cross_module_fusions", {}).items())
                or "none"
            ),
            f"* onnxruntime (profiler, opt=all): {_pct(ort_.get('kernels_mapped'))} of kernels map to an ONNX operator; "
            f"{_pct(ort_.get('modules_split'))} of modules run as several kernels; {_pct(ort_.get('modules_without_own_kernel'))} have no kernel of their own (fused into a neighbour or removed)",
        ]
    sp = rep.get("speed")
    if sp:
        lines += [
            "",
            "## Speed",
            "",
            f"* warm `graphrec.recommend` (default path, unchanged): median {sp['recommend_warm_ms']['median']:.1f} ms, max {sp['recommend_warm_ms']['max']:.1f} ms over {sp['models']} models",
            f"* module-sum prediction (parse + detect + predict): median {sp['module_sum_ms']['median']:.1f} ms, max {sp['module_sum_ms']['max']:.1f} ms",
            f"* artefact: {sp['artefact_bytes'] / 1024:.0f} kB",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", type=Path, default=Path("runs/modules"))
    ap.add_argument("--artefact", type=Path, default=Path("graphrec/data/modules"))
    ap.add_argument("--wholegraph", type=Path, default=None)
    ap.add_argument("--zoo", type=Path, default=Path("runs/zoo"))
    ap.add_argument("--real-store", type=Path, default=None)
    ap.add_argument("--speed-models", type=int, default=10)
    ap.add_argument(
        "--write-type-scale",
        action="store_true",
        help="write the per-type factors fitted on every zoo family into the artefact "
        "(type_scale.json), for `graphrec modules predict` on models outside the zoo",
    )
    ap.add_argument("--out", type=Path, default=Path("benchmarks/reports/modules.md"))
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    t0 = time.time()
    rep: dict[str, Any] = {"when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    rep["module_level"] = module_level(args.dir, args.artefact)
    rep["noise_floor"] = noise_floor(args.dir)
    rep["load_effect"] = load_effect(args.dir)
    print("module level done", flush=True)
    if args.wholegraph and args.wholegraph.exists():
        rep["zoo_level"] = zoo_level(args.artefact, args.wholegraph, args.zoo)
        print("zoo level done", flush=True)
        if args.write_type_scale:
            scales = {
                c: r["type_scales_all_families"] for c, r in rep["zoo_level"]["per_runtime"].items()
            }
            (args.artefact / "type_scale.json").write_text(
                json.dumps(
                    {
                        "fitted_on": f"{rep['zoo_level']['models']} fp32 zoo models "
                        "(graphrec/data/measurements), threads=1 labels",
                        "scales": scales,
                    },
                    indent=1,
                )
                + "\n"
            )
    if args.real_store and args.real_store.exists():
        rep["real_level"] = real_level(args.artefact, args.real_store)
        print("real level done", flush=True)
    family_models = sorted(p for p in args.zoo.glob("*-s0.onnx"))
    if family_models:
        rep["fusion"] = fusion(family_models)
        print("fusion done", flush=True)
    step = max(1, len(family_models) // max(args.speed_models, 1))
    zoo_models = family_models[::step][: args.speed_models]
    if zoo_models:
        rep["speed"] = speed(args.artefact, zoo_models)
    rep["wall_s"] = time.time() - t0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(rep, indent=1, default=float) + "\n")
    text = render(rep)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
