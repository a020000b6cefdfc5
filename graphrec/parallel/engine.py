"""Run a plan on a real engine: an emitted ``torch.distributed`` launch script.

:func:`emit_script` writes a standalone program for ``torchrun --nproc-per-node N``:

* one stage (data parallel): ``DistributedDataParallel`` over the replicas, the
  micro-batches accumulated under ``no_sync`` except the last;
* several stages: the torch module split with ``torch.distributed.pipelining.pipeline``
  before each stage's first layer, one ``PipelineStage`` per rank, driven by
  ``ScheduleGPipe`` or ``Schedule1F1B``; with replicas (DP x PP) each stage's gradients
  are all-reduced over its replicas after the schedule, in one flat tensor.

Rank ``r`` serves stage ``r // dp``, replica ``r % dp``. The program trains for
``GRAPHREC_STEPS`` steps after ``GRAPHREC_WARMUP`` warm-up steps (environment, defaults
10 and 3) and rank 0 prints one JSON line: the median over steps of the slowest rank's
step time, and every step's time.

:func:`run_plan` emits the script to a temporary folder and runs it as local gloo ranks
with :func:`graphrec.parallel.launch.launch_local`.

Example:
    >>> emit_script(plan, "train_plan.py")  # doctest: +SKIP
    >>> run_plan(plan, steps=10).step_ms  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from graphrec.parallel.cluster import Network
from graphrec.parallel.planner import Plan
from graphrec.parallel.profile import PlanInputError

__all__ = ["RunResult", "calibrate_engine", "calibrate_sharing", "emit_script", "run_plan"]

_TEMPLATE = '''\
"""Distributed training plan emitted by `graphrec plan`.

Model: {name} ({model})
Strategy: {kind}: {stages} stage(s) x {dp} replica(s), {micro} micro-batch(es),
schedule {schedule}; batch {batch}; optimizer {optimizer}.
Predicted step time: {step_ms:.2f} ms ({time_source} layer times).

Run:  torchrun --nproc-per-node {world} {filename}
(gloo on CPU; set GRAPHREC_STEPS / GRAPHREC_WARMUP / GRAPHREC_THREADS to change the run.)
"""

import contextlib
import json
import os
import statistics
import time

import torch
import torch.distributed as dist

PLAN = json.loads(r"""{plan_json}""")


def loss_fn(output, target):
    return (output.float() - target).pow(2).mean()


def make_optimizer(params):
    if PLAN["optimizer"] == "adam":
        return torch.optim.Adam(params, lr=1e-4)
    return torch.optim.SGD(params, lr=1e-3, momentum=0.9)


def main():
    from graphrec.parallel.profile import load_profile, split_module

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    n_stages, dp, micro = len(PLAN["stage_starts"]), PLAN["dp"], PLAN["micro_batches"]
    if world != n_stages * dp:
        raise SystemExit(f"this plan needs {{n_stages * dp}} ranks, got {{world}}")
    torch.set_num_threads(int(os.environ.get("GRAPHREC_THREADS", "1")))
    stage, replica = divmod(rank, dp)
    # Every rank creates every group, in the same order.
    pp_groups = [dist.new_group([s * dp + r for s in range(n_stages)]) for r in range(dp)]
    dp_groups = [dist.new_group([s * dp + r for r in range(dp)]) for s in range(n_stages)]
    profile = load_profile(PLAN["model"], max_layers=PLAN["max_layers"])
    local = PLAN["batch"] // dp
    torch.manual_seed(0)
    module = profile.torch_factory().train()
    inputs = profile.example_inputs(local)
    with torch.no_grad():
        target = torch.zeros_like(module(*inputs).float())
    if n_stages == 1:
        model = module
        if dp > 1:
            from torch.nn.parallel import DistributedDataParallel

            model = DistributedDataParallel(module, process_group=dp_groups[0])
        opt = make_optimizer(model.parameters())
        chunks = [torch.chunk(t, micro) for t in inputs]
        targets = torch.chunk(target, micro)

        def step():
            opt.zero_grad(set_to_none=True)
            for i in range(micro):
                last = i == micro - 1
                sync = contextlib.nullcontext() if dp == 1 or last else model.no_sync()
                with sync:
                    out = model(*[c[i] for c in chunks])
                    (loss_fn(out, targets[i]) / micro).backward()
            opt.step()

    else:
        from torch.distributed.pipelining import Schedule1F1B, ScheduleGPipe

        example = tuple(torch.chunk(t, micro)[0] for t in inputs)
        pipe = split_module(profile, module, example, PLAN["stage_starts"][1:])
        group = pp_groups[replica]
        pstage = pipe.build_stage(stage, torch.device("cpu"), group=group)
        schedule_cls = Schedule1F1B if PLAN["schedule"] == "1f1b" else ScheduleGPipe
        schedule = schedule_cls(pstage, micro, loss_fn=loss_fn)
        params = list(pstage.submod.parameters())
        opt = make_optimizer(params)

        def step():
            opt.zero_grad(set_to_none=True)
            if stage == 0:
                schedule.step(*inputs)
            elif stage == n_stages - 1:
                schedule.step(target=target)
            else:
                schedule.step()
            if dp > 1:
                grads = [p.grad for p in params if p.grad is not None]
                flat = torch.cat([g.reshape(-1) for g in grads])
                dist.all_reduce(flat, group=dp_groups[stage])
                flat /= dp
                offset = 0
                for g in grads:
                    g.copy_(flat[offset : offset + g.numel()].view_as(g))
                    offset += g.numel()
            opt.step()

    from graphrec.bench.protocol import LoadProbe

    steps = int(os.environ.get("GRAPHREC_STEPS", "10"))
    for _ in range(int(os.environ.get("GRAPHREC_WARMUP", "3"))):
        step()
    dist.barrier()
    probe = LoadProbe.start()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append((time.perf_counter() - t0) * 1e3)
    load = probe.stop()
    slowest = torch.tensor(times, dtype=torch.float64)
    dist.all_reduce(slowest, op=dist.ReduceOp.MAX)
    # Other processes' share of this rank's cores while it timed (-1: unknown).
    shares = torch.tensor(
        [-1.0 if load.foreign is None else load.foreign, -1.0 if load.steal is None else load.steal],
        dtype=torch.float64,
    )
    dist.all_reduce(shares, op=dist.ReduceOp.MAX)
    if rank == 0:
        per_step = [float(t) for t in slowest]
        print(
            json.dumps(
                {{
                    "step_ms": statistics.median(per_step),
                    "steps_ms": per_step,
                    "foreign": float(shares[0]),
                    "steal": float(shares[1]),
                }}
            )
        )
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
'''


def _check_runnable(plan: Plan) -> None:
    if plan.profile.torch_factory is None:
        raise PlanInputError(
            f"{plan.model}: cannot emit a run without the torch module; give a zoo model "
            "(zoo:FAMILY:SEED) or an ONNX file with a model.torch.json sidecar"
        )


def emit_script(plan: Plan, path: str | os.PathLike[str]) -> Path:
    """Write the plan as a ``torchrun`` program (see the module docstring).

    Raises:
        PlanInputError: The plan's model has no torch source.
    """
    _check_runnable(plan)
    p = Path(path)
    d = plan.to_dict()
    model = plan.model
    if not model.startswith("zoo:"):
        model = str(Path(model).resolve())
    d["model"] = model
    text = _TEMPLATE.format(
        name=d["name"],
        model=model,
        kind=d["strategy"],
        stages=d["pipeline_stages"],
        dp=d["dp"],
        micro=d["micro_batches"],
        schedule=d["schedule"] or "-",
        batch=d["batch"],
        optimizer=d["optimizer"],
        step_ms=d["step_time_ms"],
        time_source=d["time_source"],
        world=d["pipeline_stages"] * d["dp"],
        filename=p.name,
        plan_json=json.dumps(d, indent=1),
    )
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")
    return p


@dataclass(frozen=True)
class RunResult:
    """A measured run of a plan.

    Attributes:
        step_ms: Median over steps of the slowest rank's step time.
        steps_ms: Every timed step (slowest rank).
        world: Ranks used.
        foreign: Largest share, over the ranks, of a rank's cores that other processes
            used while it timed (``None`` where ``/proc`` could not be read).
        steal: Largest share the hypervisor stole from them (same).
    """

    step_ms: float
    steps_ms: tuple[float, ...]
    world: int
    foreign: float | None = None
    steal: float | None = None


def run_plan(
    plan: Plan,
    *,
    steps: int = 10,
    warmup: int = 3,
    threads: int = 1,
    nice: int = 0,
    timeout_s: float = 600.0,
    pin: bool = False,
    priority: int | None = None,
) -> RunResult:
    """Emit the plan and run it as local gloo ranks; return the measured step time.

    Args:
        plan: The plan (its model needs a torch source).
        steps: Timed steps.
        warmup: Untimed steps first.
        threads: torch threads per rank.
        nice: Niceness of the ranks.
        timeout_s: Limit for the whole run.
        pin: One core per rank (see :func:`graphrec.parallel.launch.launch_local`).
        priority: Niceness of the ranks' own session (e.g. -10 for timing runs on a
            shared machine; where permitted).

    Raises:
        PlanInputError: No torch source.
        LaunchError: A rank failed.
    """
    from graphrec.parallel.launch import launch_local

    world = plan.strategy.num_stages * plan.strategy.dp
    with tempfile.TemporaryDirectory(prefix="graphrec-plan-run-") as tmp:
        script = emit_script(plan, Path(tmp) / "train_plan.py")
        env = {
            "GRAPHREC_STEPS": str(steps),
            "GRAPHREC_WARMUP": str(warmup),
            "GRAPHREC_THREADS": str(threads),
        }
        outs = launch_local(
            [str(script)],
            world,
            timeout_s=timeout_s,
            nice=nice,
            env=env,
            pin=pin,
            priority=priority,
        )
    data: dict[str, Any] = json.loads(outs[0].strip().splitlines()[-1])

    def share(key: str) -> float | None:
        v = float(data.get(key, -1.0))
        return None if v < 0 else v

    return RunResult(
        float(data["step_ms"]),
        tuple(map(float, data["steps_ms"])),
        world,
        share("foreign"),
        share("steal"),
    )


def calibrate_engine(
    network: Network,
    *,
    steps: int = 20,
    nice: int = 0,
    work: str | None = None,
    shared_speed: float = 1.0,
    pin: bool = False,
    priority: int | None = None,
    batch_sizes: tuple[int, ...] = (8, 16, 32, 64),
) -> tuple[Network, dict[str, float]]:
    """Measure the engine's fixed costs with a tiny model and put them in ``network``.

    A 4-block MLP of width 64 (compute well under a millisecond) runs on one rank, as
    2-rank data parallel and as a 2-stage 1F1B pipeline with 4 micro-batches. Whatever
    the 2-rank runs take beyond the cost model's prediction (with the one-rank run's
    speed) becomes :attr:`Network.dp_step_ms` and, spread over the ``2 (M + S - 1)``
    passes on a stage's critical path, :attr:`Network.pipeline_pass_ms`. Run it under
    the load the plans will run under, with the ranks' ``shared_speed``, ``pin`` and
    ``priority`` the plans will run with.

    Returns:
        The network with both figures set, and the raw measurements (10th percentiles).
    """
    import numpy as np

    from graphrec.parallel.cluster import Cluster, Device
    from graphrec.parallel.cost import Strategy
    from graphrec.parallel.models import write_model
    from graphrec.parallel.planner import make_plan, profile_for_plan

    with tempfile.TemporaryDirectory(prefix="graphrec-engine-", dir=work) as tmp:
        path = write_model("mlp", tmp, name="engine_probe", width=64, depth=4, features=32)
        prof = profile_for_plan(path, times="measured", batch_sizes=batch_sizes)
        base = replace(network, pipeline_pass_ms=0.0, dp_step_ms=0.0)
        m, n_st = 4, 2

        def measure(st: Strategy, speed: float) -> tuple[float, float]:
            devs = (Device("rank", speed, 4096.0),) * (st.num_stages * st.dp)
            clu = Cluster(devs, base, shared_speed)
            plan = make_plan(str(path), cluster=clu, batch=64, profile=prof, strategy=st)
            res = run_plan(plan, steps=steps, warmup=3, nice=nice, pin=pin, priority=priority)
            return float(np.percentile(res.steps_ms, 10)), plan.cost.step_time_ms

        one, pred_one = measure(Strategy((0,), 1, 1, "gpipe", (0,)), 1.0)
        speed = pred_one / one if one > 0 else 1.0
        dp, pred_dp = measure(Strategy((0,), 2, 1, "gpipe", (0, 1)), speed)
        pp, pred_pp = measure(Strategy((0, 2), 1, m, "1f1b", (0, 1)), speed)
    dp_ms = max(0.0, dp - pred_dp)
    pass_ms = max(0.0, (pp - pred_pp) / (2 * (m + n_st - 1)))
    raw = {
        "one_rank_ms": one,
        "dp_ms": dp,
        "dp_predicted_ms": pred_dp,
        "pp_ms": pp,
        "pp_predicted_ms": pred_pp,
        "speed": speed,
        "dp_step_ms": dp_ms,
        "pipeline_pass_ms": pass_ms,
    }
    net = replace(
        network,
        pipeline_pass_ms=pass_ms,
        dp_step_ms=dp_ms,
        source=network.source + "; engine overheads from a tiny-MLP run",
    )
    return net, raw


_SHARING_PROBE = """
import json, os, statistics, time
import torch
torch.set_num_threads(1)
torch.manual_seed(0)
lin = torch.nn.Linear(256, 256)
conv = torch.nn.Conv2d(16, 16, 3, padding=1)
x = torch.randn(32, 256, requires_grad=True)
y = torch.randn(8, 16, 16, 16, requires_grad=True)
def work():
    lin(x).sum().backward()
    conv(y).sum().backward()
for _ in range(20):
    work()
sync = os.environ["GRAPHREC_SYNC"]
open(os.path.join(sync, os.environ["RANK"]), "w").close()
while len(os.listdir(sync)) < int(os.environ["WORLD_SIZE"]):  # all ranks ready
    time.sleep(0.002)
times = []
end = time.perf_counter() + float(os.environ["GRAPHREC_SECONDS"])
while time.perf_counter() < end:
    t0 = time.perf_counter()
    work()
    times.append((time.perf_counter() - t0) * 1e3)
print(json.dumps({"ms": statistics.median(times), "n": len(times)}))
"""


def calibrate_sharing(
    *,
    seconds: float = 2.0,
    rounds: int = 3,
    priority: int | None = -10,
) -> tuple[float, dict[str, Any]]:
    """Measure :attr:`~graphrec.parallel.cluster.Cluster.shared_speed` of local ranks.

    A fixed micro-benchmark (a Linear and a Conv2d layer, forward and backward, one
    thread) runs as one process alone, then as two processes at once, each pinned to
    its own core, with the priority the timed runs get, both timing from the moment
    both are ready (a file barrier); ``rounds`` alternations. The
    shared speed is the median over rounds of alone time / concurrent time (mean of
    the two processes), at most 1. It depends on the machine, not on any model.

    Args:
        seconds: Timed window of each process.
        rounds: Alternations of the one-process and two-process runs.
        priority: Niceness of the processes' session (``None``: the caller's).

    Returns:
        The shared speed and the raw figures (ms per iteration).
    """
    from graphrec.parallel.launch import launch_local

    alone: list[float] = []
    pair: list[list[float]] = []
    for _ in range(rounds):
        for world in (1, 2):
            with tempfile.TemporaryDirectory(prefix="graphrec-sharing-") as sync:
                env = {"GRAPHREC_SYNC": sync, "GRAPHREC_SECONDS": str(seconds)}
                outs = launch_local(
                    ["-c", _SHARING_PROBE],
                    world,
                    pin=True,
                    priority=priority,
                    env=env,
                    timeout_s=120.0,
                )
            ms = [float(json.loads(o.strip().splitlines()[-1])["ms"]) for o in outs]
            if world == 1:
                alone.append(ms[0])
            else:
                pair.append(ms)
    ratios = [a / (sum(p) / len(p)) for a, p in zip(alone, pair, strict=True)]
    import statistics

    speed = min(1.0, statistics.median(ratios))
    return speed, {"alone_ms": alone, "pair_ms": pair, "ratios": ratios, "shared_speed": speed}
