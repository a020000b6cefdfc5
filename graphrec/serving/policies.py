"""Scheduling policies: the seed's two-step method, INFaaS-style selection, baselines.

Every policy answers two questions (see :class:`graphrec.serving.state.Policy`):
where an arriving task goes, and what an idle server runs next with which variant.

* ``two_step`` (seed 001): one planner per server (:meth:`TwoStepPolicy.plan`) orders
  the tasks by deadline (ties: the more time-sensitive first) and gives each the variant
  of highest expected utility (its chance of ending on time times its utility, which
  weighs time against accuracy sensitivity): the app's default, a more accurate one
  when the utility it adds beats the price of server time at the current load, a
  faster one when the default would likely be late. While a task would still be late,
  the task (it or one ahead of it) that loses the least utility per millisecond saved
  is downgraded; when all of them already run their fastest variant, the task of least
  utility per millisecond is shed (offered to the other servers, else rejected).
  **Offloading** sends an arriving task where accepting it adds the most planned
  utility (its own, minus what queued tasks lose to make room for it: load, the
  server's measured and observed speed, and the deadline all enter); a task no server
  can finish in time, or that no server can take without a net loss, is rejected at
  once with the reason. **Scheduling**: an idle server re-plans and starts the head.
* ``two_step_floor``: the same, but never a variant less accurate than the app's
  default (a task only a faster variant could serve in time is shed or rejected).
* ``infaas``: the INFaaS idea, cheapest variant that meets the task's latency and
  accuracy targets (accuracy target: the app's ``accuracy_floor``), on the server where
  it finishes first; first-come first-served on the server.
* Baselines: ``fifo`` and ``edf`` (sent to the server with the earliest expected finish,
  run first-come first-served or earliest deadline first) with the app's default
  variant; ``edf_accurate`` and ``edf_fastest``, EDF with the most accurate or the
  fastest hosted variant; ``round_robin``, ``least_loaded`` (fewest waiting tasks) and
  ``random`` (first-come first-served, default variant).

Baselines run every task they are given, dropping only tasks whose deadline has passed
before they could start.

Example:
    >>> from graphrec.serving.policies import make_policy, POLICY_NAMES
    >>> make_policy("edf", seed=0).name
    'edf'
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
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
    "two_step_floor",
    "infaas",
    "edf",
    "edf_accurate",
    "edf_fastest",
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
        variant: Which variant every task runs: ``default`` (the app's default),
            ``accurate`` (the most accurate one the server hosts) or ``fastest``.
    """

    def __init__(
        self, name: str, dispatch_rule: str, order: str, seed: int = 0, variant: str = "default"
    ) -> None:
        if variant not in ("default", "accurate", "fastest"):
            raise ValueError(f"unknown variant rule {variant!r}; valid: default, accurate, fastest")
        self.name = name
        self.dispatch_rule = dispatch_rule
        self.order = order
        self.seed = seed
        self.variant = variant
        self._next = 0
        self._rng: np.random.Generator | None = None

    def _variant(self, view: ClusterView, app: int, server: int) -> int:
        if self.variant == "default":
            return view.default_variant(app, server)
        hosted = view.variants_by_speed(app, server)
        if self.variant == "fastest":
            return hosted[0]
        accuracy = [v.accuracy for v in view.workload.apps[app].variants]
        return max(hosted, key=lambda v: (accuracy[v], -hosted.index(v)))

    def dispatch(
        self, task: int, view: ClusterView, exclude: frozenset[int] = frozenset()
    ) -> Assign | Reject:
        """Send the task by the dispatch rule; run the rule's variant there."""
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
                    view.backlog_ms(k) + view.expected_ms(app, self._variant(view, app, k), k)
                ),
            )
        return Assign(s, self._variant(view, app, s))

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
        variant = view.planned.get(task, self._variant(view, int(view.instance.app[task]), server))
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


@dataclass
class _Plan:
    """A server's queue as two-step plans it: run order, variants, shed tasks."""

    order: list[int]
    variants: dict[int, int]
    shed: list[int]
    finish: dict[int, float]
    utility: float


class TwoStepPolicy:
    """The seed's two-step method: deadline/load/performance-aware offloading, then
    per-server ordering and variant selection by time and accuracy sensitivity.

    Both steps use one planner (:meth:`plan`): a server's tasks in deadline order (ties:
    the more time-sensitive first), each with its *preferred* variant (the app's
    default, or a more accurate one when the utility it adds is worth the server time
    it costs at the current load); while a task would end after its deadline, the
    planner downgrades, among that task and those ahead of it, the one that loses the
    least utility per millisecond saved (accuracy sensitivity decides who yields); when
    every one of them already runs its fastest variant, it sheds the task of least
    utility per millisecond. Downgrades that turn out not to be needed are undone.

    * **Offloading** sends an arriving task to the live server where accepting it adds
      the most planned utility (its own minus what the queued tasks lose to make room;
      ties: earliest expected finish, then least backlog). A task no server can finish
      in time, or that every server could take only by shedding tasks worth more, is
      rejected at once with the reason.
    * **Scheduling**: an idle server re-plans its queue, offers the shed tasks to the
      other servers and starts the head of the plan with its planned variant.

    Args:
        name: Policy name.
        own_quantile: Latency quantile used for each task's own deadline check (the time
            before it adds up with medians); a margin against slow runs (0.5: none).
        price_weight: Scale of the price of server time that an upgrade above the
            default variant must beat: ``price_weight * rho**2 / T`` utility per ms,
            where ``rho`` is the offered load (observed arrival rate) over the cluster's
            capacity with fastest variants and ``T`` the mean fastest service time. It
            applies on an idle server too (a long upgrade there delays the tasks that
            arrive meanwhile). 0.3, and applying it when idle, were chosen on seeds
            100-104 of ``two_apps.yaml`` and ``tight_slo.yaml``; the benchmark reports
            seeds 0-29.
        accuracy_floor: Never run a variant less accurate than the app's default (tasks
            that only a faster variant could serve in time are shed or rejected);
            ``two_step_floor`` sets it.
    """

    def __init__(
        self,
        name: str = "two_step",
        own_quantile: float = 0.8,
        price_weight: float = 0.3,
        accuracy_floor: bool = False,
    ) -> None:
        self.name = name
        self.own_quantile = own_quantile
        self.price_weight = price_weight
        self.accuracy_floor = accuracy_floor
        self._allowed: dict[tuple[int, int], list[int]] = {}
        self._memo: dict[tuple[int, int, float, float, float], int] = {}
        self._util: dict[tuple[int, int], float] = {}
        self._sure: dict[tuple[int, int, int], float] = {}
        self._for: object = None
        self._seen: set[int] = set()
        self._last_arrival_ms: float | None = None
        self._gap_ms: float | None = None
        self._fast_capacity: float | None = None
        self._quantile: dict[tuple[int, int, int], float] = {}

    def _sync(self, view: ClusterView) -> None:
        """Drop the memos when the policy is asked about another instance."""
        if view.instance is not self._for:
            self._for = view.instance
            for memo in (self._quantile, self._allowed, self._memo, self._util, self._sure):
                memo.clear()

    # -- load and the price of server time ------------------------------------------------
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
        rho = round(rho * 100) / 100  # steps of 0.01: plans can be reused between arrivals
        mean_fast_ms = len(live) / cap
        return self.price_weight * rho * rho / mean_fast_ms

    def _variants(self, view: ClusterView, app: int, server: int) -> list[int]:
        """Variants the policy may run for ``app`` on ``server``, fastest first."""
        key = (app, server)
        if key not in self._allowed:
            hosted = view.variants_by_speed(app, server)
            if self.accuracy_floor:
                accuracy = [v.accuracy for v in view.workload.apps[app].variants]
                floor = accuracy[view.default_variant(app, server)]
                hosted = [v for v in hosted if accuracy[v] >= floor - 1e-12]
            self._allowed[key] = hosted
        return self._allowed[key]

    # -- latency helpers ------------------------------------------------------------------
    def _own_ms(self, view: ClusterView, app: int, v: int, s: int) -> float:
        key = (app, v, s)
        if key not in self._quantile:
            from graphrec.serving.latency import lognormal_quantile

            mu = float(view.table.mu[app, v, s])
            sigma = float(view.table.sigma[app, v, s])
            self._quantile[key] = lognormal_quantile(mu, sigma, self.own_quantile)
        return self._quantile[key] * view.servers[s].speed_estimate

    def _on_time(self, view: ClusterView, task: int, v: int, s: int, start_ms: float) -> float:
        """Probability that ``task`` started at ``start_ms`` with ``v`` on ``s`` ends by its
        deadline (the log-normal of the pair, scaled by the observed slowdown)."""
        inst = view.instance
        app = int(inst.app[task])
        budget = float(inst.deadline_ms[task]) - start_ms
        if budget <= 0:
            return 0.0
        speed = view.servers[s].speed_estimate
        key = (app, v, s)
        if key not in self._sure:  # beyond this many ms, the chance of being late is < 1e-5
            mu0, sigma0 = float(view.table.mu[app, v, s]), float(view.table.sigma[app, v, s])
            self._sure[key] = math.exp(mu0 + 4.3 * max(sigma0, 0.0))
        if budget >= self._sure[key] * speed:
            return 1.0
        mu = float(view.table.mu[app, v, s]) + math.log(speed)
        sigma = float(view.table.sigma[app, v, s])
        if sigma <= 0:
            return 1.0 if math.log(budget) >= mu - 1e-12 else 0.0
        return 0.5 * (1.0 + math.erf((math.log(budget) - mu) / (sigma * math.sqrt(2.0))))

    def _preferred(
        self, view: ClusterView, task: int, server: int, start_ms: float, price: float
    ) -> int:
        """The variant of highest expected utility (chance of ending on time from
        ``start_ms`` times the utility) less ``price`` per ms it takes beyond the app's
        default variant; ties go to the default."""
        speed = view.servers[server].speed_estimate
        key = (task, server, start_ms, price, speed)
        if key in self._memo:
            return self._memo[key]
        inst = view.instance
        app = int(inst.app[task])
        default = view.default_variant(app, server)
        base_ms = view.expected_ms(app, default, server)
        best, best_score = default, -math.inf
        for v in self._variants(view, app, server):
            ms = view.expected_ms(app, v, server)
            score = self._on_time(view, task, v, server, start_ms) * self._utility(view, task, v)
            score -= price * max(0.0, ms - base_ms)
            if score > best_score + 1e-12 or (v == default and score >= best_score - 1e-12):
                best, best_score = v, score
        if len(self._memo) > 100_000:
            self._memo.clear()
        self._memo[key] = best
        return best

    def _utility(self, view: ClusterView, task: int, v: int) -> float:
        key = (task, v)
        if key not in self._util:
            self._util[key] = view.instance.utility(task, v)
        return self._util[key]

    def _first_late(
        self,
        view: ClusterView,
        server: int,
        order: list[int],
        variants: dict[int, int],
        start_ms: float,
    ) -> int | None:
        """Index of the first task of ``order`` that would end after its deadline."""
        inst = view.instance
        t = start_ms
        for i, task in enumerate(order):
            app = int(inst.app[task])
            v = variants[task]
            if t + self._own_ms(view, app, v, server) > inst.deadline_ms[task]:
                return i
            t += view.expected_ms(app, v, server)
        return None

    # -- the planner shared by both steps -------------------------------------------------
    def plan(
        self,
        view: ClusterView,
        server: int,
        tasks: Iterable[int],
        start_ms: float,
        price: float,
    ) -> _Plan:
        """Order, variants and shed tasks of ``tasks`` run on ``server`` from ``start_ms``."""
        self._sync(view)
        inst = view.instance
        dl, ts = inst.deadline_ms, inst.time_sensitivity
        order: list[int] = []
        shed: list[int] = []
        for t in sorted(tasks, key=lambda t: (dl[t], -ts[t], t)):
            app = int(inst.app[t])
            fastest = self._variants(view, app, server)[0]
            if start_ms + self._own_ms(view, app, fastest, server) > dl[t]:
                shed.append(t)  # cannot be on time here even alone and fastest
            else:
                order.append(t)
        # each task's own choice, as if it ran first; conflicts are settled below
        preferred = {t: self._preferred(view, t, server, start_ms, price) for t in order}
        variants = dict(preferred)
        downgraded = False
        while True:
            k = self._first_late(view, server, order, variants, start_ms)
            if k is None:
                break
            best: tuple[float, int, int] | None = None
            for t in order[: k + 1]:
                app = int(inst.app[t])
                speed = self._variants(view, app, server)
                pos = speed.index(variants[t])
                if pos == 0:
                    continue
                faster = speed[pos - 1]
                saved = view.expected_ms(app, variants[t], server) - view.expected_ms(
                    app, faster, server
                )
                if saved <= 0:
                    continue
                loss = self._utility(view, t, variants[t]) - self._utility(view, t, faster)
                cand = (loss / saved, t, faster)
                if best is None or cand[:2] < best[:2]:
                    best = cand
            if best is not None:
                variants[best[1]] = best[2]
                downgraded = True
                continue

            def density(t: int) -> float:
                app = int(inst.app[t])
                v = variants[t]
                return self._utility(view, t, v) / view.expected_ms(app, v, server)

            victim = min(order[: k + 1], key=lambda t: (density(t), -t))
            order.remove(victim)
            del variants[victim]
            shed.append(victim)
        if downgraded:
            self._undo_downgrades(view, server, order, variants, preferred, start_ms)
        finish: dict[int, float] = {}
        t_ms = start_ms
        for t in order:
            t_ms += view.expected_ms(int(inst.app[t]), variants[t], server)
            finish[t] = t_ms
        utility = sum(self._utility(view, t, variants[t]) for t in order)
        return _Plan(order, variants, shed, finish, utility)

    def _undo_downgrades(
        self,
        view: ClusterView,
        server: int,
        order: list[int],
        variants: dict[int, int],
        preferred: dict[int, int],
        start_ms: float,
    ) -> None:
        """Step downgraded tasks back up toward their preferred variant while the plan
        stays on time, the most utility per extra millisecond first."""
        inst = view.instance
        changed = True
        while changed:
            changed = False
            steps = []
            for t in order:
                if variants[t] == preferred[t]:
                    continue
                app = int(inst.app[t])
                speed = self._variants(view, app, server)
                up = speed[speed.index(variants[t]) + 1]
                extra = view.expected_ms(app, up, server) - view.expected_ms(
                    app, variants[t], server
                )
                gain = self._utility(view, t, up) - self._utility(view, t, variants[t])
                steps.append((-gain / max(extra, 1e-9), t, up))
            for _, t, up in sorted(steps):
                old = variants[t]
                variants[t] = up
                if self._first_late(view, server, order, variants, start_ms) is None:
                    changed = True
                else:
                    variants[t] = old

    # -- step 1: offloading ---------------------------------------------------------------
    def dispatch(
        self, task: int, view: ClusterView, exclude: frozenset[int] = frozenset()
    ) -> Assign | Reject:
        """Send the task where it adds the most planned utility; reject it, with the
        reason, when no server can finish it in time or take it without a loss."""
        self._observe_arrival(task, view)
        inst = view.instance
        app = int(inst.app[task])
        live = view.live_servers(app, exclude)
        if not live:
            return _no_server(view, task)
        options = []
        fits_alone = False
        for s in live:
            start = view.now_ms + view.remaining_ms(s)
            queue = list(view.servers[s].queue)
            price = self._price_per_ms(view)
            new = self.plan(view, s, [*queue, task], start, price)
            if task in new.shed:
                fastest = self._variants(view, app, s)[0]
                fits_alone |= start + self._own_ms(view, app, fastest, s) <= inst.deadline_ms[task]
                continue
            fits_alone = True
            base = self.plan(view, s, queue, start, price)
            delta = new.utility - base.utility
            if delta <= 1e-12:
                continue
            key = (-round(delta, 6), new.finish[task], view.backlog_ms(s))
            options.append((key, s, new.variants[task]))
        if not options:
            if fits_alone:
                return Reject(
                    "every server that could finish it in time is full: taking it would "
                    "cost the tasks queued there more utility than it brings"
                )
            best_finish = min(
                view.now_ms
                + view.remaining_ms(s)
                + view.expected_ms(app, self._variants(view, app, s)[0], s)
                for s in live
            )
            wait = best_finish - inst.arrival_ms[task]
            budget = inst.deadline_ms[task] - inst.arrival_ms[task]
            return Reject(
                f"no server can finish it before its deadline: the earliest expected finish is "
                f"{wait:.1f} ms after arrival, the deadline {budget:.1f} ms"
            )
        _, s, v = min(options)
        return Assign(s, v)

    # -- step 2: per-server ordering and variant selection --------------------------------
    def select(self, server: int, view: ClusterView) -> Selection:
        """Re-plan the queue, offer the shed tasks elsewhere, start the plan's head."""
        queue = list(view.servers[server].queue)
        price = self._price_per_ms(view)
        plan = self.plan(view, server, queue, view.now_ms, price)
        view.planned.update(plan.variants)
        if not plan.order:
            return Selection(None, [], plan.shed)
        head = plan.order[0]
        return Selection((head, plan.variants[head]), [], plan.shed)


def make_policy(name: str, seed: int = 0) -> BaselinePolicy | InfaasPolicy | TwoStepPolicy:
    """A fresh policy called ``name`` (one of :data:`POLICY_NAMES`).

    Raises:
        ValueError: Unknown name; the message lists the valid ones.
    """
    if name == "two_step":
        return TwoStepPolicy()
    if name == "two_step_floor":
        return TwoStepPolicy(name, accuracy_floor=True)
    if name == "infaas":
        return InfaasPolicy()
    rules = {
        "edf": ("earliest_finish", "edf", "default"),
        "edf_accurate": ("earliest_finish", "edf", "accurate"),
        "edf_fastest": ("earliest_finish", "edf", "fastest"),
        "fifo": ("earliest_finish", "fifo", "default"),
        "round_robin": ("round_robin", "fifo", "default"),
        "least_loaded": ("least_loaded", "fifo", "default"),
        "random": ("random", "fifo", "default"),
    }
    if name not in rules:
        raise ValueError(f"unknown policy {name!r}; valid: {', '.join(POLICY_NAMES)}")
    rule, order, variant = rules[name]
    return BaselinePolicy(name, rule, order, seed=seed, variant=variant)
