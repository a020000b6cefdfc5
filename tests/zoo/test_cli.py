"""Tests of ``graphrec zoo`` through the real CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import graphrec.cli
from graphrec.cli import main
from graphrec.zoo import FAMILIES, read_manifest


@pytest.fixture(autouse=True)
def _only_zoo_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep these tests independent of other feature areas' sub-commands."""
    assert "graphrec.zoo._cli" in graphrec.cli.COMMAND_MODULES
    monkeypatch.setattr(graphrec.cli, "COMMAND_MODULES", ("graphrec.zoo._cli",))


def test_zoo_list_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["zoo", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["family"] for r in rows] == list(FAMILIES)


def test_zoo_generate_verify_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "zoo"
    argv = ["zoo", "generate", "--families", "bert,yolo", "--count", "2", "--out", str(out)]
    assert main([*argv, "--tiny", "--quiet"]) == 0
    assert "2 models (2 written" in capsys.readouterr().out
    assert {r["family"] for r in read_manifest(out)} == {"bert", "yolo"}
    assert main(["zoo", "verify", str(out)]) == 0
    assert "2/2 regenerated bit-identically" in capsys.readouterr().out
    target = tmp_path / "one.onnx"
    assert main(["zoo", "export", "bert", "0", "--tiny", "-o", str(target)]) == 0
    record = json.loads(capsys.readouterr().out)
    assert (
        record["sha256"] == next(r for r in read_manifest(out) if r["family"] == "bert")["sha256"]
    )


def test_zoo_unknown_family_is_a_clean_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["zoo", "generate", "--families", "lenet", "--count", "1", "--out", str(tmp_path)])
    assert code == 1
    assert "unknown zoo family 'lenet'" in capsys.readouterr().err
