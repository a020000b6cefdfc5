"""Warm latency of ``graphrec.recommend`` per model (target: <= 100 ms), and artefact load time.

For every model: one warm-up call, then ``--repeat`` timed calls; the per-model median
is reported. As a baseline measured in the same run, the time to parse the model alone
(``graphrec.graph.load``, the part every answer needs) is reported too, so the ratio
shows what the learned models add. Also reports the cold artefact load time (target < 1 s)
and the artefact size.

Usage::

    python benchmarks/bench_recommend.py --artefact ART_DIR MODEL_OR_DIR ... \
        [--out benchmarks/results/bench_recommend.json] [--torch-threads N]

Run it under the measurement mutex (``flock /tmp/graphrec-measure.lock ...``) so that a
campaign does not share the cores with it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", nargs="+", help="ONNX files or folders")
    ap.add_argument("--artefact", required=True, help="trained recommender folder")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--limit", type=int, default=30, help="at most this many models")
    ap.add_argument("--out", default=None, help="write JSON results here")
    ap.add_argument(
        "--torch-threads",
        type=int,
        default=None,
        help="set torch's intra-op threads first (default: torch's own default, as a user "
        "calling graphrec.recommend gets it)",
    )
    args = ap.parse_args(argv)

    import torch

    if args.torch_threads is not None:
        torch.set_num_threads(args.torch_threads)
    threads = torch.get_num_threads()
    from graphrec.api import _detected, recommend
    from graphrec.graph import load
    from graphrec.recommender import Recommender

    paths: list[Path] = []
    for m in args.models:
        p = Path(m)
        paths += sorted(p.glob("*.onnx")) if p.is_dir() else [p]
    paths = paths[: args.limit]
    art = Path(args.artefact)
    size_mb = sum(f.stat().st_size for f in art.iterdir() if f.is_file()) / 1e6
    loads = []
    for _ in range(3):
        t = time.perf_counter()
        Recommender.load(art)
        loads.append(time.perf_counter() - t)
    device = _detected()
    rows: list[dict[str, Any]] = []
    for p in paths:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            recommend(p, device, artefact=art)
            ts = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                recommend(p, device, artefact=art)
                ts.append(time.perf_counter() - t)
        gs = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            load(p)
            gs.append(time.perf_counter() - t)
        rows.append(
            {
                "model": p.name,
                "recommend_ms": 1000 * statistics.median(ts),
                "parse_only_ms": 1000 * statistics.median(gs),
            }
        )
        print(
            f"{p.name:45s} recommend {rows[-1]['recommend_ms']:7.1f} ms   "
            f"parse only {rows[-1]['parse_only_ms']:6.1f} ms",
            flush=True,
        )
    rec = [float(r["recommend_ms"]) for r in rows]
    summary: dict[str, float] = {
        "models": len(rows),
        "recommend_median_ms": statistics.median(rec),
        "recommend_max_ms": max(rec),
        "share_within_100ms": sum(r <= 100 for r in rec) / len(rec),
        "parse_only_median_ms": statistics.median(float(r["parse_only_ms"]) for r in rows),
        "artefact_load_median_s": statistics.median(loads),
        "artefact_mb": size_mb,
        "torch_threads": threads,
    }
    summary["ratio_recommend_vs_parse"] = (
        summary["recommend_median_ms"] / summary["parse_only_median_ms"]
    )
    print(json.dumps(summary, indent=1))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"summary": summary, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
