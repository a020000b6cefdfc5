"""Measurement identity and implausible results, with real runtimes in real workers:
two input shapes of one file are two rows and two conversions; constant or echoed
outputs fail the output check; a run faster than the device's roofline is stored as
``implausible``."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from tiny_models import make_mlp

from graphrec.bench.harness import run_campaign
from graphrec.bench.plausibility import classify, model_work, plausible_floor_ms
from graphrec.bench.protocol import MeasureConfig, Status, compare_outputs
from graphrec.bench.store import ResultStore
from graphrec.device import DeviceProfile
from graphrec.runtimes.base import Candidate, input_key
from graphrec.runtimes.inputs import make_inputs, model_spec
from graphrec.runtimes.ort import OnnxRuntimeAdapter

ORT = "onnxruntime/cpu/fp32/opt=all/threads=1"
OV = "openvino/cpu/fp32/threads=1"


@pytest.fixture(scope="module")
def device() -> DeviceProfile:
    return DeviceProfile.detect(probe_gpus=False)


def test_two_batch_sizes_are_two_rows_and_two_conversions(
    tmp_path: Path, device: DeviceProfile, fast_config: MeasureConfig
) -> None:
    path = make_mlp(tmp_path / "mlp_dyn.onnx", dynamic_batch=True)
    cache = tmp_path / "cache"
    with ResultStore(tmp_path / "r.sqlite") as store:
        kw: dict[str, Any] = dict(
            store=store,
            device=device,
            patterns=[OV],
            threads=(1,),
            config=fast_config,
            cache_dir=cache,
        )
        for batch in (1, 4):
            rows = run_campaign([path], batch_size=batch, **kw)
            assert len(rows) == 1 and rows[0]["status"] == Status.OK, rows
            assert not rows[0]["convert_cached"]  # batch 4 did not reuse batch 1's file
        stored = store.rows()
        again = run_campaign([path], batch_size=4, **kw)  # resume: both shapes are done
    assert again == []
    assert len(stored) == 2
    assert len({r["measurement_key"] for r in stored}) == 2
    assert len({r["input_key"] for r in stored}) == 2
    assert {r["model_sha256"] for r in stored} == {stored[0]["model_sha256"]}
    conversions = list((cache / "prepared").glob("*/*/prepared.json"))
    assert len(conversions) == 2


def _offset_model(path: Path) -> Path:
    """y = 1e-3 * x + 1000: the reference is a large offset with a small variation."""
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "s"], ["t"]), helper.make_node("Add", ["t", "b"], ["y"])],
        "offset",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])],
        [
            helper.make_tensor("s", TensorProto.FLOAT, [1], [1e-3]),
            helper.make_tensor("b", TensorProto.FLOAT, [1], [1000.0]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _identity_like_model(path: Path) -> Path:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _run(path: Path, candidate: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    spec = model_spec(path)
    inputs = make_inputs(spec)
    ort = OnnxRuntimeAdapter()
    session = ort.load(path, spec, Candidate.parse(candidate))
    return inputs, ort.run(session, inputs)


def test_constant_outputs_are_rejected_even_within_tolerance(tmp_path: Path) -> None:
    inputs, ref = _run(_offset_model(tmp_path / "offset.onnx"), ORT)
    _, real = _run(tmp_path / "offset.onnx", "onnxruntime/cpu/fp32/opt=basic/threads=1")
    assert compare_outputs(real, ref, "fp32", inputs=inputs).ok  # the real runtime passes
    constant = [np.full_like(ref[0], 1000.0)]
    zeros = [np.zeros_like(ref[0])]
    mean = [np.full_like(ref[0], float(ref[0].mean()))]
    # The constant sits within the fp32 tolerance of the reference ...
    rel = float(np.max(np.abs(constant[0] - ref[0])) / np.max(np.abs(ref[0])))
    assert rel < 1e-3
    # ... but carries none of its variation, so it is rejected.
    for fake in (constant, mean):
        agree = compare_outputs(fake, ref, "fp32", inputs=inputs)
        assert not agree.ok and "constant" in agree.reason
    assert "zeros" in compare_outputs(zeros, ref, "fp32").reason


def test_outputs_equal_to_the_input_are_rejected(tmp_path: Path) -> None:
    path = _identity_like_model(tmp_path / "relu.onnx")
    inputs, ref = _run(path, ORT)
    echo = [inputs[0].copy()]
    agree = compare_outputs(echo, ref, "int8", inputs=inputs)  # even at the loosest limits
    assert not agree.ok and "unchanged" in agree.reason
    assert compare_outputs(ref, ref, "fp32", inputs=inputs).ok


def _measure_ort(
    path: Path, tmp_path: Path, device: DeviceProfile, config: MeasureConfig
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One real onnxruntime threads=1 measurement: the returned row and the stored one."""
    with ResultStore(tmp_path / "r.sqlite") as store:
        (row,) = run_campaign(
            [path],
            store=store,
            device=device,
            patterns=[ORT],
            threads=(1,),
            config=config,
            cache_dir=tmp_path / "cache",
        )
        (stored,) = store.rows()
    return row, stored


def test_a_real_row_made_faster_than_the_roofline_is_implausible(
    tmp_path: Path, device: DeviceProfile, fast_config: MeasureConfig
) -> None:
    path = make_mlp(tmp_path / "mlp.onnx")
    row, _ = _measure_ort(path, tmp_path, device, fast_config)
    assert row["status"] == Status.OK  # a real run is plausible on the real device
    spec = model_spec(path)
    work = model_work(path, dict(zip(spec.input_names, spec.input_shapes, strict=True)))
    assert work is not None and work.flops > 0
    floor = plausible_floor_ms(work.flops, work.bytes_min, device, threads=1)
    assert row["p50_ms"] > floor
    fast = dict(row, p50_ms=floor / 2)  # the same row, as if it had run 2x under the floor
    classify(fast, work, device)
    assert fast["status"] == Status.IMPLAUSIBLE and "plausible floor" in str(fast["error"])


def test_end_to_end_run_on_a_profile_claiming_a_slow_machine_is_implausible(
    tmp_path: Path, device: DeviceProfile, fast_config: MeasureConfig
) -> None:
    """The real run is real; the profile claims a 1 kHz core, so it looks far too fast."""
    path = make_mlp(tmp_path / "mlp.onnx")
    slow = dataclasses.replace(device, name="slow", freq_max_mhz=0.001, isa_flags=[])
    row, stored = _measure_ort(path, tmp_path, slow, fast_config)
    assert row["status"] == stored["status"] == Status.IMPLAUSIBLE
    assert stored["p50_ms"] is not None and "plausible_floor_ms" in stored["extra"]
    assert input_key(model_spec(path)) == stored["input_key"]
