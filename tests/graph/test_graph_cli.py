"""graphrec inspect, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from graph_models import Built

from graphrec.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "models" / "tiny_convnet.onnx"


def test_inspect_json(built_models: dict[str, Built], capsys: object) -> None:
    assert main(["inspect", str(built_models["cnn"].path), "--json", "--batch-size", "3"]) == 0
    out = json.loads(capsys.readouterr().out)  # type: ignore[attr-defined]
    assert out["inputs"][0]["shape"] == [3, 3, 32, 32]
    assert out["totals"]["macs"] == 3 * built_models["cnn"].macs


def test_inspect_table_on_shipped_example() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "graphrec.cli",
            "inspect",
            str(EXAMPLE),
            "--input-shape",
            "image=2,3,224,224",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "FLOPs" in proc.stdout and "Conv" in proc.stdout and "[2, 3, 224, 224]" in proc.stdout


def test_inspect_bad_file_is_one_clear_line(tmp_path: Path, capsys: object) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00garbage")
    assert main(["inspect", str(bad)]) == 1
    err = capsys.readouterr().err  # type: ignore[attr-defined]
    assert err.startswith("graphrec: error: ") and str(bad) in err
