"""A discrete-event simulator that runs a policy on one drawn instance.

Events (a heap ordered by time, then by insertion): task arrivals, task completions and
server events (``fail``: the server dies, its running task fails and its queue is
offered to the other servers; ``slowdown``: later runs on it take ``factor`` times
longer). A task started on server ``s`` with variant ``v`` takes the instance's drawn
``latency_ms[task, v, s]`` times the server's current slowdown. After each completion
the server's ``speed_estimate`` (what the policies see) moves toward the observed ratio.

Every task ends in exactly one outcome (``met``, ``late``, ``rejected`` with a reason,
``failed`` with a reason); :func:`simulate` checks that none is lost.

Example:
    >>> from graphrec.serving import simulate_workload
    >>> res = simulate_workload("examples/workloads/two_apps.yaml", seeds=3)  # doctest: +SKIP
    >>> res["edf"]["success_rate"]["mean"]  # doctest: +SKIP
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from graphrec.serving.state import STATUSES, Assign, ClusterView, Instance, Outcome, Policy

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["RunResult", "metrics", "simulate", "summarize"]

_EWMA = 0.3


@dataclass(frozen=True)
class RunResult:
    """One policy on one instance.

    Attributes:
        policy: Policy name.
        outcomes: One per task, indexed by task id.
    """

    policy: str
    outcomes: tuple[Outcome, ...]


class _Sim:
    def __init__(self, instance: Instance, policy: Policy) -> None:
        self.inst = instance
        self.policy = policy
        self.n_servers = len(instance.workload.servers)
        self.view = ClusterView(instance, self.n_servers)
        self.factor = [1.0] * self.n_servers
        self.outcomes: dict[int, Outcome] = {}
        self.heap: list[tuple[float, int, str, int]] = []
        self.seq = 0
        self.generation = [0] * self.n_servers

    def push(self, t: float, kind: str, data: int) -> None:
        heapq.heappush(self.heap, (t, self.seq, kind, data))
        self.seq += 1

    def offer(self, task: int, exclude: frozenset[int] = frozenset()) -> None:
        decision = self.policy.dispatch(task, self.view, exclude)
        if isinstance(decision, Assign):
            st = self.view.servers[decision.server]
            if not st.alive:
                raise RuntimeError(f"policy {self.policy.name} sent task {task} to a dead server")
            st.queue.append(task)
            self.view.planned[task] = decision.variant
            self.try_start(decision.server)
        else:
            self.outcomes[task] = Outcome("rejected", reason=decision.reason)

    def try_start(self, s: int) -> None:
        st = self.view.servers[s]
        while st.alive and st.running is None and st.queue:
            sel = self.policy.select(s, self.view)
            for task, reason in sel.drops:
                st.queue.remove(task)
                self.outcomes[task] = Outcome("rejected", server=s, reason=reason)
            for task in sel.moves:
                st.queue.remove(task)
            for task in sel.moves:
                self.offer(task, exclude=frozenset({s}))
            if sel.pick is None:
                if not sel.drops and not sel.moves:
                    return
                continue
            task, variant = sel.pick
            if (
                not self.inst.workload.servers[s].hosts
                or not self.inst.table.hosted[self.inst.app[task], variant, s]
            ):
                raise RuntimeError(
                    f"policy {self.policy.name} ran an unhosted variant on server {s}"
                )
            st.queue.remove(task)
            st.running = task
            st.running_variant = variant
            st.running_since_ms = self.view.now_ms
            duration = float(self.inst.latency_ms[task, variant, s]) * self.factor[s]
            self.push(self.view.now_ms + duration, "done", s * 1_000_000_000 + self.generation[s])

    def finish(self, s: int) -> None:
        st = self.view.servers[s]
        task = st.running
        assert task is not None
        now = self.view.now_ms
        variant = st.running_variant
        status = "met" if now <= self.inst.deadline_ms[task] + 1e-9 else "late"
        self.outcomes[task] = Outcome(status, s, variant, st.running_since_ms, now)
        expected = float(self.inst.table.p50_ms[self.inst.app[task], variant, s])
        ratio = (now - st.running_since_ms) / expected
        st.speed_estimate = (1 - _EWMA) * st.speed_estimate + _EWMA * ratio
        st.running = None
        self.try_start(s)

    def fail(self, s: int) -> None:
        st = self.view.servers[s]
        if not st.alive:
            return
        st.alive = False
        self.generation[s] += 1
        name = self.inst.workload.servers[s].name
        if st.running is not None:
            self.outcomes[st.running] = Outcome(
                "failed",
                s,
                st.running_variant,
                st.running_since_ms,
                reason=f"server {name!r} failed while running it",
            )
            st.running = None
        waiting, st.queue = st.queue, []
        for task in waiting:
            self.offer(task, exclude=frozenset({s}))

    def run(self) -> RunResult:
        inst = self.inst
        for task in range(inst.n_tasks):
            self.push(float(inst.arrival_ms[task]), "arrive", task)
        for k, event in enumerate(inst.workload.events):
            self.push(event.at_ms, "event", k)
        while self.heap:
            t, _, kind, data = heapq.heappop(self.heap)
            self.view.now_ms = t
            if kind == "arrive":
                self.offer(data)
            elif kind == "done":
                s, gen = divmod(data, 1_000_000_000)
                if gen == self.generation[s]:
                    self.finish(s)
            else:
                event = inst.workload.events[data]
                if event.kind == "fail":
                    self.fail(event.server)
                else:
                    self.factor[event.server] *= event.factor
        missing = [t for t in range(inst.n_tasks) if t not in self.outcomes]
        if missing:
            raise RuntimeError(f"policy {self.policy.name} lost tasks {missing[:10]}")
        return RunResult(self.policy.name, tuple(self.outcomes[t] for t in range(inst.n_tasks)))


def simulate(instance: Instance, policy: Policy) -> RunResult:
    """Run ``policy`` on ``instance``; every task gets exactly one outcome.

    Raises:
        RuntimeError: The policy lost a task or broke the rules (a dead or unhosted
            server); this is a bug in the policy, never the workload's fault.
    """
    return _Sim(instance, policy).run()


def metrics(instance: Instance, outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """Success rate, mean accuracy of tasks served on time, mean utility, p99 latency.

    * ``success_rate``: tasks that ended by their deadline / all tasks;
    * ``mean_accuracy``: mean accuracy of the variants of the tasks served on time
      (NaN if none);
    * ``utility``: mean over all tasks of :func:`~graphrec.serving.state.utility`
      (0 for a task not served on time);
    * ``p99_ms``: 99th percentile of arrival-to-end time of the tasks that ran to the
      end (on time or late; NaN if none);
    * ``counts``: tasks per status.
    """
    import numpy as np

    n = len(outcomes)
    met = [t for t, o in enumerate(outcomes) if o.status == "met"]
    ran = [t for t, o in enumerate(outcomes) if o.status in ("met", "late")]
    acc = [instance.accuracy(t, outcomes[t].variant) for t in met]
    util = sum(instance.utility(t, outcomes[t].variant) for t in met)
    response = [outcomes[t].end_ms - float(instance.arrival_ms[t]) for t in ran]
    return {
        "success_rate": len(met) / n if n else math.nan,
        "mean_accuracy": float(np.mean(acc)) if acc else math.nan,
        "utility": util / n if n else math.nan,
        "p99_ms": float(np.percentile(response, 99)) if response else math.nan,
        "counts": {s: sum(o.status == s for o in outcomes) for s in STATUSES},
    }


def summarize(per_seed: Sequence[dict[str, Any]], confidence: float = 0.95) -> dict[str, Any]:
    """Mean and a t confidence interval of each metric over seeds (NaN values skipped).

    Returns:
        ``{metric: {"mean", "ci_low", "ci_high", "n"}}`` for ``success_rate``,
        ``mean_accuracy``, ``utility`` and ``p99_ms``, plus summed ``counts``.
    """
    import numpy as np
    from scipy import stats

    out: dict[str, Any] = {}
    for key in ("success_rate", "mean_accuracy", "utility", "p99_ms"):
        values = np.array([m[key] for m in per_seed], dtype=float)
        values = values[~np.isnan(values)]
        if len(values) == 0:
            out[key] = {"mean": math.nan, "ci_low": math.nan, "ci_high": math.nan, "n": 0}
            continue
        mean = float(values.mean())
        if len(values) > 1 and values.std() > 0:
            half = float(stats.t.ppf(0.5 + confidence / 2, len(values) - 1) * stats.sem(values))
        else:
            half = 0.0
        out[key] = {
            "mean": mean,
            "ci_low": mean - half,
            "ci_high": mean + half,
            "n": len(values),
        }
    counts: dict[str, int] = {}
    for m in per_seed:
        for k, v in m["counts"].items():
            counts[k] = counts.get(k, 0) + int(v)
    out["counts"] = counts
    return out
