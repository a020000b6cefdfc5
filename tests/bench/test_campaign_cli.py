"""``graphrec campaign``: a tiny campaign through the CLI, then a resume with nothing left."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny_models import make_mlp

from graphrec.bench.store import ResultStore
from graphrec.cli import main


def _zoo_with_one_model(root: Path) -> Path:
    zoo = root / "zoo"
    zoo.mkdir()
    make_mlp(zoo / "mlp.onnx", seed=0)
    row = {"file": "mlp.onnx", "family": "mlp", "variant": "fp32"}
    (zoo / "manifest.jsonl").write_text(json.dumps(row) + "\n")
    return zoo


def test_campaign_runs_then_resumes_with_nothing_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    zoo = _zoo_with_one_model(tmp_path)
    store = tmp_path / "campaign.sqlite"
    argv = [
        "campaign",
        "run",
        "--zoo",
        str(zoo),
        "--store",
        str(store),
        "--snapshot",
        str(tmp_path / "absent.sqlite.gz"),
        "--count",
        "1",
        "--runtimes",
        "onnxruntime",
        "--candidates",
        "onnxruntime/cpu/fp32/opt=all/*",
        "--threads",
        "1",
        "--max-time",
        "0.05",
        "--noise-repeat",
        "1",
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "measured 1 models x 1 round(s): 1 rows" in out
    with ResultStore(store) as s:
        rows = s.rows()
    assert [(r["candidate_id"], r["status"]) for r in rows] == [
        ("onnxruntime/cpu/fp32/opt=all/threads=1", "ok")
    ]

    assert main(argv) == 0  # resumed: the harness finds every key stored
    out = capsys.readouterr().out
    assert "measured" not in out
    assert "session done: 0 rows added" in out
    with ResultStore(store) as s:
        assert s.count() == 1

    assert main(["campaign", "status", "--zoo", str(zoo), "--store", str(store)]) == 0
    status = capsys.readouterr().out
    assert "zoo " in status and "1 models" in status
    assert f"store {store}: 1 rows, 1 models" in status
    sessions = [json.loads(x) for x in store.with_name(store.name + ".sessions.jsonl").open()]
    assert [s["event"] for s in sessions if s["event"] != "progress"] == [
        "start",
        "end",
        "start",
        "end",
    ]
