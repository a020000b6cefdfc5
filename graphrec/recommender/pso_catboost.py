"""PSO-W-CatBoost: a cost-sensitive CatBoost classifier of the best deployment choice.

Each sample's label is its fastest deployable candidate. Misclassifications do not cost
the same — picking a candidate 2 % slower than the best hardly matters, picking one that
is 5× slower or cannot run does — and the classes are imbalanced (a few runtimes win
most models). So the classifier is trained with

* **sample weights** from the latency loss at stake: ``(1 + regret of the default
  choice)^gamma``, the default being the candidate with the lowest mean log regret on
  the training samples (what a user who does not ask pays), capped and normalised to
  mean 1. A sample where the default is already best weighs 1; one where it is 5x too
  slow weighs more. (The mean regret of *all* candidates, the obvious alternative, is
  dominated by runtimes nobody would pick — a 100x slower eager PyTorch — and says
  little about the decision at stake.)
* **class weights** against imbalance: inverse class frequency to the power ``beta``
  (1 = "balanced", 0 = none) times a per-class multiplier. With one runtime fastest on
  over half the samples, fully balanced weights up-weight a class seen twice ~100x
  against it and make the head pick rare classes far too often;

and (``weighting="pso"``) the per-class multipliers, ``beta``, ``gamma``, ``depth``,
``learning_rate`` and ``l2_leaf_reg`` are searched with particle swarm optimisation (pyswarms
``GlobalBestPSO``) to minimise the **latency regret** (by default its log,
``log(lat(choice)/lat(best))``, robust to a single 20x loss on small data) averaged over
a few inner group-held-out folds — the quantity the user pays — instead of the error rate. On small
data the swarm can fit the folds' noise, so its best point replaces the better of the
heuristic and the plain point only when it beats it by more than one standard error of
the per-fold differences. ``weighting="heuristic"`` keeps the
constructor's ``class_balance`` (beta) and ``sample_weight_power`` (gamma) without
search; ``weighting="none"`` is plain CatBoost (beta = gamma = 0). The swarm starts from
both the heuristic and the plain point.

Example:
    >>> clf = PSOWCatBoostClassifier(weighting="pso", seed=0)
    >>> clf.fit(X, regret).predict_proba(X).shape  # doctest: +SKIP
    (120, 6)
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from graphrec.errors import NotFittedError
from graphrec.recommender._params import EstimatorParams

__all__ = ["SELECTION_LOSSES", "PSOWCatBoostClassifier", "selection_transform"]

_WEIGHTINGS = ("pso", "heuristic", "none")

#: Per-sample losses a model selection can average (see :func:`selection_transform`).
SELECTION_LOSSES = ("log", "regret")


def selection_transform(regret: np.ndarray, loss: str) -> np.ndarray:
    """Per-sample selection loss: ``log1p(regret)`` (``"log"``) or the regret itself."""
    r = np.asarray(regret, dtype=np.float64)
    if loss == "log":
        return np.asarray(np.log1p(np.maximum(r, 0.0)))
    if loss == "regret":
        return r
    raise ValueError(f"selection loss must be one of {list(SELECTION_LOSSES)}, got {loss!r}")


@contextlib.contextmanager
def _quiet_pyswarms() -> Iterator[None]:
    """Keep pyswarms from reconfiguring the root logger and writing ``./report.log``.

    pyswarms' ``Reporter`` (created on import and by every optimiser) applies a logging
    configuration that adds a stderr handler and a ``report.log`` file handler in the
    current directory, unless ``$LOG_CFG`` names a configuration file; point it at an
    empty one for the duration.
    """
    old = os.environ.get("LOG_CFG")
    with tempfile.TemporaryDirectory() as d:
        cfg = Path(d) / "logging.json"  # JSON is YAML
        cfg.write_text(json.dumps({"version": 1, "disable_existing_loggers": False}))
        os.environ["LOG_CFG"] = str(cfg)
        try:
            yield
        finally:
            if old is None:
                os.environ.pop("LOG_CFG", None)
            else:
                os.environ["LOG_CFG"] = old


class PSOWCatBoostClassifier(EstimatorParams):
    """Cost-sensitive CatBoost classifier of the best candidate (see the module docstring).

    Args:
        weighting: ``"pso"``, ``"heuristic"`` or ``"none"``.
        iterations: Boosting rounds.
        depth: Tree depth (the PSO search overrides it).
        learning_rate: Boosting learning rate (the PSO search overrides it).
        l2_leaf_reg: L2 regularisation (the PSO search overrides it).
        n_particles: PSO swarm size.
        n_pso_iterations: PSO iterations.
        validation_fraction: Share of groups held out to score PSO particles when
            ``n_folds`` is 1.
        selection_loss: Per-sample loss the PSO search averages: ``"log"``
            (``log(1 + regret)``, the log latency ratio: a single sample with a 20x loss
            cannot decide the search on small data) or ``"regret"`` (raw regret).
        n_folds: Inner group-held-out folds over which each PSO particle's regret is
            averaged (1: a single ``validation_fraction`` split).
        max_sample_weight: Cap of the cost-sensitive sample weights.
        class_balance: Exponent beta of the inverse-frequency class weights (1:
            "balanced", 0: none); the PSO search overrides it.
        sample_weight_power: Exponent gamma of the loss-at-stake sample weights (0: all
            1); the PSO search overrides it.
        thread_count: CatBoost threads.
        border_count: Histogram bins per feature. 32 (CatBoost's default is 254) makes
            each multi-class fit about 6x faster on a few hundred samples, which is what
            makes a PSO search of dozens of fits affordable.
        seed: Seed of CatBoost, the split and the swarm.
    """

    def __init__(
        self,
        weighting: str = "pso",
        iterations: int = 200,
        depth: int = 6,
        learning_rate: float = 0.1,
        l2_leaf_reg: float = 3.0,
        n_particles: int = 8,
        n_pso_iterations: int = 6,
        validation_fraction: float = 0.25,
        n_folds: int = 3,
        selection_loss: str = "log",
        max_sample_weight: float = 10.0,
        class_balance: float = 1.0,
        sample_weight_power: float = 1.0,
        thread_count: int = 1,
        border_count: int = 32,
        seed: int = 0,
    ) -> None:
        self.weighting = weighting
        self.iterations = iterations
        self.depth = depth
        self.learning_rate = learning_rate
        self.l2_leaf_reg = l2_leaf_reg
        self.n_particles = n_particles
        self.n_pso_iterations = n_pso_iterations
        self.validation_fraction = validation_fraction
        self.n_folds = n_folds
        self.selection_loss = selection_loss
        self._fixed: tuple[dict[int, float], dict[str, Any]] | None = None
        self.max_sample_weight = max_sample_weight
        self.class_balance = class_balance
        self.sample_weight_power = sample_weight_power
        self.thread_count = thread_count
        self.border_count = border_count
        self.seed = seed

    # ------------------------------------------------------------------ fit
    def fit(
        self, X: np.ndarray, regret: np.ndarray, groups: Sequence[str] | None = None
    ) -> PSOWCatBoostClassifier:
        """Fit on features ``X`` ``[N, F]`` and the regret of every choice ``[N, C]``.

        ``regret[i, c]`` is the latency loss of choosing candidate ``c`` for sample ``i``
        (0 for the best; see :func:`graphrec.dataset.samples.regret_matrix`). The label is
        its argmin. ``groups`` (e.g. architecture families) keeps whole groups on one
        side of the PSO validation split.

        Returns:
            self
        """
        if self.selection_loss not in SELECTION_LOSSES:
            raise ValueError(
                f"selection_loss must be one of {list(SELECTION_LOSSES)}, "
                f"got {self.selection_loss!r}"
            )
        if self.weighting not in _WEIGHTINGS:
            raise ValueError(
                f"weighting must be one of {list(_WEIGHTINGS)}, got {self.weighting!r}"
            )
        X = np.asarray(X, dtype=np.float64)
        regret = np.asarray(regret, dtype=np.float64)
        if X.ndim != 2 or regret.ndim != 2 or len(X) != len(regret) or len(X) == 0:
            raise ValueError(
                f"X must be [N, F] and regret [N, C] with the same N > 0; got {X.shape}, "
                f"{regret.shape}"
            )
        self.n_classes_ = regret.shape[1]
        self.n_features_in_ = X.shape[1]
        if np.isnan(regret).all(axis=1).any():
            raise ValueError("every sample needs the regret of at least one candidate")
        # NaN = candidate not measured for that sample: never its label, no weight.
        y = np.nanargmin(regret, axis=1)
        self.classes_ = np.unique(y)
        sw = self._sample_weights(regret)
        params = self._heuristic_params()
        mult = np.ones(len(self.classes_))
        self.pso_cost_: float | None = None
        self.pso_accepted_: bool | None = None
        self.pso_fallback_: str | None = None
        self.pso_fold_costs_: dict[str, list[float]] | None = None
        fixed = self._fixed
        if fixed is not None:
            mult = np.array([fixed[0].get(int(c), 1.0) for c in self.classes_])
            params = {**self._heuristic_params(), **fixed[1]}
        elif self.weighting == "pso" and len(self.classes_) > 1:
            mult, params, self.pso_cost_ = self._search(X, regret, y, sw, groups)
        self.class_weight_multipliers_ = mult
        self.best_params_ = params
        self.model_ = self._fit_one(X, y, sw, mult, params)
        return self

    def clone_fixed(self) -> PSOWCatBoostClassifier:
        """An unfitted copy whose ``fit`` reuses this model's searched weights, no search.

        Used to refit the same head cheaply on inner folds (e.g. to fit the ranking's
        blend weight on out-of-fold predictions).
        """
        self._check()
        other = type(self)(**self.get_params())
        other._fixed = (
            {
                int(c): float(m)
                for c, m in zip(self.classes_, self.class_weight_multipliers_, strict=True)
            },
            dict(self.best_params_),
        )
        return other

    def _heuristic_params(self) -> dict[str, Any]:
        plain = self.weighting == "none"
        return {
            "depth": self.depth,
            "learning_rate": self.learning_rate,
            "l2_leaf_reg": self.l2_leaf_reg,
            "class_balance": 0.0 if plain else float(self.class_balance),
            "sample_weight_power": 0.0 if plain else float(self.sample_weight_power),
        }

    def _sample_weights(self, regret: np.ndarray) -> np.ndarray:
        """Loss at stake per sample: ``1 + regret of the default choice`` (capped, >= 1).

        The default is the candidate with the lowest mean ``log(1 + regret)`` over the
        samples that measured it; a sample that did not measure it uses its mean regret
        over what it measured.
        """
        r = np.minimum(np.asarray(regret, dtype=np.float64), self.max_sample_weight)
        logr = np.log1p(np.maximum(r, 0.0))
        known = ~np.isnan(logr)
        mean = np.where(known, logr, 0.0).sum(axis=0) / np.maximum(known.sum(axis=0), 1)
        mean = np.where(known.any(axis=0), mean, np.inf)
        default = int(np.argmin(mean))
        stake = np.where(np.isnan(r[:, default]), np.nanmean(r, axis=1), r[:, default])
        return np.asarray(1.0 + np.maximum(stake, 0.0), dtype=np.float64)

    def _weights_for(self, sw: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        gamma = float(params.get("sample_weight_power", 0.0))
        w = np.power(sw, gamma)
        return np.asarray(np.minimum(w / w.mean(), self.max_sample_weight), dtype=np.float64)

    def _class_weights(
        self, y: np.ndarray, mult: np.ndarray, beta: float
    ) -> dict[int, float] | None:
        if self.weighting == "none":
            return None
        counts = np.array([max(int(np.sum(y == c)), 1) for c in self.classes_], dtype=np.float64)
        base = (len(y) / (len(self.classes_) * counts)) ** beta
        return {int(c): float(b * m) for c, b, m in zip(self.classes_, base, mult, strict=True)}

    def _fit_one(
        self, X: np.ndarray, y: np.ndarray, sw: np.ndarray, mult: np.ndarray, params: dict[str, Any]
    ) -> Any:
        if len(np.unique(y)) < 2:
            return None  # a single class: predict it with certainty
        from catboost import CatBoostClassifier

        cw = self._class_weights(y, mult, float(params.get("class_balance", 0.0)))
        if cw is not None:
            present = set(np.unique(y).tolist())
            cw = {k: v for k, v in cw.items() if k in present}
        model = CatBoostClassifier(
            iterations=self.iterations,
            depth=int(params["depth"]),
            learning_rate=float(params["learning_rate"]),
            l2_leaf_reg=float(params["l2_leaf_reg"]),
            loss_function="MultiClass",
            class_weights=cw,
            random_seed=self.seed,
            thread_count=self.thread_count,
            border_count=self.border_count,
            boosting_type="Plain",
            allow_writing_files=False,
            verbose=False,
        )
        model.fit(X, y, sample_weight=self._weights_for(sw, params))
        return model

    def _inner_folds(self, n: int, groups: Sequence[str] | None) -> list[np.ndarray]:
        """Validation masks of the inner folds (whole groups per fold when possible)."""
        from graphrec.dataset.folds import family_folds

        rng = np.random.default_rng(self.seed)
        k = max(1, int(self.n_folds))
        if k == 1:
            # One split: hold out ``validation_fraction`` of the groups (or samples).
            units = sorted(set(groups)) if groups is not None and len(set(groups)) >= 3 else None
            if units is not None:
                rng.shuffle(units)
                held = set(units[: max(1, round(self.validation_fraction * len(units)))])
                val = np.array([g in held for g in groups])  # type: ignore[union-attr]
            else:
                val = np.zeros(n, dtype=bool)
                val[rng.permutation(n)[: max(1, round(self.validation_fraction * n))]] = True
            masks = [val]
        elif groups is not None and len(set(groups)) >= k:
            masks = [np.isin(np.arange(n), t) for t in family_folds(groups, k, self.seed)]
        else:
            f = rng.permutation(n) % k
            masks = [f == i for i in range(k)]
        masks = [m for m in masks if m.any() and not m.all()]
        if not masks:
            val = np.zeros(n, dtype=bool)
            val[: max(1, n // 4)] = True
            masks = [val]
        return masks

    def _search(
        self,
        X: np.ndarray,
        regret: np.ndarray,
        y: np.ndarray,
        sw: np.ndarray,
        groups: Sequence[str] | None,
    ) -> tuple[np.ndarray, dict[str, Any], float]:
        """PSO over class multipliers and hyper-parameters.

        Each particle is scored by the mean latency regret over ``n_folds`` inner
        group-held-out folds (one split overfits on small data). The heuristic point
        (multipliers 1, constructor hyper-parameters) is particle 0 and the plain point (no
        class or sample weights) particle 1. The fallback is the better of those two
        (``pso_fallback_`` names it); the swarm's best replaces it only when it beats it by
        more than one standard error of the per-fold differences (else ``pso_accepted_``
        is False).
        """
        rng = np.random.default_rng(self.seed)
        masks = self._inner_folds(len(y), groups)
        k = len(self.classes_)
        # Dimensions: log2 class multipliers, depth, log10 lr, log10 l2, beta, gamma.
        # Depth stops at 6: deeper oblivious trees overfit a few hundred samples and each
        # level doubles the cost of every particle's fits.
        lo = np.array([-2.0] * k + [3.0, -2.0, 0.0, 0.0, 0.0])
        hi = np.array([2.0] * k + [6.0, -0.5, 1.5, 1.0, 1.0])

        def decode(p: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
            return 2.0 ** p[:k], {
                "depth": int(np.rint(p[k])),
                "learning_rate": float(10 ** p[k + 1]),
                "l2_leaf_reg": float(10 ** p[k + 2]),
                "class_balance": float(p[k + 3]),
                "sample_weight_power": float(p[k + 4]),
            }

        cache: dict[tuple[float, ...], np.ndarray] = {}

        def fold_costs(p: np.ndarray) -> np.ndarray:
            key = tuple(np.round(p, 3))
            if key not in cache:
                mult, prm = decode(p)
                out = []
                for val in masks:
                    m = self._fit_one(X[~val], y[~val], sw[~val], mult, prm)
                    choice = self._choose(m, y[~val], X[val], regret[val])
                    picked = regret[val][np.arange(val.sum()), choice]
                    out.append(float(np.mean(selection_transform(picked, self.selection_loss))))
                cache[key] = np.asarray(out)
            return cache[key]

        hp = [self.depth, math.log10(self.learning_rate), math.log10(self.l2_leaf_reg)]
        heuristic = np.clip(
            np.concatenate([np.zeros(k), hp, [self.class_balance, self.sample_weight_power]]),
            lo,
            hi,
        )
        plain = np.clip(np.concatenate([np.zeros(k), hp, [0.0, 0.0]]), lo, hi)
        init = rng.uniform(lo, hi, size=(self.n_particles, len(lo)))
        init[0] = heuristic
        if self.n_particles > 1:
            init[1] = plain
        np_state = np.random.get_state()
        np.random.seed(self.seed)  # pyswarms draws velocities from the global generator
        try:
            with _quiet_pyswarms():
                import pyswarms as ps

                opt = ps.single.GlobalBestPSO(
                    n_particles=self.n_particles,
                    dimensions=len(lo),
                    options={"c1": 1.5, "c2": 1.5, "w": 0.6},
                    bounds=(lo, hi),
                    init_pos=init,
                )
                _best_cost, best_pos = opt.optimize(
                    lambda P: np.array([float(fold_costs(p).mean()) for p in P]),
                    iters=self.n_pso_iterations,
                    verbose=False,
                )
        finally:
            np.random.set_state(np_state)
        best_pos = np.asarray(best_pos)
        h_costs, p_costs = fold_costs(heuristic), fold_costs(plain)
        b_costs = fold_costs(best_pos)
        # The fallback is the better of the two unsearched points.
        fallback, f_costs, self.pso_fallback_ = (
            (heuristic, h_costs, "heuristic")
            if h_costs.mean() <= p_costs.mean()
            else (plain, p_costs, "plain")
        )
        diff = f_costs - b_costs
        se = float(diff.std(ddof=1) / math.sqrt(len(diff))) if len(diff) > 1 else 0.0
        self.pso_fold_costs_ = {
            "heuristic": h_costs.tolist(),
            "plain": p_costs.tolist(),
            "pso": b_costs.tolist(),
        }
        self.pso_accepted_ = bool(diff.mean() > 0 and diff.mean() > se)
        chosen = best_pos if self.pso_accepted_ else fallback
        mult, prm = decode(chosen)
        return mult, prm, float(fold_costs(chosen).mean())

    def _choose(
        self, model: Any, y_train: np.ndarray, X: np.ndarray, regret: np.ndarray
    ) -> np.ndarray:
        """Validation choices, among the candidates measured for each sample."""
        from graphrec.dataset.samples import masked_argmax

        scores = np.zeros((len(X), self.n_classes_))
        if model is None:
            scores[:, int(np.bincount(y_train).argmax())] = 1.0
        else:
            labels = np.asarray(model.classes_).astype(np.int64)
            scores[:, labels] = model.predict_proba(X)
        return masked_argmax(scores, regret)

    # ------------------------------------------------------------------ predict
    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Probability that each candidate is the fastest, ``[N, C]``."""
        self._check()
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        if X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, the model was fitted on {self.n_features_in_}"
            )
        out = np.zeros((len(X), self.n_classes_))
        if self.model_ is None:
            out[:, int(self.classes_[0])] = 1.0
            return out
        proba = self.model_.predict_proba(X)
        labels = np.asarray(self.model_.classes_).astype(np.int64)
        out[:, labels] = proba
        return out

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Index of the predicted fastest candidate per sample."""
        return np.asarray(np.argmax(self.predict_proba(X), axis=1), dtype=np.int64)

    # ------------------------------------------------------------------ persistence
    def save(self, folder: str | Path, name: str = "head") -> dict[str, Any]:
        """Write ``<name>.cbm`` (CatBoost's own format) and return JSON-able metadata."""
        self._check()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        meta: dict[str, Any] = {
            "params": self.get_params(),
            "n_classes": int(self.n_classes_),
            "n_features": int(self.n_features_in_),
            "classes": [int(c) for c in self.classes_],
            "class_weight_multipliers": [float(m) for m in self.class_weight_multipliers_],
            "best_params": self.best_params_,
            "pso_cost": self.pso_cost_,
            "pso_accepted": self.pso_accepted_,
            "pso_fallback": self.pso_fallback_,
            "pso_fold_costs": self.pso_fold_costs_,
            "file": None,
        }
        if self.model_ is not None:
            self.model_.save_model(str(folder / f"{name}.cbm"), format="cbm")
            meta["file"] = f"{name}.cbm"
        return meta

    @classmethod
    def load(cls, folder: str | Path, meta: dict[str, Any]) -> PSOWCatBoostClassifier:
        """Inverse of :meth:`save`."""
        self = cls(**meta["params"])
        self.n_classes_ = int(meta["n_classes"])
        self.n_features_in_ = int(meta["n_features"])
        self.classes_ = np.asarray(meta["classes"], dtype=np.int64)
        self.class_weight_multipliers_ = np.asarray(meta["class_weight_multipliers"])
        self.best_params_ = dict(meta["best_params"])
        self.pso_cost_ = meta["pso_cost"]
        self.pso_accepted_ = meta.get("pso_accepted")
        self.pso_fallback_ = meta.get("pso_fallback")
        self.pso_fold_costs_ = meta.get("pso_fold_costs")
        self.model_ = None
        if meta.get("file"):
            from catboost import CatBoostClassifier

            m = CatBoostClassifier()
            m.load_model(str(Path(folder) / meta["file"]), format="cbm")
            self.model_ = m
        return self

    def _check(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError(
                "this PSOWCatBoostClassifier is not fitted yet; call fit(X, regret) first"
            )
