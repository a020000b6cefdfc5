"""``graphrec automl``: generate a light model for a task and deploy it on a device."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["register"]


def _cmd_automl(args: argparse.Namespace) -> int:
    from graphrec.automl.pipeline import run_pipeline

    def say(line: str) -> None:
        if not args.quiet:
            print(f"[automl] {line}", file=sys.stderr, flush=True)

    summary = run_pipeline(
        args.data,
        args.out,
        budget_min=args.budget_min,
        target_device=args.target_device,
        latency_target_ms=args.latency_target_ms,
        seed=args.seed,
        depth=args.depth,
        channels=args.channels,
        subsample=args.subsample,
        measure=not args.no_measure,
        artefact=args.artefact,
        progress=say,
    )
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
        return 0
    meas = summary["measured_latency_ms"]
    print(f"model:        {summary['onnx_path']}")
    print(f"test accuracy {summary['test_accuracy']:.4f}")
    print(f"search        {summary['search_minutes']:.2f} CPU-minutes")
    print(f"deployment    {summary['candidate_id']}")
    print(
        f"latency       predicted {summary['predicted_latency_ms']:.4f} ms, measured "
        + (f"{meas:.4f} ms" if meas is not None else f"- ({summary['measured_status']})")
    )
    return 0


def register(subparsers: Any) -> None:
    """Add ``graphrec automl`` to the CLI."""
    from graphrec.automl.data import TASKS

    p = subparsers.add_parser(
        "automl",
        help="generate a light model (augmentation + architecture search) and deploy it",
        description="Search an augmentation policy (differentiable, sigmoid-gated), then a "
        "cell architecture (4-stage DARTS-style search, optionally latency-aware with "
        "graphrec's predictor), train the model, export ONNX, pick its deployment with "
        "graphrec recommend and measure it. Resumes when run again on the same --out.",
    )
    p.add_argument("--data", required=True, choices=TASKS, help="the task")
    p.add_argument("--out", default="runs/automl", metavar="DIR", help="result folder")
    p.add_argument("--budget-min", type=float, default=10.0, help="CPU-minute budget (default 10)")
    p.add_argument(
        "--target-device",
        default="auto",
        metavar="D",
        help="auto (this machine) or a device profile JSON",
    )
    p.add_argument(
        "--latency-target-ms",
        type=float,
        metavar="MS",
        help="add a latency term to the architecture search with this target",
    )
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.add_argument("--depth", type=int, default=5, help="cells of the final network")
    p.add_argument("--channels", type=int, default=8, help="channels of the first cells")
    p.add_argument("--subsample", type=float, help=argparse.SUPPRESS)
    p.add_argument("--artefact", metavar="DIR", help="trained recommender folder")
    p.add_argument(
        "--no-measure", action="store_true", help="predict only (no harness measurement)"
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=_cmd_automl)
