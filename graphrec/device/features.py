"""The fixed-order numeric description of a device that the learned models read.

Example:
    >>> from graphrec.device import DeviceProfile
    >>> from graphrec.device.features import feature_names, profile_features
    >>> list(profile_features(DeviceProfile(name="x"))) == list(feature_names())
    True
"""

from __future__ import annotations

import contextlib
import math
from typing import TYPE_CHECKING

from graphrec.device.profile import ARCH_FEATURES, KNOWN_ISA_FLAGS

if TYPE_CHECKING:
    from graphrec.device.profile import DeviceProfile

__all__ = [
    "extended_feature_names",
    "extended_profile_features",
    "feature_names",
    "profile_features",
]


def feature_names() -> tuple[str, ...]:
    """Names of :meth:`to_features`, in order (stable across releases of one schema)."""
    names = [f"arch_{a}" for a in ARCH_FEATURES]
    names += [
        "physical_cores",
        "logical_cores",
        "threads_available",
        "freq_max_ghz",
        "log2_l1d_kb",
        "log2_l2_kb",
        "log2_l3_kb",
        "memory_gb",
    ]
    names += [f"isa_{f}" for f in KNOWN_ISA_FLAGS]
    names += ["gpu_count", "gpu_memory_gb", "gpu_compute_capability"]
    return tuple(names)


def profile_features(profile: DeviceProfile) -> dict[str, float]:
    """Return a fixed-order numeric description for learned models.

    Unknown values are 0. Cache sizes are ``log2(1 + KiB)``; ISA flags are 0/1;
    GPU figures describe the largest GPU.
    """
    feats: dict[str, float] = {f"arch_{a}": float(profile.arch == a) for a in ARCH_FEATURES}
    feats["physical_cores"] = float(profile.physical_cores)
    feats["logical_cores"] = float(profile.logical_cores)
    feats["threads_available"] = float(profile.threads_available)
    feats["freq_max_ghz"] = (profile.freq_max_mhz or 0.0) / 1000.0
    feats["log2_l1d_kb"] = math.log2(1 + (profile.l1d_cache_kb or 0))
    feats["log2_l2_kb"] = math.log2(1 + (profile.l2_cache_kb or 0))
    feats["log2_l3_kb"] = math.log2(1 + (profile.l3_cache_kb or 0))
    feats["memory_gb"] = profile.memory_total_mb / 1024.0
    flags = set(profile.isa_flags)
    for f in KNOWN_ISA_FLAGS:
        feats[f"isa_{f}"] = float(f in flags)
    best = max(profile.gpus, key=lambda g: g.memory_mb, default=None)
    feats["gpu_count"] = float(len(profile.gpus))
    feats["gpu_memory_gb"] = (best.memory_mb / 1024.0) if best else 0.0
    cc = 0.0
    if best is not None and best.compute_capability:
        with contextlib.suppress(ValueError):
            cc = float(best.compute_capability)
    feats["gpu_compute_capability"] = cc
    return feats


def extended_feature_names() -> tuple[str, ...]:
    """:func:`feature_names` followed by the micro-benchmark features
    (:func:`graphrec.device.microbench.microbench_feature_names`).

    The shipped artefact reads :func:`feature_names` only (its ``meta.json`` lists the
    names it was trained on); a recommender retrained on devices with measured
    micro-benchmarks can read these instead.
    """
    from graphrec.device.microbench import microbench_feature_names

    return (*feature_names(), *microbench_feature_names())


def extended_profile_features(profile: DeviceProfile) -> dict[str, float]:
    """:func:`profile_features` plus the profile's micro-benchmark features (0 and
    ``mb_measured = 0`` when the profile has none), in :func:`extended_feature_names` order."""
    from graphrec.device.microbench import microbench_features

    return {**profile_features(profile), **microbench_features(profile.microbench)}
