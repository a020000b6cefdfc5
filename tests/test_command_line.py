"""The ``graphrec`` entry point: lazy sub-command registration, shared flag spellings."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys

import pytest

import graphrec.cli
from graphrec.cli import COMMAND_MODULES, COMMANDS, build_parser


def _registered(module: str) -> dict[str, str | None]:
    sub = argparse.ArgumentParser().add_subparsers()
    importlib.import_module(module).register(sub)
    return {a.dest: a.help for a in sub._choices_actions}


def test_command_table_matches_what_the_modules_register() -> None:
    found: dict[str, tuple[str, str | None]] = {}
    for module in COMMAND_MODULES:
        for name, help_text in _registered(module).items():
            found[name] = (module, help_text)
    assert found == COMMANDS


def test_lazy_top_level_help_equals_the_full_one() -> None:
    assert build_parser([]).format_help() == build_parser().format_help()
    assert build_parser(["inspect", "x.onnx"]).format_help() == build_parser().format_help()


def test_help_imports_no_command_module() -> None:
    code = (
        "import sys, graphrec.cli as c\n"
        "c.build_parser(['--help'][:0])\n"
        "bad = [m for m in sys.modules if m.endswith('._cli') or m.split('.')[0] in "
        "('rich', 'numpy', 'torch', 'torch_geometric', 'catboost', 'onnx', 'onnxruntime')]\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_version_on_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        graphrec.cli.main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out == f"graphrec {graphrec.__version__}\n"


def test_unknown_command_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        graphrec.cli.main(["nope"])
    assert "recommend" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("command", "old", "new", "dest", "value", "expected"),
    [
        ("bench", "--shape", "--input-shape", "input_shape", "x=1,3", ["x=1,3"]),
        ("bench", "--db", "--store", "store", "a.sqlite", "a.sqlite"),
        ("recommend", "--verify-db", "--verify-store", "verify_store", "a.sqlite", "a.sqlite"),
    ],
)
def test_old_flag_spelling_parses_like_the_new_one(
    command: str, old: str, new: str, dest: str, value: str, expected: object
) -> None:
    head = [command, "m.onnx"]
    parsed_old = build_parser([*head, old, value]).parse_args([*head, old, value])
    parsed_new = build_parser([*head, new, value]).parse_args([*head, new, value])
    assert getattr(parsed_old, dest) == getattr(parsed_new, dest) == expected


def test_help_lists_only_the_canonical_spelling() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    bench_help = sub.choices["bench"].format_help()
    assert "--input-shape" in bench_help and "--store" in bench_help
    assert "--shape" not in bench_help and "--db" not in bench_help
    rec_help = sub.choices["recommend"].format_help()
    assert "--verify-store" in rec_help and "--verify-db" not in rec_help
    assert "--input-shape" in sub.choices["inspect"].format_help()


def test_shape_flags_mix() -> None:
    argv = ["bench", "m.onnx", "--shape", "a=1", "--input-shape", "b=2"]
    assert build_parser(argv).parse_args(argv).input_shape == ["a=1", "b=2"]
