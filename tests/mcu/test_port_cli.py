"""``graphrec port``: the dictionary, the plan, --run with exit codes, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from mcu_helpers import cnn, mlp, save_model
from onnx import helper

from graphrec.cli import main
from graphrec.mcu import UnsupportedOperatorError, load_model, parameter_dictionary


def test_parameter_dictionary_lists_every_parameter_with_quantities(tmp_path: Path) -> None:
    path = cnn(tmp_path / "cnn.onnx")
    d = parameter_dictionary(path)
    names = {r["name"] for r in d["parameters"]}
    assert {"w1", "b1", "bn_s", "bn_v", "w2", "w3", "fw", "fb"} <= names
    w1 = next(r for r in d["parameters"] if r["name"] == "w1")
    assert w1["op"] == "Conv" and w1["shape"] == [6, 1, 3, 3] and w1["count"] == 54
    assert w1["bytes"] == 216 and w1["min"] < 0 < w1["max"] and 0 <= w1["sparsity"] < 1
    assert d["totals"]["count"] == sum(v["count"] for v in d["per_op"].values())
    assert d["per_op"]["BatchNormalization"]["tensors"] == 4


def test_cli_dictionary_writes_json_and_prints_a_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = mlp(tmp_path / "m.onnx", (8, 4, 3))
    assert main(["port", str(path), "--dictionary", "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "parameter dictionary" in out and "w0" in out and "total" in out
    d = json.loads((tmp_path / "o" / "dictionary.json").read_text())
    assert d["totals"]["count"] == 8 * 4 + 4 + 4 * 3 + 3


def test_cli_run_on_avr_prints_the_figures_and_agrees(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = mlp(tmp_path / "m.onnx", (16, 8, 4), softmax=False)
    x = np.random.default_rng(0).standard_normal((4, 16)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    argv = [
        "port",
        str(path),
        "--target",
        "atmega328p",
        "--mode",
        "fixed",
        "--run",
        "--inputs",
        str(tmp_path / "x.npy"),
        "--out",
        str(tmp_path / "o"),
        "--json",
    ]
    assert main(argv) == 0
    s = json.loads(capsys.readouterr().out)
    run = s["run"]
    assert run["agree"] and run["bit_exact_with_python_model"]
    assert run["flash_bytes"] > 0 and run["sram_bytes"] > 0 and run["cycles_median"] > 0
    assert run["latency_ms_at_16mhz"] == pytest.approx(run["cycles_median"] / 16e3)
    assert (tmp_path / "o" / "m.h").exists() and (tmp_path / "o" / "plan.json").exists()


def test_cli_exits_non_zero_when_the_outputs_disagree(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = mlp(tmp_path / "m.onnx", (16, 8, 4))
    # a tolerance no float build can meet: the exit status must report the disagreement
    argv = [
        "port",
        str(path),
        "--run",
        "--samples",
        "3",
        "--tolerance",
        "-1",
        "--out",
        str(tmp_path / "o"),
    ]
    assert main(argv) == 1
    assert "DISAGREE" in capsys.readouterr().out


def test_unsupported_operator_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Erf", ["r"], ["y"], name="the_erf"),
    ]
    path = save_model(tmp_path / "erf.onnx", nodes, (1, 4), (1, 4), {})
    with pytest.raises(UnsupportedOperatorError, match=r"operator Erf \(node 'the_erf'\)"):
        load_model(path)
    assert main(["port", str(path), "--out", str(tmp_path / "o")]) == 1
    assert "Erf" in capsys.readouterr().err


def test_corrupt_file_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage")
    assert main(["port", str(bad), "--out", str(tmp_path / "o")]) == 1
    assert "bad.onnx" in capsys.readouterr().err
