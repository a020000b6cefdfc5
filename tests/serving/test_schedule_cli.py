"""``graphrec schedule simulate``: JSON per policy, plain errors on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import graphrec.cli
from graphrec.serving.policies import POLICY_NAMES

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "workloads"


def test_simulate_json_gives_every_policy_its_figures(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["schedule", "simulate", "--workload", str(EXAMPLES / "two_apps.yaml")]
    code = graphrec.cli.main([*argv, "--seeds", "3", "--tasks", "60", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["seeds"] == 3
    assert set(out["policies"]) == set(POLICY_NAMES)
    for figures in out["policies"].values():
        for key in ("success_rate", "mean_accuracy", "utility", "p99_ms"):
            assert isinstance(figures[key], float)
        assert 0 <= figures["success_rate"] <= 1
        assert sum(figures["counts"].values()) == 3 * 60
        low, high = figures["intervals"]["success_rate"]
        assert low <= figures["success_rate"] <= high


def test_simulate_one_policy_as_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["schedule", "simulate", "--workload", str(EXAMPLES / "failover.yaml")]
    assert (
        graphrec.cli.main([*argv, "--policy", "edf,two_step", "--seeds", "2", "--tasks", "50"]) == 0
    )
    text = capsys.readouterr().out
    assert "two_step" in text and "edf" in text and "round_robin" not in text


def test_bad_input_is_a_plain_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "w.yaml"
    bad.write_text("apps: {}\nservers: []\n")
    assert graphrec.cli.main(["schedule", "simulate", "--workload", str(bad)]) == 1
    err = capsys.readouterr().err
    assert str(bad) in err and "apps must be a non-empty mapping" in err
    argv = [
        "schedule",
        "simulate",
        "--workload",
        str(EXAMPLES / "two_apps.yaml"),
        "--policy",
        "sjf",
    ]
    assert graphrec.cli.main(argv) == 1
    assert "unknown policy 'sjf'; valid: all, two_step" in capsys.readouterr().err
