"""Start ``world`` local processes of one Python program, as ``torchrun`` would.

Each process gets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT`` in its environment, so programs written for ``torchrun`` (the emitted
plans, the gloo micro-benchmark) run unchanged. Plain subprocesses are used instead of
``torch.multiprocessing.spawn`` so the caller needs no ``if __name__ == "__main__"``
guard.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence

from graphrec.errors import GraphRecError

__all__ = ["LaunchError", "free_port", "launch_local"]


class LaunchError(GraphRecError, RuntimeError):
    """A local distributed run failed (the message carries the failing rank's output)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launch_local(
    argv: Sequence[str],
    world: int,
    *,
    timeout_s: float = 600.0,
    nice: int = 0,
    env: Mapping[str, str] | None = None,
) -> list[str]:
    """Run ``python ARGV...`` as ``world`` ranks on this machine; return each rank's stdout.

    Args:
        argv: Arguments after the interpreter (``["-m", "pkg.mod", ...]`` or a script).
        world: Number of ranks (>= 1).
        timeout_s: Wall-clock limit for the whole run.
        nice: Niceness added to every rank (``os.nice``), e.g. 19 on a shared machine.
        env: Extra environment variables for every rank.

    Raises:
        LaunchError: A rank exited with a non-zero status or the run timed out.
    """
    if world < 1:
        raise LaunchError(f"a run needs at least one rank, got {world}")
    port = free_port()
    procs = []
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
                preexec_fn=(lambda: os.nice(nice)) if nice else None,
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
