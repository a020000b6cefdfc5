"""Few-shot calibration on held-out CPU device configurations: zero-shot vs calibrated.

The shipped recommender was trained on one device (the reference). Every other device
configuration with measurements (results stores under ``--stores``, e.g. part of this
host capped to another ISA, written by ``graphrec campaign run --isa-cap ...``) is held
out in turn:

* ``zero-shot``: the artefact's prediction with the held-out device's features;
* ``calibrated``: :mod:`graphrec.device.calibrate` with K = 5, 10, 20 probes taken from
  the held-out device's measured models that are also in the reference matrix
  (informative: the greedy design restricted to those models; random: ``--seeds``
  draws), with the ``offset`` and ``slope`` corrections, each fitted against the
  artefact's predictions for the reference device (``vs-predicted``, the default of
  ``graphrec calibrate``) or against the reference device's measurements
  (``vs-measured``); the probes' measurements are the rows already in the store (no
  new measurement), the other models are evaluated;
* ``all-data``: the offset correction (vs predicted) fitted on 4/5 of the device's
  models in the reference matrix, evaluated on the rest (5 folds): what this
  correction does with the device's full data. It is not a recommender retrained on
  that device (not run here).

Figures per method: mean regret of the recommended choice among the candidates the
device measured (``t(pick) / t(fastest) - 1``), median relative latency error
(``|pred / measured - 1|``) and how often the fastest was picked. Evaluation models are
the held-out device's models minus the probes of the row, paired with zero-shot on the
same models.

Usage:
    nice -n 19 python benchmarks/bench_calibrate.py --stores 'runs/devices/*.sqlite'
"""

from __future__ import annotations

import argparse
import glob
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from graphrec.api import load_artefact
from graphrec.bench.store import ResultStore
from graphrec.device.calibrate import (
    CorrectionModel,
    candidates_digest,
    fit_correction,
    measured_latencies,
    probe_pool,
    select_probes,
)
from graphrec.device.profile import DeviceProfile
from graphrec.recommender.features import device_vector, model_inputs

REPORTS = Path(__file__).parent / "reports"


def _snapshot(store: str) -> str:
    """A consistent copy of a store another process may be writing (SQLite backup)."""
    import sqlite3
    import tempfile

    dst = Path(tempfile.mkdtemp(prefix="bench-calibrate-")) / Path(store).name
    src = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    with sqlite3.connect(dst) as d:
        src.backup(d)
    src.close()
    return str(dst)


def _device_data(
    store: str,
) -> list[tuple[DeviceProfile, dict[str, dict[str, float]], dict[str, str]]]:
    store = _snapshot(store)
    out = []
    with ResultStore(store) as st:
        devices = st.devices()
        paths = {str(m["name"]): str(m["path"]) for m in st.models().values()}
    for dev_id, prof in devices.items():
        meas = measured_latencies(store, dev_id)
        out.append((DeviceProfile.from_dict(dict(prof)), meas, paths))
    return out


def evaluate_device(
    rec: Any,
    pool: Any,
    dev: DeviceProfile,
    meas: dict[str, dict[str, float]],
    paths: dict[str, str],
    ks: list[int],
    seeds: int,
    ref_vec: np.ndarray,
) -> dict[str, Any]:
    ids = rec.candidates
    cands = sorted({c for d in meas.values() for c in d if c in ids})
    models = [m for m, d in meas.items() if len(d) >= 2 and Path(paths.get(m, "")).is_file()]
    # artefact predictions for every model: zero-shot (device features) and reference
    zs_vec = device_vector(dev)
    pred_zs: dict[str, tuple[Any, np.ndarray]] = {}
    pred_ref: dict[str, tuple[Any, np.ndarray]] = {}
    for m in models:
        mi = model_inputs(paths[m])
        for vec, out in ((zs_vec, pred_zs), (ref_vec, pred_ref)):
            p, proba = rec.predict_arrays([mi.hetero], mi.graph_features[None, :], vec[None, :])
            out[m] = (p, proba)

    def score(
        m: str, pred: Any, proba: np.ndarray, delta: np.ndarray | None
    ) -> tuple[float, float, bool]:
        from graphrec.recommender.medn import MEDNPrediction

        lat = np.asarray(pred.log_latency_ms, dtype=np.float64)
        if delta is not None:
            lat = lat + delta[None, :]
        p2 = MEDNPrediction(
            log_latency_ms=lat,
            log_latency_sigma=pred.log_latency_sigma,
            log_cold_start_ms=pred.log_cold_start_ms,
            p_deployable=pred.p_deployable,
            embedding=pred.embedding,
            log_latency_rel_sigma=pred.log_latency_rel_sigma,
        )
        meas_m = meas[m]
        keep = [ids.index(c) for c in cands if c in meas_m]
        ranked = rec.rank_predictions(p2, proba, keep=keep)[0]
        pick = ids[keep[int(ranked.order[0])]]
        t = np.array([meas_m[ids[j]] for j in keep])
        regret = float(meas_m[pick] / t.min() - 1.0)
        err = float(np.median(np.abs(np.exp(lat[0, keep]) / t - 1.0)))
        return regret, err, bool(meas_m[pick] == t.min())

    def delta_for(cm: CorrectionModel, pred: Any) -> np.ndarray:
        d, _ = cm.predict(float(np.mean(pred.log_latency_ms[0])))
        return np.asarray(d)

    def run_set(eval_models: list[str], cm: CorrectionModel | None) -> dict[str, float]:
        r, e, h = [], [], []
        for m in eval_models:
            if cm is None:
                p, pr = pred_zs[m]
                out = score(m, p, pr, None)
            else:
                p, pr = pred_ref[m]
                out = score(m, p, pr, delta_for(cm, p))
            r.append(out[0])
            e.append(out[1])
            h.append(out[2])
        return {
            "regret_mean": float(np.mean(r)),
            "latency_err_median": float(np.median(e)),
            "top1": float(np.mean(h)),
            "n": len(eval_models),
        }

    in_pool = [m for m in models if m in pool.model_ids]
    rows: list[dict[str, Any]] = []
    zs_all = run_set(models, None)
    rows.append({"method": "zero-shot", "k": 0, "probes": "-", **zs_all})
    for k in ks:
        if k >= len(in_pool):
            continue
        draws: list[tuple[str, list[str]]] = []
        others = [m for m in pool.model_ids if m not in set(in_pool)]
        draws.append(("informative", select_probes(pool, k, exclude=others, columns=cands)))
        for s in range(seeds):
            rng = np.random.default_rng(1000 + s)
            draws.append(("random", [str(x) for x in rng.choice(in_pool, size=k, replace=False)]))
        ref_pred = {m: np.asarray(pred_ref[m][0].log_latency_ms[0]) for m in models}
        for method, reference in (
            ("offset", "predicted"),
            ("slope", "predicted"),
            ("offset", "measured"),
            ("slope", "measured"),
        ):
            acc: dict[str, list[dict[str, float]]] = {}
            for how, probes in draws:
                cm, _ = fit_correction(
                    pool,
                    {m: meas[m] for m in probes},
                    method=method,
                    predicted=ref_pred if reference == "predicted" else None,
                )
                ev = [m for m in models if m not in set(probes)]
                res = run_set(ev, cm)
                zs = run_set(ev, None)
                res["zero_shot_regret_same_models"] = zs["regret_mean"]
                acc.setdefault(how, []).append(res)
            for how, lst in acc.items():
                rows.append(
                    {
                        "method": f"calibrated-{method}-vs-{reference}",
                        "k": k,
                        "probes": how,
                        **{key: float(np.mean([d[key] for d in lst])) for key in lst[0]},
                        "regret_sd_over_draws": float(np.std([d["regret_mean"] for d in lst])),
                    }
                )
    # all-data correction, 5-fold over the pool models of the device
    if len(in_pool) >= 10:
        rng = np.random.default_rng(7)
        order = rng.permutation(in_pool)
        folds = np.array_split(order, 5)
        agg: list[dict[str, float]] = []
        for f in folds:
            train = [m for m in in_pool if m not in set(f)]
            cm, _ = fit_correction(
                pool, {m: meas[m] for m in train}, method="offset", predicted=ref_pred
            )
            ev = [m for m in models if m not in set(train)]
            agg.append(run_set(ev, cm))
        rows.append(
            {
                "method": "all-data-offset-vs-predicted",
                "k": len(in_pool) * 4 // 5,
                "probes": "5-fold",
                **{key: float(np.mean([d[key] for d in agg])) for key in agg[0]},
            }
        )
    return {
        "device_id": dev.device_id,
        "device_name": dev.name,
        "isa_flags": dev.isa_flags,
        "n_models": len(models),
        "n_models_in_reference": len(in_pool),
        "candidates": cands,
        "rows": rows,
    }


def summarise(out: dict[str, Any]) -> str:
    lines = [
        "# Calibration on held-out device configurations",
        "",
        f"Artefact: {out['artefact']} (trained on {out['reference_device']}). {out['date']}; "
        f"{out['cpu_s']} CPU s.",
        "",
    ]
    for d in out["devices"]:
        lines += [
            f"## {d['device_id']} ({d['n_models']} models measured, {d['n_models_in_reference']} "
            f"also in the reference matrix; candidates: {', '.join(d['candidates'])})",
            "",
            "| method | K | probes | mean regret | zero-shot regret, same models | "
            "median latency error | top-1 | eval models |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in d["rows"]:
            zs = r.get("zero_shot_regret_same_models")
            lines.append(
                f"| {r['method']} | {r['k']} | {r['probes']} | {r['regret_mean']:.3f} | "
                f"{'' if zs is None else f'{zs:.3f}'} | {r['latency_err_median']:.3f} | "
                f"{r['top1']:.2f} | {r['n']:.0f} |"
            )
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--stores", default="runs/devices/*.sqlite", help="glob of results stores")
    ap.add_argument("--ks", default="5,10,20")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--out", default=str(REPORTS / "calibrate_holdout"))
    a = ap.parse_args()
    t0 = time.process_time()
    rec, art = load_artefact()
    pool = probe_pool(rec.candidates)
    meta = json.loads(
        (Path(__file__).parents[1] / "graphrec/data/measurements/meta.json").read_text()
    )
    ref_vec = device_vector(meta["devices"][pool.device_id])
    out: dict[str, Any] = {
        "artefact": str(art),
        "candidates_digest": candidates_digest(rec.candidates),
        "reference_device": pool.device_id,
        "devices": [],
    }
    for store in sorted(glob.glob(a.stores)):
        for dev, meas, paths in _device_data(store):
            if dev.device_id == pool.device_id or not meas:
                continue
            print(f"{dev.device_id}: {len(meas)} models in {store}", flush=True)
            res = evaluate_device(
                rec, pool, dev, meas, paths, [int(k) for k in a.ks.split(",")], a.seeds, ref_vec
            )
            res["store"] = store
            out["devices"].append(res)
    out["cpu_s"] = round(time.process_time() - t0, 1)
    out["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    Path(a.out + ".json").write_text(json.dumps(out, indent=1) + "\n")
    md = summarise(out)
    Path(a.out + ".md").write_text(md + "\n")
    print(md)


if __name__ == "__main__":
    main()
