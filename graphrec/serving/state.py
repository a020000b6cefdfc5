"""What a scheduling policy sees and decides: tasks, server states, decisions, outcomes.

The simulator and the Ray prototype keep the same :class:`ClusterView` up to date and
ask the same policy the same two questions: where does an arriving task go
(:meth:`Policy.dispatch`), and what does an idle server run next, with which variant
(:meth:`Policy.select`). A policy reads only expected latencies (the measured
distributions, scaled by the observed slowdown of each server), never the latency a
run will really take.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import numpy as np

    from graphrec.serving.latency import LatencyTable
    from graphrec.serving.workload import Workload

__all__ = [
    "STATUSES",
    "Assign",
    "ClusterView",
    "Instance",
    "Outcome",
    "Policy",
    "Reject",
    "Selection",
    "ServerState",
    "utility",
]

#: Every task ends in exactly one of these.
STATUSES: tuple[str, ...] = ("met", "late", "rejected", "failed")


@dataclass(frozen=True)
class Instance:
    """One run's tasks (arrays indexed by task id), drawn from a workload for one seed.

    Attributes:
        workload: The workload.
        table: The latency distributions.
        arrival_ms: Arrival time of each task.
        app: Application index of each task.
        deadline_ms: Absolute deadline of each task (arrival + relative deadline).
        time_sensitivity: Weight of being on time, per task.
        accuracy_sensitivity: Weight of accuracy, per task.
        latency_ms: The latency each (task, variant, server) would really take, shape
            (tasks, variants, servers), before slowdown events; drawn from the measured
            distributions. Only the simulator and the exact optimum read it.
        seed: The seed it was drawn with.
    """

    workload: Workload
    table: LatencyTable
    arrival_ms: np.ndarray
    app: np.ndarray
    deadline_ms: np.ndarray
    time_sensitivity: np.ndarray
    accuracy_sensitivity: np.ndarray
    latency_ms: np.ndarray
    seed: int

    @property
    def n_tasks(self) -> int:
        """Number of tasks."""
        return len(self.arrival_ms)

    def accuracy(self, task: int, variant: int) -> float:
        """Accuracy of ``variant`` of the task's application."""
        return self.workload.apps[int(self.app[task])].variants[variant].accuracy

    def utility(self, task: int, variant: int) -> float:
        """The task's utility if served on time with ``variant`` (0 if it is not)."""
        return utility(
            float(self.time_sensitivity[task]),
            float(self.accuracy_sensitivity[task]),
            self.accuracy(task, variant),
        )


def utility(time_sensitivity: float, accuracy_sensitivity: float, accuracy: float) -> float:
    """Utility of a task served on time: ``(ts + as * accuracy) / (ts + as)``, in [0, 1].

    A task that misses its deadline (or is rejected) has utility 0. A time-sensitive task
    (large ``ts``) gets most of its utility from being on time, whatever the variant; an
    accuracy-sensitive one (large ``as``) gains from a more accurate variant.

    Example:
        >>> utility(1.0, 1.0, 0.9)
        0.95
    """
    total = time_sensitivity + accuracy_sensitivity
    if total <= 0:
        return 1.0
    return (time_sensitivity + accuracy_sensitivity * accuracy) / total


@dataclass
class ServerState:
    """A server as the scheduler sees it.

    Attributes:
        alive: False once the server has failed.
        queue: Task ids waiting on this server, in arrival order.
        running: The task running now, or ``None``.
        running_variant: Its variant.
        running_since_ms: When it started.
        speed_estimate: Observed latency over expected latency (an EWMA over recent
            completions); 1 means as measured.
    """

    alive: bool = True
    queue: list[int] = field(default_factory=list)
    running: int | None = None
    running_variant: int = -1
    running_since_ms: float = 0.0
    speed_estimate: float = 1.0


@dataclass(frozen=True)
class Assign:
    """Send a task to ``server``; ``variant`` is the planned one (the server may change it)."""

    server: int
    variant: int


@dataclass(frozen=True)
class Reject:
    """Refuse a task, with the reason in words."""

    reason: str


@dataclass
class Selection:
    """What an idle server does next.

    Attributes:
        pick: ``(task, variant)`` to start now, or ``None`` to stay idle.
        drops: ``(task, reason)`` pairs removed from the queue and rejected.
        moves: Tasks removed from the queue and offered to the other servers.
    """

    pick: tuple[int, int] | None = None
    drops: list[tuple[int, str]] = field(default_factory=list)
    moves: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Outcome:
    """How one task ended.

    Attributes:
        status: ``met``, ``late``, ``rejected`` or ``failed``.
        server: Server index it ran on (-1 if none).
        variant: Variant index it ran with (-1 if none).
        start_ms: When it started (NaN if it never did).
        end_ms: When it ended (NaN if it never did).
        reason: Why it was rejected or failed (empty otherwise).
    """

    status: str
    server: int = -1
    variant: int = -1
    start_ms: float = math.nan
    end_ms: float = math.nan
    reason: str = ""


class ClusterView:
    """The scheduler's view of the cluster at time ``now_ms``.

    Args:
        instance: The tasks being scheduled (policies read arrival, app, deadline and
            sensitivities, not ``latency_ms``).
        n_servers: Number of servers.
    """

    def __init__(self, instance: Instance, n_servers: int) -> None:
        self.instance = instance
        self.table = instance.table
        self.workload = instance.workload
        self.now_ms = 0.0
        self.servers = [ServerState() for _ in range(n_servers)]
        self.planned: dict[int, int] = {}
        self._order: dict[tuple[int, int], list[int]] = {}

    def live_servers(self, app: int, exclude: frozenset[int] = frozenset()) -> list[int]:
        """Live servers hosting at least one variant of ``app``."""
        return [
            s
            for s, st in enumerate(self.servers)
            if st.alive and s not in exclude and bool(self.table.hosted[app, :, s].any())
        ]

    def variants_by_speed(self, app: int, server: int) -> list[int]:
        """Variants of ``app`` hosted on ``server``, fastest (median latency) first."""
        key = (app, server)
        if key not in self._order:
            hosted = [
                int(v)
                for v in range(self.table.hosted.shape[1])
                if self.table.hosted[app, v, server]
            ]
            self._order[key] = sorted(
                hosted, key=lambda v: float(self.table.p50_ms[app, v, server])
            )
        return self._order[key]

    def expected_ms(self, app: int, variant: int, server: int) -> float:
        """Expected (median) latency, scaled by the server's observed slowdown."""
        return float(self.table.p50_ms[app, variant, server]) * self.servers[server].speed_estimate

    def quantile_ms(self, app: int, variant: int, server: int, q: float) -> float:
        """The ``q`` quantile of the latency, scaled by the observed slowdown."""
        from graphrec.serving.latency import lognormal_quantile

        mu = float(self.table.mu[app, variant, server])
        sigma = float(self.table.sigma[app, variant, server])
        return lognormal_quantile(mu, sigma, q) * self.servers[server].speed_estimate

    def default_variant(self, app: int, server: int) -> int:
        """The app's default variant if ``server`` hosts it, else the hosted one closest in
        accuracy."""
        app_spec = self.workload.apps[app]
        if self.table.hosted[app, app_spec.default_variant, server]:
            return app_spec.default_variant
        target = app_spec.variants[app_spec.default_variant].accuracy
        return min(
            self.variants_by_speed(app, server),
            key=lambda v: abs(app_spec.variants[v].accuracy - target),
        )

    def remaining_ms(self, server: int) -> float:
        """Expected time until the running task ends (0 when idle)."""
        st = self.servers[server]
        if st.running is None:
            return 0.0
        app = int(self.instance.app[st.running])
        expected = self.expected_ms(app, st.running_variant, server)
        return max(0.0, st.running_since_ms + expected - self.now_ms)

    def backlog_ms(self, server: int) -> float:
        """Expected work on ``server``: the running task's rest plus its queue's planned
        variants."""
        total = self.remaining_ms(server)
        for task in self.servers[server].queue:
            app = int(self.instance.app[task])
            total += self.expected_ms(
                app, self.planned.get(task, self.default_variant(app, server)), server
            )
        return total


class Policy(Protocol):
    """A scheduling policy: where tasks go and what each server runs next."""

    name: str

    def dispatch(
        self, task: int, view: ClusterView, exclude: frozenset[int] = frozenset()
    ) -> Assign | Reject:
        """Decide the server of an arriving (or displaced) task."""
        ...

    def select(self, server: int, view: ClusterView) -> Selection:
        """Decide what the idle ``server`` runs next, and with which variant."""
        ...
