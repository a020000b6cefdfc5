"""graphrec port on the real task (scikit-learn digits), and emlearn in the same run.

Trains a 64-32-10 MLP, a 64-16-10 MLP and a small CNN with PyTorch (fixed seeds),
exports them to ONNX and measures, on the whole 360-image test split:

* graphrec port, fixed point: MLP-32 on the ATmega328P, CNN on the ATmega2560; float mode
  for comparison; accuracy vs the float model (onnxruntime), flash / SRAM (static + stack
  peak measured by painting) / EEPROM, cycles per inference in simavr (deterministic:
  the spread across inputs is data dependence, not noise);
* emlearn (what a user would otherwise use for an MLP) on the same weights: its float C
  built for the host and for both AVRs with the same serial harness;
* the activation arena: greedy vs naive sum vs brute-force optimum.

    python benchmarks/bench_port.py [--samples 360] [--out benchmarks/reports]

Writes ``port.json`` and ``port.md``. Needs gcc-avr, avr-libc, simavr, libsimavr-dev.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np

from graphrec.mcu import port, run_port
from graphrec.mcu import toolchain as tc
from graphrec.mcu.errors import StorageFitError
from graphrec.mcu.port import RunReport, onnxruntime_outputs
from graphrec.mcu.targets import get_target
from graphrec.mcu.tasks import DigitsData, load_digits_split, train_digits_cnn, train_digits_mlp


def _cycles(c: list[int]) -> dict[str, Any]:
    if not c:
        return {}
    return {
        "median": float(statistics.median(c)),
        "min": min(c),
        "max": max(c),
        "latency_ms_16mhz": statistics.median(c) / 16e3,
    }


def _ours(
    name: str,
    onnx: Path,
    target: str,
    mode: str,
    data: DigitsData,
    x: np.ndarray,
    y: np.ndarray,
    ref: np.ndarray,
    work: Path,
    shape: tuple[int, ...],
) -> dict[str, Any]:
    t0 = time.perf_counter()
    cal = data.x_train.reshape(-1, *shape)
    try:
        res = port(
            onnx,
            target=target,
            mode=mode,
            calibration=cal,
            out_dir=work / f"{name}_{target}_{mode}",
            name=name,
        )
    except StorageFitError as exc:
        return {
            "system": "graphrec port",
            "model": name,
            "target": target,
            "mode": mode,
            "fits": False,
            "error": str(exc),
        }
    try:
        rep: RunReport = run_port(res, x.reshape(-1, *shape), reference=ref)
    except StorageFitError as exc:
        return {
            "system": "graphrec port",
            "model": name,
            "target": target,
            "mode": mode,
            "fits": False,
            "error": str(exc),
        }
    row = {
        "system": "graphrec port",
        "model": name,
        "target": target,
        "mode": mode,
        "fits": rep.fits(),
        "accuracy": float(np.mean(rep.outputs.argmax(axis=1) == y)),
        "float_accuracy": float(np.mean(ref.argmax(axis=1) == y)),
        "top1_agreement_with_float": rep.top1_agreement,
        "max_abs_error_vs_onnxruntime": rep.max_abs_error,
        "bit_exact": rep.bit_exact,
        "flash_bytes": rep.flash_bytes,
        "sram_bytes": rep.sram_bytes,
        "stack_bytes": rep.stack_bytes,
        "eeprom_bytes": rep.eeprom_bytes,
        "cycles": _cycles(rep.cycles),
        "arena_bytes": res.arena.size,
        "arena_naive_bytes": res.arena.naive,
        "arena_optimum_bytes": res.arena.optimum,
        "weights_by_medium": res.storage.used,
        "wall_s": time.perf_counter() - t0,
    }
    return row


def _emlearn_sources(weights: dict[str, np.ndarray], data: DigitsData, work: Path) -> Path:
    """emlearn's C for an sklearn MLPClassifier holding exactly the torch weights."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    old = np.geterr()
    import emlearn  # sets np.seterr(all="raise") process-wide

    np.seterr(**old)
    hidden = weights["w1"].shape[0]
    clf = MLPClassifier(hidden_layer_sizes=(hidden,), activation="relu", max_iter=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(data.x_train, data.y_train)
    clf.coefs_ = [weights["w1"].T.astype(np.float64), weights["w2"].T.astype(np.float64)]
    clf.intercepts_ = [weights["b1"].astype(np.float64), weights["b2"].astype(np.float64)]
    work.mkdir(parents=True, exist_ok=True)
    cmodel = emlearn.convert(clf, method="inline")
    np.seterr(**old)
    cmodel.save(file=str(work / "eml_net_model.h"), name="eml_net_model")
    (work / "eml.h").write_text(
        "#include <stdint.h>\n#define EML_INPUT_BYTES 256\n#define EML_OUTPUT_BYTES 1\n"
        "float *eml_input(void);\nconst uint8_t *eml_output(void);\nvoid eml_run(void);\n"
    )
    (work / "eml.c").write_text(
        '#include "eml_net_model.h"\n#include "eml.h"\n'
        "static float in_[64];\nstatic uint8_t out_[1];\n"
        "float *eml_input(void) { return in_; }\n"
        "const uint8_t *eml_output(void) { return out_; }\n"
        "void eml_run(void) { out_[0] = (uint8_t)eml_net_model_predict(in_, 64); }\n"
    )
    return Path(emlearn.includedir)


def _emlearn(
    name: str,
    weights: dict[str, np.ndarray],
    data: DigitsData,
    x: np.ndarray,
    y: np.ndarray,
    ref: np.ndarray,
    work: Path,
) -> list[dict[str, Any]]:
    src = work / f"emlearn_{name}"
    inc = _emlearn_sources(weights, data, src)
    rows = []
    exe = tc.build_host(src, "eml", include_dirs=(inc,), strict=False)
    pred = tc.run_host(exe, x.astype(np.float32), np.dtype(np.uint8), 1)[:, 0]
    rows.append(
        {
            "system": "emlearn",
            "model": name,
            "target": "host",
            "mode": "float",
            "fits": True,
            "accuracy": float(np.mean(pred == y)),
            "top1_agreement_with_float": float(np.mean(pred == ref.argmax(axis=1))),
        }
    )
    for target in ("atmega328p", "atmega2560"):
        tgt = get_target(target)
        try:
            fw = tc.build_avr(src, "eml", tgt, include_dirs=(inc,))
        except tc.ToolchainError as exc:
            if "not within region" not in str(exc):
                raise
            flash, sram = _object_sizes(src, inc, tgt)
            rows.append(
                {
                    "system": "emlearn",
                    "model": name,
                    "target": target,
                    "mode": "float",
                    "fits": False,
                    "flash_bytes": flash,
                    "static_sram_bytes": sram,
                    "error": f"the linker rejects it: .data + .bss of the objects is {sram} B "
                    f"(weights are plain const arrays, copied to SRAM) > {tgt.sram_bytes} B SRAM",
                }
            )
            continue
        row: dict[str, Any] = {
            "system": "emlearn",
            "model": name,
            "target": target,
            "mode": "float",
            "flash_bytes": fw.flash_bytes,
            "static_sram_bytes": fw.static_sram_bytes,
            "eeprom_bytes": fw.eeprom,
        }
        if fw.static_sram_bytes > tgt.sram_bytes or fw.flash_bytes > tgt.flash_bytes:
            row["fits"] = False
            row["error"] = (
                f"static SRAM {fw.static_sram_bytes} B (weights are plain const arrays, "
                f"copied to SRAM) > {tgt.sram_bytes} B"
            )
            rows.append(row)
            continue
        run = tc.run_avr(fw, tgt, x.astype(np.float32), np.dtype(np.uint8), 1)
        pred = run.outputs[:, 0]
        row.update(
            {
                "fits": fw.static_sram_bytes + run.stack_bytes <= tgt.sram_bytes,
                "sram_bytes": fw.static_sram_bytes + run.stack_bytes,
                "stack_bytes": run.stack_bytes,
                "accuracy": float(np.mean(pred == y)),
                "top1_agreement_with_float": float(np.mean(pred == ref.argmax(axis=1))),
                "cycles": _cycles(run.cycles),
            }
        )
        rows.append(row)
    return rows


def _object_sizes(src: Path, inc: Path, tgt: Any) -> tuple[int, int]:
    """Flash and static SRAM of emlearn's objects when the link fails (from the objects)."""
    flash = sram = 0
    for c in (src / "eml.c", tc._runtime_file("main_avr.c")):
        obj = src / (c.stem + ".o")
        subprocess.run(
            [
                "avr-gcc",
                f"-mmcu={tgt.mcu}",
                "-std=c99",
                "-Os",
                "-c",
                f"-I{src}",
                f"-I{inc}",
                '-DMODEL_H="eml.h"',
                "-DMODEL_INPUT=eml_input",
                "-DMODEL_OUTPUT=eml_output",
                "-DMODEL_RUN=eml_run",
                "-DMODEL_INPUT_BYTES=EML_INPUT_BYTES",
                "-DMODEL_OUTPUT_BYTES=EML_OUTPUT_BYTES",
                str(c),
                "-o",
                str(obj),
            ],
            check=True,
            capture_output=True,
        )
        out = subprocess.run(
            ["avr-size", "-A", str(obj)], check=True, capture_output=True, text=True
        )
        for line in out.stdout.splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                sec, size = parts[0], int(parts[1])
                if sec.startswith((".data", ".rodata")):
                    sram += size
                    flash += size
                elif sec.startswith(".bss"):
                    sram += size
                elif sec.startswith(".text") or sec.startswith(".progmem"):
                    flash += size
    return flash, sram


def _fmt(v: Any, pct: bool = False) -> str:
    if v is None:
        return "-"
    if pct:
        return f"{100 * v:.2f} %"
    if isinstance(v, float):
        return f"{v:,.0f}" if v > 100 else f"{v:.3g}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def _markdown(rep: dict[str, Any]) -> str:
    lines = [
        "# graphrec port on scikit-learn digits (with emlearn in the same run)",
        "",
        f"Generated by `python benchmarks/bench_port.py` on {rep['when']} ({rep['machine']}); "
        f"{rep['samples']} test images; avr-gcc {rep['avr_gcc']}; simavr cycle counts "
        "(deterministic, exact for the simulated core; min-max is the spread across inputs). "
        "Latency assumes a 16 MHz clock.",
        "",
        "| system | model | target | mode | fits | accuracy | float acc. | top-1 = float | flash B | SRAM B (stack) | EEPROM B | cycles median [min-max] | ms @16 MHz |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rep["rows"]:
        c = r.get("cycles") or {}
        sram = r.get("sram_bytes", r.get("static_sram_bytes"))
        stack = f" ({r['stack_bytes']})" if r.get("stack_bytes") is not None else ""
        cyc = f"{c['median']:,.0f} [{c['min']:,}-{c['max']:,}]" if c else "-"
        lines.append(
            f"| {r['system']} | {r['model']} | {r['target']} | {r['mode']} | "
            f"{'yes' if r.get('fits') else 'NO'} | {_fmt(r.get('accuracy'), True)} | "
            f"{_fmt(r.get('float_accuracy'), True)} | {_fmt(r.get('top1_agreement_with_float'), True)} | "
            f"{_fmt(r.get('flash_bytes'))} | {_fmt(sram)}{stack} | {_fmt(r.get('eeprom_bytes'))} | "
            f"{cyc} | {_fmt(c.get('latency_ms_16mhz'))} |"
        )
    lines += ["", "Rows that do not fit:", ""]
    for r in rep["rows"]:
        if not r.get("fits"):
            lines.append(
                f"* {r['system']} {r['model']} on {r['target']} ({r['mode']}): {r.get('error', 'over capacity')}"
            )
    lines += [
        "",
        "## Activation arena (bytes)",
        "",
        "| model | mode | greedy | naive sum | brute-force optimum |",
        "|---|---|---|---|---|",
    ]
    seen = set()
    for r in rep["rows"]:
        if r["system"] != "graphrec port" or "arena_bytes" not in r:
            continue
        key = (r["model"], r["mode"])
        if key in seen:
            continue
        seen.add(key)
        lines.append(
            f"| {r['model']} | {r['mode']} | {r['arena_bytes']} | {r['arena_naive_bytes']} | {_fmt(r['arena_optimum_bytes'])} |"
        )
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=360)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/reports"))
    ap.add_argument("--work", type=Path, default=Path("runs/bench_port"))
    args = ap.parse_args()
    data = load_digits_split()
    n = min(args.samples, len(data.x_test))
    x, y = data.x_test[:n], data.y_test[:n]
    rows: list[dict[str, Any]] = []
    for hidden in (32, 16):
        name = f"mlp{hidden}"
        onnx, weights = train_digits_mlp(args.work / f"{name}.onnx", data, hidden=hidden)
        ref = onnxruntime_outputs(onnx, x)
        for target, mode in (
            ("atmega328p", "fixed"),
            ("atmega328p", "float"),
            ("atmega2560", "fixed"),
        ):
            rows.append(_ours(name, onnx, target, mode, data, x, y, ref, args.work, (64,)))
            print(json.dumps(rows[-1], default=str))
        for r in _emlearn(name, weights, data, x, y, ref, args.work):
            r["float_accuracy"] = float(np.mean(ref.argmax(axis=1) == y))
            rows.append(r)
            print(json.dumps(r, default=str))
    cnn = train_digits_cnn(args.work / "cnn.onnx", data)
    xc = x.reshape(-1, 1, 8, 8)
    ref = onnxruntime_outputs(cnn, xc)
    for target, mode in (("atmega2560", "fixed"), ("atmega2560", "float"), ("atmega328p", "fixed")):
        rows.append(_ours("cnn", cnn, target, mode, data, xc, y, ref, args.work, (1, 8, 8)))
        print(json.dumps(rows[-1], default=str))
    avr_gcc = subprocess.run(
        ["avr-gcc", "-dumpversion"], capture_output=True, text=True
    ).stdout.strip()
    rep = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {platform.python_version()}",
        "samples": n,
        "avr_gcc": avr_gcc,
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "port.json").write_text(json.dumps(rep, indent=2, default=str))
    md = _markdown(rep)
    (args.out / "port.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
