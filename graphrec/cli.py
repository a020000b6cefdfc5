"""The ``graphrec`` command line.

Each feature area contributes its sub-commands through a module that defines
``register(subparsers)``; they are imported only when the CLI starts.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any

from graphrec import __version__
from graphrec.errors import GraphRecError

#: Modules that add sub-commands, each through ``register(subparsers)``.
COMMAND_MODULES: tuple[str, ...] = (
    "graphrec.graph._cli",
    "graphrec.device._cli",
    "graphrec.runtimes._cli",
    "graphrec.bench._cli",
    "graphrec.zoo._cli",
    "graphrec.mining._cli",
    "graphrec.dataset._cli",
    "graphrec.recommender._cli",
)


def console() -> Any:
    """A rich Console; when stdout is not a terminal (pipes, logs, CI) tables get 160
    columns instead of rich's default 80, so candidate ids and figures are not cut."""
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 160)


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every registered sub-command."""
    parser = argparse.ArgumentParser(
        prog="graphrec",
        description="Which inference library and deployment runs your ONNX model fastest?",
    )
    parser.add_argument("--version", action="version", version=f"graphrec {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code (0 ok, 1 graphrec error, 2 usage)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        code = args.func(args)
    except GraphRecError as exc:
        print(f"graphrec: error: {exc}", file=sys.stderr)
        return 1
    return int(code or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
