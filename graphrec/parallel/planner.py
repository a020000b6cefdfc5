"""The planner's front door: profile a model, search a strategy, describe the plan.

Example:
    >>> plan = make_plan("zoo:vit:1:tiny", devices=2, batch=16)  # doctest: +SKIP
    >>> plan.to_dict()["strategy"], plan.cost.step_time_ms  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from graphrec.parallel.cluster import Cluster, Network, load_cluster, local_cluster
from graphrec.parallel.cost import Cost, Strategy, evaluate, validate
from graphrec.parallel.profile import (
    ModelProfile,
    PlanInputError,
    load_profile,
    measure_layer_times,
)
from graphrec.parallel.search import KINDS, SearchResult, SearchSpace, search

__all__ = ["Plan", "make_plan", "profile_for_plan"]


@dataclass(frozen=True)
class Plan:
    """A chosen strategy with its prediction.

    Attributes:
        model: What was planned (``.onnx`` path or ``zoo:`` spec), as given.
        profile: The model's layers with times.
        cluster: The devices.
        batch: Global batch.
        optimizer: ``"sgd"`` or ``"adam"``.
        strategy: The strategy.
        cost: Its predicted cost.
        search: How it was found (``None`` when the strategy was given).
        max_layers: The layer limit used when profiling (the emitted run repeats it).
    """

    model: str
    profile: ModelProfile
    cluster: Cluster
    batch: int
    optimizer: str
    strategy: Strategy
    cost: Cost
    search: SearchResult | None
    max_layers: int

    def to_dict(self) -> dict[str, Any]:
        """The plan as JSON-able data (what ``graphrec plan --json`` prints)."""
        st, prof = self.strategy, self.profile
        stages = []
        for s, (a, b) in enumerate(st.stage_layers(prof.num_layers)):
            devs = list(st.stage_devices(s))
            stages.append(
                {
                    "stage": s,
                    "layers": [a, b],
                    "first_layer": prof.layers[a].name,
                    "last_layer": prof.layers[b - 1].name,
                    "devices": devs,
                    "memory_mb": round(self.cost.memory_mb[devs[0]], 3),
                }
            )
        memory = [
            None if d not in self.cost.memory_mb else round(self.cost.memory_mb[d], 3)
            for d in range(self.cluster.size)
        ]
        out: dict[str, Any] = {
            "model": self.model,
            "name": prof.name,
            "strategy": st.kind,
            "pipeline_stages": st.num_stages,
            "dp": st.dp,
            "schedule": st.schedule if st.num_stages > 1 else None,
            "micro_batches": st.micro_batches,
            "batch": self.batch,
            "optimizer": self.optimizer,
            "stages": stages,
            "step_time_ms": round(self.cost.step_time_ms, 4),
            "memory_per_device_mb": memory,
            "breakdown_ms": {
                "compute": round(self.cost.compute_ms, 4),
                "bubble": round(self.cost.bubble_ms, 4),
                "allreduce_exposed": round(self.cost.allreduce_ms, 4),
                "optimizer": round(self.cost.optimizer_ms, 4),
            },
            "time_source": prof.time_source,
            "num_layers": prof.num_layers,
            "max_layers": self.max_layers,
            "devices": [
                {"name": d.name, "speed": d.speed, "memory_mb": d.memory_mb}
                for d in self.cluster.devices
            ],
            "network_source": self.cluster.network.source,
            "shared_speed": self.cluster.shared_speed,
            "stage_starts": list(st.stages),
            "device_order": list(st.devices),
        }
        if self.search is not None:
            out["search"] = {
                "method": self.search.method,
                "evaluations": self.search.evaluations,
                "seconds": round(self.search.seconds, 4),
            }
        return out


def profile_for_plan(
    model: str | os.PathLike[str],
    *,
    max_layers: int = 16,
    times: str = "auto",
    gflops: float = 20.0,
    threads: int = 1,
    batch_sizes: Sequence[int] = (2, 8),
    statistic: str = "min",
) -> ModelProfile:
    """Profile ``model`` and give its layers times.

    Args:
        model: ``.onnx`` path or ``zoo:FAMILY:SEED[:tiny]``.
        max_layers: See :func:`graphrec.parallel.profile.profile_graph`.
        times: ``"measured"`` (torch on this machine; needs a torch source),
            ``"estimated"`` (FLOPs / ``gflops``) or ``"auto"`` (measured when possible).
        gflops: Throughput for estimated times.
        threads: torch threads when measuring.
        batch_sizes: Batch sizes the layers are timed at (interpolated between).
        statistic: ``"min"`` or ``"median"`` of the timed passes.

    Raises:
        PlanInputError: Unknown ``times``, or measured times without a torch source.
    """
    if times not in ("auto", "measured", "estimated"):
        raise PlanInputError(f"unknown time source {times!r}; choose auto, measured or estimated")
    prof = load_profile(model, max_layers=max_layers)
    if times == "estimated" or (times == "auto" and prof.torch_factory is None):
        return prof.with_estimated_times(gflops)
    return measure_layer_times(prof, batch_sizes=batch_sizes, threads=threads, statistic=statistic)


def make_plan(
    model: str | os.PathLike[str],
    *,
    devices: int | None = None,
    cluster: Cluster | str | os.PathLike[str] | None = None,
    batch: int = 32,
    optimizer: str = "sgd",
    method: str = "pso",
    kinds: tuple[str, ...] = KINDS,
    micro_batches: int | None = None,
    memory_mb: float | None = None,
    network: Network | None = None,
    profile: ModelProfile | None = None,
    strategy: Strategy | None = None,
    max_layers: int = 16,
    times: str = "auto",
) -> Plan:
    """Plan the training of ``model``.

    Args:
        model: ``.onnx`` path or ``zoo:FAMILY:SEED[:tiny]``.
        devices: Number of equal local devices (ignored when ``cluster`` is given,
            except that it must then match the cluster's size).
        cluster: A :class:`Cluster` or a device-profile JSON path.
        batch: Global batch per step.
        optimizer: ``"sgd"`` or ``"adam"``.
        method: Search method (``pso``, ``exhaustive``, ``pipedream``, ``dp-only``).
        kinds: Strategy kinds allowed.
        micro_batches: Fix the micro-batch count.
        memory_mb: Capacity per local device (default: physical memory / devices).
        network: α-β figures for local devices.
        profile: A ready profile (skips profiling).
        strategy: Evaluate this strategy instead of searching.
        max_layers: Layer limit when profiling.
        times: Time source (see :func:`profile_for_plan`).

    Raises:
        PlanInputError: Zero devices, a batch that does not divide, a model that fits
            on no device, unknown options.
    """
    if cluster is None:
        if devices is None:
            raise PlanInputError("say how many devices to plan for (devices=N)")
        clu = local_cluster(devices, memory_mb=memory_mb, network=network)
    elif isinstance(cluster, Cluster):
        clu = cluster
    else:
        clu = load_cluster(cluster, devices=devices)
    if devices is not None and devices != clu.size:
        raise PlanInputError(f"devices={devices} but the cluster has {clu.size}")
    prof = profile or profile_for_plan(model, max_layers=max_layers, times=times)
    if strategy is not None:
        validate(strategy, prof, clu, batch)
        cost = evaluate(prof, clu, strategy, batch, optimizer=optimizer)
        return Plan(str(model), prof, clu, batch, optimizer, strategy, cost, None, max_layers)
    space = SearchSpace(
        prof, clu, batch, optimizer=optimizer, micro_batches=micro_batches, kinds=kinds
    )
    res = search(space, method)
    return Plan(str(model), prof, clu, batch, optimizer, res.strategy, res.cost, res, max_layers)
