"""Summaries of stored results: per-candidate aggregates, per-model winners, HTML report.

Across rounds a candidate's latency is the **median of its per-round medians**; its
noise is the spread of those medians (``max/min`` and coefficient of variation).
"""

from __future__ import annotations

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


def _bar_chart(ms: ModelSummary) -> str | None:
    """Per-candidate median latency, log scale, red for a wrong output; ``None`` if none ran."""
    from graphrec.reporting import bar_chart_svg, fmt_number

    items = [c for c in ms.candidates if c.p50_ms]
    if not items:
        return None
    return bar_chart_svg(
        [c.candidate_id for c in items],
        [c.p50_ms or 0.0 for c in items],
        value_labels=[fmt_number(c.p50_ms, " ms") for c in items],
        colors=["#2b8a3e" if c.status == Status.OK else "#c92a2a" for c in items],
        log_scale=True,
        xlabel="median warm p50 latency (ms, log scale)",
    )


def write_html_report(
    rows: Sequence[Mapping[str, Any]], out: str | Path, *, title: str = "graphrec bench"
) -> Path:
    """Write a self-contained HTML report (tables + inline SVG charts, no JavaScript).

    The page comes from the template ``bench_report.html.j2``; each model's chart from
    :func:`graphrec.reporting.bar_chart_svg`.
    """
    from graphrec.reporting import render_template, safe_svg

    models = []
    for ms in summarize(rows):
        chart = _bar_chart(ms)
        models.append({"summary": ms, "chart": safe_svg(chart) if chart else None})
    doc = render_template(
        "bench_report.html.j2",
        title=title,
        statuses=sorted(Counter(str(r["status"]) for r in rows).items()),
        n_rows=len(rows),
        models=models,
    )
    p = Path(out)
    p.write_text(doc, encoding="utf-8")
    return p
