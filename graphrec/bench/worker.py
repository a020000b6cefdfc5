"""The measuring worker: a subprocess that hosts one runtime and measures on request.

Started by :class:`graphrec.bench.pool.Worker` as ``python -m graphrec.bench.worker
--runtime NAME``. It talks JSON lines: one request per line on stdin, one response per
line on a private copy of the original stdout. File descriptor 1 is pointed at stderr
(a log file) first, so whatever a runtime prints from C code cannot corrupt the
protocol. The data segment is capped with ``RLIMIT_DATA``.

Fault injection, to test the harness's isolation with real crashes and hangs: when the
environment variable ``GRAPHREC_BENCH_FAULT`` is ``KIND:PATTERN`` (KIND one of
``fail``, ``segv``, ``hang``, ``oom``) the worker raises that fault on every measure
request whose candidate id matches the shell-style PATTERN; the pattern ``reference``
matches the onnxruntime reference run (``fail`` there stands for a model that onnxruntime
rejects). Nothing sets it outside tests.
"""

from __future__ import annotations

import argparse
import fnmatch
import gc
import json
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np

__all__ = ["FAULT_ENV", "main"]

FAULT_ENV = "GRAPHREC_BENCH_FAULT"
_MAX_ERROR_CHARS = 2000


def _error_text(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    if len(text) > _MAX_ERROR_CHARS:
        text = text[: _MAX_ERROR_CHARS - 3] + "..."
    return text


def _set_memory_limit(limit_mb: int) -> None:
    if limit_mb <= 0:
        return
    try:
        import resource

        limit = int(limit_mb) * 1024 * 1024
        _soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
    except (ImportError, ValueError, OSError):  # pragma: no cover - non-Linux
        pass


def _inject_fault(candidate_id: str) -> None:
    spec = os.environ.get(FAULT_ENV, "")
    kind, _, pattern = spec.partition(":")
    if not spec or not fnmatch.fnmatchcase(candidate_id, pattern or "*"):
        return
    if kind == "fail":
        raise RuntimeError(f"injected failure ({FAULT_ENV}={spec})")
    if kind == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)
    elif kind == "hang":
        time.sleep(1e6)
    elif kind == "oom":
        hog = []
        while True:  # touch memory until the cap stops us
            hog.append(np.ones(16 * 1024 * 1024, dtype=np.float32))


def _load_arrays(path: str | None) -> list[np.ndarray] | None:
    if not path:
        return None
    with np.load(path, allow_pickle=False) as data:
        return [data[f"arr_{i}"] for i in range(len(data.files))]


def _reset_peak_rss() -> bool:
    """Reset this process's resident-memory high-water mark (``VmHWM``); Linux >= 4.0."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return False
    return True


def _peak_rss_mb() -> float | None:
    """This process's resident-memory high-water mark in MiB (``VmHWM``)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        return None
    return None


def _autogroup() -> str | None:
    """This process's scheduling autogroup and its niceness (``/proc/self/autogroup``)."""
    try:
        with open("/proc/self/autogroup") as fh:
            return fh.read().strip()
    except OSError:
        return None


def _measure(
    adapter: Any, req: dict[str, Any], notify: Callable[[dict[str, Any]], None] | None = None
) -> dict[str, Any]:
    from graphrec.bench.protocol import (
        LoadProbe,
        MeasureConfig,
        Status,
        compare_outputs,
        measure_latency,
    )
    from graphrec.runtimes.base import Candidate, ModelSpec, UnsupportedModelError, prepare_cached
    from graphrec.runtimes.convert import ConversionMismatchError

    model = ModelSpec.from_dict(req["model"])
    cand = Candidate.parse(req["candidate"])
    cfg = MeasureConfig(**req["config"])
    _inject_fault(cand.candidate_id)
    out: dict[str, Any] = {"status": Status.OK, "error": None}
    reason = adapter.check(model, cand)
    if not reason:
        from graphrec.runtimes.tflite_models import tflite_reason

        reason = tflite_reason(cand.runtime, model)
    if reason:
        return {"status": Status.UNSUPPORTED, "error": reason}
    inputs = _load_arrays(req["inputs"])
    assert inputs is not None
    reference = _load_arrays(req.get("reference"))

    stage = Status.CONVERT_FAILED
    session = None
    try:
        prepared = prepare_cached(adapter, model, cand, Path(req["cache_dir"]))
        out["convert_s"] = prepared.convert_s
        out["convert_cached"] = prepared.cached
        stage = Status.LOAD_FAILED
        gc.collect()
        hwm = _reset_peak_rss()  # peak memory of this model: load, first run, timed runs
        t0 = time.perf_counter()
        session = adapter.load(prepared.path, model, cand)
        t1 = time.perf_counter()
        stage = Status.RUN_FAILED
        first = adapter.run(session, inputs)
        t2 = time.perf_counter()
        out["load_ms"] = (t1 - t0) * 1000.0
        out["first_run_ms"] = (t2 - t1) * 1000.0
        out["cold_start_ms"] = (t2 - t0) * 1000.0
        if reference is not None:
            agree = compare_outputs(first, reference, cand.precision, inputs=inputs)
            out.update(
                max_abs_err=agree.max_abs_err,
                max_rel_err=agree.max_rel_err,
                rel_l2_err=agree.rel_l2_err,
            )
            if not agree.ok:
                out["status"] = Status.WRONG_OUTPUT
                out["error"] = agree.reason
        del first
        if req.get("keep"):
            # Interleaved bursts (harness 2.0): the session stays loaded, and the parent
            # times it in short bursts between the other candidates' ("burst" requests).
            if hwm:
                out["worker_peak_rss_mb"] = _peak_rss_mb()
            handle = f"{cand.candidate_id}#{len(_SESSIONS)}#{time.perf_counter_ns()}"
            _SESSIONS[handle] = _Kept(adapter, session, inputs, cfg)
            out["handle"] = handle
            session = None
            return out
        if cfg.quiet_timing and notify is not None:
            notify({"phase": "timing"})  # the parent stops sampling until the answer
        probe = LoadProbe.start()
        stats = measure_latency(lambda: adapter.run(session, inputs), cfg)
        load = probe.stop()
        if hwm:
            out["worker_peak_rss_mb"] = _peak_rss_mb()
        out.update(
            stats.row_fields(),
            foreign_cpu=load.foreign,
            steal=load.steal,
            load_avg=load.load_avg,
            busy=int(load.busy(cfg)),
            cores=",".join(str(c) for c in probe.cores),
            nice=os.getpriority(os.PRIO_PROCESS, 0),
            autogroup=_autogroup(),
        )
    except MemoryError as exc:
        out = {**out, "status": Status.OUT_OF_MEMORY, "error": _error_text(exc)}
    except UnsupportedModelError as exc:
        out = {**out, "status": Status.UNSUPPORTED, "error": _error_text(exc)}
    except ConversionMismatchError as exc:  # ONNX -> torch conversion disagrees with ORT
        out = {**out, "status": Status.WRONG_OUTPUT, "error": _error_text(exc)}
    except Exception as exc:
        out = {**out, "status": stage, "error": _error_text(exc)}
        traceback.print_exc()
    finally:
        session = None
        gc.collect()
    return out


class _Kept:
    """A loaded session kept between burst requests."""

    def __init__(self, adapter: Any, session: Any, inputs: list[np.ndarray], cfg: Any) -> None:
        self.adapter = adapter
        self.session = session
        self.inputs = inputs
        self.cfg = cfg
        self.warm = False


#: Sessions kept for interleaved bursts, by handle.
_SESSIONS: dict[str, _Kept] = {}


def _burst(req: dict[str, Any], notify: Callable[[dict[str, Any]], None] | None) -> dict[str, Any]:
    """Time a kept session for ``seconds`` (at most ``max_runs`` runs); warm it up first
    the first time. Returns the per-run times and the machine's load meanwhile."""
    from graphrec.bench.protocol import LoadProbe

    kept = _SESSIONS.get(str(req.get("handle")))
    if kept is None:
        return {"status": "failed", "error": f"no kept session {req.get('handle')!r}"}
    run = kept.adapter.run
    try:
        if not kept.warm:
            for _ in range(kept.cfg.warmup_runs):
                run(kept.session, kept.inputs)
            kept.warm = True
        if kept.cfg.quiet_timing and notify is not None:
            notify({"phase": "timing"})
        probe = LoadProbe.start()
        seconds = float(req.get("seconds", 0.1))
        max_runs = max(int(req.get("max_runs", 10**6)), 1)
        samples: list[float] = []
        clock = time.perf_counter
        start = clock()
        while True:
            t0 = clock()
            run(kept.session, kept.inputs)
            t1 = clock()
            samples.append((t1 - t0) * 1000.0)
            if t1 - start >= seconds or len(samples) >= max_runs:
                break
        load = probe.stop()
    except Exception as exc:
        traceback.print_exc()
        return {"status": "run_failed", "error": _error_text(exc)}
    return {
        "status": "ok",
        "samples_ms": samples,
        "timed_s": clock() - start,
        "foreign_cpu": load.foreign,
        "steal": load.steal,
        "load_avg": load.load_avg,
        "cores": ",".join(str(c) for c in probe.cores),
        "worker_peak_rss_mb": _peak_rss_mb(),
    }


def _release(req: dict[str, Any]) -> dict[str, Any]:
    _SESSIONS.pop(str(req.get("handle")), None)
    gc.collect()
    return {"status": "ok"}


def _reference(req: dict[str, Any]) -> dict[str, Any]:
    """Run the onnxruntime reference configuration once and save its outputs."""
    from graphrec.runtimes.base import ModelSpec
    from graphrec.runtimes.ort import REFERENCE_CANDIDATE, OnnxRuntimeAdapter

    model = ModelSpec.from_dict(req["model"])
    inputs = _load_arrays(req["inputs"])
    assert inputs is not None
    try:
        _inject_fault("reference")
        from graphrec.runtimes.tflite_models import is_tflite_spec, tflite_reference

        if is_tflite_spec(model):  # a .tflite file: LiteRT's reference kernels
            outputs = tflite_reference(model, inputs)
        else:
            ort = OnnxRuntimeAdapter()
            session = ort.load(model.onnx_path, model, REFERENCE_CANDIDATE)
            outputs = ort.run(session, inputs)
    except Exception as exc:
        return {"status": "failed", "error": _error_text(exc)}
    out_path = Path(req["out"])
    tmp = out_path.with_name(out_path.name + ".tmp.npz")
    np.savez(tmp, *outputs)
    tmp.replace(out_path)
    return {"status": "ok", "n_outputs": len(outputs)}


def _send(stream: IO[str], payload: dict[str, Any]) -> None:
    stream.write(json.dumps(payload) + "\n")
    stream.flush()


def main(argv: list[str] | None = None) -> int:
    """Serve measure / reference requests until stdin closes."""
    parser = argparse.ArgumentParser(prog="python -m graphrec.bench.worker")
    parser.add_argument("--runtime", required=True)
    parser.add_argument("--memory-limit-mb", type=int, default=0)
    args = parser.parse_args(argv)

    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # runtime chatter on fd 1 goes to the log
    sys.stdout = sys.stderr
    _set_memory_limit(args.memory_limit_mb)

    from graphrec.runtimes.registry import get_adapter

    t0 = time.perf_counter()
    try:
        adapter = get_adapter(args.runtime)
        version = adapter.version()  # imports the runtime library
    except Exception as exc:
        _send(proto, {"ready": False, "error": _error_text(exc)})
        return 1
    _send(
        proto,
        {
            "ready": True,
            "version": version,
            "pid": os.getpid(),
            "import_s": time.perf_counter() - t0,
        },
    )
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        op = req.get("op")
        t = time.perf_counter()
        if op == "measure":
            resp = _measure(adapter, req, lambda msg: _send(proto, msg))
        elif op == "burst":
            resp = _burst(req, lambda msg: _send(proto, msg))
        elif op == "release":
            resp = _release(req)
        elif op == "reference":
            resp = _reference(req)
        else:
            resp = {"status": "failed", "error": f"unknown op {op!r}"}
        resp["wall_s"] = time.perf_counter() - t
        _send(proto, resp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
