"""The exact optimum of small instances: a CP-SAT model (OR-Tools) of the whole run.

Clairvoyant and offline: it knows every arrival and the latency each (task, variant,
server) will really take (the instance's drawn ``latency_ms``), so its utility bounds
what any non-preemptive policy reaches on the same instance. One optional interval per
(task, variant, server) that hosts it, inside ``[arrival, deadline]``; at most one per
task; no two on one server overlap; maximise the summed utility
(:func:`graphrec.serving.state.utility`, scaled to integers). Times are integers in
microseconds. Server events are not modelled (the instance must have none).

Example:
    >>> from graphrec.serving.optimum import solve_optimum
    >>> best = solve_optimum(instance, time_limit_s=10)  # doctest: +SKIP
    >>> best.utility, best.proven  # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from graphrec.serving.state import Instance, Outcome

__all__ = ["Optimum", "solve_optimum"]

_SCALE = 100_000  # utility -> integer objective


@dataclass(frozen=True)
class Optimum:
    """The best schedule found.

    Attributes:
        utility: Mean utility over all tasks (as :func:`graphrec.serving.simulator.metrics`).
        proven: True if CP-SAT proved it optimal within the time limit.
        bound: Mean-utility upper bound CP-SAT proved.
        outcomes: One per task (``met`` or ``rejected``).
    """

    utility: float
    proven: bool
    bound: float
    outcomes: tuple[Outcome, ...]


def solve_optimum(instance: Instance, time_limit_s: float = 20.0, workers: int = 1) -> Optimum:
    """Solve ``instance`` exactly (or best within ``time_limit_s``) with CP-SAT.

    Args:
        instance: A small instance (tens of tasks) without server events.
        time_limit_s: Solver time limit.
        workers: Solver threads.

    Raises:
        ValueError: The instance has server events, which the model does not cover.
    """
    from ortools.sat.python import cp_model

    if instance.workload.events:
        raise ValueError(
            f"{instance.workload.source}: the exact optimum does not model server events; "
            "use workload.without_events()"
        )
    table = instance.table
    n_var, n_srv = table.hosted.shape[1:]
    model = cp_model.CpModel()
    chosen: dict[tuple[int, int, int], cp_model.IntVar] = {}
    intervals: list[list[cp_model.IntervalVar]] = [[] for _ in range(n_srv)]
    starts: dict[tuple[int, int, int], cp_model.IntVar] = {}
    objective = []
    for i in range(instance.n_tasks):
        a = int(instance.app[i])
        release = math.ceil(float(instance.arrival_ms[i]) * 1000)
        due = math.floor(float(instance.deadline_ms[i]) * 1000)
        per_task = []
        for s in range(n_srv):
            for v in range(n_var):
                if not table.hosted[a, v, s]:
                    continue
                dur = max(1, math.ceil(float(instance.latency_ms[i, v, s]) * 1000))
                if release + dur > due:
                    continue
                x = model.new_bool_var(f"x_{i}_{v}_{s}")
                start = model.new_int_var(release, due - dur, f"s_{i}_{v}_{s}")
                iv = model.new_optional_fixed_size_interval_var(start, dur, x, f"iv_{i}_{v}_{s}")
                intervals[s].append(iv)
                chosen[i, v, s] = x
                starts[i, v, s] = start
                per_task.append(x)
                objective.append(round(instance.utility(i, v) * _SCALE) * x)
        if per_task:
            model.add_at_most_one(per_task)
    for s in range(n_srv):
        if intervals[s]:
            model.add_no_overlap(intervals[s])
    model.maximize(sum(objective))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = float(time_limit_s)
    solver.parameters.num_workers = int(workers)
    status = solver.solve(model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        raise RuntimeError(f"CP-SAT found no schedule (status {solver.status_name(status)})")
    outcomes = []
    total = 0.0
    for i in range(instance.n_tasks):
        picked = [(v, s) for (t, v, s), x in chosen.items() if t == i and solver.value(x)]
        if picked:
            v, s = picked[0]
            start_ms = solver.value(starts[i, v, s]) / 1000
            end_ms = start_ms + max(1, math.ceil(float(instance.latency_ms[i, v, s]) * 1000)) / 1000
            outcomes.append(Outcome("met", s, v, start_ms, end_ms))
            total += instance.utility(i, v)
        else:
            outcomes.append(Outcome("rejected", reason="left out by the optimal schedule"))
    n = instance.n_tasks
    return Optimum(
        utility=total / n,
        proven=status == cp_model.OPTIMAL,
        bound=solver.best_objective_bound / _SCALE / n,
        outcomes=tuple(outcomes),
    )
