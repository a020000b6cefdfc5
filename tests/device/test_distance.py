"""Tests for graphrec.device.distance and the device statement of recommend (table, JSON, object)."""

from __future__ import annotations

import dataclasses
import io
import json
import warnings
from pathlib import Path

import pytest

from graphrec.device import DeviceProfile, GpuInfo
from graphrec.device.distance import (
    FAR_DISTANCE,
    DeviceFit,
    assess_device,
    device_distance,
    widen_choices,
    widen_interval,
)
from graphrec.device.isa_cap import capped_profile

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "examples" / "models" / "tiny_convnet.onnx"
META = ROOT / "graphrec" / "data" / "recommender" / "meta.json"
PHONE = DeviceProfile.load(ROOT / "examples" / "devices" / "android-snapdragon-8-gen-2.json")
HOST = DeviceProfile.detect(probe_gpus=False)
# A GPU server from a spec sheet: 16 cores, AMX, one H100.
GPU_SERVER = DeviceProfile(
    name="GPU server (spec sheet)",
    source="spec-sheet",
    os="Linux",
    arch="x86_64",
    cpu_model="Intel Xeon Platinum 8480+",
    physical_cores=16,
    logical_cores=32,
    threads_available=16,
    freq_max_mhz=3800.0,
    isa_flags=[
        "avx",
        "avx2",
        "fma",
        "avx512f",
        "avx512bw",
        "avx512vl",
        "avx512_vnni",
        "avx512_bf16",
        "avx512_fp16",
        "amx_tile",
        "amx_bf16",
        "amx_int8",
    ],
    l1d_cache_kb=48,
    l2_cache_kb=2048,
    l3_cache_kb=107520,
    memory_total_mb=262144,
    gpus=[
        GpuInfo(
            name="NVIDIA H100 80GB HBM3", vendor="nvidia", memory_mb=81559, compute_capability="9.0"
        )
    ],
)


@pytest.fixture(scope="module")
def info() -> dict:
    return json.loads(META.read_text())["info"]


def test_distance_is_zero_to_itself_and_grows_with_difference() -> None:
    f = HOST.to_features()
    assert device_distance(f, f) == 0.0
    assert device_distance(f, PHONE.to_features()) > 1.5  # another architecture and ISA
    assert device_distance(f, GPU_SERVER.to_features()) > 1.0  # a GPU, 8x the threads
    if "avx512f" in HOST.isa_flags:
        capped = capped_profile(HOST, "avx2").to_features()
        assert FAR_DISTANCE < device_distance(f, capped) < 1.0
    a, b = PHONE.to_features(), GPU_SERVER.to_features()
    assert device_distance(a, b) == pytest.approx(device_distance(b, a))


@pytest.mark.parametrize("profile", [PHONE, GPU_SERVER], ids=["phone", "gpu-server"])
def test_spec_sheet_devices_are_extrapolated(profile: DeviceProfile, info: dict) -> None:
    fit = assess_device(profile, info)
    assert fit.status == "extrapolated" and fit.extrapolated
    assert fit.distance is not None and fit.distance > FAR_DISTANCE
    assert fit.statement and "extrapolated" in fit.statement
    assert "graphrec calibrate" in fit.statement
    assert fit.interval_factor() > 2.0
    calibrated = dataclasses.replace(profile, calibration={"k": 10})
    cal_fit = assess_device(calibrated, info)
    assert cal_fit.status == "calibrated" and cal_fit.statement is None
    assert cal_fit.interval_factor() == 1.0 < fit.interval_factor()


def test_detected_host(info: dict) -> None:
    fit = assess_device(HOST, info)
    if HOST.device_id in info["device_ids"]:
        assert fit.status == "training" and fit.statement is None
        assert fit.interval_factor() == 1.0
    else:  # another machine: near or far, never as confident as a calibrated profile
        assert fit.status in ("near", "extrapolated")
        assert fit.interval_factor() > 1.0 and fit.statement


def test_uncalibrated_is_never_as_confident_as_calibrated() -> None:
    from graphrec.api import Choice

    choices = [
        Choice(1, "a/cpu/fp32", 2.0, 1.0, 4.0, 0.7, 0.1, 1.0, True, 10.0),
        Choice(2, "b/cpu/fp32", 3.0, 2.0, 5.0, 0.3, 0.5, 1.0, True, 10.0),
    ]
    calibrated = widen_choices(choices, DeviceFit("calibrated", 2.0, "x"))
    assert calibrated == choices
    for fit in (DeviceFit("near", 0.05, "x"), DeviceFit("extrapolated", 2.0, "x")):
        wide = widen_choices(choices, fit)
        for c, w in zip(choices, wide, strict=True):
            assert w.latency_ms == c.latency_ms
            assert w.latency_low_ms < c.latency_low_ms and w.latency_high_ms > c.latency_high_ms
            assert w.extrapolated is fit.extrapolated
        assert wide[0].p_fastest < choices[0].p_fastest  # flatter, same order
        assert wide[0].p_fastest > wide[1].p_fastest
        assert sum(w.p_fastest for w in wide) == pytest.approx(1.0)
    assert widen_interval(2.0, 1.0, 4.0, 1.0) == (1.0, 4.0)


def test_recommend_states_extrapolation_in_object_json_and_table() -> None:
    from rich.console import Console

    from graphrec.api import recommend
    from graphrec.recommender._cli import render

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        far = recommend(MODEL, PHONE, top_k=3)
    assert far.extrapolated and far.device_status == "extrapolated"
    assert far.statement and "graphrec calibrate" in far.statement
    assert far.statement in far.warnings
    assert not any(w.startswith("the device differs from every") for w in far.warnings)
    assert all(c.extrapolated for c in far.choices)
    factor = assess_device(PHONE, json.loads(META.read_text())["info"]).interval_factor()
    for c in far.choices:  # intervals at least the widening factor each side
        assert c.latency_high_ms / c.latency_low_ms >= factor**2 * 0.999
    d = json.loads(far.to_json())
    assert d["extrapolated"] is True and d["statement"] == far.statement
    assert d["device_distance"] == pytest.approx(far.device_distance)
    assert all(c["extrapolated"] for c in d["choices"])
    buf = io.StringIO()
    render(far, Console(file=buf, width=200))
    text = buf.getvalue()
    assert "EXTRAPOLATED" in text and "graphrec calibrate" in text
    assert text.count("graphrec calibrate") == 1  # the statement once, not again as a warning


def test_recommend_on_the_host() -> None:
    from graphrec.api import recommend

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rec = recommend(MODEL, HOST, top_k=2)
    info = json.loads(META.read_text())["info"]
    if HOST.device_id in info["device_ids"]:
        assert rec.device_status == "training" and not rec.extrapolated
        assert rec.statement is None and not any(c.extrapolated for c in rec.choices)
    else:
        assert rec.device_status in ("near", "extrapolated") and rec.statement
