"""Concrete inputs for a model: shapes by graphrec's one rule, and input data.

Every runtime must see the same concrete input shapes, and other parts of graphrec
(the graph features, the recommender) must assume the same shapes as the benchmark.
The rule lives in :mod:`graphrec.graph.shapes` (:func:`resolve_input_shapes`);
:func:`resolve_shape` applies it to a single input.

Example:
    >>> resolve_shape("x", ["N", 3, None, None])
    [1, 3, 224, 224]
    >>> resolve_shape("ids", ["batch", "seq"], dim_values={"seq": 128}, batch_size=2)
    [2, 128]
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from graphrec.errors import ModelFormatError, ModelLoadError, ShapeSpecError
from graphrec.graph.shapes import DeclaredDim, resolve_input_shapes
from graphrec.runtimes.base import ModelSpec, TorchSource

__all__ = [
    "file_sha256",
    "make_inputs",
    "model_spec",
    "resolve_shape",
    "torch_source_for",
    "torch_source_or_conversion",
]

Dim = DeclaredDim


def resolve_shape(
    name: str,
    shape: Sequence[Dim],
    *,
    overrides: Mapping[str, Sequence[int]] | None = None,
    dim_values: Mapping[str, int] | None = None,
    batch_size: int = 1,
) -> list[int]:
    """Resolve one input's shape to concrete positive integers (see :mod:`graphrec.graph.shapes`).

    Args:
        name: Input name.
        shape: Declared shape: ints for fixed dims, a string for a symbolic dim,
            ``None`` (or an int <= 0) for an unnamed dynamic dim.
        overrides: Explicit full shapes by input name (only ``name``'s is used).
        dim_values: Values for symbolic dimension names.
        batch_size: Value of a dynamic first dimension.

    Raises:
        ShapeSpecError: An override disagrees with the declared rank or a fixed dim.
    """
    given = {name: overrides[name]} if overrides and name in overrides else None
    return resolve_input_shapes(
        {name: list(shape)}, given, batch_size=batch_size, dim_values=dim_values
    )[name]


#: Digests already computed in this process, by (path, device, inode, size, mtime_ns).
_SHA_CACHE: dict[tuple[str, int, int, int, int], str] = {}


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes (read in chunks).

    A file read again with the same inode, size and modification time is not hashed
    again in the same process (the rule ``git`` uses for its index).
    """
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    got = _SHA_CACHE.get(key)
    if got is not None:
        return got
    h = hashlib.sha256()
    with p.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    if len(_SHA_CACHE) > 4096:
        _SHA_CACHE.clear()
    _SHA_CACHE[key] = digest = h.hexdigest()
    return digest


def torch_source_for(onnx_path: str | Path) -> TorchSource | None:
    """Read the optional torch-source sidecar of ``model.onnx``: ``model.torch.json``.

    The sidecar holds ``{"factory": "pkg.module:callable", "kwargs": {...}}``; a relative
    ``file.py:callable`` factory is resolved against the sidecar's folder.

    Raises:
        ModelLoadError: The sidecar exists but is malformed.
    """
    p = Path(onnx_path)
    side = p.with_suffix(".torch.json")
    if not side.is_file():
        return None
    try:
        data = json.loads(side.read_text())
        factory = str(data["factory"])
        kwargs = dict(data.get("kwargs", {}))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelLoadError(side, f"bad torch-source sidecar: {exc}") from None
    mod, sep, attr = factory.rpartition(":")
    if sep and mod.endswith(".py") and not Path(mod).is_absolute():
        factory = f"{(side.parent / mod).resolve()}:{attr}"
    return TorchSource(factory, kwargs)


def torch_source_or_conversion(onnx_path: str | Path) -> TorchSource:
    """The sidecar's torch source, or else a conversion of the ONNX file itself.

    A bare ONNX file gets graphrec's ONNX -> torch converter
    (:mod:`graphrec.runtimes.convert`), whose module is checked against onnxruntime
    before LiteRT, ExecuTorch or torch convert it further.

    Raises:
        ModelLoadError: The sidecar exists but is malformed.
    """
    from graphrec.runtimes.convert import conversion_source

    source = torch_source_for(onnx_path)
    return source if source is not None else conversion_source(onnx_path)


_ONNX_DTYPES = {
    1: "float32",
    2: "uint8",
    3: "int8",
    4: "uint16",
    5: "int16",
    6: "int32",
    7: "int64",
    9: "bool",
    10: "float16",
    11: "float64",
    12: "uint32",
    13: "uint64",
}


def model_spec(
    onnx_path: str | Path,
    *,
    overrides: Mapping[str, Sequence[int]] | None = None,
    dim_values: Mapping[str, int] | None = None,
    batch_size: int = 1,
    torch_source: TorchSource | None = None,
    input_values: Mapping[str, float] | None = None,
) -> ModelSpec:
    """Describe an ONNX file for benchmarking: identity, concrete inputs, outputs.

    Only the graph's declarations are read (``onnx.load`` without external weights).
    The torch source defaults to the file's ``.torch.json`` sidecar, else to a conversion
    of the file (:func:`torch_source_or_conversion`). ``input_values``
    fills the named inputs with one constant (see :func:`make_inputs`).

    Raises:
        ModelLoadError: The file is missing.
        ModelFormatError: The file is not a readable ONNX model or has unsupported inputs.
    """
    p = Path(onnx_path)
    if not p.is_file():
        raise ModelLoadError(p, "no such file")
    from graphrec.runtimes.tflite_models import is_tflite_file, tflite_model_spec

    if is_tflite_file(p):  # a .tflite file is benchmarked as itself
        return tflite_model_spec(
            p, overrides=overrides, batch_size=batch_size, input_values=input_values
        )
    try:
        import onnx
    except ImportError as exc:  # pragma: no cover - onnx is a dependency of the bench extras
        raise ModelLoadError(p, f"the 'onnx' package is needed to read inputs ({exc})") from None
    try:
        proto = onnx.load(str(p), load_external_data=False)
    except Exception as exc:
        raise ModelFormatError(p, f"not a readable ONNX model: {exc}") from None
    inits = {t.name for t in proto.graph.initializer}
    names: list[str] = []
    declared: dict[str, list[Dim]] = {}
    dtypes: list[str] = []
    for vi in proto.graph.input:
        if vi.name in inits:
            continue
        tt = vi.type.tensor_type
        if not vi.type.HasField("tensor_type"):
            raise ModelFormatError(p, f"input {vi.name!r} is not a tensor")
        dtype = _ONNX_DTYPES.get(tt.elem_type)
        if dtype is None:
            raise ModelFormatError(
                p, f"input {vi.name!r} has unsupported element type {tt.elem_type}"
            )
        dims: list[Dim] = []
        for d in tt.shape.dim:
            if d.HasField("dim_value") and d.dim_value > 0:
                dims.append(int(d.dim_value))
            elif d.HasField("dim_param") and d.dim_param:
                dims.append(d.dim_param)
            else:
                dims.append(None)
        names.append(vi.name)
        declared[vi.name] = dims
        dtypes.append(dtype)
    for what, given in (("shape", overrides), ("value", input_values)):
        unknown = sorted(set(given or ()) - set(names))
        if unknown:
            raise ShapeSpecError(
                f"{p}: no input named {unknown} (for a {what}); inputs are {names}"
            )
    # What the graph says about the inputs (graphrec.runtimes.input_infer) fills the
    # sizes and values the caller left open; the caller's own always win.
    from graphrec.runtimes.input_infer import infer_inputs

    inferred = infer_inputs(
        proto,
        declared=declared,
        dtypes=dict(zip(names, dtypes, strict=True)),
        overrides=overrides,
        input_values=input_values,
        dim_values=dim_values,
        batch_size=batch_size,
        path=p,
    )
    overrides = {**inferred.shapes, **(overrides or {})}
    input_values = {**inferred.values, **(input_values or {})}
    # All inputs at once, so inputs sharing a symbolic dim (ids/mask "seq") agree.
    resolved = resolve_input_shapes(
        declared, overrides, batch_size=batch_size, dim_values=dim_values
    )
    shapes = [resolved[n] for n in names]
    outputs = [o.name for o in proto.graph.output]
    return ModelSpec(
        onnx_path=p.resolve(),
        sha256=file_sha256(p),
        name=p.stem,
        input_names=names,
        input_shapes=shapes,
        input_dtypes=dtypes,
        output_names=outputs,
        torch_source=torch_source if torch_source is not None else torch_source_or_conversion(p),
        input_values={str(k): float(v) for k, v in (input_values or {}).items()},
    )


def make_inputs(model: ModelSpec, *, seed: int = 0) -> list[np.ndarray]:
    """Deterministic input data for ``model``.

    Floats are standard normal; integers are 0 or 1 (valid as token ids and indices for
    any table); booleans are random. Inputs named in ``model.input_values`` hold that
    constant instead (a model that checks its sample rate needs 16000, not 0 or 1).
    """
    rng = np.random.default_rng(seed)
    arrays: list[np.ndarray] = []
    fixed = model.input_values or {}
    for name, shape, dtype in zip(
        model.input_names, model.input_shapes, model.input_dtypes, strict=True
    ):
        dt = np.dtype(dtype)
        if name in fixed:
            arr = np.full(shape, fixed[name]).astype(dt)
        elif dt.kind == "f":
            arr = rng.standard_normal(shape).astype(dt)
        elif dt.kind in "iu":
            arr = rng.integers(0, 2, size=shape).astype(dt)
        elif dt.kind == "b":
            arr = rng.integers(0, 2, size=shape).astype(bool)
        else:  # pragma: no cover - filtered by model_spec
            raise ModelFormatError(model.onnx_path, f"cannot make inputs of dtype {dtype}")
        arrays.append(np.ascontiguousarray(arr))
    return arrays
