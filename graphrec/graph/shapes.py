"""How graphrec turns an ONNX model's dynamic input dimensions into concrete ones.

This is the one rule every part of graphrec uses (``graphrec inspect``, ``graphrec
bench``, ``graphrec.recommend``), so a recommendation and a measurement of the same
model always refer to the same input shapes.

For each graph input, in order:

1. An explicit shape given by the caller (``input_shapes={"x": [1, 3, 320, 320]}``,
   CLI ``--input-shape x=1,3,320,320``) wins; its rank and every fixed dimension must
   match the declared ones, and every size must be positive.
2. Otherwise each declared dimension is resolved on its own:

   * a fixed size (``224``) is kept (a declared ``0`` or negative size counts as dynamic,
     as some converters write it);
   * a named dimension (``"seq"``, ``"unk__214"``) given in ``dim_values`` takes that
     value, and every other input using the same name gets the same value;
   * dimension 0 (unnamed, ``-1`` or named but not given) is the batch: ``batch_size``;
   * for rank-4 inputs (images, NCHW) dimension 1 is :data:`DEFAULT_CHANNELS` and
     dimensions 2 and 3 are :data:`DEFAULT_IMAGE_SIZE`;
   * any other dynamic dimension (sequence lengths, audio frames, ...) is
     :data:`DEFAULT_SEQUENCE_LENGTH`.

Inputs declared without any shape need an explicit shape; they are left unresolved
(the kernel then marks what depends on them as unknown).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from graphrec.errors import ShapeSpecError

__all__ = [
    "DEFAULT_CHANNELS",
    "DEFAULT_IMAGE_SIZE",
    "DEFAULT_SEQUENCE_LENGTH",
    "DeclaredDim",
    "parse_dim_value",
    "parse_input_shape",
    "resolve_input_shapes",
]

DEFAULT_IMAGE_SIZE = 224
DEFAULT_CHANNELS = 3
DEFAULT_SEQUENCE_LENGTH = 128

#: A declared dimension: a fixed size, a symbolic name, or ``None`` (unknown).
DeclaredDim = int | str | None


def _default_for(index: int, rank: int, batch_size: int) -> int:
    if index == 0:
        return batch_size
    if rank == 4:
        return DEFAULT_CHANNELS if index == 1 else DEFAULT_IMAGE_SIZE
    return DEFAULT_SEQUENCE_LENGTH


def resolve_input_shapes(
    declared: Mapping[str, Sequence[DeclaredDim] | None],
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    *,
    batch_size: int = 1,
    dim_values: Mapping[str, int] | None = None,
) -> dict[str, list[int]]:
    """Resolve every dynamic input dimension to a concrete size (see the module docstring).

    Args:
        declared: Input name to declared dims (``None`` entries or ``-1`` for unknown,
            strings for symbolic dims); ``None`` for an input without a shape.
        input_shapes: Explicit shapes that override the rule, by input name.
        batch_size: Value of dimension 0 when it is dynamic.
        dim_values: Values of symbolic dimensions by name.

    Returns:
        Concrete shapes by input name; inputs without any declared or given shape are omitted.

    Raises:
        ShapeSpecError: An explicit shape names no input, has the wrong rank, or holds a
            negative size; or ``batch_size`` is not positive.
    """
    if batch_size < 1:
        raise ShapeSpecError(f"batch_size must be >= 1, got {batch_size}")
    given = dict(input_shapes or {})
    values = dict(dim_values or {})
    for name, v in values.items():
        if int(v) < 0:
            raise ShapeSpecError(f"dimension {name!r} must be >= 0, got {v}")
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise ShapeSpecError(
            f"no model input is named {', '.join(map(repr, unknown))}; inputs are: "
            + ", ".join(repr(n) for n in declared)
        )
    out: dict[str, list[int]] = {}
    for name, dims in declared.items():
        if name in given:
            shape = [int(d) for d in given[name]]
            if dims is not None and len(dims) != len(shape):
                raise ShapeSpecError(
                    f"input {name!r} has rank {len(dims)} ({_fmt(dims)}) but the given shape "
                    f"{shape} has rank {len(shape)}"
                )
            if any(d <= 0 for d in shape):
                raise ShapeSpecError(f"input {name!r}: sizes must be positive, got {shape}")
            for i, (decl, size) in enumerate(zip(dims or [], shape, strict=False)):
                if isinstance(decl, str) and decl:
                    values.setdefault(decl, size)
                elif _is_fixed(decl) and decl != size:
                    raise ShapeSpecError(
                        f"input {name!r}: dimension {i} is fixed to {decl} in the model, got {size}"
                    )
            out[name] = shape
    for name, dims in declared.items():
        if name in given or dims is None:
            continue
        shape = []
        for i, d in enumerate(dims):
            if _is_fixed(d):
                shape.append(int(d))  # type: ignore[arg-type]
            elif isinstance(d, str) and d and d in values:
                shape.append(int(values[d]))
            else:
                size = _default_for(i, len(dims), batch_size)
                if isinstance(d, str) and d:
                    values[d] = size
                shape.append(size)
        out[name] = shape
    return out


def _is_fixed(d: DeclaredDim) -> bool:
    return isinstance(d, int) and not isinstance(d, bool) and d > 0


def _fmt(dims: Sequence[DeclaredDim]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"


def parse_input_shape(spec: str) -> tuple[str, list[int]]:
    """Parse ``"name=1,3,224,224"`` (the CLI's ``--input-shape``) into ``(name, dims)``."""
    name, sep, dims = spec.rpartition("=")
    if not sep or not name:
        raise ShapeSpecError(f"expected NAME=D1,D2,... but got {spec!r}")
    try:
        shape = [int(d) for d in dims.replace("x", ",").split(",") if d.strip() != ""]
    except ValueError as exc:
        raise ShapeSpecError(f"bad dimension in {spec!r}: {exc}") from None
    return name, shape


def parse_dim_value(spec: str) -> tuple[str, int]:
    """Parse ``"seq=64"`` (the CLI's ``--dim``) into ``(name, value)``."""
    name, sep, value = spec.rpartition("=")
    if not sep or not name:
        raise ShapeSpecError(f"expected NAME=VALUE but got {spec!r}")
    try:
        return name, int(value)
    except ValueError:
        raise ShapeSpecError(f"bad value in {spec!r}") from None
