"""Which runtime wins where: the fastest fp32 choice per model on two devices.

Compares the shipped dataset's device with a device campaign store, on the models both
measured and the fp32 candidates both measured (``--skip-runtimes`` leaves out runtimes a
campaign pass did not cover yet). Per model, the fastest candidate is the one with the
lowest median p50 over its ``ok`` rows. Prints and saves: how often each runtime is the
fastest on each device, how often the fastest candidate (and runtime) is the same on
both, the regret of taking the first device's fastest on the second, and the median
latency ratio second / first per runtime.

Usage::

    python benchmarks/device_fragmentation.py --store runs/devices/amd-epyc-f127f524f4.sqlite \\
        --out benchmarks/reports/device_fragmentation.json
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np


def _fastest_table(df: Any) -> Any:
    ok = df[(df.status == "ok") & (df.precision == "fp32")]
    return ok.groupby(["model_sha256", "candidate_id"], observed=True).p50_ms.median().reset_index()


def main(argv: list[str] | None = None) -> int:
    import pandas as pd

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="graphrec/data/measurements", help="shipped dataset folder")
    ap.add_argument(
        "--store", required=True, help="results store of the second device (file or PostgreSQL URL)"
    )
    ap.add_argument("--skip-runtimes", default="litert,executorch")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)

    from graphrec.bench.store import ResultStore

    first = pd.read_parquet(Path(args.data) / "measurements.parquet")
    store = ResultStore(args.store, readonly=True)
    second = pd.DataFrame(store.rows())
    dev1 = str(first.device_id.iloc[0])
    dev2 = str(second.device_id.iloc[0])
    skip = {s for s in args.skip_runtimes.split(",") if s}
    a, b = _fastest_table(first), _fastest_table(second)
    cands = {c for c in set(a.candidate_id) & set(b.candidate_id) if c.split("/")[0] not in skip}
    a, b = a[a.candidate_id.isin(cands)], b[b.candidate_id.isin(cands)]
    both = sorted(set(a.model_sha256) & set(b.model_sha256))
    a, b = a[a.model_sha256.isin(both)], b[b.model_sha256.isin(both)]
    wa = a.loc[a.groupby("model_sha256").p50_ms.idxmin()].set_index("model_sha256").candidate_id
    wb = b.loc[b.groupby("model_sha256").p50_ms.idxmin()].set_index("model_sha256").candidate_id

    def runtime(c: str) -> str:
        return c.split("/")[0]

    lat2 = b.set_index(["model_sha256", "candidate_id"]).p50_ms
    best2 = b.groupby("model_sha256").p50_ms.min()
    regret = [float(lat2[(s, wa[s])] / best2[s] - 1) for s in both if (s, wa[s]) in lat2.index]
    j = a.merge(b, on=["model_sha256", "candidate_id"], suffixes=("_1", "_2"))
    j["ratio"] = j.p50_ms_2 / j.p50_ms_1
    ratios = j.groupby(j.candidate_id.map(runtime)).ratio.median()
    out: dict[str, Any] = {
        "first_device": dev1,
        "second_device": dev2,
        "models": len(both),
        "candidates": sorted(cands),
        "fastest_runtime_first": dict(collections.Counter(map(runtime, wa)).most_common()),
        "fastest_runtime_second": dict(collections.Counter(map(runtime, wb)).most_common()),
        "same_fastest_candidate": float(np.mean([wa[s] == wb[s] for s in both])),
        "same_fastest_runtime": float(np.mean([runtime(wa[s]) == runtime(wb[s]) for s in both])),
        "first_fastest_on_second": {
            "models": len(regret),
            "mean_regret": float(np.mean(regret)),
            "median_regret": float(np.median(regret)),
        },
        "median_latency_ratio_second_over_first": {k: float(v) for k, v in ratios.items()},
        "second_busy_share": float(second.busy.fillna(0).astype(float).mean()),
        "harness_versions": {
            dev1: sorted(map(str, first.harness_version.dropna().unique())),
            dev2: sorted(map(str, second.harness_version.dropna().unique())),
        },
    }
    print(json.dumps(out, indent=1))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
