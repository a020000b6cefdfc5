"""Tests for graphrec.device.isa_cap: capped profiles, and that the real runtimes honour the cap."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from graphrec.bench.harness import plan_candidates
from graphrec.device import DeviceProfile
from graphrec.device.isa_cap import CAPPED_RUNTIMES, cap_env, capped_profile
from graphrec.errors import DeviceProfileError

HOST = DeviceProfile.detect(probe_gpus=False)
HAS_AVX512 = "avx512f" in HOST.isa_flags
needs_avx512 = pytest.mark.skipif(not HAS_AVX512, reason="the host has no AVX-512 to cap")

ZEN4 = DeviceProfile(
    name="AMD EPYC",
    arch="x86_64",
    cpu_model="AMD EPYC 9R14",
    threads_available=2,
    isa_flags=["avx", "avx2", "avx512_bf16", "avx512_vnni", "avx512bw", "avx512f", "fma"],
)


def test_capped_profile_is_the_same_host_with_fewer_flags(tmp_path: Path) -> None:
    capped = capped_profile(ZEN4, "avx2")
    assert capped.isa_flags == ["avx", "avx2", "fma"]
    assert capped.isa_cap == "avx2"
    assert capped.threads_available == ZEN4.threads_available
    assert capped.device_id != ZEN4.device_id
    assert "same host" in capped.notes and ZEN4.device_id in capped.notes
    back = DeviceProfile.load(capped.save(tmp_path / "capped.json"))
    assert back.device_id == capped.device_id and back.isa_cap == "avx2"
    core = capped_profile(ZEN4, "avx512_core")
    assert "avx512f" in core.isa_flags and "avx512_bf16" not in core.isa_flags
    assert core.device_id not in (capped.device_id, ZEN4.device_id)


def test_uncapped_id_does_not_change_with_the_new_fields() -> None:
    import dataclasses

    with_mb = dataclasses.replace(ZEN4, microbench={"version": 1})
    assert with_mb.device_id == ZEN4.device_id
    assert dataclasses.replace(ZEN4, isa_cap=None).device_id == ZEN4.device_id


def test_bad_caps_are_named() -> None:
    with pytest.raises(DeviceProfileError, match="unknown ISA cap 'sse9'"):
        capped_profile(ZEN4, "sse9")
    with pytest.raises(DeviceProfileError, match="already capped"):
        capped_profile(capped_profile(ZEN4, "avx2"), "avx2")
    phone = DeviceProfile(name="phone", arch="aarch64", isa_flags=["neon"])
    with pytest.raises(DeviceProfileError, match="x86_64"):
        capped_profile(phone, "avx2")
    old = DeviceProfile(name="old", arch="x86_64", isa_flags=["avx", "avx2", "fma"])
    with pytest.raises(DeviceProfileError, match="changes nothing"):
        capped_profile(old, "avx2")
    with pytest.raises(DeviceProfileError, match="null or a string"):
        DeviceProfile.from_dict({"name": "x", "isa_cap": 3})


def test_capped_plan_has_no_bf16_candidates() -> None:
    capped = capped_profile(ZEN4, "avx2")
    _, host_cands, _ = plan_candidates(ZEN4, runtimes=list(CAPPED_RUNTIMES), threads=(1,))
    _, cands, _ = plan_candidates(capped, runtimes=list(CAPPED_RUNTIMES), threads=(1,))
    assert any(c.precision == "bf16" for c in host_cands)
    assert cands and all(c.precision == "fp32" for c in cands)
    assert {c.runtime for c in cands} <= set(CAPPED_RUNTIMES)


def _child(code: str, cap: str | None) -> str:
    env = {**os.environ, **(cap_env(cap) if cap else {})}
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.strip().splitlines()[-1]


@needs_avx512
def test_torch_and_openvino_honour_the_cap(tmp_path: Path) -> None:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((16, 16, 3, 3), dtype=np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])],
        "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "conv.onnx"
    onnx.save(model, str(path))
    # One child per setting: oneDNN and ATen read the cap once, at start.
    code = (
        "import json, torch, openvino as ov\n"
        f"cm = ov.Core().compile_model({str(path)!r}, 'CPU', "
        "{'INFERENCE_NUM_THREADS': 1, 'INFERENCE_PRECISION_HINT': 'f32'})\n"
        "prims = sorted({str(op.get_rt_info()['primitiveType'].astype(str)) "
        "for op in cm.get_runtime_model().get_ops() if 'primitiveType' in op.get_rt_info()})\n"
        "print(json.dumps([torch.backends.cpu.get_cpu_capability(), prims]))\n"
    )
    torch_free, ov_free = json.loads(_child(code, None))
    torch_capped, ov_capped = json.loads(_child(code, "avx2"))
    assert (torch_free, torch_capped) == ("AVX512", "AVX2")
    assert "avx512" in " ".join(ov_free)
    assert "avx512" not in " ".join(ov_capped) and "avx2" in " ".join(ov_capped)


@needs_avx512
def test_campaign_measures_the_capped_configuration(tmp_path: Path) -> None:
    import argparse

    from graphrec.bench.campaign import _Measurer, register

    parser = argparse.ArgumentParser(prog="graphrec")
    register(parser.add_subparsers(dest="command"))
    store = str(tmp_path / "capped.sqlite")
    args = parser.parse_args(["campaign", "run", "--isa-cap", "avx2", "--store", store])
    m = _Measurer(args, store)
    assert m.device_id == capped_profile(HOST, "avx2").device_id != HOST.device_id
    assert m.worker_env == cap_env("avx2")
    assert sorted(m.runtimes or []) == sorted(CAPPED_RUNTIMES)
    assert m.candidates and all(c.precision == "fp32" for c in m.candidates)
    plain = _Measurer(parser.parse_args(["campaign", "run", "--store", store]), store)
    assert plain.device_id == HOST.device_id and plain.worker_env == {}
