"""The ``graphrec`` command line.

Each feature area contributes its sub-commands through a module that defines
``register(subparsers)``. To start fast, only the module of the command being run is
imported: :data:`COMMANDS` names every command's module and one-line help, which is all
``graphrec --help`` needs (a test checks it against what the modules register).
"""

from __future__ import annotations

import argparse
import importlib
import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing at start-up
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

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
    "graphrec.recommender.modules._cli",
    "graphrec.serving._cli",
    "graphrec.parallel._cli",
    "graphrec.selection._cli",
    "graphrec.automl._cli",
    "graphrec.mcu._cli",
)

#: Every command: the module that registers it and its one-line help (``--help``).
COMMANDS: dict[str, tuple[str, str]] = {
    "inspect": (
        "graphrec.graph._cli",
        "summarize an ONNX or TFLite model: FLOPs, parameters, operators, shapes",
    ),
    "device": ("graphrec.device._cli", "detect and print this machine's device profile"),
    "calibrate": (
        "graphrec.device._cli",
        "measure K probe models here and write a calibrated device profile",
    ),
    "runtimes": (
        "graphrec.runtimes._cli",
        "list inference runtimes, their versions and deployment candidates",
    ),
    "support": (
        "graphrec.runtimes._cli",
        "what each runtime can run: probe operators, check a model",
    ),
    "bench": ("graphrec.bench._cli", "measure models on every installed inference runtime"),
    "campaign": (
        "graphrec.bench._cli",
        "the measurement campaign: zoo -> every runtime -> store (resumable)",
    ),
    "store": (
        "graphrec.bench._cli",
        "results stores: copy between SQLite and PostgreSQL, digest",
    ),
    "zoo": ("graphrec.zoo._cli", "generate models of the architecture zoo"),
    "mine": (
        "graphrec.mining._cli",
        "find models and inference frameworks in apps, wheels, archives and folders",
    ),
    "dataset": (
        "graphrec.dataset._cli",
        "build the measured dataset and print its data-card figures",
    ),
    "recommend": (
        "graphrec.recommender._cli",
        "rank deployment choices for an ONNX model on a device",
    ),
    "train": ("graphrec.recommender._cli", "train the recommender from results stores"),
    "modules": (
        "graphrec.recommender.modules._cli",
        "per-module latency prediction: generate, measure, fit, select, predict",
    ),
    "schedule": (
        "graphrec.serving._cli",
        "schedule inference tasks across unequal servers (simulated or on Ray)",
    ),
    "plan": (
        "graphrec.parallel._cli",
        "plan distributed training: data parallel, pipeline or both",
    ),
    "select": (
        "graphrec.selection._cli",
        "propose models for a job described in words, ranked by fit and cost",
    ),
    "automl": (
        "graphrec.automl._cli",
        "generate a light model (augmentation + architecture search) and deploy it",
    ),
    "port": (
        "graphrec.mcu._cli",
        "port an ONNX classifier to a microcontroller: C code, storage plan, simavr run",
    ),
}


def console() -> Any:
    """A rich Console; when stdout is not a terminal (pipes, logs, CI) tables get 160
    columns instead of rich's default 80, so candidate ids and figures are not cut."""
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 160)


class _Version(argparse.Action):
    """``--version``, reading the version only when asked (it lives in the extension)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        kwargs.setdefault("help", "show program's version number and exit")
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        from graphrec import __version__

        print(f"graphrec {__version__}")  # on stdout, as argparse's own version action
        parser.exit()


def add_alias(parser: argparse.ArgumentParser, action: argparse.Action, *names: str) -> None:
    """Accept ``names`` as old spellings of ``action``'s option, hidden from ``--help``.

    The alias stores into the same destination with the same type and nargs; ``--help``
    and the usage line show only the canonical spelling.

    Example:
        >>> p = argparse.ArgumentParser()
        >>> add_alias(p, p.add_argument("--input-shape", action="append"), "--shape")
        >>> p.parse_args(["--shape", "x=1"]).input_shape
        ['x=1']
    """
    import copy

    alias = copy.copy(action)
    alias.option_strings = list(names)
    alias.help = argparse.SUPPRESS
    alias.default = argparse.SUPPRESS
    alias.required = False
    parser._add_action(alias)


def _command_of(argv: Sequence[str]) -> str | None:
    """The sub-command ``argv`` names (its first positional token), if it is one."""
    for token in argv:
        if token == "--":
            return None
        if not token.startswith("-"):
            return token if token in COMMANDS else None
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """Build the argument parser.

    Args:
        argv: The arguments about to be parsed. When given, only the module of the
            command they name is imported; every other command is listed by name and
            help only. ``None`` (default): every sub-command fully registered.
    """
    parser = argparse.ArgumentParser(
        prog="graphrec",
        description="Which inference library and deployment runs your ONNX model fastest?",
    )
    parser.add_argument("--version", action=_Version)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = None
    if argv is not None:
        command = _command_of(argv)
        chosen = COMMANDS[command][0] if command is not None else ""
    for name in COMMAND_MODULES:
        if chosen is None or name == chosen:
            importlib.import_module(name).register(sub)
            continue
        for command, (module, help_text) in COMMANDS.items():
            if module == name:
                sub.add_parser(command, help=help_text, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code (0 ok, 1 graphrec error, 2 usage)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(args_list)
    args = parser.parse_args(args_list)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    from graphrec.errors import GraphRecError

    try:
        code = args.func(args)
    except GraphRecError as exc:
        print(f"graphrec: error: {exc}", file=sys.stderr)
        return 1
    return int(code or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
