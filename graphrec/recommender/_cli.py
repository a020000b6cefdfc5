"""``graphrec recommend`` and ``graphrec train``."""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from typing import Any

from graphrec.cli import add_alias

__all__ = ["register"]


def _recommend(args: argparse.Namespace) -> int:
    from graphrec.api import recommend
    from graphrec.errors import OutOfDistributionWarning
    from graphrec.graph.shapes import parse_dim_value, parse_input_shape

    shapes = dict(parse_input_shape(s) for s in args.input_shape or [])
    dims = dict(parse_dim_value(s) for s in args.dim or [])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDistributionWarning)  # shown below instead
        rec = recommend(
            args.model,
            args.device,
            candidates=args.candidates,
            top_k=args.top_k,
            input_shapes=shapes or None,
            batch_size=args.batch_size,
            dim_values=dims or None,
            artefact=args.artefact,
            precision=args.precision,
            tolerance=args.tolerance,
            check_support=not args.no_support_check,
            probe=args.probe,
        )
    if args.verify:
        from graphrec.api import verify

        print(
            f"measuring the top {args.verify} choices on this machine (graphrec bench)...",
            file=sys.stderr,
        )
        verify(rec, args.verify, store=args.verify_store)
    if args.json:
        print(rec.to_json())
        return 0
    from graphrec.cli import console

    render(rec, console())
    return 0


def render(rec: Any, console: Any) -> None:
    """Print a :class:`~graphrec.api.Recommendation` as a rich table (shared with ``graphrec mine``)."""
    from rich.table import Table

    status = getattr(rec, "device_status", "unknown")
    tag = " [bold red]EXTRAPOLATED[/bold red]" if getattr(rec, "extrapolated", False) else ""
    table = Table(title=f"{rec.model_path} on {rec.device_name} ({rec.device_id}){tag}")
    table.add_column("#", justify="right")
    table.add_column("candidate", no_wrap=True)
    for col in ("latency ms (90% interval)", "P(fastest)", "exp. loss"):
        table.add_column(col, justify="right")
    table.add_column("deployable", justify="right")
    table.add_column("cold start ms", justify="right")
    measured = [c for c in rec.choices if c.measured_status is not None]
    if measured:
        table.add_column("measured ms", justify="right")
    for c in rec.choices:
        loss = "-" if c.expected_loss is None else f"{100 * c.expected_loss:+.0f} %"
        cells = [
            str(c.rank),
            c.candidate_id,
            f"{c.latency_ms:.3g} ({c.latency_low_ms:.3g}-{c.latency_high_ms:.3g})",
            f"{c.p_fastest:.2f}",
            loss,
            "no (needs torch)"
            if c.note and "PyTorch" in c.note
            else c.note
            if c.note and c.note.startswith("lossy")
            else f"no: {c.note}"
            if c.note
            else f"{'yes' if c.deployable else 'no'} ({c.p_deployable:.2f})",
            f"{c.cold_start_ms:.3g}",
        ]
        if measured:
            if c.measured_ms is not None:
                cells.append(f"{c.measured_ms:.3g}")
            else:
                cells.append(c.measured_status or "")
        table.add_row(*cells)
    console.print(table)
    console.print(f"recommended: [bold]{rec.best.candidate_id}[/bold]")
    ran = [c for c in measured if c.measured_ms is not None]
    if ran:
        fastest = min(ran, key=lambda c: c.measured_ms or 0.0)
        first = measured[0]
        if first.measured_ms is not None:
            loss = first.measured_ms / (fastest.measured_ms or 1.0) - 1.0
            verdict = (
                "the recommendation was the fastest of them"
                if fastest is first
                else f"the recommendation was {100 * loss:.0f} % slower than {fastest.candidate_id}"
            )
        else:
            verdict = f"the recommendation did not run ({first.measured_status})"
        console.print(f"measured {len(measured)} choices on this machine: {verdict}")
    statement = getattr(rec, "statement", None)
    if statement and status == "extrapolated":
        console.print(f"[bold red]{statement}[/bold red]")
    elif statement:
        console.print(f"[yellow]note:[/yellow] {statement}")
    for w in rec.warnings:
        if w != statement:
            console.print(f"[yellow]warning:[/yellow] {w}")


def _train(args: argparse.Namespace) -> int:
    from graphrec.recommender.train import train

    medn: dict[str, Any] = {"epochs": args.epochs}
    head: dict[str, Any] = {
        "n_particles": args.particles,
        "n_pso_iterations": args.pso_iterations,
        "weighting": args.weighting,
    }
    t0 = time.perf_counter()
    rec = train(
        args.data,
        None,
        candidates=args.candidates,
        medn_params=medn,
        head_params=head,
        seed=args.seed,
        model_root=args.model_root,
        alpha=_alpha(args.alpha),
    )
    info = rec.info_
    parts = ["graphrec train --data", *args.data, "--out", args.out]
    if args.model_root:
        parts += ["--model-root", args.model_root]
    if args.candidates:
        parts += ["--candidates", *args.candidates]
    parts += [
        f"--epochs {args.epochs} --particles {args.particles} --pso-iterations "
        f"{args.pso_iterations} --weighting {args.weighting} --seed {args.seed} "
        f"--alpha {args.alpha}"
    ]
    info["command"] = " ".join(parts)
    rec.save(args.out)
    from graphrec.recommender.train import error_model

    error_model(args.data, candidates=args.candidates).save(args.out)
    print(
        f"trained on {info['n_samples']} samples ({info['n_models']} models, "
        f"{info['n_devices']} device(s), {len(rec.candidates)} candidates) in "
        f"{time.perf_counter() - t0:.1f} s; artefact: {args.out}; blend alpha {rec.alpha_:.2f} "
        f"({info.get('alpha_fit', {}).get('method', '?')})",
        file=sys.stderr,
    )
    return 0


def _alpha(text: str) -> float | str:
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--alpha must be 'auto' or a number, got {text!r}"
        ) from None


def register(subparsers: Any) -> None:
    """Add ``recommend`` and ``train`` to the ``graphrec`` CLI."""
    p = subparsers.add_parser(
        "recommend",
        help="rank deployment choices for an ONNX model on a device",
        description="Predict, for every deployment candidate, the latency (with a 90 % "
        "interval), the probability of being fastest, the expected latency loss against "
        "the best choice, deployability and cold start.",
    )
    p.add_argument("model", help="path to an .onnx file")
    p.add_argument("--device", default="auto", help="'auto' (this machine) or a profile JSON")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--artefact", default=None, help="trained recommender folder")
    p.add_argument(
        "--candidates",
        action="append",
        metavar="PATTERN",
        help="keep candidates matching this id / shell pattern / runtime name (repeatable)",
    )
    p.add_argument("--top-k", type=int, default=None, help="show only the best K choices")
    p.add_argument(
        "--precision",
        default=None,
        metavar="LIST",
        help="precisions to rank, e.g. fp32,bf16,int8 or all (default: fp32 only; lossy "
        "choices are still listed with their speed-up and risk)",
    )
    p.add_argument(
        "--tolerance",
        type=float,
        default=None,
        metavar="REL",
        help="relative L2 output error you accept (e.g. 1e-2): ranks every precision, "
        "each lossy choice weighed by its chance to stay within it",
    )
    p.add_argument(
        "--probe",
        action="store_true",
        help="first probe the model's operators that no support table knows, on this "
        "machine's runtimes (seconds per new operator; cached)",
    )
    p.add_argument(
        "--no-support-check",
        action="store_true",
        help="skip the adapters' rules and the operator support tables",
    )
    p.add_argument("--batch-size", type=int, default=1, help="size of dynamic batch dims (1)")
    p.add_argument(
        "--input-shape",
        action="append",
        metavar="NAME=D0,D1",
        help="explicit input shape (repeatable)",
    )
    p.add_argument("--dim", action="append", metavar="NAME=V", help="symbolic dim value")
    p.add_argument(
        "--verify",
        type=int,
        default=0,
        metavar="K",
        help="also measure the top K choices on this machine with the harness (--device auto)",
    )
    add_alias(
        p,
        p.add_argument("--verify-store", default=None, help="results store for --verify's rows"),
        "--verify-db",
    )
    p.set_defaults(func=_recommend)

    t = subparsers.add_parser(
        "train",
        help="train the recommender from results stores",
        description="Fit MEDN (the multi-task encoder-decoder network that predicts "
        "latency, cold start and deployability per deployment choice) and the "
        "PSO-W-CatBoost head (CatBoost whose class and sample weights a particle swarm "
        "searches) on 'graphrec bench' results "
        "and write an artefact folder (meta.json, medn.pt, head.cbm).",
    )
    t.add_argument(
        "--data",
        nargs="+",
        required=True,
        metavar="STORE_OR_DATASET",
        help="training data: results stores (SQLite) or dataset folders (graphrec dataset "
        "build), mixed as needed",
    )
    t.add_argument("--out", required=True, help="artefact folder to write")
    t.add_argument("--candidates", nargs="+", default=None, help="restrict to these ids")
    t.add_argument("--epochs", type=int, default=120, help="MEDN epochs (120)")
    t.add_argument("--particles", type=int, default=8, help="PSO particles (8)")
    t.add_argument("--pso-iterations", type=int, default=6, help="PSO iterations (6)")
    t.add_argument(
        "--weighting",
        choices=("pso", "heuristic", "none"),
        default="pso",
        help="head weighting: PSO search, heuristic weights, or plain CatBoost",
    )
    t.add_argument("--model-root", default=None, help="folder with moved model files")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument(
        "--alpha",
        default="0.5",
        help="weight of the PSO-W-CatBoost head against MEDN in the ranking (0.5), or 'auto' "
        "to fit it on inner family-held-out folds (3x the training time; on the 136-model "
        "development data the fitted value did worse than 0.5)",
    )
    t.set_defaults(func=_train)
