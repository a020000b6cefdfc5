"""A synthetic training set with a known crossover, on real graphs from the kernel.

The graphs, graph features and FLOPs are those the C++ kernel computes for real tiny ONNX
models (MLPs and convnets of many sizes, built with onnx.helper). Only the latencies are
synthetic, from a known rule:

* candidate 0 (``onnxruntime/...``): tiny fixed overhead, steep per-FLOP cost;
* candidate 1 (``openvino/...``): larger overhead, a quarter of the per-FLOP cost;
* candidate 2 (``tract/...``): 1.6x the faster of the two.

So candidate 0 wins below a FLOPs crossover (set at the median model) and candidate 1
above it: no single choice is right for every model, and a learner that reads the
model's size can beat best-on-average by a wide margin.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from rec_models import make_convnet, make_mlp

CANDIDATES = [
    "onnxruntime/cpu/fp32/opt=all/threads=1",
    "openvino/cpu/fp32/hint=latency/threads=1",
    "tract/cpu/fp32/threads=1",
]

#: (family, builder, sizes): six families, each spanning small and large models; an MLP
#: size is (width, depth), a convnet size is its channel count.
_FAMILIES: tuple[tuple[str, str, list[Any]], ...] = (
    ("mlpa", "mlp", [(16, 1), (64, 1), (256, 1), (512, 1), (1024, 1), (2048, 1)]),
    ("mlpb", "mlp", [(32, 2), (96, 2), (256, 2), (512, 2), (768, 2), (1024, 2)]),
    ("mlpc", "mlp", [(24, 3), (80, 3), (192, 3), (384, 3), (640, 3), (1024, 3)]),
    ("conva", "conv", [2, 4, 8, 16, 32, 48]),
    ("convb", "conv", [3, 6, 12, 24, 40, 64]),
    ("convc", "conv", [5, 10, 20, 28, 36, 56]),
)


def crossover_dataset(folder: Path, *, noise: float = 0.03, seed: int = 0):  # type: ignore[no-untyped-def]
    """A :class:`~graphrec.dataset.samples.RecDataset` of 36 models with the rule above."""
    from graphrec.dataset.samples import RecDataset
    from graphrec.device import DeviceProfile
    from graphrec.recommender.features import device_vector, model_inputs

    folder.mkdir(parents=True, exist_ok=True)
    paths, families = [], []
    for fam, kind, sizes in _FAMILIES:
        for j, size in enumerate(sizes):
            p = folder / f"{fam}-{j}.onnx"
            if kind == "mlp":
                make_mlp(p, width=int(size[0]), depth=int(size[1]), seed=j)
            else:
                make_convnet(p, channels=int(size), seed=j)
            paths.append(p)
            families.append(fam)
    mis = [model_inputs(p) for p in paths]
    flops = np.array([m.flops for m in mis])
    f_c = float(np.exp(np.median(np.log(flops))))
    a0, b0 = 0.01, 0.2
    k_b = (b0 - a0) / (3.0 * f_c)
    k_a = 4.0 * k_b  # a0 + k_a f_c == b0 + k_b f_c
    rng = np.random.default_rng(seed)
    lat = np.column_stack([a0 + k_a * flops, b0 + k_b * flops])
    lat = np.column_stack([lat, 1.6 * lat.min(axis=1)])
    lat = lat * np.exp(noise * rng.standard_normal(lat.shape))
    dev = DeviceProfile.detect(probe_gpus=False)
    dv = device_vector(dev)
    n = len(paths)
    return RecDataset(
        candidates=list(CANDIDATES),
        model_sha256=[f"{i:064x}" for i in range(n)],
        model_names=[p.stem for p in paths],
        families=families,
        device_ids=[dev.device_id] * n,
        graph_features=np.vstack([m.graph_features for m in mis]),
        device_features=np.tile(dv, (n, 1)),
        hetero=[m.hetero for m in mis],
        flops=flops,
        log_latency_ms=np.log(lat),
        log_cold_start_ms=np.log(lat * 5.0 + 1.0),
        deployable=np.ones_like(lat),
        measure_wall_s=np.full(n, 1.0),
        device_profiles={dev.device_id: dev.to_dict()},
        model_paths=[str(p) for p in paths],
    ), math.log1p(f_c)
