"""Model-aware parallelisation planning for distributed training (``graphrec plan``).

* :mod:`graphrec.parallel.profile`: the model as layers with FLOPs, bytes and times;
* :mod:`graphrec.parallel.cluster`: devices, the α-β network model, gloo calibration;
* :mod:`graphrec.parallel.cost`: simulated step time and memory of a strategy;
* :mod:`graphrec.parallel.search`: particle swarm search, exhaustive search, PipeDream's
  partitioner, data-parallel-only;
* :mod:`graphrec.parallel.planner`: :func:`make_plan`, the front door;
* :mod:`graphrec.parallel.engine`: the emitted ``torch.distributed`` launch and local runs.

Example:
    >>> from graphrec.parallel import make_plan
    >>> plan = make_plan("zoo:vit:1:tiny", devices=2, batch=16)  # doctest: +SKIP
    >>> plan.to_dict()["strategy"]  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from graphrec._lazy import lazy_attributes

if TYPE_CHECKING:
    from graphrec.parallel.cluster import Cluster, Device, Network, calibrate_gloo
    from graphrec.parallel.cost import Strategy, evaluate
    from graphrec.parallel.engine import emit_script, run_plan
    from graphrec.parallel.planner import Plan, make_plan
    from graphrec.parallel.profile import ModelProfile, PlanInputError, load_profile

__all__ = [
    "Cluster",
    "Device",
    "ModelProfile",
    "Network",
    "Plan",
    "PlanInputError",
    "Strategy",
    "calibrate_gloo",
    "emit_script",
    "evaluate",
    "load_profile",
    "make_plan",
    "run_plan",
]

__getattr__ = lazy_attributes(
    __name__,
    {
        "Cluster": "graphrec.parallel.cluster",
        "Device": "graphrec.parallel.cluster",
        "Network": "graphrec.parallel.cluster",
        "calibrate_gloo": "graphrec.parallel.cluster",
        "Strategy": "graphrec.parallel.cost",
        "evaluate": "graphrec.parallel.cost",
        "emit_script": "graphrec.parallel.engine",
        "run_plan": "graphrec.parallel.engine",
        "Plan": "graphrec.parallel.planner",
        "make_plan": "graphrec.parallel.planner",
        "ModelProfile": "graphrec.parallel.profile",
        "PlanInputError": "graphrec.parallel.profile",
        "load_profile": "graphrec.parallel.profile",
    },
)
