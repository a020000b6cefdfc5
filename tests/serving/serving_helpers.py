"""Helpers of the serving tests: hand-built instances with fixed latencies, so that every
outcome can be worked out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from graphrec.serving.latency import LatencyTable
from graphrec.serving.state import Instance
from graphrec.serving.workload import Workload, parse_workload


def tiny_workload(
    n_servers: int = 2,
    accuracies: Sequence[float] = (0.8, 0.9),
    events: list[dict[str, Any]] | None = None,
) -> Workload:
    """One app whose variants have the given accuracies, on ``n_servers`` servers."""
    spec = {
        "name": "tiny",
        "apps": {
            "app": {
                "deadline_ms": [1, 100],
                "default_variant": "v1" if len(accuracies) > 1 else "v0",
                "variants": [
                    {"name": f"v{k}", "model": f"model-{k}", "accuracy": a}
                    for k, a in enumerate(accuracies)
                ],
            }
        },
        "servers": [
            {"name": f"s{k}", "candidate": "onnxruntime/cpu/fp32/opt=all/threads=1"}
            for k in range(n_servers)
        ],
        "events": events or [],
    }
    return parse_workload(spec)


def tiny_instance(
    workload: Workload,
    latency_ms: np.ndarray,
    arrival_ms: Sequence[float],
    deadline_ms: Sequence[float],
    time_sensitivity: float = 1.0,
    accuracy_sensitivity: float = 1.0,
) -> Instance:
    """An instance whose expected latency (variant, server) is ``latency_ms`` exactly and
    whose every run takes exactly that long."""
    lat = np.asarray(latency_ms, dtype=float)  # (variants, servers)
    p50 = lat[None, :, :]
    table = LatencyTable(
        p10_ms=p50.copy(),
        p50_ms=p50.copy(),
        p90_ms=p50.copy(),
        mu=np.log(p50),
        sigma=np.zeros_like(p50),
        hosted=np.ones(p50.shape, dtype=bool),
        source="test",
    )
    n = len(arrival_ms)
    return Instance(
        workload=workload,
        table=table,
        arrival_ms=np.asarray(arrival_ms, dtype=float),
        app=np.zeros(n, dtype=int),
        deadline_ms=np.asarray(deadline_ms, dtype=float),
        time_sensitivity=np.full(n, time_sensitivity),
        accuracy_sensitivity=np.full(n, accuracy_sensitivity),
        latency_ms=np.broadcast_to(lat, (n, *lat.shape)).copy(),
        seed=0,
    )
