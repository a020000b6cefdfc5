"""How far a device is from the devices a recommender was trained on, and what to say.

A recommender artefact records the device feature vectors of its training devices
(``meta.json`` ``info.ood.devices``, in :func:`graphrec.device.features.feature_names`
order) and their ids (``info.device_ids``). :func:`device_distance` compares two such
vectors group by group:

* **architecture**: 1 when the architectures differ;
* **instruction sets**: the Jaccard distance of the ISA flag sets (0 same, 1 disjoint);
* **GPU**: 1 when one has a GPU and the other not;
* **size**: a quarter of the summed ``|log2|`` ratios of threads, memory (halved),
  caches (mean, halved) and ``|ln|`` ratio of the maximum frequency.

The sum is 0 for identical hardware. The same host under an AVX2 cap is 0.5 from the
host (half its ISA flags gone), an Arm phone about 2 from an x86 server.

:func:`assess_device` turns the distance into a :class:`DeviceFit`: ``training`` (the
profile is one of the training devices), ``calibrated`` (``graphrec calibrate`` wrote a
calibration into the profile), ``near`` (distance at most :data:`FAR_DISTANCE`) or
``extrapolated``. An extrapolated fit carries the statement shown in the table, the JSON
and the Python object. Uncalibrated fits on devices that are not training devices get
wider latency intervals (:meth:`DeviceFit.interval_factor`), so they never look as
confident as a calibrated or measured device.

Example:
    >>> from graphrec.device import DeviceProfile
    >>> from graphrec.device.distance import device_distance
    >>> a = DeviceProfile(name="a", arch="x86_64", threads_available=2, isa_flags=["avx2"])
    >>> b = DeviceProfile(name="b", arch="aarch64", threads_available=2, isa_flags=["neon"])
    >>> round(device_distance(a.to_features(), a.to_features()), 3)
    0.0
    >>> device_distance(a.to_features(), b.to_features()) > 1.5
    True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from graphrec.device.profile import ARCH_FEATURES, KNOWN_ISA_FLAGS

if TYPE_CHECKING:
    from graphrec.device.profile import DeviceProfile

__all__ = [
    "FAR_DISTANCE",
    "DeviceFit",
    "assess_device",
    "device_distance",
    "widen_choices",
    "widen_interval",
]

#: Beyond this distance from every training device an uncalibrated prediction is
#: called extrapolated.
FAR_DISTANCE = 0.3

_CALIBRATE_HINT = "run `graphrec calibrate` on the device, then `recommend --device <profile>`"


def _log2_ratio(a: float, b: float) -> float:
    if a <= 0 or b <= 0:
        return 0.0 if a == b else 1.0  # one unknown: a fixed, moderate penalty
    return abs(math.log2(a / b))


def device_distance(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    """Distance between two device feature dicts (see the module docstring).

    Args:
        a: Features by name (:meth:`DeviceProfile.to_features`); missing names count 0.
        b: The same for the other device.
    """

    def g(m: Mapping[str, float], k: str) -> float:
        return float(m.get(k, 0.0))

    arch = float(any(g(a, f"arch_{x}") != g(b, f"arch_{x}") for x in ARCH_FEATURES))
    fa = {f for f in KNOWN_ISA_FLAGS if g(a, f"isa_{f}") > 0.5}
    fb = {f for f in KNOWN_ISA_FLAGS if g(b, f"isa_{f}") > 0.5}
    isa = 1.0 - len(fa & fb) / len(fa | fb) if (fa | fb) else 0.0
    gpu = float((g(a, "gpu_count") > 0) != (g(b, "gpu_count") > 0))
    # log2(1 + KiB) features: their difference is the log2 ratio (for caches > a few KiB)
    cache = sum(abs(g(a, k) - g(b, k)) for k in ("log2_l1d_kb", "log2_l2_kb", "log2_l3_kb")) / 3
    fa_ghz, fb_ghz = g(a, "freq_max_ghz"), g(b, "freq_max_ghz")
    freq = abs(math.log(fa_ghz / fb_ghz)) if fa_ghz > 0 and fb_ghz > 0 else 0.0
    size = (
        _log2_ratio(g(a, "threads_available"), g(b, "threads_available"))
        + _log2_ratio(g(a, "memory_gb"), g(b, "memory_gb")) / 2
        + cache / 2
        + freq
    )
    return arch + isa + gpu + 0.25 * size


@dataclass
class DeviceFit:
    """Where a device stands relative to a recommender's training devices.

    Attributes:
        status: ``training`` (one of the training devices), ``calibrated`` (its profile
            carries a calibration), ``near`` (uncalibrated, within
            :data:`FAR_DISTANCE` of a training device) or ``extrapolated``.
        distance: Distance to the nearest training device (``None`` when the artefact
            records none).
        nearest: Short description of the nearest training device.
        statement: What the user should know (set for ``extrapolated`` and ``near``).
    """

    status: str
    distance: float | None
    nearest: str
    statement: str | None = None

    @property
    def extrapolated(self) -> bool:
        """Whether the prediction extrapolates to an unknown, uncalibrated device."""
        return self.status == "extrapolated"

    def interval_factor(self) -> float:
        """How much wider (as a ratio) the latency intervals are made.

        1 for training devices and calibrated profiles; for uncalibrated other devices
        ``exp(0.1 + 0.7 * min(distance, 3))``, so at least 1.1 and up to about 9.
        """
        if self.status in ("training", "calibrated"):
            return 1.0
        d = 3.0 if self.distance is None else min(self.distance, 3.0)
        return math.exp(0.1 + 0.7 * d)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (``interval_factor`` and ``extrapolated`` included)."""
        return {
            "status": self.status,
            "distance": self.distance,
            "nearest": self.nearest,
            "extrapolated": self.extrapolated,
            "interval_factor": self.interval_factor(),
            "statement": self.statement,
        }


def _describe(vec: Mapping[str, float]) -> str:
    arch = next((a for a in ARCH_FEATURES if vec.get(f"arch_{a}", 0.0) > 0.5), "unknown arch")
    flags = [f for f in KNOWN_ISA_FLAGS if vec.get(f"isa_{f}", 0.0) > 0.5]
    top = next(
        (f for f in ("amx_tile", "avx512f", "avx2", "sve", "neon") if f in flags), "no SIMD flags"
    )
    gpu = ", GPU" if vec.get("gpu_count", 0.0) > 0 else ""
    return f"{arch}, {int(vec.get('threads_available', 0))} threads, {top}{gpu}"


def assess_device(
    profile: DeviceProfile,
    info: Mapping[str, Any],
    *,
    calibrated: bool | None = None,
) -> DeviceFit:
    """Place ``profile`` relative to the training devices in an artefact's ``info``.

    Args:
        profile: The device the prediction is for.
        info: The artefact's training summary (``Recommender.info_`` / ``meta.json``
            ``info``): ``device_ids`` and ``ood.devices`` (feature vectors).
        calibrated: Whether a calibration is applied (default: the profile has one).

    Returns:
        The fit, with a statement for ``near`` and ``extrapolated`` devices.
    """
    from graphrec.device.features import feature_names

    names = feature_names()
    feats = profile.to_features()
    vectors = [
        dict(zip(names, (float(x) for x in v), strict=False))
        for v in (info.get("ood") or {}).get("devices", [])
    ]
    dists = [device_distance(feats, v) for v in vectors]
    best = min(range(len(dists)), key=dists.__getitem__) if dists else None
    distance = dists[best] if best is not None else None
    nearest = _describe(vectors[best]) if best is not None else "none recorded"
    is_cal = bool(getattr(profile, "calibration", None)) if calibrated is None else calibrated
    if profile.device_id in set(info.get("device_ids") or ()):
        return DeviceFit("training", 0.0 if distance is None else distance, nearest)
    if is_cal:
        return DeviceFit("calibrated", distance, nearest)
    shown = "unknown" if distance is None else f"{distance:.2f}"
    if distance is not None and distance <= FAR_DISTANCE:
        return DeviceFit(
            "near",
            distance,
            nearest,
            f"not a training device (distance {shown} to the nearest: {nearest}); "
            f"intervals widened; for a tighter prediction {_CALIBRATE_HINT}",
        )
    return DeviceFit(
        "extrapolated",
        distance,
        nearest,
        f"extrapolated: the device differs from every device the recommender was trained "
        f"on (distance {shown} > {FAR_DISTANCE}; nearest: {nearest}); latencies and ranking "
        f"are not backed by measurements on a device like it; intervals widened; "
        f"{_CALIBRATE_HINT}",
    )


def widen_interval(
    latency_ms: float, low_ms: float, high_ms: float, factor: float
) -> tuple[float, float]:
    """``(low, high)`` widened ``factor`` times around ``latency_ms`` on a log scale."""
    if factor <= 1.0 or latency_ms <= 0:
        return low_ms, high_ms
    lo = latency_ms / (max(latency_ms / max(low_ms, 1e-12), 1.0) * factor)
    hi = latency_ms * max(high_ms / latency_ms, 1.0) * factor
    return lo, hi


def widen_choices(choices: Sequence[Any], fit: DeviceFit) -> list[Any]:
    """Copies of ``choices`` (:class:`graphrec.api.Choice`, all of a ranking) with
    widened intervals, ``P(fastest)`` flattened towards uniform and, for an extrapolated
    fit, ``extrapolated=True``.

    With ``f = fit.interval_factor()``, ``P(fastest)`` becomes ``(1 - w) p + w / n`` with
    ``w = 1 - 1/f`` over the ``n`` choices that had ``p > 0``; the order is unchanged.
    """
    import dataclasses

    factor = fit.interval_factor()
    w = 1.0 - 1.0 / factor if factor > 1.0 else 0.0
    n = sum(1 for c in choices if c.p_fastest > 0)
    out = []
    for c in choices:
        lo, hi = widen_interval(c.latency_ms, c.latency_low_ms, c.latency_high_ms, factor)
        kw: dict[str, Any] = {"latency_low_ms": lo, "latency_high_ms": hi}
        if w > 0 and n and c.p_fastest > 0:
            kw["p_fastest"] = (1.0 - w) * c.p_fastest + w / n
        if hasattr(c, "extrapolated"):
            kw["extrapolated"] = fit.extrapolated
        out.append(dataclasses.replace(c, **kw))
    return out
