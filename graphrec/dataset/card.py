"""The data card's figures, computed from a dataset's measurements.

Definitions (the card repeats them):

* A *setting* is one (model, device, thread count). Within a setting, a runtime's
  latency is the best median warm latency (``p50_ms``, median over rounds) of its ``ok``
  candidates; the *oracle* is the best over all runtimes.
* *Fragmentation*: the share of settings in which each runtime is the fastest, over
  settings where at least two runtimes ran, per family and per thread count (the
  "performance fragmentation" of mobile deep-learning libraries).
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


def _label_rows(meas: Any) -> Any:
    """The rows that make the labels (all of them in datasets without a ``label`` column)."""
    return meas[meas["label"].astype(bool)] if "label" in meas.columns else meas


def _setting_latency(meas: Any) -> Any:
    """Per (setting, runtime): best ok median latency (rounds merged by median)."""
    meas = _label_rows(meas)
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
    # Noise across rounds (separate processes), per protocol and thread count.
    ok = meas[(meas["status"] == "ok") & meas["p50_ms"].notna()].copy()
    if "harness_version" not in ok.columns:
        ok["harness_version"] = "1.0"
    ok["harness_version"] = ok["harness_version"].fillna("1.0").astype(str)
    pair = ["model_sha256", "candidate_id", "device_id", "harness_version"]
    if "input_key" in ok.columns:
        ok["input_key"] = ok["input_key"].fillna(ok["model_sha256"])
        pair = ["input_key", *pair[1:]]
    grouped = ok.groupby(pair, observed=True)["p50_ms"]
    ok["pair_n"] = grouped.transform("count")
    ok["pair_median"] = grouped.transform("median")
    # Series of two rounds or more: harness 2.0 adds a third round only where the first
    # two disagree, so a ">= 3 rounds" filter would keep only its noisiest pairs.
    rep = ok[ok["pair_n"] >= 2]
    stats = rep.groupby(pair, observed=True)["p50_ms"].agg(["mean", "std", "min", "max"])
    cvs = stats["std"] / stats["mean"]

    def noise_of(frame: Any) -> dict[str, Any]:
        st = frame.groupby(pair, observed=True)["p50_ms"].agg(["mean", "std"])
        within = (frame["p50_ms"] - frame["pair_median"]).abs() <= 0.10 * frame["pair_median"]
        out_n: dict[str, Any] = {
            "series": len(st),
            "median_cv": float((st["std"] / st["mean"]).median()),
            "within_10pct": round(float(within.mean()), 4),
        }
        if "busy" in frame.columns and frame["busy"].notna().any():
            out_n["busy_share"] = round(float(frame["busy"].fillna(0).astype(bool).mean()), 4)
        return out_n

    by_threads: dict[str, Any] = {}
    if "threads" in rep.columns and len(rep):
        for (hv, t), g in rep.groupby(["harness_version", "threads"], observed=True):
            by_threads[f"harness {hv}, threads={int(t)}"] = noise_of(g)
    out["noise"] = {
        "by_threads": by_threads,
        "series": len(stats),
        "median_cv": float(cvs.median()) if len(stats) else None,
        "p90_cv": float(cvs.quantile(0.9)) if len(stats) else None,
        "median_max_over_min": float((stats["max"] / stats["min"]).median())
        if len(stats)
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


def fragmentation_svg(figures: dict[str, Any], title: str = "Fastest runtime per family") -> str:
    """A stacked-bar SVG of the per-family win shares (one row per family, one colour per runtime).

    Drawn by :func:`graphrec.reporting.bar_chart_svg`; the same figures give the same bytes.
    """
    from graphrec.reporting import bar_chart_svg

    by_family = figures["fragmentation"]["by_family"]
    runtimes = sorted({r for v in by_family.values() for r in v if r != "settings"})
    families = sorted(by_family)
    return bar_chart_svg(
        [f"{fam} ({by_family[fam]['settings']})" for fam in families],
        {r: [float(by_family[fam].get(r, 0.0)) for fam in families] for r in runtimes},
        title=title,
        xlabel="share of the family's settings in which the runtime is the fastest",
        segment_label=lambda v: f"{100 * v:.0f} %",
        percent_axis=True,
    )


def render_card(figures: dict[str, Any], meta: dict[str, Any]) -> str:
    """The figure sections of ``DATASET.md`` as Markdown (template ``dataset_card.md.j2``)."""
    from graphrec.reporting import render_template

    fr = figures["fragmentation"]
    rows: list[tuple[str, Any, dict[str, Any]]] = [("all", fr["settings"], fr["overall"])]
    fc = fr.get("full_coverage") or {}
    if fc.get("settings") and fc["settings"] != fr["settings"]:
        rows.append(("all, every runtime attempted", fc["settings"], fc["overall"]))
    rows += [(f"threads={t}", v["settings"], v) for t, v in sorted(fr["by_threads"].items())]
    rows += [(f, v["settings"], v) for f, v in sorted(fr["by_family"].items())]
    noise = figures["noise"]
    return render_template(
        "dataset_card.md.j2",
        counts=meta.get("counts", {}),
        meta=meta,
        models_per_family=sorted(figures["counts"]["models_per_family"].items()),
        models_per_runtime=sorted((figures["counts"].get("models_per_runtime") or {}).items()),
        statuses=sorted({s for v in figures["status_by_runtime"].values() for s in v}),
        status_by_runtime=sorted(figures["status_by_runtime"].items()),
        top_errors=sorted(figures["top_errors"].items()),
        noise=noise,
        noise_by_threads=sorted((noise.get("by_threads") or {}).items()),
        runtimes=sorted(fr["overall"]),
        fragmentation_rows=rows,
        single_runtime_loss=sorted(
            figures["single_runtime_loss"].items(), key=lambda kv: kv[1]["mean_loss"]
        ),
        best=figures["single_best_runtime"],
    )
