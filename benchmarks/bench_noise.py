"""Measurement noise: the protocol of harness 1.0 against harness 2.0, side by side.

Both protocols measure the same zoo slice (one model per family, picked from the shipped
dataset with a moderate latency) on the same candidates at threads=1 and threads=2, for
``--rounds`` rounds. Round ``r`` runs one protocol after the other (the order alternates
by round), each in fresh worker processes, so both see the same machine over the same
hours. The stores (one per protocol) live in ``--work`` and a rerun resumes them.

Figures, per protocol and thread count:

* **within ±10 %**: the share of repeat measurements (rows of one (model, candidate)
  over rounds) within ±10 % of their median; also the median coefficient of variation;
* **re-measure regret**: pick each model's fastest candidate from one round, look it up
  in another round: how much slower it is there than that round's fastest (mean over
  models and ordered pairs of rounds, in %);
* **time per measurement**: the worker's wall time per row (conversion cached), and the
  campaign's wall time per row (worker starts, reference and store included).

Harness 2.0 rows timed while the machine was busy (``busy=1``) are counted, and the
figures are also given for its clean rows only.

Usage: ``python benchmarks/bench_noise.py [--models 12] [--rounds 5]``; it prints a table
and writes ``benchmarks/reports/bench_noise.{json,md}``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from graphrec.bench.harness import run_campaign
from graphrec.bench.protocol import MeasureConfig
from graphrec.bench.store import ResultStore
from graphrec.device import DeviceProfile

ROOT = Path(__file__).resolve().parent.parent
CANDIDATES = [
    f"{c}/threads={t}"
    for t in (1, 2)
    for c in (
        "onnxruntime/cpu/fp32/opt=all",
        "onnxruntime/cpu/fp32/opt=basic",
        "openvino/cpu/fp32/hint=latency",
        "mnn/cpu/fp32",
    )
]
PROTOCOLS: dict[str, Callable[[], MeasureConfig]] = {
    "1.0": MeasureConfig.legacy,
    "2.0": MeasureConfig,
}


def pick_models(n: int, lo_ms: float = 0.3, hi_ms: float = 20.0) -> list[str]:
    """``n`` zoo model ids, one per family in turn, whose shipped onnxruntime threads=1
    latency lies in ``[lo_ms, hi_ms]`` (fp32 variants; deterministic)."""
    import pandas as pd

    data = ROOT / "graphrec" / "data" / "measurements"
    meas = pd.read_parquet(data / "measurements.parquet")
    sel = meas[
        (meas.candidate_id == "onnxruntime/cpu/fp32/opt=all/threads=1")
        & (meas.status == "ok")
        & (meas.variant == "fp32")
    ]
    lat = sel.groupby(["family", "model_id"]).p50_ms.median().reset_index()
    lat = lat[(lat.p50_ms >= lo_ms) & (lat.p50_ms <= hi_ms)]
    by_family = {f: sorted(g.model_id) for f, g in lat.groupby("family")}
    out: list[str] = []
    for i in itertools.count():
        added = False
        for fam in sorted(by_family):
            if i < len(by_family[fam]) and len(out) < n:
                out.append(by_family[fam][i])
                added = True
        if len(out) >= n or not added:
            return out
    return out


def model_files(ids: list[str], zoo: Path, work: Path) -> list[Path]:
    """ONNX files of the ids: from the zoo folder when there, else regenerated."""
    from graphrec.zoo.entry import ZooEntry

    paths = []
    for mid in ids:
        p = zoo / f"{mid}.onnx"
        if not p.is_file():
            p = work / "models" / f"{mid}.onnx"
            if not p.is_file():
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_bytes(ZooEntry.from_model_id(mid).onnx_bytes())
        paths.append(p)
    return paths


def _pairs(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[int, dict[str, Any]]]:
    out: dict[tuple[str, str], dict[int, dict[str, Any]]] = {}
    for r in rows:
        if r["status"] == "ok" and r["p50_ms"]:
            out.setdefault((r["model_name"], r["candidate_id"]), {})[int(r["round"])] = r
    return out


def figures(rows: list[dict[str, Any]], threads: int, clean_only: bool = False) -> dict[str, Any]:
    """Repeatability, re-measure regret and time per row for one thread count."""
    rows = [r for r in rows if int(r["threads"]) == threads]
    if clean_only:
        rows = [r for r in rows if not r.get("busy")]
    pairs = _pairs(rows)
    within: list[bool] = []
    cvs: list[float] = []
    ratios: list[tuple[int, float]] = []  # (round, row / its pair's median)
    for by_round in pairs.values():
        vals = [float(r["p50_ms"]) for r in by_round.values()]
        if len(vals) < 3:
            continue
        med = float(np.median(vals))
        within += [abs(v - med) <= 0.10 * med for v in vals]
        cvs.append(float(np.std(vals, ddof=1) / np.mean(vals)))
        ratios += [(rnd, float(r["p50_ms"]) / med) for rnd, r in by_round.items()]
    # The part of the spread common to a whole round (the machine slower for minutes):
    # each row's ratio divided by its round's median ratio. A diagnosis, not the target.
    factor = {
        rnd: float(np.median([x for k, x in ratios if k == rnd])) for rnd in {k for k, _ in ratios}
    }
    within_wo_round = [abs(x / factor[k] - 1.0) <= 0.10 for k, x in ratios]
    models = sorted({m for m, _ in pairs})
    cands = sorted({c for _, c in pairs})
    regrets: list[float] = []
    for m in models:
        rounds = set.intersection(*[set(pairs.get((m, c), {})) for c in cands]) if cands else set()
        for i, j in itertools.permutations(sorted(rounds), 2):
            lat_i = {c: float(pairs[(m, c)][i]["p50_ms"]) for c in cands}
            lat_j = {c: float(pairs[(m, c)][j]["p50_ms"]) for c in cands}
            pick = min(lat_i, key=lat_i.__getitem__)
            regrets.append(lat_j[pick] / min(lat_j.values()) - 1.0)
    walls = [float(r["wall_s"]) for r in rows if r.get("wall_s")]
    return {
        "rows": len(rows),
        "pairs": sum(1 for v in pairs.values() if len(v) >= 3),
        "within_10pct": float(np.mean(within)) if within else None,
        "within_10pct_round_factor_removed": float(np.mean(within_wo_round))
        if within_wo_round
        else None,
        "round_factors": {str(k): round(v, 4) for k, v in sorted(factor.items())},
        "median_cv": float(np.median(cvs)) if cvs else None,
        "remeasure_regret": float(np.mean(regrets)) if regrets else None,
        "regret_cases": len(regrets),
        "worker_wall_s_mean": float(np.mean(walls)) if walls else None,
        "worker_wall_s_median": float(np.median(walls)) if walls else None,
        "busy_share": float(np.mean([bool(r.get("busy")) for r in rows])) if rows else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=12, help="zoo models (one per family)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--zoo", default=str(ROOT / "runs" / "zoo"))
    parser.add_argument("--work", default=str(ROOT / "runs" / "bench_noise"))
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "reports" / "bench_noise"))
    parser.add_argument("--report-only", action="store_true", help="no measuring, only figures")
    args = parser.parse_args()

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    ids = pick_models(args.models)
    paths = model_files(ids, Path(args.zoo), work)
    device = DeviceProfile.detect(probe_gpus=False)
    timing_path = work / "campaign_wall.json"
    timing: dict[str, list[list[float]]] = (
        json.loads(timing_path.read_text()) if timing_path.is_file() else {}
    )
    if not args.report_only:
        for r in range(args.rounds):
            order = list(PROTOCOLS) if r % 2 == 0 else list(reversed(PROTOCOLS))
            for name in order:
                with ResultStore(work / f"harness-{name}.sqlite") as store:
                    t0 = time.perf_counter()
                    rows = run_campaign(
                        paths,
                        store=store,
                        device=device,
                        patterns=CANDIDATES,
                        repeat=r + 1,
                        config=PROTOCOLS[name](),
                        cache_dir=work / "cache",
                    )
                    dt = time.perf_counter() - t0
                if rows:
                    timing.setdefault(name, []).append([dt, len(rows)])
                    timing_path.write_text(json.dumps(timing))
                    print(f"round {r} harness {name}: {len(rows)} rows in {dt:.0f} s", flush=True)

    result: dict[str, Any] = {
        "device": device.device_id,
        "models": ids,
        "candidates": CANDIDATES,
        "rounds": args.rounds,
        "protocols": {},
    }
    for name in PROTOCOLS:
        path = work / f"harness-{name}.sqlite"
        if not path.is_file():
            continue
        with ResultStore(path, readonly=True) as store:
            rows = store.rows(device_id=device.device_id)
        spans = timing.get(name, [])
        per_row = sum(d for d, _ in spans) / max(sum(n for _, n in spans), 1) if spans else None
        entry: dict[str, Any] = {"campaign_wall_s_per_row": per_row}
        for t in (1, 2):
            entry[f"threads={t}"] = figures(rows, t)
            if name != "1.0":
                entry[f"threads={t} clean"] = figures(rows, t, clean_only=True)
        result["protocols"][name] = entry

    lines = [
        f"# Measurement noise, harness 1.0 vs 2.0 ({device.device_id})",
        "",
        f"{len(ids)} zoo models ({', '.join(ids)}), {len(CANDIDATES)} candidates, "
        f"{args.rounds} rounds per protocol, interleaved. Reproduce: "
        f"`python benchmarks/bench_noise.py --models {args.models} --rounds {args.rounds}`.",
        "",
        "| protocol | threads | rows | within ±10 % | (round factor removed) | median CV "
        "| re-measure regret | worker s/row | busy rows |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def pct(x: float | None, digits: int = 1) -> str:
        return "–" if x is None else f"{100 * x:.{digits}f} %"

    for name, entry in result["protocols"].items():
        for key, f in entry.items():
            if not isinstance(f, dict):
                continue
            wall = f["worker_wall_s_mean"]
            lines.append(
                f"| {name} | {key.removeprefix('threads=')} | {f['rows']} | "
                f"{pct(f['within_10pct'])} | {pct(f['within_10pct_round_factor_removed'])} | "
                f"{pct(f['median_cv'])} | "
                f"{pct(f['remeasure_regret'], 2)} | {'–' if wall is None else f'{wall:.2f}'} | "
                f"{pct(f['busy_share'], 0)} |"
            )
    walls = {n: e["campaign_wall_s_per_row"] for n, e in result["protocols"].items()}
    if walls.get("1.0") and walls.get("2.0"):
        ratio = walls["2.0"] / walls["1.0"]
        result["time_ratio"] = ratio
        lines += [
            "",
            f"Campaign wall time per row: harness 1.0 {walls['1.0']:.2f} s, harness 2.0 "
            f"{walls['2.0']:.2f} s ({ratio:.2f}x).",
        ]
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    out.with_suffix(".md").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
