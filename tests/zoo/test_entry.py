"""Tests of zoo entries: every family builds, exports, checks and runs; exports are deterministic."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

import graphrec.zoo as zoo
from graphrec.errors import ZooError, ZooUnknownFamilyError
from graphrec.zoo import FAMILIES, ZooEntry, graph_hash
from graphrec.zoo.entry import FLOP_BUDGET, PARAM_BUDGET

REQUIRED = {
    "resnet",
    "vgg",
    "mobilenet_v1",
    "mobilenet_v2",
    "mobilenet_v3",
    "efficientnet",
    "shufflenet_v2",
    "squeezenet",
    "densenet",
    "ghostnet",
    "regnet",
    "convnext",
    "nb201",
    "vit",
    "bert",
    "gpt",
    "mlp_mixer",
    "rnn",
    "unet",
    "ssd",
    "yolo",
    "audio_cnn",
}


def _run_ort(entry: ZooEntry, data: bytes) -> list[np.ndarray]:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == [s.name for s in entry.input_specs]
    assert tuple(o.name for o in sess.get_outputs()) == entry.output_names
    feeds = {
        s.name: t.numpy() for s, t in zip(entry.input_specs, entry.example_inputs(), strict=True)
    }
    return list(sess.run(None, feeds))


def _torch_outputs(entry: ZooEntry) -> list[np.ndarray]:
    with torch.no_grad():
        out = entry.build_module()(*entry.example_inputs())
    outs = out if isinstance(out, tuple) else (out,)
    return [o.numpy() for o in outs]


def test_zoo_covers_the_required_families() -> None:
    assert set(FAMILIES) >= REQUIRED
    assert len(FAMILIES) >= 15
    for name in FAMILIES:  # every family is in the documented ranges table
        assert f"\n{name} " in zoo.__doc__


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_family_exports_checks_and_matches_torch(family: str) -> None:
    entry = ZooEntry.sample(family, seed=0, tiny=True)
    data = entry.onnx_bytes()
    model = onnx.load_from_string(data)
    onnx.checker.check_model(model, full_check=True)
    assert {o.domain: o.version for o in model.opset_import}[""] == 17
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
    got = _run_ort(entry, data)
    want = _torch_outputs(entry)
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape
        assert np.all(np.isfinite(g))
        scale = max(1.0, float(np.abs(w).max()))
        np.testing.assert_allclose(g, w, rtol=1e-3, atol=1e-3 * scale)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_family_default_draw_runs_within_budget(family: str) -> None:
    entry = ZooEntry.sample(family, seed=1)
    flops, n_params = entry.cost()
    assert flops <= FLOP_BUDGET
    assert n_params <= PARAM_BUDGET
    outs = _run_ort(entry, entry.onnx_bytes())
    assert all(np.all(np.isfinite(o)) for o in outs)


@pytest.mark.parametrize(
    ("family", "variant", "marker_op"),
    [("squeezenet", "int8_static", "QuantizeLinear"), ("bert", "int8_dynamic", "MatMulInteger")],
)
def test_int8_variants_quantise_and_run(family: str, variant: str, marker_op: str) -> None:
    entry = ZooEntry.sample(family, seed=0, tiny=True, variant=variant)
    assert entry.model_id == f"{family}-s0-{variant}-tiny"
    data = entry.onnx_bytes()
    model = onnx.load_from_string(data)
    onnx.checker.check_model(model)
    assert marker_op in {n.op_type for n in model.graph.node}
    fp32 = ZooEntry.sample(family, seed=0, tiny=True)
    assert graph_hash(model) != graph_hash(onnx.load_from_string(fp32.onnx_bytes()))
    outs = _run_ort(entry, data)
    assert all(np.all(np.isfinite(o)) for o in outs)
    assert entry.onnx_bytes() == data  # quantisation is deterministic too


def test_same_seed_same_bytes_and_params() -> None:
    a = ZooEntry.sample("mobilenet_v2", seed=7, tiny=True)
    b = ZooEntry.sample("mobilenet_v2", seed=7, tiny=True)
    assert a.params == b.params
    assert hashlib.sha256(a.onnx_bytes()).digest() == hashlib.sha256(b.onnx_bytes()).digest()


def test_export_is_bit_identical_across_processes(tmp_path: pytest.TempPathFactory) -> None:
    entry = ZooEntry.sample("resnet", seed=3, tiny=True)
    here = hashlib.sha256(entry.onnx_bytes()).hexdigest()
    code = (
        "import hashlib; from graphrec.zoo import ZooEntry; "
        "print(hashlib.sha256(ZooEntry.sample('resnet', 3, tiny=True).onnx_bytes()).hexdigest())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip().splitlines()[-1] == here


def test_export_writes_file_and_reports_hashes(tmp_path: pytest.TempPathFactory) -> None:
    entry = ZooEntry.sample("vit", seed=2, tiny=True)
    info = entry.export(tmp_path / "sub" / "vit.onnx")  # type: ignore[operator]
    data = info.path.read_bytes()
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert info.num_bytes == len(data)
    assert info.graph_hash == graph_hash(onnx.load_from_string(data))


def test_weights_differ_by_seed_but_graph_hash_does_not() -> None:
    a = ZooEntry.sample("convnext", seed=0, tiny=True)
    b = ZooEntry.sample("convnext", seed=1, tiny=True)
    assert a.params == b.params  # tiny mode: same architecture
    da, db = a.onnx_bytes(), b.onnx_bytes()
    assert da != db
    assert graph_hash(onnx.load_from_string(da)) == graph_hash(onnx.load_from_string(db))


def test_different_seeds_draw_different_architectures() -> None:
    params = [ZooEntry.sample("regnet", seed=s).params for s in range(6)]
    assert len({repr(sorted(p.items())) for p in params}) >= 4


def test_build_module_leaves_global_rng_alone() -> None:
    torch.manual_seed(1234)
    expected = torch.rand(3)
    torch.manual_seed(1234)
    ZooEntry.sample("densenet", seed=5, tiny=True).build_module()
    np.random.seed(99)
    np_expected = np.random.rand()
    np.random.seed(99)
    ZooEntry.sample("densenet", seed=5, tiny=True)
    assert torch.equal(torch.rand(3), expected)
    assert np.random.rand() == np_expected


def test_module_is_reachable_and_in_eval_mode() -> None:
    entry = ZooEntry.sample("ghostnet", seed=0, tiny=True)
    module = entry.build_module()
    assert not module.training
    assert entry.build_module().state_dict().keys() == module.state_dict().keys()
    first = next(iter(module.state_dict().values()))
    assert torch.equal(first, next(iter(entry.build_module().state_dict().values())))


def test_record_round_trip_and_mismatch() -> None:
    entry = ZooEntry.sample("bert", seed=4)
    again = ZooEntry.from_record(entry.to_record())
    assert again == entry and again.params == entry.params
    bad = {**entry.to_record(), "params": {**entry.params, "layers": 99}}
    with pytest.raises(ZooError, match="recorded parameters differ"):
        ZooEntry.from_record(bad)


def test_bad_arguments_raise_typed_errors() -> None:
    with pytest.raises(ZooUnknownFamilyError, match="valid: resnet"):
        ZooEntry.sample("alexnet", seed=0)
    with pytest.raises(ZooError, match="unknown variant"):
        ZooEntry.sample("vgg", seed=0, variant="fp16")
    with pytest.raises(ZooError, match="non-negative"):
        ZooEntry.sample("vgg", seed=-1)


def test_cli_variants_mirror_entry_variants() -> None:
    from graphrec.zoo import VARIANTS
    from graphrec.zoo._cli import _VARIANTS

    assert tuple(VARIANTS) == _VARIANTS


@pytest.mark.parametrize(
    ("family", "variant", "tiny"),
    [("resnet", "fp32", False), ("bert", "int8_dynamic", True), ("mobilenet_v3", "fp32", True)],
)
def test_model_id_round_trip(family: str, variant: str, tiny: bool) -> None:
    entry = ZooEntry.sample(family, seed=12, variant=variant, tiny=tiny)
    again = ZooEntry.from_model_id(entry.model_id)
    assert again == entry and again.params == entry.params


@pytest.mark.parametrize("bad", ["resnet", "resnet-12", "resnet-sx", "a-s1-fp16-x-y"])
def test_bad_model_ids_raise(bad: str) -> None:
    with pytest.raises(ZooError):
        ZooEntry.from_model_id(bad)
