"""Draw one run's tasks from a workload: arrivals, deadlines, sensitivities, latencies.

The arrival rate is ``load`` times the cluster's capacity, where a server's capacity is
the inverse of its mean service time for the workload's application mix run with each
application's default variant. Three processes:

* ``poisson``: exponential gaps at that rate;
* ``bursty``: on/off phases (exponential lengths, mean cycle ``phase_ms``); the on
  phases (``burst_fraction`` of the time) run at ``burst_factor`` times the mean rate;
* ``diurnal``: rate ``mean * (1 + amplitude * sin(2 pi t / period_ms))`` (thinning).

Every figure is drawn from one NumPy generator seeded by ``seed``, so the same seed
gives every policy the same arrivals and the same latencies.

Example:
    >>> from graphrec.serving.arrivals import draw_instance
    >>> inst = draw_instance(workload, table, seed=0)  # doctest: +SKIP
    >>> inst.n_tasks  # doctest: +SKIP
    400
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from graphrec.serving.state import Instance

if TYPE_CHECKING:
    import numpy as np

    from graphrec.serving.latency import LatencyTable
    from graphrec.serving.workload import Workload

__all__ = ["capacity_per_ms", "draw_instance"]


def capacity_per_ms(workload: Workload, table: LatencyTable) -> float:
    """Tasks per millisecond the cluster serves with default variants (the load's unit)."""
    import numpy as np

    mean = table.mean_ms()
    shares = np.array([a.share for a in workload.apps], dtype=float)
    shares = shares / shares.sum()
    total = 0.0
    for s in range(len(workload.servers)):
        service = 0.0
        weight = 0.0
        for a, app in enumerate(workload.apps):
            if shares[a] == 0 or not table.hosted[a, :, s].any():
                continue
            v = app.default_variant
            if not table.hosted[a, v, s]:
                hosted = np.flatnonzero(table.hosted[a, :, s])
                target = app.variants[v].accuracy
                v = int(min(hosted, key=lambda k: abs(app.variants[int(k)].accuracy - target)))
            service += shares[a] * float(mean[a, v, s])
            weight += shares[a]
        if weight > 0:
            total += weight / service
    return total


def _arrival_times(workload: Workload, rate: float, rng: np.random.Generator) -> np.ndarray:
    import numpy as np

    arr = workload.arrivals
    n = arr.tasks
    if arr.process == "poisson":
        return np.cumsum(rng.exponential(1.0 / rate, size=n))
    if arr.process == "bursty":
        on_rate = arr.burst_factor * rate
        off_rate = rate * (1 - arr.burst_factor * arr.burst_fraction) / (1 - arr.burst_fraction)
        times: list[float] = []
        t = 0.0
        on = bool(rng.random() < arr.burst_fraction)
        while len(times) < n:
            mean_len = arr.phase_ms * (arr.burst_fraction if on else 1 - arr.burst_fraction)
            end = t + rng.exponential(mean_len)
            r = on_rate if on else off_rate
            if r > 0:
                while len(times) < n:
                    t += rng.exponential(1.0 / r)
                    if t >= end:
                        break
                    times.append(t)
            t = end
            on = not on
        return np.array(times[:n])
    # diurnal: thinning of a Poisson process at the peak rate
    peak = rate * (1 + arr.amplitude)
    out: list[float] = []
    t = 0.0
    while len(out) < n:
        t += rng.exponential(1.0 / peak)
        current = rate * (1 + arr.amplitude * math.sin(2 * math.pi * t / arr.period_ms))
        if rng.random() * peak < current:
            out.append(t)
    return np.array(out)


def draw_instance(workload: Workload, table: LatencyTable, seed: int) -> Instance:
    """Draw the tasks of one run.

    Args:
        workload: The workload (its ``arrivals`` give the process, load and task count).
        table: Its latency distributions (:func:`graphrec.serving.latency.latency_table`).
        seed: Seed of the run.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    rate = workload.arrivals.load * capacity_per_ms(workload, table)
    arrival = _arrival_times(workload, rate, rng)
    n = len(arrival)
    shares = np.array([a.share for a in workload.apps], dtype=float)
    app = rng.choice(len(workload.apps), size=n, p=shares / shares.sum())
    lo = np.array([workload.apps[a].deadline_ms[0] for a in app])
    hi = np.array([workload.apps[a].deadline_ms[1] for a in app])
    deadline = arrival + rng.uniform(lo, hi)
    ts = rng.uniform(
        [workload.apps[a].time_sensitivity[0] for a in app],
        [workload.apps[a].time_sensitivity[1] for a in app],
    )
    acc = rng.uniform(
        [workload.apps[a].accuracy_sensitivity[0] for a in app],
        [workload.apps[a].accuracy_sensitivity[1] for a in app],
    )
    z = rng.standard_normal(size=(n, *table.mu.shape[1:]))
    mu = table.mu[app]
    sigma = table.sigma[app]
    with np.errstate(invalid="ignore"):
        latency = np.exp(mu + sigma * z)
    return Instance(
        workload=workload,
        table=table,
        arrival_ms=arrival,
        app=app.astype(int),
        deadline_ms=deadline,
        time_sensitivity=ts,
        accuracy_sensitivity=acc,
        latency_ms=latency,
        seed=seed,
    )
