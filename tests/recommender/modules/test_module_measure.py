"""Module points measured with the real harness and onnxruntime; the background load."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from graphrec.errors import GraphRecError
from graphrec.recommender.modules.generate import ModulePoint
from graphrec.recommender.modules.measure import (
    BackgroundLoad,
    add_points,
    load_points,
    measure_points,
    measured_table,
)
from graphrec.recommender.modules.select import module_table

ORT = "onnxruntime/cpu/fp32/opt=all/threads=1"


def test_measure_resumes_and_joins_points(tmp_path: Path) -> None:
    pts = [
        ModulePoint("identity", {"numel": 64}),
        ModulePoint("elementwise", {"numel": 4096, "ops": 2, "binary": 1, "broadcast": 0}),
    ]
    assert add_points(tmp_path, pts) == 2
    assert add_points(tmp_path, pts) == 0  # already there
    assert [p.point_id for p in load_points(tmp_path)] == [p.point_id for p in pts]
    assert measure_points(tmp_path, candidates=[ORT]) == 2
    assert measure_points(tmp_path, candidates=[ORT]) == 0  # resumed: nothing pending
    rows = measured_table(tmp_path)
    assert {r["point"].module_type for r in rows} == {"identity", "elementwise"}
    table = {r["module_type"]: r for r in module_table(tmp_path, [ORT])}
    assert table["elementwise"]["latency_ms"][ORT] > 0
    assert table["elementwise"]["features"]["n_ops"] == 2


def test_missing_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(GraphRecError, match=r"points\.jsonl: no such file"):
        load_points(tmp_path / "nowhere")


def test_background_load_runs_and_stops() -> None:
    with pytest.raises(GraphRecError, match=r"in \[0, 1\]"):
        BackgroundLoad(1.5)
    with BackgroundLoad(0.3) as bg:
        proc = bg._proc
        assert proc is not None
        time.sleep(0.2)
        assert bg.running()
    assert proc.poll() is not None and not bg.running()
