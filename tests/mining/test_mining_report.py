"""Aggregate report (HTML/SVG, PNG when matplotlib exists) and rich tables."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from rich.console import Console

from graphrec.mining import scan
from graphrec.mining.report import print_aggregate, print_inventory, write_report
from mining.mining_builders import MakeApk


def test_html_report_is_self_contained(tmp_path: Path, make_apk: MakeApk) -> None:
    inv = scan([make_apk(tmp_path / "a.apk"), make_apk(tmp_path / "b.apk")])
    out = write_report(inv, tmp_path / "r.html")
    text = out.read_text()
    assert text.count("<svg") == 3
    assert "TensorFlow Lite / LiteRT" in text and "ONNX Runtime" in text
    assert "Models shared by hash across apps" in text
    assert "<script" not in text and "http://" not in text.replace("http://www.w3.org/2000/svg", "")


def test_png_falls_back_to_html_without_matplotlib(
    tmp_path: Path, make_apk: MakeApk, monkeypatch: pytest.MonkeyPatch
) -> None:
    inv = scan([make_apk(tmp_path / "a.apk")])
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    out = write_report(inv, tmp_path / "r.png")
    assert out == tmp_path / "r.html" and out.exists()


def test_rich_tables(tmp_path: Path, make_apk: MakeApk) -> None:
    inv = scan([make_apk(tmp_path / "a.apk")])
    buf = io.StringIO()
    con = Console(file=buf, width=200)
    print_inventory(inv, con)
    print_aggregate(inv.aggregate(), con)
    text = buf.getvalue()
    assert "Models (9)" in text and "(suspected)" in text
    assert "torchscript" in text and "safetensors" in text
    assert "Framework share" in text and "arm64-v8a" in text
