"""Scheduling policies: the seed's two-step method, INFaaS-style selection, baselines.

Every policy answers two questions (see :class:`graphrec.serving.state.Policy`):
where an arriving task goes, and what an idle server runs next with which variant.

* ``two_step`` (seed 001): **offloading** weighs each server's load (its queue), its
  performance (the measured latency of the app's variants there, scaled by the
  observed slowdown) and the task's deadline: the task goes where it can be served on
  time with the most useful variant without making the tasks already queued there
  late; a task no server can finish in time is rejected at once, with the reason.
  **Scheduling** on each server orders its queue by deadline, sheds (offers to other
  servers, else rejects) the tasks of least utility per millisecond when the queue
  cannot all be served in time, and picks for the task it starts the variant of
  highest utility (time and accuracy sensitivity, :func:`~graphrec.serving.state.utility`)
  that still leaves every queued task feasible.
* ``infaas``: the INFaaS idea, cheapest variant that meets the task's latency and
  accuracy targets (accuracy target: the app's ``accuracy_floor``), on the server where
  it finishes first; first-come first-served on the server.
* Baselines with the app's default variant: ``fifo`` and ``edf`` (sent to the server
  with the earliest expected finish, run first-come first-served or earliest deadline
  first), ``round_robin``, ``least_loaded`` (fewest waiting tasks) and ``random``
  (first-come first-served).

Baselines run every task they are given, dropping only tasks whose deadline has passed
before they could start.

Example:
    >>> from graphrec.serving.policies import make_policy, POLICY_NAMES
    >>> make_policy("edf", seed=0).name
    'edf'
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from graphrec.serving.state import Assign, ClusterView, Reject, Selection

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "POLICY_NAMES",
    "BaselinePolicy",
    "InfaasPolicy",
    "TwoStepPolicy",
    "make_policy",
]

#: Every policy the simulator and the prototype run, in report order.
POLICY_NAMES: tuple[str, ...] = (
    "two_step",
    "infaas",
    "edf",
    "fifo",
    "round_robin",
    "least_loaded",
    "random",
)


def _no_server(view: ClusterView, task: int) -> Reject:
    app = view.workload.apps[int(view.instance.app[task])].name
    return Reject(f"no live server hosts app {app!r}")


def _expired(view: ClusterView, server: int) -> list[tuple[int, str]]:
    now = view.now_ms
    name = view.workload.servers[server].name
    return [
        (t, f"its deadline passed while it waited on server {name!r}")
        for t in view.servers[server].queue
        if view.instance.deadline_ms[t] <= now
    ]


class BaselinePolicy:
    """A fixed-variant baseline: a dispatch rule plus FIFO or EDF order.

    Args:
        name: Policy name.
        dispatch_rule: ``earliest_finish``, ``round_robin``, ``least_loaded`` or ``random``.
        order: ``fifo`` or ``edf``.
        seed: Seed of the ``random`` rule.
    """

    def __init__(self, name: str, dispatch_rule: str, order: str, seed: int = 0) -> None:
        self.name = name
        self.dispatch_rule = dispatch_rule
        self.order = order
        self.seed = seed
        self._next = 0
        self._rng: np.random.Generator | None = None

    def dispatch(
        self, task: int, view: ClusterView, exclude: frozenset[int] = frozenset()
    ) -> Assign | Reject:
        """Send the task by the dispatch rule; run the app's default variant there."""
        app = int(view.instance.app[task])
        live = view.live_servers(app, exclude)
        if not live:
            return _no_server(view, task)
        if self.dispatch_rule == "round_robin":
            n = len(view.servers)
            for _ in range(n):
                s = self._next % n
                self._next += 1
                if s in live:
                    break
        elif self.dispatch_rule == "least_loaded":
            s = min(
                live,
                key=lambda k: len(view.servers[k].queue) + (view.servers[k].running is not None),
            )
        elif self.dispatch_rule == "random":
            if self._rng is None:
                import numpy as np

                self._rng = np.random.default_rng(self.seed)
            s = int(self._rng.choice(live))
        else:
            s = min(
                live,
                key=lambda k: (
                    view.backlog_ms(k) + view.expected_ms(app, view.default_variant(app, k), k)
                ),
            )
        return Assign(s, view.default_variant(app, s))

    def select(self, server: int, view: ClusterView) -> Selection:
        """Drop expired tasks, then start the first (FIFO) or earliest-deadline (EDF) one."""
        drops = _expired(view, server)
        dropped = {t for t, _ in drops}
        waiting = [t for t in view.servers[server].queue if t not in dropped]
        if not waiting:
            return Selection(None, drops)
        if self.order == "edf":
            task = min(waiting, key=lambda t: (view.instance.deadline_ms[t], t))
        else:
            task = waiting[0]
        variant = view.planned.get(task, view.default_variant(int(view.instance.app[task]), server))
        return Selection((task, variant), drops)


class InfaasPolicy:
    """INFaaS-style: the cheapest variant meeting the latency and accuracy targets.

    Args:
        name: Policy name.
    """

    def __init__(self, name: str = "infaas") -> None:
        self.name = name

    def dispatch(
        self, task: int, view: ClusterView, exclude: frozenset[int] = frozenset()
    ) -> Assign | Reject:
        """Pick (server, variant): cheapest meeting both targets; else most accurate on
        time; else the earliest finish."""
        inst = view.instance
        app = int(inst.app[task])
        spec = view.workload.apps[app]
        live = view.live_servers(app, exclude)
        if not live:
            return _no_server(view, task)
        both: list[tuple[float, float, int, int]] = []
        on_time: list[tuple[float, float, int, int]] = []
        any_: list[tuple[float, int, int]] = []
        for s in live:
            start = view.now_ms + view.backlog_ms(s)
            for v in view.variants_by_speed(app, s):
                cost = view.expected_ms(app, v, s)
                finish = start + cost
                any_.append((finish, s, v))
                if finish <= inst.deadline_ms[task]:
                    on_time.append((-spec.variants[v].accuracy, finish, s, v))
                    if spec.variants[v].accuracy >= spec.accuracy_floor - 1e-12:
                        both.append((cost, finish, s, v))
        if both:
            _, _, s, v = min(both)
        elif on_time:
            _, _, s, v = min(on_time)
        else:
            _, s, v = min(any_)
        return Assign(s, v)

    def select(self, server: int, view: ClusterView) -> Selection:
        """First come, first served, with the variant chosen at dispatch."""
        drops = _expired(view, server)
        dropped = {t for t, _ in drops}
        waiting = [t for t in view.servers[server].queue if t not in dropped]
        if not waiting:
            return Selection(None, drops)
        task = waiting[0]
        app = int(view.instance.app[task])
        return Selection((task, view.planned.get(task, view.default_variant(app, server))), drops)


class TwoStepPolicy:
    """The seed's two-step method: deadline/load/performance-aware offloading, then
    per-server ordering and variant selection by time and accuracy sensitivity.

    Args:
        name: Policy name.
        own_quantile: Latency quantile used for the started (or arriving) task's own
            deadline check; a margin against slow runs (0.5: none).
        reserve_ms: Time kept free after the started task when checking that an upgrade
            leaves the queue feasible (room for tasks still to arrive).
        price_weight: Scale of the price of server time: a variant is chosen for the
            utility it adds minus its latency times ``price_weight * rho**2 / T``, where
            ``rho`` is the offered load (observed arrival rate) over the capacity with
            fastest variants and ``T`` the mean fastest service time. 0.3 was chosen on
            seeds 100-104 of ``two_apps.yaml`` (the benchmark reports seeds 0-29).
        price_queue: The price applies in full once this many other tasks wait on the
            server, in proportion below (an idle queue makes time free).
    """

    def __init__(
        self,
        name: str = "two_step",
        own_quantile: float = 0.8,
        reserve_ms: float = 0.0,
        price_weight: float = 0.3,
        price_queue: float = 3.0,
    ) -> None:
        self.name = name
        self.own_quantile = own_quantile
        self.reserve_ms = reserve_ms
        self.price_weight = price_weight
        self.price_queue = price_queue
        self._seen: set[int] = set()
        self._last_arrival_ms: float | None = None
        self._gap_ms: float | None = None
        self._fast_capacity: float | None = None

    def _observe_arrival(self, task: int, view: ClusterView) -> None:
        if task in self._seen:
            return
        self._seen.add(task)
        now = view.now_ms
        if self._last_arrival_ms is not None:
            gap = now - self._last_arrival_ms
            self._gap_ms = gap if self._gap_ms is None else 0.95 * self._gap_ms + 0.05 * gap
        self._last_arrival_ms = now

    def _price_per_ms(self, view: ClusterView) -> float:
        """Utility a millisecond of server time is worth now: grows with the offered load
        measured against the cluster's capacity when every task runs its fastest variant."""
        if self.price_weight <= 0 or not self._gap_ms:
            return 0.0
        if self._fast_capacity is None:
            import numpy as np

            shares = np.array([a.share for a in view.workload.apps], dtype=float)
            shares /= shares.sum()
            cap = 0.0
            for s in range(len(view.servers)):
                t = sum(
                    shares[a] * float(np.nanmin(view.table.p50_ms[a, :, s]))
                    for a in range(len(shares))
                    if view.table.hosted[a, :, s].any()
                )
                cap += 1.0 / t if t > 0 else 0.0
            self._fast_capacity = cap
        live = [st for st in view.servers if st.alive]
        cap = self._fast_capacity * len(live) / len(view.servers)
        if cap <= 0:
            return 0.0
        rho = min(1.0, (1.0 / self._gap_ms) / cap)
        mean_fast_ms = len(live) / cap
        return self.price_weight * rho * rho / mean_fast_ms

    # -- helpers -----------------------------------------------------------------------
    def _edf(self, view: ClusterView, tasks: Iterable[int]) -> list[int]:
        dl = view.instance.deadline_ms
        return sorted(tasks, key=lambda t: (dl[t], t))

    def _fast(self, view: ClusterView, task: int, server: int) -> tuple[int, float]:
        app = int(view.instance.app[task])
        v = view.variants_by_speed(app, server)[0]
        return v, view.expected_ms(app, v, server)

    def _misses(
        self,
        view: ClusterView,
        server: int,
        order: list[int],
        start_ms: float,
        fixed: dict[int, int],
    ) -> list[int]:
        """Tasks of ``order`` (run back to back from ``start_ms``, fastest variants unless
        ``fixed``) that end after their deadline."""
        t = start_ms
        late = []
        inst = view.instance
        for task in order:
            app = int(inst.app[task])
            if task in fixed:
                t += view.expected_ms(app, fixed[task], server)
            else:
                t += self._fast(view, task, server)[1]
            if t > inst.deadline_ms[task]:
                late.append(task)
        return late

    def _variants_by_utility(self, view: ClusterView, task: int, server: int) -> list[int]:
        app = int(view.instance.app[task])
        return sorted(
            view.variants_by_speed(app, server),
            key=lambda v: (-view.instance.utility(task, v), view.expected_ms(app, v, server)),
        )

    # -- step 1: offloading ------------------------------------------------------------
    def _evaluate(
        self, task: int, view: ClusterView, s: int
    ) -> tuple[int, float, int, float] | None:
        """(new misses, utility, variant, finish) of ``task`` on ``s``, or None if it cannot
        be on time there."""
        inst = view.instance
        app = int(inst.app[task])
        start = view.now_ms + view.remaining_ms(s)
        queue = list(view.servers[s].queue)
        before = set(self._misses(view, s, self._edf(view, queue), start, {}))
        order = self._edf(view, [*queue, task])
        ahead = order[: order.index(task)]
        t_ahead = start + sum(self._fast(view, q, s)[1] for q in ahead)
        best: tuple[int, float, int, float] | None = None
        for v in self._variants_by_utility(view, task, s):
            finish = t_ahead + view.quantile_ms(app, v, s, self.own_quantile)
            if finish > inst.deadline_ms[task]:
                continue
            new = [
                m
                for m in self._misses(view, s, order, start, {task: v})
                if m not in before and m != task
            ]
            cand = (len(new), inst.utility(task, v), v, finish)
            if best is None or (cand[0], -cand[1]) < (best[0], -best[1]):
                best = cand
            if not new:
                break
        return best

    def dispatch(
        self, task: int, view: ClusterView, exclude: frozenset[int] = frozenset()
    ) -> Assign | Reject:
        """Send the task where it is served on time with the most useful variant, hurting
        no queued task; reject it if no server can finish it in time."""
        self._observe_arrival(task, view)
        inst = view.instance
        app = int(inst.app[task])
        live = view.live_servers(app, exclude)
        if not live:
            return _no_server(view, task)
        options = []
        for s in live:
            ev = self._evaluate(task, view, s)
            if ev is not None:
                misses, util, v, finish = ev
                load = view.backlog_ms(s)
                options.append(((misses, -round(util, 9), finish, load), s, v))
        if not options:
            best_finish = min(
                view.now_ms + view.remaining_ms(s) + self._fast(view, task, s)[1] for s in live
            )
            wait = best_finish - inst.arrival_ms[task]
            budget = inst.deadline_ms[task] - inst.arrival_ms[task]
            return Reject(
                f"no server can finish it before its deadline: the earliest expected finish is "
                f"{wait:.1f} ms after arrival, the deadline {budget:.1f} ms"
            )
        _, s, v = min(options)
        return Assign(s, v)

    # -- step 2: per-server ordering and variant selection ---------------------------------
    def select(self, server: int, view: ClusterView) -> Selection:
        """Order by deadline, shed what cannot all be on time, upgrade the head's variant
        while every queued task stays feasible."""
        inst = view.instance
        now = view.now_ms
        queue = list(view.servers[server].queue)
        moves: list[int] = []
        waiting = []
        for t in queue:
            if now + self._fast(view, t, server)[1] > inst.deadline_ms[t]:
                moves.append(t)
            else:
                waiting.append(t)
        order = self._edf(view, waiting)
        while True:
            late = self._misses(view, server, order, now, {})
            if not late:
                break
            k = order.index(late[0])

            def density(t: int) -> float:
                v, ms = self._fast(view, t, server)
                return inst.utility(t, v) / ms

            victim = min(order[: k + 1], key=lambda t: (density(t), -t))
            order.remove(victim)
            moves.append(victim)
        if not order:
            return Selection(None, [], moves)
        head = order[0]
        rest = order[1:]
        app = int(inst.app[head])
        choice = self._fast(view, head, server)[0]
        # server time has a price only while other tasks wait for it
        price = self._price_per_ms(view) * min(1.0, len(rest) / self.price_queue)
        ranked = sorted(
            view.variants_by_speed(app, server),
            key=lambda v: -(inst.utility(head, v) - price * view.expected_ms(app, v, server)),
        )
        for v in ranked:
            own_end = now + view.quantile_ms(app, v, server, self.own_quantile)
            if own_end > inst.deadline_ms[head]:
                continue
            end = now + view.expected_ms(app, v, server) + self.reserve_ms
            if rest and self._misses(view, server, rest, end, {}):
                continue
            choice = v
            break
        return Selection((head, choice), [], moves)


def make_policy(name: str, seed: int = 0) -> BaselinePolicy | InfaasPolicy | TwoStepPolicy:
    """A fresh policy called ``name`` (one of :data:`POLICY_NAMES`).

    Raises:
        ValueError: Unknown name; the message lists the valid ones.
    """
    if name == "two_step":
        return TwoStepPolicy()
    if name == "infaas":
        return InfaasPolicy()
    rules = {
        "edf": ("earliest_finish", "edf"),
        "fifo": ("earliest_finish", "fifo"),
        "round_robin": ("round_robin", "fifo"),
        "least_loaded": ("least_loaded", "fifo"),
        "random": ("random", "fifo"),
    }
    if name not in rules:
        raise ValueError(f"unknown policy {name!r}; valid: {', '.join(POLICY_NAMES)}")
    rule, order = rules[name]
    return BaselinePolicy(name, rule, order, seed=seed)
