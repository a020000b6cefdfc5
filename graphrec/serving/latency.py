"""Per-(variant, server) latency distributions from graphrec's measured dataset.

Each server of a workload names a deployment candidate (``onnxruntime/cpu/fp32/opt=all/
threads=1``); each variant names a zoo model. The shipped dataset
(``graphrec/data/measurements``) holds, for each (model, candidate), the warm p10, p50
and p90 latency of real runs; over repeated rounds their median is taken. The
distribution used by the simulator is the log-normal with that median and that
p10-p90 spread (``sigma = (ln p90 - ln p10) / (2 * 1.2816)``), multiplied by the
server's ``slowdown``. Nothing is invented: a pair without an ``ok`` measurement is an
error that says so.

Example:
    >>> from graphrec.serving.latency import latency_table
    >>> table = latency_table(workload)  # doctest: +SKIP
    >>> table.p50_ms[0, 1, 2]  # app 0, variant 1, server 2  # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from graphrec.serving.workload import Workload, WorkloadError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["LatencyTable", "latency_table", "measured_latency"]

_Z90 = 1.2815515655446004  # standard normal quantile of 0.9


@dataclass(frozen=True)
class LatencyTable:
    """Latency distributions of every (app, variant, server), NaN where not hosted.

    Attributes:
        p10_ms, p50_ms, p90_ms: Arrays of shape (apps, max variants, servers), with the
            server's slowdown applied.
        mu, sigma: Log-normal parameters of the same shape.
        hosted: Boolean array of the same shape: the server hosts that variant.
        source: Where the figures came from, in words.
    """

    p10_ms: np.ndarray
    p50_ms: np.ndarray
    p90_ms: np.ndarray
    mu: np.ndarray
    sigma: np.ndarray
    hosted: np.ndarray
    source: str

    def mean_ms(self) -> np.ndarray:
        """Mean latency of each log-normal (NaN where not hosted)."""
        import numpy as np

        return np.exp(self.mu + 0.5 * self.sigma**2)


def measured_latency(
    measurements: pd.DataFrame, model: str, candidate: str
) -> tuple[float, float, float] | None:
    """Median over rounds of the (p10, p50, p90) ms of ``model`` on ``candidate``, if measured."""
    rows = measurements[
        (measurements["model_id"] == model)
        & (measurements["candidate_id"] == candidate)
        & (measurements["status"] == "ok")
    ]
    if rows.empty:
        return None
    return (
        float(rows["p10_ms"].median()),
        float(rows["p50_ms"].median()),
        float(rows["p90_ms"].median()),
    )


def latency_table(workload: Workload, dataset: str | Path | None = None) -> LatencyTable:
    """Look up every hosted (variant, server) pair of ``workload`` in the measured dataset.

    Args:
        workload: The workload.
        dataset: A dataset folder (default: the one shipped with graphrec).

    Raises:
        WorkloadError: A hosted pair has no ``ok`` measurement, or an application's
            longest deadline is shorter than its fastest variant on its fastest server
            (no task of it could ever succeed).
    """
    import numpy as np

    from graphrec.dataset import SHIPPED_DATASET, load_dataset

    folder = Path(dataset) if dataset is not None else SHIPPED_DATASET
    measurements, _models, _meta = load_dataset(folder)
    n_apps = len(workload.apps)
    n_var = max(len(a.variants) for a in workload.apps)
    n_srv = len(workload.servers)
    shape = (n_apps, n_var, n_srv)
    p10, p50, p90 = (np.full(shape, np.nan) for _ in range(3))
    hosted = np.zeros(shape, dtype=bool)
    candidates = set(measurements["candidate_id"].unique())
    for s, server in enumerate(workload.servers):
        if server.candidate not in candidates:
            raise WorkloadError(
                workload.source,
                f"server {server.name!r}: candidate {server.candidate!r} was never measured; "
                f"measured candidates: {sorted(candidates)}",
            )
        for a, app in enumerate(workload.apps):
            for v, variant in enumerate(app.variants):
                if (app.name, variant.name) not in server.hosts:
                    continue
                found = measured_latency(measurements, variant.model, server.candidate)
                if found is None:
                    raise WorkloadError(
                        workload.source,
                        f"server {server.name!r} hosts {app.name}/{variant.name}, but model "
                        f"{variant.model!r} has no successful measurement on "
                        f"{server.candidate!r} in {folder}",
                    )
                p10[a, v, s], p50[a, v, s], p90[a, v, s] = (x * server.slowdown for x in found)
                hosted[a, v, s] = True
    with np.errstate(invalid="ignore", divide="ignore"):
        mu = np.log(p50)
        sigma = np.maximum((np.log(p90) - np.log(p10)) / (2 * _Z90), 0.0)
    for a, app in enumerate(workload.apps):
        if app.share <= 0:
            continue
        fastest = float(np.nanmin(p50[a]))
        if fastest > app.deadline_ms[1]:
            raise WorkloadError(
                workload.source,
                f"app {app.name!r}: impossible deadlines: its longest deadline is "
                f"{app.deadline_ms[1]:g} ms, but its fastest variant on the fastest server "
                f"takes {fastest:.3g} ms (median measured latency)",
            )
    return LatencyTable(
        p10_ms=p10,
        p50_ms=p50,
        p90_ms=p90,
        mu=mu,
        sigma=np.where(hosted, sigma, np.nan),
        hosted=hosted,
        source=f"measured dataset {folder} (median over rounds of warm p10/p50/p90)",
    )


def lognormal_quantile(mu: float, sigma: float, q: float) -> float:
    """The ``q`` quantile of a log-normal (used for safety margins)."""
    from statistics import NormalDist

    return math.exp(mu + sigma * NormalDist().inv_cdf(q))
