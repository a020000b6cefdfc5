"""``graphrec modules generate|measure|fit|select|predict``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["register"]


def _counts(text: str | None, scale: float) -> dict[str, int]:
    from graphrec.errors import GraphRecError
    from graphrec.recommender.modules.generate import DEFAULT_COUNTS, PARAM_RANGES

    if not text:
        return {k: max(1, round(v * scale)) for k, v in DEFAULT_COUNTS.items()}
    out: dict[str, int] = {}
    for part in text.split(","):
        name, _, n = part.partition("=")
        if name not in PARAM_RANGES or not n.isdigit():
            raise GraphRecError(
                f"--counts: {part!r} is not TYPE=N with TYPE one of {sorted(PARAM_RANGES)}"
            )
        out[name] = int(n)
    return out


def _generate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from graphrec.errors import GraphRecError
    from graphrec.recommender.modules.generate import adaptive_points, sample_points
    from graphrec.recommender.modules.measure import add_points, load_points

    if args.adaptive:
        path = Path(args.dir) / "fit_report.json"
        if not path.exists():
            raise GraphRecError(f"{path}: no such file (run `graphrec modules fit` first)")
        report = json.loads(path.read_text())
        errors: dict[str, float] = {}
        for mtype, info in report["types"].items():
            if mtype != "generic":
                errors.update(info.get("cv_err", {}))
        pts = adaptive_points(load_points(args.dir), errors, args.adaptive, seed=args.seed)
        n = add_points(args.dir, pts, round_name=f"adaptive seed={args.seed}")
        bad = sum(e > 0.10 for e in errors.values())
        print(f"{n} new points near the {bad} of {len(errors)} points predicted worse than ±10 %")
        return 0
    batches = [int(b) for b in args.batch.split(",")]
    pts = sample_points(_counts(args.counts, args.scale), seed=args.seed, batches=batches)
    n = add_points(args.dir, pts, round_name=f"space-filling seed={args.seed}")
    print(f"{n} new module points ({len(pts) - n} already there) in {args.dir}")
    return 0


def _measure(args: argparse.Namespace) -> int:
    from graphrec.recommender.modules.measure import DEFAULT_CANDIDATES, measure_points

    cands = args.candidates or list(DEFAULT_CANDIDATES)
    n = measure_points(
        args.dir,
        candidates=cands,
        load=args.load,
        max_minutes=args.max_minutes,
        chunk=args.chunk,
        repeat=args.repeat,
        types=args.types.split(",") if args.types else None,
        on_progress=lambda d, t: print(f"  {d}/{t} pending points measured", file=sys.stderr),
    )
    print(f"{n} rows measured")
    return 0


def _fit(args: argparse.Namespace) -> int:
    from graphrec.recommender.modules.select import fit_and_select

    report = fit_and_select(
        args.dir,
        out=args.out,
        max_predict_us=args.max_predict_us,
        max_size_kb=args.max_size_kb,
        seed=args.seed,
    )
    print(json.dumps(report["summary"], indent=1))
    return 0


def _select(args: argparse.Namespace) -> int:
    from graphrec.recommender.modules.select import print_selection

    print_selection(args.artefact)
    return 0


def _predict(args: argparse.Namespace) -> int:
    from graphrec.recommender.modules.predictor import ModuleLatencyPredictor

    pred = ModuleLatencyPredictor.load(args.artefact)
    res = pred.predict_model(args.model, batch_size=args.batch_size)
    if args.json:
        print(json.dumps(res, indent=1))
        return 0
    for cand, ms in res["latency_ms"].items():
        raw = res["raw_latency_ms"][cand]
        print(f"{cand}: {ms:.3f} ms (raw: overhead + module sum = {raw:.3f} ms)")
    if args.modules:
        for m in res["modules"]:
            print(f"  {m['module_type']:<13} {m['nodes']}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``modules`` to the ``graphrec`` CLI."""
    p = subparsers.add_parser(
        "modules",
        help="per-module latency prediction: generate, measure, fit, select, predict",
        description="Single-module datasets measured with the harness, several regressors "
        "per module type, automatic selection under a time/size budget, and the module-sum "
        "latency of a whole model.",
    )
    sub = p.add_subparsers(dest="modules_command", required=True)
    g = sub.add_parser("generate", help="sample module points and write their ONNX files")
    g.add_argument("--dir", default="runs/modules", help="module-dataset folder")
    g.add_argument("--counts", default=None, help="TYPE=N,... (default: the built-in counts)")
    g.add_argument("--scale", type=float, default=1.0, help="multiply the default counts")
    g.add_argument("--batch", default="1", help="batch sizes to draw from, e.g. 1,2,4")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument(
        "--adaptive",
        type=int,
        default=0,
        metavar="N",
        help="instead: N points near those the last fit predicted worst (fit_report.json)",
    )
    g.set_defaults(func=_generate)
    m = sub.add_parser("measure", help="measure pending points with the harness (resumable)")
    m.add_argument("--dir", default="runs/modules")
    m.add_argument("--candidates", action="append", metavar="ID", help="candidate id (repeatable)")
    m.add_argument("--load", type=float, default=0.0, help="background-load level in [0, 1]")
    m.add_argument("--max-minutes", type=float, default=8.0, help="stop after about this long")
    m.add_argument("--chunk", type=int, default=8, help="models per harness call")
    m.add_argument("--repeat", type=int, default=1, help="rounds per pair")
    m.add_argument("--types", default=None, help="only these module types (comma list)")
    m.set_defaults(func=_measure)
    f = sub.add_parser("fit", help="fit every regressor per module type and select the set")
    f.add_argument("--dir", default="runs/modules")
    f.add_argument("--out", default="graphrec/data/modules", help="artefact folder")
    f.add_argument("--max-predict-us", type=float, default=2000.0, help="budget per prediction")
    f.add_argument("--max-size-kb", type=float, default=512.0, help="budget per regressor")
    f.add_argument("--seed", type=int, default=0)
    f.set_defaults(func=_fit)
    s = sub.add_parser("select", help="print the selected regressors and their Pareto fronts")
    s.add_argument("--artefact", default=None, help="artefact folder (default: shipped)")
    s.set_defaults(func=_select)
    q = sub.add_parser("predict", help="module-sum latency of an ONNX model")
    q.add_argument("model")
    q.add_argument("--artefact", default=None)
    q.add_argument("--batch-size", type=int, default=1)
    q.add_argument("--json", action="store_true")
    q.add_argument("--modules", action="store_true", help="list the detected modules")
    q.set_defaults(func=_predict)
