"""Leave-family-out evaluation: every method scored, intervals over families."""

from __future__ import annotations

import numpy as np
import pytest
from rec_fixtures import HEAD_FAST, MEDN_FAST
from rec_synthetic import cached_dataset

from graphrec.recommender.evaluate import METHODS, cluster_bootstrap, leave_family_out, summarise


def test_cluster_bootstrap_resamples_whole_clusters() -> None:
    # Two clusters with different means: the interval spans both cluster means' mix,
    # and a single cluster gives a zero-width interval.
    v = np.array([0.0, 0.0, 0.0, 1.0, 1.0, 1.0])
    c = ["a", "a", "a", "b", "b", "b"]
    ci = cluster_bootstrap(v, c, n_boot=500, seed=0)
    assert ci["value"] == pytest.approx(0.5)
    assert ci["low"] == 0.0 and ci["high"] == 1.0  # all-a or all-b draws happen
    one = cluster_bootstrap(v[:3] + 0.2, c[:3], n_boot=100)
    assert one["low"] == one["high"] == pytest.approx(0.2)
    assert np.isnan(cluster_bootstrap(np.array([]), [])["value"])


def test_leave_family_out_on_a_known_crossover(tmp_path_factory: pytest.TempPathFactory) -> None:
    ds = cached_dataset(tmp_path_factory)
    params = {
        "medn_params": {**MEDN_FAST, "epochs": 30},
        "head_params": HEAD_FAST,
        "latency_gbdt_params": {"iterations": 100},
        "alpha": 0.5,
    }
    lines: list[str] = []
    res = leave_family_out(ds, folds=3, seed=0, params=params, progress=lines.append)
    assert len(res.folds) == 3 and len(lines) == 3 and len(res.fitted) == 3
    for m in METHODS:
        if m != "random":
            assert (res.chosen[m] >= 0).all(), m
    # The oracle has zero regret; graphrec, which sees the model's size, beats one fixed
    # choice by a wide margin on families it never saw.
    s = summarise(res, n_boot=200)
    meth = s["methods"]
    assert meth["oracle"]["mean_regret"]["value"] == 0.0
    assert meth["oracle"]["top1"]["value"] == 1.0
    g, b = meth["graphrec"]["mean_regret"], meth["best_on_average"]["mean_regret"]
    assert g["value"] < 0.5 * b["value"], (g, b)
    for v in (g, b, meth["graphrec"]["top1"]):
        assert v["low"] <= v["value"] <= v["high"]
    assert s["latency"]["pairs"] == 3 * len(ds)
    assert 0.0 <= s["latency"]["within_10pct"]["value"] <= 1.0
    with pytest.raises(ValueError, match="2 families"):
        leave_family_out(ds.subset(np.flatnonzero(np.array(ds.families) == "mlp1")))
