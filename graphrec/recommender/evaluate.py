"""Leave-family-out evaluation of the recommender against baselines, with confidence intervals.

The architecture families are dealt into folds (:func:`graphrec.dataset.folds.family_folds`);
each fold fits a :class:`~graphrec.recommender.Recommender` on the other families and
ranks the held-out samples through :meth:`~graphrec.recommender.Recommender.rank_predictions`,
the call ``graphrec.recommend`` makes, so the figures are for the path users run and for
architectures the models never saw.

Every method picks, per sample, the first candidate of its ranking that was measured for
that sample (an unmeasured choice cannot be scored). Methods:

* ``graphrec``: the full ranking; ablations ``graphrec_alpha_{0.5,0.8,0.2}`` (blend weight
  fixed) and ``graphrec_no_risk`` (deployability taken as certain);
* ``medn``: the fastest predicted latency among choices predicted deployable;
* ``pso_w_catboost`` / ``catboost_heuristic`` / ``catboost_plain``: the best-choice heads
  alone (searched, heuristic and no class weights);
* the baselines of :mod:`graphrec.recommender.baselines` (``best_on_average``,
  ``flops_rule``, ``onnxruntime_default``), ``random`` (expected value of a uniform pick
  among the measured candidates) and ``oracle``.

Headline figures carry 95 % bootstrap intervals that resample whole families
(:func:`cluster_bootstrap`): samples of one family are not independent, and the intervals
say how much the figure would move with another draw of architectures.

Example:
    >>> from graphrec.recommender.evaluate import leave_family_out, summarise
    >>> result = leave_family_out(dataset, folds=5)  # doctest: +SKIP
    >>> summarise(result)["methods"]["graphrec"]["mean_regret"]  # doctest: +SKIP
    {'value': 0.21, 'low': 0.15, 'high': 0.29}
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from graphrec.dataset.samples import RecDataset
    from graphrec.recommender.estimator import Recommender

__all__ = [
    "METHODS",
    "EvaluationResult",
    "cluster_bootstrap",
    "leave_family_out",
    "ndcg3",
    "summarise",
]

METHODS: tuple[str, ...] = (
    "graphrec",
    "graphrec_alpha_0.5",
    "graphrec_alpha_0.8",
    "graphrec_alpha_0.2",
    "graphrec_no_risk",
    "medn",
    "pso_w_catboost",
    "catboost_heuristic",
    "catboost_plain",
    "best_on_average",
    "onnxruntime_default",
    "flops_rule",
    "random",
    "oracle",
)

_ABLATIONS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("graphrec_alpha_0.5", {"alpha": 0.5}),
    ("graphrec_alpha_0.8", {"alpha": 0.8}),
    ("graphrec_alpha_0.2", {"alpha": 0.2}),
    ("graphrec_no_risk", {"risk_aware": False}),
)


def ndcg3(order: np.ndarray, rel: np.ndarray) -> float:
    """NDCG@3 of a ranking ``order`` against relevances ``rel`` (``lat(best)/lat``)."""
    disc = 1.0 / np.log2(np.arange(2, 5))
    gains = rel[np.asarray(order)[:3]]
    ideal = np.sort(rel)[::-1][:3]
    idcg = float((ideal * disc[: len(ideal)]).sum())
    return float((gains * disc[: len(gains)]).sum()) / idcg if idcg > 0 else 0.0


def cluster_bootstrap(
    values: np.ndarray,
    clusters: Sequence[str] | np.ndarray,
    stat: Callable[[np.ndarray], float] = np.mean,
    *,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, float]:
    """A statistic with a percentile bootstrap interval that resamples whole clusters.

    Args:
        values: One value per observation.
        clusters: The cluster (family) of each observation.
        stat: The statistic (mean, a quantile, a share).
        n_boot: Bootstrap draws.
        level: Coverage of the interval.
        seed: Seed of the draws.

    Returns:
        ``{"value": stat(values), "low": ..., "high": ...}`` (NaN bounds for no data).
    """
    v = np.asarray(values, dtype=np.float64)
    c = np.asarray(clusters)
    if len(v) == 0:
        return {"value": float("nan"), "low": float("nan"), "high": float("nan")}
    names, inv = np.unique(c, return_inverse=True)
    members = [np.flatnonzero(inv == k) for k in range(len(names))]
    rng = np.random.default_rng(seed)
    draws = np.empty(n_boot)
    for b in range(n_boot):
        pick = rng.integers(0, len(names), len(names))
        draws[b] = stat(v[np.concatenate([members[k] for k in pick])])
    lo, hi = np.quantile(draws, [(1 - level) / 2, 1 - (1 - level) / 2])
    return {"value": float(stat(v)), "low": float(lo), "high": float(hi)}


@dataclass
class EvaluationResult:
    """What one leave-family-out run produced (per sample, in dataset order).

    Attributes:
        dataset: The evaluated samples (those where some candidate ran).
        regret: ``[N, C]`` regret of every candidate (NaN where unmeasured).
        chosen: Method → the candidate index it picked per sample (-1: no pick).
        ndcg: Method → NDCG@3 per sample (NaN where the method has no full ranking).
        pred_log_latency: Blended predicted log latency ``[N, C]``.
        pred_log_latency_medn: MEDN alone.
        pred_log_latency_gbdt: The pooled regressor alone (NaN without one).
        pred_log_cold: Predicted log cold start.
        pred_p_deployable: Predicted deployability.
        pick_expected_loss: graphrec's predicted expected loss of its pick.
        pick_p_fastest: graphrec's predicted P(fastest) of its pick.
        folds: Test indices of each fold.
        fold_info: What each fold's fit chose (blend weight, head parameters, ...).
        fitted: The recommender of each fold.
        wall_s: Seconds per fold (fit and evaluation).
    """

    dataset: RecDataset
    regret: np.ndarray
    chosen: dict[str, np.ndarray]
    ndcg: dict[str, np.ndarray]
    pred_log_latency: np.ndarray
    pred_log_latency_medn: np.ndarray
    pred_log_latency_gbdt: np.ndarray
    pred_log_cold: np.ndarray
    pred_p_deployable: np.ndarray
    pick_expected_loss: np.ndarray
    pick_p_fastest: np.ndarray
    folds: list[np.ndarray]
    fold_info: list[dict[str, Any]] = field(default_factory=list)
    fitted: list[Recommender] = field(default_factory=list)
    wall_s: list[float] = field(default_factory=list)

    @property
    def best(self) -> np.ndarray:
        """The fastest deployable candidate per sample."""
        return self.dataset.best


def _relevance(ds: RecDataset) -> np.ndarray:
    """``lat(best) / lat`` per candidate, 0 for failures and unmeasured choices."""
    ok = ds.deployable == 1
    best = ds.log_latency_ms.min(axis=1, initial=np.inf, where=ok)[:, None]
    return np.nan_to_num(np.where(ok, np.exp(best - ds.log_latency_ms), 0.0))


def leave_family_out(
    dataset: RecDataset,
    *,
    folds: int = 5,
    seed: int = 0,
    params: Mapping[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
) -> EvaluationResult:
    """Fit on all but one fold of families, rank the held-out fold, for every fold.

    Args:
        dataset: Samples (those where no candidate ran are left out).
        folds: Number of family folds.
        seed: Seed of the split and of every fit.
        params: :class:`~graphrec.recommender.Recommender` parameters.
        progress: Called with one line per fold.

    Raises:
        ValueError: Fewer than 2 families.
    """
    from graphrec.dataset.folds import family_folds
    from graphrec.dataset.samples import first_measured, masked_argmax, regret_matrix
    from graphrec.recommender.baselines import BestOnAverage, FlopsRule, RuntimeDefault
    from graphrec.recommender.estimator import Recommender, head_features
    from graphrec.recommender.pso_catboost import PSOWCatBoostClassifier

    ds = dataset.subset(np.flatnonzero(dataset.best >= 0))
    if len(set(ds.families)) < 2:
        raise ValueError(
            f"leave-family-out needs at least 2 families, got {sorted(set(ds.families))}"
        )
    n, c = ds.log_latency_ms.shape
    regret = regret_matrix(ds.log_latency_ms, ds.deployable)
    rel = _relevance(ds)
    best = ds.best
    chosen = {m: np.full(n, -1, dtype=np.int64) for m in METHODS}
    ndcg = {m: np.full(n, np.nan) for m in METHODS}
    nan2 = lambda: np.full((n, c), np.nan)  # noqa: E731
    res = EvaluationResult(
        dataset=ds,
        regret=regret,
        chosen=chosen,
        ndcg=ndcg,
        pred_log_latency=nan2(),
        pred_log_latency_medn=nan2(),
        pred_log_latency_gbdt=nan2(),
        pred_log_cold=nan2(),
        pred_p_deployable=nan2(),
        pick_expected_loss=np.full(n, np.nan),
        pick_p_fastest=np.full(n, np.nan),
        folds=family_folds(ds.families, folds, seed),
    )

    def take(name: str, i: int, order: np.ndarray) -> None:
        chosen[name][i] = first_measured(order, regret[i])
        ndcg[name][i] = ndcg3(order, rel[i])

    for fi, test in enumerate(res.folds):
        t0 = time.perf_counter()
        train = np.setdiff1d(np.arange(n), test)
        tr, te = ds.subset(train), ds.subset(test)
        rec = Recommender(**{"seed": seed, **dict(params or {})}).fit(tr)
        pred, proba = rec.predict(te)
        medn_te = rec.medn_.predict(te)
        res.pred_log_latency_medn[test] = medn_te.log_latency_ms
        if rec.latency_gbdt_ is not None:
            res.pred_log_latency_gbdt[test] = rec.latency_gbdt_.predict_arrays(
                te.graph_features, te.device_features
            )[0]
        res.pred_log_latency[test] = pred.log_latency_ms
        res.pred_log_cold[test] = pred.log_cold_start_ms
        res.pred_p_deployable[test] = pred.p_deployable
        # The product's ranking, and its ablations on the same prediction.
        for k, (i, r) in enumerate(zip(test, rec.rank_predictions(pred, proba), strict=True)):
            take("graphrec", i, r.order)
            res.pick_expected_loss[i] = r.expected_loss[chosen["graphrec"][i]]
            res.pick_p_fastest[i] = r.p_fastest[chosen["graphrec"][i]]
            mu = np.where(pred.p_deployable[k] >= 0.5, pred.log_latency_ms[k], np.inf)
            take("medn", i, np.argsort(mu, kind="stable"))
        for name, kw in _ABLATIONS:
            for i, r in zip(test, rec.rank_predictions(pred, proba, **kw), strict=True):
                take(name, i, r.order)
        # The heads alone, on the same inputs as the recommender's head.
        p_tr = rec.medn_.predict(tr)
        X_tr = head_features(tr.graph_features, p_tr.embedding, tr.device_features)
        X_te = head_features(te.graph_features, medn_te.embedding, te.device_features)
        heads = {"pso_w_catboost": rec.head_}
        for name, w in (("catboost_heuristic", "heuristic"), ("catboost_plain", "none")):
            hp = {k: v for k, v in dict(rec.head_params or {}).items() if k != "weighting"}
            heads[name] = PSOWCatBoostClassifier(**{"seed": seed, **hp, "weighting": w}).fit(
                X_tr, regret[train], groups=tr.families
            )
        for name, head in heads.items():
            p = head.predict_proba(X_te)
            chosen[name][test] = masked_argmax(p, regret[test])
            for k, i in enumerate(test):
                ndcg[name][i] = ndcg3(np.argsort(-p[k]), rel[i])
        # Baselines, fitted on the same training families.
        avg = BestOnAverage().fit_regret(regret[train])
        rule = FlopsRule().fit_regret(np.log1p(tr.flops), regret[train])
        dflt = RuntimeDefault().fit_candidates(ds.candidates)
        for k, i in enumerate(test):
            take("best_on_average", i, avg.order_)
            take("flops_rule", i, rule.orders(np.log1p(te.flops[k : k + 1]))[0])
            take("onnxruntime_default", i, dflt.order_)
            chosen["oracle"][i] = best[i]
            ndcg["oracle"][i] = ndcg3(np.argsort(-rel[i]), rel[i])
        res.fitted.append(rec)
        res.fold_info.append(
            {
                "alpha": rec.alpha_,
                "alpha_fit": rec.info_.get("alpha_fit"),
                "pso_accepted": getattr(rec.head_, "pso_accepted_", None),
                "pso_fallback": getattr(rec.head_, "pso_fallback_", None),
                "head_params": getattr(rec.head_, "best_params_", None),
                "pso_fold_costs": getattr(rec.head_, "pso_fold_costs_", None),
                "held_out_families": sorted(set(te.families)),
            }
        )
        res.wall_s.append(time.perf_counter() - t0)
        if progress is not None:
            progress(
                f"fold {fi + 1}/{len(res.folds)}: held out {sorted(set(te.families))} "
                f"({len(test)} samples), {res.wall_s[-1]:.1f} s"
            )
    return res


def _share_within(t: float) -> Callable[[np.ndarray], float]:
    return lambda a: float(np.mean(a <= t))


def summarise(result: EvaluationResult, *, n_boot: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Headline figures of an evaluation, each ``{"value", "low", "high"}`` (95 % interval
    over families).

    Returns:
        ``{"methods": {method: {"top1", "mean_regret", "p90_regret", "max_regret",
        "ndcg3", "regret_minus_best_on_average"}}, "latency": {...}}``; ``max_regret`` is a
        plain number; the last is the paired difference of mean regret against
        best-on-average.
    """
    ds, regret, best = result.dataset, result.regret, result.best
    fam = np.asarray(ds.families)
    rows = np.arange(len(ds))
    boot = lambda v, cl, st=np.mean: cluster_bootstrap(  # noqa: E731
        v, cl, st, n_boot=n_boot, seed=seed
    )
    p90: Callable[[np.ndarray], float] = lambda a: float(np.quantile(a, 0.9))  # noqa: E731
    methods: dict[str, dict[str, Any]] = {}
    for m in METHODS:
        if m == "random":
            known = ~np.isnan(regret)
            rg = np.nanmean(regret, axis=1)
            top = (regret == 0).sum(axis=1) / np.maximum(known.sum(axis=1), 1)
            methods[m] = {
                "top1": boot(top, fam),
                "mean_regret": boot(rg, fam),
                "p90_regret": boot(rg, fam, p90),
                "max_regret": float(np.nanmax(regret)),
                "ndcg3": None,
            }
            continue
        pick = result.chosen[m]
        if (pick < 0).any():
            continue
        rg = regret[rows, pick]
        nd = result.ndcg[m]
        methods[m] = {
            "top1": boot((pick == best).astype(np.float64), fam),
            "mean_regret": boot(rg, fam),
            "p90_regret": boot(rg, fam, p90),
            "max_regret": float(np.max(rg)),
            "ndcg3": None if np.isnan(nd).any() else boot(nd, fam),
        }
        base = result.chosen["best_on_average"]
        if (base >= 0).all():
            # Paired: the same resampled families for both methods, so the interval is of
            # the difference itself (narrower than comparing two separate intervals).
            methods[m]["regret_minus_best_on_average"] = boot(rg - regret[rows, base], fam)
    ok = (ds.deployable == 1) & ~np.isnan(ds.log_latency_ms)
    pair_fam = np.broadcast_to(fam[:, None], ok.shape)[ok]

    def ape(pred: np.ndarray) -> np.ndarray:
        return np.abs(np.exp(pred[ok] - ds.log_latency_ms[ok]) - 1.0)

    a = ape(result.pred_log_latency)
    latency: dict[str, Any] = {
        "pairs": int(ok.sum()),
        "median_ape": boot(a, pair_fam, np.median),
        "within_10pct": boot(a, pair_fam, _share_within(0.10)),
        "within_25pct": boot(a, pair_fam, _share_within(0.25)),
        "mape": float(a.mean()),
        "medn_median_ape": float(np.median(ape(result.pred_log_latency_medn))),
        "medn_within_10pct": float(np.mean(ape(result.pred_log_latency_medn) <= 0.10)),
    }
    g = ape(result.pred_log_latency_gbdt)
    if np.isfinite(g).all():
        latency["gbdt_median_ape"] = float(np.median(g))
        latency["gbdt_within_10pct"] = float(np.mean(g <= 0.10))
    return {"methods": methods, "latency": latency}
