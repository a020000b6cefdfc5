"""Measure single-module models with the harness, optionally under a background load.

The module dataset is a folder: ``points.jsonl`` (one :class:`ModulePoint` per line, with
its ONNX file under ``models/``) and one SQLite results store per background-load level
(``modules-load0.00.sqlite``, ...). Measuring is resumable (the harness skips stored
keys) and bounded in time, so it runs in short chunks under the machine's measurement lock.

The background load is the seed's "device utilisation rate": :class:`BackgroundLoad`
runs a competing process pinned to the workers' cores that is busy for ``level`` of every
10 ms period, for as long as the measurement lasts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from graphrec.errors import GraphRecError
from graphrec.recommender.modules.generate import ModulePoint, build_module

__all__ = [
    "DEFAULT_CANDIDATES",
    "BackgroundLoad",
    "add_points",
    "load_points",
    "measure_points",
    "store_path",
]

#: Candidates measured by default: the threads=1 fp32 choices of onnxruntime and OpenVINO.
DEFAULT_CANDIDATES: tuple[str, ...] = (
    "onnxruntime/cpu/fp32/opt=all/threads=1",
    "openvino/cpu/fp32/hint=latency/threads=1",
)


def store_path(folder: str | Path, load: float = 0.0) -> Path:
    """The results store of one background-load level inside a module-dataset folder."""
    return Path(folder) / f"modules-load{load:.2f}.sqlite"


def load_points(folder: str | Path) -> list[ModulePoint]:
    """Every point of a module-dataset folder, in the order they were added.

    Raises:
        GraphRecError: The folder has no ``points.jsonl`` or a line is malformed.
    """
    path = Path(folder) / "points.jsonl"
    if not path.exists():
        raise GraphRecError(f"{path}: no such file (run `graphrec modules generate` first)")
    out: list[ModulePoint] = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            out.append(ModulePoint(d["module_type"], d["params"], int(d["batch"]), d["point_id"]))
        except (ValueError, KeyError) as exc:
            raise GraphRecError(f"{path}:{i}: malformed point ({exc})") from None
    return out


def add_points(folder: str | Path, points: Sequence[ModulePoint], *, round_name: str = "") -> int:
    """Build the ONNX files of new points and append them to ``points.jsonl``.

    Returns:
        How many points were new (points already in the folder are skipped).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    known = set()
    if (folder / "points.jsonl").exists():
        known = {(p.point_id, p.batch) for p in load_points(folder)}
    added = 0
    with (folder / "points.jsonl").open("a") as fh:
        for p in points:
            if (p.point_id, p.batch) in known:
                continue
            build_module(p, folder / "models")
            d = p.to_dict()
            d["round"] = round_name
            fh.write(json.dumps(d, sort_keys=True) + "\n")
            known.add((p.point_id, p.batch))
            added += 1
    return added


def model_file(folder: str | Path, point: ModulePoint) -> Path:
    """Where the ONNX file of ``point`` lives in a module-dataset folder."""
    return Path(folder) / "models" / f"{point.point_id}-b{point.batch}.onnx"


_BURN = """
import os, sys, time
level, cores = float(sys.argv[1]), [int(c) for c in sys.argv[2].split(",") if c]
if cores and hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, cores)
busy, period = level * 0.01, 0.01
while True:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < busy:
        pass
    rest = period - (time.perf_counter() - t0)
    if rest > 0:
        time.sleep(rest)
"""


class BackgroundLoad:
    """A competing busy process of a set duty cycle (a context manager).

    Args:
        level: Share of each 10 ms period the process spins (0 runs nothing, 1 is a
            fully busy core).
        cores: Cores it is pinned to (the measuring workers' cores; all when empty).
    """

    def __init__(self, level: float, cores: Sequence[int] = ()) -> None:
        if not 0.0 <= level <= 1.0:
            raise GraphRecError(f"background load level must be in [0, 1], got {level}")
        self.level = level
        self.cores = tuple(cores)
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> BackgroundLoad:
        if self.level > 0:
            args = [sys.executable, "-c", _BURN, str(self.level), ",".join(map(str, self.cores))]
            self._proc = subprocess.Popen(args)
            time.sleep(0.2)
            if self._proc.poll() is not None:
                raise GraphRecError(f"background load process exited ({self._proc.returncode})")
        return self

    def running(self) -> bool:
        """Whether the competing process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def measure_points(
    folder: str | Path,
    *,
    candidates: Sequence[str] = DEFAULT_CANDIDATES,
    load: float = 0.0,
    max_minutes: float = 8.0,
    chunk: int = 8,
    repeat: int = 1,
    types: Sequence[str] | None = None,
    point_ids: Sequence[str] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> int:
    """Measure the points of a folder not yet in its store (resumable, time-bounded).

    Args:
        folder: Module-dataset folder.
        candidates: Candidate ids to measure.
        load: Background-load level (a store per level).
        max_minutes: Stop starting new chunks after this long.
        chunk: Models per harness call.
        repeat: Rounds per pair (2 re-measures every point in fresh processes: the
            noise floor).
        types: Only these module types.
        point_ids: Only these points.
        on_progress: Called with (done, total) after each chunk.

    Returns:
        Rows measured in this call.
    """
    from graphrec.bench import ResultStore, run_campaign

    points = load_points(folder)
    if types:
        points = [p for p in points if p.module_type in set(types)]
    if point_ids:
        points = [p for p in points if p.point_id in set(point_ids)]
    runtimes = sorted({c.split("/", 1)[0] for c in candidates})
    t0 = time.monotonic()
    n_rows = 0
    with ResultStore(store_path(folder, load)) as store:
        done: dict[str, int] = {}
        for r in store.rows():
            if r["candidate_id"] in candidates:
                done[r["model_name"]] = done.get(r["model_name"], 0) + 1
        pending = [
            p for p in points if done.get(f"{p.point_id}-b{p.batch}", 0) < len(candidates) * repeat
        ]
        allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        bg = BackgroundLoad(load, allowed[-1:]) if load > 0 else _nothing()
        with bg:
            for i in range(0, len(pending), chunk):
                if time.monotonic() - t0 > max_minutes * 60:
                    break
                files = [model_file(folder, p) for p in pending[i : i + chunk]]
                rows = run_campaign(
                    files,
                    store=store,
                    runtimes=runtimes,
                    patterns=list(candidates),
                    threads=(1, 2),
                    repeat=repeat,
                )
                n_rows += len(rows)
                if isinstance(bg, BackgroundLoad) and not bg.running():
                    raise GraphRecError("the background load process died mid-measurement")
                if on_progress:
                    on_progress(min(i + chunk, len(pending)), len(pending))
    return n_rows


def measured_table(folder: str | Path, load: float = 0.0) -> list[dict[str, Any]]:
    """Rows of a folder's store joined with their points (``point`` key), ok rows only."""
    from graphrec.bench import ResultStore

    by_name = {f"{p.point_id}-b{p.batch}": p for p in load_points(folder)}
    path = store_path(folder, load)
    if not path.exists():
        return []
    out = []
    with ResultStore(path) as store:
        for r in store.rows():
            p = by_name.get(r["model_name"])
            if p is None or r["status"] != "ok" or r.get("p50_ms") is None:
                continue
            r = dict(r)
            r["point"] = p
            r["load"] = load
            out.append(r)
    return out
