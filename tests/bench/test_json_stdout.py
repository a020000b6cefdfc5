"""``--json`` output is the only thing on stdout, even when a runtime prints on import.

Each command runs in a fresh process, as a pipe into another tool would see it (MNN
prints ``The device supports: ...`` from C++ when imported, past ``sys.stdout``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parents[2]
_EXAMPLE = _ROOT / "examples" / "models" / "tiny_convnet.onnx"


def _stdout_json(*argv: str) -> object:
    proc = subprocess.run(
        [sys.executable, "-m", "graphrec.cli", *argv],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_runtimes_json_stdout_parses() -> None:
    rows = _stdout_json("runtimes", "--json", "--threads", "1")
    assert isinstance(rows, list)
    assert "onnxruntime" in {r["runtime"] for r in rows}


def test_recommend_json_stdout_parses() -> None:
    rec = _stdout_json("recommend", str(_EXAMPLE), "--device", "auto", "--json")
    assert isinstance(rec, dict)
    assert rec["best"] == rec["choices"][0]["candidate_id"]


def test_bench_json_stdout_parses(models_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("MNN")
    rows = _stdout_json(
        "bench",
        str(models_dir / "mlp_a.onnx"),
        "--runtimes",
        "onnxruntime,mnn",
        "--candidates",
        "onnxruntime/cpu/fp32/opt=all/*",
        "--candidates",
        "mnn/*",
        "--threads",
        "1",
        "--max-time",
        "0.05",
        "--store",
        str(tmp_path / "b.sqlite"),
        "--cache-dir",
        str(tmp_path / "cache"),
        "--json",
    )
    assert isinstance(rows, list)
    assert {r["runtime"] for r in rows} == {"onnxruntime", "mnn"}
