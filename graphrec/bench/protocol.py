"""The measurement protocol: statuses, timing loop, latency statistics, output agreement.

Per (model, candidate) a worker process measures, in order:

1. **conversion**: ``prepare`` (cached by model hash + candidate; the first conversion's
   time is recorded even when later rows reuse the cache);
2. **cold start**: ``load`` plus the first inference, timed separately (``load_ms``,
   ``first_run_ms``; ``cold_start_ms`` is their sum);
3. **output agreement**: the first inference's outputs against the onnxruntime
   reference (:func:`compare_outputs`, tolerance by precision: :func:`tolerance_for`);
4. **warm latency**: ``warmup_runs`` runs, then runs until the median is known well
   enough (:func:`measure_latency`): at least ``min_runs`` runs and ``min_time_s``
   seconds, stopping once the 95 % confidence interval of the median (order statistics,
   :func:`median_ci`) is within ``±target_ci`` of it, or at ``max_runs`` /
   ``max_time_s``. (``target_ci=0`` restores the protocol of harness 1.0: stop once the
   running median moved less than ``stable_rel`` between checks.)

The protocol of harness 2.0 (the default) also:

* pins each worker to its own cores (``pin_cores``): a candidate at ``t`` threads runs
  on the last ``t`` cores the harness may use, and the harness parent moves to the first
  core while it waits, so it never shares a core with a one-thread worker;
* raises the workers' priority (``worker_nice``, where the harness may), so that other
  work on a shared machine yields to the timed runs;
* times in quiet (``quiet_timing``): the parent stops sampling the worker's memory while
  the worker times, and peak memory comes from the kernel's high-water mark of the
  worker (``VmHWM``, reset before each load), which costs nothing while timing;
* records the machine's state during the timed phase (:class:`MachineLoad`): the CPU
  time other processes took on the worker's cores, the steal time of those cores (from
  ``/proc/stat``) and the load average; a row timed while the machine was busy is
  stored with ``busy=1`` rather than as a clean row, and campaigns measure it again;
* adds rounds adaptively (see :func:`graphrec.bench.harness.run_campaign`'s
  ``max_rounds``): a (model, candidate) pair whose round medians disagree by more than
  ``round_spread`` gets another round, in a fresh process, interleaved with the others.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "STATUSES",
    "LatencyStats",
    "LoadProbe",
    "MachineLoad",
    "MeasureConfig",
    "OutputAgreement",
    "Status",
    "compare_outputs",
    "measure_latency",
    "median_ci",
    "tolerance_for",
]


class Status:
    """Status of one measurement (the ``status`` column of the store)."""

    OK = "ok"
    WRONG_OUTPUT = "wrong_output"
    UNSUPPORTED = "unsupported"
    CONVERT_FAILED = "convert_failed"
    LOAD_FAILED = "load_failed"
    RUN_FAILED = "run_failed"
    TIMEOUT = "timeout"
    CRASHED = "crashed"
    OUT_OF_MEMORY = "out_of_memory"
    UNAVAILABLE = "unavailable"
    #: Ran and was timed, but its outputs could not be checked: the onnxruntime
    #: reference failed on the generated inputs. Neither a success nor a failure.
    UNVERIFIED = "unverified"
    #: Passed the output check but was faster than the device's roofline allows
    #: (:mod:`graphrec.bench.plausibility`): it did not do the model's work. A failure.
    IMPLAUSIBLE = "implausible"


#: Every status, for validation and reports.
STATUSES: tuple[str, ...] = (
    Status.OK,
    Status.WRONG_OUTPUT,
    Status.UNSUPPORTED,
    Status.CONVERT_FAILED,
    Status.LOAD_FAILED,
    Status.RUN_FAILED,
    Status.TIMEOUT,
    Status.CRASHED,
    Status.OUT_OF_MEMORY,
    Status.UNAVAILABLE,
    Status.UNVERIFIED,
    Status.IMPLAUSIBLE,
)


@dataclass
class MeasureConfig:
    """How long and how often to measure one candidate.

    Attributes:
        warmup_runs: Runs after the first (cold) inference that are not timed.
        min_runs: Fewest timed runs.
        max_runs: Most timed runs.
        min_time_s: Shortest timed phase.
        max_time_s: Longest timed phase (stops even when not stable; 1 s, where harness
            1.0 allowed 3 s: a pair that is still noisy after 1 s gets another round in
            another process, which says more than 2 s more of the same process).
        target_ci: Stop once the 95 % confidence interval of the median is within
            ``±target_ci`` of the median (0 turns this off: ``stable_rel`` decides).
        stable_rel: With ``target_ci=0``: stop when the running median moved less than
            this fraction between checks.
        timeout_s: Wall-clock limit for the whole measurement (enforced by the parent).
        memory_limit_mb: Memory cap of a worker (RSS watched by the parent outside the
            timed phase, data segment limited with ``RLIMIT_DATA`` inside the worker).
        pin_cores: Pin each worker to its own cores and keep the parent off them.
        quiet_timing: No memory sampling by the parent while the worker times.
        worker_nice: Niceness change for workers (negative raises their priority over
            other work on the machine, where the harness may: root or
            ``CAP_SYS_NICE``; otherwise they run at the parent's priority).
        busy_foreign: A row is ``busy`` when other processes took more than this share
            of the worker's cores while it timed...
        busy_steal: ...or the hypervisor stole more than this share of them.
        round_spread: Campaigns with ``max_rounds`` above their rounds add a round for
            a pair whose clean round medians spread more than ``±round_spread`` around
            their median.
        burst_s: Time the candidates of one model in interleaved bursts of this many
            seconds (each session stays loaded meanwhile); 0 times each candidate in one
            contiguous window, as harness 1.0 did.
        min_bursts: Fewest bursts per candidate before the interval may stop it.
    """

    warmup_runs: int = 3
    min_runs: int = 10
    max_runs: int = 5000
    min_time_s: float = 0.3
    max_time_s: float = 1.0
    target_ci: float = 0.02
    stable_rel: float = 0.02
    timeout_s: float = 300.0
    memory_limit_mb: int = 8192
    pin_cores: bool = True
    quiet_timing: bool = True
    worker_nice: int = -10
    busy_foreign: float = 0.10
    busy_steal: float = 0.05
    round_spread: float = 0.03
    burst_s: float = 0.05
    min_bursts: int = 4

    @classmethod
    def legacy(cls, **changes: Any) -> MeasureConfig:
        """The protocol of harness 1.0 (no pinning, memory sampled while timing, stop
        on a stable running median), kept to measure the new protocol against."""
        base: dict[str, Any] = dict(
            max_runs=2000,
            max_time_s=3.0,
            target_ci=0.0,
            pin_cores=False,
            quiet_timing=False,
            worker_nice=0,
            burst_s=0.0,
        )
        base.update(changes)
        return cls(**base)

    @property
    def protocol(self) -> str:
        """Short name of the protocol these settings give (recorded with each row)."""
        if self.target_ci <= 0 and not (
            self.pin_cores or self.quiet_timing or self.worker_nice or self.burst_s
        ):
            return "1.0"
        new = (
            self.target_ci > 0
            and self.pin_cores
            and self.quiet_timing
            and self.worker_nice < 0
            and self.burst_s > 0
        )
        return "2.0" if new else "custom"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)


@dataclass
class LatencyStats:
    """Warm-latency statistics in milliseconds."""

    n_runs: int
    p10_ms: float
    p50_ms: float
    p90_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    total_s: float
    samples_ms: list[float] = field(default_factory=list, repr=False)
    ci_lo_ms: float | None = None
    ci_hi_ms: float | None = None

    @property
    def ci_rel(self) -> float | None:
        """Half-width of the median's 95 % confidence interval, relative to the median."""
        if self.ci_lo_ms is None or self.ci_hi_ms is None or self.p50_ms <= 0:
            return None
        return (self.ci_hi_ms - self.ci_lo_ms) / 2.0 / self.p50_ms

    def row_fields(self) -> dict[str, Any]:
        """The store columns these statistics fill."""
        return {
            "n_runs": self.n_runs,
            "p10_ms": self.p10_ms,
            "p50_ms": self.p50_ms,
            "p90_ms": self.p90_ms,
            "mean_ms": self.mean_ms,
            "std_ms": self.std_ms,
            "min_ms": self.min_ms,
            "ci_rel": self.ci_rel,
        }

    @classmethod
    def from_samples(cls, samples_ms: Sequence[float], total_s: float) -> LatencyStats:
        """Summarise raw per-run times."""
        a = np.asarray(samples_ms, dtype=np.float64)
        p10, p50, p90 = np.percentile(a, [10, 50, 90])
        ci = median_ci(a)
        return cls(
            n_runs=int(a.size),
            p10_ms=float(p10),
            p50_ms=float(p50),
            p90_ms=float(p90),
            mean_ms=float(a.mean()),
            std_ms=float(a.std(ddof=1)) if a.size > 1 else 0.0,
            min_ms=float(a.min()),
            total_s=total_s,
            samples_ms=[float(x) for x in a],
            ci_lo_ms=None if ci is None else ci[0],
            ci_hi_ms=None if ci is None else ci[1],
        )


def median_ci(samples: Sequence[float] | np.ndarray, z: float = 1.96) -> tuple[float, float] | None:
    """Distribution-free confidence interval of the median (``z=1.96``: 95 %).

    The interval between the order statistics of ranks ``n/2 ∓ z·√n/2`` (the normal
    approximation of the binomial), which holds for any latency distribution, skewed or
    multi-modal. ``None`` below 6 samples, where no such interval exists at 95 %.
    """
    a = np.sort(np.asarray(samples, dtype=np.float64))
    n = int(a.size)
    if n < 6:
        return None
    half = z * math.sqrt(n) / 2.0
    lo = max(math.floor(n / 2.0 - half), 0)
    hi = min(math.ceil(n / 2.0 + half), n - 1)
    return float(a[lo]), float(a[hi])


def measure_latency(
    run: Callable[[], object],
    config: MeasureConfig,
    *,
    clock: Callable[[], float] = time.perf_counter,
) -> LatencyStats:
    """Warm up, then time ``run`` until its median latency is known (see module doc)."""
    for _ in range(config.warmup_runs):
        run()
    samples: list[float] = []
    start = clock()
    last_median: float | None = None
    next_check = config.min_runs
    while True:
        t0 = clock()
        run()
        t1 = clock()
        samples.append((t1 - t0) * 1000.0)
        n = len(samples)
        elapsed = t1 - start
        if n >= config.max_runs or elapsed >= config.max_time_s:
            break
        if n >= next_check:
            if config.target_ci > 0:
                next_check = n + max(5, n // 8)
                if elapsed < config.min_time_s:
                    continue
                ci = median_ci(samples)
                median = float(np.median(samples))
                if ci is not None and (ci[1] - ci[0]) / 2.0 <= config.target_ci * median:
                    break
                continue
            median = float(np.median(samples))
            if (
                elapsed >= config.min_time_s
                and last_median is not None
                and abs(median - last_median) <= config.stable_rel * last_median
            ):
                break
            last_median = median
            next_check = n + max(5, n // 4)
    return LatencyStats.from_samples(samples, clock() - start)


@dataclass
class MachineLoad:
    """What else the machine did while a worker timed (from ``/proc``; Linux only).

    Attributes:
        foreign: Share of the worker's cores' time that other processes (or the kernel
            on their behalf) used during the timed phase, 0..1.
        steal: Share of those cores' time the hypervisor gave to other guests, 0..1.
        load_avg: One-minute load average at the end of the timed phase.
    """

    foreign: float | None
    steal: float | None
    load_avg: float | None

    def busy(self, config: MeasureConfig) -> bool:
        """Whether the timed phase was disturbed beyond the config's limits."""
        return (self.foreign is not None and self.foreign > config.busy_foreign) or (
            self.steal is not None and self.steal > config.busy_steal
        )


def _cpu_times(cores: Sequence[int]) -> tuple[float, float, float] | None:
    """``(busy, steal, total)`` jiffies summed over ``cores`` from ``/proc/stat``."""
    want = {f"cpu{c}" for c in cores}
    busy = steal = total = 0.0
    try:
        with open("/proc/stat") as fh:
            for line in fh:
                parts = line.split()
                if not parts or parts[0] not in want:
                    continue
                v = [float(x) for x in parts[1:]]
                # user nice system idle iowait irq softirq steal (guest is in user)
                idle = v[3] + (v[4] if len(v) > 4 else 0.0)
                st = v[7] if len(v) > 7 else 0.0
                tot = sum(v[:8])
                busy += tot - idle - st
                steal += st
                total += tot
    except (OSError, ValueError):
        return None
    return busy, steal, total


class LoadProbe:
    """Measures :class:`MachineLoad` over one timed phase of this process.

    Example:
        >>> probe = LoadProbe.start()
        >>> load = probe.stop()  # doctest: +SKIP
    """

    def __init__(self, cores: Sequence[int], cpu0: tuple[float, float, float] | None) -> None:
        self.cores = list(cores)
        self.cpu0 = cpu0
        self.own0 = _own_cpu_s()

    @classmethod
    def start(cls) -> LoadProbe:
        """Snapshot the counters of the cores this process may run on."""
        import os

        try:
            cores = sorted(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            cores = []
        return cls(cores, _cpu_times(cores))

    def stop(self) -> MachineLoad:
        """The load since :meth:`start`."""
        import os

        cpu1 = _cpu_times(self.cores)
        own = _own_cpu_s() - self.own0
        try:
            load_avg: float | None = float(os.getloadavg()[0])
        except (AttributeError, OSError):
            load_avg = None
        if self.cpu0 is None or cpu1 is None:
            return MachineLoad(None, None, load_avg)
        hz = float(os.sysconf("SC_CLK_TCK")) if hasattr(os, "sysconf") else 100.0
        d_busy = cpu1[0] - self.cpu0[0]
        d_steal = cpu1[1] - self.cpu0[1]
        d_total = cpu1[2] - self.cpu0[2]
        if d_total <= 0:
            return MachineLoad(None, None, load_avg)
        # jiffies are coarse (10 ms): the worker's own CPU time, in jiffies, comes off
        foreign = max(0.0, d_busy - own * hz) / d_total
        return MachineLoad(min(foreign, 1.0), d_steal / d_total, load_avg)


def _own_cpu_s() -> float:
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    return float(ru.ru_utime + ru.ru_stime)


def tolerance_for(precision: str) -> tuple[float, float]:
    """``(max_rel, rel_l2)`` limits above which outputs are ``wrong_output``.

    ``max_rel`` is the largest absolute difference divided by the reference's largest
    magnitude; ``rel_l2`` is ``||out - ref|| / ||ref||``. fp32: 1e-3 / 1e-3 (reordered
    float sums differ by ~1e-6); fp16 / bf16: 5e-2 / 5e-2; int8: 0.25 / 0.15 (dynamic
    quantisation is approximate by design; above this the outputs are not usable).
    """
    return {
        "fp32": (1e-3, 1e-3),
        "fp16": (5e-2, 5e-2),
        "bf16": (5e-2, 5e-2),
        "int8": (0.25, 0.15),
    }.get(precision, (1e-3, 1e-3))


@dataclass
class OutputAgreement:
    """How a candidate's outputs compare with the reference's."""

    max_abs_err: float | None
    max_rel_err: float | None
    rel_l2_err: float | None
    ok: bool
    reason: str = ""


def _degenerate(
    out: np.ndarray, ref: np.ndarray, inputs: Sequence[np.ndarray] | None
) -> str | None:
    """Why ``out`` carries none of the information ``ref`` does, or ``None``.

    A runtime that did not run the model may return zeros, a constant, or an input
    unchanged; when the reference output is a large offset with a small variation, such
    an output can be within the relative tolerance. So: where the reference varies
    (its spread is above 1e-7 of its magnitude, about one fp32 ulp), an output whose spread is below 1 % of
    the reference's is ``constant``; an output equal to one of the inputs (same element
    count, same values) where the reference is not is ``returns the input unchanged``.
    """
    rf = ref.ravel().astype(np.float64)
    of = out.ravel().astype(np.float64)
    fin = np.isfinite(rf) & np.isfinite(of)
    if int(fin.sum()) >= 2:
        r, o = rf[fin], of[fin]
        r_spread = float(np.std(r))
        if r_spread > 1e-7 * max(float(np.max(np.abs(r))), 1e-30):
            o_spread = float(np.std(o))
            if o_spread < 0.01 * r_spread:
                what = "zeros" if not np.any(o) else f"constant {float(o[0]):.6g}"
                return (
                    f"output is {what} (spread {o_spread:.3g}) where the reference "
                    f"varies (spread {r_spread:.3g})"
                )
    for k, x in enumerate(inputs or ()):
        xa = np.asarray(x)
        if xa.size != out.size or xa.size == 0:
            continue
        xf = xa.ravel().astype(np.float64)
        if np.array_equal(of, xf, equal_nan=True) and not np.array_equal(rf, xf, equal_nan=True):
            return f"output returns input {k} unchanged; the reference does not"
    return None


def compare_outputs(
    outputs: Sequence[np.ndarray],
    reference: Sequence[np.ndarray],
    precision: str,
    *,
    inputs: Sequence[np.ndarray] | None = None,
) -> OutputAgreement:
    """Compare outputs with the reference in order; worst error over all outputs.

    Outputs whose element counts match are compared flattened (runtimes such as ncnn
    drop the batch dimension). A count mismatch, a missing output, or NaN/Inf where the
    reference is finite makes the agreement fail; so does a degenerate output (zeros, a
    constant, or one of ``inputs`` unchanged where the reference is not like that), even
    within the tolerance.
    """
    if len(outputs) < len(reference):
        return OutputAgreement(
            None, None, None, False, f"{len(outputs)} outputs, expected {len(reference)}"
        )
    max_abs = max_rel = rel_l2 = 0.0
    for i, (out, ref) in enumerate(zip(outputs, reference, strict=False)):
        o = np.asarray(out)
        r = np.asarray(ref)
        if o.size != r.size:
            return OutputAgreement(
                None, None, None, False, f"output {i} has shape {o.shape}, expected {r.shape}"
            )
        if r.dtype.kind == "b" or o.dtype.kind == "b":
            diff = float(np.count_nonzero(o.ravel().astype(bool) != r.ravel().astype(bool)))
            max_abs = max(max_abs, diff)
            max_rel = max(max_rel, diff / max(r.size, 1))
            rel_l2 = max(rel_l2, diff / max(r.size, 1))
            continue
        why = _degenerate(o, r, inputs)
        if why is not None:
            return OutputAgreement(None, None, None, False, f"output {i}: {why}")
        of = o.ravel().astype(np.float64)
        rf = r.ravel().astype(np.float64)
        finite_ref = np.isfinite(rf)
        if not np.all(np.isfinite(of[finite_ref])):
            return OutputAgreement(None, None, None, False, f"output {i} has NaN/Inf")
        d = np.abs(of[finite_ref] - rf[finite_ref])
        scale = float(np.max(np.abs(rf[finite_ref]))) if finite_ref.any() else 0.0
        a = float(d.max()) if d.size else 0.0
        max_abs = max(max_abs, a)
        max_rel = max(max_rel, a / max(scale, 1e-12) if scale > 0 else a)
        norm = float(np.linalg.norm(rf[finite_ref]))
        l2 = float(np.linalg.norm(d)) / norm if norm > 0 else float(np.linalg.norm(d))
        rel_l2 = max(rel_l2, l2)
    lim_rel, lim_l2 = tolerance_for(precision)
    ok = max_rel <= lim_rel and rel_l2 <= lim_l2
    reason = (
        "" if ok else f"max_rel_err {max_rel:.3g} / rel_l2_err {rel_l2:.3g} over {precision} limits"
    )
    return OutputAgreement(_finite(max_abs), _finite(max_rel), _finite(rel_l2), bool(ok), reason)


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None
