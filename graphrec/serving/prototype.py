"""The real prototype: the same policies drive Ray actors that run real inference.

Each server of the workload becomes a Ray actor holding one real inference session per
hosted variant (the zoo model, regenerated bit-identically by
:class:`graphrec.zoo.entry.ZooEntry`, on onnxruntime or OpenVINO as the server's
candidate says, with the candidate's thread count). A server's ``slowdown`` is applied
as artificial load: after each inference the actor keeps its CPU busy for
``(slowdown - 1)`` times the inference's time. The driver is a bounded load generator
over loopback (Ray on this machine only): it releases the drawn tasks at their arrival
times, asks the policy where each goes and what each idle server runs next, and
measures every task's end on its own clock. ``fail`` events kill the actor
(``ray.kill``): its running task fails with a reason and its queue is offered to the
other servers. The result also carries the simulator's figures for the same instance.

Example:
    >>> from graphrec.serving.prototype import serve_workload
    >>> out = serve_workload("examples/workloads/ray_small.yaml", policy="two_step")  # doctest: +SKIP
    >>> out["real"]["success_rate"], out["simulated"]["success_rate"]  # doctest: +SKIP
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from graphrec.serving.state import STATUSES, Assign, ClusterView, Instance, Outcome
from graphrec.serving.workload import Workload, WorkloadError, load_workload

__all__ = ["ServerActor", "observed_table", "serve_instance", "serve_workload", "with_table"]

_EWMA = 0.3


class ServerActor:
    """One server: real inference sessions of its hosted variants (a Ray actor class).

    Args:
        models: ``{"app/variant": (onnx bytes, {input name: array})}``.
        candidate: The server's deployment candidate id (runtime, options, threads).
        slowdown: Artificial load factor (1: none).
    """

    def __init__(
        self, models: dict[str, tuple[bytes, dict[str, Any]]], candidate: str, slowdown: float
    ) -> None:
        parts = candidate.split("/")
        runtime = parts[0]
        threads = 1
        for part in parts:
            if part.startswith("threads="):
                threads = int(part.split("=", 1)[1])
        self.slowdown = float(slowdown)
        self.sessions: dict[str, Any] = {}
        self.inputs = {k: feeds for k, (_, feeds) in models.items()}
        if runtime == "onnxruntime":
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
            level = "opt=basic" in candidate
            opts.graph_optimization_level = (
                ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
                if level
                else ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            )
            for key, (blob, _) in models.items():
                sess = ort.InferenceSession(blob, opts, providers=["CPUExecutionProvider"])
                self.sessions[key] = lambda feeds, s=sess: s.run(None, feeds)
        elif runtime == "openvino":
            import openvino as ov

            core = ov.Core()
            config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"}
            for key, (blob, _) in models.items():
                compiled = core.compile_model(core.read_model(blob), "CPU", config)
                self.sessions[key] = lambda feeds, c=compiled: c(feeds)
        else:
            raise ValueError(
                f"the prototype runs onnxruntime and openvino candidates, not {candidate!r}"
            )
        for key, run in self.sessions.items():  # warm up
            for _ in range(3):
                run(self.inputs[key])

    def run(self, key: str) -> float:
        """Run one inference of ``key`` (plus the artificial load); its wall time in ms."""
        start = time.perf_counter()
        self.sessions[key](self.inputs[key])
        spent = time.perf_counter() - start
        if self.slowdown > 1:
            until = time.perf_counter() + (self.slowdown - 1) * spent
            while time.perf_counter() < until:
                pass
        return (time.perf_counter() - start) * 1000

    def ready(self) -> bool:
        """True once the sessions are loaded and warm (the constructor has returned)."""
        return True

    def set_slowdown(self, factor: float) -> None:
        """Change the artificial load factor."""
        self.slowdown = float(factor)


def _calibrated_table(instance: Instance, actors: list[Any], runs: int) -> Any:
    """Latency distributions re-measured on the actors, all of them busy at once (as when
    serving), each figure a driver-observed round trip."""

    import numpy as np
    import ray

    table = instance.table
    keys = [
        [(int(a), int(v)) for a, v in zip(*np.nonzero(table.hosted[:, :, s]), strict=True)]
        for s in range(len(actors))
    ]
    times: dict[tuple[int, int, int], list[float]] = {}
    for r in range(runs * max(len(k) for k in keys)):
        sent = {}
        for s, actor in enumerate(actors):
            a, v = keys[s][r % len(keys[s])]
            sent[actor.run.remote(f"{a}/{v}")] = (a, v, s, time.perf_counter())
        pending = list(sent)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            end = time.perf_counter()
            a, v, s, start = sent[ready[0]]
            ray.get(ready[0])
            times.setdefault((a, v, s), []).append((end - start) * 1000)
    p10, p50, p90 = (np.full(table.p50_ms.shape, np.nan) for _ in range(3))
    for (a, v, s), ms in times.items():
        p10[a, v, s], p50[a, v, s], p90[a, v, s] = np.percentile(ms, [10, 50, 90])
    return _with_percentiles(
        table,
        p10,
        p50,
        p90,
        f"re-measured on the Ray actors (all busy at once, about {runs} driver-observed "
        "round trips per pair)",
    )


def _with_percentiles(table: Any, p10: Any, p50: Any, p90: Any, source: str) -> Any:
    """``table`` with these p10/p50/p90 and the log-normal ``mu``/``sigma`` they imply."""
    import dataclasses

    import numpy as np

    with np.errstate(invalid="ignore", divide="ignore"):
        mu = np.log(p50)
        sigma = np.maximum((np.log(p90) - np.log(p10)) / (2 * 1.2815515655446004), 0.0)
    return dataclasses.replace(
        table,
        p10_ms=p10,
        p50_ms=p50,
        p90_ms=p90,
        mu=mu,
        sigma=np.where(table.hosted, sigma, np.nan),
        source=source,
    )


def observed_table(
    table: Any, log: list[tuple[int, int, int, float, float]], least: int = 5
) -> Any:
    """``table`` with each (app, variant, server) that ran at least ``least`` times during
    a real run replaced by the p10/p50/p90 of the round trips the driver saw then."""

    import numpy as np

    times: dict[tuple[int, int, int], list[float]] = {}
    for s, a, v, _inside, seen in log:
        times.setdefault((a, v, s), []).append(seen)
    p10, p50, p90 = table.p10_ms.copy(), table.p50_ms.copy(), table.p90_ms.copy()
    used = 0
    for (a, v, s), ms in times.items():
        if len(ms) >= least:
            p10[a, v, s], p50[a, v, s], p90[a, v, s] = np.percentile(ms, [10, 50, 90])
            used += 1
    return _with_percentiles(
        table,
        p10,
        p50,
        p90,
        f"round trips seen during the real run ({used} pairs with >= {least} runs; "
        "the others as re-measured before it)",
    )


def with_table(instance: Instance, table: Any) -> Instance:
    """The same tasks with their latencies redrawn from ``table`` (same normal draws)."""
    import dataclasses

    import numpy as np

    old_mu = instance.table.mu[instance.app]
    old_sigma = instance.table.sigma[instance.app]
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(old_sigma > 0, (np.log(instance.latency_ms) - old_mu) / old_sigma, 0.0)
        latency = np.exp(table.mu[instance.app] + table.sigma[instance.app] * z)
    return dataclasses.replace(instance, table=table, latency_ms=latency)


def _model_inputs(model_id: str, cache: Path | None) -> tuple[bytes, dict[str, Any]]:
    import numpy as np

    from graphrec.zoo.entry import ZooEntry

    entry = ZooEntry.from_model_id(model_id)
    path = None if cache is None else cache / f"{model_id}.onnx"
    if path is not None and path.exists():
        blob = path.read_bytes()
    else:
        blob = entry.onnx_bytes()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(blob)
    rng = np.random.default_rng(0)
    feeds: dict[str, Any] = {}
    for spec in entry.input_specs:
        if spec.dtype == "int64":
            feeds[spec.name] = rng.integers(spec.low, spec.high, size=spec.shape, dtype=np.int64)
        else:
            feeds[spec.name] = rng.standard_normal(size=spec.shape).astype(np.float32)
    return blob, feeds


def serve_instance(
    instance: Instance,
    policy_name: str,
    cache: Path | None = None,
    actor_cpus: float = 0.0,
    service_log: list[tuple[int, int, int, float, float]] | None = None,
    calibrate_runs: int = 0,
) -> tuple[tuple[Outcome, ...], Instance]:
    """Serve ``instance`` for real on Ray actors with policy ``policy_name``.

    Ray must be initialised by the caller (``ray.init(num_cpus=2, include_dashboard=
    False)``); the actors are killed before returning.

    Args:
        instance: The tasks.
        policy_name: The policy.
        cache: Folder for the regenerated ONNX models.
        actor_cpus: Ray CPUs each actor reserves.
        service_log: If given, gets one ``(server, app, variant, ms inside the actor, ms
            the driver saw)`` per completed task.
        calibrate_runs: If positive, re-measure every (variant, server) on the fresh
            actors this many times just before serving; the policy then plans with those
            latencies (same arrivals and deadlines).

    Returns:
        One outcome per task, and the instance the policy planned with (``instance``, or
        a copy with the re-measured latencies: simulate that one to compare).
    """
    import ray

    from graphrec.serving.policies import make_policy

    wl = instance.workload
    table = instance.table
    policy = make_policy(policy_name, instance.seed)
    actors = _start_actors(instance, cache, actor_cpus)
    if calibrate_runs > 0:
        instance = with_table(instance, _calibrated_table(instance, actors, calibrate_runs))
        table = instance.table

    view = ClusterView(instance, len(wl.servers))
    outcomes: dict[int, Outcome] = {}
    inflight: dict[Any, int] = {}  # object ref -> server
    factor = [s.slowdown for s in wl.servers]
    events = list(wl.events)
    t0 = time.perf_counter()

    def now_ms() -> float:
        return (time.perf_counter() - t0) * 1000

    def offer(task: int, exclude: frozenset[int] = frozenset()) -> None:
        decision = policy.dispatch(task, view, exclude)
        if isinstance(decision, Assign):
            view.servers[decision.server].queue.append(task)
            view.planned[task] = decision.variant
            try_start(decision.server)
        else:
            outcomes[task] = Outcome("rejected", reason=decision.reason)

    def try_start(s: int) -> None:
        st = view.servers[s]
        while st.alive and st.running is None and st.queue:
            view.now_ms = now_ms()
            sel = policy.select(s, view)
            for task, reason in sel.drops:
                st.queue.remove(task)
                outcomes[task] = Outcome("rejected", server=s, reason=reason)
            for task in sel.moves:
                st.queue.remove(task)
            for task in sel.moves:
                offer(task, frozenset({s}))
            if sel.pick is None:
                if not sel.drops and not sel.moves:
                    return
                continue
            task, variant = sel.pick
            st.queue.remove(task)
            st.running, st.running_variant = task, variant
            st.running_since_ms = now_ms()
            app = int(instance.app[task])
            inflight[actors[s].run.remote(f"{app}/{variant}")] = s

    def kill(s: int) -> None:
        st = view.servers[s]
        if not st.alive:
            return
        st.alive = False
        ray.kill(actors[s], no_restart=True)
        name = wl.servers[s].name
        for ref, srv in list(inflight.items()):
            if srv == s:
                del inflight[ref]
        if st.running is not None:
            outcomes[st.running] = Outcome(
                "failed",
                s,
                st.running_variant,
                st.running_since_ms,
                reason=f"server {name!r} (Ray actor) was killed while running it",
            )
            st.running = None
        waiting, st.queue = st.queue, []
        for task in waiting:
            view.now_ms = now_ms()
            offer(task, frozenset({s}))

    order = sorted(range(instance.n_tasks), key=lambda t: float(instance.arrival_ms[t]))
    nxt = 0
    service_ms: list[tuple[int, int, int, float, float]] = []  # server, app, variant, ms x2
    try:
        while nxt < len(order) or inflight or events:
            now = now_ms()
            view.now_ms = now
            while events and events[0].at_ms <= now:
                ev = events.pop(0)
                if ev.kind == "fail":
                    kill(ev.server)
                else:
                    factor[ev.server] *= ev.factor
                    if view.servers[ev.server].alive:
                        actors[ev.server].set_slowdown.remote(factor[ev.server])
            while nxt < len(order) and float(instance.arrival_ms[order[nxt]]) <= now_ms():
                view.now_ms = now_ms()
                offer(order[nxt])
                nxt += 1
            upcoming = []
            if nxt < len(order):
                upcoming.append(float(instance.arrival_ms[order[nxt]]))
            if events:
                upcoming.append(events[0].at_ms)
            wait_s = max(0.0, (min(upcoming) - now_ms()) / 1000) if upcoming else None
            if not inflight:
                if wait_s is None:
                    break
                time.sleep(wait_s)
                continue
            ready, _ = ray.wait(list(inflight), num_returns=1, timeout=wait_s)
            for ref in ready:
                s = inflight.pop(ref)
                st = view.servers[s]
                end = now_ms()
                view.now_ms = end
                task = st.running
                assert task is not None
                try:
                    service_ms.append(
                        (
                            s,
                            int(instance.app[task]),
                            st.running_variant,
                            float(ray.get(ref)),
                            end - st.running_since_ms,
                        )
                    )
                except ray.exceptions.RayActorError:
                    outcomes[task] = Outcome(
                        "failed",
                        s,
                        st.running_variant,
                        st.running_since_ms,
                        reason=f"server {wl.servers[s].name!r} (Ray actor) died while running it",
                    )
                    st.running = None
                    st.alive = False
                    waiting, st.queue = st.queue, []
                    for t in waiting:
                        offer(t, frozenset({s}))
                    continue
                status = "met" if end <= float(instance.deadline_ms[task]) else "late"
                outcomes[task] = Outcome(status, s, st.running_variant, st.running_since_ms, end)
                expected = float(table.p50_ms[instance.app[task], st.running_variant, s])
                ratio = (end - st.running_since_ms) / expected
                st.speed_estimate = (1 - _EWMA) * st.speed_estimate + _EWMA * ratio
                st.running = None
                try_start(s)
    finally:
        for s, actor in enumerate(actors):
            if view.servers[s].alive:
                ray.kill(actor, no_restart=True)
    missing = [t for t in range(instance.n_tasks) if t not in outcomes]
    if missing:
        raise RuntimeError(f"the prototype lost tasks {missing[:10]}")
    if service_log is not None:
        service_log.extend(service_ms)
    return tuple(outcomes[t] for t in range(instance.n_tasks)), instance


def _start_actors(instance: Instance, cache: Path | None, actor_cpus: float) -> list[Any]:
    import ray

    wl = instance.workload
    table = instance.table
    blobs: dict[str, tuple[bytes, dict[str, Any]]] = {}
    actor_cls = ray.remote(num_cpus=actor_cpus, max_restarts=0)(ServerActor)
    actors: list[Any] = []
    for s, server in enumerate(wl.servers):
        models = {}
        for a, app in enumerate(wl.apps):
            for v, variant in enumerate(app.variants):
                if table.hosted[a, v, s]:
                    if variant.model not in blobs:
                        blobs[variant.model] = _model_inputs(variant.model, cache)
                    models[f"{a}/{v}"] = blobs[variant.model]
        actors.append(actor_cls.remote(models, server.candidate, server.slowdown))
    ray.get([a.ready.remote() for a in actors])
    return actors


def serve_workload(
    workload: str | Path | Workload,
    policies: list[str] | None = None,
    seed: int = 0,
    load: float | None = None,
    cache: str | Path | None = None,
    num_cpus: int = 2,
    calibrate_runs: int = 20,
) -> dict[str, Any]:
    """Serve one drawn instance of ``workload`` for real, and simulate the same instance.

    Args:
        workload: A workload file or a parsed workload.
        policies: Policy names (default: ``two_step``, ``edf``, ``round_robin``).
        seed: Seed of the drawn instance.
        load: Override the workload's load factor.
        cache: Folder to keep the regenerated ONNX models in.
        num_cpus: CPUs Ray may use, when this call starts Ray.
        calibrate_runs: Before serving, re-measure each (variant, server) on the actors
            this many times (driver-observed round trips); the instance is then drawn,
            the policies plan and the simulator runs with those latencies, so that the
            load factor means the same for the real run and the simulation; each policy's
            actors are re-measured again just before they serve, and the simulator runs
            on those figures (same arrivals, deadlines and draws). 0: use the
            measured dataset as it is (taken on an idle machine; a busy machine and
            Ray's round trip are slower, so the real run then sees a higher load).

    Returns:
        ``{"latency_source", "latency_p50_ms", "policies": {policy: {"real",
        "simulated", "simulated_as_seen", "reasons", "tasks"}}}``: metrics of the real
        run and of the simulator on the same instance, with the latencies re-measured
        before the run (``simulated``) and with those the run saw (``simulated_as_seen``,
        :func:`observed_table`).
    """
    import ray

    from graphrec.serving.arrivals import draw_instance
    from graphrec.serving.latency import latency_table
    from graphrec.serving.policies import make_policy
    from graphrec.serving.simulator import metrics, simulate

    wl = workload if isinstance(workload, Workload) else load_workload(workload)
    if load is not None:
        wl = wl.with_arrivals(load=load)
    for srv in wl.servers:
        if srv.candidate.split("/")[0] not in ("onnxruntime", "openvino"):
            raise WorkloadError(
                wl.source,
                f"server {srv.name!r}: the Ray prototype runs onnxruntime and openvino "
                f"candidates, not {srv.candidate!r}",
            )
    names = list(policies or ["two_step", "edf", "round_robin"])
    for name in names:
        make_policy(name)
    table = latency_table(wl)
    folder = None if cache is None else Path(cache)
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    out: dict[str, Any] = {"policies": {}}
    try:
        inst = draw_instance(wl, table, seed)
        if calibrate_runs > 0:
            actors = _start_actors(inst, folder, 0.0)
            try:
                table = _calibrated_table(inst, actors, calibrate_runs)
            finally:
                for actor in actors:
                    ray.kill(actor, no_restart=True)
            inst = draw_instance(wl, table, seed)
        out["latency_source"] = table.source
        out["latency_p50_ms"] = {
            f"{wl.apps[a].name}/{wl.apps[a].variants[v].name}@{wl.servers[s].name}": round(
                float(table.p50_ms[a, v, s]), 3
            )
            for a, v, s in zip(*table.hosted.nonzero(), strict=True)
        }
        for name in names:
            log: list[tuple[int, int, int, float, float]] = []
            real, planned = serve_instance(
                inst, name, folder, service_log=log, calibrate_runs=calibrate_runs
            )
            sim = simulate(planned, make_policy(name, seed)).outcomes
            seen = with_table(planned, observed_table(planned.table, log))
            sim_seen = simulate(seen, make_policy(name, seed)).outcomes
            reasons: dict[str, int] = {}
            for o in real:
                if o.reason:
                    reasons[o.reason] = reasons.get(o.reason, 0) + 1
            out["policies"][name] = {
                "real": metrics(planned, real),
                "simulated": metrics(planned, sim),
                "simulated_as_seen": metrics(seen, sim_seen),
                "latency_p50_ms": {
                    f"{wl.apps[a].name}/{wl.apps[a].variants[v].name}@{wl.servers[s].name}": round(
                        float(planned.table.p50_ms[a, v, s]), 3
                    )
                    for a, v, s in zip(*planned.table.hosted.nonzero(), strict=True)
                },
                "reasons": reasons,
                "tasks": inst.n_tasks,
            }
            if sum(out["policies"][name]["real"]["counts"][k] for k in STATUSES) != inst.n_tasks:
                raise RuntimeError(f"the prototype lost tasks under policy {name}")
    finally:
        if started:
            ray.shutdown()
    return out
