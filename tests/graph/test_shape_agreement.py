"""Shapes graphrec infers agree with ``onnx.shape_inference`` on every tensor both know.

Models: every ONNX model the onnx wheel ships for its backend tests
(``onnx/backend/test/data``) plus the torch-exported test models. Value infos and
output shapes are stripped first, so graphrec's own propagation is compared, and
the inputs are fixed to the shapes graphrec's input rule resolves.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import onnx
import pytest
from graph_models import Built
from onnx import shape_inference

import graphrec.graph as G
from graphrec.errors import GraphRecError

ONNX_DATA = Path(onnx.__file__).parent / "backend" / "test" / "data"
README = Path(__file__).resolve().parents[2] / "README.md"

#: The figure the README states, measured with this onnx version (its wheel decides which
#: backend-test models there are): tensors both know (all of them agree), wheel models,
#: tensors only onnx knows.
README_FIGURE = {"onnx": "1.23.2", "tensors": 4474, "wheel_models": 149, "onnx_only": 5}


def onnx_wheel_models() -> list[Path]:
    return sorted(ONNX_DATA.rglob("*.onnx"))


def _concrete(vi: onnx.ValueInfoProto) -> tuple[int, ...] | None:
    t = vi.type.tensor_type
    if not vi.type.HasField("tensor_type") or not t.HasField("shape"):
        return None
    dims = []
    for d in t.shape.dim:
        if not d.HasField("dim_value"):
            return None
        dims.append(d.dim_value)
    return tuple(dims)


def compare(path: Path) -> tuple[int, int, int, list[str]]:
    """Return (agree, both_known, onnx_only_known, disagreements) for one model."""
    m = onnx.load(str(path), load_external_data=False)
    del m.graph.value_info[:]
    for o in m.graph.output:
        o.type.tensor_type.ClearField("shape")
    resolved = G.load_bytes(
        m.SerializeToString(), name=str(path), base_dir=path.parent
    ).input_shapes
    for i in m.graph.input:
        if i.name in resolved and i.type.HasField("tensor_type"):
            shape = i.type.tensor_type.shape
            shape.ClearField("dim")
            for d in resolved[i.name]:
                shape.dim.add().dim_value = d
    ours = G.load_bytes(m.SerializeToString(), name=str(path), base_dir=path.parent)
    inferred = shape_inference.infer_shapes(m, strict_mode=False, data_prop=True)
    theirs = {
        vi.name: _concrete(vi)
        for vi in list(inferred.graph.value_info) + list(inferred.graph.output)
    }
    agree = both = only_theirs = 0
    bad: list[str] = []
    for name, shape in theirs.items():
        if shape is None or name not in ours.tensor_names:
            continue
        mine = ours.shape_of(name)
        if mine is None or any(d < 0 for d in mine):
            only_theirs += 1
            continue
        both += 1
        if tuple(mine) == shape:
            agree += 1
        else:
            bad.append(f"{path.name}:{name}: graphrec {mine} onnx {shape}")
    return agree, both, only_theirs, bad


def all_models(built: dict[str, Built]) -> Iterator[Path]:
    yield from onnx_wheel_models()
    for b in built.values():
        yield b.path


def test_onnx_wheel_ships_backend_models() -> None:
    assert len(onnx_wheel_models()) >= 100


def test_shapes_agree_with_onnx_shape_inference(built_models: dict[str, Built]) -> None:
    agree = both = only_theirs = models = 0
    bad: list[str] = []
    for path in all_models(built_models):
        try:
            a, b, o, d = compare(path)
        except (
            GraphRecError,
            onnx.shape_inference.InferenceError,
        ) as exc:  # pragma: no cover - report
            pytest.fail(f"{path}: {exc}")
        agree, both, only_theirs, models = agree + a, both + b, only_theirs + o, models + 1
        bad += d
    print(
        f"\nshape agreement: {agree}/{both} tensors = {100 * agree / both:.2f} % over {models} "
        f"models; {only_theirs} tensors known to onnx only"
    )
    # Every tensor both know agrees: one disagreement fails the test.
    assert not bad, f"{len(bad)} of {both} tensors disagree: {bad[:20]}"
    assert agree == both > 1000
    if onnx.__version__ == README_FIGURE["onnx"]:
        n_wheel = len(onnx_wheel_models())
        measured = {"tensors": both, "wheel_models": n_wheel, "onnx_only": only_theirs}
        assert measured == {k: v for k, v in README_FIGURE.items() if k != "onnx"}
        assert models == n_wheel + len(built_models)


def test_readme_states_the_measured_figure() -> None:
    """The README's sentence carries the figure the test above measures."""
    text = " ".join(README.read_text(encoding="utf-8").split())
    n = README_FIGURE["tensors"]
    assert f"100.00 % ({n} of {n})" in text
    assert f"over the {README_FIGURE['wheel_models']} models the onnx wheel ships" in text
    assert f"onnx {README_FIGURE['onnx']}" in text
