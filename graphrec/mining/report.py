"""Human-readable views of an inventory: rich tables and an aggregate chart report.

The chart report is a self-contained HTML page with inline SVG bar charts
(framework share, model-format share, model size distribution) and the table
of models shared by hash across apps. A ``.png`` target is drawn with
matplotlib when it is installed; otherwise the HTML page is written instead.
"""

from __future__ import annotations

import html
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

_COLORS = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1")


def _svg_bars(title: str, items: Sequence[tuple[str, float]], unit: str = "") -> str:
    """A horizontal bar chart as an inline SVG string."""
    row_h, label_w, bar_w = 22, 230, 360
    height = 34 + row_h * max(len(items), 1)
    peak = max((v for _, v in items), default=0) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + bar_w + 90}" '
        f'height="{height}" role="img" aria-label="{html.escape(title)}">',
        f'<text x="4" y="18" font-weight="bold" font-size="14">{html.escape(title)}</text>',
    ]
    if not items:
        parts.append('<text x="4" y="44" font-size="12">(none)</text>')
    for i, (label, value) in enumerate(items):
        y = 30 + i * row_h
        w = max(1.0, bar_w * value / peak)
        color = _COLORS[i % len(_COLORS)]
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 14}" font-size="12" text-anchor="end">'
            f"{html.escape(label[:34])}</text>"
            f'<rect x="{label_w}" y="{y + 2}" width="{w:.1f}" height="{row_h - 6}" '
            f'fill="{color}"><title>{html.escape(label)}: {value:g}{unit}</title></rect>'
            f'<text x="{label_w + w + 4:.1f}" y="{y + 14}" font-size="12">{value:g}{unit}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


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


def render_html(inv: Inventory, title: str = "graphrec mine — aggregate report") -> str:
    """A self-contained HTML page (inline SVG charts, no scripts, no external files)."""
    agg = inv.aggregate()
    esc = html.escape
    charts = "".join(
        f"<figure>{_svg_bars(t, items, unit)}</figure>" for t, items, unit in _chart_series(agg)
    )
    shared_rows = "".join(
        f"<tr><td><code>{esc(s['sha256'][:16])}</code></td><td>{esc(s['format'])}</td>"
        f"<td>{_fmt_bytes(s['size_bytes'])}</td><td>{len(s['apps'])}</td>"
        f"<td>{esc(', '.join(s['names']))}</td></tr>"
        for s in agg.shared_models
    )
    model_rows = "".join(
        f"<tr><td>{esc(m.format)}{' (suspected)' if m.suspected else ''}</td>"
        f"<td>{esc(m.path)}</td><td>{_fmt_bytes(m.size_bytes)}</td>"
        f"<td>{esc(m.reason if m.suspected else _short_details(m.details))}</td></tr>"
        for m in inv.models
    )
    issues = (
        "".join(f"<tr><td>{esc(k)}</td><td>{n}</td></tr>" for k, n in agg.issues.items())
        or "<tr><td colspan=2>none</td></tr>"
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1100px}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:3px 8px;
font-size:13px;text-align:left}}figure{{margin:1em 0}}</style></head><body>
<h1>{esc(title)}</h1>
<p>{agg.apps} apps scanned: {agg.apps_with_models} with models, {agg.apps_with_frameworks} with
inference frameworks, {len(inv.models) - agg.suspected} models, {agg.suspected} suspected
(encrypted or obfuscated) blobs. Model bytes: {esc(str(agg.size_stats))}.</p>
{charts}
<h2>Models shared by hash across apps</h2>
<table><tr><th>sha256</th><th>format</th><th>size</th><th>apps</th><th>names</th></tr>
{shared_rows or "<tr><td colspan=5>none</td></tr>"}</table>
<h2>Models</h2>
<table><tr><th>format</th><th>location</th><th>size</th><th>details</th></tr>{model_rows}</table>
<h2>Issues</h2><table><tr><th>kind</th><th>count</th></tr>{issues}</table>
</body></html>
"""


def _png(inv: Inventory, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    series = _chart_series(inv.aggregate())
    fig, axes = plt.subplots(1, len(series), figsize=(6 * len(series), 4.5))
    for ax, (title, items, unit) in zip(axes, series, strict=True):
        labels = [label for label, _ in items][::-1]
        values = [v for _, v in items][::-1]
        ax.barh(labels, values, color=list(_COLORS)[: len(values)] or None)
        ax.set_title(title)
        ax.set_xlabel(unit or "count")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write_report(inv: Inventory, path: str | os.PathLike[str]) -> Path:
    """Write the aggregate report; returns the file actually written.

    ``.png`` is drawn with matplotlib when available; otherwise (and for any
    other suffix) a self-contained HTML page is written (a ``.png`` name gets
    the suffix ``.html`` then).
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".png":
        if _png(inv, out):
            return out
        out = out.with_suffix(".html")
    out.write_text(render_html(inv), encoding="utf-8")
    return out
