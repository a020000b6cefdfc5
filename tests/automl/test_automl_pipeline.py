"""The whole ``graphrec automl`` pipeline on a tiny budget: search, train, export,
recommend, measure with the real harness; resume; bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from graphrec.automl.data import AutoMLError
from graphrec.automl.pipeline import run_pipeline
from graphrec.cli import main

KEYS = (
    "test_accuracy",
    "search_minutes",
    "onnx_path",
    "recommended_runtime",
    "predicted_latency_ms",
    "measured_latency_ms",
)


def test_cli_runs_the_whole_pipeline_and_resumes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    argv = [
        "automl",
        "--data",
        "digits",
        "--budget-min",
        "0.05",
        "--subsample",
        "0.1",
        "--depth",
        "3",
        "--channels",
        "4",
        "--out",
        str(out),
        "--json",
    ]
    assert main(argv) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    for k in KEYS:
        assert summary[k] is not None, k
    assert 0.0 <= summary["test_accuracy"] <= 1.0
    assert Path(summary["onnx_path"]).is_file()
    assert summary["measured_latency_ms"] > 0 and summary["measured_status"] == "ok"
    assert summary["predicted_latency_ms"] > 0
    for name in ("model.onnx", "model.pt", "card.json", "card.md", "summary.json", "state.json"):
        assert (out / name).is_file(), name
    assert "stage 4/4" in captured.err and "final training" in captured.err
    card = json.loads((out / "card.json").read_text())
    assert card["test_accuracy"] == summary["test_accuracy"]

    # an interruption after the search: drop the later steps, run again, only they rerun
    state = json.loads((out / "state.json").read_text())
    search_before = state["steps"]["search"]
    for step in ("train", "export", "deploy"):
        del state["steps"][step]
    (out / "state.json").write_text(json.dumps(state))
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "resuming: augment, search already done" in captured.err
    assert "architecture search" not in captured.err
    after = json.loads((out / "state.json").read_text())
    assert after["steps"]["search"] == search_before and "deploy" in after["steps"]

    # the same folder with other settings is refused, nothing lost
    with pytest.raises(AutoMLError, match="holds a run with other settings"):
        run_pipeline("digits", out, budget_min=1.0, subsample=0.1, depth=3, channels=4)
    assert json.loads((out / "state.json").read_text()) == after


def test_latency_term_uses_the_recommenders_table(tmp_path: Path) -> None:
    s = run_pipeline(
        "digits",
        tmp_path / "lat",
        budget_min=0.03,
        subsample=0.08,
        depth=3,
        channels=4,
        latency_target_ms=0.01,
        measure=False,
    )
    state = json.loads((tmp_path / "lat" / "state.json").read_text())
    table = state["steps"]["latency_table"]
    assert table["candidate"] and table["meta"]["scale"] > 0
    assert len(table["entries"]) == 3 and len(table["entries"][0][0]) == 6
    hist = state["steps"]["search"]["history"]
    assert all("expected_latency_ms" in h for h in hist)
    assert s["measured_latency_ms"] is None and s["meets_latency_target"] is None


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(AutoMLError, match="unknown task"):
        run_pipeline("imagenet", tmp_path)
    with pytest.raises(AutoMLError, match="budget-min must be positive"):
        run_pipeline("digits", tmp_path, budget_min=0)
    (tmp_path / "state.json").write_text("{not json")
    with pytest.raises(AutoMLError, match=r"state\.json: not valid JSON"):
        run_pipeline("digits", tmp_path, budget_min=1)
