"""The Ray prototype: real onnxruntime sessions in Ray actors, driven by the policies.

One Ray start for the module (2 CPUs, no dashboard); tiny workloads of one small zoo model.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray")

import graphrec.cli  # noqa: E402
from graphrec.serving.arrivals import draw_instance  # noqa: E402
from graphrec.serving.latency import latency_table  # noqa: E402
from graphrec.serving.prototype import serve_instance  # noqa: E402
from graphrec.serving.state import STATUSES  # noqa: E402
from graphrec.serving.workload import parse_workload  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def ray_cluster() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx")


def _spec(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": "ray-test",
        "apps": {
            "vision": {
                "deadline_ms": [40, 300],
                "variants": [{"name": "small", "model": "resnet-s6", "accuracy": 0.8076}],
            }
        },
        "servers": [
            {"name": "a", "candidate": "onnxruntime/cpu/fp32/opt=all/threads=1"},
            {"name": "b", "candidate": "onnxruntime/cpu/fp32/opt=all/threads=1", "slowdown": 1.5},
        ],
        "arrivals": {"process": "poisson", "load": 0.25, "tasks": 80},
        "events": events,
    }


@pytest.mark.parametrize("policy", ["round_robin", "two_step"])
def test_killing_an_actor_mid_run_loses_no_task(policy: str, cache: Path) -> None:
    wl = parse_workload(_spec([{"at_ms": 40, "server": "a", "kind": "fail"}]), "ray-test")
    inst = draw_instance(wl, latency_table(wl), 0)
    assert inst.arrival_ms[0] < 40 < inst.arrival_ms[-1]  # the kill falls inside the run
    out, planned = serve_instance(inst, policy, cache)
    assert planned is inst  # no re-measuring asked
    assert len(out) == inst.n_tasks
    assert all(o.status in STATUSES for o in out)
    for o in out:
        if o.status in ("rejected", "failed"):
            assert o.reason  # never lost silently
        if o.status == "failed":
            assert "'a' (Ray actor) was killed while running it" in o.reason
    # nothing ran on the killed server after the kill; the other one kept serving
    assert all(o.start_ms < 40 + 5 for o in out if o.server == 0 and o.status in ("met", "late"))
    after = [
        o for t, o in enumerate(out) if inst.arrival_ms[t] > 40 and o.status in ("met", "late")
    ]
    assert after and all(o.server == 1 for o in after)


def test_serve_command_reports_real_and_simulated(
    tmp_path: Path, cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _spec([])
    spec["arrivals"]["tasks"] = 30
    path = tmp_path / "w.json"
    path.write_text(json.dumps(spec))
    argv = ["schedule", "serve", "--workload", str(path), "--policy", "edf", "--calibrate", "3"]
    assert graphrec.cli.main([*argv, "--cache", str(cache), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    edf = out["policies"]["edf"]
    assert sum(edf["real"]["counts"].values()) == sum(edf["simulated"]["counts"].values()) == 30
    assert "re-measured on the Ray actors" in out["latency_source"]
    assert set(out["latency_p50_ms"]) == {"vision/small@a", "vision/small@b"}


def test_observed_table_takes_the_round_trips_a_run_saw() -> None:
    import numpy as np
    from serving_helpers import tiny_instance, tiny_workload

    from graphrec.serving.prototype import observed_table, with_table

    inst = tiny_instance(tiny_workload(n_servers=1), np.array([[2.0], [10.0]]), [0, 1], [50, 50])
    log = [(0, 0, 0, 1.0, float(ms)) for ms in (10, 11, 12, 13, 14, 15)]
    log += [(0, 0, 1, 1.0, 99.0), (0, 0, 1, 1.0, 99.0)]  # too few runs: kept as before
    table = observed_table(inst.table, log)
    assert table.p50_ms[0, 0, 0] == pytest.approx(12.5)
    assert table.p10_ms[0, 0, 0] == pytest.approx(np.percentile([10, 11, 12, 13, 14, 15], 10))
    assert table.p50_ms[0, 1, 0] == 10.0
    seen = with_table(inst, table)
    assert seen.table is table and seen.latency_ms.shape == inst.latency_ms.shape
    assert seen.latency_ms[:, 1, 0] == pytest.approx([10.0, 10.0])
