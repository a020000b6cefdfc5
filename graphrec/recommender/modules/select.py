"""Fit every regressor per module type, select the set under a time/size budget.

:func:`module_table` turns a module-dataset folder into one row per measured point:
its detected module type, features and per-runtime latency (median of the rounds not
flagged busy where a point has any). :func:`fit_and_select` then, per module type:

1. holds out a fixed 20 % of the points (by a hash of the point id) as the test set;
2. scores every regressor of :data:`~graphrec.recommender.modules.regressors.REGRESSORS`
   by 4-fold cross-validation on the rest: share within ±10 %, R² of the log latency,
   prediction time of one module and exported size;
3. per runtime, selects the most accurate regressor whose time and size are within the
   budget (ties within one point of accuracy go to the faster, then the smaller one) and
   records the Pareto front over (accuracy, time, size);
4. reports every regressor, the selected set and MEDN alone on the held-out test points;
5. refits the selected regressors on all points and writes the artefact
   (``selection.json`` + ``regressors.npz`` + ``module_points.csv``).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from graphrec.errors import GraphRecError
from graphrec.recommender.modules.measure import (
    DEFAULT_CANDIDATES,
    load_points,
    measured_table,
    model_file,
)
from graphrec.recommender.modules.regressors import REGRESSORS, from_arrays, make_regressor
from graphrec.recommender.modules.vocab import MODULE_TYPES, feature_names

__all__ = [
    "GENERIC",
    "fit_and_select",
    "load_artefact_arrays",
    "module_table",
    "pareto_front",
    "print_selection",
]

#: The fallback regressor of module types without their own (``other``, unmeasured types):
#: fitted on every point with the common features only.
GENERIC = "generic"
_MIN_POINTS = 8


def _label(rows: Sequence[dict[str, Any]]) -> float:
    clean = [r["p50_ms"] for r in rows if not r.get("busy")]
    vals = clean or [r["p50_ms"] for r in rows]
    return float(np.median(vals))


def module_table(
    folder: str | Path,
    candidates: Sequence[str] = DEFAULT_CANDIDATES,
    load: float = 0.0,
) -> list[dict[str, Any]]:
    """One row per measured point: ``point_id, batch, module_type, features, latency_ms``
    (dict by candidate, NaN where unmeasured), ``busy_share``, ``rounds``."""
    from graphrec import graph
    from graphrec.recommender.modules.vocab import detect_modules

    rows = measured_table(folder, load)
    by_point: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r["candidate_id"] in candidates:
            by_point.setdefault(r["model_name"], []).append(r)
    out = []
    for p in load_points(folder):
        key = f"{p.point_id}-b{p.batch}"
        rs = by_point.get(key)
        if not rs:
            continue
        mods = detect_modules(graph.load(model_file(folder, p)))
        if p.module_type == "identity":
            mtype, feats = "identity", {}
        elif len(mods) == 1:
            mtype, feats = mods[0].module_type, mods[0].features
        else:
            continue  # a point that is not exactly one module teaches no module's cost
        lat = {}
        rounds = {}
        for c in candidates:
            cr = [r for r in rs if r["candidate_id"] == c]
            lat[c] = _label(cr) if cr else math.nan
            rounds[c] = [r["p50_ms"] for r in cr]
        out.append(
            {
                "point_id": p.point_id,
                "batch": p.batch,
                "generated_as": p.module_type,
                "module_type": mtype,
                "features": feats,
                "latency_ms": lat,
                "rounds_ms": rounds,
                "busy_share": float(np.mean([bool(r.get("busy")) for r in rs])),
                "load": load,
            }
        )
    return out


def _is_test(point_id: str, share: float = 0.2) -> bool:
    h = int(hashlib.sha1(point_id.encode()).hexdigest()[:8], 16)
    return (h % 1000) < share * 1000


def _metrics(pred_log: np.ndarray, true_ms: np.ndarray) -> dict[str, float]:
    ok = ~np.isnan(true_ms)
    if not ok.any():
        return {"within10": math.nan, "r2_log": math.nan, "median_err": math.nan, "n": 0}
    p = np.exp(pred_log[ok])
    t = true_ms[ok]
    rel = np.abs(p / t - 1.0)
    lt = np.log(t)
    ss = float(((lt - lt.mean()) ** 2).sum())
    r2 = 1.0 - float(((pred_log[ok] - lt) ** 2).sum()) / ss if ss > 0 else math.nan
    return {
        "within10": float((rel <= 0.10).mean()),
        "r2_log": r2,
        "median_err": float(np.median(rel)),
        "n": int(ok.sum()),
    }


def pareto_front(entries: Sequence[dict[str, Any]]) -> list[str]:
    """Names of the entries no other entry beats on accuracy, time and size at once."""
    front = []
    for a in entries:
        dominated = any(
            b is not a
            and b["within10"] >= a["within10"]
            and b["predict_us"] <= a["predict_us"]
            and b["size_bytes"] <= a["size_bytes"]
            and (
                b["within10"] > a["within10"]
                or b["predict_us"] < a["predict_us"]
                or b["size_bytes"] < a["size_bytes"]
            )
            for b in entries
        )
        if not dominated:
            front.append(a["regressor"])
    return front


def _xy(
    rows: Sequence[dict[str, Any]], mtype: str, cands: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    names = feature_names(mtype) if mtype != GENERIC else feature_names("other")
    x = np.array([[r["features"].get(k, 0.0) for k in names] for r in rows], dtype=np.float64)
    y = np.array([[r["latency_ms"][c] for c in cands] for r in rows], dtype=np.float64)
    return x.reshape(len(rows), len(names)), y.reshape(len(rows), len(cands))


def _cv_predict(name: str, x: np.ndarray, y: np.ndarray, folds: int, seed: int) -> np.ndarray:
    n = len(x)
    order = np.random.default_rng(seed).permutation(n)
    pred = np.full(y.shape, np.nan)
    for f in range(folds):
        te = order[f::folds]
        tr = np.setdiff1d(order, te)
        reg = make_regressor(name, seed=seed).fit(x[tr], np.log(y[tr]))
        pred[te] = reg.predict(x[te])
    return pred


def _choose(entries: list[dict[str, Any]], max_us: float, max_bytes: float) -> dict[str, Any]:
    ok = [e for e in entries if e["predict_us"] <= max_us and e["size_bytes"] <= max_bytes]
    pool = ok or sorted(entries, key=lambda e: e["size_bytes"])[:1]
    best = max(e["within10"] for e in pool)
    near = [e for e in pool if e["within10"] >= best - 0.01]
    return min(near, key=lambda e: (e["predict_us"], e["size_bytes"]))


def fit_and_select(
    folder: str | Path,
    *,
    out: str | Path | None = None,
    candidates: Sequence[str] = DEFAULT_CANDIDATES,
    regressors: Sequence[str] = REGRESSORS,
    max_predict_us: float = 2000.0,
    max_size_kb: float = 512.0,
    folds: int = 4,
    seed: int = 0,
) -> dict[str, Any]:
    """Fit, score, select and (with ``out``) write the artefact; returns the report.

    Raises:
        GraphRecError: The folder holds no measured point.
    """
    cands = list(candidates)
    table = module_table(folder, cands)
    if not table:
        raise GraphRecError(f"{folder}: no measured module point (run `graphrec modules measure`)")
    overhead = {}
    for c in cands:
        vals = [r["latency_ms"][c] for r in table if r["module_type"] == "identity"]
        vals = [v for v in vals if not math.isnan(v)]
        overhead[c] = float(np.median(vals)) if vals else 0.0
    mods = [r for r in table if r["module_type"] != "identity"]
    by_type: dict[str, list[dict[str, Any]]] = {}
    for r in mods:
        by_type.setdefault(r["module_type"], []).append(r)
    by_type[GENERIC] = mods
    report: dict[str, Any] = {"candidates": cands, "overhead_ms": overhead, "types": {}}
    arrays: dict[str, np.ndarray] = {}
    selection: dict[str, dict[str, str]] = {}
    t_start = time.monotonic()
    for mtype, rows in sorted(by_type.items()):
        if len(rows) < _MIN_POINTS:
            continue
        test = [r for r in rows if _is_test(r["point_id"])]
        train = [r for r in rows if not _is_test(r["point_id"])]
        x_tr, y_tr = _xy(train, mtype, cands)
        x_te, y_te = _xy(test, mtype, cands)
        x_all, y_all = _xy(rows, mtype, cands)
        entries: dict[str, list[dict[str, Any]]] = {c: [] for c in cands}
        test_pred: dict[str, np.ndarray] = {}
        cv_pred: dict[str, np.ndarray] = {}
        for name in regressors:
            cv = cv_pred[name] = _cv_predict(name, x_tr, y_tr, min(folds, len(train)), seed)
            reg = make_regressor(name, seed=seed).fit(x_tr, np.log(y_tr))
            us = reg.predict_time_us(x_tr)
            size = reg.size_bytes()
            test_pred[name] = reg.predict(x_te) if len(x_te) else np.zeros((0, len(cands)))
            for j, c in enumerate(cands):
                e = {
                    "regressor": name,
                    **_metrics(cv[:, j], y_tr[:, j]),
                    "predict_us": us,
                    "size_bytes": size,
                }
                te = _metrics(test_pred[name][:, j], y_te[:, j])
                e.update({f"test_{k}": v for k, v in te.items()})
                entries[c].append(e)
        tinfo: dict[str, Any] = {"n_train": len(train), "n_test": len(test), "runtimes": {}}
        selection[mtype] = {}
        for c in cands:
            pick = _choose(entries[c], max_predict_us, max_size_kb * 1024)
            selection[mtype][c] = pick["regressor"]
            tinfo["runtimes"][c] = {
                "entries": entries[c],
                "selected": pick["regressor"],
                "pareto": pareto_front(entries[c]),
            }
        # cross-validated error of the selected regressors per training point (what
        # adaptive sampling refines), worst over runtimes
        err = np.zeros(len(train))
        for j, c in enumerate(cands):
            p = np.exp(cv_pred[selection[mtype][c]][:, j])
            err = np.fmax(err, np.abs(p / y_tr[:, j] - 1.0))
        tinfo["cv_err"] = {r["point_id"]: float(e) for r, e in zip(train, err, strict=True)}
        # the selected set and MEDN alone on the held-out points, pooled over runtimes later
        tinfo["test_true_ms"] = y_te.tolist()
        tinfo["test_pred_log"] = {k: v.tolist() for k, v in test_pred.items()}
        tinfo["test_point_ids"] = [r["point_id"] for r in test]
        report["types"][mtype] = tinfo
        if out is not None:  # refit what was selected on every point of the type
            for name in sorted(set(selection[mtype].values())):
                reg = make_regressor(name, seed=seed).fit(x_all, np.log(y_all))
                for k, a in reg.to_arrays().items():
                    arrays[f"{mtype}/{name}/{k}"] = np.asarray(a)
    report["fit_s"] = time.monotonic() - t_start
    report["selection"] = selection
    report["summary"] = summarize(report)
    (Path(folder) / "fit_report.json").write_text(json.dumps(report, default=float) + "\n")
    if out is not None:
        _write(Path(out), Path(folder), report, arrays, table, cands, max_predict_us, max_size_kb)
    return report


def summarize(report: dict[str, Any]) -> dict[str, Any]:
    """Pooled held-out figures per runtime: every regressor, the selected set, MEDN alone."""
    cands = report["candidates"]
    out: dict[str, Any] = {}
    for j, c in enumerate(cands):
        pooled: dict[str, list[float]] = {}
        truth: list[float] = []
        for mtype, info in report["types"].items():
            if mtype == GENERIC:
                continue
            y = np.array(info["test_true_ms"]).reshape(-1, len(cands))
            if not len(y):
                continue
            truth.extend(y[:, j].tolist())
            sel = info["runtimes"][c]["selected"]
            for name, pred in info["test_pred_log"].items():
                p = np.array(pred).reshape(-1, len(cands))[:, j]
                pooled.setdefault(name, []).extend(p.tolist())
                if name == sel:
                    pooled.setdefault("selected", []).extend(p.tolist())
        t = np.array(truth)
        out[c] = {name: _metrics(np.array(p), t) for name, p in pooled.items()}
    return out


def _write(
    out: Path,
    folder: Path,
    report: dict[str, Any],
    arrays: dict[str, np.ndarray],
    table: list[dict[str, Any]],
    cands: list[str],
    max_us: float,
    max_kb: float,
) -> None:
    import csv

    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / "regressors.npz", **arrays)  # type: ignore[arg-type]
    sel = {
        "version": 1,
        "candidates": cands,
        "overhead_ms": report["overhead_ms"],
        "selection": report["selection"],
        "budget": {"max_predict_us": max_us, "max_size_kb": max_kb},
        "features": {t: list(feature_names(t)) for t in (*MODULE_TYPES,)},
        "summary": report["summary"],
        "types": {
            t: {
                "n_train": i["n_train"],
                "n_test": i["n_test"],
                "runtimes": {
                    c: {"selected": r["selected"], "pareto": r["pareto"], "entries": r["entries"]}
                    for c, r in i["runtimes"].items()
                },
            }
            for t, i in report["types"].items()
        },
    }
    (out / "selection.json").write_text(json.dumps(sel, indent=1, sort_keys=True) + "\n")
    report["budget"] = {"max_predict_us": max_us, "max_size_kb": max_kb}
    (out / "CARD.md").write_text(_card(out, report, table, folder))
    names = sorted({k for r in table for k in r["features"]})
    with (out / "module_points.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["point_id", "batch", "module_type", "busy_share", *cands, *names])
        for r in table:
            w.writerow(
                [r["point_id"], r["batch"], r["module_type"], f"{r['busy_share']:.2f}"]
                + [f"{r['latency_ms'][c]:.5g}" for c in cands]
                + [f"{r['features'].get(k, 0.0):.6g}" for k in names]
            )


def _card(out: Path, report: dict[str, Any], table: list[dict[str, Any]], folder: Path) -> str:
    from graphrec.bench import ResultStore
    from graphrec.recommender.modules.measure import store_path

    versions: dict[str, set[str]] = {}
    devices: set[str] = set()
    rounds: dict[str, str] = {}
    with ResultStore(store_path(folder, 0.0)) as st:
        for r in st.rows():
            versions.setdefault(r["runtime"], set()).add(str(r["runtime_version"]))
            devices.add(str(r["device_id"]))
    for p in (folder / "points.jsonl").read_text().splitlines():
        d = json.loads(p)
        rounds[d["point_id"]] = d.get("round", "")
    counts: dict[str, int] = {}
    for r in table:
        counts[r["module_type"]] = counts.get(r["module_type"], 0) + 1
    adaptive = sum(1 for r in table if str(rounds.get(r["point_id"], "")).startswith("adaptive"))
    busy = float(np.mean([r["busy_share"] for r in table])) if table else 0.0
    twice = sum(1 for r in table if any(len(v) >= 2 for v in r["rounds_ms"].values()))
    lines = [
        "# graphrec per-module latency regressors",
        "",
        "What: per module type and runtime, the regressor `graphrec modules fit` selected "
        "(most accurate within the budget, cross-validated), refitted on every measured point; "
        "the per-inference overhead of each runtime; and the measured module points they "
        "were fitted on (`module_points.csv`).",
        "",
        "## Data",
        "",
        f"* {len(table)} single-module models measured with the harness (protocol of "
        f"`graphrec.bench`), one round each ({twice} of them in two rounds: the noise "
        f"floor), threads=1, candidates: {', '.join(report['candidates'])}",
        f"* {adaptive} of them from the adaptive round (points near those predicted worst)",
        f"* device(s): {', '.join(sorted(devices))}; runtime versions: "
        + ", ".join(f"{k} {'/'.join(sorted(v))}" for k, v in sorted(versions.items())),
        f"* measured on a 2-vCPU VM shared with other jobs: {100 * busy:.0f} % of the rows are "
        "flagged busy (other processes on the worker's core); labels prefer clean rounds",
        "* points per detected module type: "
        + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())),
        "* parameter ranges: `graphrec.recommender.modules.generate.PARAM_RANGES` (batch 1, 2 "
        "or 4)",
        "",
        "## Regressors",
        "",
        f"* budget: {report.get('budget', {})}",
        "* selected (type: onnxruntime / OpenVINO): "
        + "; ".join(
            f"{t}: {' / '.join(v[c] for c in report['candidates'])}"
            for t, v in sorted(report["selection"].items())
        ),
        "* formats: `regressors.npz` (numpy arrays only: ridge coefficients, forest trees, "
        "network weights, CatBoost models in CatBoost's own binary format; loaded with "
        "`allow_pickle=False`), `selection.json` (selection, Pareto fronts, every "
        "regressor's cross-validated and held-out figures)",
        "",
        "## Regenerate",
        "",
        "```bash",
        "graphrec modules generate --dir runs/modules --batch 1,1,1,2,4 --seed 0",
        "flock /tmp/graphrec-measure.lock graphrec modules measure --dir runs/modules  # repeat",
        "graphrec modules fit --dir runs/modules --out DIR  # writes runs/modules/fit_report.json",
        "graphrec modules generate --dir runs/modules --adaptive 200 --seed 1",
        "flock /tmp/graphrec-measure.lock graphrec modules measure --dir runs/modules",
        "graphrec modules fit --dir runs/modules --out graphrec/data/modules",
        "```",
    ]
    return "\n".join(lines) + "\n"


def load_artefact_arrays(folder: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(selection.json, {type: {regressor name: ModuleRegressor}})`` of an artefact."""
    folder = Path(folder)
    path = folder / "selection.json"
    if not path.exists():
        raise GraphRecError(f"{path}: no module-regressor artefact here (graphrec modules fit)")
    sel = json.loads(path.read_text())
    regs: dict[str, dict[str, Any]] = {}
    with np.load(folder / "regressors.npz", allow_pickle=False) as z:
        groups: dict[tuple[str, str], dict[str, np.ndarray]] = {}
        for key in z.files:
            mtype, name, k = key.split("/", 2)
            groups.setdefault((mtype, name), {})[k] = z[key]
    for (mtype, name), arrs in groups.items():
        regs.setdefault(mtype, {})[name] = from_arrays({**arrs, "kind": np.array(name)})
    return sel, regs


def print_selection(folder: str | Path | None = None) -> None:
    """Print the selected regressor per module type and runtime, with the Pareto front."""
    from graphrec.recommender.modules.predictor import default_artefact

    sel, _ = load_artefact_arrays(folder or default_artefact())
    for mtype, info in sorted(sel["types"].items()):
        for c, r in info["runtimes"].items():
            best = {e["regressor"]: e for e in r["entries"]}[r["selected"]]
            print(
                f"{mtype:<13} {c:<42} {r['selected']:<13} within±10% {best['within10']:.0%} "
                f"(cv, n={info['n_train']}), {best['predict_us']:.0f} us, "
                f"{best['size_bytes'] / 1024:.1f} kB; Pareto: {', '.join(r['pareto'])}"
            )
