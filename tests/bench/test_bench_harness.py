"""Tests for graphrec.bench.harness with real runtimes in real worker processes:
isolation (SIGSEGV, hang, memory cap), wrong-output detection, unsupported models,
resume after the harness process is killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from graphrec.bench.harness import discover_models, interleave, plan_candidates, run_campaign
from graphrec.bench.protocol import MeasureConfig, Status, tolerance_for
from graphrec.bench.store import ResultStore
from graphrec.bench.worker import FAULT_ENV
from graphrec.device import DeviceProfile
from graphrec.errors import CandidateSpecError, GraphRecError
from graphrec.runtimes.base import Candidate

ORT = "onnxruntime/cpu/fp32/opt=all/threads=1"
ORT_BASIC = "onnxruntime/cpu/fp32/opt=basic/threads=1"
ORT_INT8 = "onnxruntime/cpu/int8/opt=all/threads=1"


@pytest.fixture(scope="module")
def device() -> DeviceProfile:
    return DeviceProfile.detect(probe_gpus=False)


def _measure_one(
    model: Path,
    tmp_path: Path,
    device: DeviceProfile,
    config: MeasureConfig,
    patterns: list[str],
    **kwargs: Any,
) -> list[dict[str, Any]]:
    """Rows of one model measured at threads=1 into a fresh store (cache under tmp_path)."""
    with ResultStore(tmp_path / "r.sqlite") as store:
        run_campaign(
            [model],
            store=store,
            device=device,
            patterns=patterns,
            threads=(1,),
            config=config,
            cache_dir=tmp_path / "cache",
            **kwargs,
        )
        return store.rows()


def _by_candidate(rows: list[dict[str, object]]) -> dict[object, dict[str, object]]:
    return {r["candidate_id"]: r for r in rows}


def test_campaign_measures_and_stores(
    models_dir: Path, tmp_path: Path, device: DeviceProfile, fast_config: MeasureConfig
) -> None:
    seen: list[str] = []
    with ResultStore(tmp_path / "r.sqlite") as store:
        rows = run_campaign(
            [models_dir],
            store=store,
            device=device,
            runtimes=["onnxruntime", "openvino", "torch"],
            patterns=["*/threads=1"],
            threads=(1,),
            config=fast_config,
            cache_dir=tmp_path / "cache",
            on_result=lambda r: seen.append(str(r["status"])),
        )
        stored = store.rows()
    assert len(rows) == len(stored) == len(seen)
    assert {r["model_name"] for r in stored} == {"mlp_a", "mlp_b"}
    for r in stored:
        # torch runs the bare files too: a module converted from the ONNX graph (issue 22)
        assert r["status"] == Status.OK, r
        assert r["p10_ms"] <= r["p50_ms"] <= r["p90_ms"]
        assert r["cold_start_ms"] == pytest.approx(r["load_ms"] + r["first_run_ms"])
        assert r["n_runs"] >= 3 and r["runtime_version"]
        assert (
            r["peak_rss_mb"] > 0
            and r["max_rel_err"] is not None
            and r["max_rel_err"] <= tolerance_for(str(r["precision"]))[0]
        )
        assert r["device_id"] == device.device_id and r["harness_version"]


def test_segfault_is_recorded_and_campaign_continues(
    models_dir: Path, tmp_path: Path, device: DeviceProfile, fast_config: MeasureConfig
) -> None:
    with ResultStore(tmp_path / "r.sqlite") as store:
        run_campaign(
            [models_dir / "mlp_a.onnx", models_dir / "mlp_b.onnx"],
            store=store,
            device=device,
            patterns=[ORT, ORT_BASIC],
            threads=(1,),
            config=fast_config,
            cache_dir=tmp_path / "cache",
            worker_env={FAULT_ENV: f"segv:{ORT_BASIC}"},
        )
        rows = store.rows()
    assert len(rows) == 4
    for r in rows:
        if r["candidate_id"] == ORT_BASIC:
            assert r["status"] == Status.CRASHED and "SIGSEGV" in str(r["error"])
        else:  # measured by a restarted worker after each crash
            assert r["status"] == Status.OK


def test_hang_times_out(
    models_dir: Path, tmp_path: Path, device: DeviceProfile, fast_config: MeasureConfig
) -> None:
    fast_config.timeout_s = 3.0
    t0 = time.monotonic()
    with ResultStore(tmp_path / "r.sqlite") as store:
        run_campaign(
            [models_dir / "mlp_a.onnx"],
            store=store,
            device=device,
            patterns=[ORT_BASIC, ORT],
            threads=(1,),
            config=fast_config,
            cache_dir=tmp_path / "cache",
            worker_env={FAULT_ENV: f"hang:{ORT_BASIC}"},
        )
        rows = _by_candidate(store.rows())
    assert rows[ORT_BASIC]["status"] == Status.TIMEOUT
    assert rows[ORT]["status"] == Status.OK
    assert time.monotonic() - t0 < 60


def test_memory_cap(
    models_dir: Path, tmp_path: Path, device: DeviceProfile, fast_config: MeasureConfig
) -> None:
    fast_config.memory_limit_mb = 1200
    with ResultStore(tmp_path / "r.sqlite") as store:
        run_campaign(
            [models_dir / "mlp_a.onnx"],
            store=store,
            device=device,
            patterns=[ORT_BASIC, ORT],
            threads=(1,),
            config=fast_config,
            cache_dir=tmp_path / "cache",
            worker_env={FAULT_ENV: f"oom:{ORT_BASIC}"},
        )
        rows = _by_candidate(store.rows())
    assert rows[ORT_BASIC]["status"] in (Status.OUT_OF_MEMORY, Status.CRASHED)
    assert (
        rows[ORT_BASIC]["status"] == Status.OUT_OF_MEMORY
        or "memory" in str(rows[ORT_BASIC]["error"]).lower()
    )
    assert rows[ORT]["status"] == Status.OK


def test_wrong_output_is_detected(
    outlier_path: Path, tmp_path: Path, device: DeviceProfile, fast_config: MeasureConfig
) -> None:
    with ResultStore(tmp_path / "r.sqlite") as store:
        run_campaign(
            [outlier_path],
            store=store,
            device=device,
            patterns=[ORT, ORT_INT8, "openvino/cpu/fp32/*/threads=1"],
            threads=(1,),
            config=fast_config,
            cache_dir=tmp_path / "cache",
        )
        rows = _by_candidate(store.rows())
    assert rows[ORT_INT8]["status"] == Status.WRONG_OUTPUT
    assert float(rows[ORT_INT8]["max_rel_err"]) > 0.25  # type: ignore[arg-type]
    assert rows[ORT_INT8]["p50_ms"] is not None  # still timed
    assert rows[ORT]["status"] == Status.OK
    assert rows["openvino/cpu/fp32/hint=latency/threads=1"]["status"] == Status.OK


def test_unchecked_outputs_are_not_a_success(
    models_dir: Path, tmp_path: Path, device: DeviceProfile, fast_config: MeasureConfig
) -> None:
    # The onnxruntime reference fails (as for a model whose resolved input shapes it
    # rejects): a candidate that still runs is timed but stored as "unverified".
    rows = _measure_one(
        models_dir / "mlp_a.onnx",
        tmp_path,
        device,
        fast_config,
        [ORT, "openvino/cpu/fp32/*/threads=1"],
        worker_env={FAULT_ENV: "fail:reference"},
    )
    assert len(rows) == 2
    for r in rows:
        assert r["status"] == Status.UNVERIFIED, r
        assert r["p50_ms"] is not None and r["max_rel_err"] is None
        assert "onnxruntime reference failed" in str(r["error"])
        assert "injected failure" in str(r["error"])


def test_corrupt_model_is_a_clean_error(tmp_path: Path, device: DeviceProfile) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00\x01garbage")
    with ResultStore(tmp_path / "r.sqlite") as store, pytest.raises(GraphRecError) as info:
        run_campaign([bad], store=store, device=device, runtimes=["onnxruntime"])
    assert "bad.onnx" in str(info.value)


def test_planning(device: DeviceProfile, tmp_path: Path) -> None:
    _, cands, _ = plan_candidates(device, runtimes=["onnxruntime"], threads=(1, 2))
    assert {c.threads for c in cands} == {1, 2}
    _, only, _ = plan_candidates(
        device, patterns=["onnxruntime/*/opt=basic/threads=2"], threads=(1, 2)
    )
    assert [c.candidate_id for c in only] == ["onnxruntime/cpu/fp32/opt=basic/threads=2"]
    _, explicit, _ = plan_candidates(
        device, patterns=["onnxruntime/cpu/fp32/opt=extended/threads=1"]
    )
    assert [c.candidate_id for c in explicit] == ["onnxruntime/cpu/fp32/opt=extended/threads=1"]
    with pytest.raises(CandidateSpecError, match="unknown runtime"):
        plan_candidates(device, runtimes=["nope"])
    with pytest.raises(GraphRecError, match="no such file"):
        discover_models([tmp_path / "absent"])
    with pytest.raises(GraphRecError, match=r"no \.onnx"):
        discover_models([tmp_path])


def test_interleave_alternates_runtimes() -> None:
    cands = [
        Candidate.parse(c)
        for c in (ORT, ORT_BASIC, "openvino/cpu/fp32/threads=1", "mnn/cpu/fp32/threads=1")
    ]
    order = [c.runtime for c in interleave(cands, 0)]
    assert order[:3] == ["onnxruntime", "openvino", "mnn"]
    assert sorted(c.candidate_id for c in interleave(cands, 3)) == sorted(
        c.candidate_id for c in cands
    )


def test_resume_after_harness_is_killed(models_dir: Path, tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite"
    cmd = [
        sys.executable,
        "-c",
        "import sys; from graphrec.cli import main; sys.exit(main(sys.argv[1:]))",
        "bench",
        str(models_dir),
        "--runtimes",
        "onnxruntime",
        "--threads",
        "1,2",
        "--max-time",
        "0.3",
        "--db",
        str(db),
        "--cache-dir",
        str(tmp_path / "cache"),
        "--json",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    done_before = 0
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
        if db.exists():
            try:
                done_before = (
                    sqlite3.connect(db).execute("SELECT COUNT(*) FROM results").fetchone()[0]
                )
            except sqlite3.OperationalError:
                continue
            if done_before >= 2:
                break
    assert proc.poll() is None, "campaign finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with ResultStore(db) as store:
        first = {r["id"]: r for r in store.rows()}
    assert 2 <= len(first) < 12
    again = subprocess.run(cmd, capture_output=True, timeout=300, check=False)
    assert again.returncode == 0, again.stderr.decode()[-2000:]
    with ResultStore(db) as store:
        rows = store.rows()
    keys = [(r["model_sha256"], r["candidate_id"], r["device_id"], r["round"]) for r in rows]
    assert len(keys) == len(set(keys)) == 12  # 2 models x 6 candidates, no duplicate
    after = {r["id"]: r for r in rows}
    for rid, r in first.items():  # nothing finished before the kill was lost or redone
        assert after[rid]["created_at"] == r["created_at"] and after[rid]["p50_ms"] == r["p50_ms"]
    assert all(r["status"] == Status.OK for r in rows)


def test_input_values_reach_the_measured_inputs(
    models_dir: Path, tmp_path: Path, device: DeviceProfile, fast_config: MeasureConfig
) -> None:
    import numpy as np

    from graphrec.bench._cli import _values

    (row,) = _measure_one(
        models_dir / "mlp_a.onnx",
        tmp_path,
        device,
        fast_config,
        [ORT],
        input_values=_values(["x=0.5"]),
    )
    assert row["status"] == Status.OK
    files = [p for p in (tmp_path / "cache" / "inputs").glob("*.npz") if "-ref" not in p.name]
    (inputs,) = files
    with np.load(inputs) as data:
        assert (data["arr_0"] == 0.5).all()
    with pytest.raises(GraphRecError, match="NAME=NUMBER"):
        _values(["sr"])


def test_protocol_2_pins_workers_and_records_dispersion(
    models_dir: Path, tmp_path: Path, device: DeviceProfile, fast_config: MeasureConfig
) -> None:
    from graphrec.bench.harness import worker_cores

    allowed = sorted(os.sched_getaffinity(0))
    rows = _measure_one(models_dir / "mlp_a.onnx", tmp_path, device, fast_config, [ORT])
    assert os.sched_getaffinity(0) == set(allowed)  # the parent's cores are given back
    (r,) = rows
    assert r["status"] == Status.OK and r["harness_version"] == "2.0"
    assert r["cores"] == ",".join(str(c) for c in worker_cores(1, allowed))
    if len(allowed) > 1:
        assert r["cores"] != "0"  # the first core is the parent's
    assert r["ci_rel"] is not None and r["ci_rel"] >= 0
    assert r["busy"] in (0, 1) and r["load_avg"] is not None
    assert r["foreign_cpu"] is None or 0.0 <= r["foreign_cpu"] <= 1.0
    assert r["peak_rss_mb"] > 10  # the worker's own high-water mark: runtime + model
    legacy = _measure_one(
        models_dir / "mlp_a.onnx", tmp_path / "old", device, MeasureConfig.legacy(), [ORT]
    )
    assert legacy[0]["harness_version"] == "1.0"
    assert legacy[0]["cores"] == ",".join(str(c) for c in allowed)  # unpinned


def test_worker_cores() -> None:
    from graphrec.bench.harness import worker_cores

    assert worker_cores(1, [0, 1]) == (1,)
    assert worker_cores(2, [0, 1]) == (0, 1)
    assert worker_cores(4, [3, 1]) == (1, 3)
    assert worker_cores(2, [0, 1, 2, 3]) == (2, 3)


def test_adaptive_rounds_until_rounds_agree(
    models_dir: Path, tmp_path: Path, device: DeviceProfile, fast_config: MeasureConfig
) -> None:
    def rounds_per_pair(store: ResultStore) -> dict[tuple[str, str], int]:
        out: dict[tuple[str, str], int] = {}
        for r in store.rows():
            k = (str(r["model_name"]), str(r["candidate_id"]))
            out[k] = out.get(k, 0) + 1
        return out

    model = models_dir / "mlp_b.onnx"
    # no spread is ever tight enough: every pair gets all its rounds
    strict = MeasureConfig(**{**fast_config.to_dict(), "round_spread": 0.0})
    with ResultStore(tmp_path / "strict.sqlite") as store:
        kw: dict[str, Any] = dict(
            store=store, device=device, patterns=[ORT, ORT_BASIC], threads=(1,), repeat=2
        )
        run_campaign([model], max_rounds=4, config=strict, cache_dir=tmp_path / "c", **kw)
        assert set(rounds_per_pair(store).values()) == {4}
        assert {int(r["round"]) for r in store.rows()} == {0, 1, 2, 3}
        # resumed: nothing left to add
        assert (
            run_campaign([model], max_rounds=4, config=strict, cache_dir=tmp_path / "c", **kw) == []
        )
    # any spread is fine: only busy rows (timed while the machine was busy) get more rounds
    lax = MeasureConfig(**{**fast_config.to_dict(), "round_spread": 100.0})
    with ResultStore(tmp_path / "lax.sqlite") as store:
        kw["store"] = store
        run_campaign([model], max_rounds=4, config=lax, cache_dir=tmp_path / "c", **kw)
        rows = store.rows()
        per_pair = rounds_per_pair(store)
        for (_, cand), n in per_pair.items():
            busy = sum(1 for r in rows if r["candidate_id"] == cand and r["busy"])
            assert 2 <= n <= 4 and (n == 2 or busy > 0)
    with pytest.raises(GraphRecError, match="max_rounds"):
        run_campaign([model], max_rounds=1, config=lax, **kw)
