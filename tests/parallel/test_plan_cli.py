"""``graphrec plan``: JSON fields, the emitted launch on real gloo ranks, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from graphrec.cli import main
from graphrec.parallel.cost import Strategy
from graphrec.parallel.engine import run_plan
from graphrec.parallel.planner import make_plan, profile_for_plan


def test_plan_json_has_the_documented_fields(
    tiny_mlp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["plan", str(tiny_mlp), "--devices", "2", "--batch", "8", "--times", "estimated", "--json"]
    )
    assert code == 0
    d = json.loads(capsys.readouterr().out)
    for key in ("strategy", "stages", "micro_batches", "step_time_ms", "memory_per_device_mb"):
        assert key in d
    assert d["time_source"] == "estimated"
    covered = [i for s in d["stages"] for i in range(*s["layers"])]
    assert covered == list(range(d["num_layers"]))
    assert d["step_time_ms"] > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--devices", "0"], "at least 1"),
        (["--devices", "2", "--batch", "6", "--micro-batches", "4"], "not divisible by 4"),
        (["--devices", "2", "--memory-mb", "0.01"], "fits on no device"),
    ],
)
def test_plan_errors(
    tiny_mlp: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["plan", str(tiny_mlp), "--times", "estimated", *args]) == 1
    assert message in capsys.readouterr().err


def test_emitted_plans_train_on_two_gloo_ranks(tiny_mlp: Path, tmp_path: Path) -> None:
    prof = profile_for_plan(tiny_mlp, times="estimated")
    dp = make_plan(
        str(tiny_mlp),
        devices=2,
        batch=8,
        profile=prof,
        strategy=Strategy((0,), 2, 2, "gpipe", (0, 1)),
    )
    pp = make_plan(
        str(tiny_mlp),
        devices=2,
        batch=8,
        profile=prof,
        strategy=Strategy((0, 2), 1, 4, "1f1b", (0, 1)),
    )
    for plan in (dp, pp):
        # 25 steps: the load probe reads /proc/stat's 10 ms ticks, so the timed window
        # must span several of them (2 steps of this tiny model took 6 ms in CI).
        res = run_plan(plan, steps=25, warmup=1, timeout_s=120, pin=True)
        assert res.world == 2 and len(res.steps_ms) == 25 and res.step_ms > 0
        # Pinned ranks report what else used their cores while they timed.
        assert res.foreign is not None and 0.0 <= res.foreign <= 1.0
        assert res.steal is not None and 0.0 <= res.steal <= 1.0
    script = tmp_path / "train.py"
    assert (
        main(
            [
                "plan",
                str(tiny_mlp),
                "--devices",
                "2",
                "--batch",
                "8",
                "--times",
                "estimated",
                "--strategy",
                "pp",
                "--emit",
                str(script),
            ]
        )
        == 0
    )
    text = script.read_text()
    assert "torchrun --nproc-per-node 2" in text and "PipelineStage" not in text[:0]
    assert "Schedule1F1B" in text and "DistributedDataParallel" in text
