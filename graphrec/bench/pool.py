"""Parent side of the worker protocol: start, feed, watch and kill worker processes.

Each runtime gets its own worker process, reused across models and candidates until it
crashes, hangs or the round ends. While a request is in flight the parent polls the
worker's resident memory (this also gives the peak-memory figure without a sampling
thread inside the timed process) and kills the whole process group when it passes the
memory cap or the timeout.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from graphrec.bench.protocol import Status

__all__ = ["Worker", "WorkerFailure", "WorkerPool", "rss_mb"]

_POLL_S = 0.02
#: While the worker times, the parent only wakes to check the deadline.
_QUIET_POLL_S = 5.0
_STARTUP_TIMEOUT_S = 180.0


class WorkerFailure(Exception):
    """A request did not produce a response; ``status`` says why (timeout, crashed, ...)."""

    def __init__(self, status: str, message: str, peak_rss_mb: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.peak_rss_mb = peak_rss_mb


def rss_mb(pid: int) -> float | None:
    """Resident memory of a process in MiB (``None`` when it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    try:
        import psutil

        return float(psutil.Process(pid).memory_info().rss) / (1024 * 1024)
    except Exception:
        return None


def _package_root() -> str:
    import graphrec

    return str(Path(graphrec.__file__).resolve().parent.parent)


@dataclass
class Worker:
    """One worker subprocess hosting ``runtime``.

    Attributes:
        runtime: Adapter name.
        log_path: File the worker's stderr (and the runtime's prints) go to.
        memory_limit_mb: RSS cap; 0 disables it.
        env: Extra environment variables for the worker.
    """

    runtime: str
    log_path: Path
    memory_limit_mb: int = 0
    env: dict[str, str] = field(default_factory=dict)
    cores: tuple[int, ...] | None = None
    nice: int = 0
    version: str | None = None
    import_s: float | None = None
    _proc: subprocess.Popen[bytes] | None = None
    _buf: bytes = b""
    _log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """Process id of the running worker."""
        return self._proc.pid if self._proc is not None else None

    @property
    def alive(self) -> bool:
        """Whether the process is running."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start the process and wait for its ready line.

        Raises:
            WorkerFailure: It died or did not answer in time (status ``load_failed``).
        """
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        env = dict(os.environ)
        root = _package_root()
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        env.update(self.env)
        cmd = [sys.executable, "-m", "graphrec.bench.worker", "--runtime", self.runtime]
        if self.memory_limit_mb > 0:
            cmd += ["--memory-limit-mb", str(self.memory_limit_mb)]
        self._buf = b""
        cores, nice = self.cores, self.nice

        def pin() -> None:  # before exec: the runtime's thread pools are born pinned
            if cores:
                os.sched_setaffinity(0, cores)
            if nice:
                # (a raised priority needs CAP_SYS_NICE). With autogroup scheduling the
                # new session is its own group, and the group's niceness is what counts
                # against other sessions; the process's niceness acts within it.
                with suppress(OSError):
                    os.nice(nice)
                with suppress(OSError), open("/proc/self/autogroup", "w") as fh:
                    fh.write(str(nice))

        self._proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
            start_new_session=True,
            preexec_fn=pin if (cores or nice) else None,
        )
        try:
            hello = self._read_line(_STARTUP_TIMEOUT_S, watch_memory=False)[0]
        except WorkerFailure as exc:
            self.kill()
            raise WorkerFailure(
                Status.LOAD_FAILED, f"worker did not start: {exc.message}"
            ) from None
        if not hello.get("ready"):
            self.kill()
            status = (
                Status.UNAVAILABLE
                if "not installed" in str(hello.get("error"))
                else Status.LOAD_FAILED
            )
            raise WorkerFailure(
                status, f"worker could not load {self.runtime}: {hello.get('error')}"
            )
        self.version = hello.get("version")
        self.import_s = hello.get("import_s")

    def request(self, payload: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """Send one request and wait for its response.

        The response gains ``peak_rss_mb`` (peak resident memory while it ran: the
        worker's own high-water mark when it reports one, else what the parent's
        sampling saw), ``rss_before_mb`` and ``worker_pid``. While the worker says it is
        timing (a ``{"phase": "timing"}`` line), the parent does not sample.

        Raises:
            WorkerFailure: timeout, crash (signal or exit) or memory cap; the worker is
                dead afterwards.
        """
        if not self.alive:
            self.start()
        assert self._proc is not None and self._proc.stdin is not None
        pid = self._proc.pid
        before = rss_mb(pid)
        try:
            self._proc.stdin.write((json.dumps(payload) + "\n").encode())
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # reported below as a crash
        resp, peak = self._read_line(timeout_s, watch_memory=True)
        own = resp.pop("worker_peak_rss_mb", None)
        resp["peak_rss_mb"] = own if own is not None else peak
        resp["rss_before_mb"] = before
        resp["worker_pid"] = pid
        return resp

    def _read_line(
        self, timeout_s: float, *, watch_memory: bool
    ) -> tuple[dict[str, Any], float | None]:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        fd = proc.stdout.fileno()
        sel = selectors.DefaultSelector()
        sel.register(fd, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout_s
        peak: float | None = None
        quiet = False
        try:
            while True:
                while b"\n" in self._buf:
                    line, _, rest = self._buf.partition(b"\n")
                    if not line.startswith(b'{"phase"'):
                        break
                    self._buf = rest
                    quiet = True  # the worker times now: no sampling until it answers
                if b"\n" in self._buf:
                    break
                now = time.monotonic()
                if now >= deadline:
                    self.kill()
                    raise WorkerFailure(Status.TIMEOUT, f"no answer within {timeout_s:g} s", peak)
                poll = min(_QUIET_POLL_S if quiet else _POLL_S, deadline - now)
                if sel.select(timeout=poll):
                    chunk = os.read(fd, 1 << 16)
                    if not chunk:
                        raise self._death(peak)
                    self._buf += chunk
                if watch_memory and not quiet:
                    cur = rss_mb(proc.pid)
                    if cur is not None:
                        peak = cur if peak is None else max(peak, cur)
                        if self.memory_limit_mb > 0 and cur > self.memory_limit_mb:
                            self.kill()
                            raise WorkerFailure(
                                Status.OUT_OF_MEMORY,
                                f"resident memory {cur:.0f} MiB passed the cap of "
                                f"{self.memory_limit_mb} MiB",
                                peak,
                            )
        finally:
            sel.close()
        line, _, self._buf = self._buf.partition(b"\n")
        try:
            return json.loads(line), peak
        except json.JSONDecodeError:
            self.kill()
            raise WorkerFailure(Status.CRASHED, f"garbled answer: {line[:200]!r}", peak) from None

    def _death(self, peak: float | None) -> WorkerFailure:
        assert self._proc is not None
        try:
            code = self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self._proc.returncode
        if code is not None and code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            msg = f"worker killed by {name}"
        else:
            msg = f"worker exited with code {code}"
        tail = self.log_tail()
        if tail:
            msg += f"; log tail: {tail}"
        self._proc = None
        return WorkerFailure(Status.CRASHED, msg, peak)

    def log_tail(self, lines: int = 5) -> str:
        """Last lines of the worker's log, joined with ' | '."""
        try:
            text = self.log_path.read_bytes()[-4000:].decode("utf-8", "replace")
        except OSError:
            return ""
        return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])

    def kill(self) -> None:
        """Kill the worker's process group (no-op when it is not running)."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            try:
                os.killpg(self._proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self._proc.kill()
        with suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout=10)
        self._close_pipes()
        self._proc = None

    def close(self, timeout_s: float = 10.0) -> None:
        """Ask the worker to exit (closing its stdin), killing it if it lingers."""
        if self._proc is None:
            return
        if self._proc.poll() is None and self._proc.stdin is not None:
            try:
                self._proc.stdin.close()
                self._proc.wait(timeout=timeout_s)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.kill()

    def _close_pipes(self) -> None:
        if self._proc is not None:
            for stream in (self._proc.stdin, self._proc.stdout):
                if stream is not None:
                    with suppress(OSError):
                        stream.close()
        if self._log is not None:
            self._log.close()
            self._log = None


@dataclass
class WorkerPool:
    """One lazily started :class:`Worker` per runtime and core set."""

    log_dir: Path
    memory_limit_mb: int = 0
    env: dict[str, str] = field(default_factory=dict)
    nice: int = 0
    workers: dict[tuple[str, tuple[int, ...] | None], Worker] = field(default_factory=dict)
    _count: int = 0

    def get(self, runtime: str, cores: Sequence[int] | None = None) -> Worker:
        """The worker for ``runtime`` pinned to ``cores`` (unpinned when ``None``),
        started if it is not running."""
        key = (runtime, None if cores is None else tuple(cores))
        w = self.workers.get(key)
        if w is None or not w.alive:
            self._count += 1
            w = Worker(
                runtime,
                self.log_dir / f"worker-{runtime}-{os.getpid()}-{self._count}.log",
                self.memory_limit_mb,
                dict(self.env),
                key[1],
                self.nice,
            )
            self.workers[key] = w
            w.start()
        return w

    def close(self) -> None:
        """Stop every worker."""
        for w in self.workers.values():
            w.close()
        self.workers.clear()


@contextmanager
def worker_pool(
    log_dir: Path, memory_limit_mb: int = 0, env: dict[str, str] | None = None
) -> Iterator[WorkerPool]:
    """A :class:`WorkerPool` whose workers are stopped on exit (also on Ctrl-C)."""
    pool = WorkerPool(log_dir, memory_limit_mb, dict(env or {}))
    try:
        yield pool
    finally:
        pool.close()
