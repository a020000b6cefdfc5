"""Start-up time of the ``graphrec`` command, against a bare ``python -c pass``.

Measures, each in a fresh process, ``--runs`` times (after one untimed warm-up run
that fills the OS file cache): ``python -c pass``, ``import graphrec``,
``graphrec --help``, ``graphrec --version`` and a cold
``graphrec recommend examples/models/tiny_convnet.onnx --device auto --json`` (a fresh
process each time: imports, artefact load, device probe and the answer). Prints the
median and inter-quartile range of the wall-clock time and the ratio of each median to
the ``python -c pass`` median, and writes them as JSON. Targets (issue 11):
``graphrec --help`` within 3x of ``python -c pass``; cold ``recommend`` <= 2 s.

The child processes run without ``PYTHONDONTWRITEBYTECODE`` (so graphrec's modules are
read from cached bytecode, as in an installed wheel); ``--no-bytecode`` keeps the
variable when it is set, and every module is then compiled from source on each start.
The 1-minute load average before and after is recorded: on a busy machine the figures
are upper bounds.

Usage::

    python benchmarks/bench_cli.py [--runs 15] [--out benchmarks/reports/bench_cli.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parent.parent
_EXAMPLE = _ROOT / "examples" / "models" / "tiny_convnet.onnx"


def _graphrec() -> list[str]:
    """The installed console script beside this interpreter, else ``python -m graphrec.cli``."""
    script = Path(sys.executable).parent / "graphrec"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "graphrec.cli"]


def _time(cmd: list[str], runs: int, env: dict[str, str]) -> list[float]:
    def once() -> None:
        subprocess.run(
            cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
        )

    once()
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        once()
        out.append(time.perf_counter() - t)
    return out


def _load() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def _stats(times: list[float]) -> dict[str, float]:
    q1, median, q3 = statistics.quantiles(times, n=4, method="inclusive")
    return {
        "median_s": median,
        "q1_s": q1,
        "q3_s": q3,
        "iqr_s": q3 - q1,
        "min_s": min(times),
        "max_s": max(times),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=15, help="timed runs per command (15)")
    ap.add_argument("--recommend-runs", type=int, default=None, help="runs of recommend (--runs)")
    ap.add_argument("--model", default=str(_EXAMPLE), help="ONNX model for recommend")
    ap.add_argument("--out", default=str(_ROOT / "benchmarks" / "reports" / "bench_cli.json"))
    ap.add_argument(
        "--no-bytecode",
        action="store_true",
        help="keep PYTHONDONTWRITEBYTECODE in the children's environment",
    )
    args = ap.parse_args(argv)
    if args.runs < 2:
        ap.error("--runs must be at least 2")

    grec = _graphrec()
    py = sys.executable
    cases: list[tuple[str, list[str], int]] = [
        ("python -c pass", [py, "-c", "pass"], args.runs),
        ("import graphrec", [py, "-c", "import graphrec"], args.runs),
        ("graphrec --help", [*grec, "--help"], args.runs),
        ("graphrec --version", [*grec, "--version"], args.runs),
        (
            "graphrec recommend (cold)",
            [*grec, "recommend", args.model, "--device", "auto", "--json"],
            args.recommend_runs or args.runs,
        ),
    ]
    env = dict(os.environ)
    if not args.no_bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    load_before = _load()
    results: dict[str, Any] = {}
    for name, cmd, runs in cases:
        times = _time(cmd, runs, env)
        results[name] = {"command": " ".join(cmd), "runs": runs, **_stats(times)}
    base = results["python -c pass"]["median_s"]
    print(f"{'command':28} {'median ms':>10} {'IQR ms':>8} {'x python -c pass':>17}")
    for name, r in results.items():
        r["ratio_to_python"] = r["median_s"] / base
        print(
            f"{name:28} {1e3 * r['median_s']:10.1f} {1e3 * r['iqr_s']:8.1f} "
            f"{r['ratio_to_python']:17.2f}"
        )
    load_after = _load()
    report: dict[str, Any] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "bytecode_cached": "PYTHONDONTWRITEBYTECODE" not in env,
        "load_average_1min": {"before": load_before, "after": load_after},
        "results": results,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"load average (1 min) {load_before} before, {load_after} after")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
