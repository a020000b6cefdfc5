"""graphrec.bench.report: aggregates over rounds and the HTML report's content.

The report is arithmetic and layout over stored rows, so these rows are written by hand
with known latencies; tests/bench/test_bench_cli.py runs the real harness into a report.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from graphrec.bench.report import summarize, write_html_report

SVG = "{http://www.w3.org/2000/svg}"
SHA = "a" * 64


def _row(cid: str, status: str, p50: float | None, rnd: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "model_sha256": SHA,
        "model_name": "mlp<a>",
        "device_id": "dev1",
        "candidate_id": cid,
        "round": rnd,
        "status": status,
        "p50_ms": p50,
        "cold_start_ms": None if p50 is None else 10 * p50,
        "peak_rss_mb": 50.0,
        "max_rel_err": 1e-6,
        "error": extra.get("error"),
    }


ROWS = [
    _row("onnxruntime/cpu/fp32/threads=1", "ok", 2.0, 0),
    _row("onnxruntime/cpu/fp32/threads=1", "ok", 2.2, 1),
    _row("onnxruntime/cpu/fp32/threads=1", "ok", 2.4, 2),
    _row("openvino/cpu/fp32/threads=1", "ok", 1.25),
    _row("tract/cpu/fp32/threads=1", "wrong_output", 8.0),
    _row("ncnn/cpu/fp32/threads=1", "load_failed", None, error="no kernel for <op>"),
]


class _Page(HTMLParser):
    """Collects the inline SVGs (as text) and the table rows (lists of cell texts)."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[list[str]] = []
        self.svgs: list[str] = []
        self._td = False
        self.feed(text)
        start = 0
        while (i := text.find("<svg", start)) >= 0:
            j = text.index("</svg>", i) + len("</svg>")
            self.svgs.append(text[i:j])
            start = j

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag == "td":
            self.rows[-1].append("")
        self._td = tag == "td"

    def handle_endtag(self, tag: str) -> None:
        self._td = False

    def handle_data(self, data: str) -> None:
        if self._td:
            self.rows[-1][-1] += data


def test_summary_over_rounds() -> None:
    (ms,) = summarize(ROWS)
    by_id = {c.candidate_id: c for c in ms.candidates}
    ort = by_id["onnxruntime/cpu/fp32/threads=1"]
    assert ort.rounds == 3 and ort.p50_ms == pytest.approx(2.2)
    assert ort.spread == pytest.approx(2.4 / 2.0)
    assert ms.fastest is by_id["openvino/cpu/fp32/threads=1"]
    assert ms.slowest is ort  # a wrong output is not runnable
    assert ms.slowdown == pytest.approx(2.2 / 1.25)


def test_html_report_content(tmp_path: Path) -> None:
    out = write_html_report(ROWS, tmp_path / "r.html", title="bench <run>")
    text = out.read_text()
    assert "<script" not in text
    assert "<h1>bench &lt;run&gt;</h1>" in text and "mlp&lt;a&gt;" in text
    assert "load_failed: 1, ok: 4, wrong_output: 1 (6 rows)" in text
    assert "Fastest: <b>openvino/cpu/fp32/threads=1</b> 1.25 ms (cold start 12.5 ms)" in text
    assert "slowest runnable is 1.76x slower" in text
    page = _Page(text)
    # The table: every candidate, fastest first, failures last, numbers to 3 digits.
    cells = [r for r in page.rows if r]  # the header row has <th> cells only
    assert cells == [
        ["openvino/cpu/fp32/threads=1", "ok", "1.25", "12.5", "-", "50", "1e-06", ""],
        ["onnxruntime/cpu/fp32/threads=1", "ok", "2.2", "22", "1.2x", "50", "1e-06", ""],
        ["tract/cpu/fp32/threads=1", "wrong_output", "8", "80", "-", "50", "1e-06", ""],
        ["ncnn/cpu/fp32/threads=1", "load_failed", "-", "-", "-", "-", "-", "no kernel for <op>"],
    ]
    # One chart, one bar per candidate with a latency, red for the wrong output.
    (svg,) = page.svgs
    root = ET.fromstring(svg)
    bars = [g for g in root.iter(f"{SVG}g") if g.get("id", "").startswith("bar-")]
    assert len(bars) == 3
    fills = [p.get("style", "") for g in bars for p in g.iter(f"{SVG}path")]
    assert sum("#c92a2a" in f for f in fills) == 1 and sum("#2b8a3e" in f for f in fills) == 2
    texts = {t.text for t in root.iter(f"{SVG}text")}
    assert {"1.25 ms", "2.2 ms", "8 ms", "tract/cpu/fp32/threads=1"} <= texts


def test_report_without_runnable_candidate(tmp_path: Path) -> None:
    rows = [_row("ncnn/cpu/fp32/threads=1", "load_failed", None, error="boom")]
    text = write_html_report(rows, tmp_path / "r.html").read_text()
    assert "No runnable candidate." in text and "<svg" not in text and "Fastest" not in text
