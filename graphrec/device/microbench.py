"""Device micro-benchmarks: GEMM throughput, memory bandwidth, per-call dispatch overhead.

:func:`run_microbench` measures, on the machine it runs on:

* **GEMM GFLOP/s** per thread count and precision: square ``torch.mm`` products in fp32,
  bf16 (where the CPU has a bf16 dot-product instruction: AVX512-BF16, AMX-BF16 or Arm
  BF16) and int8 (``torch._int_mm``, where the build has a CPU kernel);
* **memory bandwidth** per thread count: a stream-like copy of a 128 MiB buffer
  (bytes read + written per second, GB/s);
* **dispatch overhead** of each installed runtime: the median wall time of one call of a
  prepared session of a tiny model (one 8x8 ``MatMul`` + ``Relu``), i.e. what a call
  costs before any real work.

Each figure is the median of repeated timings; its dispersion (``spread``: the 75th over
the 25th percentile of the timings) is stored too. The whole run takes well under a minute on a 2-core machine. The
result is a JSON-able dict that goes into :attr:`DeviceProfile.microbench` and, through
:func:`microbench_features`, into the device features the learned models read.

Timing results depend on the machine being quiet: run it under the project's
measurement mutex (``flock /tmp/graphrec-measure.lock graphrec device bench``).

Example:
    >>> from graphrec.device.microbench import microbench_feature_names
    >>> microbench_feature_names()[:2]
    ('mb_gemm_fp32_gflops_t1', 'mb_gemm_fp32_gflops_tmax')
"""

from __future__ import annotations

import contextlib
import math
import platform
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graphrec.errors import GraphRecError

if TYPE_CHECKING:
    from graphrec.device.profile import DeviceProfile

__all__ = [
    "MICROBENCH_VERSION",
    "microbench_feature_names",
    "microbench_features",
    "run_microbench",
]

#: Layout version of the dict :func:`run_microbench` returns.
MICROBENCH_VERSION = 1

_BF16_FLAGS = {"avx512_bf16", "amx_bf16", "bf16"}


def _time_call(fn: Callable[[], object], *, min_s: float, max_n: int) -> list[float]:
    """Warm up once, then time ``fn`` until ``min_s`` seconds or ``max_n`` calls passed."""
    fn()
    times: list[float] = []
    end = time.perf_counter() + min_s
    while len(times) < max_n and (len(times) < 3 or time.perf_counter() < end):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def _summary(values: list[float]) -> dict[str, float]:
    """Median and spread (75th over 25th percentile of the timings)."""
    q1, _, q3 = statistics.quantiles(values, n=4) if len(values) > 1 else (values * 3)
    return {"median": statistics.median(values), "spread": (q3 / q1) if q1 > 0 else math.inf}


@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[Any]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield torch
    finally:
        torch.set_num_threads(before)


def _gemm(precision: str, threads: int, size: int, min_s: float) -> dict[str, float] | str:
    """GFLOP/s of ``size x size`` products; a string says why it cannot run."""
    with _torch_threads(threads) as torch:
        gen = torch.Generator().manual_seed(0)
        if precision == "int8":
            a = torch.randint(-64, 64, (size, size), dtype=torch.int8, generator=gen)
            b = torch.randint(-64, 64, (size, size), dtype=torch.int8, generator=gen)
            try:
                torch._int_mm(a, b)
            except (RuntimeError, NotImplementedError) as exc:
                return f"torch._int_mm has no CPU kernel here ({str(exc).splitlines()[0][:80]})"

            def fn() -> object:
                return torch._int_mm(a, b)
        else:
            dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[precision]
            a = torch.randn(size, size, generator=gen).to(dtype)
            b = torch.randn(size, size, generator=gen).to(dtype)

            def fn() -> object:
                return torch.mm(a, b)

        with torch.inference_mode():
            times = _time_call(fn, min_s=min_s, max_n=200)
    flops = 2.0 * size**3
    s = _summary(times)
    return {"gflops": flops / s["median"] / 1e9, "spread": s["spread"], "size": float(size)}


def _bandwidth(threads: int, mib: int, min_s: float) -> dict[str, float]:
    """Copy bandwidth (read + write) in GB/s of a ``mib`` MiB float32 buffer."""
    with _torch_threads(threads) as torch:
        n = mib * 2**20 // 4
        src = torch.ones(n, dtype=torch.float32)
        dst = torch.empty_like(src)
        times = _time_call(lambda: dst.copy_(src), min_s=min_s, max_n=50)
    s = _summary(times)
    return {"gbps": 2.0 * n * 4 / s["median"] / 1e9, "spread": s["spread"], "mib": float(mib)}


def _tiny_model(folder: Path) -> Path:
    """One ``MatMul`` (1x8 by 8x8) and a ``Relu``: a session call with no real work."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.eye(8, dtype=np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Relu", ["h"], ["y"])],
        "dispatch_probe",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = folder / "dispatch_probe.onnx"
    onnx.save(model, str(path))
    return path


def _dispatch(
    device: DeviceProfile, runtimes: Sequence[str] | None, min_s: float, cache: Path
) -> dict[str, Any]:
    """Median microseconds per call of each runtime's session on the tiny model."""
    import numpy as np

    from graphrec.runtimes.base import prepare_cached
    from graphrec.runtimes.inputs import model_spec
    from graphrec.runtimes.registry import available_adapters

    spec = model_spec(_tiny_model(cache))
    x = [np.ones((1, 8), dtype=np.float32)]
    out: dict[str, Any] = {}
    for adapter in available_adapters():
        if runtimes is not None and adapter.name not in runtimes:
            continue
        try:
            cands = [c for c in adapter.candidates(device, threads=(1,)) if c.precision == "fp32"]
            if not cands:
                out[adapter.name] = {"error": "no fp32 candidate at 1 thread"}
                continue
            cand = cands[0]
            why = adapter.check(spec, cand)
            if why is not None:
                out[adapter.name] = {"error": why}
                continue
            prepared = prepare_cached(adapter, spec, cand, cache / "prepared")
            session = adapter.load(prepared.path, spec, cand)
            run = adapter.run

            def call(run: Callable[[Any, Any], object] = run, session: Any = session) -> object:
                return run(session, x)

            times = _time_call(call, min_s=min_s, max_n=2000)
        except Exception as exc:  # one runtime failing must not stop the rest
            out[adapter.name] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"}
            continue
        s = _summary(times)
        out[adapter.name] = {
            "candidate": cand.candidate_id,
            "us_per_call": s["median"] * 1e6,
            "spread": s["spread"],
            "calls": len(times),
        }
    return out


def run_microbench(
    device: DeviceProfile | None = None,
    *,
    threads: Sequence[int] | None = None,
    gemm_size: int = 512,
    bandwidth_mib: int = 128,
    runtimes: Sequence[str] | None = None,
    min_s: float = 0.4,
    cache_dir: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Measure the device micro-benchmarks on this machine.

    Args:
        device: The profile of this machine (detected when ``None``); its ISA flags decide
            whether bf16 GEMMs are tried and its thread budget the default thread counts.
        threads: Thread counts (default ``1`` and the threads available, de-duplicated).
        gemm_size: Side of the square GEMM operands.
        bandwidth_mib: Size of the copied buffer in MiB.
        runtimes: Runtimes whose dispatch overhead is measured (default: all installed;
            ``[]``: none).
        min_s: Seconds of timing per figure (at least three calls each).
        cache_dir: Where the tiny model and its conversions go (default
            ``<graphrec cache>/microbench``, so later runs skip the conversions).
        progress: Called with a short line before each step.

    Returns:
        A JSON-able dict: ``version``, ``threads``, ``gemm`` (``precision -> threads ->
        {gflops, spread, size}``), ``gemm_skipped`` (``precision -> reason``),
        ``bandwidth`` (``threads -> {gbps, spread, mib}``), ``dispatch`` (``runtime ->
        {candidate, us_per_call, spread, calls}`` or ``{error}``), ``seconds`` and the
        ``python``/``torch`` versions used.

    Raises:
        GraphRecError: Bad thread counts or sizes.
    """
    import torch

    from graphrec.device.profile import DeviceProfile

    dev = device or DeviceProfile.detect(probe_gpus=False)
    if threads is None:
        threads = sorted({1, max(1, dev.threads_available)})
    threads = sorted(set(threads))
    if not threads or threads[0] < 1:
        raise GraphRecError(f"microbench thread counts must be >= 1, got {list(threads)}")
    if gemm_size < 16 or bandwidth_mib < 1:
        raise GraphRecError(
            f"microbench sizes too small: gemm_size={gemm_size} (>= 16), "
            f"bandwidth_mib={bandwidth_mib} (>= 1)"
        )
    say = progress or (lambda _msg: None)
    t_start = time.perf_counter()
    precisions = ["fp32"]
    skipped: dict[str, str] = {}
    if _BF16_FLAGS & set(dev.isa_flags):
        precisions.append("bf16")
    else:
        skipped["bf16"] = "no bf16 dot-product instruction in the ISA flags"
    precisions.append("int8")
    gemm: dict[str, dict[str, Any]] = {}
    for prec in precisions:
        for t in threads:
            say(f"GEMM {prec} {gemm_size}x{gemm_size}, {t} thread(s)")
            res = _gemm(prec, t, gemm_size, min_s)
            if isinstance(res, str):
                skipped[prec] = res
                break
            gemm.setdefault(prec, {})[str(t)] = res
    bandwidth: dict[str, Any] = {}
    for t in threads:
        say(f"memory bandwidth (copy {bandwidth_mib} MiB), {t} thread(s)")
        bandwidth[str(t)] = _bandwidth(t, bandwidth_mib, min_s)
    dispatch: dict[str, Any] = {}
    if runtimes is None or list(runtimes):
        say("dispatch overhead of each runtime (tiny model)")
        if cache_dir is None:
            from graphrec.bench.harness import default_cache_dir

            folder = default_cache_dir() / "microbench"
        else:
            folder = Path(cache_dir)
        folder.mkdir(parents=True, exist_ok=True)
        dispatch = _dispatch(dev, runtimes, min(min_s, 0.3), folder)
    return {
        "version": MICROBENCH_VERSION,
        "threads": list(threads),
        "gemm": gemm,
        "gemm_skipped": skipped,
        "bandwidth": bandwidth,
        "dispatch": dispatch,
        "seconds": round(time.perf_counter() - t_start, 2),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


# ---------------------------------------------------------------------- features
_DISPATCH_RUNTIMES = ("onnxruntime", "openvino", "torch")


def microbench_feature_names() -> tuple[str, ...]:
    """Names of :func:`microbench_features`, in order."""
    names: list[str] = []
    for prec in ("fp32", "bf16", "int8"):
        names += [f"mb_gemm_{prec}_gflops_t1", f"mb_gemm_{prec}_gflops_tmax"]
    names += ["mb_bandwidth_gbps_t1", "mb_bandwidth_gbps_tmax"]
    names += [f"mb_dispatch_log10_us_{rt}" for rt in _DISPATCH_RUNTIMES]
    names.append("mb_measured")
    return tuple(names)


def microbench_features(record: dict[str, Any] | None) -> dict[str, float]:
    """Fixed-order numeric features of a :func:`run_microbench` record (0 where missing).

    ``t1`` is one thread, ``tmax`` the largest thread count measured; GFLOP/s and GB/s
    are raw figures, dispatch overhead is ``log10(microseconds)``; ``mb_measured`` is 1
    when a record was given.
    """
    feats = dict.fromkeys(microbench_feature_names(), 0.0)
    if not record:
        return feats
    feats["mb_measured"] = 1.0

    def pick(table: dict[str, Any], key: str) -> tuple[float, float]:
        if not table:
            return 0.0, 0.0
        ts = sorted(table, key=int)
        return float(table[ts[0]].get(key, 0.0)), float(table[ts[-1]].get(key, 0.0))

    for prec in ("fp32", "bf16", "int8"):
        one, top = pick(record.get("gemm", {}).get(prec, {}), "gflops")
        feats[f"mb_gemm_{prec}_gflops_t1"] = one
        feats[f"mb_gemm_{prec}_gflops_tmax"] = top
    one, top = pick(record.get("bandwidth", {}), "gbps")
    feats["mb_bandwidth_gbps_t1"], feats["mb_bandwidth_gbps_tmax"] = one, top
    for rt in _DISPATCH_RUNTIMES:
        us = record.get("dispatch", {}).get(rt, {}).get("us_per_call")
        if us:
            feats[f"mb_dispatch_log10_us_{rt}"] = math.log10(max(float(us), 1e-3))
    return feats
