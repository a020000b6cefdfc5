"""``graphrec runtimes``: which inference runtimes are installed and what they offer."""

from __future__ import annotations

import argparse
import json
from typing import Any

from graphrec.errors import RuntimeUnavailableError

__all__ = ["register"]


def _parse_threads(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"threads must be like '1,2', got {text!r}") from None
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"threads must be like '1,2', got {text!r}")
    return values


def _cmd_runtimes(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from graphrec.device import DeviceProfile
    from graphrec.runtimes.registry import adapter_entries, get_adapter

    device = DeviceProfile.load(args.device) if args.device else DeviceProfile.detect()
    rows: list[dict[str, Any]] = []
    for name, entry in adapter_entries().items():
        row: dict[str, Any] = {"runtime": name, "install_hint": entry.install_hint}
        try:
            adapter = get_adapter(name)
            row["available"] = adapter.is_available()
        except RuntimeUnavailableError as exc:
            row["available"] = False
            row["error"] = str(exc)
            rows.append(row)
            continue
        if row["available"]:
            try:
                row["version"] = adapter.version()
                row["candidates"] = [
                    c.candidate_id for c in adapter.candidates(device, args.threads)
                ]
            except Exception as exc:  # a broken install is reported, not fatal
                row["available"] = False
                row["error"] = f"{type(exc).__name__}: {exc}"
        rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    table = Table(title=f"Inference runtimes on {device.name} ({device.device_id})")
    table.add_column("runtime", style="bold")
    table.add_column("version")
    table.add_column("candidates")
    for row in rows:
        if row["available"]:
            table.add_row(row["runtime"], row.get("version", "?"), "\n".join(row["candidates"]))
        else:
            why = row.get("error") or f"not installed: {row['install_hint']}"
            table.add_row(row["runtime"], "-", f"[yellow]{why}[/yellow]")
    Console().print(table)
    return 0


def _cmd_probe(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from graphrec.runtimes.support import PROBE_CANDIDATES, probe_models

    def progress(path: Path, n: int, err: str | None) -> None:
        what = f"skipped: {err}" if err else f"{n} new operator signature(s)"
        print(f"{path}: {what}", file=sys.stderr, flush=True)

    tables = probe_models(
        args.models,
        candidates=args.candidates or PROBE_CANDIDATES,
        out_dir=args.out,
        work_dir=args.work_dir,
        on_model=progress,
    )
    summary = {
        rt: {
            "version": t.version,
            "signatures": len(t.entries),
            "failing": sum(
                1
                for e in t.entries.values()
                if any(r[0] not in ("ok",) for r in e["results"].values())
            ),
        }
        for rt, t in tables.items()
    }
    print(json.dumps(summary, indent=2))
    return 0


def _cmd_reconcile(args: argparse.Namespace) -> int:
    from pathlib import Path

    from graphrec.runtimes.support import load_tables, reconcile

    folder = Path(args.tables)
    tables = {rt: ts[-1] for rt, ts in load_tables([folder]).items()}
    changed = reconcile(tables, args.store, model_root=args.model_root)
    for t in tables.values():
        t.save(folder)
    print(json.dumps({"overridden": changed}, indent=2))
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from graphrec.runtimes.registry import available_adapters
    from graphrec.runtimes.support import blockers

    device = None
    from graphrec.device import DeviceProfile

    device = DeviceProfile.detect()
    ids = [c.candidate_id for a in available_adapters() for c in a.candidates(device, (1, 2))]
    found = blockers(args.model, ids)
    if args.json:
        print(
            json.dumps({c: (None if b is None else b.__dict__) for c, b in found.items()}, indent=2)
        )
        return 0
    for cid, b in found.items():
        print(f"{cid}: {'runs' if b is None else b.reason}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``graphrec runtimes`` and ``graphrec support`` to the CLI."""
    p = subparsers.add_parser(
        "runtimes",
        help="list inference runtimes, their versions and deployment candidates",
        description="List every known runtime adapter, whether its library is installed, "
        "and the deployment candidates it offers on this (or a saved) device.",
    )
    p.add_argument("--threads", type=_parse_threads, default=(1, 2), help="thread counts (1,2)")
    p.add_argument("--device", metavar="PROFILE", help="device profile JSON instead of detecting")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_runtimes)

    s = subparsers.add_parser(
        "support",
        help="what each runtime can run: probe operators, check a model",
        description="Probe every operator of ONNX models on each installed runtime (one "
        "single-operator model per operator signature, through the real harness) and keep "
        "the results per runtime version; or check which deployment choices cannot run a "
        "model, naming the operator or rule that blocks each.",
    )
    ss = s.add_subparsers(dest="support_command", required=True)
    pr = ss.add_parser("probe", help="probe the operators of models (files or folders)")
    pr.add_argument("models", nargs="+", help="ONNX files or folders")
    pr.add_argument("--out", default=None, help="table folder (default: the user cache)")
    pr.add_argument("--work-dir", default=None, help="keep single-operator models and rows here")
    pr.add_argument("--candidates", nargs="+", default=None, help="candidate ids to probe")
    pr.set_defaults(func=_cmd_probe)
    rc = ss.add_parser(
        "reconcile",
        help="clear probe failures of operators that ran inside a whole model measured ok",
    )
    rc.add_argument("tables", help="table folder to update")
    rc.add_argument("--store", nargs="+", required=True, help="results stores (SQLite)")
    rc.add_argument("--model-root", default=None, help="folder with moved model files")
    rc.set_defaults(func=_cmd_reconcile)
    ck = ss.add_parser("check", help="which choices cannot run a model, and why")
    ck.add_argument("model", help="an .onnx file")
    ck.add_argument("--json", action="store_true", help="print JSON")
    ck.set_defaults(func=_cmd_check)
