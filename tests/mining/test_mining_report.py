"""Aggregate report (HTML with inline SVG charts, or PNG) and rich tables."""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from rich.console import Console

from graphrec.mining import scan
from graphrec.mining.report import print_aggregate, print_inventory, write_report
from mining.mining_builders import MakeApk

SVG = "{http://www.w3.org/2000/svg}"


def test_html_report_is_self_contained(tmp_path: Path, make_apk: MakeApk) -> None:
    inv = scan([make_apk(tmp_path / "a.apk"), make_apk(tmp_path / "b.apk")])
    agg = inv.aggregate()
    out = write_report(inv, tmp_path / "r.html")
    text = out.read_text()
    assert "TensorFlow Lite / LiteRT" in text and "ONNX Runtime" in text
    assert "Models shared by hash across apps" in text
    assert f"{agg.apps} apps scanned: {agg.apps_with_models} with models" in text
    assert "<script" not in text and "http://" not in text.replace("http://www.w3.org/", "")
    # Three charts: framework share (% of apps), formats, sizes; one bar per category,
    # each with its value written after it.
    svgs = re.findall(r"<svg.*?</svg>", text, flags=re.DOTALL)
    assert len(svgs) == 3
    expected = [
        {f"{round(100 * n / agg.apps, 1):g}%" for n in agg.framework_apps.values()},
        {f"{n:g}" for n in agg.format_models.values()},
        {f"{n:g}" for n in agg.size_buckets.values()},
    ]
    counts = [len(agg.framework_apps), len(agg.format_models), len(agg.size_buckets)]
    for svg, n, values in zip(svgs, counts, expected, strict=True):
        root = ET.fromstring(svg)
        bars = [g for g in root.iter(f"{SVG}g") if g.get("id", "").startswith("bar-")]
        assert len(bars) == n > 0
        assert values <= {t.text for t in root.iter(f"{SVG}text")}
    assert "100%" in svgs[0]  # both apps bundle TensorFlow Lite


def test_png_report(tmp_path: Path, make_apk: MakeApk) -> None:
    inv = scan([make_apk(tmp_path / "a.apk")])
    out = write_report(inv, tmp_path / "r.png")
    assert out == tmp_path / "r.png"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


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
