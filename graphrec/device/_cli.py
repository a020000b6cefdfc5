"""``graphrec device``: detect and print this machine's device profile, or a saved one;
``graphrec calibrate``: measure K probe models here and write a calibrated profile."""

from __future__ import annotations

import argparse
import json
from typing import Any

from graphrec.errors import GraphRecError

__all__ = ["register"]


def _microbench_text(mb: dict[str, Any] | None) -> str:
    if not mb:
        return "-"
    parts = []
    for prec, by_t in mb.get("gemm", {}).items():
        figs = ", ".join(
            f"{t}t {v['gflops']:.0f}" for t, v in sorted(by_t.items(), key=lambda kv: int(kv[0]))
        )
        parts.append(f"GEMM {prec} GFLOP/s {figs}")
    bw = mb.get("bandwidth", {})
    if bw:
        figs = ", ".join(
            f"{t}t {v['gbps']:.1f}" for t, v in sorted(bw.items(), key=lambda kv: int(kv[0]))
        )
        parts.append(f"copy GB/s {figs}")
    disp = [
        f"{rt} {v['us_per_call']:.0f}"
        for rt, v in mb.get("dispatch", {}).items()
        if "us_per_call" in v
    ]
    if disp:
        parts.append("dispatch us/call " + ", ".join(disp))
    return "; ".join(parts) + f" ({mb.get('seconds', 0):.0f} s)"


def _capped_microbench(cap: str, env: dict[str, str]) -> dict[str, Any]:
    """Run the micro-benchmarks in a child process under the cap's environment (oneDNN
    and ATen read it once, at start)."""
    import os
    import subprocess
    import sys

    code = (
        "import json, sys\n"
        "from graphrec.device import DeviceProfile\n"
        "from graphrec.device.isa_cap import capped_profile\n"
        "from graphrec.device.microbench import run_microbench\n"
        f"prof = capped_profile(DeviceProfile.detect(probe_gpus=False), {cap!r})\n"
        "print(json.dumps(run_microbench(prof, progress=lambda m: print(m, file=sys.stderr))))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise GraphRecError(f"micro-benchmarks under ISA cap {cap} failed (exit {proc.returncode})")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def _cmd_device(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from graphrec.device.profile import DeviceProfile
    from graphrec.errors import DeviceProfileError

    prof = DeviceProfile.load(args.profile) if args.profile else DeviceProfile.detect()
    if args.isa_cap:
        from graphrec.device.isa_cap import capped_profile

        prof = capped_profile(prof, args.isa_cap)
    if args.microbench:
        import dataclasses

        from graphrec.device.isa_cap import cap_env
        from graphrec.device.microbench import run_microbench

        if args.profile and prof.source != "detected":
            raise DeviceProfileError(
                args.profile, "micro-benchmarks run on this machine; a spec-sheet profile is not"
            )
        err = Console(stderr=True)
        if args.isa_cap:
            record = _capped_microbench(args.isa_cap, cap_env(args.isa_cap))
        else:
            record = run_microbench(
                prof, progress=lambda m: err.print(f"[dim]microbench: {m}[/dim]")
            )
        prof = dataclasses.replace(prof, microbench=record)
    if args.save:
        prof.save(args.save)
    if args.json:
        print(json.dumps({**prof.to_dict(), "device_id": prof.device_id}, indent=2))
        return 0
    table = Table(title=f"Device profile ({prof.source})", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    table.add_row("device_id", prof.device_id)
    for key, value in prof.to_dict().items():
        if key == "gpus":
            value = (
                ", ".join(
                    f"{g['name']} ({g['memory_mb']} MiB, cc {g['compute_capability'] or '-'})"
                    for g in value
                )
                or "none"
            )
        elif key == "isa_flags":
            value = " ".join(value) or "-"
        elif key == "microbench":
            value = _microbench_text(value)
        elif key == "calibration" and value:
            value = f"calibrated (K={value.get('k', value.get('samples', '?'))})"
        table.add_row(key, "-" if value is None else str(value))
    Console().print(table)
    if args.save:
        Console().print(f"saved to {args.save}")
    return 0


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from rich.console import Console

    from graphrec.device.calibrate import calibrate

    console = Console(stderr=True)

    def say(line: str) -> None:
        console.print(line, markup=False, highlight=False)

    prof = calibrate(
        samples=args.samples,
        budget_min=args.budget_min,
        out=args.out,
        store=args.store,
        device=args.device,
        artefact=args.artefact,
        probes=args.probes,
        method=args.method,
        probe_models=args.probe_models.split(",") if args.probe_models else None,
        candidates=args.candidates.split(",") if args.candidates else None,
        seed=args.seed,
        reference=args.reference,
        progress=say,
    )
    cal = prof.calibration or {}
    if args.json:
        print(json.dumps({**prof.to_dict(), "device_id": prof.device_id}, indent=2))
    else:
        say(
            f"calibrated {prof.device_id} from {cal.get('k')} probes ({cal.get('n_rows')} "
            f"measurements, method {cal.get('method')}) in {cal.get('seconds')} s"
        )
        if args.out:
            say(f"use it: graphrec recommend MODEL.onnx --device {args.out}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``graphrec device`` and ``graphrec calibrate`` to the CLI."""
    p = subparsers.add_parser(
        "device",
        help="detect and print this machine's device profile",
        description="Detect this machine's device profile (CPU, ISA flags, caches, "
        "memory, GPUs) or show a saved one.",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--save", metavar="PATH", help="also write the profile to PATH")
    p.add_argument("--profile", metavar="PATH", help="show a saved profile instead of detecting")
    p.add_argument(
        "--microbench",
        action="store_true",
        help="also measure micro-benchmarks (GEMM GFLOP/s per precision and thread count, "
        "memory bandwidth, per-call dispatch of each runtime; under a minute) and store "
        "them in the profile",
    )
    p.add_argument(
        "--isa-cap",
        choices=("avx2", "avx512_core"),
        help="the profile of this host with oneDNN/ATen capped at this ISA (same host, "
        "not another CPU); with --microbench, measured under the cap",
    )
    p.set_defaults(func=_cmd_device)

    c = subparsers.add_parser(
        "calibrate",
        help="measure K probe models here and write a calibrated device profile",
        description="Benchmark K probe models (zoo models of the training data, chosen to "
        "tell most about this device's ranking) on this machine with the real harness, "
        "fit a per-candidate correction of the recommender's predictions and write the "
        "calibrated profile that 'graphrec recommend --device PROFILE' uses. Resumable: "
        "probes already in --store are not measured again.",
    )
    c.add_argument("--samples", "-k", type=int, default=10, help="probe models K (default 10)")
    c.add_argument(
        "--budget-min", type=float, default=10.0, help="minutes the measurements may take"
    )
    c.add_argument("--out", metavar="PATH", help="write the calibrated profile JSON here")
    c.add_argument(
        "--store",
        metavar="PATH",
        help="results store of the probe measurements (default: OUT.probes.sqlite)",
    )
    c.add_argument("--device", metavar="PATH", help="profile to calibrate (default: detected)")
    c.add_argument("--artefact", metavar="DIR", help="trained recommender folder")
    c.add_argument(
        "--probes",
        choices=("informative", "random"),
        default="informative",
        help="how probes are chosen (default informative)",
    )
    c.add_argument(
        "--method",
        choices=("slope", "offset"),
        default="slope",
        help="correction model (default slope)",
    )
    c.add_argument("--probe-models", metavar="IDS", help="explicit zoo model ids, comma-separated")
    c.add_argument(
        "--candidates", metavar="PATTERNS", help="measure only these candidates (comma-separated)"
    )
    c.add_argument(
        "--reference",
        choices=("predicted", "measured"),
        default="predicted",
        help="compare the probes with the artefact's prediction for the reference device "
        "(default) or with its measurements in the dataset",
    )
    c.add_argument("--seed", type=int, default=0, help="seed of random probes")
    c.add_argument("--json", action="store_true", help="print the calibrated profile as JSON")
    c.set_defaults(func=_cmd_calibrate)
