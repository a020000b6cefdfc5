"""Strategy search: particle swarm optimisation, exhaustive search and two baselines.

The search space (:class:`SearchSpace`) is mixed and discrete: the number of stages and
the data-parallel degree, the stage cut points, the micro-batch count, the schedule and,
for unequal devices, which device serves which stage. Every method scores a strategy
with :func:`graphrec.parallel.cost.evaluate` (infeasible memory is penalised).

* :func:`pso_search` — particle swarm optimisation (pyswarms ``GlobalBestPSO``) over a
  continuous encoding in ``[0, 1)^d``: one coordinate picks ``(stages, dp)``, one the
  micro-batches, one the schedule, ``max_stages - 1`` the cut points (rounded to layer
  boundaries, repaired to be distinct) and, for unequal devices, one priority key per
  device (sorted, they give the device order). Part of the swarm starts from
  data-parallel-only and from compute-balanced cuts, the rest at random.
* :func:`exhaustive_search` — every strategy (small instances).
* :func:`pipedream_search` — PipeDream's dynamic-programming partitioner (Narayanan et
  al., SOSP 2019): minimise the slowest stage's time (compute of the stage's share of
  the batch plus its gradient all-reduce, and the boundary sends), replicas uniform over
  stages and devices taken as equal; its micro-batches are then chosen by the cost model.
* :func:`dp_only_search` — data parallel over as many devices as the batch allows.

Example:
    >>> space = SearchSpace(profile, local_cluster(4), batch=64)  # doctest: +SKIP
    >>> best = pso_search(space, seed=0)  # doctest: +SKIP
    >>> best.strategy.kind, best.cost.step_time_ms  # doctest: +SKIP
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from graphrec.parallel.cluster import Cluster
from graphrec.parallel.cost import SCHEDULES, Cost, Strategy, evaluate
from graphrec.parallel.profile import OPTIMIZERS, ModelProfile, PlanInputError

__all__ = [
    "KINDS",
    "METHODS",
    "SearchResult",
    "SearchSpace",
    "dp_only_search",
    "exhaustive_search",
    "pipedream_search",
    "pso_search",
    "search",
]

#: Strategy kinds a search may be restricted to.
KINDS: tuple[str, ...] = ("single", "dp", "pp", "dp x pp")

_PENALTY = 1e9


@dataclass
class SearchSpace:
    """What may be searched, and a cached scorer.

    Attributes:
        profile: The model's layers with times.
        cluster: The devices.
        batch: Global batch per step.
        optimizer: ``"sgd"`` or ``"adam"``.
        max_stages: Most pipeline stages (default: as many as devices or layers).
        max_micro_batches: Most micro-batches per replica.
        micro_batches: A fixed micro-batch count (``None``: searched).
        kinds: Strategy kinds allowed (see :data:`KINDS`).
        schedules: Pipeline schedules allowed.
    """

    profile: ModelProfile
    cluster: Cluster
    batch: int
    optimizer: str = "sgd"
    max_stages: int | None = None
    max_micro_batches: int = 32
    micro_batches: int | None = None
    kinds: tuple[str, ...] = KINDS
    schedules: tuple[str, ...] = SCHEDULES
    _cache: dict[Strategy, Cost] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        p = self.profile.name
        if self.cluster.size < 1:
            raise PlanInputError(f"{p}: there are zero devices to plan for")
        if self.batch < 1:
            raise PlanInputError(f"{p}: the batch must be at least 1, got {self.batch}")
        if self.optimizer not in OPTIMIZERS:
            raise PlanInputError(
                f"unknown optimizer {self.optimizer!r}; choose one of {sorted(OPTIMIZERS)}"
            )
        bad = sorted(set(self.kinds) - set(KINDS))
        if bad or not self.kinds:
            raise PlanInputError(f"unknown strategy {bad or '(none)'}; choose from {list(KINDS)}")
        bad = sorted(set(self.schedules) - set(SCHEDULES))
        if bad or not self.schedules:
            raise PlanInputError(f"unknown schedule {bad}; choose from {list(SCHEDULES)}")
        if self.micro_batches is not None:
            m = self.micro_batches
            if m < 1:
                raise PlanInputError(f"micro-batches must be at least 1, got {m}")
            if self.batch % m:
                raise PlanInputError(
                    f"{p}: batch {self.batch} is not divisible by {m} micro-batches"
                )
        if not self.shapes():
            raise PlanInputError(
                f"{p}: no strategy of kind {list(self.kinds)} fits batch {self.batch} on "
                f"{self.cluster.size} device(s) (the batch must divide over the replicas and "
                "micro-batches)"
            )

    @property
    def num_layers(self) -> int:
        """Layers of the model."""
        return self.profile.num_layers

    @property
    def stage_limit(self) -> int:
        """Most stages considered."""
        limit = min(self.num_layers, self.cluster.size)
        return limit if self.max_stages is None else max(1, min(limit, self.max_stages))

    def micro_options(self, dp: int) -> list[int]:
        """Micro-batch counts possible with ``dp`` replicas."""
        share = self.batch // dp
        if self.micro_batches is not None:
            return [self.micro_batches] if share % self.micro_batches == 0 else []
        return [m for m in range(1, min(share, self.max_micro_batches) + 1) if share % m == 0]

    def shapes(self) -> list[tuple[int, int]]:
        """``(stages, dp)`` pairs allowed."""
        out = []
        for s in range(1, self.stage_limit + 1):
            for dp in range(1, self.cluster.size // s + 1):
                kind = (
                    Strategy((0,), dp, 1, "gpipe", ()).kind
                    if s == 1
                    else ("pp" if dp == 1 else "dp x pp")
                )
                if kind in self.kinds and self.batch % dp == 0 and self.micro_options(dp):
                    out.append((s, dp))
        return out

    def score(self, st: Strategy) -> float:
        """Predicted step time; infeasible memory adds a penalty growing with the excess."""
        cost = self.cost(st)
        if cost.feasible:
            return cost.step_time_ms
        over = max(mem / self.cluster.devices[d].memory_mb for d, mem in cost.memory_mb.items())
        return _PENALTY * over

    def cost(self, st: Strategy) -> Cost:
        """Cached :func:`evaluate`."""
        hit = self._cache.get(st)
        if hit is None:
            hit = evaluate(self.profile, self.cluster, st, self.batch, optimizer=self.optimizer)
            self._cache[st] = hit
        return hit

    def device_groups(self, n_stages: int, dp: int) -> Iterator[tuple[int, ...]]:
        """Distinct device assignments (one for equal devices)."""
        need = n_stages * dp
        if self.cluster.homogeneous:
            yield tuple(range(need))
            return
        seen = set()
        devs = self.cluster.devices
        for perm in itertools.permutations(range(self.cluster.size), need):
            key = tuple(
                tuple(
                    sorted((devs[d].speed, devs[d].memory_mb) for d in perm[s * dp : (s + 1) * dp])
                )
                for s in range(n_stages)
            )
            if key not in seen:
                seen.add(key)
                yield perm


@dataclass(frozen=True)
class SearchResult:
    """The best strategy a method found.

    Attributes:
        method: ``"pso"``, ``"exhaustive"``, ``"pipedream"`` or ``"dp-only"``.
        strategy: The strategy.
        cost: Its predicted cost.
        evaluations: Distinct strategies scored.
        seconds: Wall-clock search time.
    """

    method: str
    strategy: Strategy
    cost: Cost
    evaluations: int
    seconds: float


def _result(method: str, space: SearchSpace, best: Strategy, t0: float, n0: int) -> SearchResult:
    return SearchResult(
        method, best, space.cost(best), len(space._cache) - n0, time.perf_counter() - t0
    )


# ---------------------------------------------------------------------- exhaustive


def exhaustive_search(space: SearchSpace) -> SearchResult:
    """Score every strategy of the space and keep the fastest feasible one."""
    t0, n0 = time.perf_counter(), len(space._cache)
    best: Strategy | None = None
    best_score = float("inf")
    L = space.num_layers
    for n_st, dp in space.shapes():
        scheds = space.schedules if n_st > 1 else ("gpipe",)
        for cuts in itertools.combinations(range(1, L), n_st - 1):
            for m in space.micro_options(dp):
                for sched in scheds:
                    for devs in space.device_groups(n_st, dp):
                        st = Strategy((0, *cuts), dp, m, sched, devs)
                        sc = space.score(st)
                        if sc < best_score:
                            best, best_score = st, sc
    assert best is not None
    return _result("exhaustive", space, best, t0, n0)


# ---------------------------------------------------------------------- baselines


def dp_only_search(space: SearchSpace) -> SearchResult:
    """Data parallel over the most devices the batch divides into (fastest devices first),
    one micro-batch unless memory needs gradient accumulation."""
    t0, n0 = time.perf_counter(), len(space._cache)
    order = sorted(range(space.cluster.size), key=lambda d: -space.cluster.devices[d].speed)
    for dp in range(space.cluster.size, 0, -1):
        if (1, dp) not in space.shapes():
            continue
        cands = [Strategy((0,), dp, m, "gpipe", tuple(order[:dp])) for m in space.micro_options(dp)]
        best = min(cands, key=space.score)
        return _result("dp-only", space, best, t0, n0)
    raise PlanInputError(
        f"{space.profile.name}: no data-parallel degree divides batch {space.batch}"
    )


def _balanced_cuts(times: Sequence[float], n_stages: int) -> tuple[int, ...]:
    """Cut points that split ``times`` into ``n_stages`` runs of near-equal sums."""
    L = len(times)
    prefix = np.cumsum(times)
    total = prefix[-1] if L else 0.0
    cuts: list[int] = []
    for k in range(1, n_stages):
        target = total * k / n_stages
        pos = int(np.searchsorted(prefix, target)) + 1
        lo = (cuts[-1] + 1) if cuts else 1
        hi = L - (n_stages - k)
        cuts.append(min(max(pos, lo), hi))
    return tuple(cuts)


def pipedream_search(space: SearchSpace) -> SearchResult:
    """PipeDream's partitioner: minimise the slowest stage, then pick micro-batches.

    Devices are taken as equal (device 0's speed), replicas uniform over stages.
    """
    t0, n0 = time.perf_counter(), len(space._cache)
    prof, net = space.profile, space.cluster.network
    L = prof.num_layers
    speed = space.cluster.devices[0].speed
    best: Strategy | None = None
    best_score = float("inf")
    dps = sorted({dp for _, dp in space.shapes()})
    for dp in dps:
        share = space.batch / dp
        t = [la.time_ms(share) / speed for la in prof.layers]
        pb = [la.param_bytes for la in prof.layers]
        ct = np.cumsum([0.0, *t])
        cp = np.cumsum([0.0, *pb])

        def stage(i: int, j: int, dp: int = dp, ct: np.ndarray = ct, cp: np.ndarray = cp) -> float:
            return float(ct[j] - ct[i]) + net.allreduce_ms(float(cp[j] - cp[i]), dp)

        max_s = max(s for s, d in space.shapes() if d == dp)
        # a[s][j]: best slowest-stage time of layers [0, j) in s stages; back[s][j] its cut.
        a = np.full((max_s + 1, L + 1), np.inf)
        back = np.zeros((max_s + 1, L + 1), dtype=np.int64)
        for j in range(1, L + 1):
            a[1][j] = stage(0, j)
        for s in range(2, max_s + 1):
            for j in range(s, L + 1):
                for i in range(s - 1, j):
                    send = 2 * net.p2p_ms(prof.layers[i - 1].out_bytes * share)
                    v = max(a[s - 1][i], send, stage(i, j))
                    if v < a[s][j]:
                        a[s][j], back[s][j] = v, i
        for s in range(1, max_s + 1):
            if (s, dp) not in space.shapes():
                continue
            cuts = []
            j = L
            for k in range(s, 1, -1):
                j = int(back[k][j])
                cuts.append(j)
            stages = (0, *sorted(cuts))
            score = float(a[s][L])
            if score < best_score - 1e-12:
                cands = [
                    Strategy(stages, dp, m, "1f1b" if s > 1 else "gpipe", tuple(range(s * dp)))
                    for m in space.micro_options(dp)
                ]
                best_score, best = score, min(cands, key=space.score)
    assert best is not None
    return _result("pipedream", space, best, t0, n0)


# ---------------------------------------------------------------------- PSO


class _Codec:
    """Continuous position in ``[0, 1)^d`` <-> strategy."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self.shapes = space.shapes()
        self.n_cut = max(0, max(s for s, _ in self.shapes) - 1)
        self.hetero = not space.cluster.homogeneous
        self.n_dev = space.cluster.size if self.hetero else 0
        self.dims = 3 + self.n_cut + self.n_dev

    @staticmethod
    def _pick(x: float, n: int) -> int:
        return min(int(x * n), n - 1)

    def decode(self, x: np.ndarray) -> Strategy:
        sp = self.space
        n_st, dp = self.shapes[self._pick(x[0], len(self.shapes))]
        opts = sp.micro_options(dp)
        m = opts[self._pick(x[1], len(opts))]
        sched = sp.schedules[self._pick(x[2], len(sp.schedules))] if n_st > 1 else "gpipe"
        L = sp.num_layers
        raw = sorted(1 + self._pick(v, L - 1) for v in x[3 : 3 + n_st - 1])
        cuts: list[int] = []
        for k, c in enumerate(raw):  # repair: distinct and room for the later cuts
            lo = cuts[-1] + 1 if cuts else 1
            hi = L - (len(raw) - k)
            cuts.append(min(max(c, lo), hi))
        need = n_st * dp
        if self.hetero:
            keys = x[3 + self.n_cut :]
            devs = tuple(int(d) for d in np.argsort(-keys, kind="stable")[:need])
        else:
            devs = tuple(range(need))
        return Strategy((0, *cuts), dp, m, sched, devs)

    def encode(self, st: Strategy, rng: np.random.Generator) -> np.ndarray:
        x = rng.random(self.dims)
        sp = self.space
        x[0] = (self.shapes.index((st.num_stages, st.dp)) + 0.5) / len(self.shapes)
        opts = sp.micro_options(st.dp)
        x[1] = (opts.index(st.micro_batches) + 0.5) / len(opts)
        if st.schedule in sp.schedules:
            x[2] = (sp.schedules.index(st.schedule) + 0.5) / len(sp.schedules)
        L = sp.num_layers
        for k, c in enumerate(st.stages[1:]):
            x[3 + k] = (c - 1 + 0.5) / (L - 1)
        if self.hetero:
            keys = np.zeros(self.n_dev)
            for rank, d in enumerate(st.devices):
                keys[d] = 1.0 - (rank + 0.5) / (2 * self.n_dev)
            for d in range(self.n_dev):
                if d not in st.devices:
                    keys[d] = 0.5 * rng.random()
            x[3 + self.n_cut :] = keys
        return np.clip(x, 0.0, 1.0 - 1e-9)


def _seeds(space: SearchSpace, codec: _Codec) -> list[Strategy]:
    """Data-parallel-only and compute-balanced strategies to start part of the swarm."""
    out = []
    if any(s == 1 for s, _ in codec.shapes):
        out.append(dp_only_search(space).strategy)
    fast = sorted(range(space.cluster.size), key=lambda d: -space.cluster.devices[d].speed)
    for n_st, dp in codec.shapes:
        share = space.batch / dp
        times = [la.time_ms(share) for la in space.profile.layers]
        cuts = _balanced_cuts(times, n_st)
        opts = space.micro_options(dp)
        m = opts[len(opts) // 2] if n_st > 1 else opts[0]
        devs = tuple(fast[: n_st * dp]) if codec.hetero else tuple(range(n_st * dp))
        out.append(Strategy((0, *cuts), dp, m, space.schedules[-1], devs))
    return [st for st in out if (st.num_stages, st.dp) in codec.shapes]


def pso_search(
    space: SearchSpace,
    *,
    particles: int = 30,
    iterations: int = 60,
    seed: int = 0,
    seeded: bool = True,
    options: dict[str, float] | None = None,
) -> SearchResult:
    """Particle swarm optimisation of the step time (pyswarms ``GlobalBestPSO``).

    Args:
        space: The search space.
        particles: Swarm size.
        iterations: PSO iterations.
        seed: Seed of the swarm (NumPy's global generator is restored afterwards).
        seeded: Start part of the swarm (at most half) from data-parallel-only and
            compute-balanced strategies; ``False``: all particles at random.
        options: pyswarms ``c1``, ``c2``, ``w`` (default 1.5, 1.5, 0.7).

    Raises:
        PlanInputError: pyswarms is not installed.
    """
    try:
        from pyswarms.single import GlobalBestPSO
    except ImportError as exc:
        raise PlanInputError(
            f"the PSO search needs pyswarms ({exc}); install it with `pip install pyswarms`"
        ) from None
    t0, n0 = time.perf_counter(), len(space._cache)
    codec = _Codec(space)
    rng = np.random.default_rng(seed)
    init = rng.random((particles, codec.dims)) * (1 - 1e-9)
    if seeded:
        starts = _seeds(space, codec)[: particles // 2]
        for k, st in enumerate(starts):
            init[k] = codec.encode(st, rng)
    best: list[tuple[float, Strategy]] = []

    def objective(xs: np.ndarray) -> np.ndarray:
        scores = np.empty(len(xs))
        for k, x in enumerate(xs):
            st = codec.decode(np.clip(x, 0.0, 1.0 - 1e-9))
            scores[k] = space.score(st)
            if not best or scores[k] < best[0][0]:
                best[:] = [(float(scores[k]), st)]
        return scores

    state = np.random.get_state()
    np.random.seed(seed)
    try:
        opt = GlobalBestPSO(
            n_particles=particles,
            dimensions=codec.dims,
            options=options or {"c1": 1.5, "c2": 1.5, "w": 0.7},
            bounds=(np.zeros(codec.dims), np.full(codec.dims, 1.0 - 1e-9)),
            init_pos=init,
        )
        _silence_pyswarms()
        opt.optimize(objective, iters=iterations, verbose=False)
    finally:
        np.random.set_state(state)
    return _result("pso", space, best[0][1], t0, n0)


def _silence_pyswarms() -> None:
    import logging

    logging.getLogger("pyswarms").setLevel(logging.WARNING)


# ---------------------------------------------------------------------- front door

#: Search methods by name.
METHODS: dict[str, Callable[[SearchSpace], SearchResult]] = {
    "pso": pso_search,
    "exhaustive": exhaustive_search,
    "pipedream": pipedream_search,
    "dp-only": dp_only_search,
}


def search(space: SearchSpace, method: str = "pso") -> SearchResult:
    """Run ``method`` and check the result fits in memory.

    Raises:
        PlanInputError: An unknown method, or no strategy fits the devices' memory.
    """
    if method not in METHODS:
        raise PlanInputError(f"unknown search method {method!r}; choose one of {sorted(METHODS)}")
    res = METHODS[method](space)
    if not res.cost.feasible:
        worst = max(res.cost.memory_mb.items(), key=lambda kv: kv[1])
        cap = space.cluster.devices[worst[0]].memory_mb
        raise PlanInputError(
            f"{space.profile.name}: fits on no device: the least memory-hungry plan found "
            f"({res.strategy.kind}, {res.strategy.num_stages} stage(s) x {res.strategy.dp}) "
            f"needs {worst[1]:.1f} MiB on device {worst[0]}, which has {cap:.1f} MiB; "
            "use more devices, a smaller batch or more micro-batches"
        )
    return res
