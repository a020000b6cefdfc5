"""The recommender on real third-party models (issue 13's acceptance), per model.

Reads a results store of the real-model set measured on this device (``graphrec zoo real
fetch`` + the harness, see ``graphrec/data/real/DATASET.md``) and the manifest's split.
For every model of the chosen split it asks :func:`graphrec.recommend` (default: exact
fp32 choices only, the adapters' rules and operator probes on) for the same inputs the
store measured, and compares the pick with what was measured in that store:

Latencies are the median over ``ok`` rounds, over the rounds not flagged ``busy`` where a
pair has any.

* **regret** of the pick: ``latency(pick) / latency(fastest exact choice) - 1``; a pick
  that did not run, or whose outputs were outside the tolerance, costs
  ``max(worst regret, 100 %)`` (as the project's own evaluation charges a failure);
* **top-1**: the pick was the fastest measured exact choice;
* **failed picks**: the pick's status was not ``ok``;
* the latency prediction of the pick against its measurement;
* the same regret for **fixed policies** (always one candidate): the best one on the
  training part (chosen without looking at the evaluated part) and every candidate
  (the best of them in hindsight is shown too).

Lossy choices (bf16, fp16, int8) are outside the comparison: the user did not opt in.

Usage::

    python benchmarks/eval_real.py --store runs/real/real.sqlite --split heldout \\
        --artefact graphrec/data/recommender --name heldout
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

MANIFEST = Path("graphrec/data/real/manifest.json")


def measured(store_path: Path) -> tuple[dict[str, dict[str, tuple[str, float | None]]], dict]:
    """Per model sha: candidate -> (status, median p50 over ok rounds); stored models."""
    from graphrec.bench.store import ResultStore

    by: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    with ResultStore(store_path, readonly=True) as store:
        models = store.models()
        for r in store.iter_rows():
            by[str(r["model_sha256"])][str(r["candidate_id"])].append(r)
    out: dict[str, dict[str, tuple[str, float | None]]] = {}
    for sha, cands in by.items():
        out[sha] = {}
        for cid, rows in cands.items():
            ok_rows = [r for r in rows if r["status"] == "ok" and r["p50_ms"]]
            # Rounds measured on a quiet machine make the label when there are any.
            clean = [r for r in ok_rows if not r.get("busy")]
            ok = [float(r["p50_ms"]) for r in (clean or ok_rows)]
            if ok:
                out[sha][cid] = ("ok", float(np.median(ok)))
            else:
                out[sha][cid] = (str(rows[-1]["status"]), None)
    return out, models


def _exact(cid: str) -> bool:
    return cid.split("/")[2] == "fp32"


def regret_of(choice: str, meas: dict[str, tuple[str, float | None]]) -> float | None:
    """Regret of ``choice`` among the exact choices measured, failure-charged."""
    lat = {c: v for c, (st, v) in meas.items() if _exact(c) and st == "ok" and v}
    if not lat:
        return None
    best = min(lat.values())
    worst = max(v / best - 1.0 for v in lat.values())
    if choice in lat:
        return lat[choice] / best - 1.0
    return max(worst, 1.0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", type=Path, required=True)
    ap.add_argument("--manifest", type=Path, default=MANIFEST)
    ap.add_argument("--split", default="heldout", help="heldout, train or all")
    ap.add_argument("--artefact", default=None)
    ap.add_argument("--probe", action="store_true", help="recommend(probe=True)")
    ap.add_argument("--name", default="real")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/reports"))
    args = ap.parse_args(argv)

    import torch

    import graphrec
    from graphrec.errors import GraphRecError, OutOfDistributionWarning

    torch.set_num_threads(1)
    manifest = json.loads(args.manifest.read_text())
    split_of = {m["sha256"]: m["split"] for m in manifest["models"]}
    pkg_of = {m["sha256"]: m["package"] for m in manifest["models"]}
    id_of = {m["sha256"]: m["id"] for m in manifest["models"]}
    meas, models = measured(args.store)
    rows: list[dict[str, Any]] = []
    fixed: dict[str, list[float]] = defaultdict(list)
    train_fixed: dict[str, list[float]] = defaultdict(list)
    for sha, m in sorted(meas.items(), key=lambda kv: id_of.get(kv[0], kv[0])):
        split = split_of.get(sha)
        if split is None:
            continue
        if not any(st == "ok" and _exact(c) for c, (st, _) in m.items()):
            if args.split in ("all", split):
                rows.append({"model": id_of[sha], "split": split, "skipped": "no exact choice ran"})
            continue
        exact_ids = sorted(c for c in m if _exact(c))
        if split == "train":
            for c in exact_ids:
                rg = regret_of(c, m)
                if rg is not None:
                    train_fixed[c].append(rg)
        if args.split != "all" and split != args.split:
            continue
        for c in exact_ids:
            rg = regret_of(c, m)
            if rg is not None:
                fixed[c].append(rg)
        info = models.get(sha, {})
        path = Path(str(info.get("path") or ""))
        spec = info.get("spec") or {}
        shapes = dict(zip(spec.get("input_names", []), spec.get("input_shapes", []), strict=False))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", OutOfDistributionWarning)
                rec = graphrec.recommend(
                    path, artefact=args.artefact, input_shapes=shapes or None, probe=args.probe
                )
        except GraphRecError as exc:
            rows.append({"model": id_of[sha], "split": split, "skipped": str(exc)[:200]})
            continue
        pick = rec.best
        st, lat = m.get(pick.candidate_id, ("not measured", None))
        reg = regret_of(pick.candidate_id, m)
        fastest = min(
            ((c, v) for c, (s, v) in m.items() if _exact(c) and s == "ok" and v),
            key=lambda kv: kv[1],
        )
        rows.append(
            {
                "model": id_of[sha],
                "package": pkg_of[sha],
                "split": split,
                "pick": pick.candidate_id,
                "pick_status": st,
                "pick_ms": lat,
                "predicted_ms": pick.latency_ms,
                "fastest": fastest[0],
                "fastest_ms": fastest[1],
                "regret": reg,
                "top1": pick.candidate_id == fastest[0],
                "blocked": sum(1 for c in rec.choices if c.note and not c.note.startswith("lossy")),
            }
        )
    scored = [r for r in rows if "regret" in r and r["regret"] is not None]
    n = len(scored)
    common = [c for c, v in fixed.items() if len(v) == n]
    best_train = (
        min(
            (c for c in train_fixed if c in common),
            key=lambda c: float(np.mean(train_fixed[c])),
            default=None,
        )
        if train_fixed
        else None
    )
    best_hind = min(common, key=lambda c: float(np.mean(fixed[c])), default=None)

    def summary(vals: list[float]) -> dict[str, float]:
        a = np.asarray(vals, dtype=float)
        return {
            "mean": round(float(a.mean()), 4),
            "median": round(float(np.median(a)), 4),
            "p90": round(float(np.quantile(a, 0.9)), 4),
        }

    pred_err = [
        abs(r["predicted_ms"] / r["pick_ms"] - 1.0) for r in scored if r.get("pick_ms") is not None
    ]
    result: dict[str, Any] = {
        "store": str(args.store),
        "split": args.split,
        "artefact": args.artefact or "packaged",
        "models": n,
        "skipped": [r for r in rows if "skipped" in r],
        "graphrec": {
            **summary([r["regret"] for r in scored]),
            "top1": round(float(np.mean([r["top1"] for r in scored])), 4) if n else None,
            "failed_picks": sum(1 for r in scored if r["pick_status"] != "ok"),
            "pred_median_abs_err": round(float(np.median(pred_err)), 4) if pred_err else None,
            "pred_within_10pct": round(float(np.mean(np.asarray(pred_err) <= 0.1)), 4)
            if pred_err
            else None,
        },
        "best_fixed_on_train": None
        if best_train is None
        else {"candidate": best_train, **summary(fixed[best_train])},
        "best_fixed_in_hindsight": None
        if best_hind is None
        else {"candidate": best_hind, **summary(fixed[best_hind])},
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"real_eval_{args.name}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1, default=str))
    lines = [
        f"# Real models ({args.split}, {n} models): `{args.store}`, artefact "
        f"`{result['artefact']}`",
        "",
        "| model | package | pick | status | regret | top-1 | predicted ms | measured ms "
        "| fastest exact | fastest ms |",
        "|---|---|---|---|---:|---|---:|---:|---|---:|",
    ]
    for r in scored:
        pm = "" if r["pick_ms"] is None else f"{r['pick_ms']:.3g}"
        lines.append(
            f"| {r['model']} | {r['package']} | {r['pick']} | {r['pick_status']} | "
            f"{100 * r['regret']:.1f} % | {'yes' if r['top1'] else 'no'} | "
            f"{r['predicted_ms']:.3g} | {pm} | {r['fastest']} | {r['fastest_ms']:.3g} |"
        )
    g = result["graphrec"]
    lines += [
        "",
        f"graphrec: mean regret {100 * g['mean']:.1f} %, median {100 * g['median']:.1f} %, "
        f"top-1 {100 * (g['top1'] or 0):.0f} %, failed picks {g['failed_picks']}, "
        f"latency of the pick: median error {100 * (g['pred_median_abs_err'] or 0):.0f} %, "
        f"within ±10 % {100 * (g['pred_within_10pct'] or 0):.0f} %",
    ]
    for key, label in (
        ("best_fixed_on_train", "best fixed choice on the training part"),
        ("best_fixed_in_hindsight", "best fixed choice in hindsight"),
    ):
        b = result[key]
        if b:
            lines.append(
                f"{label}: `{b['candidate']}` mean regret {100 * b['mean']:.1f} %, "
                f"median {100 * b['median']:.1f} %"
            )
    for r in result["skipped"]:
        lines.append(f"skipped: {r['model']} ({r['skipped']})")
    text = "\n".join(lines) + "\n"
    stem.with_suffix(".md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
