"""``graphrec dataset build | info | card``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    """Add the ``dataset`` command group."""
    p = sub.add_parser("dataset", help="build the measured dataset and print its data-card figures")
    s = p.add_subparsers(dest="dataset_cmd", metavar="SUBCOMMAND", required=True)
    b = s.add_parser("build", help="harness stores + zoo manifests -> dataset folder")
    b.add_argument("--store", action="append", required=True, help="results store (repeatable)")
    b.add_argument("--zoo", action="append", required=True, help="zoo folder (repeatable)")
    b.add_argument("--out", required=True, help="dataset folder to write")
    b.set_defaults(func=_build)
    for name, helptext, fn in (
        ("info", "print the data-card figures of a dataset", _info),
        ("card", "write the figure sections of DATASET.md and the fragmentation SVG", _card),
    ):
        q = s.add_parser(name, help=helptext)
        q.add_argument("--data", help="dataset folder (default: the one shipped with graphrec)")
        q.add_argument("--json", action="store_true", help="JSON output")
        if name == "card":
            q.add_argument("--out", default="DATASET.figures.md", help="Markdown file to write")
        q.set_defaults(func=fn)


def _data_dir(args: argparse.Namespace) -> Path:
    from graphrec.dataset import SHIPPED_DATASET
    from graphrec.errors import DatasetError

    d = Path(args.data) if args.data else SHIPPED_DATASET
    if not (d / "measurements.parquet").is_file():
        raise DatasetError(
            f"{d}: no dataset here (build one: graphrec dataset build --store S --zoo Z --out DIR)"
        )
    return d


def _build(args: argparse.Namespace) -> int:
    from graphrec.dataset import build_dataset

    meta = build_dataset(args.store, args.zoo, args.out)
    print(json.dumps(meta["counts"], indent=2))
    return 0


def _info(args: argparse.Namespace) -> int:
    from graphrec.dataset import card_figures, load_dataset

    meas, _models, meta = load_dataset(_data_dir(args))
    fig = card_figures(meas)
    if args.json:
        print(
            json.dumps({"meta": {k: v for k, v in meta.items() if k != "devices"}, **fig}, indent=2)
        )
        return 0
    from rich.console import Console
    from rich.markdown import Markdown

    from graphrec.dataset import render_card

    Console().print(Markdown(render_card(fig, meta)))
    return 0


def _card(args: argparse.Namespace) -> int:
    from graphrec.dataset import card_figures, fragmentation_svg, load_dataset, render_card

    meas, _models, meta = load_dataset(_data_dir(args))
    fig = card_figures(meas)
    out = Path(args.out)
    out.write_text(render_card(fig, meta))
    svg = out.parent / "dataset_fragmentation.svg"
    svg.write_text(fragmentation_svg(fig))
    print(f"wrote {out} and {svg}")
    return 0
