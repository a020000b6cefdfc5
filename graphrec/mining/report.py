"""Human-readable views of an inventory: rich tables and an aggregate chart report.

The chart report is a self-contained HTML page (jinja2 template
``mining_report.html.j2``) with inline SVG bar charts (framework share, model-format
share, model size distribution, drawn by :mod:`graphrec.reporting.charts`) and the
table of models shared by hash across apps. A ``.png`` target gets the three charts
side by side.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from graphrec.mining.formats import FORMATS
from graphrec.mining.frameworks import framework_by_id
from graphrec.mining.inventory import Aggregate, Inventory

__all__ = ["print_aggregate", "print_inventory", "render_html", "write_report"]


def _fmt_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"


def _fw_name(fid: str) -> str:
    try:
        return framework_by_id(fid).name
    except KeyError:
        return fid


def _short_details(details: Mapping[str, Any]) -> str:
    parts = []
    for key in ("operators", "num_nodes", "tensors", "total_params", "total_flops", "layers"):
        if key in details:
            parts.append(f"{key}={details[key]}")
    hist = details.get("op_histogram")
    if isinstance(hist, dict) and hist:
        parts.append("ops: " + ", ".join(list(hist)[:4]))
    for key in ("producer_name", "delegates", "opt_version", "model_type", "architecture"):
        if details.get(key):
            parts.append(f"{key}={details[key]}")
    return "; ".join(parts)


def print_inventory(inv: Inventory, console: Console | None = None) -> None:
    """Print models, frameworks, packages, issues and totals as rich tables."""
    con = console or Console()
    if inv.models:
        t = Table(title=f"Models ({len(inv.models)})", show_lines=False)
        for col in ("format", "location", "size", "sha256", "details"):
            t.add_column(col, overflow="fold")
        for m in inv.models:
            fmt = m.format + (" [yellow](suspected)[/]" if m.suspected else "")
            details = m.reason if m.suspected else _short_details(m.details)
            t.add_row(fmt, m.path, _fmt_bytes(m.size_bytes), (m.sha256 or "-")[:12], details)
        con.print(t)
    fw = inv.frameworks()
    if fw:
        t = Table(title="Inference frameworks")
        for col in ("app", "framework", "ABIs", "evidence"):
            t.add_column(col, overflow="fold")
        for app, per_app in fw.items():
            for fid, abis in sorted(per_app.items()):
                ev = sorted(
                    {x.evidence for x in inv.libraries if x.app == app and x.framework == fid}
                    | {x.evidence for x in inv.packages if x.app == app and x.framework == fid}
                )
                t.add_row(app, _fw_name(fid), ", ".join(sorted(abis)), "; ".join(ev)[:80])
        con.print(t)
    if inv.issues:
        t = Table(title=f"Issues ({len(inv.issues)}) — recorded, scan continued")
        for col in ("kind", "location", "detail"):
            t.add_column(col, overflow="fold")
        for i in inv.issues:
            t.add_row(i.kind, i.path, i.detail)
        con.print(t)
    s = inv.stats
    mb = s.bytes_read / 1e6
    rate = mb / s.elapsed_s if s.elapsed_s > 0 else 0.0
    con.print(
        f"{len(inv.apps)} app(s), {s.files} files, {s.archives} archives, "
        f"{_fmt_bytes(s.bytes_on_disk)} on disk, {mb:.1f} MB read in {s.elapsed_s:.2f} s "
        f"({rate:.0f} MB/s): {sum(not m.suspected for m in inv.models)} models, "
        f"{sum(m.suspected for m in inv.models)} suspected, "
        f"{len({(x.app, x.framework) for x in inv.libraries})} framework libraries, "
        f"{len(inv.issues)} issues"
    )


def print_aggregate(agg: Aggregate, console: Console | None = None) -> None:
    """Print the cross-app statistics as rich tables."""
    con = console or Console()
    con.print(
        f"[bold]{agg.apps} apps[/]: {agg.apps_with_models} with models, "
        f"{agg.apps_with_frameworks} with inference frameworks, {agg.suspected} suspected blobs"
    )
    t = Table(title="Framework share (apps)")
    t.add_column("framework")
    t.add_column("apps", justify="right")
    t.add_column("share", justify="right")
    t.add_column("ABIs")
    for fid, n in agg.framework_apps.items():
        abis = ", ".join(f"{a}:{c}" for a, c in sorted(agg.framework_abis.get(fid, {}).items()))
        t.add_row(_fw_name(fid), str(n), f"{n / max(agg.apps, 1):.0%}", abis)
    con.print(t)
    t = Table(title="Model format share")
    for col in ("format", "models", "apps"):
        t.add_column(col)
    for fmt, n in agg.format_models.items():
        t.add_row(FORMATS.get(fmt, fmt), str(n), str(agg.format_apps.get(fmt, 0)))
    con.print(t)
    t = Table(title="Model sizes")
    t.add_column("bucket")
    t.add_column("models", justify="right")
    for label, n in agg.size_buckets.items():
        t.add_row(label, str(n))
    con.print(t)
    if agg.shared_models:
        t = Table(title="Models shared across apps (same sha256)")
        for col in ("sha256", "format", "size", "apps", "names"):
            t.add_column(col, overflow="fold")
        for s in agg.shared_models[:30]:
            t.add_row(
                s["sha256"][:12], s["format"], _fmt_bytes(s["size_bytes"]),
                str(len(s["apps"])), ", ".join(s["names"])[:60],
            )  # fmt: skip
        con.print(t)


# -- chart report ----------------------------------------------------------------------


def _chart_series(agg: Aggregate) -> list[tuple[str, list[tuple[str, float]], str]]:
    apps = max(agg.apps, 1)
    return [
        (
            "Framework share (% of apps)",
            [(_fw_name(f), round(100 * n / apps, 1)) for f, n in agg.framework_apps.items()],
            "%",
        ),
        (
            "Model formats (models)",
            [(FORMATS.get(f, f), n) for f, n in agg.format_models.items()],
            "",
        ),
        ("Model size distribution (models)", list(agg.size_buckets.items()), ""),
    ]


def _chart_args(
    title: str, items: Sequence[tuple[str, float]], unit: str
) -> tuple[list[str], list[float], dict[str, Any]]:
    """Labels, values and :func:`graphrec.reporting.draw_bars` options of one chart."""
    labels = [label[:34] for label, _ in items]
    values = [float(v) for _, v in items]
    opts = {
        "title": title,
        "xlabel": unit or "count",
        "value_labels": [f"{v:g}{unit}" for _, v in items],
    }
    return labels, values, opts


def render_html(inv: Inventory, title: str = "graphrec mine — aggregate report") -> str:
    """A self-contained HTML page (inline SVG charts, no scripts, no external files).

    The page comes from the template ``mining_report.html.j2``; the three charts from
    :func:`graphrec.reporting.bar_chart_svg`.
    """
    from graphrec.reporting import bar_chart_svg, render_template, safe_svg

    agg = inv.aggregate()
    charts = []
    for t, items, unit in _chart_series(agg):
        labels, values, opts = _chart_args(t, items, unit)
        charts.append(safe_svg(bar_chart_svg(labels, values, width_in=7.0, **opts)))
    return render_template(
        "mining_report.html.j2",
        title=title,
        agg=agg,
        n_models=len(inv.models),
        models=inv.models,
        charts=charts,
        fmt_bytes=_fmt_bytes,
        short_details=_short_details,
    )


def write_report(inv: Inventory, path: str | os.PathLike[str]) -> Path:
    """Write the aggregate report; returns the file written.

    A ``.png`` target gets the three charts side by side (drawn with matplotlib); any
    other suffix gets the self-contained HTML page of :func:`render_html`.
    """
    from graphrec.reporting import bar_chart_png

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".png":
        series = _chart_series(inv.aggregate())
        bar_chart_png(out, [_chart_args(t, items, unit) for t, items, unit in series])
        return out
    out.write_text(render_html(inv), encoding="utf-8")
    return out
