"""Tests for ``graphrec bench`` and ``graphrec bench report`` through graphrec.cli.main."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from graphrec.cli import main


def test_bench_json_then_report(
    models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "b.sqlite"
    args = [
        "bench",
        str(models_dir / "mlp_a.onnx"),
        "--runtimes",
        "onnxruntime,tract",
        "--threads",
        "1",
        "--max-time",
        "0.05",
        "--db",
        str(db),
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    assert main([*args, "--json"]) == 0
    captured = capsys.readouterr()
    rows = json.loads(captured.out)
    # Which rule chose each input is said on stderr (stdout stays JSON).
    assert "inputs of mlp_a.onnx: " in captured.err
    assert "(declared" in captured.err or "(default" in captured.err
    assert {r["runtime"] for r in rows} == {"onnxruntime", "tract"}
    assert all(r["status"] == "ok" for r in rows)
    assert main(args) == 0  # resume: nothing new, prints the tables
    out = capsys.readouterr().out
    assert "0 new rows" in out and "tract/cpu/fp32/threads=1" in out
    html = tmp_path / "report.html"
    assert (
        main(
            [
                "bench",
                "report",
                "--db",
                str(db),
                "--out",
                str(html),
                "--csv",
                str(tmp_path / "r.csv"),
            ]
        )
        == 0
    )
    text = html.read_text()
    assert "<svg" in text and "mlp_a" in text and "onnxruntime/cpu/fp32/opt=all/threads=1" in text
    assert (tmp_path / "r.csv").read_text().count("\n") == len(rows) + 1


def test_bench_errors_are_clean(
    models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", str(tmp_path / "absent.onnx"), "--db", str(tmp_path / "x.sqlite")]) == 1
    assert "absent.onnx" in capsys.readouterr().err
    assert main(["bench", "report", "--db", str(tmp_path / "none.sqlite")]) == 1
    assert main(["bench", "--db", str(tmp_path / "x.sqlite")]) == 1
    assert (
        main(["bench", str(models_dir), "--runtimes", "nope", "--db", str(tmp_path / "x.sqlite")])
        == 1
    )
    assert "unknown runtime" in capsys.readouterr().err


def test_runtimes_and_device_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runtimes", "--json", "--threads", "1"]) == 0
    rows = {r["runtime"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["onnxruntime"]["available"]
    assert "onnxruntime/cpu/fp32/opt=all/threads=1" in rows["onnxruntime"]["candidates"]
    assert main(["device", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["device_id"]


def test_bench_protocol_and_rounds_flags(
    models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = [
        "bench",
        str(models_dir / "mlp_b.onnx"),
        "--candidates",
        "onnxruntime/cpu/fp32/opt=all/threads=1",
        "--threads",
        "1",
        "--max-time",
        "0.05",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--json",
    ]
    assert main([*base, "--store", str(tmp_path / "old.sqlite"), "--protocol", "1.0"]) == 0
    (old,) = json.loads(capsys.readouterr().out)
    assert old["harness_version"] == "1.0"
    new_store = str(tmp_path / "new.sqlite")
    assert main([*base, "--store", new_store, "--repeat", "2", "--max-rounds", "3"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert 2 <= len(rows) <= 3 and {r["harness_version"] for r in rows} == {"2.0"}
    assert main([*base, "--store", new_store, "--repeat", "3", "--max-rounds", "2"]) == 1
    assert "max_rounds" in capsys.readouterr().err
