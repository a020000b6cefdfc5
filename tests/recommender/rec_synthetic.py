"""A synthetic recommender dataset with held-out samples, for the "it learns" tests.

The models are real: small MLPs and convnets written with ``onnx.helper``
(:mod:`rec_models`) and featurised by graphrec's kernel
(:func:`graphrec.recommender.features.model_inputs`), exactly as training data is. Only
the latencies are synthetic: each candidate costs a fixed overhead plus the model's FLOPs
at its own throughput, times a little log-normal noise. The candidates cross over (the
low-overhead one is slow per FLOP), so which is fastest depends on the model. A learner
that reads the graph features can predict a held-out model's latencies far better than
the training mean of each candidate can; one that cannot read them (or learns nothing)
cannot.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from rec_models import make_convnet, make_mlp

from graphrec.dataset.samples import RecDataset

#: (overhead ms, FLOPs per ms) of each synthetic candidate.
CANDIDATES: dict[str, tuple[float, float]] = {
    "lowoverhead/cpu/fp32/threads=1": (0.02, 2e5),
    "balanced/cpu/fp32/threads=1": (0.08, 8e5),
    "highthroughput/cpu/fp32/threads=1": (0.25, 3e6),
}
NOISE_SIGMA = 0.05  # log-latency noise of a "measurement"


def true_log_latency_ms(flops: np.ndarray) -> np.ndarray:
    """The noise-free ``log(latency ms)`` of every candidate, ``[N, C]``."""
    over = np.array([o for o, _ in CANDIDATES.values()])
    speed = np.array([s for _, s in CANDIDATES.values()])
    return np.log(over[None, :] + np.asarray(flops, dtype=np.float64)[:, None] / speed[None, :])


@dataclass
class Split:
    """Training and held-out samples (no model in both)."""

    train: RecDataset
    test: RecDataset


def build_models(folder: Path) -> list[Path]:
    """36 tiny models: MLPs of 6 widths x 4 depths and convnets of 12 channel counts."""
    paths = []
    for w in (16, 32, 64, 128, 256, 512):
        for depth in (1, 2, 3, 4):
            paths.append(make_mlp(folder / f"mlp-w{w}-d{depth}.onnx", w, depth, seed=w + depth))
    for c in (2, 3, 4, 6, 8, 12, 16, 20, 24, 32, 40, 48):
        paths.append(make_convnet(folder / f"conv-c{c}.onnx", channels=c, seed=c))
    return paths


def _family(path: Path) -> str:
    """Six families that each span small and large models: the MLPs by depth, the
    convnets in two interleaved halves of the channel counts."""
    stem = path.stem
    if stem.startswith("mlp"):
        return "mlp" + stem.rsplit("-d", 1)[1]
    c = int(stem.rsplit("-c", 1)[1])
    return "conva" if c in (2, 4, 8, 16, 24, 40) else "convb"


def synthetic_dataset(folder: Path, seed: int = 0) -> RecDataset:
    """Featurise the models of :func:`build_models` and label them with noisy latencies."""
    from graphrec.device import DeviceProfile
    from graphrec.recommender.features import device_vector, model_inputs

    paths = build_models(folder)
    inputs = [model_inputs(p) for p in paths]
    flops = np.array([mi.flops for mi in inputs])
    rng = np.random.default_rng(seed)
    lat = true_log_latency_ms(flops) + rng.normal(0.0, NOISE_SIGMA, (len(paths), len(CANDIDATES)))
    device = DeviceProfile(
        name="synthetic",
        source="spec-sheet",
        arch="x86_64",
        cpu_model="synthetic",
        physical_cores=4,
        logical_cores=8,
        threads_available=8,
        memory_total_mb=8192,
    )
    dev = device_vector(device)
    n = len(paths)
    return RecDataset(
        candidates=list(CANDIDATES),
        model_sha256=[hashlib.sha256(p.read_bytes()).hexdigest() for p in paths],
        model_names=[p.stem for p in paths],
        families=[_family(p) for p in paths],
        device_ids=["synthetic"] * n,
        graph_features=np.vstack([mi.graph_features for mi in inputs]),
        device_features=np.tile(dev, (n, 1)),
        hetero=[mi.hetero for mi in inputs],
        flops=flops,
        log_latency_ms=lat,
        log_cold_start_ms=lat + np.log(5.0),
        deployable=np.ones_like(lat),
        measure_wall_s=np.ones(n),
        device_profiles={"synthetic": device.to_dict()},
        model_paths=[str(p) for p in paths],
    )


def synthetic_split(folder: Path, seed: int = 0) -> Split:
    """:func:`synthetic_dataset` with every third model held out."""
    ds = synthetic_dataset(folder, seed)
    test = np.arange(len(ds)) % 3 == 1
    return Split(train=ds.subset(np.flatnonzero(~test)), test=ds.subset(np.flatnonzero(test)))


def held_out_mse(pred: np.ndarray, split: Split) -> tuple[float, float]:
    """Mean squared log-latency error on the held-out samples: of ``pred`` and of the
    baseline that predicts each candidate's training mean."""
    y = split.test.log_latency_ms
    base = np.nanmean(split.train.log_latency_ms, axis=0)[None, :]
    return float(np.mean((pred - y) ** 2)), float(np.mean((base - y) ** 2))


def true_regret(pred: np.ndarray, split: Split) -> tuple[float, float]:
    """Mean noise-free regret ``lat(pick)/lat(best) - 1`` on the held-out samples: of picking
    the fastest by ``pred``, and of always picking the candidate fastest on average in
    training (the best-on-average baseline)."""
    true = true_log_latency_ms(split.test.flops)
    best = true.min(axis=1)
    pick = np.argmin(pred, axis=1)
    avg = int(np.argmin(np.nanmean(split.train.log_latency_ms, axis=0)))
    rows = np.arange(len(true))
    return (
        float(np.mean(np.exp(true[rows, pick] - best) - 1)),
        float(np.mean(np.exp(true[:, avg] - best) - 1)),
    )


_CACHE: dict[str, RecDataset] = {}


def cached_dataset(tmp_path_factory: pytest.TempPathFactory) -> RecDataset:
    """:func:`synthetic_dataset`, built once per test session (shared by the test modules)."""
    if "ds" not in _CACHE:
        _CACHE["ds"] = synthetic_dataset(tmp_path_factory.mktemp("rec_synthetic"))
    return _CACHE["ds"]


def cached_split(tmp_path_factory: pytest.TempPathFactory) -> Split:
    """:func:`synthetic_split` of :func:`cached_dataset` (every third model held out)."""
    ds = cached_dataset(tmp_path_factory)
    test = np.arange(len(ds)) % 3 == 1
    return Split(train=ds.subset(np.flatnonzero(~test)), test=ds.subset(np.flatnonzero(test)))
