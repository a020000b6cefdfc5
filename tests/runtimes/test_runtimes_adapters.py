"""Every adapter's round trip on a tiny torch-exported CNN, with the real runtime.

Each offered single-thread candidate converts the model (cached by hash + candidate),
loads it, runs it, and must agree with the onnxruntime reference within the tolerance
of its precision.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from graphrec.bench.protocol import compare_outputs
from graphrec.device import DeviceProfile
from graphrec.runtimes.base import ModelSpec, prepare_cached
from graphrec.runtimes.inputs import make_inputs, model_spec
from graphrec.runtimes.ort import REFERENCE_CANDIDATE
from graphrec.runtimes.registry import BUILTIN_ADAPTERS, get_adapter

RUNTIMES = [e.name for e in BUILTIN_ADAPTERS]
TORCH_SOURCED = ("litert", "executorch", "torch")


@pytest.fixture(scope="module")
def cnn_spec(cnn_path: Path) -> ModelSpec:
    return model_spec(cnn_path)


@pytest.fixture(scope="module")
def reference(cnn_spec: ModelSpec) -> list[np.ndarray]:
    ort = get_adapter("onnxruntime")
    session = ort.load(cnn_spec.onnx_path, cnn_spec, REFERENCE_CANDIDATE)
    return ort.run(session, make_inputs(cnn_spec))


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_round_trip(
    runtime: str,
    cnn_spec: ModelSpec,
    reference: list[np.ndarray],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    adapter = get_adapter(runtime)
    if not adapter.is_available():
        pytest.skip(f"{runtime} not installed ({adapter.install_hint})")
    cache = tmp_path_factory.mktemp(f"cache-{runtime}")
    device = DeviceProfile.detect(probe_gpus=False)
    candidates = adapter.candidates(device, (1,))
    assert candidates, f"{runtime} offers no single-thread candidate"
    assert adapter.version()
    inputs = make_inputs(cnn_spec)
    for cand in candidates:
        assert adapter.check(cnn_spec, cand) is None
        prepared = prepare_cached(adapter, cnn_spec, cand, cache)
        session = adapter.load(prepared.path, cnn_spec, cand)
        outputs = adapter.run(session, inputs)
        again = adapter.run(session, inputs)
        agreement = compare_outputs(outputs, reference, cand.precision)
        assert agreement.ok, f"{cand.candidate_id}: {agreement.reason}"
        assert compare_outputs(again, outputs, cand.precision).ok, "repeat run differs"


@pytest.mark.parametrize("runtime", TORCH_SOURCED)
def test_bare_onnx_needs_torch_source(runtime: str, mlp_path: Path) -> None:
    from dataclasses import replace

    from graphrec.runtimes.convert import is_conversion

    adapter = get_adapter(runtime)
    spec = model_spec(mlp_path)
    cand = adapter.candidates(DeviceProfile.detect(probe_gpus=False), (1,))[0]
    # A bare ONNX file gets a conversion of itself as its torch source (issue 22)...
    assert is_conversion(spec.torch_source)
    assert adapter.check(spec, cand) is None
    # ...and a spec without any torch source is still refused.
    bare = replace(spec, torch_source=None)
    assert adapter.check(bare, cand) == "needs a torch source (bare ONNX file)"


def test_ncnn_refuses_batch_above_one(mlp_path: Path, tmp_path: Path) -> None:
    from tiny_models import make_mlp

    adapter = get_adapter("ncnn")
    spec = model_spec(make_mlp(tmp_path / "dyn.onnx", dynamic_batch=True), batch_size=2)
    cand = adapter.candidates(DeviceProfile.detect(probe_gpus=False), (1,))[0]
    reason = adapter.check(spec, cand)
    assert reason is not None and "batch" in reason


def test_tract_only_one_thread() -> None:
    adapter = get_adapter("tract")
    dev = DeviceProfile.detect(probe_gpus=False)
    assert [c.threads for c in adapter.candidates(dev, (1, 2))] == [1]
    assert adapter.candidates(dev, (2,)) == []


def test_openvino_offers_explicit_precisions() -> None:
    adapter = get_adapter("openvino")
    dev = DeviceProfile(name="x", arch="x86_64", isa_flags=["avx2"])
    assert {c.precision for c in adapter.candidates(dev, (1,))} == {"fp32"}
    dev.isa_flags.append("avx512_bf16")
    assert {c.precision for c in adapter.candidates(dev, (1,))} == {"fp32", "bf16"}
