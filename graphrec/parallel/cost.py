"""Time and memory of one training step under a parallelisation strategy.

A :class:`Strategy` cuts the layers into ``S`` pipeline stages, replicates every stage
over ``dp`` devices (data parallel), splits each replica's share of the batch into
``micro_batches`` and runs them with the GPipe or the 1F1B schedule.

The step time is simulated, not guessed from a closed form:

* every stage runs its forward (F) and backward (B) micro-batch passes in its schedule's
  order (GPipe: all F, then all B; 1F1B: ``S - s`` warm-up F, then alternating B and F,
  then the remaining B, as ``torch.distributed.pipelining`` orders them); a pass starts
  when its stage is free and its input has arrived (the previous stage's F plus a
  point-to-point send of the boundary activation, or the next stage's B plus the send of
  its gradient); the bubble is whatever idle time this leaves;
* layer times come from the profile at the micro-batch size, divided by the slowest
  replica's speed; ranks that share one machine (:attr:`Cluster.shared_speed` < 1) run
  slower while another rank computes at the same time, so each pass progresses at full
  speed while its rank is the only one busy and at ``shared_speed`` otherwise (data
  parallel replicas compute together throughout);
* data parallel without a pipeline all-reduces gradients in buckets
  (:attr:`Network.bucket_mb`) in reverse layer order, each starting once the backward has
  produced it; :attr:`Network.overlap` says how much of that can hide behind the
  backward. With a pipeline, each stage all-reduces its gradients in one piece after its
  last backward pass;
* the optimizer update costs :attr:`Network.optimizer_ms_per_mb` per MiB of the stage's
  parameters (Adam twice that);
* the engine's fixed costs, when calibrated: :attr:`Network.pipeline_pass_ms` per
  pipelined pass and :attr:`Network.dp_step_ms` per data-parallel step.

Memory per device: parameters, gradients, optimizer state (SGD momentum 1x, Adam 2x the
parameters), DistributedDataParallel's gradient buckets (1x, pure data parallel only)
and the activations of the micro-batches in flight (GPipe: all of them; 1F1B: ``S - s``
on stage ``s``).

Example:
    >>> s = Strategy(stages=(0, 4), dp=1, micro_batches=4, schedule="1f1b", devices=(0, 1))
    >>> evaluate(profile, cluster, s, batch=32).step_time_ms  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from graphrec.parallel.cluster import Cluster
from graphrec.parallel.profile import OPTIMIZERS, ModelProfile, PlanInputError

__all__ = ["SCHEDULES", "Cost", "Strategy", "evaluate", "simulate_pipeline", "validate"]

#: Pipeline schedules the cost model and the emitted runs know.
SCHEDULES: tuple[str, ...] = ("gpipe", "1f1b")

_MB = 1024.0 * 1024.0


@dataclass(frozen=True)
class Strategy:
    """A parallelisation of one training step.

    Attributes:
        stages: First layer index of each pipeline stage (``stages[0] == 0``).
        dp: Replicas of every stage (data-parallel degree).
        micro_batches: Micro-batches per replica per step.
        schedule: ``"gpipe"`` or ``"1f1b"`` (ignored with a single stage).
        devices: Device index per (stage, replica): stage ``s`` uses
            ``devices[s * dp : (s + 1) * dp]``.
    """

    stages: tuple[int, ...]
    dp: int
    micro_batches: int
    schedule: str
    devices: tuple[int, ...]

    @property
    def num_stages(self) -> int:
        """Number of pipeline stages."""
        return len(self.stages)

    @property
    def kind(self) -> str:
        """``"single"``, ``"dp"``, ``"pp"`` or ``"dp x pp"``."""
        if self.num_stages == 1:
            return "single" if self.dp == 1 else "dp"
        return "pp" if self.dp == 1 else "dp x pp"

    def stage_layers(self, num_layers: int) -> list[tuple[int, int]]:
        """``[first, end)`` layer range of each stage."""
        ends = [*self.stages[1:], num_layers]
        return list(zip(self.stages, ends, strict=True))

    def stage_devices(self, s: int) -> tuple[int, ...]:
        """Devices of stage ``s``."""
        return self.devices[s * self.dp : (s + 1) * self.dp]


@dataclass(frozen=True)
class Cost:
    """Predicted cost of a strategy.

    Attributes:
        step_time_ms: Time of one training step.
        memory_mb: Peak memory per used device, keyed by device index.
        feasible: Whether every device's memory fits.
        compute_ms: Busiest stage's forward+backward time over all its micro-batches.
        bubble_ms: Pipeline idle time of the busiest stage (step minus its work).
        allreduce_ms: All-reduce time not hidden behind the backward pass (max stage).
        optimizer_ms: Optimizer update time (max stage).
    """

    step_time_ms: float
    memory_mb: dict[int, float]
    feasible: bool
    compute_ms: float
    bubble_ms: float
    allreduce_ms: float
    optimizer_ms: float


def validate(strategy: Strategy, profile: ModelProfile, cluster: Cluster, batch: int) -> None:
    """Check a strategy against the model, the devices and the batch.

    Raises:
        PlanInputError: Naming what does not fit (stage cuts, devices, divisibility).
    """
    s = strategy
    L = profile.num_layers
    if cluster.size < 1:
        raise PlanInputError("there are zero devices to plan for")
    if s.schedule not in SCHEDULES:
        raise PlanInputError(f"unknown schedule {s.schedule!r}; choose one of {list(SCHEDULES)}")
    if not s.stages or s.stages[0] != 0 or list(s.stages) != sorted(set(s.stages)):
        raise PlanInputError(f"stage starts {list(s.stages)} must begin at 0 and increase")
    if s.stages[-1] >= L:
        raise PlanInputError(f"stage starts {list(s.stages)} go past the model's {L} layers")
    if s.dp < 1 or s.micro_batches < 1:
        raise PlanInputError("the data-parallel degree and micro-batches must be at least 1")
    need = s.num_stages * s.dp
    if len(s.devices) != need or len(set(s.devices)) != need:
        raise PlanInputError(f"{s.kind} with {s.num_stages} stages x {s.dp} needs {need} devices")
    if need > cluster.size or min(s.devices) < 0 or max(s.devices) >= cluster.size:
        raise PlanInputError(
            f"{s.kind} with {s.num_stages} stages x {s.dp} replicas needs {need} devices; "
            f"there are {cluster.size}"
        )
    if batch < 1:
        raise PlanInputError(f"the batch must be at least 1, got {batch}")
    if batch % s.dp:
        raise PlanInputError(f"batch {batch} is not divisible by the {s.dp} data-parallel replicas")
    if (batch // s.dp) % s.micro_batches:
        raise PlanInputError(
            f"batch {batch} over {s.dp} replica(s) gives {batch // s.dp} samples each, "
            f"not divisible by {s.micro_batches} micro-batches"
        )


def _order(s: int, n_stages: int, m: int, schedule: str) -> list[tuple[int, int]]:
    """Pass order of stage ``s``: (0 forward | 1 backward, micro-batch)."""
    if schedule == "gpipe" or n_stages == 1:
        return [(0, i) for i in range(m)] + [(1, i) for i in range(m)]
    warm = min(m, n_stages - s)
    out = [(0, i) for i in range(warm)]
    nf, nb = warm, 0
    while nf < m:
        out.append((1, nb))
        nb += 1
        out.append((0, nf))
        nf += 1
    out.extend((1, i) for i in range(nb, m))
    return out


def simulate_pipeline(
    fwd_ms: Sequence[float],
    bwd_ms: Sequence[float],
    send_ms: Sequence[float],
    micro_batches: int,
    schedule: str,
    *,
    concurrent: float = 1.0,
    replicas: int = 1,
) -> tuple[list[float], list[float]]:
    """Event simulation of one pipelined step.

    Args:
        fwd_ms: Forward time of one micro-batch per stage (its ranks computing alone).
        bwd_ms: Backward time of one micro-batch per stage (same).
        send_ms: Send time of one boundary tensor after each stage but the last.
        micro_batches: Micro-batches.
        schedule: ``"gpipe"`` or ``"1f1b"``.
        concurrent: Speed of a rank, relative to computing alone, while another rank
            of the same machine computes too (:attr:`Cluster.shared_speed`): passes
            progress at this rate whenever more than one rank is busy, at full rate
            otherwise (a two-level processor-sharing model).
        replicas: Ranks per stage (data-parallel replicas, computing in step).

    Returns:
        Per stage, the end of its last pass and the start of its last backward pass.
    """
    n = len(fwd_ms)
    m = micro_batches
    orders = [_order(s, n, m, schedule) for s in range(n)]
    done = [[[-1.0] * m for _ in range(n)] for _ in range(2)]
    ptr = [0] * n
    free = [0.0] * n
    last_b_start = [0.0] * n
    start_at: list[float | None] = [None] * n  # next pass's start, once its input is known
    remaining: list[float | None] = [None] * n  # work left in the running pass (ms alone)
    t = 0.0

    def ready(s: int) -> float | None:
        kind, i = orders[s][ptr[s]]
        if kind == 0:
            if s == 0:
                return 0.0
            return None if done[0][s - 1][i] < 0 else done[0][s - 1][i] + send_ms[s - 1]
        if done[0][s][i] < 0:
            return None
        if s == n - 1:
            return done[0][s][i]
        return None if done[1][s + 1][i] < 0 else done[1][s + 1][i] + send_ms[s]

    while any(ptr[s] < len(orders[s]) for s in range(n)):
        for s in range(n):
            if remaining[s] is None and start_at[s] is None and ptr[s] < len(orders[s]):
                r = ready(s)
                if r is not None:
                    start_at[s] = max(free[s], r)
        for s in range(n):
            at = start_at[s]
            if at is not None and at <= t + 1e-12:
                kind, _ = orders[s][ptr[s]]
                remaining[s] = fwd_ms[s] if kind == 0 else bwd_ms[s]
                if kind == 1:
                    last_b_start[s] = t
                start_at[s] = None
        busy = [s for s in range(n) if remaining[s] is not None]
        rate = 1.0 if len(busy) * replicas <= 1 else concurrent
        events = [t + (remaining[s] or 0.0) / rate for s in busy]
        events += [a for a in start_at if a is not None]
        if not events:  # pragma: no cover - both schedules are deadlock-free
            raise RuntimeError("pipeline schedule deadlocked")
        t_next = max(min(events), t)
        for s in busy:
            left = (remaining[s] or 0.0) - (t_next - t) * rate
            if left <= 1e-9 * max(1.0, t_next):
                kind, i = orders[s][ptr[s]]
                done[kind][s][i] = t_next
                free[s] = t_next
                ptr[s] += 1
                remaining[s] = None
            else:
                remaining[s] = left
        t = t_next
    return free, last_b_start


def evaluate(
    profile: ModelProfile,
    cluster: Cluster,
    strategy: Strategy,
    batch: int,
    *,
    optimizer: str = "sgd",
) -> Cost:
    """Predict one training step's time and per-device memory.

    Args:
        profile: The model's layers, with times (measured or estimated).
        cluster: Devices and network.
        strategy: The strategy (assumed valid; see :func:`validate`).
        batch: Global batch (samples per step over all replicas).
        optimizer: ``"sgd"`` (with momentum) or ``"adam"``.

    Raises:
        PlanInputError: An unknown optimizer.
    """
    if optimizer not in OPTIMIZERS:
        raise PlanInputError(f"unknown optimizer {optimizer!r}; choose one of {sorted(OPTIMIZERS)}")
    st = strategy
    net = cluster.network
    layers = profile.layers
    n_st = st.num_stages
    mb = batch / st.dp / st.micro_batches
    ranges = st.stage_layers(len(layers))
    speeds = [min(cluster.devices[d].speed for d in st.stage_devices(s)) for s in range(n_st)]
    f = [
        sum(la.fwd_time_ms(mb) for la in layers[a:b]) / speeds[s] for s, (a, b) in enumerate(ranges)
    ]
    bw = [
        sum(la.bwd_time_ms(mb) for la in layers[a:b]) / speeds[s] for s, (a, b) in enumerate(ranges)
    ]
    if n_st > 1:
        f = [x + net.pipeline_pass_ms for x in f]
        bw = [x + net.pipeline_pass_ms for x in bw]
    send = [net.p2p_ms(layers[b - 1].out_bytes * mb) for a, b in ranges[:-1]]
    shared = cluster.shared_speed
    ends, last_b = simulate_pipeline(
        f, bw, send, st.micro_batches, st.schedule, concurrent=shared, replicas=st.dp
    )
    pbytes = [sum(la.param_bytes for la in layers[a:b]) for a, b in ranges]
    comm_exposed = [0.0] * n_st
    finish = list(ends)
    if st.dp > 1:
        for s, (a, b) in enumerate(ranges):
            if n_st == 1:
                comm_exposed[s] = _bucketed_exposed(
                    profile, a, b, mb, speeds[s] * shared, last_b[s], ends[s], cluster, st.dp
                )
            else:
                comm_exposed[s] = net.allreduce_ms(pbytes[s], st.dp)
            comm_exposed[s] += net.dp_step_ms
            finish[s] = ends[s] + comm_exposed[s]
    opt_factor = 2.0 if optimizer == "adam" else 1.0
    # Replicas update at the same time (sharing the machine where it is shared).
    opt_speed = shared if st.dp > 1 else 1.0
    opt_ms = [
        pbytes[s] / _MB * net.optimizer_ms_per_mb * opt_factor / (speeds[s] * opt_speed)
        for s in range(n_st)
    ]
    total = [finish[s] + opt_ms[s] for s in range(n_st)]
    step = max(total)
    busiest = max(range(n_st), key=lambda s: f[s] + bw[s])
    work = (f[busiest] + bw[busiest]) * st.micro_batches
    # Memory.
    state = 2.0 + OPTIMIZERS[optimizer] + (1.0 if st.dp > 1 and n_st == 1 else 0.0)
    memory: dict[int, float] = {}
    feasible = True
    for s, (a, b) in enumerate(ranges):
        act = sum(la.act_bytes for la in layers[a:b]) * mb
        in_flight = (
            st.micro_batches
            if st.schedule == "gpipe" or n_st == 1
            else min(st.micro_batches, n_st - s)
        )
        if n_st == 1:
            in_flight = 1  # gradient accumulation frees each micro-batch's activations
        mem = (pbytes[s] * state + act * in_flight) / _MB
        for d in st.stage_devices(s):
            memory[d] = mem
            if mem > cluster.devices[d].memory_mb:
                feasible = False
    return Cost(
        step_time_ms=step,
        memory_mb=memory,
        feasible=feasible,
        compute_ms=work,
        bubble_ms=max(0.0, ends[busiest] - work),
        allreduce_ms=max(comm_exposed),
        optimizer_ms=max(opt_ms),
    )


def _bucketed_exposed(
    profile: ModelProfile,
    a: int,
    b: int,
    mb: float,
    speed: float,
    last_b_start: float,
    end: float,
    cluster: Cluster,
    dp: int,
) -> float:
    """All-reduce time left after the backward pass, with bucketing and overlap."""
    net = cluster.network
    cap = net.bucket_mb * _MB
    t = last_b_start
    comm_end = last_b_start
    serial = 0.0
    bucket = 0.0
    for la in reversed(profile.layers[a:b]):
        t += la.bwd_time_ms(mb) / speed
        bucket += la.param_bytes
        if bucket >= cap:
            dt = net.allreduce_ms(bucket, dp)
            comm_end = max(comm_end, t) + dt
            serial += dt
            bucket = 0.0
    if bucket > 0:
        dt = net.allreduce_ms(bucket, dp)
        comm_end = max(comm_end, t) + dt
        serial += dt
    hidden = max(0.0, comm_end - end)
    return net.overlap * hidden + (1.0 - net.overlap) * serial
