"""``graphrec calibrate``: adapt the recommender to this device from K measured probe models.

The shipped dataset holds the latency of every zoo model on every candidate on the
training devices (the candidate x model matrix). Calibration measures K of those models
("probes") on this machine with the real harness and fits a correction of the
predicted log-latency, per candidate, from the differences between what was measured
here and what the artefact predicts for the probes on the reference training device:

``log t_here(m, c) = log t_pred_ref(m, c) + delta(m, c)``

(:func:`fit_correction` can also take the reference device's measurements instead of
the predictions; ``benchmarks/bench_calibrate.py`` compares the two.)

``delta`` is a Bayesian linear model with shrinkage (:class:`CorrectionModel`): a global
offset, per-runtime and per-thread-count offsets, per-candidate offsets (each shrunk
towards the level above), and, with ``method="slope"``, a per-runtime slope on the
model's size (its standardised log-latency on the reference device), which captures a
device whose compute and per-call overhead scale differently. With several training
devices the prior is the same; the reference is the training device whose probe
latencies are closest to this one's.

At recommend time (:func:`apply_calibration`) the artefact predicts for the reference
device and ``delta`` is added; the latency interval stays the artefact's.

Probes (:func:`select_probes`) are chosen to be informative: greedy Bayesian
D-optimal design over the correction model's basis (each model contributes one row per
candidate that ran on the reference device), one model per family at most, among the
models whose measurement fits the time budget; ``"random"`` draws K affordable models
instead (the baseline).

Example:
    >>> from graphrec.device.calibrate import calibrate
    >>> prof = calibrate(samples=10, budget_min=10, out="here.json")  # doctest: +SKIP
    >>> import graphrec
    >>> graphrec.recommend("model.onnx", "here.json").best.candidate_id  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from graphrec.errors import GraphRecError

if TYPE_CHECKING:
    from graphrec.bench.protocol import MeasureConfig
    from graphrec.device.profile import DeviceProfile
    from graphrec.recommender.medn import MEDNPrediction

__all__ = [
    "CALIBRATION_VERSION",
    "CorrectionModel",
    "ProbePool",
    "apply_calibration",
    "calibrate",
    "candidates_digest",
    "probe_pool",
    "select_probes",
]

#: Layout version of the ``calibration`` record.
CALIBRATION_VERSION = 1
#: Prior standard deviations (log-latency) of the correction's levels.
PRIOR_SD: dict[str, float] = {
    "global": 2.0,
    "runtime": 0.7,
    "threads": 0.5,
    "candidate": 0.5,
    "slope": 0.3,
}
#: Floor of the noise standard deviation of one probe measurement (log-latency).
NOISE_SD_FLOOR = 0.05


class CalibrationError(GraphRecError):
    """Calibration cannot run or its record is unusable."""


def candidates_digest(candidates: Sequence[str]) -> str:
    """A short digest of a candidate list (a calibration is valid for that list only)."""
    return hashlib.sha256("\n".join(candidates).encode()).hexdigest()[:16]


# ---------------------------------------------------------------------- correction model
def _runtime(cid: str) -> str:
    return cid.split("/", 1)[0]


def _threads(cid: str) -> str:
    for part in cid.split("/"):
        if part.startswith("threads="):
            return part
    return "threads=?"


@dataclass
class CorrectionModel:
    """Shrunk linear correction of log-latency per candidate (see the module docstring).

    Attributes:
        candidates: Candidate ids, in the artefact's order.
        method: ``"offset"`` or ``"slope"``.
        size_mean: Mean of the models' reference log-latency (for the slope's scale).
        size_std: Its standard deviation.
        weights: Posterior mean weights (after :meth:`fit`).
        cov: Posterior covariance of the weights.
        noise_var: Noise variance of one probe measurement.
    """

    candidates: list[str]
    method: str = "offset"
    size_mean: float = 0.0
    size_std: float = 1.0
    weights: np.ndarray | None = None
    cov: np.ndarray | None = None
    noise_var: float = NOISE_SD_FLOOR**2

    def __post_init__(self) -> None:
        if self.method not in ("offset", "slope"):
            raise CalibrationError(
                f"unknown calibration method {self.method!r}; valid: offset, slope"
            )
        self.runtimes = sorted({_runtime(c) for c in self.candidates})
        self.thread_levels = sorted({_threads(c) for c in self.candidates})

    def _blocks(self) -> list[tuple[str, int]]:
        b = [
            ("global", 1),
            ("runtime", len(self.runtimes)),
            ("threads", len(self.thread_levels)),
            ("candidate", len(self.candidates)),
        ]
        if self.method == "slope":
            b.append(("slope", len(self.runtimes)))
        return b

    def prior(self) -> tuple[np.ndarray, np.ndarray]:
        """Prior mean (zeros) and diagonal covariance of the weights."""
        var = np.concatenate([np.full(n, PRIOR_SD[name] ** 2) for name, n in self._blocks()])
        return np.zeros(len(var)), np.diag(var)

    def basis(self, size: float | np.ndarray, cols: Sequence[int] | None = None) -> np.ndarray:
        """Basis rows ``[len(cols), q]`` of candidates ``cols`` for a model of ``size``
        (its reference log-latency, a scalar or one value per column)."""
        idx = np.arange(len(self.candidates)) if cols is None else np.asarray(cols, dtype=np.int64)
        q = sum(n for _, n in self._blocks())
        out = np.zeros((len(idx), q))
        out[:, 0] = 1.0
        r_off = 1
        t_off = r_off + len(self.runtimes)
        c_off = t_off + len(self.thread_levels)
        s_off = c_off + len(self.candidates)
        sz = np.broadcast_to(np.asarray(size, dtype=np.float64), (len(idx),))
        z = (sz - self.size_mean) / max(self.size_std, 1e-9)
        for row, j in enumerate(idx):
            cid = self.candidates[int(j)]
            r = self.runtimes.index(_runtime(cid))
            out[row, r_off + r] = 1.0
            out[row, t_off + self.thread_levels.index(_threads(cid))] = 1.0
            out[row, c_off + int(j)] = 1.0
            if self.method == "slope":
                out[row, s_off + r] = z[row]
        return out

    def fit(self, rows: Sequence[tuple[int, float, float]]) -> CorrectionModel:
        """Posterior given probe rows ``(candidate column, model size, delta)``.

        The noise variance comes from the residuals of a first fit under a prior ten
        times wider (so that the noise does not absorb what the levels should explain),
        divided by its residual degrees of freedom and floored at
        :data:`NOISE_SD_FLOOR`; the posterior is then computed with the real prior.
        """
        if not rows:
            raise CalibrationError("no probe measurement to calibrate from")
        cols = [int(r[0]) for r in rows]
        P = self.basis(np.array([r[1] for r in rows]), cols)
        y = np.array([r[2] for r in rows], dtype=np.float64)
        m0, S0 = self.prior()
        prec0 = np.linalg.inv(S0)
        wide = prec0 / 100.0
        noise0 = NOISE_SD_FLOOR**2
        A = P.T @ P / noise0 + wide
        cov = np.linalg.inv(A)
        w = cov @ (P.T @ y / noise0 + wide @ m0)
        resid = y - P @ w
        hat = float(np.trace(P @ cov @ P.T)) / noise0
        dof = max(len(y) - hat, 1.0)
        noise = max(float(resid @ resid) / dof, NOISE_SD_FLOOR**2)
        A = P.T @ P / noise + prec0
        self.cov = np.linalg.inv(A)
        self.weights = self.cov @ (P.T @ y / noise + prec0 @ m0)
        self.noise_var = noise
        return self

    def predict(
        self, size: float | np.ndarray, cols: Sequence[int] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Correction ``delta`` and its predictive standard deviation per column."""
        if self.weights is None or self.cov is None:
            raise CalibrationError("the correction model is not fitted")
        P = self.basis(size, cols)
        mean = P @ self.weights
        var = np.einsum("ij,jk,ik->i", P, self.cov, P) + self.noise_var
        return mean, np.sqrt(var)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able parameters (what :meth:`from_dict` reads)."""
        if self.weights is None or self.cov is None:
            raise CalibrationError("the correction model is not fitted")
        return {
            "method": self.method,
            "size_mean": self.size_mean,
            "size_std": self.size_std,
            "weights": [round(float(v), 6) for v in self.weights],
            "cov": [[round(float(v), 8) for v in row] for row in self.cov],
            "noise_var": self.noise_var,
            "prior_sd": dict(PRIOR_SD),
        }

    @classmethod
    def from_dict(cls, candidates: Sequence[str], d: Mapping[str, Any]) -> CorrectionModel:
        """The model of :meth:`to_dict`."""
        m = cls(
            list(candidates),
            method=str(d["method"]),
            size_mean=float(d["size_mean"]),
            size_std=float(d["size_std"]),
        )
        q = sum(n for _, n in m._blocks())
        w = np.asarray(d["weights"], dtype=np.float64)
        cov = np.asarray(d["cov"], dtype=np.float64)
        if w.shape != (q,) or cov.shape != (q, q):
            raise CalibrationError(
                f"calibration parameters have shape {w.shape}/{cov.shape}, expected ({q},) "
                "for this candidate list"
            )
        m.weights, m.cov, m.noise_var = w, cov, float(d["noise_var"])
        return m


# ---------------------------------------------------------------------- the probe pool
@dataclass
class ProbePool:
    """The training data's candidate x model matrix, as calibration sees it.

    Attributes:
        model_ids: Zoo model ids (rows).
        families: Family of each row.
        candidates: Candidate ids (columns), the artefact's order.
        log_latency: ``[models, candidates]`` log median latency (ms) on the reference
            device, NaN where the candidate did not run.
        cost_s: Estimated seconds to measure each model on every candidate (the
            harness's wall time on the reference device, conversions included, plus 2 s
            for the zoo export).
        device_id: The reference device.
    """

    model_ids: list[str]
    families: list[str]
    candidates: list[str]
    log_latency: np.ndarray
    cost_s: np.ndarray
    device_id: str

    def size(self) -> np.ndarray:
        """Each model's mean log-latency over the candidates that ran (its "size")."""
        with np.errstate(all="ignore"):
            return np.asarray(np.nanmean(self.log_latency, axis=1))


def _dataset_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "data" / "measurements"


def probe_pool(
    candidates: Sequence[str],
    *,
    dataset: str | Path | None = None,
    device_id: str | None = None,
    min_coverage: float = 0.8,
    coverage_of: Sequence[str] | None = None,
) -> ProbePool:
    """The fp32 zoo models of the shipped dataset, with their reference latencies.

    Args:
        candidates: The artefact's candidate ids.
        dataset: Dataset folder (default: the shipped ``graphrec/data/measurements``).
        device_id: Reference device (default: the one with most models).
        min_coverage: Keep models that ran on at least this share of the candidates
            (of ``coverage_of`` when given: the ones calibration will measure).

    Raises:
        CalibrationError: No usable model.
    """
    import pandas as pd

    folder = Path(dataset) if dataset is not None else _dataset_dir()
    path = folder / "measurements.parquet"
    if not path.is_file():
        raise CalibrationError(f"{path}: no measurements to choose probes from")
    df = pd.read_parquet(
        path,
        columns=[
            "model_id",
            "family",
            "variant",
            "candidate_id",
            "device_id",
            "round",
            "status",
            "p50_ms",
            "wall_s",
        ],
    )
    if device_id is None:
        device_id = str(df.groupby("device_id")["model_id"].nunique().idxmax())
    df = df[(df["device_id"] == device_id) & (df["variant"] == "fp32")]
    df = df[df["candidate_id"].isin(list(candidates))]
    ok = df[(df["status"] == "ok") & (df["p50_ms"] > 0)]
    lat = ok.groupby(["model_id", "candidate_id"])["p50_ms"].median().unstack()
    lat = lat.reindex(columns=list(candidates))
    cover = lat[list(coverage_of) if coverage_of else list(candidates)].notna().mean(axis=1)
    lat = lat[cover >= min_coverage]
    r0 = df[df["round"] == 0]
    # The harness's wall time per row includes the conversion it ran.
    wall = r0.groupby("model_id")["wall_s"].sum()
    cost = wall.reindex(lat.index).fillna(60.0).to_numpy()
    fam = df.drop_duplicates("model_id").set_index("model_id")["family"].reindex(lat.index)
    if lat.empty:
        raise CalibrationError(f"{path}: no fp32 zoo model ran on {min_coverage:.0%} of candidates")
    return ProbePool(
        model_ids=[str(i) for i in lat.index],
        families=[str(f) for f in fam],
        candidates=list(candidates),
        log_latency=np.log(lat.to_numpy(dtype=np.float64)),
        cost_s=np.asarray(cost, dtype=np.float64) + 2.0,  # + the zoo export
        device_id=device_id,
    )


def _correction_for(pool: ProbePool, method: str) -> CorrectionModel:
    size = pool.size()
    return CorrectionModel(
        list(pool.candidates),
        method=method,
        size_mean=float(np.nanmean(size)),
        size_std=float(np.nanstd(size)) or 1.0,
    )


def select_probes(
    pool: ProbePool,
    k: int,
    *,
    how: str = "informative",
    budget_s: float | None = None,
    seed: int = 0,
    method: str = "slope",
    exclude: Sequence[str] = (),
    columns: Sequence[str] | None = None,
) -> list[str]:
    """K probe model ids from ``pool``.

    Args:
        pool: The candidate x model matrix (:func:`probe_pool`).
        k: Number of probes.
        how: ``"informative"`` (greedy D-optimal over the correction model's basis, one
            model per family while families remain) or ``"random"``.
        budget_s: Seconds all K may take (models costlier than their share,
            ``budget_s / k``, are left out; the cheapest ones are kept if too few remain).
        seed: Seed of ``"random"``.
        method: The correction model whose basis the design is for.
        exclude: Model ids not to choose (e.g. held-out models).
        columns: The candidates that will be measured (default: all of the pool's).

    Raises:
        CalibrationError: Unknown ``how`` or too few models.
    """
    if how not in ("informative", "random"):
        raise CalibrationError(f"unknown probe choice {how!r}; valid: informative, random")
    n = len(pool.model_ids)
    allowed = np.array([m not in set(exclude) for m in pool.model_ids])
    if budget_s is not None and k > 0:
        cheap = pool.cost_s <= budget_s / k
        if (cheap & allowed).sum() < k:
            order = np.argsort(np.where(allowed, pool.cost_s, np.inf))
            cheap = np.zeros(n, dtype=bool)
            cheap[order[: max(k, 1)]] = True
        allowed &= cheap
    idx = np.flatnonzero(allowed)
    if len(idx) < k:
        raise CalibrationError(f"only {len(idx)} usable probe models for K={k}")
    if how == "random":
        rng = np.random.default_rng(seed)
        return [pool.model_ids[int(i)] for i in rng.choice(idx, size=k, replace=False)]
    cm = _correction_for(pool, method)
    _, S = cm.prior()
    size = pool.size()
    measured = np.ones(len(pool.candidates), dtype=bool)
    if columns is not None:
        measured = np.isin(np.array(pool.candidates), list(columns))
    blocks: dict[int, np.ndarray] = {}
    for i in idx:
        cols = [int(c) for c in np.flatnonzero(~np.isnan(pool.log_latency[i]) & measured)]
        blocks[int(i)] = cm.basis(size[i], cols)
    noise = 0.1**2
    chosen: list[int] = []
    used_fam: set[str] = set()
    for _ in range(k):
        best, best_gain = -1, -np.inf
        fams_left = {pool.families[b] for b in blocks if b not in chosen} - used_fam
        for b, P in blocks.items():
            if b in chosen or (fams_left and pool.families[b] in used_fam):
                continue
            M = np.eye(len(P)) + P @ S @ P.T / noise
            gain = float(np.linalg.slogdet(M)[1])
            if gain > best_gain:
                best, best_gain = b, gain
        chosen.append(best)
        used_fam.add(pool.families[best])
        P = blocks[best]
        K_ = S @ P.T @ np.linalg.inv(noise * np.eye(len(P)) + P @ S @ P.T)
        S = S - K_ @ P @ S
    return [pool.model_ids[i] for i in chosen]


# ---------------------------------------------------------------------- fit and apply
def fit_correction(
    pool: ProbePool,
    measured: Mapping[str, Mapping[str, float]],
    *,
    method: str = "slope",
    predicted: Mapping[str, np.ndarray] | None = None,
) -> tuple[CorrectionModel, list[tuple[int, float, float]]]:
    """The correction model from probe latencies measured here.

    Args:
        pool: The reference matrix.
        measured: ``{model_id: {candidate_id: median latency ms}}`` measured on this device.
        method: ``"offset"`` or ``"slope"``.
        predicted: ``{model_id: [C] log-latency}`` the artefact predicts for the probes on
            the reference device. Given, ``delta`` is measured minus predicted (what
            :func:`apply_calibration` adds to a prediction) and the size is the mean
            prediction; else ``delta`` is measured minus the reference device's
            measurement.

    Returns:
        The fitted model and the rows ``(column, size, delta)`` it was fitted on.
    """
    cm = _correction_for(pool, method)
    size = pool.size()
    pos = {m: i for i, m in enumerate(pool.model_ids)}
    rows: list[tuple[int, float, float]] = []
    for mid, lat in measured.items():
        i = pos.get(mid)
        pred = None if predicted is None else predicted.get(mid)
        if i is None and pred is None:
            continue
        for cid, ms in lat.items():
            if cid not in pool.candidates or not ms or ms <= 0 or not math.isfinite(ms):
                continue
            j = pool.candidates.index(cid)
            if pred is not None:
                ref, sz = float(pred[j]), float(np.mean(pred))
            else:
                assert i is not None
                ref, sz = float(pool.log_latency[i, j]), float(size[i])
            if np.isnan(ref):
                continue
            rows.append((j, sz, float(math.log(ms) - ref)))
    return cm.fit(rows), rows


def _record_model(calibration: Mapping[str, Any], candidates: Sequence[str]) -> CorrectionModel:
    if calibration.get("version") != CALIBRATION_VERSION:
        raise CalibrationError(
            f"calibration record version {calibration.get('version')!r} is not supported "
            f"(expected {CALIBRATION_VERSION}); run graphrec calibrate again"
        )
    return CorrectionModel.from_dict(candidates, calibration["correction"])


def calibration_matches(calibration: Mapping[str, Any] | None, candidates: Sequence[str]) -> bool:
    """Whether a calibration record was fitted for this candidate list."""
    if not calibration:
        return False
    return bool(calibration.get("candidates_digest") == candidates_digest(list(candidates)))


def apply_calibration(
    calibration: Mapping[str, Any],
    candidates: Sequence[str],
    pred: MEDNPrediction,
) -> MEDNPrediction:
    """``pred`` (the artefact's prediction for the reference device) with the device's
    correction added to the log-latency of every candidate.

    The model's size for the slope is the mean predicted log-latency over the candidates
    (as in :func:`fit_correction` with predictions). The errors the ranking draws from
    are left as the artefact's.

    Raises:
        CalibrationError: The record was fitted for another candidate list or version.
    """
    from graphrec.recommender.medn import MEDNPrediction

    if not calibration_matches(calibration, candidates):
        raise CalibrationError(
            "this calibration was fitted for another artefact's candidate list; "
            "run graphrec calibrate again with this artefact"
        )
    cm = _record_model(calibration, candidates)
    lat = np.asarray(pred.log_latency_ms, dtype=np.float64)
    out = lat.copy()
    for i in range(len(lat)):
        delta, _ = cm.predict(float(np.mean(lat[i])))
        out[i] = lat[i] + delta
    return MEDNPrediction(
        log_latency_ms=out,
        log_latency_sigma=pred.log_latency_sigma,
        log_cold_start_ms=pred.log_cold_start_ms,
        p_deployable=pred.p_deployable,
        embedding=pred.embedding,
        log_latency_rel_sigma=pred.log_latency_rel_sigma,
    )


def reference_device_vector(calibration: Mapping[str, Any]) -> np.ndarray | None:
    """The device features the artefact predicts for when this calibration is used."""
    v = calibration.get("reference_device_features")
    return None if v is None else np.asarray(v, dtype=np.float64)


# ---------------------------------------------------------------------- calibrate
def _reference_profile(dataset: Path, device_id: str) -> dict[str, Any] | None:
    meta = dataset / "meta.json"
    try:
        devices = json.loads(meta.read_text()).get("devices", {})
    except (OSError, json.JSONDecodeError):
        return None
    prof = devices.get(device_id)
    return dict(prof) if isinstance(prof, dict) else None


def _export_probes(model_ids: Sequence[str], folder: Path) -> list[Path]:
    """Zoo exports of the probes (reused when already there) with their torch sidecars."""
    from graphrec.zoo.entry import ZooEntry
    from graphrec.zoo.folder import torch_source

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for mid in model_ids:
        path = folder / f"{mid}.onnx"
        entry = ZooEntry.from_model_id(mid)
        if not path.is_file():
            tmp = folder / f"{mid}.onnx.part"
            entry.export(tmp)
            tmp.replace(path)
        side = folder / f"{mid}.torch.json"
        if entry.variant == "fp32" and not side.is_file():
            side.write_text(json.dumps(torch_source(entry), sort_keys=True, indent=1) + "\n")
        paths.append(path)
    return paths


def measured_latencies(store_path: str | Path, device_id: str) -> dict[str, dict[str, float]]:
    """``{model name: {candidate: median p50 ms}}`` of the ok rows of a results store."""
    from graphrec.bench.store import ResultStore

    out: dict[str, dict[str, list[float]]] = {}
    with ResultStore(store_path) as store:
        models = store.models()
        for row in store.rows(device_id=device_id):
            if row.get("status") != "ok" or not row.get("p50_ms"):
                continue
            info = models.get(row["model_sha256"], {})
            name = str(info.get("name") or row["model_sha256"])
            out.setdefault(name, {}).setdefault(row["candidate_id"], []).append(
                float(row["p50_ms"])
            )
    return {m: {c: float(np.median(v)) for c, v in d.items()} for m, d in out.items()}


def calibrate(
    samples: int = 10,
    *,
    budget_min: float = 10.0,
    out: str | Path | None = None,
    store: str | Path | None = None,
    device: DeviceProfile | str | Path | None = None,
    artefact: str | Path | None = None,
    probes: str = "informative",
    method: str = "slope",
    probe_models: Sequence[str] | None = None,
    candidates: Sequence[str] | None = None,
    dataset: str | Path | None = None,
    seed: int = 0,
    reference: str = "predicted",
    config: MeasureConfig | None = None,
    progress: Callable[[str], None] | None = None,
) -> DeviceProfile:
    """Measure K probe models on this machine and return the calibrated profile.

    Args:
        samples: K, the number of probe models.
        budget_min: Minutes the measurements may take (probes are chosen to fit; the
            campaign stops starting new models once it is spent).
        out: Where to write the calibrated profile JSON (not written when ``None``).
        store: Results store of the probe measurements (resume: what it holds is not
            measured again). Default: ``<out>.probes.sqlite``, else a file in the
            user cache.
        device: The profile to calibrate (default: detected here).
        artefact: Trained recommender folder (default: as :func:`graphrec.recommend`).
        probes: ``"informative"`` or ``"random"`` (:func:`select_probes`).
        method: ``"slope"`` or ``"offset"`` (:class:`CorrectionModel`).
        probe_models: Explicit probe model ids (zoo ids in the dataset); overrides
            ``samples`` and ``probes``.
        candidates: Measure only candidates matching these patterns (default: every
            candidate of the artefact that this machine offers).
        dataset: Dataset folder with the reference matrix (default: the shipped one).
        seed: Seed of random probes.
        reference: What the probes' measurements are compared with: ``"predicted"``
            (the artefact's prediction for the reference device) or ``"measured"`` (the
            reference device's measurements in the dataset), see :func:`fit_correction`.
        config: The harness's timing settings (default :class:`MeasureConfig`).
        progress: Called with one line of text per step and measurement.

    Returns:
        The profile with its ``calibration`` record.

    Raises:
        CalibrationError: No probe can be chosen or nothing was measured.
    """
    from graphrec.api import _device, load_artefact
    from graphrec.bench.harness import plan_candidates, run_campaign
    from graphrec.bench.store import ResultStore
    from graphrec.recommender.features import device_vector, model_inputs
    from graphrec.runtimes.base import Candidate

    say = progress or (lambda _s: None)
    t0 = time.monotonic()
    rec, art_path = load_artefact(artefact)
    dev = _device("auto" if device is None else device)
    ids = rec.candidates
    data_dir = Path(dataset) if dataset is not None else _dataset_dir()
    parsed = [Candidate.parse(c) for c in ids]
    threads = sorted({c.threads for c in parsed if c.threads}) or [1]
    _, offered, _ = plan_candidates(dev, threads=threads)
    here = {c.candidate_id for c in offered}
    measure_ids = [
        c
        for c, p in zip(ids, parsed, strict=True)
        if c in here and (not candidates or any(p.matches(pat) for pat in candidates))
    ]
    if not measure_ids:
        raise CalibrationError(
            f"none of the artefact's candidates {'matching ' + str(list(candidates)) if candidates else ''}"
            " can be measured on this machine"
        )
    pool = probe_pool(ids, dataset=data_dir, coverage_of=measure_ids)
    budget_s = max(float(budget_min), 0.1) * 60.0
    if probe_models:
        unknown = [m for m in probe_models if m not in pool.model_ids]
        if unknown:
            raise CalibrationError(f"probe model(s) {unknown} are not in the reference matrix")
        chosen = list(probe_models)
    else:
        chosen = select_probes(
            pool,
            int(samples),
            how=probes,
            budget_s=budget_s,
            seed=seed,
            method=method,
            columns=measure_ids,
        )
    est = float(sum(pool.cost_s[pool.model_ids.index(m)] for m in chosen))
    say(
        f"probes ({probes}): {', '.join(chosen)} (about {est / 60:.1f} min on the reference device)"
    )
    if store is None:
        if out is not None:
            store = Path(str(out) + ".probes.sqlite")
        else:
            from graphrec.bench.harness import default_cache_dir

            store = default_cache_dir() / f"calibrate-{dev.device_id}.sqlite"
    store = Path(store)
    store.parent.mkdir(parents=True, exist_ok=True)
    model_dir = store.parent / (store.stem + "-models")
    paths = _export_probes(chosen, model_dir)
    say(f"exported {len(paths)} probe models to {model_dir}")
    say(f"measuring {len(measure_ids)} candidates per probe")
    done = [0]
    names = {hashlib.sha256(p.read_bytes()).hexdigest(): p.stem for p in paths}

    def on_result(row: dict[str, Any]) -> None:
        done[0] += 1
        p50 = row.get("p50_ms")
        ms = f"{p50:.3f} ms" if isinstance(p50, float) else "-"
        say(
            f"[{done[0]}] {names.get(row['model_sha256'], row['model_sha256'][:8])} "
            f"{row['candidate_id']}: {row['status']} {ms} ({time.monotonic() - t0:.0f} s)"
        )

    per_model: list[float] = []
    with ResultStore(store) as st:
        for path in paths:
            left = budget_s - (time.monotonic() - t0)
            # a probe starts only when the mean time of the probes so far still fits
            need = float(np.mean(per_model)) if per_model else 0.0
            if left <= 0 or need > left:
                say(
                    f"budget of {budget_min:g} min would be exceeded: {path.stem} and later "
                    "probes not measured"
                )
                break
            t_model = time.monotonic()
            n_before = done[0]
            run_campaign(
                [path],
                store=st,
                device=dev,
                runtimes=sorted({c.split("/", 1)[0] for c in measure_ids}),
                patterns=measure_ids,
                threads=threads,
                config=config,
                on_result=on_result,
            )
            if done[0] > n_before:  # resumed probes cost nothing
                per_model.append(time.monotonic() - t_model)
    measured = measured_latencies(store, dev.device_id)
    measured = {m: v for m, v in measured.items() if m in chosen}
    if not measured:
        raise CalibrationError(
            f"{store}: no probe measurement succeeded; nothing to calibrate from"
        )
    ref_prof = _reference_profile(data_dir, pool.device_id)
    ref_vec = device_vector(ref_prof) if ref_prof is not None else device_vector(dev)
    predicted = {}
    for path in paths:
        if path.stem in measured:
            mi = model_inputs(path)
            p, _ = rec.predict_arrays([mi.hetero], mi.graph_features[None, :], ref_vec[None, :])
            predicted[path.stem] = np.asarray(p.log_latency_ms[0], dtype=np.float64)
    if reference not in ("predicted", "measured"):
        raise CalibrationError(f"unknown reference {reference!r}; valid: predicted, measured")
    cm, rows = fit_correction(
        pool, measured, method=method, predicted=predicted if reference == "predicted" else None
    )
    record: dict[str, Any] = {
        "version": CALIBRATION_VERSION,
        "method": method,
        "reference": reference,
        "probes": probes if not probe_models else "given",
        "k": len(measured),
        "probe_models": sorted(measured),
        "probe_latency_ms": {
            m: {c: round(v, 5) for c, v in d.items()} for m, d in measured.items()
        },
        "n_rows": len(rows),
        "reference_device_id": pool.device_id,
        "reference_device_features": None
        if ref_prof is None
        else [round(float(v), 6) for v in ref_vec],
        "artefact": str(art_path),
        "artefact_created_at": getattr(rec, "info_", {}).get("created_at"),
        "candidates_digest": candidates_digest(ids),
        "correction": cm.to_dict(),
        "store": str(store),
        "seconds": round(time.monotonic() - t0, 1),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    dev.calibration = record
    if out is not None:
        dev.save(out)
        say(f"calibrated profile written to {out} ({record['seconds']:.0f} s)")
    return dev
