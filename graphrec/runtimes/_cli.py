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


def register(subparsers: Any) -> None:
    """Add ``graphrec runtimes`` to the CLI."""
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
