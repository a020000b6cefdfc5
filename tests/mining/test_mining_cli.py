"""``graphrec mine`` as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from graphrec.cli import main
from graphrec.mining import scan
from graphrec.mining._cli import read_model_bytes
from mining.mining_builders import MakeApk


def test_mine_json(tmp_path: Path, make_apk: MakeApk, capsys: pytest.CaptureFixture[str]) -> None:
    apk = make_apk(tmp_path / "a.apk")
    assert main(["mine", str(apk), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "graphrec.mining.inventory/1"
    assert {m["format"] for m in doc["models"]} >= {"onnx", "tflite", "ncnn", "torchscript"}


def test_mine_table_out_and_report(
    tmp_path: Path, make_apk: MakeApk, capsys: pytest.CaptureFixture[str]
) -> None:
    apk = make_apk(tmp_path / "a.apk")
    code = main(["mine", str(apk), "--out", str(tmp_path / "i.sqlite"),
                 "--report", str(tmp_path / "r.html"), "--aggregate"])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "Models" in out and "Inference frameworks" in out and "Framework share" in out
    assert (tmp_path / "i.sqlite").exists() and (tmp_path / "r.html").exists()


def test_saved_inventories_feed_a_report(tmp_path: Path, make_apk: MakeApk) -> None:
    for name in ("a", "b"):
        main(
            [
                "mine",
                str(make_apk(tmp_path / f"{name}.apk")),
                "--out",
                str(tmp_path / f"{name}.json"),
            ]
        )
    code = main(["mine", "--inventory", str(tmp_path / "a.json"), "--inventory",
                 str(tmp_path / "b.json"), "--report", str(tmp_path / "all.html")])  # fmt: skip
    assert code == 0 and "2 apps scanned" in (tmp_path / "all.html").read_text()


def test_errors_are_clean(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mine", str(tmp_path / "missing.apk")]) == 1
    assert "no such file" in capsys.readouterr().err
    assert main(["mine"]) == 1
    assert main(["mine", str(tmp_path), "--out", str(tmp_path / "x.xlsx")]) == 1
    assert main(["mine", str(tmp_path), "--recommend"]) == 1
    assert "--device" in capsys.readouterr().err


def test_recommend_without_a_trained_recommender_is_a_clear_error(
    tmp_path: Path,
    make_apk: MakeApk,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from graphrec.device import DeviceProfile

    monkeypatch.setenv("GRAPHREC_ARTEFACT", str(tmp_path / "no-artefact"))
    profile = tmp_path / "dev.json"
    DeviceProfile.detect().save(profile)
    apk = make_apk(tmp_path / "a.apk")
    assert main(["mine", str(apk), "--recommend", "--device", str(profile)]) == 1
    err = capsys.readouterr().err
    assert "no trained recommender" in err and "graphrec train" in err


def test_read_model_bytes_follows_the_chain(
    tmp_path: Path, make_apk: MakeApk, onnx_bytes: bytes
) -> None:
    inv = scan([make_apk(tmp_path / "a.apk")])
    nested = next(m for m in inv.models if m.location[-1] == "inner/model.onnx")
    assert read_model_bytes(nested) == onnx_bytes
