"""graphrec.reporting.charts: the one bar-chart helper (valid, reproducible SVG)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from graphrec.reporting import PALETTE, bar_chart_png, bar_chart_svg

SVG = "{http://www.w3.org/2000/svg}"


def _bars(svg: str) -> list[ET.Element]:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return [g for g in root.iter(f"{SVG}g") if g.get("id", "").startswith("bar-")]


def _texts(svg: str) -> list[str]:
    return [t.text or "" for t in ET.fromstring(svg).iter(f"{SVG}text")]


def _fill(bar: ET.Element) -> str:
    path = bar.find(f"{SVG}path")
    assert path is not None
    style = dict(p.split(": ") for p in path.get("style", "").split("; ") if ": " in p)
    return style["fill"]


def test_one_bar_per_category_with_labels_and_colours() -> None:
    svg = bar_chart_svg(
        ["onnxruntime", "openvino", "tract"],
        [1.25, 3.5, 40.0],
        title="latency",
        value_labels=["1.25 ms", "3.5 ms", "40 ms"],
        colors=["#2b8a3e", "#2b8a3e", "#c92a2a"],
        log_scale=True,
    )
    assert svg.startswith("<svg")
    bars = _bars(svg)
    assert [b.get("id") for b in bars] == ["bar-0", "bar-1", "bar-2"]
    assert [_fill(b) for b in bars] == ["#2b8a3e", "#2b8a3e", "#c92a2a"]
    texts = _texts(svg)
    for expected in ("latency", "onnxruntime", "openvino", "tract", "1.25 ms", "3.5 ms", "40 ms"):
        assert expected in texts


def _width(bar: ET.Element) -> float:
    """Width of a bar drawn as ``M x y L x y L x y L x y z``."""
    path = bar.find(f"{SVG}path")
    assert path is not None
    coords = [float(tok) for tok in path.get("d", "").split() if tok not in ("M", "L", "z")]
    xs = coords[::2]
    return max(xs) - min(xs)


def test_linear_bars_are_proportional() -> None:
    svg = bar_chart_svg(["a", "b"], [1.0, 4.0])
    widths = [_width(b) for b in _bars(svg)]
    assert widths[1] / widths[0] == pytest.approx(4.0, rel=1e-3)
    assert [_fill(b) for b in _bars(svg)] == list(PALETTE[:2])


def test_stacked_bars_skip_empty_segments_and_have_a_legend() -> None:
    svg = bar_chart_svg(
        ["resnet (4)", "bert (2)"],
        {"onnxruntime": [0.25, 1.0], "openvino": [0.75, 0.0]},
        segment_label=lambda v: f"{100 * v:.0f} %",
        percent_axis=True,
    )
    assert sorted(b.get("id", "") for b in _bars(svg)) == ["bar-0-0", "bar-0-1", "bar-1-0"]
    texts = _texts(svg)
    assert {"25 %", "75 %", "100 %", "onnxruntime", "openvino", "resnet (4)"} <= set(texts)


def test_same_input_same_bytes_and_no_date() -> None:
    args = (["x", "y"], {"s": [0.5, 0.2], "t": [0.5, 0.8]})
    first = bar_chart_svg(*args, title="t")
    assert first == bar_chart_svg(*args, title="t")
    assert "<metadata>" not in first and "Matplotlib" not in first


def test_empty_chart_says_so() -> None:
    svg = bar_chart_svg([], [], title="Model formats", empty_text="(none)")
    assert _bars(svg) == [] and "(none)" in _texts(svg)


def test_png_has_every_chart(tmp_path: Path) -> None:
    out = tmp_path / "c.png"
    bar_chart_png(out, [(["a"], [1.0], {"title": "one"}), (["b", "c"], [2.0, 3.0], {})])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
