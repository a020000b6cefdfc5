"""The one rule for dynamic input dimensions."""

from __future__ import annotations

import pytest

from graphrec.errors import ShapeSpecError
from graphrec.graph.shapes import (
    DEFAULT_IMAGE_SIZE,
    DEFAULT_SEQUENCE_LENGTH,
    parse_dim_value,
    parse_input_shape,
    resolve_input_shapes,
)


def test_rule() -> None:
    got = resolve_input_shapes(
        {
            "image": ["N", 3, None, -1],
            "ids": ["batch", "seq"],
            "mask": ["batch", "seq"],
            "fixed": [2, 5],
            "scalar": [],
            "noshape": None,
        },
        batch_size=4,
    )
    assert got["image"] == [4, 3, DEFAULT_IMAGE_SIZE, DEFAULT_IMAGE_SIZE]
    assert got["ids"] == [4, DEFAULT_SEQUENCE_LENGTH] == got["mask"]
    assert got["fixed"] == [2, 5]
    assert got["scalar"] == []
    assert "noshape" not in got


def test_named_dims_and_overrides_share_values() -> None:
    got = resolve_input_shapes(
        {"ids": ["batch", "seq"], "mask": ["batch", "seq"]}, {"ids": [2, 17]}, dim_values={}
    )
    assert got == {"ids": [2, 17], "mask": [2, 17]}
    got = resolve_input_shapes({"x": ["b", "t", 80]}, dim_values={"t": 300})
    assert got == {"x": [1, 300, 80]}


def test_errors() -> None:
    with pytest.raises(ShapeSpecError, match="no model input"):
        resolve_input_shapes({"x": [1]}, {"y": [1]})
    with pytest.raises(ShapeSpecError, match="rank"):
        resolve_input_shapes({"x": [1, 2]}, {"x": [1]})
    with pytest.raises(ShapeSpecError, match="batch_size"):
        resolve_input_shapes({"x": [1]}, batch_size=0)
    with pytest.raises(ShapeSpecError):
        parse_input_shape("x")
    with pytest.raises(ShapeSpecError):
        parse_input_shape("x=1,a")
    assert parse_input_shape("input.1=1,3,224,224") == ("input.1", [1, 3, 224, 224])
    assert parse_dim_value("seq=64") == ("seq", 64)
