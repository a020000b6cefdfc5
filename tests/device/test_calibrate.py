"""graphrec calibrate end to end: real runtimes on tiny probes, then a changed ranking.

The reference matrix is a small dataset folder written by the test: two tiny zoo models
on two onnxruntime candidates, "measured" on a reference device where one candidate
(the one the uncalibrated recommender ranks first for the target model) ran 1e4 times
faster than the other. The probes are then measured for real on this machine and
compared with those reference measurements (``reference="measured"``), so calibration
learns that this candidate is far slower here than on the reference device and must
move it down the ranking. A calibration that is not applied, has the wrong sign, or
fits nothing fails the test."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import graphrec
from graphrec.api import load_artefact
from graphrec.bench.protocol import MeasureConfig
from graphrec.device import DeviceProfile
from graphrec.device.calibrate import (
    CalibrationError,
    CorrectionModel,
    apply_calibration,
    calibrate,
    probe_pool,
    select_probes,
)
from graphrec.errors import OutOfDistributionWarning
from graphrec.zoo.entry import ZooEntry

CANDS = ["onnxruntime/cpu/fp32/opt=all/threads=1", "onnxruntime/cpu/fp32/opt=basic/threads=1"]
#: For the correction model alone (no measurement).
CANDS3 = [*CANDS, "openvino/cpu/fp32/hint=latency/threads=1"]
PROBES = ["vgg-s0-tiny", "resnet-s0-tiny"]
FAST = MeasureConfig(warmup_runs=1, min_runs=3, max_runs=50, min_time_s=0.02, max_time_s=0.1)


def _dataset(folder: Path, fast_ref: str, dev: DeviceProfile) -> Path:
    rows = []
    for mid in PROBES:
        fam = mid.split("-")[0]
        # reference latencies scale with the probe's FLOPs (1 ms per 100 MFLOPs), as real
        # ones roughly do; the candidate the uncalibrated ranking puts first is 1e4x faster
        base_ms = ZooEntry.from_model_id(mid).cost()[0] / 1e8
        for cid in CANDS:
            rows.append(
                {
                    "model_id": mid,
                    "family": fam,
                    "variant": "fp32",
                    "candidate_id": cid,
                    "device_id": "ref-device",
                    "round": 0,
                    "status": "ok",
                    "p50_ms": base_ms * (1e-4 if cid == fast_ref else 1.0),
                    "wall_s": 1.0,
                }
            )
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_parquet(folder / "measurements.parquet")
    (folder / "meta.json").write_text(json.dumps({"devices": {"ref-device": dev.to_dict()}}))
    return folder


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("target") / "mnv2.onnx"
    ZooEntry.sample("mobilenet_v2", 0, tiny=True).export(path)
    return path


def test_calibrate_changes_the_ranking(tmp_path: Path, target: Path) -> None:
    dev = DeviceProfile.detect(probe_gpus=False)
    before = graphrec.recommend(target, dev, candidates=CANDS, check_support=False)
    first = before.best.candidate_id
    data = _dataset(tmp_path / "data", first, dev)
    lines: list[str] = []
    out = tmp_path / "here.json"
    prof = calibrate(
        probe_models=PROBES,
        out=out,
        device=dev,
        candidates=CANDS,
        dataset=data,
        method="offset",
        reference="measured",
        config=FAST,
        progress=lines.append,
    )
    cal = prof.calibration
    assert cal is not None and cal["k"] == 2
    # every probe on every candidate measured with the real runtimes
    assert cal["n_rows"] == 4, lines
    assert sum(1 for ln in lines if ln.startswith("[")) == 4
    measured = cal["probe_latency_ms"]
    assert all(0 < measured[m][c] < 1e4 for m in PROBES for c in CANDS)
    # the saved profile loads and carries the record; device id unchanged
    loaded = DeviceProfile.load(out)
    assert loaded.calibration == json.loads(out.read_text())["calibration"]
    assert loaded.device_id == dev.device_id
    after = graphrec.recommend(target, out, candidates=CANDS, check_support=False)
    lat0 = {c.candidate_id: c.latency_ms for c in before.choices}
    lat1 = {c.candidate_id: c.latency_ms for c in after.choices}
    # the candidate that was 1e-4 ms on the reference is predicted far slower here
    ratio_first = lat1[first] / lat0[first]
    others = [lat1[c] / lat0[c] for c in CANDS if c != first]
    assert ratio_first > 50 * max(others)
    assert after.best.candidate_id != first
    assert [c.candidate_id for c in after.choices] != [c.candidate_id for c in before.choices]

    # resume: the same store holds every probe, so nothing is measured again
    again: list[str] = []
    calibrate(
        probe_models=PROBES,
        out=tmp_path / "again.json",
        store=Path(str(out) + ".probes.sqlite"),
        device=dev,
        candidates=CANDS,
        dataset=data,
        method="offset",
        reference="measured",
        config=FAST,
        progress=again.append,
    )
    assert not any(ln.startswith("[") for ln in again)


def test_correction_model_shrinks_and_round_trips() -> None:
    cm = CorrectionModel(CANDS3, method="slope", size_mean=0.0, size_std=1.0)
    # candidate 0 is 2x slower (log 0.69) on every model; the others unchanged
    rows = [(j, s, (math.log(2.0) if j == 0 else 0.0)) for s in (-1.0, 0.0, 1.0) for j in range(3)]
    cm.fit(rows)
    delta, sd = cm.predict(0.0)
    assert delta[0] > 0.5 and abs(delta[1]) < 0.2 and abs(delta[2]) < 0.2
    assert (sd > 0).all()
    # one measurement moves a candidate less than many do (shrinkage)
    few = CorrectionModel(CANDS3).fit([(0, 0.0, 1.0)])
    many = CorrectionModel(CANDS3).fit([(0, 0.0, 1.0)] * 20 + [(1, 0.0, 0.0)] * 20)
    assert few.predict(0.0)[0][0] - few.predict(0.0)[0][1] < (
        many.predict(0.0)[0][0] - many.predict(0.0)[0][1]
    )
    back = CorrectionModel.from_dict(CANDS3, cm.to_dict())
    assert np.allclose(back.predict(0.5)[0], cm.predict(0.5)[0], atol=1e-5)
    with pytest.raises(CalibrationError, match="expected"):
        CorrectionModel.from_dict(CANDS, cm.to_dict())
    with pytest.raises(CalibrationError, match="valid: offset, slope"):
        CorrectionModel(CANDS3, method="nope")


def test_probe_choice_on_the_shipped_matrix() -> None:
    rec_cands = load_artefact()[0].candidates
    pool = probe_pool(rec_cands)
    inf = select_probes(pool, 10, budget_s=600)
    rnd = select_probes(pool, 10, how="random", budget_s=600, seed=1)
    assert len(set(inf)) == 10 and len(set(rnd)) == 10
    # informative probes come from ten different families and fit the budget share
    fams = [pool.families[pool.model_ids.index(m)] for m in inf]
    assert len(set(fams)) == 10
    cost = {m: pool.cost_s[pool.model_ids.index(m)] for m in inf}
    assert all(v <= 60.0 for v in cost.values())
    with pytest.raises(CalibrationError, match="valid: informative, random"):
        select_probes(pool, 3, how="best")


def test_calibration_for_another_artefact_is_not_used(tmp_path: Path, target: Path) -> None:
    dev = DeviceProfile.detect(probe_gpus=False)
    dev.calibration = {"version": 1, "candidates_digest": "0" * 16, "correction": {}}
    with pytest.warns(OutOfDistributionWarning, match="another artefact"):
        rec = graphrec.recommend(target, dev, candidates=CANDS, check_support=False)
    assert any("another artefact" in w for w in rec.warnings)
    with pytest.raises(CalibrationError, match="another artefact"):
        apply_calibration(dev.calibration, CANDS, None)  # type: ignore[arg-type]
