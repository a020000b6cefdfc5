"""Sampling module points and building their ONNX files (run with onnxruntime)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from graphrec.errors import GraphRecError
from graphrec.recommender.modules.generate import PARAM_RANGES, build_module, sample_points


def test_sampling_is_deterministic_and_within_ranges() -> None:
    a = sample_points({"conv": 5, "linear": 3}, seed=3, batches=(1, 2))
    b = sample_points({"conv": 5, "linear": 3}, seed=3, batches=(1, 2))
    assert [p.point_id for p in a] == [p.point_id for p in b]
    lo, hi = PARAM_RANGES["linear"]["n"]
    assert all(lo <= p.params["n"] <= hi for p in a if p.module_type == "linear")
    assert {p.batch for p in a} <= {1, 2}


def test_unknown_type_is_named() -> None:
    with pytest.raises(GraphRecError, match="unknown module type 'convv'"):
        sample_points({"convv": 1})


def test_every_type_builds_and_runs(tmp_path: Path) -> None:
    import onnxruntime as ort

    pts = sample_points({t: 1 for t in PARAM_RANGES}, seed=7)
    small = {
        "hw": 8,
        "numel": 512,
        "m": 4,
        "n": 16,
        "s": 8,
        "rows": 8,
        "dim": 16,
        "seq": 4,
        "hidden": 16,
        "input": 8,
        "cin": 8,
        "cout": 8,
        "c": 16,
        "b": 2,
    }
    for p in pts:  # shrink sizes so the test stays fast; the structure is what is tested
        p.params = {
            k: (small.get(k, v) if isinstance(v, int) and k in small else v)
            for k, v in p.params.items()
        }
        p.point_id = ""
        p.__post_init__()
        path = build_module(p, tmp_path)
        s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feeds = {i.name: np.random.rand(*i.shape).astype(np.float32) for i in s.get_inputs()}
        outs = s.run(None, feeds)
        assert outs and all(np.isfinite(o).all() for o in outs), p
