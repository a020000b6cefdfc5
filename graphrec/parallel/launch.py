"""Start ``world`` local processes of one Python program, as ``torchrun`` would.

Each process gets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT`` in its environment, so programs written for ``torchrun`` (the emitted
plans, the gloo micro-benchmark) run unchanged. Plain subprocesses are used instead of
``torch.multiprocessing.spawn`` so the caller needs no ``if __name__ == "__main__"``
guard.

For timing runs on a shared machine, :func:`launch_local` can pin rank ``r`` to core
``r mod cores`` (``pin=True``) and raise the ranks' priority (``priority=-10``): each run
then starts in a new session, whose scheduling autogroup gets that niceness (with
autogroup scheduling the group's niceness is what counts against other sessions), as the
measurement harness does for its workers. Raising priority needs root or
``CAP_SYS_NICE``; without it the ranks keep the caller's priority.
:func:`raise_priority` does the same for the calling process (for measuring layer times
in the process that launches the runs).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from typing import Any

from graphrec.errors import GraphRecError

__all__ = ["LaunchError", "free_port", "launch_local", "raise_priority"]


class LaunchError(GraphRecError, RuntimeError):
    """A local distributed run failed (the message carries the failing rank's output)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _set_priority(niceness: int) -> None:
    """Set this process's niceness and its autogroup's, where permitted."""
    with suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, niceness)
    with suppress(OSError), open("/proc/self/autogroup", "w") as fh:
        fh.write(str(niceness))


def raise_priority(niceness: int = -10, *, core: int | None = None) -> dict[str, Any]:
    """Give the calling process a timing priority: its own session, niceness, one core.

    The process leaves its session (``setsid``, so its autogroup is its own and the
    niceness does not reach other processes of the caller's shell), then takes
    ``niceness`` for itself and its autogroup where permitted, and, with ``core``, runs
    on that core only. Children started afterwards inherit all of it.

    Returns:
        What was set: ``{"niceness": int, "autogroup": str | None, "cores": [...]}``.
    """
    with suppress(OSError):
        os.setsid()  # fails harmlessly when already a session leader
    _set_priority(niceness)
    if core is not None and hasattr(os, "sched_setaffinity"):
        with suppress(OSError):
            os.sched_setaffinity(0, {core % (os.cpu_count() or 1)})
    group: str | None = None
    with suppress(OSError), open("/proc/self/autogroup") as fh:
        group = fh.read().strip()
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    return {"niceness": os.getpriority(os.PRIO_PROCESS, 0), "autogroup": group, "cores": cores}


def launch_local(
    argv: Sequence[str],
    world: int,
    *,
    timeout_s: float = 600.0,
    nice: int = 0,
    env: Mapping[str, str] | None = None,
    pin: bool = False,
    priority: int | None = None,
) -> list[str]:
    """Run ``python ARGV...`` as ``world`` ranks on this machine; return each rank's stdout.

    Args:
        argv: Arguments after the interpreter (``["-m", "pkg.mod", ...]`` or a script).
        world: Number of ranks (>= 1).
        timeout_s: Wall-clock limit for the whole run.
        nice: Niceness added to every rank (``os.nice``), e.g. 19 on a shared machine.
        env: Extra environment variables for every rank.
        pin: Pin rank ``r`` to core ``r mod cores`` (one core per rank where there
            are enough).
        priority: Start the ranks in a new session with this niceness for them and
            their autogroup (e.g. -10 for timing runs; where permitted). Overrides
            ``nice``.

    Raises:
        LaunchError: A rank exited with a non-zero status or the run timed out.
    """
    if world < 1:
        raise LaunchError(f"a run needs at least one rank, got {world}")
    port = free_port()
    procs = []
    ncpu = os.cpu_count() or 1

    def setup(rank: int) -> Callable[[], None] | None:
        if not pin and priority is None and not nice:
            return None

        def pre() -> None:  # in the child, before exec
            if priority is not None:
                _set_priority(priority)
            elif nice:
                os.nice(nice)
            if pin and hasattr(os, "sched_setaffinity"):
                with suppress(OSError):
                    os.sched_setaffinity(0, {rank % ncpu})

        return pre

    for rank in range(world):
        env = {
            **os.environ,
            **dict(env or {}),
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": str(world),
            "LOCAL_WORLD_SIZE": str(world),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
        }
        procs.append(
            subprocess.Popen(
                [sys.executable, *argv],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                preexec_fn=setup(rank),
                start_new_session=priority is not None,
            )
        )
    outs: list[str] = []
    failed: list[str] = []
    try:
        for rank, p in enumerate(procs):
            out, err = p.communicate(timeout=timeout_s)
            outs.append(out)
            if p.returncode != 0:
                failed.append(f"rank {rank} exited with {p.returncode}:\n{err[-3000:]}")
    except subprocess.TimeoutExpired:
        for p in procs:
            p.kill()
        raise LaunchError(f"the {world}-rank run took more than {timeout_s:.0f} s") from None
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    if failed:
        raise LaunchError("; ".join(failed))
    return outs
