"""Tests for graphrec.runtimes.inputs: the dynamic-dimension rule and model specs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tiny_models import make_mlp

from graphrec.errors import ModelFormatError, ModelLoadError, ShapeSpecError
from graphrec.graph.shapes import DEFAULT_IMAGE_SIZE, DEFAULT_SEQUENCE_LENGTH
from graphrec.runtimes.inputs import (
    file_sha256,
    make_inputs,
    model_spec,
    resolve_shape,
)


def test_rule() -> None:
    assert resolve_shape("x", [1, 3, 8, 8]) == [1, 3, 8, 8]
    assert resolve_shape("x", ["N", 3, None, "W"]) == [1, 3, DEFAULT_IMAGE_SIZE, DEFAULT_IMAGE_SIZE]
    assert resolve_shape("x", ["N", "T", 80]) == [1, DEFAULT_SEQUENCE_LENGTH, 80]
    assert resolve_shape("x", ["N", "seq"], batch_size=4, dim_values={"seq": 7}) == [4, 7]
    assert resolve_shape("x", [None, 3], overrides={"x": [2, 3]}) == [2, 3]
    assert resolve_shape("x", [0, 5]) == [1, 5]  # a 0 dim is dynamic too


@pytest.mark.parametrize("override", [[1, 3, 8], [1, 4, 8, 8], [1, 3, 0, 8]])
def test_bad_overrides(override: list[int]) -> None:
    with pytest.raises(ShapeSpecError):
        resolve_shape("x", [None, 3, None, None], overrides={"x": override})


def test_model_spec_resolves_dynamic_batch(tmp_path: Path) -> None:
    path = make_mlp(tmp_path / "m.onnx", dynamic_batch=True)
    spec = model_spec(path, batch_size=3)
    assert spec.input_names == ["x"] and spec.input_shapes == [[3, 16]]
    assert spec.input_dtypes == ["float32"] and spec.output_names == ["y"]
    assert spec.sha256 == file_sha256(path)
    from graphrec.runtimes.convert import is_conversion

    assert is_conversion(spec.torch_source)  # no sidecar: the ONNX file converted (issue 22)
    arrays = make_inputs(spec)
    assert arrays[0].shape == (3, 16) and arrays[0].dtype == np.float32
    np.testing.assert_array_equal(arrays[0], make_inputs(spec)[0])  # deterministic


def test_model_spec_unknown_override(tmp_path: Path) -> None:
    path = make_mlp(tmp_path / "m.onnx")
    with pytest.raises(ShapeSpecError, match="no input named"):
        model_spec(path, overrides={"nope": [1, 16]})


def test_model_spec_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="no such file"):
        model_spec(tmp_path / "absent.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x08\x07garbage" * 10)
    with pytest.raises(ModelFormatError) as info:
        model_spec(junk)
    assert "junk.onnx" in str(info.value)


def test_bad_sidecar(tmp_path: Path) -> None:
    path = make_mlp(tmp_path / "m.onnx")
    path.with_suffix(".torch.json").write_text("{oops")
    with pytest.raises(ModelLoadError, match="sidecar"):
        model_spec(path)


def test_model_spec_input_values(tmp_path: Path) -> None:
    from graphrec.runtimes.base import ModelSpec

    path = make_mlp(tmp_path / "m.onnx")
    spec = model_spec(path, input_values={"x": 16000})
    (x,) = make_inputs(spec)
    assert x.dtype == np.float32 and (x == 16000.0).all()
    again = ModelSpec.from_dict(spec.to_dict())
    assert again.input_values == {"x": 16000.0}
    np.testing.assert_array_equal(make_inputs(again)[0], x)
    assert not (make_inputs(model_spec(path))[0] == 16000.0).any()  # random without it
    with pytest.raises(ShapeSpecError, match=r"no input named.*value"):
        model_spec(path, input_values={"sr": 16000})


def test_file_sha256_follows_the_file(tmp_path: Path) -> None:
    """The per-process digest cache never returns a stale digest for a rewritten file."""
    import hashlib
    import os

    from graphrec.runtimes.inputs import file_sha256

    f = tmp_path / "m.onnx"
    f.write_bytes(b"a" * 1000)
    assert file_sha256(f) == hashlib.sha256(b"a" * 1000).hexdigest()
    assert file_sha256(f) == hashlib.sha256(b"a" * 1000).hexdigest()
    st = f.stat()
    f.write_bytes(b"b" * 1000)  # same size, same inode
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    assert file_sha256(f) == hashlib.sha256(b"b" * 1000).hexdigest()
    tmp = tmp_path / "new.onnx"
    tmp.write_bytes(b"c" * 1000)
    os.replace(tmp, f)  # replaced atomically: a new inode
    assert file_sha256(f) == hashlib.sha256(b"c" * 1000).hexdigest()
