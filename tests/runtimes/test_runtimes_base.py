"""Tests for graphrec.runtimes.base: candidate ids, torch sources, the prepare cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from graphrec.device import DeviceProfile
from graphrec.errors import CandidateSpecError
from graphrec.runtimes.base import Candidate, TorchSource, prepare_cached
from graphrec.runtimes.inputs import model_spec
from graphrec.runtimes.registry import available_adapters, get_adapter


@pytest.mark.parametrize(
    "cid",
    [
        "onnxruntime/cpu/fp32/opt=all/threads=2",
        "onnxruntime/cpu/int8/opt=basic/threads=1",
        "openvino/cpu/bf16/hint=latency/threads=0",
        "ncnn/cpu/fp16/threads=4",
        "torch/eager/fp32/threads=1",
    ],
)
def test_candidate_id_round_trip(cid: str) -> None:
    c = Candidate.parse(cid)
    assert c.candidate_id == cid
    assert Candidate.parse(c.candidate_id) == c
    assert str(c) == cid


def test_options_are_sorted_and_prepare_key_drops_threads() -> None:
    c = Candidate.make("x", "cpu", "fp32", 3, zeta="1", alpha="b")
    assert c.candidate_id == "x/cpu/fp32/alpha=b/zeta=1/threads=3"
    assert c.prepare_key == "x/cpu/fp32/alpha=b/zeta=1"
    assert c.option("alpha") == "b" and c.option("nope", "d") == "d"


def test_every_offered_candidate_round_trips() -> None:
    dev = DeviceProfile.detect(probe_gpus=False)
    adapters = available_adapters()
    assert adapters, "at least onnxruntime is installed in dev"
    for adapter in adapters:
        for c in adapter.candidates(dev, (1, 2)):
            assert c.runtime == adapter.name
            assert Candidate.parse(c.candidate_id) == c


@pytest.mark.parametrize(
    "bad",
    [
        "onnxruntime/cpu/fp32",
        "onnxruntime/cpu/fp64/threads=1",
        "onnxruntime/cpu/fp32/threads=x",
        "onnxruntime/cpu/fp32/opt/threads=1",
        "onnx runtime/cpu/fp32/threads=1",
        "a/cpu/fp32/k=1/k=2/threads=1",
        "a/cpu/fp32/threads=-1",
    ],
)
def test_bad_candidate_ids(bad: str) -> None:
    with pytest.raises(CandidateSpecError):
        Candidate.parse(bad)


def test_matches() -> None:
    c = Candidate.parse("onnxruntime/cpu/fp32/opt=all/threads=2")
    assert c.matches("onnxruntime")
    assert not c.matches("onnx")
    assert c.matches("onnxruntime/*")
    assert c.matches("*/threads=2")
    assert not c.matches("*/threads=1")


def test_prepare_cached_converts_once(tmp_path: Path, mlp_path: Path) -> None:
    spec = model_spec(mlp_path)
    adapter = get_adapter("onnxruntime")
    cand = Candidate.parse("onnxruntime/cpu/int8/opt=all/threads=1")
    first = prepare_cached(adapter, spec, cand, tmp_path)
    assert not first.cached and first.path.is_file() and first.convert_s > 0
    again = prepare_cached(
        adapter, spec, cand.__class__.parse("onnxruntime/cpu/int8/opt=all/threads=2"), tmp_path
    )
    assert again.cached and again.path == first.path and again.convert_s == first.convert_s
    assert not list(tmp_path.rglob(".tmp-*")), "no half-finished folders left"


def test_prepare_failure_leaves_no_cache_entry(tmp_path: Path, mlp_path: Path) -> None:
    spec = model_spec(mlp_path)
    spec.onnx_path = tmp_path / "missing.onnx"
    adapter = get_adapter("onnxruntime")
    cand = Candidate.parse("onnxruntime/cpu/fp32/opt=all/threads=1")
    with pytest.raises(OSError):
        prepare_cached(adapter, spec, cand, tmp_path / "cache")
    assert not list((tmp_path / "cache").rglob("prepared.json"))


def test_torch_source_from_file(cnn_path: Path) -> None:
    pytest.importorskip("torch")
    spec = model_spec(cnn_path)
    assert spec.torch_source is not None
    module = spec.torch_source.build()
    assert not module.training
    bad = TorchSource("no_colon_here")
    with pytest.raises(Exception, match=r"pkg\.module:callable"):
        bad.build()
