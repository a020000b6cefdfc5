"""Harness overhead and repeatability of ``graphrec bench``.

Measures, on the same models in the same run:

* **in-process baseline**: an onnxruntime session timed by the same protocol loop
  (:func:`graphrec.bench.protocol.measure_latency`) inside this process, repeated
  ``--repeat`` times;
* **harness**: :func:`graphrec.bench.run_campaign` with ``repeat`` rounds (fresh worker
  processes each round) for the same onnxruntime candidate and an OpenVINO candidate.

It prints and saves (``benchmarks/bench_harness_results.json``):

* the ratio of the harness's median latency to the in-process median (timing happens
  inside the worker, so this should be ~1: the worker adds no per-inference cost);
* the harness's fixed cost per measurement: campaign wall time per row minus the time
  the worker spent measuring (worker start, IPC, reference, store commits);
* repeatability: the coefficient of variation (CV) of the repeated medians, in-process
  and across worker processes, and the max/min spread.

Usage: ``python benchmarks/bench_harness.py [--repeat 5] [--max-time 0.5]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from graphrec.bench.harness import run_campaign
from graphrec.bench.protocol import MeasureConfig, measure_latency
from graphrec.bench.store import ResultStore
from graphrec.device import DeviceProfile
from graphrec.runtimes.base import Candidate
from graphrec.runtimes.inputs import make_inputs, model_spec
from graphrec.runtimes.registry import get_adapter

ORT = "onnxruntime/cpu/fp32/opt=all/threads=1"
OPENVINO = "openvino/cpu/fp32/hint=latency/threads=1"


def _save(model: onnx.ModelProto, path: Path) -> Path:
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def make_mlp(path: Path) -> Path:
    """A 3-layer MLP on a 1x256 input (~0.2 MFLOP: Python call overhead dominates)."""
    rng = np.random.default_rng(0)
    inits, nodes, prev = [], [], "x"
    for i, (n_in, n_out) in enumerate([(256, 256), (256, 256), (256, 10)]):
        inits.append(
            numpy_helper.from_array(
                rng.standard_normal((n_in, n_out)).astype(np.float32) * 0.05, f"w{i}"
            )
        )
        nodes.append(helper.make_node("MatMul", [prev, f"w{i}"], [f"m{i}"]))
        nodes.append(helper.make_node("Relu", [f"m{i}"], [f"h{i}"]))
        prev = f"h{i}"
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 256])],
        [helper.make_tensor_value_info(prev, TensorProto.FLOAT, [1, 10])],
        inits,
    )
    return _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def make_convnet(path: Path) -> Path:
    """Four 3x3 convolutions on a 1x16x64x64 input (~75 MFLOP: compute dominates)."""
    rng = np.random.default_rng(1)
    inits, nodes, prev = [], [], "x"
    for i in range(4):
        inits.append(
            numpy_helper.from_array(
                rng.standard_normal((16, 16, 3, 3)).astype(np.float32) * 0.1, f"w{i}"
            )
        )
        nodes.append(helper.make_node("Conv", [prev, f"w{i}"], [f"c{i}"], pads=[1, 1, 1, 1]))
        nodes.append(helper.make_node("Relu", [f"c{i}"], [f"r{i}"]))
        prev = f"r{i}"
    graph = helper.make_graph(
        nodes,
        "convnet",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 64, 64])],
        [helper.make_tensor_value_info(prev, TensorProto.FLOAT, [1, 16, 64, 64])],
        inits,
    )
    return _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def _cv(values: list[float]) -> float:
    return statistics.stdev(values) / statistics.mean(values) if len(values) > 1 else 0.0


def in_process_medians(path: Path, repeat: int, config: MeasureConfig) -> list[float]:
    """Median latency of the onnxruntime candidate timed in this process, ``repeat`` times."""
    spec = model_spec(path)
    adapter = get_adapter("onnxruntime")
    cand = Candidate.parse(ORT)
    inputs = make_inputs(spec)
    medians = []
    for _ in range(repeat):
        session = adapter.load(spec.onnx_path, spec, cand)
        adapter.run(session, inputs)

        def once(s: object = session) -> object:
            return adapter.run(s, inputs)

        medians.append(measure_latency(once, config).p50_ms)
    return medians


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="rounds / in-process repeats")
    parser.add_argument("--max-time", type=float, default=0.5, help="max seconds of warm runs")
    parser.add_argument(
        "--out", default=str(Path(__file__).with_name("bench_harness_results.json"))
    )
    args = parser.parse_args()

    config = MeasureConfig(max_time_s=args.max_time, min_time_s=min(0.3, args.max_time))
    device = DeviceProfile.detect(probe_gpus=False)
    work = Path(tempfile.mkdtemp(prefix="graphrec-bench-harness-"))
    models = {"mlp": make_mlp(work / "mlp.onnx"), "convnet": make_convnet(work / "convnet.onnx")}
    candidates = [ORT]
    if get_adapter("openvino").is_available():
        candidates.append(OPENVINO)

    results: dict[str, Any] = {
        "device": device.to_dict(),
        "device_id": device.device_id,
        "repeat": args.repeat,
        "max_time_s": args.max_time,
        "models": {},
    }
    t0 = time.perf_counter()
    with ResultStore(work / "bench.sqlite") as store:
        rows = run_campaign(
            list(models.values()),
            store=store,
            device=device,
            patterns=candidates,
            threads=(1,),
            repeat=args.repeat,
            config=config,
            cache_dir=work / "cache",
        )
    campaign_s = time.perf_counter() - t0
    worker_s = sum(float(r.get("wall_s") or 0.0) for r in rows)
    inproc = {name: in_process_medians(path, args.repeat, config) for name, path in models.items()}

    print(
        f"device: {device.name} ({device.device_id}), {args.repeat} rounds, max {args.max_time} s warm runs"
    )
    header = f"{'model':8s} {'candidate':46s} {'median ms':>10s} {'CV':>7s} {'max/min':>8s} {'vs in-proc':>10s}"
    print(header)
    print("-" * len(header))
    for name in models:
        entry: dict[str, Any] = {}
        base = inproc[name]
        base_med = statistics.median(base)
        entry["in_process"] = {"medians_ms": base, "median_ms": base_med, "cv": _cv(base)}
        print(
            f"{name:8s} {'in-process ' + ORT:46s} {base_med:10.4f} {_cv(base):7.1%} "
            f"{max(base) / min(base):8.2f} {1.0:10.2f}"
        )
        for cid in candidates:
            meds = [
                float(r["p50_ms"])
                for r in rows
                if r["model_name"] == name and r["candidate_id"] == cid and r.get("p50_ms")
            ]
            if not meds:
                continue
            med = statistics.median(meds)
            entry[cid] = {
                "medians_ms": meds,
                "median_ms": med,
                "cv": _cv(meds),
                "ratio_vs_in_process": med / base_med,
            }
            print(
                f"{name:8s} {cid:46s} {med:10.4f} {_cv(meds):7.1%} {max(meds) / min(meds):8.2f} "
                f"{med / base_med:10.2f}"
            )
        results["models"][name] = entry
    fixed = (campaign_s - worker_s) / max(len(rows), 1)
    results.update(
        campaign_wall_s=campaign_s,
        worker_measure_s=worker_s,
        rows=len(rows),
        fixed_overhead_s_per_row=fixed,
    )
    print(
        f"\ncampaign: {len(rows)} rows in {campaign_s:.1f} s; workers measured for {worker_s:.1f} s; "
        f"harness fixed cost {fixed:.2f} s per row (worker start, reference, IPC, store)"
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"saved {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
