"""``graphrec.recommend``: ranked deployment choices for an ONNX model on a device.

Example:
    >>> import graphrec
    >>> rec = graphrec.recommend("model.onnx", "auto")  # doctest: +SKIP
    >>> rec.best.candidate_id, rec.best.latency_ms  # doctest: +SKIP
    ('openvino/cpu/fp32/hint=latency/threads=1', 1.8)
    >>> print(rec.to_json())  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import json
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from graphrec.errors import (
    ArtefactError,
    CandidateSpecError,
    GraphRecError,
    OutOfDistributionWarning,
)

if TYPE_CHECKING:
    import pandas as pd

    from graphrec.device import DeviceProfile
    from graphrec.recommender.estimator import Recommender
    from graphrec.selection.select import Selection

__all__ = [
    "ARTEFACT_ENV",
    "Choice",
    "Recommendation",
    "load_artefact",
    "recommend",
    "select",
    "verify",
]

#: Environment variable naming the default artefact folder.
ARTEFACT_ENV = "GRAPHREC_ARTEFACT"
_PACKAGED = Path(__file__).parent / "data" / "recommender"


@dataclass
class Choice:
    """One deployment choice with its predictions.

    Attributes:
        rank: 1 for the recommended choice.
        candidate_id: The harness's candidate id (joins with ``graphrec bench`` rows).
        latency_ms: Predicted median warm latency.
        latency_low_ms: Lower end of the 90 % interval.
        latency_high_ms: Upper end of the 90 % interval.
        p_fastest: Probability of being the fastest deployable choice.
        expected_loss: ``E[latency / latency(best) - 1]`` (``None`` when not deployable).
        p_deployable: Probability the choice runs the model with correct outputs.
        deployable: Whether the choice is predicted to run the model at all.
        cold_start_ms: Predicted cold start (load + first run).
        measured_ms: Median warm latency measured by :func:`verify` on this machine
            (``None`` when not measured or it failed).
        measured_status: The harness status of that measurement (``None`` if not run).
        note: Why the choice cannot run this model whatever the prediction (e.g. its
            runtime converts from the PyTorch module and the model is a bare ONNX file,
            or an operator's probe failed), or why a lossy choice is not ranked.
        p_within_tolerance: For bf16 / fp16 / int8 choices: the probability that the
            outputs stay within ``tolerance`` of fp32 (measured error distribution of
            the choice on the training models); ``None`` for fp32 or when unknown.
        tolerance: The relative L2 error that probability is for.
        extrapolated: The device is far from every training device and not calibrated:
            this choice's figures are extrapolated (its interval is widened).
    """

    rank: int
    candidate_id: str
    latency_ms: float
    latency_low_ms: float
    latency_high_ms: float
    p_fastest: float
    expected_loss: float | None
    p_deployable: float
    deployable: bool
    cold_start_ms: float
    measured_ms: float | None = None
    measured_status: str | None = None
    note: str | None = None
    p_within_tolerance: float | None = None
    tolerance: float | None = None
    extrapolated: bool = False

    @property
    def runtime(self) -> str:
        """The runtime (library) part of the candidate id."""
        return self.candidate_id.split("/", 1)[0]


@dataclass
class Recommendation:
    """Ranked deployment choices for one model on one device.

    Attributes:
        model_path: The ONNX file.
        device_id: The device profile's id.
        device_name: The device profile's name.
        input_shapes: Concrete input shapes the prediction is for.
        choices: Best first; choices predicted not to run come last.
        warnings: Why the prediction may be unreliable (far from training data).
        artefact: Where the trained models came from.
        device_status: Where the device stands (:class:`graphrec.device.distance.DeviceFit`):
            ``training``, ``calibrated``, ``near`` or ``extrapolated``.
        device_distance: Distance to the nearest training device (``None``: unknown).
        extrapolated: ``device_status == "extrapolated"``: the device is far from every
            training device and not calibrated; run ``graphrec calibrate``.
        statement: The plain statement about the device shown with the table
            (``None`` on training devices and calibrated profiles).
    """

    model_path: str
    device_id: str
    device_name: str
    input_shapes: dict[str, list[int]]
    choices: list[Choice]
    warnings: list[str] = field(default_factory=list)
    artefact: str = ""
    device_status: str = "unknown"
    device_distance: float | None = None
    extrapolated: bool = False
    statement: str | None = None

    @property
    def best(self) -> Choice:
        """The recommended choice (the first deployable one, else the first)."""
        for c in self.choices:
            if c.deployable:
                return c
        return self.choices[0]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (``best`` included as a candidate id)."""
        d = asdict(self)
        d["best"] = self.best.candidate_id if self.choices else None
        return d

    def to_json(self, **kwargs: Any) -> str:
        """JSON text of :meth:`to_dict` (keyword arguments go to :func:`json.dumps`)."""
        kwargs.setdefault("indent", 2)
        return json.dumps(self.to_dict(), **kwargs)

    def to_pandas(self) -> pd.DataFrame:
        """The choices as a ``pandas.DataFrame``, one row per choice (needs pandas)."""
        import pandas as pd

        return pd.DataFrame([asdict(c) for c in self.choices])


@functools.lru_cache(maxsize=4)
def _load_cached(path: str, mtime_ns: int) -> Recommender:
    from graphrec.recommender.estimator import Recommender

    return Recommender.load(path)


def load_artefact(artefact: str | os.PathLike[str] | None = None) -> tuple[Recommender, Path]:
    """Load (and cache) a trained recommender.

    Looks at ``artefact``, then ``$GRAPHREC_ARTEFACT``, then the packaged default.

    Raises:
        ArtefactError: None is found, or it is invalid.
    """
    if artefact is None:
        env = os.environ.get(ARTEFACT_ENV)
        artefact = env if env else _PACKAGED
    p = Path(artefact)
    meta = p / "meta.json"
    if not meta.is_file():
        raise ArtefactError(
            p,
            "no trained recommender here (meta.json missing); train one with "
            "'graphrec train --data STORE.sqlite --out DIR' and pass it with --artefact DIR "
            f"or ${ARTEFACT_ENV}",
        )
    return _load_cached(str(p.resolve()), meta.stat().st_mtime_ns), p


@functools.lru_cache(maxsize=1)
def _detected() -> DeviceProfile:
    from graphrec.device import DeviceProfile

    return DeviceProfile.detect()


def _device(device_profile: Any) -> DeviceProfile:
    from graphrec.device import DeviceProfile

    if isinstance(device_profile, DeviceProfile):
        return device_profile
    if device_profile is None or device_profile == "auto":
        return _detected()
    return DeviceProfile.load(device_profile)


def recommend(
    onnx_path: str | os.PathLike[str],
    device_profile: DeviceProfile | str | os.PathLike[str] = "auto",
    *,
    candidates: Sequence[str] | None = None,
    top_k: int | None = None,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    batch_size: int = 1,
    dim_values: Mapping[str, int] | None = None,
    artefact: str | os.PathLike[str] | None = None,
    precision: str | Sequence[str] | None = None,
    tolerance: float | None = None,
    check_support: bool = True,
    probe: bool = False,
) -> Recommendation:
    """Rank the deployment choices for an ONNX model on a device.

    Dynamic input dimensions are resolved by the same rule as ``graphrec bench``
    (override with ``input_shapes`` / ``batch_size`` / ``dim_values``), so a
    recommendation can be checked against a measurement of the same candidate ids.

    Precision is the user's choice: by default only exact (fp32) choices are ranked.
    Lossy ones (bf16, fp16, int8) are listed after them with what they would gain and
    the probability that their outputs stay within the tolerance (the measured error
    distribution of that choice on the training models,
    :mod:`graphrec.recommender.precision`); ``precision`` or ``tolerance`` opt in.

    Choices that cannot run the model are listed last with the reason: an adapter rule,
    or an operator whose single-operator probe failed on that runtime version
    (:mod:`graphrec.runtimes.support`).

    Args:
        onnx_path: The model.
        device_profile: ``"auto"`` (this machine), a :class:`DeviceProfile`, or the path
            of a saved profile JSON.
        candidates: Keep only candidates matching these ids or shell patterns
            (``"onnxruntime/*"``, or a bare runtime name).
        top_k: Return only the best ``top_k`` choices.
        input_shapes: Explicit input shapes by input name.
        batch_size: Size of dynamic batch dimensions.
        dim_values: Sizes of named symbolic dimensions.
        artefact: Trained recommender folder (default: ``$GRAPHREC_ARTEFACT``, then the
            packaged one).
        precision: Precisions to rank, e.g. ``"fp32,bf16"`` or ``["fp32", "int8"]``
            (default fp32 only; ``"all"`` for every one).
        tolerance: The relative L2 output error the user accepts. Given alone, every
            precision is ranked and a lossy choice's chance to run counts only its
            chance to stay within ``tolerance``; with ``precision``, it sets the
            tolerance of the probabilities shown (default: the harness's own per
            precision, :func:`graphrec.bench.protocol.tolerance_for`).
        check_support: Apply the adapters' rules and the operator support tables.
        probe: First probe, on this machine's runtimes, the operators of the model that
            no support table knows (a few seconds per new operator; the results are
            kept in the user cache, :func:`graphrec.runtimes.support.user_dir`).

    Returns:
        The :class:`Recommendation`.

    Raises:
        ModelLoadError: The model cannot be read (the subclass says why).
        DeviceProfileError: The device profile is invalid.
        ArtefactError: No usable trained recommender.
        CandidateSpecError: ``candidates`` matches none of the artefact's candidates.
    """
    from graphrec.recommender.features import device_vector, model_inputs
    from graphrec.runtimes.base import Candidate

    rec, art_path = load_artefact(artefact)
    dev = _device(device_profile)
    # What graphrec bench would measure (read once: the shapes, and the rules' input).
    spec = _bench_spec(onnx_path, input_shapes, batch_size, dim_values)
    if input_shapes is None and dim_values is None and spec is not None:
        # Open sizes inferred from the graph (graphrec.runtimes.input_infer) where it
        # tells them.
        input_shapes = {
            n: list(s) for n, s in zip(spec.input_names, spec.input_shapes, strict=True)
        }
    mi = model_inputs(
        onnx_path, input_shapes=input_shapes, batch_size=batch_size, dim_values=dim_values
    )
    dv = device_vector(dev)
    ids = rec.candidates
    keep = np.arange(len(ids))
    if candidates:
        parsed = [Candidate.parse(c) for c in ids]
        keep = np.array(
            [i for i, c in enumerate(parsed) if any(c.matches(p) for p in candidates)],
            dtype=np.int64,
        )
        if len(keep) == 0:
            raise CandidateSpecError(
                f"no candidate matches {list(candidates)}; the recommender knows: {ids}"
            )
    # Runtimes that convert from the PyTorch module cannot run a bare ONNX file: they take
    # no part in the ranking's draws (else they would be "the fastest" in some draws and
    # inflate every other choice's expected loss). Nor do choices a rule or an operator
    # blocks, nor lossy choices the user did not opt in to.
    torch_blocker = _torch_source_blocker(onnx_path)
    has_source = torch_blocker is None
    kept_ids = [ids[int(i)] for i in keep]
    allowed = _allowed_precisions(precision, tolerance)
    if probe and check_support:
        from graphrec.runtimes.support import probe_models

        probe_models([onnx_path])
    support = _support_blockers(onnx_path, kept_ids, mi.input_shapes, spec) if check_support else {}
    lossy = [Candidate.parse(c).precision not in allowed for c in kept_ids]
    blocked = [
        (not has_source and _needs_torch_source(Candidate.parse(c).runtime))
        or support.get(c) is not None
        or lossy[k]
        for k, c in enumerate(kept_ids)
    ]
    # A lossy choice the user opted in to by tolerance runs correctly only when its
    # outputs stay within it.
    errors = _error_model(str(art_path))
    scale = None
    if tolerance is not None and errors is not None:
        scale = [
            1.0
            if lossy[k] or Candidate.parse(c).precision == "fp32"
            else (errors.p_within(c, tolerance) or 1.0)
            for k, c in enumerate(kept_ids)
        ]
    # The one scoring path: the evaluation ranks held-out samples through the same call.
    # A calibrated profile (graphrec calibrate): the artefact predicts for the reference
    # training device and the device's fitted correction is added.
    dv_pred, calibrated, cal_note = _calibrated_device(dev, ids, dv)
    pred, proba = rec.predict_arrays([mi.hetero], mi.graph_features[None, :], dv_pred[None, :])
    if calibrated:
        from graphrec.device.calibrate import apply_calibration

        pred = apply_calibration(dev.calibration or {}, ids, pred)
    ranked_all = rec.rank_predictions(
        pred, proba, keep=keep, blocked=blocked, deployable_scale=scale
    )
    ranked = ranked_all[0]
    cold = np.exp(np.clip(pred.log_cold_start_ms[0, keep], -30.0, 30.0))
    choices = []
    for r, j in enumerate(ranked.order, start=1):
        el = float(ranked.expected_loss[j])
        choices.append(
            Choice(
                rank=r,
                candidate_id=ids[int(keep[j])],
                latency_ms=float(ranked.latency_ms[j]),
                latency_low_ms=float(ranked.latency_low_ms[j]),
                latency_high_ms=float(ranked.latency_high_ms[j]),
                p_fastest=float(ranked.p_fastest[j]),
                expected_loss=None if math.isnan(el) else el,
                p_deployable=float(ranked.p_deployable[j]),
                deployable=bool(ranked.deployable[j]),
                cold_start_ms=float(cold[j]),
            )
        )
    choices = _mark_torch_source(choices, torch_blocker)
    choices = _mark_precision_and_support(choices, support, allowed, tolerance, errors)
    # The device's place among the training devices (graphrec.device.distance): it
    # replaces the estimator's device warning with a statement, and widens the intervals
    # and flattens P(fastest) of uncalibrated predictions on devices that are not
    # training devices (over all choices, before top_k).
    from graphrec.device.distance import assess_device, widen_choices

    fit = assess_device(dev, getattr(rec, "info_", {}) or {}, calibrated=calibrated)
    choices = widen_choices(choices, fit)
    if top_k is not None:
        choices = choices[: max(int(top_k), 1)]
    reasons = rec.distance_warnings(mi.graph_features, dv_pred)
    if fit.status in ("training", "calibrated"):
        reasons = [w for w in reasons if not w.startswith("the device differs from every")]
    elif fit.statement:
        reasons = [w for w in reasons if not w.startswith("the device differs from every")]
        reasons.append(fit.statement)
    if cal_note:
        reasons.append(cal_note)
    for w in reasons:
        warnings.warn(f"{onnx_path}: {w}", OutOfDistributionWarning, stacklevel=2)
    return Recommendation(
        model_path=str(onnx_path),
        device_id=dev.device_id,
        device_name=dev.name,
        input_shapes=mi.input_shapes,
        choices=choices,
        warnings=reasons,
        artefact=str(art_path),
        device_status=fit.status,
        device_distance=fit.distance,
        extrapolated=fit.extrapolated,
        statement=fit.statement,
    )


def _calibrated_device(
    dev: DeviceProfile, candidates: Sequence[str], dv: np.ndarray
) -> tuple[np.ndarray, bool, str | None]:
    """The device vector to predict for, whether the profile's calibration applies, and
    a note when it has one that does not fit this artefact."""
    cal = getattr(dev, "calibration", None)
    if not cal:
        return dv, False, None
    from graphrec.device.calibrate import calibration_matches, reference_device_vector

    if not calibration_matches(cal, candidates):
        return (
            dv,
            False,
            "the profile's calibration was fitted for another artefact's candidates and is "
            "not used; run graphrec calibrate again",
        )
    ref = reference_device_vector(cal)
    if ref is None or ref.shape != dv.shape:
        return dv, True, None
    return ref, True, None


def _bench_spec(
    onnx_path: str | os.PathLike[str],
    input_shapes: Mapping[str, Sequence[int]] | None,
    batch_size: int,
    dim_values: Mapping[str, int] | None,
) -> Any:
    from graphrec.runtimes.inputs import model_spec

    try:
        return model_spec(
            Path(onnx_path),
            overrides={k: list(v) for k, v in input_shapes.items()} if input_shapes else None,
            dim_values=dim_values,
            batch_size=batch_size,
        )
    except GraphRecError:
        return None  # model_inputs reports what is wrong with the file


@functools.lru_cache(maxsize=64)
def _needs_torch_source(runtime: str) -> bool:
    from graphrec.runtimes.registry import get_adapter

    try:
        return bool(get_adapter(runtime).needs_torch_source)
    except GraphRecError:
        return False


def _torch_source_blocker(onnx_path: str | os.PathLike[str]) -> str | None:
    # a .torch.json sidecar, or an ONNX file graphrec's ONNX -> torch converter takes;
    # a .tflite file runs on LiteRT as it is (tflite_blockers refuses the others)
    from graphrec.runtimes.convert import torch_route_blocker
    from graphrec.runtimes.tflite_models import is_tflite_file

    if is_tflite_file(onnx_path):
        return None
    return torch_route_blocker(Path(onnx_path))


def _mark_torch_source(choices: list[Choice], blocker: str | None) -> list[Choice]:
    """Choices whose runtime converts from the PyTorch module cannot run a model that has
    no torch route (``blocker`` says why: no ``.torch.json`` sidecar and an operator
    graphrec's ONNX -> torch converter has no rule for): mark them and move them last."""
    if blocker is None:
        return choices
    runnable, blocked = [], []
    for c in choices:
        if _needs_torch_source(c.runtime):
            c.deployable = False
            c.expected_loss = None
            c.note = blocker
            blocked.append(c)
        else:
            runnable.append(c)
    out = runnable + blocked
    for r, c in enumerate(out, start=1):
        c.rank = r
    return out


def _allowed_precisions(
    precision: str | Sequence[str] | None, tolerance: float | None
) -> frozenset[str]:
    from graphrec.recommender.precision import EXACT_PRECISIONS
    from graphrec.runtimes.base import PRECISIONS

    if precision is None:
        return frozenset(PRECISIONS) if tolerance is not None else frozenset(EXACT_PRECISIONS)
    items = precision.split(",") if isinstance(precision, str) else list(precision)
    names = {p.strip().lower() for p in items if p.strip()}
    if "all" in names:
        return frozenset(PRECISIONS)
    unknown = sorted(names - set(PRECISIONS))
    if unknown or not names:
        raise CandidateSpecError(
            f"unknown precision {unknown or list(items)}; choose from {list(PRECISIONS)} or 'all'"
        )
    return frozenset(names)


@functools.lru_cache(maxsize=8)
def _error_model(art_path: str) -> Any:
    from graphrec.recommender.precision import ErrorModel

    return ErrorModel.load(art_path)


def _support_tables() -> Any:
    """The support tables, read again only when a table file changed.

    Parsing them took most of a warm ``recommend`` call (5 JSON files, ~40 ms of CPU);
    the key is every table file's path, size and modification time, so a probe that
    writes a new table is seen by the next call.
    """
    from graphrec.runtimes.support import PACKAGED_DIR, user_dir

    key: list[tuple[str, int, int]] = []
    for folder in (PACKAGED_DIR, user_dir()):
        if folder.is_dir():
            for f in sorted(folder.glob("*.json")):
                try:
                    st = f.stat()
                except OSError:
                    continue
                key.append((str(f), st.st_size, st.st_mtime_ns))
    return _support_tables_for(tuple(key))


@functools.lru_cache(maxsize=2)
def _support_tables_for(key: tuple[tuple[str, int, int], ...]) -> Any:
    from graphrec.runtimes.support import load_tables

    return load_tables()


def _support_blockers(
    onnx_path: str | os.PathLike[str],
    ids: Sequence[str],
    shapes: Mapping[str, Sequence[int]],
    spec: Any = None,
) -> dict[str, str]:
    """Reason per candidate that a rule or an operator probe blocks (best effort)."""
    from graphrec.runtimes.inputs import model_spec
    from graphrec.runtimes.support import blockers
    from graphrec.runtimes.tflite_models import tflite_blockers

    tflite = tflite_blockers(onnx_path, ids)  # None unless a .tflite file
    if tflite is not None:
        return tflite

    try:
        if spec is None:
            spec = model_spec(Path(onnx_path), overrides={k: list(v) for k, v in shapes.items()})
        found = blockers(onnx_path, ids, spec=spec, tables=_support_tables())
    except GraphRecError:
        return {}
    return {c: b.reason for c, b in found.items() if b is not None}


def _mark_precision_and_support(
    choices: list[Choice],
    support: Mapping[str, str],
    allowed: frozenset[str],
    tolerance: float | None,
    errors: Any,
) -> list[Choice]:
    """Say why blocked choices cannot run, and what lossy choices would gain and risk.

    Order: ranked choices, then lossy choices the user did not opt in to, then choices
    that cannot run.
    """
    from graphrec.bench.protocol import tolerance_for
    from graphrec.runtimes.base import Candidate

    ranked = [c for c in choices if c.note is None and c.candidate_id not in support]
    runnable = [c for c in ranked if Candidate.parse(c.candidate_id).precision in allowed]
    pick = next((c for c in runnable if c.deployable), runnable[0] if runnable else None)
    lossy: list[Choice] = []
    for c in ranked:
        prec = Candidate.parse(c.candidate_id).precision
        tol = tolerance if tolerance is not None else tolerance_for(prec)[1]
        p_in = errors.p_within(c.candidate_id, tol) if errors is not None else None
        if prec != "fp32":
            c.p_within_tolerance, c.tolerance = p_in, tol
        if prec in allowed:
            continue
        speed = (
            f"{pick.latency_ms / c.latency_ms:.2g}x the pick's speed"
            if pick is not None and c.latency_ms > 0
            else "speed not compared"
        )
        risk = f"P(error <= {tol:.2g}) {p_in:.2f}" if p_in is not None else "error never measured"
        c.deployable = False
        c.expected_loss = None
        c.note = f"lossy {prec}, opt-in: {speed}, {risk}"
        lossy.append(c)
    blocked = []
    for c in choices:
        if c.candidate_id in support and c.note is None:
            c.deployable = False
            c.expected_loss = None
            c.p_deployable = 0.0
            c.note = support[c.candidate_id]
        if c.note is not None and c not in lossy:
            blocked.append(c)
    first = [c for c in choices if c.note is None]
    out = first + lossy + blocked
    for r, c in enumerate(out, start=1):
        c.rank = r
    return out


def verify(
    rec: Recommendation,
    top: int = 3,
    *,
    store: str | os.PathLike[str] | None = None,
    config: Any = None,
    db: str | os.PathLike[str] | None = None,
) -> Recommendation:
    """Measure the ``top`` recommended choices on this machine with the real harness.

    Fills :attr:`Choice.measured_ms` / :attr:`Choice.measured_status` of those choices
    (in place) and returns ``rec``. The model is measured with the recommendation's own
    input shapes, so predictions and measurements are for the same inputs.

    Args:
        rec: A recommendation for this machine (``device_profile="auto"``).
        top: How many choices, best first.
        store: Results store to keep the rows in (default: a temporary one).
        config: :class:`graphrec.bench.protocol.MeasureConfig` (default settings).
        db: Former name of ``store`` (deprecated).

    Raises:
        DeviceProfileError: ``rec`` is for another device: it cannot be measured here.
    """
    import re
    import tempfile
    import warnings

    from graphrec.bench.harness import run_campaign
    from graphrec.bench.store import ResultStore
    from graphrec.errors import DeviceProfileError

    if db is not None:
        warnings.warn(
            "verify(db=...) is deprecated; use verify(store=...)", DeprecationWarning, stacklevel=2
        )
        store = store if store is not None else db

    here = _detected()
    if rec.device_id != here.device_id:
        raise DeviceProfileError(
            rec.device_id,
            f"the recommendation is for this device, but this machine is {here.device_id}: "
            "verify measures on this machine only",
        )
    chosen = rec.choices[: max(int(top), 0)]
    if not chosen:
        return rec
    ids = [c.candidate_id for c in chosen]
    threads = sorted({int(m.group(1)) for i in ids if (m := re.search(r"threads=(\d+)", i))} or {1})
    with tempfile.TemporaryDirectory(prefix="graphrec-verify-") as tmp:
        path = Path(store) if store is not None else Path(tmp) / "verify.sqlite"
        with ResultStore(path) as results:
            rows = run_campaign(
                [rec.model_path],
                store=results,
                device=here,
                patterns=ids,
                threads=threads,
                config=config,
                resume=False,
                input_shapes=rec.input_shapes,
            )
    by_id = {str(r.get("candidate_id")): r for r in rows}
    for c in chosen:
        row = by_id.get(c.candidate_id)
        if row is None:
            c.measured_status = "unavailable"
            continue
        c.measured_status = str(row.get("status"))
        p50 = row.get("p50_ms")
        c.measured_ms = float(p50) if c.measured_status == "ok" and p50 is not None else None
    return rec


def select(
    query: str,
    device: DeviceProfile | str | os.PathLike[str] = "auto",
    *,
    top_k: int = 5,
    max_latency_ms: float | None = None,
    max_size_mb: float | None = None,
    tasks: Sequence[str] | None = None,
) -> Selection:
    """Propose catalogue models for a job described in words, ranked by fit and cost.

    A thin wrapper of :func:`graphrec.selection.select` (the catalogue and text models
    stay loaded for the next call in this process).

    Args:
        query: What the model should do, e.g. ``"count people in a shop camera feed"``.
        device: ``"auto"`` (this machine), a :class:`DeviceProfile`, or a profile's path.
        top_k: How many models to return.
        max_latency_ms: Keep only models predicted to run within this on ``device``.
        max_size_mb: Keep only models whose file is at most this large.
        tasks: Keep only models of these tasks.

    Returns:
        The :class:`~graphrec.selection.select.Selection` (``to_pandas()``, ``to_json()``).

    Raises:
        QueryError: Empty query, or a constraint that is not a positive number.
        UnknownTaskError: A task outside the vocabulary.
    """
    from graphrec.selection.select import select as _select

    return _select(
        query,
        device,
        top_k=top_k,
        max_latency_ms=max_latency_ms,
        max_size_mb=max_size_mb,
        tasks=tasks,
    )
