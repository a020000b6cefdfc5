"""Mine a folder of apps / wheels for models and inference frameworks, then report.

Usage:
    python examples/mine_apps.py PATH [PATH ...] [--report report.html]

Prints every model found (format, location inside nested archives, size, a few
cheap facts), the inference frameworks per app and ABI, the cross-app
statistics, and writes an inventory (SQLite) plus an HTML/SVG chart report.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from graphrec.mining import scan
from graphrec.mining.export import write_inventory
from graphrec.mining.report import write_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--report", type=Path, default=Path("mine-report.html"))
    parser.add_argument("--db", type=Path, default=Path("mine-inventory.sqlite"))
    args = parser.parse_args()

    inventory = scan(args.paths)
    for m in inventory.models:
        flag = " (suspected: " + m.reason + ")" if m.suspected else ""
        facts = {k: m.details[k] for k in ("num_nodes", "operators", "total_params", "total_flops")
                 if k in m.details}  # fmt: skip
        print(f"{m.format:<15} {m.size_bytes:>12,} B  {m.path}{flag} {facts or ''}")
    for app, frameworks in inventory.frameworks().items():
        for fid, abis in sorted(frameworks.items()):
            print(f"{app}: {fid} [{', '.join(sorted(abis))}]")
    for issue in inventory.issues:
        print(f"issue {issue.kind}: {issue.path}: {issue.detail}")
    agg = inventory.aggregate()
    print(f"{agg.apps} apps; framework share {agg.framework_apps}; formats {agg.format_models}")
    print(f"models shared across apps: {len(agg.shared_models)}")
    print("inventory:", write_inventory(inventory, args.db))
    print("report:", write_report(inventory, args.report))


if __name__ == "__main__":
    main()
