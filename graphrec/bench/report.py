"""Summaries of stored results: per-candidate aggregates, per-model winners, HTML report.

Across rounds a candidate's latency is the **median of its per-round medians**; its
noise is the spread of those medians (``max/min`` and coefficient of variation).
"""

from __future__ import annotations

import html
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from graphrec.bench.protocol import Status

__all__ = ["CandidateSummary", "ModelSummary", "summarize", "write_html_report"]


@dataclass
class CandidateSummary:
    """One (model, candidate, device) over its rounds."""

    model_name: str
    model_sha256: str
    candidate_id: str
    device_id: str
    status: str
    rounds: int
    p50_ms: float | None
    cold_start_ms: float | None
    spread: float | None  # max/min of per-round medians
    cv: float | None  # std/mean of per-round medians
    peak_rss_mb: float | None
    max_rel_err: float | None
    error: str | None


@dataclass
class ModelSummary:
    """Per model and device: fastest / slowest runnable candidate and status counts."""

    model_name: str
    model_sha256: str
    device_id: str
    fastest: CandidateSummary | None
    slowest: CandidateSummary | None
    statuses: Counter[str] = field(default_factory=Counter)
    candidates: list[CandidateSummary] = field(default_factory=list)

    @property
    def slowdown(self) -> float | None:
        """Slowest runnable latency over the fastest."""
        if self.fastest and self.slowest and self.fastest.p50_ms and self.slowest.p50_ms:
            return self.slowest.p50_ms / self.fastest.p50_ms
        return None


def _median(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.median(vals)) if vals else None


def summarize(rows: Sequence[Mapping[str, Any]]) -> list[ModelSummary]:
    """Aggregate store rows into per-model summaries (models in first-seen order)."""
    groups: dict[tuple[str, str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[(r["model_sha256"], r["device_id"], r["candidate_id"])].append(r)
    per_model: dict[tuple[str, str], ModelSummary] = {}
    for (sha, dev, cid), rs in groups.items():
        good = [
            r
            for r in rs
            if r["status"] in (Status.OK, Status.WRONG_OUTPUT, Status.UNVERIFIED)
            and r.get("p50_ms")
        ]
        statuses = Counter(r["status"] for r in rs)
        status = statuses.most_common(1)[0][0]
        medians = [float(r["p50_ms"]) for r in good]
        spread = cv = None
        if len(medians) >= 2:
            spread = max(medians) / min(medians)
            cv = float(np.std(medians, ddof=1) / np.mean(medians))
        errors = [r.get("error") for r in rs if r.get("error")]
        cs = CandidateSummary(
            model_name=rs[0].get("model_name") or sha[:12],
            model_sha256=sha,
            candidate_id=cid,
            device_id=dev,
            status=status,
            rounds=len(rs),
            p50_ms=_median(medians),
            cold_start_ms=_median(r.get("cold_start_ms") for r in good),
            spread=spread,
            cv=cv,
            peak_rss_mb=_median(r.get("peak_rss_mb") for r in good),
            max_rel_err=_median(r.get("max_rel_err") for r in good),
            error=errors[0] if errors else None,
        )
        ms = per_model.setdefault((sha, dev), ModelSummary(cs.model_name, sha, dev, None, None))
        ms.candidates.append(cs)
        ms.statuses[status] += 1
    for ms in per_model.values():
        runnable = [c for c in ms.candidates if c.status == Status.OK and c.p50_ms is not None]
        runnable.sort(key=lambda c: c.p50_ms or 0.0)
        ms.fastest = runnable[0] if runnable else None
        ms.slowest = runnable[-1] if runnable else None
        ms.candidates.sort(key=lambda c: (c.p50_ms is None, c.p50_ms or 0.0, c.candidate_id))
    return list(per_model.values())


def _fmt(x: float | None, unit: str = "", digits: int = 3) -> str:
    if x is None:
        return "-"
    return f"{x:.{digits}g}{unit}"


def _bar_chart(ms: ModelSummary) -> str:
    items = [c for c in ms.candidates if c.p50_ms]
    if not items:
        return "<p>No runnable candidate.</p>"
    width, row_h, label_w = 760, 18, 330
    top = max(c.p50_ms or 0.0 for c in items)
    lo = min(c.p50_ms or top for c in items)
    span = math.log10(top / lo) if top > lo else 1.0
    parts = [f'<svg width="{width}" height="{row_h * len(items) + 4}" role="img">']
    for i, c in enumerate(items):
        frac = 0.1 + 0.9 * (math.log10((c.p50_ms or lo) / lo) / span if span else 1.0)
        w = (width - label_w - 90) * frac
        y = i * row_h + 2
        color = "#2b8a3e" if c.status == Status.OK else "#c92a2a"
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end" font-size="12">'
            f"{html.escape(c.candidate_id)}</text>"
            f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{row_h - 4}" fill="{color}"/>'
            f'<text x="{label_w + w + 4:.1f}" y="{y + 13}" font-size="12">'
            f"{_fmt(c.p50_ms, ' ms')}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def write_html_report(
    rows: Sequence[Mapping[str, Any]], out: str | Path, *, title: str = "graphrec bench"
) -> Path:
    """Write a self-contained HTML report (tables + inline SVG charts, no JavaScript)."""
    summaries = summarize(rows)
    statuses = Counter(r["status"] for r in rows)
    body = [f"<h1>{html.escape(title)}</h1>"]
    body.append(
        "<p>"
        + ", ".join(f"{html.escape(k)}: {v}" for k, v in sorted(statuses.items()))
        + f" ({len(rows)} rows). Bars: median of per-round warm p50 latency, log scale; "
        "red = wrong output.</p>"
    )
    for ms in summaries:
        body.append(f"<h2>{html.escape(ms.model_name)} <small>{ms.device_id}</small></h2>")
        if ms.fastest:
            body.append(
                f"<p>Fastest: <b>{html.escape(ms.fastest.candidate_id)}</b> "
                f"{_fmt(ms.fastest.p50_ms, ' ms')} (cold start {_fmt(ms.fastest.cold_start_ms, ' ms')}); "
                f"slowest runnable is {_fmt(ms.slowdown, 'x')} slower.</p>"
            )
        body.append(_bar_chart(ms))
        body.append(
            "<table><tr><th>candidate</th><th>status</th><th>p50 ms</th><th>cold ms</th>"
            "<th>spread</th><th>peak MiB</th><th>max rel err</th><th>error</th></tr>"
        )
        for c in ms.candidates:
            body.append(
                f"<tr><td>{html.escape(c.candidate_id)}</td><td>{c.status}</td>"
                f"<td>{_fmt(c.p50_ms)}</td><td>{_fmt(c.cold_start_ms)}</td>"
                f"<td>{_fmt(c.spread, 'x')}</td><td>{_fmt(c.peak_rss_mb)}</td>"
                f"<td>{_fmt(c.max_rel_err, '', 2)}</td>"
                f"<td>{html.escape((c.error or '')[:160])}</td></tr>"
            )
        body.append("</table>")
    style = (
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;font-size:13px}"
        "td,th{border:1px solid #ccc;padding:2px 6px}"
    )
    doc = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body>{''.join(body)}</body></html>"
    )
    p = Path(out)
    p.write_text(doc)
    return p
