"""Fleet measurement on a real local Ray cluster (a head and two measuring worker
processes, loopback) into a real PostgreSQL server, with the real harness measuring
tiny ONNX models on onnxruntime; a Ray worker and the database server are killed
mid-campaign."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pg_server import PgServer, pg_bindir, start_server
from tiny_models import make_mlp

from graphrec.bench.fleet import (
    SLOT_ENV,
    FleetReport,
    FleetSettings,
    _slot,
    node_resources,
    plan_items,
    run_fleet,
    slot_cores,
)
from graphrec.bench.protocol import MeasureConfig
from graphrec.bench.store import ResultStore
from graphrec.cli import main
from graphrec.errors import GraphRecError

CANDIDATES = 3  # onnxruntime at one thread: fp32 opt=all, fp32 opt=basic, int8 opt=all

needs_pg = pytest.mark.skipif(
    pg_bindir() is None, reason="PostgreSQL server binaries missing (make sysdeps installs them)"
)


# ----------------------------------------------------------------------------- slots


def test_slot_cores_are_disjoint_and_cover_the_cores() -> None:
    cores = [0, 1, 2, 3, 4, 5, 6]
    parts = [slot_cores(cores, 3, i) for i in range(3)]
    assert parts == [(0, 1, 2), (3, 4), (5, 6)]
    assert slot_cores([5, 9], 2, 1) == (9,)
    with pytest.raises(GraphRecError, match="at most one per core"):
        slot_cores([0, 1], 3, 0)


def test_a_slot_is_held_once_and_freed_by_its_holders_death(tmp_path: Path) -> None:
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        pytest.skip("needs two cores")
    with _slot(2, tmp_path) as (mark_a, cores_a), _slot(2, tmp_path) as (_, cores_b):
        assert not set(cores_a) & set(cores_b) and set(cores_a) | set(cores_b) == set(cores)
        assert mark_a == ",".join(map(str, cores_a))
        # every core is taken: a holder with another slot count finds none free either
        with (
            pytest.raises(GraphRecError, match="no free measurement slot"),
            _slot(1, tmp_path, wait_s=0.3),
        ):
            pass
    # a process holds the one slot of every core and is SIGKILLed: the kernel frees it
    code = (
        "import sys, time\nfrom pathlib import Path\nfrom graphrec.bench.fleet import _slot\n"
        "with _slot(1, Path(sys.argv[1])) as got:\n"
        "    print(got[0], flush=True)\n    time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        held = proc.stdout.readline().strip()
        assert held == ",".join(map(str, cores))
        with pytest.raises(GraphRecError, match="no free"), _slot(2, tmp_path, wait_s=0.3):
            pass
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        t0 = time.monotonic()
        with _slot(1, tmp_path) as (mark, _):
            assert mark == held
        assert time.monotonic() - t0 < 5
    finally:
        proc.kill()


def test_work_items_batch_models_per_profile_and_rounds(tmp_path: Path) -> None:
    paths = [make_mlp(tmp_path / f"m{i}.onnx", seed=i) for i in range(5)]
    (tmp_path / "copy.onnx").write_bytes(paths[0].read_bytes())  # same content: one model
    items = plan_items(
        [(paths[0], 3), *paths[1:], tmp_path / "copy.onnx"], ["dev-a", "dev-b"], batch=2
    )
    shape = sorted((it.device_id, it.repeat, tuple(m.name for m in it.models)) for it in items)
    assert shape == [
        ("dev-a", 1, ("m1", "m2")),
        ("dev-a", 1, ("m3", "m4")),
        ("dev-a", 3, ("m0",)),
        ("dev-b", 1, ("m1", "m2")),
        ("dev-b", 1, ("m3", "m4")),
        ("dev-b", 3, ("m0",)),
    ]
    assert len({it.key for it in items}) == len(items)
    assert plan_items(paths, ["dev-a"])[0].key == plan_items(paths, ["dev-a"])[0].key
    with pytest.raises(GraphRecError, match="batch"):
        plan_items(paths, ["dev-a"], batch=0)


# ----------------------------------------------------------------------------- cluster


@pytest.fixture(scope="module")
def stack() -> Iterator[PgServer]:
    """A PostgreSQL server and a local Ray cluster (started at the same time) whose
    node offers this machine's device resource in two slots."""
    import ray

    if pg_bindir() is None:
        pytest.skip("PostgreSQL server binaries missing (make sysdeps installs them)")
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("the fleet tests run two measuring workers, one core each")
    box: dict[str, Any] = {}

    def start_pg() -> None:
        try:
            box["server"] = start_server()
        except BaseException as exc:  # (re-raised below)
            box["error"] = exc

    starter = threading.Thread(target=start_pg)
    starter.start()
    for attempt in range(2):  # Ray gives its raylet 30 s to start: a loaded CI box can miss
        try:
            ray.init(
                num_cpus=2,
                resources=node_resources(2),
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
            break
        except Exception:
            ray.shutdown()
            if attempt == 1:
                starter.join()
                if "server" in box:
                    box["server"].cleanup()
                raise
    starter.join()
    try:
        if "error" in box:
            raise box["error"]
        yield box["server"]
    finally:
        ray.shutdown()
        if "server" in box:
            box["server"].cleanup()


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    d = tmp_path_factory.mktemp("fleet-models")
    return [make_mlp(d / f"mlp{i}.onnx", seed=10 + i) for i in range(4)]


def _settings(tmp: Path) -> FleetSettings:
    config = MeasureConfig(
        warmup_runs=1,
        min_runs=3,
        max_runs=40,
        min_time_s=0.0,
        max_time_s=0.1,
        timeout_s=60.0,
        memory_limit_mb=4096,
    )
    return FleetSettings(
        runtimes=["onnxruntime"],
        threads=(1,),
        config=config,
        cache_dir=str(tmp / "cache"),
        store_retry_s=120.0,
    )


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _harness_workers() -> dict[int, int]:
    """Harness worker processes started by fleet tasks: ``{pid: parent pid}``."""
    out: dict[int, int] = {}
    for pid in _pids():
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        if any(e.startswith(SLOT_ENV.encode() + b"=") for e in env):
            ppid = int(next(x for x in status.splitlines() if x.startswith("PPid:")).split()[1])
            out[pid] = ppid
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _rows(url: str) -> list[dict[str, Any]]:
    with ResultStore(url, readonly=True) as store:
        return store.rows()


def _count(url: str) -> int:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            row = conn.execute("SELECT COUNT(*) FROM results").fetchone()
            return int(row[0]) if row else 0
    except psycopg.Error:
        return -1


def _start(models: list[Path], url: str, tmp: Path) -> tuple[threading.Thread, dict[str, Any]]:
    box: dict[str, Any] = {}

    def drive() -> None:
        try:
            box["report"] = run_fleet(models, store=url, settings=_settings(tmp), progress=False)
        except BaseException as exc:  # (re-raised by the test)
            box["error"] = exc

    thread = threading.Thread(target=drive, daemon=True)
    thread.start()
    return thread, box


def _finish(thread: threading.Thread, box: dict[str, Any]) -> FleetReport:
    thread.join(timeout=240)
    assert not thread.is_alive(), "the fleet run did not finish"
    if "error" in box:
        raise box["error"]
    report: FleetReport = box["report"]
    return report


def _check_complete(url: str, models: list[Path], report: FleetReport) -> list[dict[str, Any]]:
    assert report.failed == {}
    assert report.items == len(models) and len(report.results) == len(models)
    rows = _rows(url)
    keys = Counter(
        (r["measurement_key"], r["candidate_id"], r["device_id"], r["round"]) for r in rows
    )
    assert max(keys.values()) == 1  # no duplicate
    pairs = Counter((r["model_name"], r["candidate_id"]) for r in rows)
    assert len(pairs) == len(models) * CANDIDATES and set(pairs.values()) == {1}
    assert {r["model_name"] for r in rows} == {m.stem for m in models}
    assert all(r["status"] == "ok" and r["p50_ms"] > 0 for r in rows)
    # every measurement ran on one core, of one of the two slots
    assert {r["cores"] for r in rows} <= {"0", "1"}
    assert {res.cores for res in report.results} <= {(0,), (1,)}
    return rows


@needs_pg
def test_fleet_survives_a_killed_ray_worker(
    stack: PgServer, models: list[Path], tmp_path: Path
) -> None:
    server = stack
    url = server.create_database("fleet_kill_" + uuid.uuid4().hex[:8])
    thread, box = _start(models, url, tmp_path)
    victim: int | None = None
    deadline = time.monotonic() + 120
    while victim is None and time.monotonic() < deadline and thread.is_alive():
        if _count(url) >= 1:  # some rows are committed, and a task is measuring
            busy = [ppid for ppid in _harness_workers().values() if _alive(ppid) and ppid > 1]
            victim = busy[0] if busy else None
        time.sleep(0.05)
    assert victim is not None, "no measuring Ray worker was seen"
    before = {r["id"]: r for r in _rows(url)}
    os.kill(victim, signal.SIGKILL)  # the Ray worker process running a task, mid-item
    report = _finish(thread, box)
    assert not _alive(victim)

    rows = _check_complete(url, models, report)
    assert len(before) < len(rows)  # the kill came before the end
    after = {r["id"]: r for r in rows}
    assert all(after.get(i) == r for i, r in before.items())  # no committed row changed
    assert len({res.pid for res in report.results}) >= 2  # two worker processes measured
    assert _harness_workers() == {}  # no harness worker outlived its task


@needs_pg
def test_fleet_waits_for_a_killed_postgres_server(
    stack: PgServer, models: list[Path], tmp_path: Path
) -> None:
    server = stack
    url = server.create_database("fleet_pg_" + uuid.uuid4().hex[:8])
    thread, box = _start(models, url, tmp_path)
    deadline = time.monotonic() + 120
    while _count(url) < 2 and time.monotonic() < deadline and thread.is_alive():
        time.sleep(0.05)
    before = {r["id"]: r for r in _rows(url)}
    assert before
    server.kill()  # SIGKILL the postmaster and every backend
    time.sleep(2.0)
    assert _count(url) == -1  # (really down)
    server.start()  # crash recovery; the tasks reconnect and go on
    report = _finish(thread, box)

    rows = _check_complete(url, models, report)
    after = {r["id"]: r for r in rows}
    assert all(after.get(i) == r for i, r in before.items())
    assert len(before) < len(rows)
    assert sum(res.store_retries for res in report.results) >= 1  # the tasks had to wait


@needs_pg
def test_campaign_run_ray_through_the_command_line(
    stack: PgServer,
    models: list[Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = stack
    url = server.create_database("fleet_cli_" + uuid.uuid4().hex[:8])
    zoo = tmp_path / "zoo"
    zoo.mkdir()
    lines = []
    for m in models[:2]:
        (zoo / m.name).write_bytes(m.read_bytes())
        lines.append(json.dumps({"file": m.name, "family": "mlp", "variant": "fp32"}))
    (zoo / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    argv = [
        "campaign", "run", "--ray", "auto", "--zoo", str(zoo), "--store", url,
        "--count", "2", "--runtimes", "onnxruntime", "--threads", "1", "--max-time", "0.05",
        "--noise-every", "2", "--noise-repeat", "2", "--cache-dir", str(tmp_path / "cache"),
    ]  # fmt: skip
    cwd = Path.cwd()
    os.chdir(tmp_path)  # (the session files of a URL store go under ./runs)
    try:
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert "2/2 items measured" in out and f"{3 * CANDIDATES} rows added" in out
        assert main(argv) == 0  # resumed: every key is stored
        assert "0 rows added" in capsys.readouterr().out
        assert main(["campaign", "status", "--zoo", str(zoo), "--store", url]) == 0
        status = capsys.readouterr().out
    finally:
        os.chdir(cwd)
    assert f"{3 * CANDIDATES} rows, 2 models" in status
    rounds = Counter((r["model_name"], r["round"]) for r in _rows(url))
    # the first model is in the noise subset: two rounds; the second one round
    assert rounds == {
        (models[0].stem, 0): CANDIDATES,
        (models[0].stem, 1): CANDIDATES,
        (models[1].stem, 0): CANDIDATES,
    }
