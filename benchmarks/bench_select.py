"""Figures of ``graphrec select`` for the README: ablation, compound ranking, constraints,
warm answer time.

Prints and writes (``--out``, default ``benchmarks/reports/``) ``select.md`` and
``select.json``:

1. **Ablation** on the held-out queries (``graphrec/data/selection/queries.yaml``, never
   used for training or tuning) and, separately, on the development queries the design
   was tuned on: TF-IDF only, + Labeled-LDA, + frozen encoder, + siamese fine-tuned
   (single scale), + multi-scale. Top-1 task accuracy, top-5 model hit rate, the task
   distribution's own accuracy, MRR, each accuracy with its 95 % Wilson interval; by
   query origin; discordant pairs between neighbouring variants (McNemar counts).
2. **Compound ranking** (relevance minus cost; latency predicted by
   ``graphrec.recommend`` on this machine's profile): the same accuracies after cost.
3. **Constraints**: every held-out query with ``--max-latency-ms`` at 0.5, 2 and 10 ms;
   results over the limit (must be 0) and results returned.
4. **Warm answer time**: ``Selector.select`` in one process, every held-out query three
   times after a warm-up (median, p90, max); and the ``graphrec select`` command as a
   fresh process with warm caches (median of 5).

Never asserts. The machine is shared and noisy: run it niced, and read the times as
upper bounds::

    nice -n 19 .venv/bin/python benchmarks/bench_select.py
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("tfidf", "tfidf+llda", "frozen", "twin", "multiscale")
LABELS = {
    "tfidf": "TF-IDF only",
    "tfidf+llda": "+ Labeled-LDA",
    "frozen": "+ frozen encoder (MiniLM mean pooling)",
    "twin": "+ siamese fine-tuned (document scale)",
    "multiscale": "+ multi-scale (token, phrase, document)",
}


def wilson(k: int, n: int) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion k/n."""
    if n == 0:
        return math.nan, math.nan
    z = 1.96
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return centre - half, centre + half


def per_query(selector: Any, queries: list[Any], compound: bool = False) -> list[dict[str, Any]]:
    """Per query: whether the first result's task is right, whether the top 5 hit."""
    import numpy as np

    rows = []
    for q in queries:
        if compound:
            sel = selector.select(q.text, top_k=5)
            ids = [r.model_id for r in sel.results]
            first_task = sel.results[0].task if sel.results else None
            task_ok = first_task in q.tasks
            top_task = next(iter(sel.task_distribution))
        else:
            rel, p_task, _ = selector.relevance(q.text)
            order = np.argsort(-rel, kind="stable")
            ids = [selector.entries[int(i)].model_id for i in order]
            task_ok = selector.entries[int(order[0])].task in q.tasks
            top_task = selector.tasks[int(np.argmax(p_task))]
        rank = next((j + 1 for j, m in enumerate(ids) if q.matches(m)), None)
        rows.append(
            {
                "query": q.text,
                "origin": q.origin,
                "task_ok": bool(task_ok),
                "hit5": bool(rank is not None and rank <= 5),
                "dist_ok": top_task in q.tasks,
                "rr": 0.0 if rank is None else 1.0 / rank,
                "top1": ids[0] if ids else None,
            }
        )
    return rows


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(rows)
    out: dict[str, Any] = {"n": n}
    for key in ("task_ok", "hit5", "dist_ok"):
        k = sum(r[key] for r in rows)
        lo, hi = wilson(k, n)
        out[key] = {"value": k / n if n else math.nan, "k": k, "ci": [lo, hi]}
    out["mrr"] = statistics.fmean(r["rr"] for r in rows) if rows else math.nan
    return out


def discordant(a: list[dict[str, Any]], b: list[dict[str, Any]], key: str) -> tuple[int, int]:
    """(queries only b gets right, queries only a gets right)."""
    only_b = sum(1 for x, y in zip(a, b, strict=True) if y[key] and not x[key])
    only_a = sum(1 for x, y in zip(a, b, strict=True) if x[key] and not y[key])
    return only_b, only_a


def fmt(s: dict[str, Any], key: str) -> str:
    v = s[key]
    return f"{v['value']:.3f} [{v['ci'][0]:.2f}, {v['ci'][1]:.2f}]"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "reports")
    ap.add_argument("--catalogue", type=Path, default=ROOT / "runs" / "select" / "catalogue.sqlite")
    ap.add_argument(
        "--skip", default="", help="comma list of: ablation,compound,constraints,timing"
    )
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    warnings.simplefilter("ignore")
    os.environ["GRAPHREC_SELECT_CATALOGUE"] = str(args.catalogue)

    from graphrec.selection.catalogue import Catalogue
    from graphrec.selection.evaluate import DEV, HELD_OUT, load_queries
    from graphrec.selection.select import Selector

    held = load_queries(HELD_OUT)
    dev = load_queries(DEV)
    cat = Catalogue.open(args.catalogue)
    entries = cat.entries()
    report: dict[str, Any] = {
        "machine": platform.node(),
        "load_before": os.getloadavg()[0],
        "catalogue_entries": len(entries),
        "held_out_queries": len(held),
        "dev_queries": len(dev),
    }
    lines = [
        "# graphrec select: figures",
        "",
        f"Catalogue: {len(entries)} entries. Held-out queries: {len(held)} "
        f"({sum(q.origin == 'scenario' for q in held)} scenarios, "
        f"{sum(q.origin == 'doc' for q in held)} from package documentation). "
        f"Development queries (tuning only): {len(dev)}.",
        f"Machine: shared 2-vCPU box, load average {report['load_before']:.1f} at start "
        "(timings are upper bounds).",
        "",
    ]
    selectors = {v: Selector(cat, variant=v) for v in VARIANTS}

    if "ablation" not in skip:
        abl: dict[str, Any] = {}
        rows_by: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for v in VARIANTS:
            t0 = time.perf_counter()
            rh = per_query(selectors[v], held)
            rd = per_query(selectors[v], dev)
            rows_by[v] = {"held": rh, "dev": rd}
            abl[v] = {
                "held_out": summarise(rh),
                "dev": summarise(rd),
                "by_origin": {
                    o: summarise([r for r in rh if r["origin"] == o]) for o in ("scenario", "doc")
                },
                "seconds": time.perf_counter() - t0,
            }
            print(
                v, fmt(abl[v]["held_out"], "task_ok"), fmt(abl[v]["held_out"], "hit5"), flush=True
            )
        pairs = {}
        for a, b in itertools.pairwise(VARIANTS):
            pairs[f"{a} -> {b}"] = {
                k: discordant(rows_by[a]["held"], rows_by[b]["held"], k)
                for k in ("task_ok", "hit5")
            }
        report["ablation"] = abl
        report["ablation_pairs"] = pairs
        report["misses_multiscale"] = [
            r for r in rows_by["multiscale"]["held"] if not (r["task_ok"] and r["hit5"])
        ]
        lines += [
            "## Ablation (relevance ranking, held-out queries)",
            "",
            "Accuracy with its 95 % Wilson interval. *task* = the first result's task is "
            "acceptable; *hit@5* = an acceptable model is in the first five; *dist* = the "
            "most likely task of the task distribution is acceptable.",
            "",
            "| variant | top-1 task | top-5 model hit | dist task | MRR | dev top-1 task | dev hit@5 |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for v in VARIANTS:
            h, d = abl[v]["held_out"], abl[v]["dev"]
            lines.append(
                f"| {LABELS[v]} | {fmt(h, 'task_ok')} | {fmt(h, 'hit5')} | {fmt(h, 'dist_ok')} "
                f"| {h['mrr']:.3f} | {d['task_ok']['value']:.3f} | {d['hit5']['value']:.3f} |"
            )
        lines += ["", "By origin (held-out, top-1 task / hit@5):", ""]
        for v in VARIANTS:
            bo = abl[v]["by_origin"]
            lines.append(
                f"* {LABELS[v]}: scenarios {bo['scenario']['task_ok']['value']:.3f} / "
                f"{bo['scenario']['hit5']['value']:.3f} (n={bo['scenario']['n']}), docs "
                f"{bo['doc']['task_ok']['value']:.3f} / {bo['doc']['hit5']['value']:.3f} "
                f"(n={bo['doc']['n']})"
            )
        lines += ["", "Discordant queries between neighbouring variants (gained, lost):", ""]
        for name, d in pairs.items():
            lines.append(f"* {name}: top-1 task {d['task_ok']}, hit@5 {d['hit5']}")
        lines += ["", "Held-out misses of the multi-scale variant:", ""]
        for r in report["misses_multiscale"]:
            lines.append(f"* {r['query']!r}: first {r['top1']}")
        lines.append("")

    if "compound" not in skip:
        t0 = time.perf_counter()
        rows = per_query(selectors["multiscale"], held, compound=True)
        report["compound"] = {**summarise(rows), "seconds_first_pass": time.perf_counter() - t0}
        c = report["compound"]
        lines += [
            "## Compound ranking (relevance minus cost, this machine's device profile)",
            "",
            f"Top-1 task {fmt(c, 'task_ok')}, top-5 model hit {fmt(c, 'hit5')}, MRR "
            f"{c['mrr']:.3f} (first pass, latency predictions computed and cached: "
            f"{c['seconds_first_pass']:.0f} s).",
            "",
        ]

    if "constraints" not in skip:
        cons = {}
        sel = selectors["multiscale"]
        for limit in (0.5, 2.0, 10.0):
            over = returned = empty = 0
            for q in held:
                res = sel.select(q.text, top_k=5, max_latency_ms=limit)
                returned += len(res.results)
                empty += not res.results
                over += sum(1 for r in res.results if r.latency_ms is None or r.latency_ms > limit)
            cons[str(limit)] = {"over_limit": over, "returned": returned, "empty_queries": empty}
        report["constraints"] = cons
        lines += [
            "## Constraints (`--max-latency-ms`, every held-out query, top 5)",
            "",
            "| limit ms | results over the limit | results returned | queries with none |",
            "| --- | --- | --- | --- |",
        ]
        for limit_s, cc in cons.items():
            lines.append(
                f"| {limit_s} | {cc['over_limit']} | {cc['returned']} | {cc['empty_queries']} |"
            )
        lines.append("")

    if "timing" not in skip:
        sel = selectors["multiscale"]
        for q in held[:5]:
            sel.select(q.text)
        times = []
        for _ in range(3):
            for q in held:
                t0 = time.perf_counter()
                sel.select(q.text, top_k=5)
                times.append(1e3 * (time.perf_counter() - t0))
        times.sort()
        warm = {
            "median_ms": statistics.median(times),
            "p90_ms": times[int(0.9 * (len(times) - 1))],
            "max_ms": times[-1],
            "n": len(times),
        }
        cli = []
        cmd = [sys.executable, "-m", "graphrec.cli", "select", held[0].text, "--json"]
        env = {**os.environ, "GRAPHREC_SELECT_CATALOGUE": str(args.catalogue)}
        for _ in range(5):
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True, env=env)
            cli.append(time.perf_counter() - t0)
        report["timing"] = {"in_process": warm, "cli_process_s": cli}
        lines += [
            "## Warm answer time",
            "",
            f"In process (`Selector.select`, multi-scale, latencies cached), {warm['n']} "
            f"answers: median {warm['median_ms']:.1f} ms, p90 {warm['p90_ms']:.1f} ms, "
            f"max {warm['max_ms']:.1f} ms.",
            f"`graphrec select` as a new process (imports torch and transformers, loads "
            f"MiniLM): median {statistics.median(cli):.2f} s over 5 runs "
            f"(min {min(cli):.2f} s).",
            "",
        ]
    report["load_after"] = os.getloadavg()[0]
    lines.append(f"Load average at the end: {report['load_after']:.1f}.")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "select.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    (args.out / "select.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
