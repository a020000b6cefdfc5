"""``graphrec mine``: find deep-learning models and inference frameworks in apps and packages."""

from __future__ import annotations

import argparse
import io
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from rich.console import Console

from graphrec.errors import MiningError
from graphrec.mining.export import SUFFIXES, write_inventory
from graphrec.mining.inventory import Inventory, ModelFinding
from graphrec.mining.report import print_aggregate, print_inventory, write_report
from graphrec.mining.scanner import ScanLimits, scan

__all__ = ["read_model_bytes", "register"]

_MAX_EXTRACT = 1 << 30


def register(subparsers: Any) -> None:
    """Add the ``mine`` sub-command."""
    p = subparsers.add_parser(
        "mine",
        help="find models and inference frameworks in apps, wheels, archives and folders",
        description=(
            "Walk files, folders and nested archives (APK, AAB, AAR, JAR, IPA, ZIP, wheels, "
            "tar/tar.gz), recognise model files by content and inference frameworks by their "
            "native libraries and Python packages. Hostile input (zip bombs, traversal names, "
            "symlinks, corrupt archives) is recorded as issues; the scan always goes on."
        ),
    )
    p.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="files or folders to scan")
    p.add_argument("--json", action="store_true", help="print the inventory as JSON on stdout")
    p.add_argument(
        "--out", type=Path, metavar="FILE", help=f"write the inventory ({', '.join(SUFFIXES)})"
    )
    p.add_argument(
        "--report",
        type=Path,
        metavar="FILE",
        help="write the aggregate chart report (.html page, or .png of the charts alone)",
    )
    p.add_argument(
        "--inventory",
        type=Path,
        action="append",
        default=[],
        metavar="JSON",
        help="add a saved JSON inventory to the report (repeatable)",
    )
    p.add_argument("--aggregate", action="store_true", help="print the cross-app statistics")
    p.add_argument(
        "--recommend",
        action="store_true",
        help="run the recommender on every ONNX model found (needs --device)",
    )
    p.add_argument("--device", metavar="PROFILE", help="device profile JSON for --recommend")
    p.add_argument("--no-onnx-analysis", action="store_true", help="skip the C++ ONNX analysis")
    p.add_argument("--max-depth", type=int, default=ScanLimits.max_depth, help="archive nesting")
    p.add_argument(
        "--max-ratio", type=float, default=ScanLimits.max_ratio, help="compression ratio"
    )
    p.add_argument(
        "--max-total-mb",
        type=int,
        default=ScanLimits.max_total_bytes >> 20,
        help="decompressed MB read per app before the rest is skipped",
    )
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if not args.paths and not args.inventory:
        raise MiningError(None, "give at least one PATH to scan (or --inventory FILE)")
    if args.recommend and not args.device:
        raise MiningError(None, "--recommend needs --device PROFILE")
    con = Console(stderr=args.json)
    inv = Inventory()
    if args.paths:
        limits = ScanLimits(
            max_depth=args.max_depth,
            max_ratio=args.max_ratio,
            max_total_bytes=args.max_total_mb << 20,
        )
        inv = scan(args.paths, limits=limits, analyze_onnx=not args.no_onnx_analysis)
    for saved in args.inventory:
        inv = inv.merge(Inventory.load_json(saved))
    if args.json:
        sys.stdout.write(inv.to_json() + "\n")
    else:
        print_inventory(inv, con)
        if args.aggregate or len(inv.apps) > 1:
            print_aggregate(inv.aggregate(), con)
    if args.out:
        written = write_inventory(inv, args.out)
        con.print(f"inventory written to {written}")
    if args.report:
        written = write_report(inv, args.report)
        if written != args.report:
            con.print(f"matplotlib is not installed: wrote an HTML report instead ({written})")
        else:
            con.print(f"report written to {written}")
    if args.recommend:
        return _recommend(inv, args.device, con)
    return 0


def _recommend(inv: Inventory, device: str, con: Console) -> int:
    from graphrec.api import load_artefact, recommend
    from graphrec.device import DeviceProfile
    from graphrec.recommender._cli import render

    profile = DeviceProfile.load(device)
    load_artefact()  # fail once, with the how-to-train message, before extracting anything
    onnx = [m for m in inv.models if m.format == "onnx" and not m.suspected]
    if not onnx:
        con.print("no ONNX models found: nothing to recommend for")
        return 0
    with tempfile.TemporaryDirectory(prefix="graphrec-mine-rec-") as tmp:
        for i, m in enumerate(onnx):
            path = Path(tmp) / f"model{i}.onnx"
            path.write_bytes(read_model_bytes(m))
            con.print(f"[bold]{m.path}[/]")
            render(recommend(path, profile), con)
    return 0


def read_model_bytes(finding: ModelFinding, max_bytes: int = _MAX_EXTRACT) -> bytes:
    """Read a found model's bytes back through its archive chain (zip and tar members).

    Raises:
        MiningError: The chain cannot be followed or the model is larger than ``max_bytes``.
    """
    if finding.size_bytes > max_bytes:
        raise MiningError(finding.path, f"{finding.size_bytes} bytes is more than {max_bytes}")
    first, *members = finding.location
    try:
        data = Path(first).read_bytes() if not members else b""
        stream: Any = open(first, "rb") if members else None  # noqa: SIM115 - closed below
        try:
            for member in members:
                data = _read_member(stream, member, max_bytes)
                stream.close()
                stream = io.BytesIO(data)
        finally:
            if stream is not None:
                stream.close()
    except (OSError, KeyError, zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
        raise MiningError(finding.path, f"cannot read the model back: {exc}") from exc
    return data


def _read_member(stream: Any, member: str, max_bytes: int) -> bytes:
    head = stream.read(4)
    stream.seek(0)
    if head.startswith(b"PK"):
        with zipfile.ZipFile(stream) as zf:
            info = zf.getinfo(member)
            if info.file_size > max_bytes:
                raise MiningError(member, "too large to read back")
            return zf.read(info)
    with tarfile.open(fileobj=stream, mode="r:*") as tf:
        fp = tf.extractfile(member)
        if fp is None:
            raise KeyError(member)
        return fp.read(max_bytes)
