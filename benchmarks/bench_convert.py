"""ONNX -> torch conversion (graphrec-onnx2torch): coverage and what it costs at run time.

Part 1, coverage (in this process): every model of a zoo sample and of the real-model
set is converted and checked against onnxruntime on the benchmark's inputs; outcome per
model: ``ok``, ``convert_failed`` (the operators without a rule), ``wrong_output`` or
``reference_failed`` (onnxruntime itself rejects the inputs: nothing to check against).

Part 2, runtimes (the harness, isolated workers): tiny zoo models, each once with its
``.torch.json`` sidecar (the original module) and once as a bare copy (the converted
module), on LiteRT, ExecuTorch and torch (eager, TorchScript) at one thread; plus the
smallest convertible real models as bare files. Reported: ``ok`` share per runtime and
route, and the latency ratio conversion / sidecar per runtime (median and range).

    nice -n 19 .venv/bin/python benchmarks/bench_convert.py [--zoo-seeds 3] [--families ...]

Writes benchmarks/reports/bench_convert.{json,md}. The machine is shared and noisy: the
ratios are of single harness rounds, interleaved in one campaign.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
REPORTS = ROOT / "benchmarks" / "reports"
RUNTIME_CANDIDATES = [
    "litert/xnnpack/fp32/threads=1",
    "executorch/xnnpack/fp32/threads=1",
    "torch/eager/fp32/threads=1",
    "torch/torchscript/fp32/threads=1",
]


def _convert_one(spec: Any) -> dict[str, Any]:
    from graphrec.runtimes.convert import (
        ConversionError,
        ConversionMismatchError,
        check_conversion,
        onnx_torch_module,
        unsupported_ops,
    )

    out: dict[str, Any] = {"model": spec.name}
    t0 = time.perf_counter()
    try:
        import onnx

        proto = onnx.load(str(spec.onnx_path), load_external_data=False)
        missing = unsupported_ops(proto)
        if missing:
            return {**out, "status": "convert_failed", "missing_ops": missing}
        module = onnx_torch_module(str(spec.onnx_path))
        out["convert_ms"] = (time.perf_counter() - t0) * 1000
        try:
            check_conversion(module, spec)
        except ConversionMismatchError as exc:
            return {**out, "status": "wrong_output", "error": str(exc)[-300:]}
        except ConversionError as exc:
            return {**out, "status": "convert_failed", "error": str(exc)[-300:]}
        return {**out, "status": "ok"}
    except ConversionError as exc:
        return {**out, "status": "convert_failed", "error": str(exc)[-300:]}
    except Exception as exc:  # onnxruntime rejecting the reference run, mostly
        text = f"{type(exc).__name__}: {exc}"
        status = "reference_failed" if "onnxruntime" in text or "ONNXRuntime" in text else "crashed"
        return {**out, "status": status, "error": text[-300:]}


def coverage(zoo_seeds: int) -> dict[str, Any]:
    from graphrec.runtimes.inputs import model_spec
    from graphrec.zoo.real import load_manifest

    zoo_dir = ROOT / "runs" / "zoo"
    zoo = sorted(
        p
        for p in zoo_dir.glob("*-s*.onnx")
        if "int8" not in p.name and int(p.stem.rsplit("-s", 1)[1]) < zoo_seeds
    )
    rows: dict[str, list[dict[str, Any]]] = {"zoo": [], "real": []}
    for p in zoo:
        r = _convert_one(model_spec(p))
        r["family"] = p.stem.rsplit("-s", 1)[0]
        rows["zoo"].append(r)
        print("zoo ", r["model"], r["status"], flush=True)
    real_dir = ROOT / "runs" / "real" / "models"
    for m in load_manifest().models:
        path = real_dir / m.relpath
        if not path.is_file():
            rows["real"].append({"model": m.id, "status": "missing"})
            continue
        shapes = {k: v["shape"] for k, v in m.inputs.items() if "shape" in v}
        values = {k: v["value"] for k, v in m.inputs.items() if "value" in v}
        try:
            spec = model_spec(path, overrides=shapes or None, input_values=values or None)
        except Exception as exc:
            rows["real"].append({"model": m.id, "status": "spec_failed", "error": str(exc)[-200:]})
            continue
        spec.name = m.id
        r = _convert_one(spec)
        r["split"] = m.split
        r["size_bytes"] = m.size_bytes
        r["path"] = str(path)
        rows["real"].append(r)
        print("real", r["model"], r["status"], flush=True)
    return rows


def _export_tiny(families: list[str], dest: Path) -> tuple[list[Path], list[Path]]:
    from graphrec.zoo import ZooEntry
    from graphrec.zoo.folder import torch_source

    sidecar_dir, bare_dir = dest / "sidecar", dest / "bare"
    sidecar_dir.mkdir(parents=True, exist_ok=True)
    bare_dir.mkdir(parents=True, exist_ok=True)
    side, bare = [], []
    for fam in families:
        target = sidecar_dir / f"{fam}-tiny.onnx"
        entry = ZooEntry.sample(fam, 0, tiny=True)
        if not target.is_file():
            entry.export(target)
        target.with_suffix(".torch.json").write_text(json.dumps(torch_source(entry)))
        copy = bare_dir / target.name
        # the same graph under another sha256 (a doc string), so the harness keys the bare
        # copy apart from the sidecar model and measures both in one campaign
        import onnx

        proto = onnx.load(str(target))
        proto.doc_string = "bare copy: no torch source"
        onnx.save(proto, str(copy))
        side.append(target)
        bare.append(copy)
    return side, bare


def runtimes(
    families: list[str], real_rows: list[dict[str, Any]], n_real: int, work: Path
) -> dict[str, Any]:
    from graphrec.bench.harness import run_campaign
    from graphrec.bench.protocol import MeasureConfig
    from graphrec.bench.store import ResultStore
    from graphrec.device import DeviceProfile
    from graphrec.runtimes.inputs import model_spec

    side, bare = _export_tiny(families, work)
    for p in bare:
        p.with_suffix(".torch.json").unlink(missing_ok=True)
    real_ok = sorted(
        (r for r in real_rows if r["status"] == "ok"), key=lambda r: r.get("size_bytes", 0)
    )[:n_real]
    specs = [model_spec(p) for p in side] + [model_spec(p) for p in bare]
    for s, p in zip(specs, side + bare, strict=True):
        s.name = f"{p.parent.name}:{p.stem}"
    from graphrec.zoo.real import load_manifest

    by_id = {m.id: m for m in load_manifest().models}
    for r in real_ok:
        m = by_id[r["model"]]
        shapes = {k: v["shape"] for k, v in m.inputs.items() if "shape" in v}
        values = {k: v["value"] for k, v in m.inputs.items() if "value" in v}
        s = model_spec(r["path"], overrides=shapes or None, input_values=values or None)
        s.name = f"real:{m.id}"
        specs.append(s)
    config = MeasureConfig(max_time_s=0.5, timeout_s=600.0, memory_limit_mb=6144)
    store_path = work / "convert.sqlite"
    with ResultStore(store_path) as store:
        run_campaign(
            specs,
            store=store,
            device=DeviceProfile.detect(probe_gpus=False),
            patterns=RUNTIME_CANDIDATES,
            threads=(1,),
            config=config,
            cache_dir=work / "cache",
        )
        rows = store.rows()
    return {"rows": rows}


def _summarise(cov: dict[str, Any], rt: dict[str, Any] | None) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for part, rows in cov.items():
        c = Counter(r["status"] for r in rows)
        missing = Counter(op for r in rows for op in r.get("missing_ops", []))
        summary[part] = {
            "models": len(rows),
            "statuses": dict(c),
            "ok_share": c["ok"] / max(len(rows), 1),
            "checkable_ok_share": c["ok"]
            / max(len(rows) - c["reference_failed"] - c["missing"], 1),
            "missing_ops": dict(missing.most_common()),
            "convert_ms_median": statistics.median(
                [r["convert_ms"] for r in rows if "convert_ms" in r] or [0]
            ),
        }
    if rt is None:
        return summary
    ok: dict[tuple[str, str], list[int]] = defaultdict(list)
    lat: dict[tuple[str, str, str], float] = {}
    for row in rt["rows"]:
        name = str(row["model_name"])
        route, model = name.split(":", 1)
        runtime = str(row["candidate_id"])
        ok[(route, runtime)].append(int(row["status"] == "ok"))
        if row["status"] == "ok" and row.get("p50_ms") is not None:
            lat[(route, model, runtime)] = float(row["p50_ms"])
    reach = {f"{route} {rt_}": f"{sum(v)}/{len(v)}" for (route, rt_), v in sorted(ok.items())}
    ratios: dict[str, Any] = {}
    for cand in RUNTIME_CANDIDATES:
        rs = [
            lat[("bare", m, cand)] / lat[("sidecar", m, cand)]
            for (route, m, c) in list(lat)
            if route == "sidecar" and c == cand and ("bare", m, cand) in lat
        ]
        if rs:
            ratios[cand] = {
                "n": len(rs),
                "median": statistics.median(rs),
                "min": min(rs),
                "max": max(rs),
            }
    summary["runtimes"] = {"reach": reach, "latency_ratio_bare_over_sidecar": ratios}
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--zoo-seeds", type=int, default=3)
    ap.add_argument(
        "--families",
        default="resnet,mobilenet_v2,mobilenet_v3,efficientnet,squeezenet,vit,bert,mlp_mixer",
    )
    ap.add_argument("--real-runtime-models", type=int, default=6)
    ap.add_argument("--skip-runtimes", action="store_true")
    ap.add_argument(
        "--reuse-runtimes", action="store_true", help="take part 2's rows from the last report"
    )
    ap.add_argument("--work", default=str(ROOT / "runs" / "bench_convert"))
    args = ap.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    cov = coverage(args.zoo_seeds)
    rt = None
    if args.reuse_runtimes:
        rt = {"rows": json.loads((REPORTS / "bench_convert.json").read_text())["runtime_rows"]}
    elif not args.skip_runtimes:
        rt = runtimes(args.families.split(","), cov["real"], args.real_runtime_models, work)
    summary = _summarise(cov, rt)
    report = {
        "summary": summary,
        "coverage": cov,
        "runtime_rows": rt["rows"] if rt else None,
        "wall_s": time.time() - t0,
        "argv": sys.argv[1:],
    }
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / "bench_convert.json").write_text(json.dumps(report, indent=1, default=str))
    lines = ["# ONNX -> torch conversion (graphrec-onnx2torch)", ""]
    for part in ("zoo", "real"):
        s = summary[part]
        lines.append(
            f"* {part}: {s['statuses'].get('ok', 0)}/{s['models']} converted and equal to "
            f"onnxruntime ({100 * s['ok_share']:.0f} %; {100 * s['checkable_ok_share']:.0f} % of "
            f"those onnxruntime runs); statuses {s['statuses']}; operators without a rule: "
            f"{s['missing_ops'] or '-'}; conversion median {s['convert_ms_median']:.0f} ms"
        )
    if "runtimes" in summary:
        lines += ["", "## Runtimes reached (harness rows `ok` / measured)", ""]
        lines += [f"* {k}: {v}" for k, v in summary["runtimes"]["reach"].items()]
        lines += [
            "",
            "## Latency, converted module / original module (one store; rows of a resumed",
            "## store may come from an earlier campaign)",
            "",
        ]
        for cand, r in summary["runtimes"]["latency_ratio_bare_over_sidecar"].items():
            lines.append(
                f"* {cand}: median {r['median']:.2f}x (range {r['min']:.2f}-{r['max']:.2f}, "
                f"{r['n']} models)"
            )
    lines += ["", f"wall time {report['wall_s']:.0f} s; shared 2-vCPU machine, one round per pair."]
    (REPORTS / "bench_convert.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
