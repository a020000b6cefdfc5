"""Detect each runtime's fusion against the module cut, from the runtime's own profile.

* OpenVINO: the compiled (runtime) model lists every executed layer with the original
  ONNX layers merged into it (``originalLayersNames``).
* onnxruntime: the profiler (``SessionOptions.enable_profiling``) names every executed
  kernel by the tensor it writes; an ONNX operator whose output no kernel writes was
  fused into a neighbour.

:func:`fusion_check` compares both with :func:`~graphrec.recommender.modules.vocab.detect_modules`:
how many executed layers stay inside one module, how many span several (a fusion across
module boundaries the cut does not model), and how many modules run as several layers.

Example:
    >>> fusion_check("model.onnx")["openvino"]["layers_within_one_module"]  # doctest: +SKIP
    0.97
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["fusion_check", "onnxruntime_kernels", "openvino_layers"]


def openvino_layers(path: str | Path) -> list[tuple[str, list[str]]]:
    """``(layer type, original layer names)`` of every executed layer (fp32, 1 thread)."""
    import openvino as ov

    core = ov.Core()
    config = {
        "INFERENCE_NUM_THREADS": 1,
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_PRECISION_HINT": "f32",
    }
    compiled = core.compile_model(core.read_model(str(path)), "CPU", config)
    out = []
    for op in compiled.get_runtime_model().get_ordered_ops():
        rt = op.get_rt_info()
        kind = rt["layerType"].astype(str) if "layerType" in rt else ""
        if kind in ("Input", "Output", "Const", "Reorder", ""):
            continue
        names = rt["originalLayersNames"].astype(str) if "originalLayersNames" in rt else ""
        out.append((kind, [n for n in names.split(",") if n]))
    return out


def onnxruntime_kernels(path: str | Path, feeds: dict[str, np.ndarray]) -> list[tuple[str, str]]:
    """``(op name, output tensor name)`` of every kernel one profiled run executed."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.enable_profiling = True
    so.intra_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    with tempfile.TemporaryDirectory() as tmp:
        so.profile_file_prefix = os.path.join(tmp, "prof")
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        sess.run(None, feeds)
        events = json.loads(Path(sess.end_profiling()).read_text())
    out = []
    for e in events:
        name = str(e.get("name", ""))
        if e.get("cat") == "Node" and name.endswith("_kernel_time"):
            tensor = name[: -len("_kernel_time")]
            for suffix in ("_nchwc", "_reorder"):
                tensor = tensor.removesuffix(suffix)
            out.append((str(e.get("args", {}).get("op_name", "")), tensor))
    return out


def fusion_check(path: str | Path) -> dict[str, Any]:
    """Agreement of the module cut with what OpenVINO and onnxruntime execute."""
    from graphrec import graph
    from graphrec.recommender.modules.vocab import detect_modules
    from graphrec.runtimes.inputs import make_inputs, model_spec

    g = graph.load(path)
    mods = detect_modules(g)
    node_mod: dict[int, int] = {i: k for k, m in enumerate(mods) for i in m.nodes}
    by_name = {n: i for i, n in enumerate(g.node_names)}
    out: dict[str, Any] = {"modules": len(mods)}

    # OpenVINO: executed layer -> the modules its original layers belong to
    layers = openvino_layers(path)
    spans: list[int] = []
    per_mod: Counter[int] = Counter()
    crossings: Counter[str] = Counter()
    for _kind, names in layers:
        touched = set()
        for n in names:
            i = by_name.get(n, by_name.get(n.rsplit("/", 1)[0]))
            if i is not None and i in node_mod:
                touched.add(node_mod[i])
        if not touched:
            continue
        spans.append(len(touched))
        for k in touched:
            per_mod[k] += 1
        if len(touched) > 1:
            crossings["+".join(sorted(mods[k].module_type for k in touched))] += 1
    out["openvino"] = {
        "layers": len(spans),
        "layers_within_one_module": float(np.mean([s == 1 for s in spans])) if spans else None,
        "modules_split": float(np.mean([per_mod[k] > 1 for k in range(len(mods))]))
        if mods
        else None,
        "cross_module_fusions": dict(crossings.most_common(6)),
    }

    # onnxruntime: which module outputs / interiors a kernel writes
    spec = model_spec(Path(path))
    feeds_list = make_inputs(spec)
    feeds = {n: a for n, a in zip(spec.input_names, feeds_list, strict=False)}
    kernels = onnxruntime_kernels(path, feeds)
    producer = {
        g.tensor_names[int(t)]: i
        for i in range(g.num_nodes)
        for t in g.output_tensor[g.output_ptr[i] : g.output_ptr[i + 1]]
    }
    heads: Counter[int] = Counter()
    mapped = 0
    for _op, name in kernels:
        i = by_name.get(name, producer.get(name, by_name.get(name.rsplit("/", 1)[0])))
        if i is None:
            continue  # a kernel the optimiser inserted (reorder, reshape around a Gemm)
        mapped += 1
        if i in node_mod:
            heads[node_mod[i]] += 1
    out["onnxruntime"] = {
        "kernels": len(kernels),
        "kernels_mapped": mapped / max(len(kernels), 1),
        "modules_split": float(np.mean([heads[k] > 1 for k in range(len(mods))])) if mods else None,
        "modules_without_own_kernel": float(np.mean([heads[k] == 0 for k in range(len(mods))]))
        if mods
        else None,
    }
    return out
