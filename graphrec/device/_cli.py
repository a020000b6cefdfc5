"""``graphrec device``: detect and print this machine's device profile, or a saved one."""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["register"]


def _cmd_device(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from graphrec.device.profile import DeviceProfile

    prof = DeviceProfile.load(args.profile) if args.profile else DeviceProfile.detect()
    if args.save:
        prof.save(args.save)
    if args.json:
        print(json.dumps({**prof.to_dict(), "device_id": prof.device_id}, indent=2))
        return 0
    table = Table(title=f"Device profile ({prof.source})", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    table.add_row("device_id", prof.device_id)
    for key, value in prof.to_dict().items():
        if key == "gpus":
            value = (
                ", ".join(
                    f"{g['name']} ({g['memory_mb']} MiB, cc {g['compute_capability'] or '-'})"
                    for g in value
                )
                or "none"
            )
        elif key == "isa_flags":
            value = " ".join(value) or "-"
        table.add_row(key, "-" if value is None else str(value))
    Console().print(table)
    if args.save:
        Console().print(f"saved to {args.save}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``graphrec device`` to the CLI."""
    p = subparsers.add_parser(
        "device",
        help="detect and print this machine's device profile",
        description="Detect this machine's device profile (CPU, ISA flags, caches, "
        "memory, GPUs) or show a saved one.",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--save", metavar="PATH", help="also write the profile to PATH")
    p.add_argument("--profile", metavar="PATH", help="show a saved profile instead of detecting")
    p.set_defaults(func=_cmd_device)
