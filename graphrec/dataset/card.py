"""The data card's figures, computed from a dataset's measurements.

Definitions (the card repeats them):

* A *setting* is one (model, device, thread count). Within a setting, a runtime's
  latency is the best median warm latency (``p50_ms``, median over rounds) of its ``ok``
  candidates; the *oracle* is the best over all runtimes.
* *Fragmentation*: the share of settings in which each runtime is the fastest, over
  settings where at least two runtimes ran, per family and per thread count (seed 000's
  "performance fragmentation").
* *Single-runtime loss*: for a runtime R, the mean over settings of
  ``latency(R) / latency(oracle) - 1`` where R ran, with R's coverage (share of settings
  where it ran at all). The *single best runtime* is the one with the lowest mean loss
  among runtimes covering at least 90 % of the settings.
* *Noise*: for (model, candidate, device) measured in ≥ 3 rounds (separate processes),
  the coefficient of variation of the per-round medians.
"""

from __future__ import annotations

from typing import Any

__all__ = ["card_figures", "fragmentation_svg", "render_card"]


def _setting_latency(meas: Any) -> Any:
    """Per (setting, runtime): best ok median latency (rounds merged by median)."""
    ok = meas[(meas["status"] == "ok") & meas["p50_ms"].notna()]
    per_cand = (
        ok.groupby(
            ["model_sha256", "family", "device_id", "threads", "runtime", "candidate_id"],
            observed=True,
        )["p50_ms"]
        .median()
        .reset_index()
    )
    return (
        per_cand.groupby(
            ["model_sha256", "family", "device_id", "threads", "runtime"], observed=True
        )["p50_ms"]
        .min()
        .reset_index()
    )


def card_figures(meas: Any) -> dict[str, Any]:
    """Compute every figure of the data card from a measurements DataFrame.

    Returns:
        A JSON-able dict: ``counts``, ``status_by_runtime``, ``top_errors``, ``noise``,
        ``fragmentation`` (overall, by family, by threads), ``single_runtime_loss``,
        ``single_best_runtime``.
    """
    import numpy as np
    import pandas as pd

    out: dict[str, Any] = {}
    out["counts"] = {
        "rows": len(meas),
        "models": int(meas["model_sha256"].nunique()),
        "models_per_family": {
            str(k): int(v)
            for k, v in meas.groupby("family", observed=True)["model_sha256"].nunique().items()
        },
        "models_per_runtime": {
            str(k): int(v)
            for k, v in meas.groupby("runtime", observed=True)["model_sha256"].nunique().items()
        },
        "rows_per_runtime_device": {
            f"{r} @ {d}": int(n)
            for (r, d), n in meas.groupby(["runtime", "device_id"], observed=True).size().items()
        },
    }
    status = meas.groupby(["runtime", "status"], observed=True).size().unstack(fill_value=0)
    out["status_by_runtime"] = {
        str(r): {str(s): int(n) for s, n in row.items() if n} for r, row in status.iterrows()
    }
    failed = meas[meas["status"] != "ok"].copy()
    failed["reason"] = (
        failed["error"].fillna("").astype(str).str.split("\n").str[0].str.slice(0, 100)
    )
    out["top_errors"] = {
        str(r): [
            {"status": str(s), "reason": str(e), "rows": int(n)}
            for (s, e), n in g.groupby(["status", "reason"], observed=True)
            .size()
            .nlargest(3)
            .items()
        ]
        for r, g in failed.groupby("runtime", observed=True)
    }
    # Noise across rounds (separate processes).
    ok = meas[(meas["status"] == "ok") & meas["p50_ms"].notna()]
    rounds = ok.groupby(["model_sha256", "candidate_id", "device_id"], observed=True)["p50_ms"]
    stats = rounds.agg(["count", "mean", "std", "min", "max"])
    multi = stats[stats["count"] >= 3]
    cv = (multi["std"] / multi["mean"]).reset_index()
    if "threads" in meas.columns and len(cv):
        thr = ok.drop_duplicates(["model_sha256", "candidate_id", "device_id"]).set_index(
            ["model_sha256", "candidate_id", "device_id"]
        )["threads"]
        cv["threads"] = [
            thr.get((m, c, d))
            for m, c, d in zip(cv["model_sha256"], cv["candidate_id"], cv["device_id"], strict=True)
        ]
        by_threads = {
            str(int(t)): {"series": len(g), "median_cv": float(g[0].median())}
            for t, g in cv.dropna(subset=["threads"]).groupby("threads")
        }
    else:
        by_threads = {}
    out["noise"] = {
        "by_threads": by_threads,
        "series": len(multi),
        "median_cv": float((multi["std"] / multi["mean"]).median()) if len(multi) else None,
        "p90_cv": float((multi["std"] / multi["mean"]).quantile(0.9)) if len(multi) else None,
        "median_max_over_min": float((multi["max"] / multi["min"]).median())
        if len(multi)
        else None,
    }
    # Fragmentation.
    lat = _setting_latency(meas)
    keys = ["model_sha256", "family", "device_id", "threads"]
    lat["oracle"] = lat.groupby(keys, observed=True)["p50_ms"].transform("min")
    lat["n_runtimes"] = lat.groupby(keys, observed=True)["runtime"].transform("nunique")
    contested = lat[lat["n_runtimes"] >= 2]
    winners = contested[contested["p50_ms"] == contested["oracle"]].drop_duplicates(keys)

    def shares(frame: Any, by: list[str] | None) -> dict[str, Any]:
        if frame.empty:
            return {}
        if by is None:
            s = frame["runtime"].value_counts(normalize=True)
            return {str(k): round(float(v), 4) for k, v in s.items() if v > 0}
        res: dict[str, Any] = {}
        for key, g in frame.groupby(by, observed=True):
            s = g["runtime"].value_counts(normalize=True)
            res[str(key[0] if isinstance(key, tuple) else key)] = {
                "settings": len(g),
                **{str(k): round(float(v), 4) for k, v in s.items() if v > 0},
            }
        return res

    # Settings where every runtime of the dataset was attempted (a row of any status): the
    # campaign may measure costly runtimes on a subset of the models only.
    attempted = meas.groupby(["model_sha256", "device_id"], observed=True)["runtime"].nunique()
    n_rt = meas["runtime"].nunique()
    full = {k for k, v in attempted.items() if v == n_rt}
    in_full = [
        (m, d) in full for m, d in zip(winners["model_sha256"], winners["device_id"], strict=True)
    ]
    winners_full = winners[np.asarray(in_full, dtype=bool)] if len(winners) else winners
    out["fragmentation"] = {
        "settings": len(winners),
        "overall": shares(winners, None),
        "full_coverage": {
            "settings": len(winners_full),
            "overall": shares(winners_full, None),
        },
        "by_family": shares(winners, ["family"]),
        "by_threads": shares(winners, ["threads"]),
        "distinct_winners_per_family": {
            str(f): int(g["runtime"].nunique()) for f, g in winners.groupby("family", observed=True)
        },
    }
    n_settings = contested.drop_duplicates(keys).shape[0]
    loss: dict[str, Any] = {}
    for r, g in contested.groupby("runtime", observed=True):
        ratio = g["p50_ms"] / g["oracle"] - 1.0
        loss[str(r)] = {
            "coverage": round(len(g) / n_settings, 4) if n_settings else 0.0,
            "mean_loss": round(float(ratio.mean()), 4),
            "median_loss": round(float(ratio.median()), 4),
            "p90_loss": round(float(np.quantile(ratio, 0.9)), 4),
        }
    out["single_runtime_loss"] = loss
    eligible = {r: v for r, v in loss.items() if v["coverage"] >= 0.9}
    best = min(eligible, key=lambda r: eligible[r]["mean_loss"]) if eligible else None
    out["single_best_runtime"] = {"runtime": best, **(eligible[best] if best else {})}
    out["latency_ms"] = {
        "oracle_median": float(pd.Series(winners["oracle"]).median()) if len(winners) else None,
    }
    return out


_COLORS = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
)


def fragmentation_svg(figures: dict[str, Any], title: str = "Fastest runtime per family") -> str:
    """A stacked-bar SVG of the per-family win shares (self-contained, no plotting library)."""
    by_family = figures["fragmentation"]["by_family"]
    runtimes = sorted({r for v in by_family.values() for r in v if r != "settings"})
    color = {r: _COLORS[i % len(_COLORS)] for i, r in enumerate(runtimes)}
    bar_h, gap, left, width = 18, 6, 120, 520
    height = 40 + len(by_family) * (bar_h + gap) + 30
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 170}" height="{height}" '
        'font-family="sans-serif" font-size="11">',
        f'<text x="10" y="20" font-size="14">{title}</text>',
    ]
    y = 36
    for fam, shares in sorted(by_family.items()):
        parts.append(
            f'<text x="{left - 6}" y="{y + 13}" text-anchor="end">{fam} ({shares["settings"]})</text>'
        )
        x = float(left)
        for r in runtimes:
            w = width * float(shares.get(r, 0.0))
            if w > 0:
                parts.append(
                    f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{color[r]}">'
                    f"<title>{fam}: {r} {100 * shares.get(r, 0):.0f} %</title></rect>"
                )
            x += w
        y += bar_h + gap
    for i, r in enumerate(runtimes):
        ly = 40 + i * 16
        parts.append(
            f'<rect x="{left + width + 15}" y="{ly}" width="10" height="10" fill="{color[r]}"/>'
        )
        parts.append(f'<text x="{left + width + 30}" y="{ly + 9}">{r}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f} %"


def render_card(figures: dict[str, Any], meta: dict[str, Any]) -> str:
    """The figure sections of ``DATASET.md`` as Markdown."""
    c = meta.get("counts", {})
    lines = [
        "## Figures (generated by `graphrec dataset card`)",
        "",
        f"{c.get('rows')} result rows, {c.get('models')} models, {c.get('families')} families, "
        f"{c.get('runtimes')} runtimes, {c.get('devices')} device(s); built {meta.get('built_at')}.",
        "",
        "### Models per family",
        "",
        "| family | models |",
        "|---|---|",
    ]
    lines += [f"| {f} | {n} |" for f, n in sorted(figures["counts"]["models_per_family"].items())]
    per_rt = figures["counts"].get("models_per_runtime") or {}
    if per_rt:
        lines += ["", "### Models measured per runtime", "", "| runtime | models |", "|---|---|"]
        lines += [f"| {r} | {n} |" for r, n in sorted(per_rt.items())]
    lines += ["", "### Status per runtime", ""]
    statuses = sorted({s for v in figures["status_by_runtime"].values() for s in v})
    lines += ["| runtime | " + " | ".join(statuses) + " |", "|---" * (len(statuses) + 1) + "|"]
    for r, v in sorted(figures["status_by_runtime"].items()):
        lines.append(f"| {r} | " + " | ".join(str(v.get(s, 0)) for s in statuses) + " |")
    lines += [
        "",
        "### Most frequent failure reasons",
        "",
        "| runtime | status | rows | reason |",
        "|---|---|---|---|",
    ]
    for r, errs in sorted(figures["top_errors"].items()):
        for e in errs:
            reason = e["reason"].replace("|", "/") or "(no message)"
            lines.append(f"| {r} | {e['status']} | {e['rows']} | {reason} |")
    n = figures["noise"]
    lines += [
        "",
        "### Measurement noise (separate processes)",
        "",
        f"{n['series']} (model, candidate) series with ≥ 3 rounds: median CV of the per-round "
        f"medians {_pct(n['median_cv'])}, p90 {_pct(n['p90_cv'])}; median max/min "
        f"{n['median_max_over_min'] or 0:.2f}x"
        + (
            " ("
            + ", ".join(
                f"threads={t}: {v['series']} series, median CV {_pct(v['median_cv'])}"
                for t, v in sorted((n.get("by_threads") or {}).items())
            )
            + ")"
            if n.get("by_threads")
            else ""
        )
        + ".",
        "",
        "### Performance fragmentation: how often each runtime is the fastest",
        "",
    ]
    fr = figures["fragmentation"]
    runtimes = sorted({r for r in fr["overall"]})
    head = "| | settings | " + " | ".join(runtimes) + " |"
    sep = "|---" * (len(runtimes) + 2) + "|"
    lines += [
        head,
        sep,
        f"| all | {fr['settings']} | "
        + " | ".join(_pct(fr["overall"].get(r)) for r in runtimes)
        + " |",
    ]
    fc = fr.get("full_coverage") or {}
    if fc.get("settings") and fc["settings"] != fr["settings"]:
        lines.append(
            f"| all, every runtime attempted | {fc['settings']} | "
            + " | ".join(_pct(fc["overall"].get(r)) for r in runtimes)
            + " |"
        )
    for t, v in sorted(fr["by_threads"].items()):
        lines.append(
            f"| threads={t} | {v['settings']} | "
            + " | ".join(_pct(v.get(r)) for r in runtimes)
            + " |"
        )
    for f, v in sorted(fr["by_family"].items()):
        lines.append(
            f"| {f} | {v['settings']} | " + " | ".join(_pct(v.get(r)) for r in runtimes) + " |"
        )
    lines += [
        "",
        "![fastest runtime per family](dataset_fragmentation.svg)",
        "",
        "### Latency loss of always using one runtime",
        "",
        "| runtime | coverage | mean loss | median loss | p90 loss |",
        "|---|---|---|---|---|",
    ]
    for r, v in sorted(figures["single_runtime_loss"].items(), key=lambda kv: kv[1]["mean_loss"]):
        lines.append(
            f"| {r} | {_pct(v['coverage'])} | {_pct(v['mean_loss'])} | {_pct(v['median_loss'])} | {_pct(v['p90_loss'])} |"
        )
    b = figures["single_best_runtime"]
    lines += [
        "",
        f"Single best runtime (lowest mean loss among runtimes covering ≥ 90 % of settings): "
        f"**{b.get('runtime')}**, mean loss {_pct(b.get('mean_loss'))} against the per-setting oracle.",
        "",
    ]
    return "\n".join(lines)
