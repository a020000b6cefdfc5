"""Scheduling inference tasks across unequal servers (``graphrec schedule``).

Tasks of several applications arrive over time, each with a deadline, a time
sensitivity and an accuracy sensitivity; each application has model variants (faster
and less accurate, or slower and more accurate); servers differ in runtime, threads and
speed and host different variants. The per-(variant, server) latency distributions come
from graphrec's measured dataset. Policies (the seed's two-step method, INFaaS-style,
EDF, FIFO, round-robin, least-loaded, random) run in a discrete-event simulator
(:mod:`~graphrec.serving.simulator`), against the exact optimum of small instances
(:mod:`~graphrec.serving.optimum`), and on real onnxruntime sessions in Ray actors
(:mod:`~graphrec.serving.prototype`).

Example:
    >>> from graphrec.serving import simulate_workload
    >>> out = simulate_workload("examples/workloads/two_apps.yaml", seeds=5)  # doctest: +SKIP
    >>> sorted(out["two_step"])  # doctest: +SKIP
    ['counts', 'mean_accuracy', 'p99_ms', 'success_rate', 'utility']
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from graphrec.serving.workload import Workload, WorkloadError, load_workload, parse_workload

__all__ = ["Workload", "WorkloadError", "load_workload", "parse_workload", "simulate_workload"]


def simulate_workload(
    workload: str | Path | Workload,
    policies: list[str] | None = None,
    seeds: int = 30,
    first_seed: int = 0,
    load: float | None = None,
) -> dict[str, Any]:
    """Run policies on the same arrivals for ``seeds`` seeds; mean and 95 % interval.

    Args:
        workload: A workload file or a parsed :class:`Workload`.
        policies: Policy names (default: all of them).
        seeds: Number of seeds.
        first_seed: The first seed.
        load: Override the workload's load factor.

    Returns:
        ``{policy: summary}`` as :func:`graphrec.serving.simulator.summarize` gives it.
    """
    from graphrec.serving.arrivals import draw_instance
    from graphrec.serving.latency import latency_table
    from graphrec.serving.policies import POLICY_NAMES, make_policy
    from graphrec.serving.simulator import metrics, simulate, summarize

    wl = workload if isinstance(workload, Workload) else load_workload(workload)
    if load is not None:
        wl = wl.with_arrivals(load=load)
    names = list(policies or POLICY_NAMES)
    for name in names:
        make_policy(name)  # unknown names fail before any work
    table = latency_table(wl)
    per_policy: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    for seed in range(first_seed, first_seed + seeds):
        inst = draw_instance(wl, table, seed)
        for name in names:
            per_policy[name].append(metrics(inst, simulate(inst, make_policy(name, seed)).outcomes))
    return {name: summarize(rows) for name, rows in per_policy.items()}
