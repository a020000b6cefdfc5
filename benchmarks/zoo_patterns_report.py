"""Summarise the campaign over the real-export-pattern zoo families (issue 13, part 2).

Reads the results store written by

    graphrec campaign run --zoo runs/zoo-patterns --store runs/zoo-patterns/campaign.sqlite \
        --snapshot runs/zoo-patterns/no-snapshot.sqlite.gz --count 84 --int8-fraction 0.2 \
        --families paddle_cnn tf_nhwc_cnn vad_stream rnn_decoder tiny_mlp ocr_rec ocr_det

and prints, per family: models measured, rows per runtime and status, the share of
``ok`` rows, which runtime was fastest (lowest p50 among ``ok`` rows of a model, any
thread count) and the median onnxruntime p50; plus the campaign's wall time from its
sessions file. Writes the same text to ``benchmarks/reports/zoo_patterns.md``.

Usage:
    python benchmarks/zoo_patterns_report.py [--store runs/zoo-patterns/campaign.sqlite]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
from collections import Counter, defaultdict
from pathlib import Path


def _family(model_name: str) -> tuple[str, str]:
    parts = model_name.split("-")
    variant = parts[2] if len(parts) > 2 and parts[2].startswith("int8") else "fp32"
    return parts[0], variant


def _session_starts(sessions: Path) -> list[str]:
    """Start times of the campaign sessions (a stopped session logs no end event)."""
    starts = []
    if sessions.is_file():
        for line in sessions.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                if row.get("event") == "start":
                    starts.append(str(row["time"]))
    return starts


def main() -> None:
    """Print and save the summary."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", default="runs/zoo-patterns/campaign.sqlite")
    ap.add_argument("--out", default="benchmarks/reports/zoo_patterns.md")
    args = ap.parse_args()
    con = sqlite3.connect(f"file:{args.store}?mode=ro", uri=True)
    rows = con.execute("select model_name, runtime, status, p50_ms from results").fetchall()
    by_fam: dict[str, Counter[tuple[str, str]]] = defaultdict(Counter)
    models: dict[str, set[str]] = defaultdict(set)
    variants: dict[str, Counter[str]] = defaultdict(Counter)
    best: dict[str, tuple[float, str]] = {}
    ort_p50: dict[str, list[float]] = defaultdict(list)
    for name, runtime, status, p50 in rows:
        fam, variant = _family(name)
        by_fam[fam][(runtime, status)] += 1
        if name not in models[fam]:
            variants[fam][variant] += 1
        models[fam].add(name)
        if status == "ok" and p50 is not None:
            if name not in best or p50 < best[name][0]:
                best[name] = (p50, runtime)
            if runtime == "onnxruntime":
                ort_p50[fam].append(p50)
    lines = ["# Campaign over the real-export-pattern zoo families", ""]
    first, last = con.execute("select min(created_at), max(created_at) from results").fetchone()
    starts = _session_starts(Path(str(args.store) + ".sessions.jsonl"))
    total = Counter(r[2] for r in rows)
    lines.append(
        f"store {args.store}: {len(rows)} rows, {sum(len(m) for m in models.values())} models, "
        f"statuses {dict(total.most_common())}; {len(starts)} session(s) "
        f"started at {', '.join(starts)}; rows written {first} .. {last} "
        "(2 shared vCPUs, other jobs running: latencies are noisy)"
    )
    for fam in sorted(by_fam):
        counts = by_fam[fam]
        ok = sum(n for (_, s), n in counts.items() if s == "ok")
        winners = Counter(
            rt for name, (_, rt) in best.items() if _family(name)[0] == fam
        ).most_common()
        med = statistics.median(ort_p50[fam]) if ort_p50[fam] else float("nan")
        lines += [
            "",
            f"## {fam}: {len(models[fam])} models {dict(variants[fam])}, "
            f"{sum(counts.values())} rows, {100 * ok / max(1, sum(counts.values())):.0f} % ok",
            f"fastest runtime per model: {dict(winners)}; median onnxruntime p50 {med:.3f} ms",
        ]
        per_rt: dict[str, Counter[str]] = defaultdict(Counter)
        for (rt, status), n in counts.items():
            per_rt[rt][status] += n
        for rt in sorted(per_rt):
            lines.append(f"  {rt:12s} {dict(per_rt[rt].most_common())}")
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)


if __name__ == "__main__":
    main()
