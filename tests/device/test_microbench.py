"""Tests for graphrec.device.microbench: real GEMM / copy / runtime-call timings on tiny sizes."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from graphrec.device import DeviceProfile
from graphrec.device._cli import register
from graphrec.device.features import (
    extended_feature_names,
    extended_profile_features,
    feature_names,
)
from graphrec.device.microbench import (
    microbench_feature_names,
    microbench_features,
    run_microbench,
)
from graphrec.errors import DeviceProfileError, GraphRecError


@pytest.fixture(scope="module")
def record(tmp_path_factory: pytest.TempPathFactory) -> dict:
    host = DeviceProfile.detect(probe_gpus=False)
    return run_microbench(
        host,
        threads=[1],
        gemm_size=64,
        bandwidth_mib=4,
        runtimes=["onnxruntime"],
        min_s=0.02,
        cache_dir=tmp_path_factory.mktemp("mb"),
    )


def test_record_has_measured_figures(record: dict) -> None:
    assert record["threads"] == [1]
    fp32 = record["gemm"]["fp32"]["1"]
    assert fp32["gflops"] > 0 and fp32["size"] == 64
    assert fp32["spread"] >= 1.0
    assert record["bandwidth"]["1"]["gbps"] > 0
    ort = record["dispatch"]["onnxruntime"]
    assert ort["candidate"].startswith("onnxruntime/cpu/fp32/")
    assert ort["us_per_call"] > 0 and ort["calls"] >= 3
    assert set(record["dispatch"]) == {"onnxruntime"}
    # every precision is either measured or says why not
    for prec in ("bf16", "int8"):
        assert (prec in record["gemm"]) != (prec in record["gemm_skipped"])
    json.dumps(record)  # JSON-able, as it goes into the profile


def test_bf16_is_skipped_without_a_bf16_instruction(tmp_path: Path) -> None:
    plain = DeviceProfile(name="plain", arch="x86_64", isa_flags=["avx2", "fma"])
    rec = run_microbench(plain, threads=[1], gemm_size=32, bandwidth_mib=1, runtimes=[], min_s=0.01)
    assert "bf16" not in rec["gemm"]
    assert "bf16" in rec["gemm_skipped"]
    assert rec["dispatch"] == {}


def test_bad_arguments_are_named() -> None:
    with pytest.raises(GraphRecError, match="thread counts"):
        run_microbench(DeviceProfile(name="x"), threads=[0], runtimes=[])
    with pytest.raises(GraphRecError, match="gemm_size=8"):
        run_microbench(DeviceProfile(name="x"), gemm_size=8, runtimes=[])


def test_features_from_the_record(record: dict) -> None:
    feats = microbench_features(record)
    assert list(feats) == list(microbench_feature_names())
    assert feats["mb_measured"] == 1.0
    assert feats["mb_gemm_fp32_gflops_t1"] == pytest.approx(record["gemm"]["fp32"]["1"]["gflops"])
    assert feats["mb_dispatch_log10_us_onnxruntime"] != 0.0
    assert feats["mb_dispatch_log10_us_openvino"] == 0.0  # not measured here
    empty = microbench_features(None)
    assert set(empty.values()) == {0.0}


def test_profile_stores_the_record_and_keeps_its_id(record: dict, tmp_path: Path) -> None:
    host = DeviceProfile.detect(probe_gpus=False)
    import dataclasses

    measured = dataclasses.replace(host, microbench=record)
    assert measured.device_id == host.device_id
    back = DeviceProfile.load(measured.save(tmp_path / "p.json"))
    assert back.microbench == json.loads(json.dumps(record))
    ext = extended_profile_features(back)
    assert list(ext) == list(extended_feature_names())
    assert list(ext)[: len(feature_names())] == list(feature_names())
    assert ext["mb_measured"] == 1.0
    assert list(back.to_features()) == list(feature_names())  # the shipped vector is unchanged


def test_bad_microbench_field(tmp_path: Path) -> None:
    p = tmp_path / "bad.json"
    p.write_text(json.dumps({"name": "x", "microbench": [1, 2]}))
    with pytest.raises(DeviceProfileError, match="microbench"):
        DeviceProfile.load(p)


def test_cli_refuses_microbench_of_a_spec_sheet(capsys: pytest.CaptureFixture[str]) -> None:
    examples = Path(__file__).resolve().parents[2] / "examples" / "devices"
    parser = argparse.ArgumentParser(prog="graphrec")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["device", "--profile", str(examples / "raspberry-pi-5-8gb.json"), "--microbench"]
    )
    with pytest.raises(DeviceProfileError, match="spec-sheet"):
        args.func(args)
