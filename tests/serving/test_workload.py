"""Workload files: the shipped examples load; bad ones fail naming the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from graphrec.errors import GraphRecError
from graphrec.serving.latency import latency_table
from graphrec.serving.workload import WorkloadError, load_workload, parse_workload

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "workloads"


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_workload_loads_and_is_measured(path: Path) -> None:
    wl = load_workload(path)
    table = latency_table(wl)
    assert table.hosted.any()
    assert wl.accuracy_source  # every example says where its accuracy figures come from


def _spec() -> dict:
    return {
        "apps": {
            "vision": {
                "deadline_ms": [5, 50],
                "variants": [
                    {"name": "small", "model": "resnet-s6", "accuracy": 0.8},
                    {"name": "large", "model": "resnet-s7", "accuracy": 0.9},
                ],
            }
        },
        "servers": [{"name": "a", "candidate": "onnxruntime/cpu/fp32/opt=all/threads=1"}],
    }


def test_missing_field_names_the_file_and_the_field(tmp_path: Path) -> None:
    spec = _spec()
    del spec["apps"]["vision"]["variants"][1]["accuracy"]
    path = tmp_path / "w.json"
    import json

    path.write_text(json.dumps(spec))
    with pytest.raises(WorkloadError) as exc:
        load_workload(path)
    assert str(path) in str(exc.value)
    assert "apps.vision.variants[1]" in str(exc.value) and "accuracy" in str(exc.value)
    assert isinstance(exc.value, GraphRecError)


def test_impossible_deadlines_are_refused_with_the_figures() -> None:
    spec = _spec()
    spec["apps"]["vision"]["deadline_ms"] = [0.1, 0.2]  # resnet-s6 takes ~0.8 ms here
    wl = parse_workload(spec, "w.yaml")
    with pytest.raises(WorkloadError, match=r"impossible deadlines.*0\.2 ms.*fastest variant"):
        latency_table(wl)


def test_a_pair_never_measured_is_an_error_not_a_guess() -> None:
    spec = _spec()
    spec["apps"]["vision"]["variants"][0]["model"] = "no-such-model"
    with pytest.raises(WorkloadError, match="'no-such-model' has no successful measurement"):
        latency_table(parse_workload(spec, "w.yaml"))
    spec = _spec()
    spec["servers"][0]["candidate"] = "onnxruntime/cpu/fp64"
    with pytest.raises(WorkloadError, match="never measured"):
        latency_table(parse_workload(spec, "w.yaml"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s["servers"][0].update(hosts=["vision/huge"]), "unknown variant 'vision/huge'"),
        (lambda s: s.update(arrivals={"process": "weekly"}), "is not one of"),
        (lambda s: s.update(arrivals={"lod": 1.0}), "unknown fields \\['lod'\\]"),
        (lambda s: s.update(events=[{"at_ms": 5, "server": "zz", "kind": "fail"}]), "'zz'"),
        (lambda s: s["apps"]["vision"].update(default_variant="mid"), "default_variant 'mid'"),
        (lambda s: s["apps"]["vision"].update(deadline_ms=[50, 5]), "low <= high"),
    ],
)
def test_invalid_fields_are_named(change, message: str) -> None:  # type: ignore[no-untyped-def]
    spec = _spec()
    change(spec)
    with pytest.raises(WorkloadError, match=message):
        parse_workload(spec, "w.yaml")


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(WorkloadError, match="cannot read"):
        load_workload(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("apps: [unclosed")
    with pytest.raises(WorkloadError, match="not valid yaml"):
        load_workload(bad)
