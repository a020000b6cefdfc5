"""ONNX-level rewrites that make a clean torch export look like other converters' output.

Each rewrite keeps the function the graph computes (the torch module and its
``.torch.json`` sidecar still describe the model) and is deterministic in its arguments:

* :func:`weights_to_constants` moves every initializer into a ``Constant`` node (what
  Paddle2ONNX, older tf2onnx and hand-edited graphs do; onnxruntime's quantiser then
  needs ``quant_pre_process`` first);
* :func:`identity_chains` threads chains of ``Identity`` nodes into a seeded share of the
  edges (left behind by converters for dropout, assign and scale-by-one ops);
* :func:`symbolic_dims` turns fixed input dimensions into named ones (dynamic batch,
  width, height) and re-infers the output shapes;
* :func:`canonical_names` renames nodes and inner tensors by order (deterministic
  exports of TorchScript-compiled modules).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np


def _load(data: bytes) -> Any:
    import onnx

    return onnx.load_from_string(data)


def _dump(model: Any) -> bytes:
    return bytes(model.SerializeToString())


def weights_to_constants(model: Any) -> None:
    """Replace every initializer of ``model``'s main graph by a ``Constant`` node (in place).

    The Constant nodes come first, in initializer order, and keep the initializer names,
    so the graph stays topologically sorted and its consumers are untouched.
    """
    from onnx import helper

    graph = model.graph
    inits = list(graph.initializer)
    if not inits:
        return
    input_names = {i.name for i in graph.input}
    consts = [
        helper.make_node("Constant", [], [t.name], name=f"const_{i}", value=t)
        for i, t in enumerate(inits)
        if t.name not in input_names
    ]
    kept = [t for t in inits if t.name in input_names]
    nodes = consts + list(graph.node)
    del graph.initializer[:]
    graph.initializer.extend(kept)
    del graph.node[:]
    graph.node.extend(nodes)


def identity_chains(model: Any, seed: int, share: float, max_len: int) -> int:
    """Insert chains of 1..``max_len`` ``Identity`` nodes after a ``share`` of node outputs.

    Only outputs that feed other nodes and are not graph outputs are chosen; each chosen
    edge ``a -> consumers`` becomes ``a -> Identity -> ... -> consumers``. The choice is
    drawn from a NumPy generator seeded by ``seed`` (in place).

    Returns:
        The number of Identity nodes inserted.
    """
    from onnx import helper

    graph = model.graph
    outputs = {o.name for o in graph.output}
    consumed: set[str] = {i for n in graph.node for i in n.input if i}
    rng = np.random.default_rng(seed)
    new_nodes = []
    renamed: dict[str, str] = {}
    count = 0
    for node in graph.node:
        node_inputs = [renamed.get(i, i) for i in node.input]
        del node.input[:]
        node.input.extend(node_inputs)
        new_nodes.append(node)
        for out in node.output:
            if not out or out in outputs or out not in consumed:
                continue
            if rng.random() >= share:
                continue
            length = int(rng.integers(1, max_len + 1))
            prev = out
            for k in range(length):
                nxt = f"{out}__id{k}"
                new_nodes.append(
                    helper.make_node("Identity", [prev], [nxt], name=f"{out}__identity{k}")
                )
                prev = nxt
                count += 1
            renamed[out] = prev
    del graph.node[:]
    graph.node.extend(new_nodes)
    return count


def symbolic_dims(model: Any, dims: Mapping[str, Mapping[int, str]]) -> None:
    """Name input dimensions (``{"input": {0: "batch", 3: "width"}}``) and re-infer outputs.

    The graph's ``value_info`` is dropped (it held the traced static shapes); output
    dimensions are re-inferred with ONNX shape inference and left unknown where
    inference cannot tell (in place).

    Raises:
        ValueError: An input or axis named in ``dims`` does not exist.
    """
    import onnx

    graph = model.graph
    by_name = {i.name: i for i in graph.input}
    for name, axes in dims.items():
        if name not in by_name:
            raise ValueError(f"no graph input named {name!r}")
        shape = by_name[name].type.tensor_type.shape
        for axis, label in axes.items():
            if not 0 <= axis < len(shape.dim):
                raise ValueError(f"input {name!r} has no axis {axis}")
            shape.dim[axis].Clear()
            shape.dim[axis].dim_param = label
    del graph.value_info[:]
    for out in graph.output:  # same rank, every dimension unknown until re-inferred
        for d in out.type.tensor_type.shape.dim:
            d.Clear()
    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {v.name: v.type.tensor_type.shape for v in inferred.graph.output}
    for out in graph.output:
        got = shapes.get(out.name)
        have = out.type.tensor_type.shape
        if got is not None and len(got.dim) == len(have.dim):
            have.CopyFrom(got)


def canonical_names(model: Any) -> None:
    """Rename nodes and inner tensors by their order of appearance, subgraphs included.

    TorchScript-compiled modules export with scope-derived names that depend on what the
    process compiled before (the first export of a class carries module paths, later
    ones do not); canonical names make their export bytes the same in every process.
    Graph inputs, graph outputs and initializers of the main graph keep their names
    (in place).
    """
    graph = model.graph
    keep = {i.name for i in graph.input} | {o.name for o in graph.output}
    keep |= {t.name for t in graph.initializer}
    mapping: dict[str, str] = {}
    counter = {"node": 0}

    def define(name: str) -> None:
        if name and name not in keep and name not in mapping:
            mapping[name] = f"v{len(mapping)}"

    def collect(g: Any, top: bool) -> None:
        if not top:
            for v in list(g.input) + list(g.initializer):
                define(v.name)
        for node in g.node:
            for out in node.output:
                define(out)
            for a in node.attribute:
                for sub in [a.g] if a.type == a.GRAPH else list(a.graphs):
                    collect(sub, False)

    def rename(g: Any) -> None:
        for coll in (g.input, g.output, g.value_info, g.initializer):
            for v in coll:
                v.name = mapping.get(v.name, v.name)
        for node in g.node:
            node.name = f"{node.op_type}_{counter['node']}"
            counter["node"] += 1
            ins = [mapping.get(i, i) for i in node.input]
            outs = [mapping.get(o, o) for o in node.output]
            del node.input[:]
            node.input.extend(ins)
            del node.output[:]
            node.output.extend(outs)
            for a in node.attribute:
                for sub in [a.g] if a.type == a.GRAPH else list(a.graphs):
                    rename(sub)

    collect(graph, True)
    rename(graph)


def apply(
    data: bytes,
    *,
    constants: bool = False,
    identity: tuple[int, float, int] | None = None,
    dynamic: Mapping[str, Mapping[int, str]] | None = None,
    canonical: bool = False,
) -> bytes:
    """Apply the selected rewrites to serialized ONNX ``data`` and serialize the result.

    Args:
        data: The ONNX model bytes.
        constants: Move initializers into Constant nodes.
        identity: ``(seed, share, max_len)`` for :func:`identity_chains`.
        dynamic: Input dimensions to name (see :func:`symbolic_dims`).
        canonical: Rename nodes and inner tensors canonically (see :func:`canonical_names`).
    """
    model = _load(data)
    if canonical:
        canonical_names(model)
    if identity is not None:
        identity_chains(model, *identity)
    if constants:
        weights_to_constants(model)
    if dynamic:
        symbolic_dims(model, dynamic)
    return _dump(model)
