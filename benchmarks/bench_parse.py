"""Featurization speed and memory: graphrec's C++ kernel vs a pure-Python baseline.

For generated models of about 1 MB, 100 MB and 500 MB (big initializers), each
measurement runs in a fresh process and reports wall time of the featurization call
and the process's peak resident memory (VmHWM), together with the peak measured just
before the call (imports done), so the growth caused by the model is visible.

* graphrec: ``graphrec.graph.load(path)`` — memory-mapped decode, shape propagation,
  per-operator costs, graph statistics.
* baseline: ``onnx.load`` + ``onnx.shape_inference.infer_shapes`` + a Python loop that
  computes the same per-node features (FLOPs/MACs, parameters, bytes read/written,
  output elements) and model totals.

Usage::

    .venv/bin/python benchmarks/bench_parse.py [--sizes 1,100,500] [--repeats 3] [--out DIR]

Prints a table and writes ``bench_parse.json`` and ``bench_parse.md`` to ``--out``
(default ``benchmarks/results``). Medians over ``--repeats`` fresh processes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

GENERATE = textwrap.dedent(
    """
    import sys
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    out, mb = sys.argv[1], float(sys.argv[2])
    rng = np.random.default_rng(0)
    nodes, inits = [], []
    # A small conv stem, then a chain of (MatMul, Add, Relu) layers carrying the payload.
    c_in = 3
    x = "image"
    for i, c in enumerate((16, 32, 64)):
        w = numpy_helper.from_array(rng.standard_normal((c, c_in, 3, 3), dtype=np.float32), f"conv{i}.w")
        inits.append(w)
        nodes.append(helper.make_node("Conv", [x, w.name], [f"c{i}"], pads=[1, 1, 1, 1], strides=[2, 2]))
        nodes.append(helper.make_node("Relu", [f"c{i}"], [f"r{i}"]))
        x, c_in = f"r{i}", c
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["gap"]))
    nodes.append(helper.make_node("Flatten", ["gap"], ["flat"]))
    layers = {1: (256, 4), 100: (2048, 6), 500: (4096, 8)}.get(int(mb))
    if layers is None:
        width = 1024
        n = max(1, int(mb * 2**20 / (width * width * 4)))
    else:
        width, n = layers
    w0 = numpy_helper.from_array(rng.standard_normal((64, width), dtype=np.float32), "proj.w")
    inits.append(w0)
    nodes.append(helper.make_node("MatMul", ["flat", w0.name], ["h0"]))
    h = "h0"
    for i in range(n):
        w = numpy_helper.from_array(rng.standard_normal((width, width), dtype=np.float32), f"fc{i}.w")
        b = numpy_helper.from_array(rng.standard_normal((width,), dtype=np.float32), f"fc{i}.b")
        inits += [w, b]
        nodes += [
            helper.make_node("MatMul", [h, w.name], [f"m{i}"]),
            helper.make_node("Add", [f"m{i}", b.name], [f"a{i}"]),
            helper.make_node("Relu", [f"a{i}"], [f"h{i + 1}"]),
        ]
        h = f"h{i + 1}"
    nodes.append(helper.make_node("Softmax", [h], ["probs"], axis=-1))
    g = helper.make_graph(
        nodes,
        "bench",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, 224, 224])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, None)],
        inits,
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(m, out)
    """
)

MEASURE = textwrap.dedent(
    """
    import json, sys, time

    def hwm():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        return 0

    which, path = sys.argv[1], sys.argv[2]
    if which == "graphrec":
        import graphrec.graph as G

        before = hwm()
        t = time.perf_counter()
        g = G.load(path)
        features = (g.node_features.sum(), g.total_flops, g.total_params)
        wall = time.perf_counter() - t
    else:
        import numpy as np
        import onnx
        from onnx import numpy_helper, shape_inference

        before = hwm()
        t = time.perf_counter()
        m = onnx.load(path)
        for i in m.graph.input:
            dims = i.type.tensor_type.shape.dim
            if dims and not dims[0].HasField("dim_value"):
                dims[0].dim_value = 1
        m = shape_inference.infer_shapes(m, data_prop=True)
        shapes = {}
        dtype_size = {1: 4, 7: 8, 10: 2, 11: 8, 6: 4, 3: 1, 2: 1, 9: 1}
        elem = {}
        for vi in list(m.graph.input) + list(m.graph.value_info) + list(m.graph.output):
            t_ = vi.type.tensor_type
            shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else -1 for d in t_.shape.dim]
            elem[vi.name] = t_.elem_type
        params = 0
        for init in m.graph.initializer:
            shapes[init.name] = list(init.dims)
            elem[init.name] = init.data_type
            params += int(np.prod(init.dims))

        def numel(name):
            s = shapes.get(name)
            return -1 if s is None or any(d < 0 for d in s) else int(np.prod(s)) if s else 1

        def nbytes(name):
            n = numel(name)
            return -1 if n < 0 else n * dtype_size.get(elem.get(name, 1), 4)

        rows = []
        for node in m.graph.node:
            ins = [i for i in node.input if i]
            out = node.output[0]
            macs = 0
            if node.op_type == "Conv":
                w = shapes[ins[1]]
                macs = numel(out) * int(np.prod(w[1:]))
            elif node.op_type in ("MatMul", "Gemm"):
                a, b = shapes[ins[0]], shapes[ins[1]]
                macs = numel(out) * a[-1]
            flops = 2 * macs if macs else max(numel(out), 0)
            w_params = sum(numel(i) for i in ins if i in {x.name for x in m.graph.initializer})
            read = sum(max(nbytes(i), 0) for i in ins)
            written = sum(max(nbytes(o), 0) for o in node.output)
            rows.append((flops, macs, w_params, read, written, numel(out), flops / max(read + written, 1)))
        arr = np.array(rows, dtype=np.float64)
        features = (arr.sum(), arr[:, 0].sum(), params)
        wall = time.perf_counter() - t
    print(json.dumps({"wall_s": wall, "peak_rss": hwm(), "rss_before": before, "check": float(features[1])}))
    """
)


def _run(code: str, *args: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True
    )
    last: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return last


def main() -> None:
    """Generate the models, measure both featurizers, print and save the table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1,100,500", help="model sizes in MB (comma-separated)")
    ap.add_argument("--repeats", type=int, default=3, help="fresh processes per measurement")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="graphrec-bench-parse-") as tmp:
        for mb in [float(s) for s in args.sizes.split(",")]:
            path = Path(tmp) / f"model_{mb:g}mb.onnx"
            subprocess.run([sys.executable, "-c", GENERATE, str(path), str(mb)], check=True)
            size = path.stat().st_size
            res: dict[str, list[dict[str, Any]]] = {"graphrec": [], "baseline": []}
            for _ in range(args.repeats):
                for which in ("graphrec", "baseline"):  # interleaved
                    res[which].append(_run(MEASURE, which, str(path)))
            med = {
                w: {
                    k: statistics.median(r[k] for r in runs)
                    for k in ("wall_s", "peak_rss", "rss_before", "check")
                }
                for w, runs in res.items()
            }
            row = {
                "file_mb": size / 2**20,
                "graphrec_s": med["graphrec"]["wall_s"],
                "baseline_s": med["baseline"]["wall_s"],
                "speedup": med["baseline"]["wall_s"] / med["graphrec"]["wall_s"],
                "graphrec_peak_mb": med["graphrec"]["peak_rss"] / 2**20,
                "graphrec_growth_mb": (med["graphrec"]["peak_rss"] - med["graphrec"]["rss_before"])
                / 2**20,
                "baseline_peak_mb": med["baseline"]["peak_rss"] / 2**20,
                "baseline_growth_mb": (med["baseline"]["peak_rss"] - med["baseline"]["rss_before"])
                / 2**20,
                "flops_graphrec": med["graphrec"]["check"],
                "flops_baseline": med["baseline"]["check"],
                "repeats": args.repeats,
            }
            rows.append(row)
            print(json.dumps(row))
    header = (
        "| model file | graphrec | baseline | speed-up | graphrec peak RSS (growth) "
        "| baseline peak RSS (growth) |\n|---|---|---|---|---|---|"
    )
    lines = [header]
    for r in rows:
        lines.append(
            f"| {r['file_mb']:.1f} MB | {1000 * r['graphrec_s']:.1f} ms | {1000 * r['baseline_s']:.0f} ms "
            f"| {r['speedup']:.0f}x | {r['graphrec_peak_mb']:.0f} MB (+{r['graphrec_growth_mb']:.1f}) "
            f"| {r['baseline_peak_mb']:.0f} MB (+{r['baseline_growth_mb']:.0f}) |"
        )
    table = "\n".join(lines)
    print(table)
    (args.out / "bench_parse.json").write_text(json.dumps(rows, indent=2))
    (args.out / "bench_parse.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
