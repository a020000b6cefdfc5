"""Device configurations: is an ISA cap honoured, micro-benchmarks, fragmentation per device.

Three parts (each resumable; the measuring ones take the project's measurement mutex,
``/tmp/graphrec-measure.lock``, one round at a time so no hold lasts long):

* ``--isa``: the same zoo models (conv-heavy and GEMM-heavy) measured with the harness
  (``graphrec.bench.run_campaign``) on onnxruntime, OpenVINO and PyTorch at one thread,
  once plain and once with the AVX2 cap's worker environment
  (:func:`graphrec.device.isa_cap.cap_env`: ``ONEDNN_MAX_CPU_ISA=AVX2``,
  ``ATEN_CPU_CAPABILITY=avx2``, ...), rounds alternating between the two. Besides the
  latencies, the kernels each runtime picks are recorded where they can be seen:
  OpenVINO's runtime model (``primitiveType``), PyTorch's ``get_cpu_capability()`` and
  the oneDNN implementation of its convolution (``ONEDNN_VERBOSE``); onnxruntime's MLAS
  kernels are not observable, so it is judged by latency alone. Store:
  ``runs/devices/isa_check.sqlite``.
* ``--microbench``: ``graphrec device --microbench`` on the host and under the AVX2 cap.
* ``--fragmentation``: which runtime wins where: per device, the models measured and the
  share of models each runtime's candidate is fastest on, over the candidates both devices
  have, from the shipped dataset (host) and the device campaign stores
  (``runs/devices/<device_id>.sqlite``).

Usage: ``python benchmarks/bench_devices.py --isa --microbench --fragmentation``; it prints
tables and writes ``benchmarks/reports/bench_devices.{json,md}``.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import statistics
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REPORTS = ROOT / "benchmarks" / "reports"
WORK = ROOT / "runs" / "devices"
LOCK = "/tmp/graphrec-measure.lock"
ISA_MODELS = ["vgg-s0", "resnet-s0", "convnext-s0", "bert-s0", "mlp_mixer-s0", "gpt-s0"]
ISA_CANDIDATES = [
    "onnxruntime/cpu/fp32/opt=all/threads=1",
    "openvino/cpu/fp32/hint=latency/threads=1",
    "torch/eager/fp32/threads=1",
]
CAP = "avx2"


_HELD = False


@contextlib.contextmanager
def measure_lock() -> Iterator[None]:
    """The project's measurement mutex (the same lock ``flock`` takes); re-entrant."""
    global _HELD
    if _HELD:
        yield
        return
    with open(LOCK, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        _HELD = True
        try:
            yield
        finally:
            _HELD = False
            fcntl.flock(fh, fcntl.LOCK_UN)


def _child_json(code: str, env: dict[str, str]) -> Any:
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "?"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _kernels(onnx_path: Path, env: dict[str, str]) -> dict[str, Any]:
    """Kernels OpenVINO and PyTorch pick for the model (under ``env``)."""
    ov_code = (
        "import json, openvino as ov\n"
        "out = {}\n"
        "for prec in ('f32', 'default'):\n"
        "    cfg = {'INFERENCE_NUM_THREADS': 1}\n"
        "    if prec != 'default': cfg['INFERENCE_PRECISION_HINT'] = prec\n"
        "    try:\n"
        f"        cm = ov.Core().compile_model({str(onnx_path)!r}, 'CPU', cfg)\n"
        "        out[prec] = sorted({str(op.get_rt_info()['primitiveType'].astype(str)) for op in "
        "cm.get_runtime_model().get_ops() if 'primitiveType' in op.get_rt_info()})\n"
        "    except RuntimeError as exc:\n"
        "        out[prec] = 'compile failed: ' + str(exc).strip().splitlines()[-1][:160]\n"
        "print(json.dumps(out))\n"
    )
    torch_code = (
        "import json, torch\n"
        "torch.set_num_threads(1)\n"
        "x = torch.randn(1, 64, 56, 56); w = torch.randn(64, 64, 3, 3)\n"
        "with torch.no_grad(): torch.nn.functional.conv2d(x, w, padding=1)\n"
        "print(json.dumps(torch.backends.cpu.get_cpu_capability()))\n"
    )
    verbose = subprocess.run(
        [sys.executable, "-c", torch_code],
        env={**os.environ, **env, "ONEDNN_VERBOSE": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    impls = sorted(
        {
            line.split(",")[6]
            for line in verbose.stdout.splitlines()
            if line.startswith("onednn_verbose") and ",exec,cpu,convolution," in line
        }
    )
    return {
        "openvino": _child_json(ov_code, env),
        "torch_cpu_capability": _child_json(torch_code, env),
        "torch_onednn_conv": impls,
    }


def part_isa(rounds: int) -> dict[str, Any]:
    from graphrec.bench.harness import run_campaign
    from graphrec.bench.store import ResultStore
    from graphrec.device import DeviceProfile
    from graphrec.device.isa_cap import cap_env, capped_profile
    from graphrec.zoo import read_manifest

    zoo = ROOT / "runs" / "zoo"
    files = {r["model_id"]: zoo / r["file"] for r in read_manifest(zoo)}
    models = [files[m] for m in ISA_MODELS if m in files]
    host = DeviceProfile.detect(probe_gpus=False)
    capped = capped_profile(host, CAP)
    configs = [("plain", host, {}), (f"cap {CAP}", capped, cap_env(CAP))]
    WORK.mkdir(parents=True, exist_ok=True)
    store_path = WORK / "isa_check.sqlite"
    for r in range(rounds):
        order = configs if r % 2 == 0 else configs[::-1]
        with measure_lock():  # one hold per round: both settings, back to back
            for label, dev, env in order:
                with ResultStore(store_path) as store:
                    rows = run_campaign(
                        models,
                        store=store,
                        device=dev,
                        runtimes=["onnxruntime", "openvino", "torch"],
                        patterns=ISA_CANDIDATES,
                        threads=(1,),
                        repeat=r + 1,
                        worker_env=env,
                    )
                print(f"round {r} {label}: {len(rows)} rows measured", flush=True)
    kernels = {
        label: _kernels(files["vgg-s0"], env) for label, _, env in configs if "vgg-s0" in files
    }
    with ResultStore(store_path) as store:
        rows = [r for r in store.rows() if r["status"] == "ok"]
    by: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    busy: Counter[str] = Counter()
    for row in rows:
        by[(row["device_id"], row["model_name"], row["candidate_id"])].append(row["p50_ms"])
        busy[row["device_id"]] += int(bool(row.get("busy")))
    table: list[dict[str, Any]] = []
    for model in ISA_MODELS:
        for cand in ISA_CANDIDATES:
            a = by.get((host.device_id, model, cand))
            b = by.get((capped.device_id, model, cand))
            if not a or not b:
                continue
            ma, mb = statistics.median(a), statistics.median(b)
            table.append(
                {
                    "model": model,
                    "candidate": cand,
                    "plain_ms": ma,
                    "capped_ms": mb,
                    "ratio": mb / ma,
                    "plain_spread": max(a) / min(a),
                    "capped_spread": max(b) / min(b),
                    "rounds": min(len(a), len(b)),
                }
            )
    per_runtime = {}
    for cand in ISA_CANDIDATES:
        ratios = [float(t["ratio"]) for t in table if t["candidate"] == cand]
        if ratios:
            per_runtime[cand.split("/")[0]] = {
                "median_ratio": statistics.median(ratios),
                "min_ratio": min(ratios),
                "max_ratio": max(ratios),
                "models": len(ratios),
            }
    return {
        "host": host.device_id,
        "capped": capped.device_id,
        "env": cap_env(CAP),
        "rows": len(rows),
        "busy_rows": dict(busy),
        "table": table,
        "per_runtime": per_runtime,
        "kernels": kernels,
    }


def part_microbench() -> dict[str, Any]:
    out: dict[str, Any] = {}
    with measure_lock():  # one hold for both (about a minute each)
        for label, extra in (("host", []), (f"cap {CAP}", ["--isa-cap", CAP])):
            proc = subprocess.run(
                [
                    str(Path(sys.executable).with_name("graphrec")),
                    "device",
                    "--microbench",
                    "--json",
                    *extra,
                ],
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            if proc.returncode != 0:
                out[label] = {"error": proc.stderr.strip()[-500:]}
                continue
            prof = json.loads(proc.stdout[proc.stdout.index("{") :])
            out[label] = {"device_id": prof["device_id"], "microbench": prof["microbench"]}
            print(f"microbench {label}: {prof['microbench']['seconds']} s", flush=True)
    return out


def _winners(rows: list[dict[str, Any]], candidates: set[str]) -> tuple[int, Counter[str]]:
    best: dict[str, tuple[float, str]] = {}
    lat: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in rows:
        if r["status"] == "ok" and r["candidate_id"] in candidates and r["p50_ms"]:
            lat[(r["model_sha256"], r["candidate_id"])].append(float(r["p50_ms"]))
    per_model: dict[str, set[str]] = defaultdict(set)
    for (m, c), v in lat.items():
        per_model[m].add(c)
        med = statistics.median(v)
        if m not in best or med < best[m][0]:
            best[m] = (med, c)
    full = [m for m, cs in per_model.items() if cs >= candidates]
    wins = Counter(best[m][1].split("/")[0] for m in full)
    return len(full), wins


def part_fragmentation() -> dict[str, Any]:
    import pandas as pd

    from graphrec.bench.store import ResultStore

    shipped = pd.read_parquet(ROOT / "graphrec" / "data" / "measurements" / "measurements.parquet")
    devices: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for rec in shipped.to_dict("records"):
        devices[str(rec["device_id"])].append(rec)
    capped_ids: dict[str, str] = {}
    shipped_dev = str(shipped["device_id"].iloc[0])
    for path in sorted(WORK.glob("*.sqlite")):
        if path.name == "isa_check.sqlite":
            continue
        with ResultStore(path) as store:
            for did, prof in store.devices().items():
                if prof.get("isa_cap"):
                    capped_ids[did] = shipped_dev
            for rec in store.rows():
                devices[str(rec["device_id"])].append(rec)
    out: dict[str, Any] = {"devices": {}}
    cands_by_dev = {
        d: {r["candidate_id"] for r in rows if r["status"] == "ok"} for d, rows in devices.items()
    }
    for d, rows in devices.items():
        models = {r["model_sha256"] for r in rows if r["status"] == "ok"}
        out["devices"][d] = {
            "rows": len(rows),
            "models": len(models),
            "candidates": len(cands_by_dev[d]),
            "busy_rows": int(sum(1 for r in rows if r.get("busy") in (1, True))),
        }
    # Which runtime wins, over the candidates every device has, on the models every
    # device has all of them for.
    common = set.intersection(*cands_by_dev.values()) if cands_by_dev else set()
    out["common_candidates"] = sorted(common)
    if common:
        shared = set.intersection(
            *[
                {
                    m
                    for m, cs in _models_with(rows, common).items()
                    if cs >= common  # every common candidate ran
                }
                for rows in devices.values()
            ]
        )
        out["shared_models"] = len(shared)
        for d, rows in devices.items():
            n, wins = _winners([r for r in rows if r["model_sha256"] in shared], common)
            out["devices"][d]["wins_common"] = {k: v / max(n, 1) for k, v in wins.most_common()}
            out["devices"][d]["wins_models"] = n
        out["speed_ratio"] = _speed_ratio(devices, shared, common)
    out["composite"] = _composite(devices, capped_ids)
    clean = {d: [r for r in rows if not r.get("busy")] for d, rows in devices.items()}
    out["composite_clean"] = _composite(clean, capped_ids)
    return out


def _composite(
    devices: dict[str, list[dict[str, Any]]], capped_ids: dict[str, str]
) -> dict[str, Any]:
    """Winners over every candidate of an ISA-capped configuration: its own rows for the
    runtimes the cap changes, the host's rows for the others (the cap does not change
    them), against the host's winners on the same models."""
    from graphrec.device.isa_cap import CAPPED_RUNTIMES

    out: dict[str, Any] = {}
    for capped, host in capped_ids.items():
        if host not in devices:
            continue
        own = [r for r in devices[capped] if r["runtime"] in CAPPED_RUNTIMES]
        kept = [r for r in devices[host] if r["runtime"] not in CAPPED_RUNTIMES]
        comp_cands = {r["candidate_id"] for r in own + kept if r["status"] == "ok"}
        host_cands = {r["candidate_id"] for r in devices[host] if r["status"] == "ok"}
        comp_models = _models_with(own + kept, comp_cands)
        host_models = _models_with(devices[host], host_cands)
        # models the capped runtimes were measured on, with every candidate on both sides
        own_models = {m for m, cs in _models_with(own, comp_cands).items() if cs}
        shared = {
            m
            for m in own_models
            if comp_models.get(m, set()) >= comp_cands and host_models.get(m, set()) >= host_cands
        }
        n_c, wins_c = _winners([r for r in own + kept if r["model_sha256"] in shared], comp_cands)
        n_h, wins_h = _winners(
            [r for r in devices[host] if r["model_sha256"] in shared], host_cands
        )
        same = _same_winner(own + kept, devices[host], shared, comp_cands, host_cands)
        # The host's own rows (one protocol, every model) without the candidates the
        # capped configuration does not have (OpenVINO bf16): how the winners shift.
        cap_cands = {r["candidate_id"] for r in own if r["status"] == "ok"}
        missing = {
            c for c in host_cands if c.split("/")[0] in CAPPED_RUNTIMES and c not in cap_cands
        }
        all_host = set(_models_with(devices[host], host_cands))
        best_all = _best(devices[host], all_host, host_cands)
        best_wo = _best(devices[host], all_host, host_cands - missing)
        n_all = max(len(best_all), 1)
        out[capped] = {
            "host": host,
            "host_models": len(best_all),
            "missing_candidates": sorted(missing),
            "host_wins_all_models": dict(
                Counter(c.split("/")[0] for c in best_all.values()).most_common()
            ),
            "host_wins_without_missing": dict(
                Counter(c.split("/")[0] for c in best_wo.values()).most_common()
            ),
            "host_wins_by_missing": sum(c in missing for c in best_all.values()) / n_all,
            "models": len(shared),
            "capped_wins": {k: v / max(n_c, 1) for k, v in wins_c.most_common()},
            "host_wins": {k: v / max(n_h, 1) for k, v in wins_h.most_common()},
            "same_best_candidate": same,
        }
    return out


def _best(rows: list[dict[str, Any]], models: set[str], cands: set[str]) -> dict[str, str]:
    lat: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in rows:
        if r["status"] == "ok" and r["model_sha256"] in models and r["candidate_id"] in cands:
            lat[(r["model_sha256"], r["candidate_id"])].append(float(r["p50_ms"]))
    best: dict[str, tuple[float, str]] = {}
    for (m, c), v in lat.items():
        med = statistics.median(v)
        if m not in best or med < best[m][0]:
            best[m] = (med, c)
    return {m: c for m, (_, c) in best.items()}


def _same_winner(
    a: list[dict[str, Any]],
    b: list[dict[str, Any]],
    models: set[str],
    cands_a: set[str],
    cands_b: set[str],
) -> float | None:
    ba, bb = _best(a, models, cands_a), _best(b, models, cands_b)
    both = [m for m in models if m in ba and m in bb]
    return sum(ba[m] == bb[m] for m in both) / len(both) if both else None


def _models_with(rows: list[dict[str, Any]], candidates: set[str]) -> dict[str, set[str]]:
    got: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        if r["status"] == "ok" and r["candidate_id"] in candidates:
            got[r["model_sha256"]].add(r["candidate_id"])
    return got


def _speed_ratio(
    devices: dict[str, list[dict[str, Any]]], shared: set[str], common: set[str]
) -> dict[str, Any]:
    """Median latency ratio (each device over the first) per candidate on shared models."""
    med: dict[str, dict[tuple[str, str], float]] = {}
    for d, rows in devices.items():
        lat: dict[tuple[str, str], list[float]] = defaultdict(list)
        for r in rows:
            if r["status"] == "ok" and r["model_sha256"] in shared and r["candidate_id"] in common:
                lat[(r["model_sha256"], r["candidate_id"])].append(float(r["p50_ms"]))
        med[d] = {k: statistics.median(v) for k, v in lat.items()}
    names = list(devices)
    if len(names) < 2:
        return {}
    base = names[0]
    out: dict[str, Any] = {"base": base}
    for d in names[1:]:
        per: dict[str, float] = {}
        for c in sorted(common):
            rs = [
                med[d][(m, c)] / med[base][(m, c)]
                for m in shared
                if (m, c) in med[d] and (m, c) in med[base]
            ]
            if rs:
                per[c] = statistics.median(rs)
        out[d] = per
    return out


def _markdown(report: dict[str, Any]) -> str:
    lines = ["# Device configurations (`benchmarks/bench_devices.py`)", ""]
    isa = report.get("isa")
    if isa:
        lines += [
            f"## Is the AVX2 cap honoured? (host `{isa['host']}`, capped `{isa['capped']}`)",
            "",
            f"Worker environment: `{json.dumps(isa['env'])}`. {isa['rows']} ok rows; "
            f"busy rows per device: {isa['busy_rows']}.",
            "",
            "| model | candidate | plain ms | capped ms | capped / plain | rounds |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for t in isa["table"]:
            lines.append(
                f"| {t['model']} | `{t['candidate']}` | {t['plain_ms']:.2f} | "
                f"{t['capped_ms']:.2f} | {t['ratio']:.2f} | {t['rounds']} |"
            )
        lines += [
            "",
            "| runtime | median ratio | min | max | models |",
            "|---|---:|---:|---:|---:|",
        ]
        for rt, v in isa["per_runtime"].items():
            lines.append(
                f"| {rt} | {v['median_ratio']:.2f} | {v['min_ratio']:.2f} | "
                f"{v['max_ratio']:.2f} | {v['models']} |"
            )
        lines += ["", "Kernels picked (vgg-s0):", ""]
        for label, k in isa["kernels"].items():
            lines.append(f"* {label}: `{json.dumps(k)}`")
        lines.append("")
    mb = report.get("microbench")
    if mb:
        lines += ["## Micro-benchmarks", ""]
        for label, v in mb.items():
            if "error" in v:
                lines.append(f"* {label}: error {v['error']}")
                continue
            m = v["microbench"]
            gemm = "; ".join(
                f"{p} " + ", ".join(f"{t}t {x['gflops']:.1f}" for t, x in by.items())
                for p, by in m["gemm"].items()
            )
            bw = ", ".join(f"{t}t {x['gbps']:.1f}" for t, x in m["bandwidth"].items())
            disp = ", ".join(
                f"{rt} {x['us_per_call']:.0f}"
                for rt, x in m["dispatch"].items()
                if "us_per_call" in x
            )
            lines.append(
                f"* {label} (`{v['device_id']}`, {m['seconds']} s): GEMM GFLOP/s {gemm}; "
                f"copy GB/s {bw}; dispatch us/call {disp}"
            )
        lines.append("")
    fr = report.get("fragmentation")
    if fr:
        lines += [
            "## Devices and fragmentation",
            "",
            "| device | rows | models | candidates | busy rows | models with every common candidate | wins (share) |",
            "|---|---:|---:|---:|---:|---:|---|",
        ]
        for d, v in fr["devices"].items():
            wins = ", ".join(f"{k} {100 * s:.0f} %" for k, s in v.get("wins_common", {}).items())
            lines.append(
                f"| `{d}` | {v['rows']} | {v['models']} | {v['candidates']} | {v['busy_rows']} | "
                f"{v.get('wins_models', '-')} | {wins} |"
            )
        lines += ["", f"Common candidates: {', '.join(f'`{c}`' for c in fr['common_candidates'])}."]
        sr = fr.get("speed_ratio") or {}
        for d, per in sr.items():
            if d == "base":
                continue
            lines.append(
                f"Median latency `{d}` / `{sr['base']}`: "
                + ", ".join(f"`{c}` {r:.2f}" for c, r in per.items())
            )
        comps = [
            ("", fr.get("composite") or {}),
            (" (rows not flagged busy only)", fr.get("composite_clean") or {}),
        ]
        for which, comp in comps:
            for d, v in comp.items():
                lines += [
                    "",
                    f"`{d}` with every candidate (its own rows for torch and OpenVINO, the host's "
                    f"for the runtimes the cap does not change){which}, {v['models']} models:",
                    "",
                    "| runtime | wins on host | wins capped |",
                    "|---|---:|---:|",
                ]
                for rt in sorted(set(v["host_wins"]) | set(v["capped_wins"])):
                    lines.append(
                        f"| {rt} | {100 * v['host_wins'].get(rt, 0):.0f} % | "
                        f"{100 * v['capped_wins'].get(rt, 0):.0f} % |"
                    )
                if "host_models" in v and not which:
                    n = max(v["host_models"], 1)
                    lines += [
                        "",
                        f"The host's own rows, all {v['host_models']} models, with and without the "
                        f"candidates the capped configuration lacks "
                        f"({', '.join(f'`{c}`' for c in v['missing_candidates'])}; they are the "
                        f"fastest on {100 * v['host_wins_by_missing']:.0f} % of the models):",
                        "",
                        "| runtime | wins, every candidate | wins, without those |",
                        "|---|---:|---:|",
                    ]
                    allw, wo = v["host_wins_all_models"], v["host_wins_without_missing"]
                    for rt in sorted(set(allw) | set(wo)):
                        lines.append(
                            f"| {rt} | {100 * allw.get(rt, 0) / n:.0f} % | {100 * wo.get(rt, 0) / n:.0f} % |"
                        )
                same = v["same_best_candidate"]
                lines.append(
                    "\nSame fastest candidate on both: "
                    + ("-" if same is None else f"{100 * same:.0f} % of the models")
                )
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--isa", action="store_true", help="verify the ISA cap with the harness")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of the ISA check")
    ap.add_argument("--microbench", action="store_true", help="micro-benchmarks, host and capped")
    ap.add_argument("--fragmentation", action="store_true", help="which runtime wins where")
    ap.add_argument(
        "--single-hold",
        action="store_true",
        help="take the measurement mutex once for --isa and --microbench (keep them short)",
    )
    args = ap.parse_args()
    REPORTS.mkdir(parents=True, exist_ok=True)
    out_json = REPORTS / "bench_devices.json"
    report: dict[str, Any] = json.loads(out_json.read_text()) if out_json.exists() else {}
    with measure_lock() if args.single_hold else contextlib.nullcontext():
        if args.isa:
            report["isa"] = part_isa(args.rounds)
        if args.microbench:
            report["microbench"] = part_microbench()
    if args.fragmentation:
        report["fragmentation"] = part_fragmentation()
    out_json.write_text(json.dumps(report, indent=1) + "\n")
    md = _markdown(report)
    (REPORTS / "bench_devices.md").write_text(md + "\n")
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
