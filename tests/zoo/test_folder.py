"""Tests of zoo folder generation: manifest, dedup, resume, int8 variants, verification."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest

from graphrec.errors import ZooError, ZooUnknownFamilyError
from graphrec.zoo import MANIFEST, generate, read_manifest, verify
from graphrec.zoo.folder import DUPLICATES, SEED_STRIDE


def _rows(path: Path) -> dict[str, dict]:
    return {r["model_id"]: r for r in read_manifest(path)}


def test_generate_round_robin_manifest_and_files(tmp_path: Path) -> None:
    report = generate(tmp_path, families=["mlp_mixer", "audio_cnn"], count=4, seed=2)
    assert len(report.written) == 4 and not report.failed
    rows = _rows(tmp_path)
    assert sorted(r["family"] for r in rows.values()) == ["audio_cnn"] * 2 + ["mlp_mixer"] * 2
    for row in rows.values():
        assert row["seed"] // SEED_STRIDE == 2
        assert (tmp_path / row["file"]).is_file()
        assert row["file"] == f"{row['model_id']}.onnx"
        assert len(row["sha256"]) == 64 and len(row["graph_hash"]) == 32
        onnx.checker.check_model(str(tmp_path / row["file"]))
        assert json.loads(json.dumps(row["params"])) == row["params"]
    assert len({r["graph_hash"] for r in rows.values()}) == 4


@pytest.mark.parametrize("precheck", [True, False])
def test_dedup_by_graph_hash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, precheck: bool
) -> None:
    # Tiny mode draws one architecture per family, so every further seed is a duplicate.
    if not precheck:  # make the parameter pre-check miss, so the graph hash must catch them
        monkeypatch.setattr(
            "graphrec.zoo.folder._param_key", lambda row: json.dumps([row["model_id"]])
        )
    report = generate(tmp_path, families=["squeezenet"], count=3, tiny=True, max_misses=3)
    assert report.written == ["squeezenet-s0-tiny"]
    assert report.exhausted == ["squeezenet"]
    assert [d[1] for d in report.duplicates] == ["squeezenet-s0-tiny"] * 3
    assert len(read_manifest(tmp_path)) == 1
    dups = (tmp_path / DUPLICATES).read_text().splitlines()
    assert len(dups) == 3
    assert not (tmp_path / "squeezenet-s1-tiny.onnx").exists()
    again = generate(tmp_path, families=["squeezenet"], count=3, tiny=True, max_misses=3)
    assert again.reused == ["squeezenet-s0-tiny"] and not again.written
    assert len(again.duplicates) == 3  # known duplicates are not exported again


def test_resume_after_interruption_gives_the_same_folder(tmp_path: Path) -> None:
    full, cut = tmp_path / "full", tmp_path / "cut"
    families = ["vit", "rnn", "nb201", "squeezenet", "bert", "audio_cnn"]
    args = {"families": families, "seed": 1, "int8_fraction": 0.5, "tiny": True, "max_misses": 1}
    generate(full, count=8, **args)  # type: ignore[arg-type]
    generate(cut, count=4, **args)  # type: ignore[arg-type]
    # simulate a crash: a half-written manifest line and a missing model file
    rows = read_manifest(cut)
    (cut / rows[-1]["file"]).unlink()
    with (cut / MANIFEST).open("a") as fh:
        fh.write('{"model_id": "half')
    report = generate(cut, count=8, **args)  # type: ignore[arg-type]
    assert len(report.reused) == 3 and len(report.written) == 5
    want = {k: r["sha256"] for k, r in _rows(full).items()}
    got = {k: r["sha256"] for k, r in _rows(cut).items()}
    assert got == want and len(got) == 8
    assert {"rnn-s1000000-int8_dynamic-tiny", "bert-s1000000-int8_dynamic-tiny"} <= set(got)


def test_int8_fraction_one_adds_a_variant_per_model(tmp_path: Path) -> None:
    generate(tmp_path, families=["shufflenet_v2"], count=2, tiny=True, int8_fraction=1.0)
    assert sorted(_rows(tmp_path)) == ["shufflenet_v2-s0-int8_static-tiny", "shufflenet_v2-s0-tiny"]


def test_verify_detects_tampering(tmp_path: Path) -> None:
    generate(tmp_path, families=["gpt", "unet"], count=2, tiny=True)
    results = verify(tmp_path)
    assert [r.ok for r in results] == [True, True]
    lines = (tmp_path / MANIFEST).read_text().splitlines()
    row = json.loads(lines[0])
    row["sha256"] = "0" * 64
    lines[0] = json.dumps(row)
    (tmp_path / MANIFEST).write_text("\n".join(lines) + "\n")
    results = verify(tmp_path, sample=2)
    assert [r.ok for r in results] == [False, True]
    assert "sha256" in results[0].detail


def test_bad_arguments_and_corrupt_manifest(tmp_path: Path) -> None:
    with pytest.raises(ZooUnknownFamilyError):
        generate(tmp_path, families=["lenet"], count=1)
    with pytest.raises(ZooError, match="int8_fraction"):
        generate(tmp_path, count=1, int8_fraction=2.0)
    (tmp_path / MANIFEST).write_text("not json\n{}\n")
    with pytest.raises(ZooError, match=r"manifest\.jsonl:1"):
        generate(tmp_path, count=1)


def test_fp32_models_get_a_torch_source_sidecar_the_harness_reads(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from graphrec.runtimes.inputs import model_spec
    from graphrec.zoo import ZooEntry

    generate(tmp_path, families=["bert"], count=2, tiny=True, int8_fraction=1.0, max_misses=1)
    rows = _rows(tmp_path)
    assert set(rows) == {"bert-s0-tiny", "bert-s0-int8_dynamic-tiny"}
    assert not (tmp_path / "bert-s0-int8_dynamic-tiny.torch.json").exists()
    spec = model_spec(tmp_path / "bert-s0-tiny.onnx")
    assert spec.sha256 == rows["bert-s0-tiny"]["sha256"]
    assert spec.torch_source is not None
    module = spec.torch_source.build()
    entry = ZooEntry.sample("bert", 0, tiny=True)
    with torch.no_grad():
        got = module(*entry.example_inputs())
        want = entry.build_module()(*entry.example_inputs())
    assert torch.equal(got, want)
    # The int8 file has no sidecar: its torch source, if any, is the ONNX -> torch
    # conversion of the file itself, not the fp32 module.
    from graphrec.runtimes.inputs import torch_source_for

    assert torch_source_for(tmp_path / "bert-s0-int8_dynamic-tiny.onnx") is None
    int8 = model_spec(tmp_path / "bert-s0-int8_dynamic-tiny.onnx").torch_source
    assert int8 is None or "convert" in int8.factory
