"""The devices a plan runs on and the network between them (α-β model).

A :class:`Cluster` is a list of :class:`Device` (relative speed, memory capacity) and two
α-β lines: one for a ring all-reduce, one for a point-to-point send. Times are
``alpha_ms + bytes * beta_ms_per_byte``; a ring all-reduce over ``n`` devices costs
``2 (n - 1) alpha + 2 (n - 1) / n * bytes * beta`` (Patarasuk and Yuan 2009), with
``alpha`` and ``beta`` fitted from the two-rank all-reduce, for which the formula reads
``2 alpha + bytes * beta``.

:func:`calibrate_gloo` measures both lines with ``torch.distributed`` (gloo) on this
machine: two local processes all-reduce and send tensors of several sizes, and a line is
fitted by least squares. It also times an optimizer step per megabyte of parameters.

A device-profile file for ``graphrec plan --device-profile`` is JSON::

    {"devices": [{"name": "big", "speed": 2.0, "memory_mb": 16000, "count": 2},
                 {"name": "small", "speed": 1.0, "memory_mb": 8000, "count": 2}],
     "network": {"allreduce_alpha_ms": 0.05, "allreduce_beta_ms_per_mb": 0.1,
                 "p2p_alpha_ms": 0.03, "p2p_beta_ms_per_mb": 0.1}}

``speed`` divides the profile's layer times (2.0: twice as fast as where the layers were
timed); the network block is optional (default: the loopback figures measured here), and
so is ``"shared_speed"`` (default 1.0: the devices share no cores; see
:attr:`Cluster.shared_speed`).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from graphrec.parallel.profile import PlanInputError

__all__ = [
    "LOCAL_SHARED_SPEED",
    "LOOPBACK_NETWORK",
    "Cluster",
    "Device",
    "Network",
    "calibrate_gloo",
    "load_cluster",
    "local_cluster",
]

_MB = 1024.0 * 1024.0


@dataclass(frozen=True)
class Device:
    """One device.

    Attributes:
        name: A label (devices of equal name, speed and memory are interchangeable).
        speed: Layer times are divided by this (1.0: the device the layers were timed on).
        memory_mb: Memory capacity in MiB.
    """

    name: str = "cpu"
    speed: float = 1.0
    memory_mb: float = 8192.0


@dataclass(frozen=True)
class Network:
    """α-β figures of the interconnect and the optimizer's update rate.

    Attributes:
        allreduce_alpha_ms: Per-step latency α of the ring all-reduce.
        allreduce_beta_ms_per_mb: Per-MiB cost β of the ring all-reduce.
        p2p_alpha_ms: Latency of one point-to-point send.
        p2p_beta_ms_per_mb: Per-MiB cost of a point-to-point send.
        optimizer_ms_per_mb: Time of one optimizer update per MiB of parameters (SGD;
            Adam costs twice as much).
        bucket_mb: Gradient bucket size (DistributedDataParallel's default is 25 MiB).
        pipeline_pass_ms: Fixed cost of each forward or backward pass of a pipeline stage
            beyond its layers (the engine's send/receive handling and waking a rank);
            measured by :func:`graphrec.parallel.engine.calibrate_engine`.
        dp_step_ms: Fixed cost per step of data-parallel synchronisation beyond the
            all-reduce itself (same calibration).
        overlap: Share of all-reduce time that can hide behind the backward pass
            (1.0 on a dedicated network; lower where communication and compute share
            CPU cores, as over loopback).
        source: Where the figures come from.
    """

    allreduce_alpha_ms: float = 0.1
    allreduce_beta_ms_per_mb: float = 1.0
    p2p_alpha_ms: float = 0.1
    p2p_beta_ms_per_mb: float = 1.0
    optimizer_ms_per_mb: float = 0.2
    bucket_mb: float = 25.0
    overlap: float = 1.0
    pipeline_pass_ms: float = 0.0
    dp_step_ms: float = 0.0
    source: str = "default"

    def allreduce_ms(self, nbytes: float, n: int) -> float:
        """Ring all-reduce time of ``nbytes`` over ``n`` devices."""
        if n <= 1 or nbytes <= 0:
            return 0.0
        return 2 * (n - 1) * self.allreduce_alpha_ms + (
            2 * (n - 1) / n * nbytes / _MB * self.allreduce_beta_ms_per_mb
        )

    def p2p_ms(self, nbytes: float) -> float:
        """Point-to-point send time of ``nbytes``."""
        if nbytes <= 0:
            return 0.0
        return self.p2p_alpha_ms + nbytes / _MB * self.p2p_beta_ms_per_mb


#: gloo over loopback on the 2-vCPU development machine (ranks idle between messages),
#: measured with :func:`calibrate_gloo` on 2026-12-02 (benchmarks/reports/plan.md).
LOOPBACK_NETWORK = Network(
    allreduce_alpha_ms=0.19,
    allreduce_beta_ms_per_mb=1.14,
    p2p_alpha_ms=0.08,
    p2p_beta_ms_per_mb=0.52,
    optimizer_ms_per_mb=0.23,
    overlap=0.0,
    source="loopback gloo, 2-vCPU development machine",
)


#: Speed of one of two local ranks computing at once, relative to one rank alone (one
#: core each, raised priority), on the 2-vCPU development machine: the median of the six
#: rounds of :func:`graphrec.parallel.engine.calibrate_sharing` in two validation runs on
#: 2026-12-02 (ratios 0.78-1.35; benchmarks/reports/plan.md).
LOCAL_SHARED_SPEED = 0.97


@dataclass(frozen=True)
class Cluster:
    """Devices and the network between them.

    Attributes:
        devices: The devices, in rank order.
        network: The α-β figures.
        shared_speed: Speed of a rank, relative to computing alone, while another rank
            computes at the same time: below 1.0 where the ranks share one machine's
            cores, caches and memory bandwidth (local ranks here; measured by
            :func:`graphrec.parallel.engine.calibrate_sharing`), 1.0 for devices that
            do not share anything.
    """

    devices: tuple[Device, ...]
    network: Network = field(default_factory=Network)
    shared_speed: float = 1.0

    @property
    def size(self) -> int:
        """Number of devices."""
        return len(self.devices)

    @property
    def homogeneous(self) -> bool:
        """Whether all devices are interchangeable."""
        return len(set(self.devices)) <= 1

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description."""
        return {
            "devices": [asdict(d) for d in self.devices],
            "network": asdict(self.network),
            "shared_speed": self.shared_speed,
        }


def local_cluster(
    n: int,
    *,
    memory_mb: float | None = None,
    network: Network | None = None,
    shared_speed: float | None = None,
) -> Cluster:
    """``n`` equal devices: this machine's ranks, sharing its memory and cores.

    Args:
        n: Number of devices (ranks).
        memory_mb: Capacity per device (default: physical memory divided by ``n``).
        network: α-β figures (default: :data:`LOOPBACK_NETWORK`).
        shared_speed: See :attr:`Cluster.shared_speed` (default:
            :data:`LOCAL_SHARED_SPEED`).

    Raises:
        PlanInputError: ``n`` < 1.
    """
    if n < 1:
        raise PlanInputError(f"the number of devices must be at least 1, got {n}")
    if memory_mb is None:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / _MB
        memory_mb = total / n
    return Cluster(
        tuple(Device("cpu-rank", 1.0, float(memory_mb)) for _ in range(n)),
        network or LOOPBACK_NETWORK,
        LOCAL_SHARED_SPEED if shared_speed is None else float(shared_speed),
    )


def load_cluster(path: str | os.PathLike[str], *, devices: int | None = None) -> Cluster:
    """Read a device-profile JSON file (format in the module docstring).

    Args:
        path: The file.
        devices: When given, the file's devices must number exactly this many.

    Raises:
        PlanInputError: Missing file, bad JSON, bad fields, or a count mismatch.
    """
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PlanInputError(f"{p}: cannot read the device profile ({exc.strerror})") from None
    except ValueError as exc:
        raise PlanInputError(f"{p}: the device profile is not JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("devices"), list):
        raise PlanInputError(f'{p}: expected an object with a "devices" list')
    out: list[Device] = []
    for k, d in enumerate(data["devices"]):
        try:
            dev = Device(str(d.get("name", f"dev{k}")), float(d["speed"]), float(d["memory_mb"]))
            count = int(d.get("count", 1))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise PlanInputError(
                f"{p}: device {k} needs numeric speed and memory_mb ({exc!r})"
            ) from None
        if dev.speed <= 0 or dev.memory_mb <= 0 or count < 1:
            raise PlanInputError(f"{p}: device {k} has a non-positive speed, memory or count")
        out.extend([dev] * count)
    if not out:
        raise PlanInputError(f"{p}: the device profile lists zero devices")
    if devices is not None and devices != len(out):
        raise PlanInputError(f"{p}: lists {len(out)} devices but --devices is {devices}")
    net = LOOPBACK_NETWORK
    if "network" in data:
        try:
            fields = {k: float(v) for k, v in dict(data["network"]).items()}
            net = replace(Network(), source=str(p), **fields)
        except (TypeError, ValueError) as exc:
            raise PlanInputError(f"{p}: bad network block ({exc})") from None
    try:
        shared = float(data.get("shared_speed", 1.0))
    except (TypeError, ValueError):
        shared = -1.0
    if not 0 < shared <= 1:
        raise PlanInputError(f"{p}: shared_speed must be a number in (0, 1]")
    return Cluster(tuple(out), net, shared)


# ---------------------------------------------------------------------- calibration


def _busy(ms: float, a: Any) -> None:
    """Keep this core busy for about ``ms`` milliseconds (matrix products)."""
    end = time.perf_counter() + ms / 1e3
    while time.perf_counter() < end:
        a @ a


def _calib_worker(
    sizes: Sequence[int], repeats: int, busy_ms: float = 0.0
) -> dict[str, list[list[float]]]:
    """One rank of the gloo micro-benchmark (run by :func:`calibrate_gloo`).

    With ``busy_ms`` > 0 both ranks compute for that long before every message, as
    pipeline stages do, so the figures include waking a rank that was descheduled; the
    send time is then measured one way, from the sender's clock stamp carried in the
    message (both ranks share the machine's monotonic clock).
    """
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    work = torch.ones(128, 128)
    try:
        rows: dict[str, list[list[float]]] = {"allreduce": [], "p2p": []}
        for size in sizes:
            t = torch.ones(max(2, size // 8), dtype=torch.float64)
            for kind in ("allreduce", "p2p"):
                times = []
                for r in range(repeats + 2):
                    if busy_ms > 0:
                        _busy(busy_ms, work)
                    else:
                        dist.barrier()
                    t0 = time.perf_counter()
                    if kind == "allreduce":
                        dist.all_reduce(t)
                        dt = (time.perf_counter() - t0) * 1e3
                    elif busy_ms > 0:
                        # One way each direction, timed by the receiver.
                        if rank == 0:
                            t[0] = time.perf_counter()
                            dist.send(t, 1)
                            dist.recv(t, 1)
                        else:
                            dist.recv(t, 0)
                            one = (time.perf_counter() - float(t[0])) * 1e3
                            _busy(busy_ms, work)
                            t[0] = time.perf_counter()
                            dist.send(t, 0)
                        dt = (time.perf_counter() - float(t[0])) * 1e3 if rank == 0 else one
                    else:
                        if rank == 0:
                            dist.send(t, 1)
                            dist.recv(t, 1)
                        else:
                            dist.recv(t, 0)
                            dist.send(t, 0)
                        dt = (time.perf_counter() - t0) * 1e3 / 2
                    if r >= 2:
                        times.append(dt)
                # Both ranks' view: the smaller (the other rank's lateness excluded).
                mine = torch.tensor(times, dtype=torch.float64)
                dist.all_reduce(mine, op=dist.ReduceOp.MIN)
                rows[kind].append([float(size), float(np.median(mine.numpy()))])
        return rows
    finally:
        dist.destroy_process_group()


def _optimizer_ms_per_mb(mb: float = 16.0) -> float:
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        p = torch.nn.Parameter(torch.zeros(int(mb * _MB / 4)))
        p.grad = torch.ones_like(p)
        opt = torch.optim.SGD([p], lr=0.01, momentum=0.9)
        opt.step()
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            opt.step()
            times.append((time.perf_counter() - t0) * 1e3)
    finally:
        torch.set_num_threads(old)
    return float(np.median(times)) / mb


def calibrate_gloo(
    sizes: Sequence[int] = (4096, 32768, 262144, 1 << 20, 4 << 20, 16 << 20),
    *,
    repeats: int = 9,
    overlap: float = 0.0,
    busy_ms: float = 0.0,
    pin: bool = False,
    priority: int | None = None,
) -> tuple[Network, dict[str, list[list[float]]]]:
    """Measure gloo all-reduce and send/recv between two local processes; fit α and β.

    Args:
        sizes: Message sizes in bytes.
        repeats: Timed repetitions per size (median kept, after two warm-ups).
        overlap: Recorded in the result (see :attr:`Network.overlap`).
        busy_ms: Compute this long on both ranks before every message (0: a barrier
            instead), so the figures include waking a busy, descheduled rank.
        pin: One core per rank (see :func:`graphrec.parallel.launch.launch_local`).
        priority: Niceness of the ranks' own session (where permitted).

    Returns:
        The fitted :class:`Network` and the raw ``{"allreduce"|"p2p": [[bytes, ms]]}``.
    """
    from graphrec.parallel.launch import launch_local

    args = ["-m", "graphrec.parallel.cluster", str(repeats), str(busy_ms), *map(str, sizes)]
    outs = launch_local(args, 2, timeout_s=300, pin=pin, priority=priority)
    rows: dict[str, list[list[float]]] = json.loads(outs[0].strip().splitlines()[-1])
    fits = {}
    for kind, pts in rows.items():
        x = np.array([p[0] for p in pts]) / _MB
        y = np.array([p[1] for p in pts])
        # Weighted by 1/y: relative error, so small messages fix alpha.
        slope, icpt = np.polyfit(x, y, 1, w=1.0 / np.maximum(y, 1e-3))
        fits[kind] = (max(float(icpt), 0.0), max(float(slope), 0.0))
    a_ar, b_ar = fits["allreduce"]
    net = Network(
        allreduce_alpha_ms=a_ar / 2,  # two-rank ring: 2 alpha + bytes * beta
        allreduce_beta_ms_per_mb=b_ar,
        p2p_alpha_ms=fits["p2p"][0],
        p2p_beta_ms_per_mb=fits["p2p"][1],
        optimizer_ms_per_mb=_optimizer_ms_per_mb(),
        overlap=overlap,
        source=f"gloo loopback, measured {time.strftime('%Y-%m-%d')}"
        + (f", ranks busy {busy_ms:g} ms between messages" if busy_ms > 0 else ""),
    )
    return net, rows


if __name__ == "__main__":  # a rank of calibrate_gloo
    _rows = _calib_worker([int(a) for a in sys.argv[3:]], int(sys.argv[1]), float(sys.argv[2]))
    if os.environ.get("RANK") == "0":
        print(json.dumps(_rows))
