"""The benchmark campaign: models x candidates x rounds, isolated, stored as it goes.

:func:`run_campaign` measures every (model, candidate) pair in worker processes (one per
runtime, reused across models within a round, restarted after a crash), writes each
result to the store the moment it exists, and skips pairs already stored (resume).
Rounds (``repeat``) use fresh worker processes and a different interleaved order, so
process-to-process noise and drift show up as a measured spread; with ``max_rounds``
the campaign adds rounds, adaptively, for the pairs whose rounds disagree or were timed
on a busy machine. Workers are pinned to their cores and the parent is kept off them
(:func:`worker_cores`; the protocol is described in :mod:`graphrec.bench.protocol`).

Example:
    >>> from graphrec.bench import run_campaign, ResultStore       # doctest: +SKIP
    >>> with ResultStore("bench.sqlite") as store:                 # doctest: +SKIP
    ...     rows = run_campaign(["model.onnx"], store=store, threads=(1, 2))
"""

from __future__ import annotations

import hashlib
import os
import random
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from graphrec.bench.plausibility import ModelWork, classify, model_work
from graphrec.bench.pool import WorkerFailure, WorkerPool
from graphrec.bench.protocol import MeasureConfig, Status
from graphrec.bench.store import ResultStore
from graphrec.device import DeviceProfile
from graphrec.errors import CandidateSpecError, GraphRecError
from graphrec.runtimes.base import (
    Candidate,
    ModelSpec,
    RuntimeAdapter,
    input_key,
    measurement_key,
)
from graphrec.runtimes.inputs import make_inputs, model_spec
from graphrec.runtimes.registry import adapter_names, get_adapter

__all__ = [
    "Task",
    "default_cache_dir",
    "discover_models",
    "interleave",
    "plan_candidates",
    "run_campaign",
    "worker_cores",
]


def worker_cores(threads: int, allowed: Sequence[int]) -> tuple[int, ...]:
    """The cores a worker running ``threads`` threads is pinned to.

    The last ``threads`` of the ``allowed`` cores (all of them when there are not more):
    the first core is left to the harness parent and the system, so a one-thread worker
    on a two-core machine never shares its core with the parent.
    """
    cores = sorted(allowed)
    if threads >= len(cores):
        return tuple(cores)
    return tuple(cores[-max(threads, 1) :])


def _set_process_affinity(cores: Sequence[int]) -> None:
    """Pin every thread of this process (``sched_setaffinity`` is per thread on Linux)."""
    try:
        tids = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        tids = [0]
    for tid in tids:
        try:
            os.sched_setaffinity(tid, cores)
        except OSError:  # a thread that ended meanwhile
            continue


@contextmanager
def _parent_off_worker_cores(enabled: bool) -> Iterator[list[int] | None]:
    """Move this process to the first allowed core for the campaign; yields the cores
    workers may use (``None`` when pinning is off or unsupported)."""
    if not enabled or not hasattr(os, "sched_getaffinity"):
        yield None
        return
    try:
        allowed = sorted(os.sched_getaffinity(0))
    except OSError:
        yield None
        return
    if len(allowed) > 1:
        _set_process_affinity(allowed[:1])
    try:
        yield allowed
    finally:
        if len(allowed) > 1:
            _set_process_affinity(allowed)


def default_cache_dir() -> Path:
    """Where converted models are cached: ``$GRAPHREC_CACHE_DIR`` or ``~/.cache/graphrec``."""
    env = os.environ.get("GRAPHREC_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "graphrec"


def discover_models(paths: Sequence[str | Path]) -> list[Path]:
    """ONNX files named directly or found (recursively, sorted) under folders.

    Raises:
        GraphRecError: A path does not exist, or a folder holds no ``.onnx`` file.
    """
    found: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            files = sorted(p.rglob("*.onnx"))
            if not files:
                raise GraphRecError(f"{p}: folder holds no .onnx file")
            found.extend(files)
        elif p.exists():
            found.append(p)
        else:
            raise GraphRecError(f"{p}: no such file or folder")
    unique: dict[Path, Path] = {}
    for f in found:
        unique.setdefault(f.resolve(), f)
    return list(unique.values())


def plan_candidates(
    device: DeviceProfile,
    *,
    runtimes: Sequence[str] | None = None,
    patterns: Sequence[str] | None = None,
    threads: Sequence[int] = (1, 2),
) -> tuple[list[RuntimeAdapter], list[Candidate], dict[str, str]]:
    """Adapters and candidates to measure, plus runtimes skipped with the reason.

    Args:
        device: The device measured on.
        runtimes: Adapter names to use (all known adapters when ``None``).
        patterns: Shell-style patterns over candidate ids; a candidate is kept when it
            matches any (all kept when ``None``). A pattern that parses as a full
            candidate id adds that candidate even if the adapter does not offer it.
        threads: Thread counts to offer.

    Raises:
        CandidateSpecError: An unknown runtime name.
    """
    names = list(runtimes) if runtimes else adapter_names()
    known = set(adapter_names())
    unknown = [n for n in names if n not in known]
    if unknown:
        raise CandidateSpecError(f"unknown runtime(s) {unknown}; known: {sorted(known)}")
    adapters: list[RuntimeAdapter] = []
    skipped: dict[str, str] = {}
    cands: list[Candidate] = []
    for name in names:
        try:
            adapter = get_adapter(name)
        except GraphRecError as exc:
            skipped[name] = str(exc)
            continue
        if not adapter.is_available():
            skipped[name] = f"not installed ({adapter.install_hint})"
            continue
        offered = adapter.candidates(device, threads)
        explicit = []
        for pat in patterns or ():
            try:
                c = Candidate.parse(pat)
            except CandidateSpecError:
                continue
            if c.runtime == name and c not in offered:
                explicit.append(c)
        chosen = [c for c in offered if not patterns or any(c.matches(p) for p in patterns)]
        chosen += explicit
        if chosen:
            adapters.append(adapter)
            cands.extend(chosen)
    return adapters, cands, skipped


def interleave(candidates: Sequence[Candidate], round_index: int) -> list[Candidate]:
    """Round-robin order across runtimes, shuffled per round (deterministic by round).

    Round 0 keeps each runtime's own order; later rounds shuffle within and across
    runtimes with a seed derived from the round, so no candidate always runs first.
    """
    by_rt: dict[str, list[Candidate]] = {}
    for c in candidates:
        by_rt.setdefault(c.runtime, []).append(c)
    rng = random.Random(1000 + round_index)
    groups = list(by_rt.values())
    if round_index > 0:
        for g in groups:
            rng.shuffle(g)
        rng.shuffle(groups)
    out: list[Candidate] = []
    for i in range(max((len(g) for g in groups), default=0)):
        out.extend(g[i] for g in groups if i < len(g))
    return out


@dataclass
class Task:
    """One pending measurement."""

    model: ModelSpec
    candidate: Candidate
    round: int
    inputs_path: Path
    reference_path: Path | None = None
    reference_error: str | None = None


@dataclass
class _Campaign:
    store: ResultStore
    device: DeviceProfile
    config: MeasureConfig
    cache_dir: Path
    log_dir: Path
    env: dict[str, str]
    replace: bool
    on_result: Callable[[dict[str, Any]], None] | None
    start_failures: dict[str, WorkerFailure] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    allowed: list[int] | None = None

    def cores(self, threads: int) -> tuple[int, ...] | None:
        """Cores of a worker at ``threads`` threads (``None``: unpinned)."""
        return None if self.allowed is None else worker_cores(threads, self.allowed)

    def row_base(self, task: Task) -> dict[str, Any]:
        c = task.candidate
        version = self.versions.get(c.runtime)
        return {
            "measurement_key": measurement_key(task.model, c, version),
            "input_key": input_key(task.model),
            "model_sha256": task.model.sha256,
            "model_name": task.model.name,
            "candidate_id": c.candidate_id,
            "device_id": self.device.device_id,
            "round": task.round,
            "runtime": c.runtime,
            "runtime_version": version,
            "backend": c.backend,
            "precision": c.precision,
            "threads": c.threads,
            "options": ",".join(f"{k}={v}" for k, v in c.options),
            "harness_version": self.config.protocol,
        }

    def measure(self, pool: WorkerPool, task: Task, *, keep: bool = False) -> dict[str, Any]:
        """One measurement; with ``keep`` the worker keeps the session loaded and the
        row gets a ``handle`` (and a ``_worker``) for :meth:`time_bursts` instead of
        latency figures."""
        row = self.row_base(task)
        rt = task.candidate.runtime
        adapter = get_adapter(rt)
        reason = adapter.check(task.model, task.candidate)
        if reason:
            row.update(status=Status.UNSUPPORTED, error=reason)
            return row
        if rt in self.start_failures:
            f = self.start_failures[rt]
            row.update(status=f.status, error=f.message)
            return row
        try:
            worker = pool.get(rt, self.cores(task.candidate.threads))
        except WorkerFailure as exc:
            self.start_failures[rt] = exc
            row.update(status=exc.status, error=exc.message)
            return row
        if worker.version and worker.version != row["runtime_version"]:
            # (the version probed at planning time; a worker that reports another one,
            # after an upgrade mid-campaign, keys its row by what it really ran)
            self.versions[rt] = worker.version
            row["runtime_version"] = worker.version
            row["measurement_key"] = measurement_key(task.model, task.candidate, worker.version)
        payload = {
            "op": "measure",
            "model": task.model.to_dict(),
            "candidate": task.candidate.candidate_id,
            "inputs": str(task.inputs_path),
            "reference": None if task.reference_path is None else str(task.reference_path),
            "cache_dir": str(self.cache_dir / "prepared"),
            "config": self.config.to_dict(),
            "keep": keep,
        }
        try:
            resp = worker.request(payload, self.config.timeout_s)
        except WorkerFailure as exc:
            row.update(status=exc.status, error=exc.message, peak_rss_mb=exc.peak_rss_mb)
            return row
        before = resp.pop("rss_before_mb", None)
        row.update(resp)
        if row.get("handle"):
            row["_worker"] = worker
        if row.get("peak_rss_mb") is not None and before is not None:
            row["rss_delta_mb"] = max(0.0, row["peak_rss_mb"] - before)
        if task.reference_path is None and row.get("status") == Status.OK:
            # A latency whose outputs were never checked may time a run that did no real
            # work (MNN "runs" a PP-OCR recogniser in 0.02 ms on inputs onnxruntime
            # rejects), so it is not stored as a success.
            row["reference"] = "unavailable"
            row["status"] = Status.UNVERIFIED
            row["error"] = (
                "outputs not checked: the onnxruntime reference failed on the generated "
                f"inputs ({task.reference_error or 'no reference'}); if a dynamic input "
                "dimension was resolved wrongly, pass --input-shape"
            )
        return row

    def time_bursts(self, rows: list[dict[str, Any]], seed: int) -> None:
        """Time the kept sessions of one model in short interleaved bursts (in place).

        Each pass times every candidate still running for ``config.burst_s`` seconds, in
        a shuffled order, so all candidates sample the same stretch of the machine's
        time: the machine's speed drifts by 10-20 % within a second on a shared VM, and
        one contiguous window would catch one state of it. A candidate stops once its
        median's 95 % interval is within ``±target_ci`` (after ``min_bursts`` bursts and
        ``min_time_s`` of timed runs) or at ``max_time_s`` / ``max_runs``.
        """
        from graphrec.bench.protocol import LatencyStats, MachineLoad, median_ci

        cfg = self.config
        active = [r for r in rows if r.get("handle")]
        state = {id(r): _Bursts() for r in active}
        rng = random.Random(seed)
        while active:
            rng.shuffle(active)
            for r in list(active):
                st = state[id(r)]
                samples = st.samples
                worker = r["_worker"]
                req = {
                    "op": "burst",
                    "handle": r["handle"],
                    "seconds": cfg.burst_s,
                    "max_runs": cfg.max_runs - len(samples),
                }
                try:
                    resp = worker.request(req, cfg.timeout_s)
                except WorkerFailure as exc:
                    for other in active:  # every session of that worker is gone
                        if other["_worker"] is worker:
                            other.update(status=exc.status, error=exc.message, handle=None)
                    active = [a for a in active if a.get("handle")]
                    break
                if resp.get("status") != "ok":
                    r.update(status=Status.RUN_FAILED, error=resp.get("error"))
                    active.remove(r)
                    continue
                samples += [float(x) for x in resp["samples_ms"]]
                st.timed += float(resp["timed_s"])
                st.bursts += 1
                st.loads.append(resp)
                done = st.timed >= cfg.max_time_s or len(samples) >= cfg.max_runs
                if not done and st.timed >= cfg.min_time_s and st.bursts >= cfg.min_bursts:
                    ci = median_ci(samples)
                    med = float(np.median(samples))
                    done = ci is not None and (ci[1] - ci[0]) / 2.0 <= cfg.target_ci * med
                if done:
                    active.remove(r)
        for r in rows:
            got = state.get(id(r))
            worker = r.pop("_worker", None)
            handle = r.pop("handle", None)
            if handle and worker is not None:
                with suppress(WorkerFailure):
                    worker.request({"op": "release", "handle": handle}, cfg.timeout_s)
            timed_ok = (Status.OK, Status.WRONG_OUTPUT, Status.UNVERIFIED)
            if got is None or not got.samples or r.get("status") not in timed_ok:
                continue
            stats = LatencyStats.from_samples(got.samples, got.timed)
            loads = got.loads
            weights = [float(x["timed_s"]) for x in loads]

            def mean_of(
                key: str, ls: list[dict[str, Any]] = loads, ws: list[float] = weights
            ) -> float | None:
                vals = [(x[key], w) for x, w in zip(ls, ws, strict=True) if x.get(key) is not None]
                total = sum(w for _, w in vals)
                return sum(v * w for v, w in vals) / total if vals and total > 0 else None

            load = MachineLoad(mean_of("foreign_cpu"), mean_of("steal"), loads[-1].get("load_avg"))
            r.update(
                stats.row_fields(),
                foreign_cpu=load.foreign,
                steal=load.steal,
                load_avg=load.load_avg,
                busy=int(load.busy(cfg)),
                cores=loads[-1].get("cores"),
                bursts=got.bursts,
            )


@dataclass
class _Bursts:
    """What the bursts of one kept session gave so far."""

    samples: list[float] = field(default_factory=list)
    timed: float = 0.0
    bursts: int = 0
    loads: list[dict[str, Any]] = field(default_factory=list)


def _inputs_file(cache_dir: Path, model: ModelSpec) -> Path:
    parts: tuple[object, ...] = (model.sha256, model.input_shapes, model.input_dtypes)
    if model.input_values:  # (without them the key is unchanged: cached inputs stay valid)
        parts += (sorted(model.input_values.items()),)
    key = hashlib.sha256(repr(parts).encode())
    path = cache_dir / "inputs" / f"{model.sha256[:16]}-{key.hexdigest()[:8]}.npz"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp.npz")
        np.savez(tmp, *make_inputs(model))
        tmp.replace(path)
    return path


def _reference_file(
    pool: WorkerPool, model: ModelSpec, inputs: Path, cache_dir: Path, timeout_s: float
) -> tuple[Path | None, str | None]:
    path = inputs.with_name(inputs.stem + "-ref.npz")
    if path.is_file():
        return path, None
    try:
        worker = pool.get("onnxruntime")
        resp = worker.request(
            {"op": "reference", "model": model.to_dict(), "inputs": str(inputs), "out": str(path)},
            timeout_s,
        )
    except WorkerFailure as exc:
        return None, f"{exc.status}: {exc.message}"
    if resp.get("status") != "ok":
        return None, str(resp.get("error"))
    return path, None


def run_campaign(
    models: Sequence[str | Path | ModelSpec],
    *,
    store: ResultStore,
    device: DeviceProfile | None = None,
    runtimes: Sequence[str] | None = None,
    patterns: Sequence[str] | None = None,
    threads: Sequence[int] = (1, 2),
    repeat: int = 1,
    max_rounds: int | None = None,
    config: MeasureConfig | None = None,
    cache_dir: Path | None = None,
    resume: bool = True,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    batch_size: int = 1,
    input_values: Mapping[str, float] | None = None,
    worker_env: Mapping[str, str] | None = None,
    on_plan: Callable[[int], None] | None = None,
    on_start: Callable[[Task], None] | None = None,
    on_result: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Measure models x candidates x rounds and store every result as it comes.

    Args:
        models: ONNX paths (folders are expanded) or ready :class:`ModelSpec` objects.
        store: Where rows go (each committed at once).
        device: The device profile rows are keyed by (detected when ``None``).
        runtimes: Adapter names (all installed when ``None``).
        patterns: Candidate-id patterns to keep (see :func:`plan_candidates`).
        threads: Thread counts.
        repeat: Rounds for every pair; each round uses fresh worker processes and
            another order.
        max_rounds: Most rounds of a pair (default ``repeat``: no adaptive rounds).
            After the ``repeat`` rounds, a pair gets further rounds, one at a time and
            interleaved with the others, while it has fewer than ``repeat`` clean
            (``ok`` and not ``busy``) rounds or its clean round medians spread more than
            ``config.round_spread`` around their median.
        config: Timing / timeout / memory / pinning settings.
        cache_dir: Conversion, input and reference cache (:func:`default_cache_dir`).
        resume: Skip keys already in the store; when ``False`` they are measured again
            and their rows replaced.
        input_shapes: Explicit input shapes by input name (see
            :func:`graphrec.runtimes.inputs.resolve_shape`).
        batch_size: Value of dynamic batch dimensions.
        input_values: Inputs filled with one constant, by name (see
            :func:`graphrec.runtimes.inputs.make_inputs`).
        worker_env: Extra environment for worker processes.
        on_plan: Called with the number of pending measurements (again, with the
            number added, before each adaptive round).
        on_start: Called before each measurement.
        on_result: Called with each row right after it was stored.

    Returns:
        The rows measured in this call (not the ones skipped).
    """
    cfg = config or MeasureConfig()
    dev = device or DeviceProfile.detect()
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    if repeat < 1:
        raise GraphRecError(f"repeat must be >= 1, got {repeat}")
    rounds_cap = repeat if max_rounds is None else max_rounds
    if rounds_cap < repeat:
        raise GraphRecError(f"max_rounds ({rounds_cap}) must be >= repeat ({repeat})")
    specs: list[ModelSpec] = []
    for m in models:
        if isinstance(m, ModelSpec):
            specs.append(m)
            continue
        for path in discover_models([m]):
            specs.append(
                model_spec(
                    path,
                    overrides=input_shapes,
                    batch_size=batch_size,
                    input_values=input_values,
                )
            )
    by_key: dict[str, ModelSpec] = {}
    for s in specs:  # identical files with identical inputs are one model; keep a torch
        kept = by_key.setdefault(input_key(s), s)  # source if any copy has one
        if kept.torch_source is None and s.torch_source is not None:
            kept.torch_source = s.torch_source
    specs = list(by_key.values())
    _, candidates, skipped = plan_candidates(
        dev, runtimes=runtimes, patterns=patterns, threads=threads
    )
    if not candidates:
        why = "; ".join(f"{k}: {v}" for k, v in skipped.items()) or "no candidate matched"
        raise CandidateSpecError(f"nothing to measure ({why})")
    store.add_device(dev.device_id, dev.to_dict())
    for s in specs:
        store.add_model(s.sha256, s.name, str(s.onnx_path), s.to_dict())

    log_dir = Path(tempfile.gettempdir()) / "graphrec-bench-logs"
    with _parent_off_worker_cores(cfg.pin_cores) as allowed:
        camp = _Campaign(
            store, dev, cfg, cache, log_dir, dict(worker_env or {}), not resume, on_result
        )
        camp.allowed = allowed
        return _run(camp, specs, candidates, repeat, rounds_cap, resume, on_plan, on_start)


def _run(
    camp: _Campaign,
    specs: list[ModelSpec],
    candidates: list[Candidate],
    repeat: int,
    rounds_cap: int,
    resume: bool,
    on_plan: Callable[[int], None] | None,
    on_start: Callable[[Task], None] | None,
) -> list[dict[str, Any]]:
    store, dev, cfg, cache = camp.store, camp.device, camp.config, camp.cache_dir
    # The runtime versions are part of the measurement key, so resume needs them before
    # planning: start round 0's workers now (they run the first round's tasks too). A
    # runtime whose worker cannot start keys its rows with no version; once it starts,
    # its key changes and it is measured.
    first_pool: WorkerPool | None = WorkerPool(
        camp.log_dir, cfg.memory_limit_mb, camp.env, cfg.worker_nice
    )
    assert first_pool is not None
    for rt in dict.fromkeys(c.runtime for c in candidates):
        first = next(c for c in candidates if c.runtime == rt)
        try:
            worker = first_pool.get(rt, camp.cores(first.threads))
        except WorkerFailure as exc:
            camp.start_failures[rt] = exc
            continue
        if worker.version:
            camp.versions[rt] = worker.version

    done = store.done_keys(dev.device_id) if resume else set()
    rounds: list[list[Task]] = []
    for r in range(repeat):
        tasks = []
        order = interleave(candidates, r)
        for s in specs:
            for c in order:
                key = measurement_key(s, c, camp.versions.get(c.runtime))
                if (key, c.candidate_id, dev.device_id, r) not in done:
                    tasks.append(Task(s, c, r, Path()))
        rounds.append(tasks)
    if on_plan is not None:
        on_plan(sum(len(t) for t in rounds))

    results: list[dict[str, Any]] = []
    references: dict[str, tuple[Path | None, str | None]] = {}
    works: dict[str, ModelWork | None] = {}

    def run_round(tasks: list[Task]) -> None:
        nonlocal first_pool
        if first_pool is not None:
            pool, first_pool = first_pool, None
        else:
            pool = WorkerPool(camp.log_dir, cfg.memory_limit_mb, camp.env, cfg.worker_nice)
            camp.start_failures.clear()
        try:
            groups: list[list[Task]] = []
            for task in tasks:  # consecutive tasks of one model (and inputs) form a group
                if groups and input_key(groups[-1][0].model) == input_key(task.model):
                    groups[-1].append(task)
                else:
                    groups.append([task])
            for group in groups:
                measured: list[tuple[Task, dict[str, Any]]] = []
                for task in group:
                    inputs = _inputs_file(cache, task.model)
                    task.inputs_path = inputs
                    ikey = input_key(task.model)
                    if ikey not in references:
                        references[ikey] = _reference_file(
                            pool, task.model, inputs, cache, cfg.timeout_s
                        )
                    task.reference_path, task.reference_error = references[ikey]
                    if on_start is not None:
                        on_start(task)
                    measured.append((task, camp.measure(pool, task, keep=cfg.burst_s > 0)))
                if cfg.burst_s > 0:
                    seed = int(
                        hashlib.sha256(input_key(group[0].model).encode()).hexdigest()[:8], 16
                    )
                    camp.time_bursts([row for _, row in measured], seed + group[0].round)
                for task, row in measured:
                    ikey = input_key(task.model)
                    if ikey not in works:
                        works[ikey] = model_work(
                            task.model.onnx_path,
                            dict(zip(task.model.input_names, task.model.input_shapes, strict=True)),
                        )
                    classify(row, works[ikey], dev)
                    if task.reference_path is None and task.reference_error:
                        row["reference_error"] = task.reference_error
                    if store.insert_result(row, replace=not resume):
                        results.append(row)
                    if camp.on_result is not None:
                        camp.on_result(row)
        finally:
            pool.close()

    try:
        for tasks in rounds:
            if tasks:
                run_round(tasks)
        for r in range(repeat, rounds_cap):
            tasks = _adaptive_round(camp, specs, candidates, repeat, r)
            if not tasks:
                break
            if on_plan is not None:
                on_plan(len(tasks))
            run_round(tasks)
    finally:
        if first_pool is not None:  # nothing was pending
            first_pool.close()
    return results


def _adaptive_round(
    camp: _Campaign,
    specs: Sequence[ModelSpec],
    candidates: Sequence[Candidate],
    repeat: int,
    round_index: int,
) -> list[Task]:
    """Tasks of adaptive round ``round_index``: the pairs that are not yet known well.

    A pair is measured again while it has fewer than ``repeat`` clean rounds (``ok``
    and not ``busy``), or its clean round medians spread more than
    ``config.round_spread`` around their median. Pairs that never ran (a failure, an
    unsupported candidate) are not retried. Models are shuffled and candidates
    interleaved, with the round's seed.
    """
    by_pair: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in camp.store.rows(device_id=camp.device.device_id):
        by_pair.setdefault((str(row["measurement_key"]), str(row["candidate_id"])), []).append(row)
    order = interleave(candidates, round_index)
    models = list(specs)
    random.Random(2000 + round_index).shuffle(models)
    tasks: list[Task] = []
    for s in models:
        for c in order:
            key = measurement_key(s, c, camp.versions.get(c.runtime))
            rows = by_pair.get((key, c.candidate_id), [])
            if any(int(r["round"]) == round_index for r in rows):
                continue  # (resumed: this round is already there)
            if not any(r["status"] == Status.OK for r in rows):
                continue
            clean = [
                float(r["p50_ms"])
                for r in rows
                if r["status"] == Status.OK and not r.get("busy") and r["p50_ms"] is not None
            ]
            if len(clean) >= repeat:
                med = float(np.median(clean))
                if med > 0 and max(abs(x - med) for x in clean) <= camp.config.round_spread * med:
                    continue
            tasks.append(Task(s, c, round_index, Path()))
    return tasks
