"""``graphrec bench``: measure models on every installed runtime; ``graphrec bench report``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from graphrec.cli import add_alias
from graphrec.errors import GraphRecError, ShapeSpecError

__all__ = ["register"]


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected comma-separated integers >= 0, got {text!r}")
    return values


def _shapes(items: list[str] | None) -> dict[str, list[int]] | None:
    if not items:
        return None
    out: dict[str, list[int]] = {}
    for item in items:
        name, sep, dims = item.partition("=")
        try:
            shape = [int(d) for d in dims.split(",")]
        except ValueError:
            shape = []
        if not sep or not name or not shape:
            raise ShapeSpecError(f"--input-shape expects NAME=D0,D1,..., got {item!r}")
        out[name] = shape
    return out


def _values(items: list[str] | None) -> dict[str, float] | None:
    if not items:
        return None
    out: dict[str, float] = {}
    for item in items:
        name, sep, text = item.partition("=")
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not sep or not name or value != value:
            raise ShapeSpecError(f"--value expects NAME=NUMBER, got {item!r}")
        out[name] = value
    return out


def _console() -> Any:
    from rich.console import Console

    console = Console()
    if not console.is_terminal:  # files and pipes get full candidate ids, not ellipses
        console = Console(width=200)
    return console


def _cmd_report(args: argparse.Namespace) -> int:
    from graphrec.bench.report import write_html_report
    from graphrec.bench.store import ResultStore, is_postgres_url

    url = is_postgres_url(args.store)
    if not url and not Path(args.store).is_file():
        raise GraphRecError(f"{args.store}: no such results store")
    default_out = Path("bench.html") if url else Path(args.store).with_suffix(".html")
    with ResultStore(args.store) as store:
        rows = store.rows()
        out = write_html_report(rows, args.out or default_out)
        print(f"wrote {out} ({len(rows)} rows)")
        if args.csv:
            print(f"wrote {store.export_csv(args.csv)}")
        if args.parquet:
            print(f"wrote {store.export_parquet(args.parquet)}")
        if not args.json:
            _print_summary(rows)
    return 0


def _print_summary(rows: list[dict[str, Any]], *, title: str = "graphrec bench") -> None:
    from rich.table import Table

    from graphrec.bench.report import summarize

    table = Table(title=title)
    for col in (
        "model",
        "fastest candidate",
        "p50 ms",
        "cold ms",
        "slowest runnable",
        "p50 ms",
        "x",
        "statuses",
    ):
        table.add_column(col, justify="right" if col in ("p50 ms", "cold ms", "x") else "left")
    for ms in summarize(rows):
        f, s = ms.fastest, ms.slowest
        table.add_row(
            ms.model_name,
            f.candidate_id if f else "-",
            f"{f.p50_ms:.3f}" if f and f.p50_ms else "-",
            f"{f.cold_start_ms:.1f}" if f and f.cold_start_ms else "-",
            s.candidate_id if s else "-",
            f"{s.p50_ms:.3f}" if s and s.p50_ms else "-",
            f"{ms.slowdown:.1f}" if ms.slowdown else "-",
            " ".join(f"{k}={v}" for k, v in sorted(ms.statuses.items())),
        )
    _console().print(table)


def _print_rows(rows: list[dict[str, Any]]) -> None:
    from rich.table import Table

    table = Table(title="measurements")
    for col in (
        "model",
        "candidate",
        "status",
        "p50 ms",
        "p10-p90 ms",
        "cold ms",
        "conv s",
        "peak MiB",
        "max rel err",
    ):
        table.add_column(col)
    for r in rows:
        table.add_row(
            str(r.get("model_name")),
            str(r.get("candidate_id")),
            str(r.get("status")),
            f"{r['p50_ms']:.3f}" if r.get("p50_ms") else "-",
            f"{r['p10_ms']:.3f}-{r['p90_ms']:.3f}" if r.get("p10_ms") else "-",
            f"{r['cold_start_ms']:.1f}" if r.get("cold_start_ms") else "-",
            f"{r['convert_s']:.2f}" if r.get("convert_s") is not None else "-",
            f"{r['peak_rss_mb']:.0f}" if r.get("peak_rss_mb") else "-",
            f"{r['max_rel_err']:.1e}" if r.get("max_rel_err") is not None else "-",
        )
    _console().print(table)


def _cmd_bench(args: argparse.Namespace) -> int:
    if args.models and args.models[0] == "report":
        if len(args.models) > 1:
            raise GraphRecError(
                "'graphrec bench report' takes no model arguments (use --store, --out)"
            )
        return _cmd_report(args)
    if not args.models:
        raise GraphRecError("no model given: graphrec bench MODEL_OR_DIR... (or 'bench report')")
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from graphrec.bench.harness import run_campaign
    from graphrec.bench.store import ResultStore
    from graphrec.device import DeviceProfile

    config = protocol_config(args, timeout_s=args.timeout, memory_limit_mb=args.memory_limit)
    device = DeviceProfile.detect()
    console = Console(stderr=True)
    runtimes = [r for r in args.runtimes.split(",") if r] if args.runtimes else None
    rows: list[dict[str, Any]] = []
    with ResultStore(args.store) as store:
        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
            disable=args.json,
        )
        task_id = progress.add_task("planning", total=None)

        def on_plan(n: int) -> None:
            progress.update(task_id, total=n, description="measuring")

        def on_start(task: Any) -> None:
            progress.update(task_id, description=f"{task.model.name} {task.candidate.candidate_id}")

        def on_result(row: dict[str, Any]) -> None:
            progress.advance(task_id)

        try:
            with progress:
                rows = run_campaign(
                    args.models,
                    store=store,
                    device=device,
                    runtimes=runtimes,
                    patterns=args.candidates,
                    threads=args.threads,
                    repeat=args.repeat,
                    max_rounds=args.max_rounds,
                    config=config,
                    cache_dir=Path(args.cache_dir) if args.cache_dir else None,
                    resume=args.resume,
                    input_shapes=_shapes(args.input_shape),
                    batch_size=args.batch_size,
                    input_values=_values(args.value),
                    on_plan=on_plan,
                    on_start=on_start,
                    on_result=on_result,
                )
        except KeyboardInterrupt:
            console.print(
                f"[yellow]interrupted: {store.count()} rows are saved in {args.store}; "
                "run the same command again to resume[/yellow]"
            )
            return 130
        all_rows = [r for r in store.rows() if r["device_id"] == device.device_id]
        models = {r["model_sha256"] for r in rows} or None
        shown = [r for r in all_rows if models is None or r["model_sha256"] in models]
    _print_input_rules(args, console)
    if args.json:
        print(json.dumps(shown, indent=2, default=str))
        return 0
    _print_rows(shown)
    _print_summary(shown, title=f"graphrec bench on {device.name} ({device.device_id})")
    _console().print(f"{len(rows)} new rows, {len(shown)} shown, store: {args.store}")
    return 0


def _print_input_rules(args: argparse.Namespace, console: Any, limit: int = 10) -> None:
    """Say, on stderr, which rule chose each input of the (first ``limit``) model files."""
    from rich.markup import escape

    from graphrec.runtimes.input_infer import infer_inputs

    files: list[Path] = []
    for m in args.models:
        p = Path(m)
        files.extend(sorted(p.rglob("*.onnx")) if p.is_dir() else [p])
    for f in files[:limit]:
        try:
            inf = infer_inputs(
                f,
                overrides=_shapes(args.input_shape),
                input_values=_values(args.value),
                batch_size=args.batch_size,
            )
        except GraphRecError:
            continue
        parts = []
        for name, rule in inf.rules.items():
            what = (
                f"= {inf.values[name]:g}"
                if name in inf.values
                else str(inf.shapes.get(name, "default shape"))
            )
            parts.append(f"{name} {what} ({rule})")
        console.print(escape(f"inputs of {f.name}: " + "; ".join(parts)), soft_wrap=True)
    if len(files) > limit:
        console.print(
            f"(input rules of {len(files) - limit} more models: graphrec zoo real inputs)"
        )


def register(subparsers: Any) -> None:
    """Add ``graphrec bench`` (and ``bench report``) and ``graphrec campaign`` to the CLI."""
    p = subparsers.add_parser(
        "bench",
        help="measure models on every installed inference runtime",
        description="Measure ONNX models on every installed runtime and deployment "
        "candidate, each in an isolated worker process, storing one row per result in a "
        "SQLite store as soon as it exists (rerun to resume). "
        "'graphrec bench report --store FILE --out report.html' writes an HTML report.",
    )
    p.add_argument("models", nargs="*", metavar="MODEL_OR_DIR", help="ONNX files or folders")
    p.add_argument("--runtimes", metavar="A,B", help="runtimes to use (default: all installed)")
    p.add_argument(
        "--candidates",
        action="append",
        metavar="PATTERN",
        help="keep candidates whose id matches this shell pattern (repeatable), "
        "e.g. 'onnxruntime/*' or '*/threads=1'",
    )
    p.add_argument("--threads", type=_int_list, default=(1, 2), help="thread counts (default 1,2)")
    add_alias(
        p,
        p.add_argument(
            "--store",
            default="bench.sqlite",
            metavar="FILE|URL",
            help="results store: a SQLite file (default bench.sqlite) or a "
            "postgresql://user@host/db URL",
        ),
        "--db",
    )
    p.add_argument("--repeat", type=int, default=1, help="rounds in fresh processes (default 1)")
    add_protocol_arguments(p)
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per measurement")
    p.add_argument("--memory-limit", type=int, default=8192, metavar="MB", help="worker memory cap")
    p.add_argument("--max-time", type=float, default=None, help="max seconds of warm runs")
    add_alias(
        p,
        p.add_argument(
            "--input-shape",
            action="append",
            metavar="NAME=D0,D1",
            help="explicit input shape (repeatable)",
        ),
        "--shape",
    )
    p.add_argument("--batch-size", type=int, default=1, help="value of dynamic batch dims")
    p.add_argument(
        "--value",
        action="append",
        metavar="NAME=NUMBER",
        help="fill this input with a constant instead of random data (e.g. sr=16000)",
    )
    p.add_argument("--cache-dir", help="conversion cache (default ~/.cache/graphrec)")
    p.add_argument(
        "--resume",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="skip results already stored (default); --no-resume measures again and replaces",
    )
    p.add_argument("--json", action="store_true", help="print rows as JSON")
    p.add_argument("--out", help="(report) HTML file to write")
    p.add_argument("--csv", help="(report) also export rows to CSV")
    p.add_argument("--parquet", help="(report) also export rows to Parquet")
    p.set_defaults(func=_cmd_bench)

    from graphrec.bench.campaign import register as register_campaign

    register_campaign(subparsers)
    _register_store(subparsers)


def _register_store(subparsers: Any) -> None:
    """``graphrec store copy SRC DST`` and ``graphrec store digest STORE``."""
    p = subparsers.add_parser(
        "store",
        help="results stores: copy between SQLite and PostgreSQL, digest",
        description="Results stores are SQLite files (bench.sqlite) or PostgreSQL URLs "
        "(postgresql://user@host/db). 'copy' moves every row from SRC into DST (created "
        "when missing; rows DST already holds are kept) and checks the result by a hash "
        "of every row; 'digest' prints that hash.",
    )
    sub = p.add_subparsers(dest="store_cmd", metavar="SUBCOMMAND", required=True)
    cp = sub.add_parser("copy", help="copy every row of SRC into DST (either backend)")
    cp.add_argument("src", metavar="SRC", help="source store (file or URL; read only)")
    cp.add_argument("dst", metavar="DST", help="destination store (file or URL)")
    cp.add_argument("--batch", type=int, default=2000, help="rows per transaction (2000)")
    cp.add_argument("--json", action="store_true", help="print the report as JSON")
    cp.set_defaults(func=_cmd_store_copy)
    dg = sub.add_parser("digest", help="SHA-256 of every row of a store")
    dg.add_argument("store", metavar="STORE", help="store (file or URL)")
    dg.set_defaults(func=_cmd_store_digest)


def _cmd_store_copy(args: argparse.Namespace) -> int:
    import dataclasses

    from graphrec.bench.store import copy_store

    if args.batch < 1:
        raise GraphRecError(f"--batch must be >= 1, got {args.batch}")
    report = copy_store(args.src, args.dst, batch=args.batch)
    if args.json:
        print(json.dumps({**dataclasses.asdict(report), "identical": report.identical}, indent=2))
    else:
        if report.migrated_from is not None:
            print(
                f"{report.source} is schema version {report.migrated_from}: copied from a "
                "migrated temporary copy (the file is unchanged)"
            )
        extra = ", ".join(f"{t} +{n}" for t, n in report.records.items())
        rate = report.rows / report.seconds if report.seconds > 0 else float("inf")
        print(
            f"copied {report.rows} rows from {report.source} to {report.destination}: "
            f"{report.inserted} new, {report.rows - report.inserted} already there "
            f"({extra}) in {report.seconds:.2f} s ({rate:.0f} rows/s)"
        )
        if report.identical:
            verdict = "identical row sets"
        elif report.destination_rows > report.rows:
            verdict = (
                f"the destination also holds {report.destination_rows - report.rows} other rows"
            )
        else:
            verdict = "row sets differ (the destination kept its own version of some keys)"
        print(f"digest {report.source_digest[:16]} -> {report.destination_digest[:16]}: {verdict}")
    return 0 if report.identical or report.destination_rows > report.rows else 1


def _cmd_store_digest(args: argparse.Namespace) -> int:
    from graphrec.bench.store import ResultStore, store_digest

    with ResultStore(args.store, readonly=True) as store:
        print(f"{store_digest(store)}  {store.count()} rows")
    return 0


def add_protocol_arguments(p: argparse.ArgumentParser) -> None:
    """``--max-rounds`` and ``--protocol``, shared by ``bench`` and ``campaign run``."""
    p.add_argument(
        "--max-rounds",
        type=int,
        default=None,
        metavar="N",
        help="add rounds, up to N, for pairs whose rounds disagree or ran on a busy machine "
        "(default: --repeat, no added rounds)",
    )
    p.add_argument(
        "--protocol",
        choices=("2.0", "1.0"),
        default="2.0",
        help="measurement protocol: 2.0 (default: pinned workers, quiet timing, stop on a "
        "+-2%% confidence interval of the median) or 1.0 (the old one, for comparisons)",
    )


def protocol_config(args: argparse.Namespace, **settings: Any) -> Any:
    """The :class:`~graphrec.bench.protocol.MeasureConfig` the arguments ask for."""
    from graphrec.bench.protocol import MeasureConfig

    config = (MeasureConfig.legacy if args.protocol == "1.0" else MeasureConfig)(**settings)
    if getattr(args, "max_time", None) is not None:
        config.max_time_s = args.max_time
        config.min_time_s = min(config.min_time_s, args.max_time)
    return config
