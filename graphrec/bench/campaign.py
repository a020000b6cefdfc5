"""Resumable measurement campaign: generate the zoo, measure it with the harness, in the background.

The campaign of issue 4: N distinct zoo models across every family, measured on every
installed deployment candidate (``graphrec.bench``) at the given thread counts and
rounds, into one SQLite results store. Everything is resumable:

* generation (``graphrec.zoo.folder``) reuses models already in the folder's manifest,
  so a run continued after an interruption ends with the same folder;
* measurement (:func:`graphrec.bench.harness.run_campaign`, the harness's own resume
  logic) skips ``(model, candidate, device, round)`` keys already in the store and starts
  no worker when nothing is left; each row is committed the moment it exists;
* models are generated and measured in chunks (generate the next chunk, measure it), so
  the store holds complete rows for the first models early.

Each session appends progress records to ``<store>.sessions.jsonl`` (session id, device,
elapsed seconds, rows added), from which ``status`` sums the campaign's wall time across
sessions and machines.

Usage::

    # start (or continue) in the background; prints the pid and the log file
    graphrec campaign run --count 680 --background
    graphrec campaign status          # progress, counts, wall time
    graphrec campaign stop            # SIGTERM the background driver
    graphrec campaign snapshot        # gzipped copy into benchmarks/campaign_snapshot/
                                      # (commit it: ``run`` restores from it)
    # only generate (e.g. on a machine without the runtimes)
    graphrec campaign run --count 680 --generate-only

Defaults put the zoo in ``runs/zoo`` and the store in ``runs/campaign.sqlite`` (``runs/``
is git-ignored). A zoo folder regenerates bit-identically from its seeds on the same
torch/onnx/onnxruntime versions (``graphrec zoo verify runs/zoo --sample 20``), so a second
device can regenerate the zoo instead of copying it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

DEFAULT_ZOO = Path("runs/zoo")
DEFAULT_STORE = Path("runs/campaign.sqlite")
#: Tracked copy of the store, so a campaign spread over sessions survives a fresh checkout
#: (``runs/`` is git-ignored): ``snapshot`` writes it, ``run`` restores from it when the
#: store is missing.
DEFAULT_SNAPSHOT = Path("benchmarks/campaign_snapshot/campaign.sqlite.gz")


# ----------------------------------------------------------------------------- helpers


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers: {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers: {text!r}")
    return values


def _names(values: Sequence[str] | None) -> list[str] | None:
    if not values:
        return None
    return [n.strip() for v in values for n in v.split(",") if n.strip()] or None


def _side_path(store: str) -> Path:
    """The local file the pid, log and session files of a store are named after: the
    store itself, or for a PostgreSQL URL a name under ``runs/``."""
    from graphrec.bench.store import display_location, is_postgres_url

    if not is_postgres_url(store):
        return Path(store)
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", display_location(store).split("://", 1)[1])
    return Path("runs") / f"pg-{name}"


def _pid_file(store: Path) -> Path:
    return store.with_name(store.name + ".pid")


def _log_file(store: Path) -> Path:
    return store.with_name(store.name + ".log")


def _sessions_file(store: Path) -> Path:
    return store.with_name(store.name + ".sessions.jsonl")


def _running_pid(store: Path) -> int | None:
    """The pid of a live driver for ``store`` (from its pid file), else None."""
    path = _pid_file(store)
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return None
    return pid if "campaign" in cmdline else None


def _append(path: Path, record: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(record, sort_keys=True) + "\n")


class _Stop(Exception):
    """Raised from the SIGTERM handler to end the campaign between rows."""


def _on_term(signum: int, frame: FrameType | None) -> None:
    raise _Stop(f"signal {signum}")


# ----------------------------------------------------------------------------- run


def _background(argv: list[str], store: Path) -> int:
    pid = _running_pid(store)
    if pid is not None:
        print(f"a campaign driver for {store} is already running (pid {pid})")
        return 1
    log = _log_file(store)
    log.parent.mkdir(parents=True, exist_ok=True)
    args = [a for a in argv if a != "--background"]
    with log.open("a") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "graphrec.cli", "campaign", "run", *args],
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=os.getcwd(),
        )
    _pid_file(store).write_text(f"{proc.pid}\n")
    print(f"campaign running in the background: pid {proc.pid}, log {log}")
    print(f"progress: graphrec campaign status --store {store}")
    return 0


def _snapshot(store: Path, snapshot: Path) -> int:
    """Consistent copy of the live store (SQLite backup API, safe beside the writer), gzipped."""
    import gzip
    import shutil
    import sqlite3
    import tempfile

    if not store.exists():
        print(f"no store at {store}")
        return 1
    snapshot.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "copy.sqlite"
        src = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
        dst = sqlite3.connect(copy)
        with dst:
            src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")
        dst.execute("VACUUM")
        src.close()
        dst.close()
        part = snapshot.with_suffix(".part")
        with copy.open("rb") as fin, gzip.GzipFile(part, "wb", mtime=0) as fout:
            shutil.copyfileobj(fin, fout)
        part.replace(snapshot)
    sessions = _sessions_file(store)
    if sessions.exists():
        shutil.copyfile(sessions, snapshot.parent / sessions.name)
    print(f"wrote {snapshot} ({snapshot.stat().st_size / 2**20:.2f} MiB)")
    return 0


def _restore(store: Path, snapshot: Path) -> None:
    """Recreate a missing store from the tracked snapshot (fresh checkout, new session)."""
    import gzip
    import shutil

    if store.exists() or not snapshot.exists():
        return
    store.parent.mkdir(parents=True, exist_ok=True)
    part = store.with_suffix(".restore")
    with gzip.open(snapshot, "rb") as fin, part.open("wb") as fout:
        shutil.copyfileobj(fin, fout)
    part.replace(store)
    sessions = snapshot.parent / _sessions_file(store).name
    if sessions.exists() and not _sessions_file(store).exists():
        shutil.copyfile(sessions, _sessions_file(store))
    print(f"restored {store} from {snapshot}")


def _cmd_run(args: argparse.Namespace, argv: list[str]) -> int:
    store_path = _side_path(args.store)
    if store_path == Path(args.store):
        _restore(store_path, Path(args.snapshot))
    if args.background:
        return _background(argv, store_path)
    other = _running_pid(store_path)
    if other is not None and other != os.getpid():
        print(f"a campaign driver for {store_path} is already running (pid {other})")
        return 1
    store_path.parent.mkdir(parents=True, exist_ok=True)
    _pid_file(store_path).write_text(f"{os.getpid()}\n")
    signal.signal(signal.SIGTERM, _on_term)
    try:
        return _run(args)
    except (_Stop, KeyboardInterrupt) as exc:
        print(f"campaign stopped ({exc or 'interrupt'}); run the same command to resume")
        return 130
    finally:
        if _running_pid(store_path) == os.getpid():
            _pid_file(store_path).unlink(missing_ok=True)


def _run(args: argparse.Namespace) -> int:
    zoo = Path(args.zoo)
    store_path = _side_path(args.store)
    families = _names(args.families)
    session = uuid.uuid4().hex[:12]
    started = time.monotonic()
    deadline = started + args.max_hours * 3600 if args.max_hours else None
    sessions = _sessions_file(store_path)
    base = {"session": session, "host": socket.gethostname(), "pid": os.getpid()}
    _append(sessions, {**base, "event": "start", "argv": sys.argv[1:], "time": _now()})

    measurer: _Measurer | None = None
    if not args.generate_only:
        measurer = _FleetMeasurer(args) if args.ray else _Measurer(args, args.store)
    try:
        return _generate_and_measure(args, measurer, zoo, families, started, deadline, base)
    finally:
        if measurer is not None:
            measurer.close()


def _generate_and_measure(
    args: argparse.Namespace,
    measurer: _Measurer | None,
    zoo: Path,
    families: list[str] | None,
    started: float,
    deadline: float | None,
    base: dict[str, Any],
) -> int:
    from graphrec.zoo import FAMILIES, generate, read_manifest

    sessions = _sessions_file(_side_path(args.store))
    if measurer is not None:
        base["device_id"] = measurer.device_id
        if not isinstance(measurer, _FleetMeasurer):  # (a fleet plans on each node)
            print(f"device {measurer.device_id}: {len(measurer.candidates)} candidates", flush=True)
        for name, why in sorted(measurer.skipped.items()):
            print(f"  runtime {name} skipped: {why}", flush=True)

    target = 0
    rows_added = 0
    while target < args.count:
        target = min(args.count, target + args.chunk)
        t0 = time.monotonic()
        manifest = read_manifest(zoo)
        report = None
        if len(manifest) < target or families is not None:
            report = generate(
                zoo,
                families=families,
                count=target,
                seed=args.seed,
                int8_fraction=args.int8_fraction,
            )
            manifest = read_manifest(zoo)
            print(
                f"[{_now()}] models {len(manifest)}/{args.count} "
                f"(+{len(report.written)} written in {time.monotonic() - t0:.0f} s, "
                f"{len(report.duplicates)} duplicates, {len(report.failed)} failed)",
                flush=True,
            )
            for mid, why in report.failed:
                print(f"  generation failed {mid}: {why}", flush=True)
        if measurer is not None:
            plan = [
                (zoo / r["file"], args.noise_repeat if i % args.noise_every == 0 else args.repeat)
                for i, r in enumerate(manifest[:target])
            ]
            rows_added += measurer.measure(plan)
        _append(
            sessions,
            {
                **base,
                "event": "progress",
                "time": _now(),
                "elapsed_s": round(time.monotonic() - started, 1),
                "models": len(manifest),
                "rows_added": rows_added,
            },
        )
        if (
            report is not None
            and report.total < target
            and set(report.exhausted) >= set(families or FAMILIES)
        ):
            print("every family is exhausted; stopping early", flush=True)
            break
        if deadline is not None and time.monotonic() > deadline:
            print(f"--max-hours {args.max_hours} reached; run again to continue", flush=True)
            break
    _append(
        sessions,
        {
            **base,
            "event": "end",
            "time": _now(),
            "elapsed_s": round(time.monotonic() - started, 1),
            "rows_added": rows_added,
        },
    )
    print(f"[{_now()}] session done: {rows_added} rows added", flush=True)
    return 0


class _Measurer:
    """Plans candidates once and measures model chunks, skipping fully stored ones."""

    def __init__(self, args: argparse.Namespace, store: str) -> None:
        from graphrec.bench._cli import protocol_config
        from graphrec.bench.harness import plan_candidates
        from graphrec.device import DeviceProfile

        self.args = args
        self.store = store
        self.device = DeviceProfile.detect()
        self.runtimes = _names(args.runtimes)
        self.worker_env: dict[str, str] = {}
        if getattr(args, "isa_cap", None):  # same host, oneDNN/ATen capped (device/isa_cap.py)
            from graphrec.device.isa_cap import CAPPED_RUNTIMES, cap_env, capped_profile

            self.device = capped_profile(self.device, args.isa_cap)
            self.worker_env = cap_env(args.isa_cap)
            self.runtimes = self.runtimes or list(CAPPED_RUNTIMES)
        self.device_id = self.device.device_id
        _, cands, self.skipped = plan_candidates(
            self.device, runtimes=self.runtimes, patterns=args.candidates, threads=args.threads
        )
        self.candidates = cands
        self.config = protocol_config(args, timeout_s=args.timeout)
        self.measured: set[str] = set()

    def measure(self, plan: list[tuple[Path, int]]) -> int:
        """Measure ``(model path, rounds)`` pairs; returns rows added.

        What is already stored is skipped by the harness itself (``resume=True``: the
        store's :meth:`~graphrec.bench.store.ResultStore.done_keys`); a call with nothing
        left starts no worker. Models handed to the harness in this session are not
        handed again in later chunks.
        """
        from graphrec.bench.harness import run_campaign
        from graphrec.bench.store import ResultStore

        added = 0
        todo: dict[int, list[Path]] = {}
        for path, rounds in plan:
            if str(path) not in self.measured:
                todo.setdefault(rounds, []).append(path)
        with ResultStore(self.store) as store:
            for rounds, paths in sorted(todo.items()):
                for i in range(0, len(paths), self.args.batch):
                    part = paths[i : i + self.args.batch]
                    t0 = time.monotonic()
                    pending: list[int] = []
                    rows = run_campaign(
                        part,
                        store=store,
                        device=self.device,
                        runtimes=self.runtimes,
                        patterns=self.args.candidates,
                        threads=self.args.threads,
                        repeat=rounds,
                        max_rounds=max(rounds, self.args.max_rounds or rounds),
                        config=self.config,
                        cache_dir=Path(self.args.cache_dir) if self.args.cache_dir else None,
                        resume=True,
                        worker_env=self.worker_env,
                        on_plan=pending.append,
                    )
                    added += len(rows)
                    self.measured.update(str(p) for p in part)
                    if not any(pending):
                        continue  # every key of this part was stored already
                    statuses = Counter(str(r.get("status")) for r in rows)
                    print(
                        f"[{_now()}] measured {len(part)} models x {rounds} round(s): "
                        f"{len(rows)} rows {dict(statuses)} in {time.monotonic() - t0:.0f} s; "
                        f"store {store.count()} rows",
                        flush=True,
                    )
        return added

    def close(self) -> None:
        """Nothing to release (each chunk opens and closes the store)."""


class _FleetMeasurer(_Measurer):
    """Measures model chunks as Ray tasks on every device profile of a cluster
    (:mod:`graphrec.bench.fleet`), into the shared store."""

    def __init__(self, args: argparse.Namespace) -> None:  # (no local planning)
        import ray

        from graphrec.bench._cli import protocol_config
        from graphrec.bench.fleet import cluster_profiles, connect, settings_from

        self.args = args
        self.store = args.store
        self.measured = set()
        self.skipped = {}
        self.connection = connect(args.ray, slots=args.slots)
        self.profiles = cluster_profiles()
        self.device_id = "fleet " + ",".join(f"{p} x{n:g}" for p, n in self.profiles.items())
        self.candidates = []
        self.settings = settings_from(
            argparse.Namespace(**{**vars(args), "runtimes": _names(args.runtimes)}),
            protocol_config(args, timeout_s=args.timeout),
        )
        self.settings.max_rounds = args.max_rounds
        if self.connection.dashboard_url:
            print(f"Ray dashboard: {self.connection.dashboard_url}", flush=True)
        print(f"Ray cluster: {len(ray.nodes())} node(s)", flush=True)

    def measure(self, plan: list[tuple[Path, int]]) -> int:
        """Measure ``(model path, rounds)`` pairs as Ray tasks; returns rows added."""
        from graphrec.bench.fleet import describe, run_fleet

        todo = [(p, r) for p, r in plan if str(p) not in self.measured]
        if not todo:
            return 0
        report = run_fleet(todo, store=self.store, settings=self.settings, batch=self.args.batch)
        self.measured.update(str(p) for p, _ in todo)
        print(f"[{_now()}] {describe(self.store, report)}", flush=True)
        for key, why in sorted(report.failed.items()):
            print(f"  failed {key}: {why}", flush=True)
        return report.rows_added

    def close(self) -> None:
        """Shut down the local Ray cluster this campaign started, if any."""
        if self.connection.started:
            import ray

            ray.shutdown()


def _cmd_node_resources(args: argparse.Namespace) -> int:
    from graphrec.bench.fleet import node_resources

    print(json.dumps(node_resources(args.slots, cores_per_slot=args.cores_per_slot)))
    return 0


# ----------------------------------------------------------------------------- status/stop


def _cmd_status(args: argparse.Namespace) -> int:
    from graphrec.bench.store import is_postgres_url

    zoo = Path(args.zoo)
    store_path = _side_path(args.store)
    from graphrec.zoo import read_manifest

    manifest = read_manifest(zoo)
    fams = Counter(r["family"] for r in manifest)
    variants = Counter(r["variant"] for r in manifest)
    print(f"zoo {zoo}: {len(manifest)} models, {len(fams)} families, variants {dict(variants)}")
    print("  " + ", ".join(f"{k} {v}" for k, v in sorted(fams.items())))
    pid = _running_pid(store_path)
    print(f"driver: {'running, pid ' + str(pid) if pid else 'not running'}")
    sessions = _sessions_file(store_path)
    if sessions.is_file():
        per: dict[str, float] = {}
        for line in sessions.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if "elapsed_s" in rec:
                per[rec["session"]] = max(per.get(rec["session"], 0.0), float(rec["elapsed_s"]))
        total = sum(per.values())
        print(f"wall time: {total / 3600:.2f} h over {len(per)} session(s)")
    if not is_postgres_url(args.store) and not store_path.is_file():
        print(f"store {store_path}: not created yet")
        return 0
    from graphrec.bench.store import ResultStore, display_location

    label = display_location(args.store)
    with ResultStore(args.store, readonly=True) as store:
        rows = store.rows()
        models = store.models()
    by_dev = Counter(r["device_id"] for r in rows)
    print(f"store {label}: {len(rows)} rows, {len(models)} models, devices {dict(by_dev)}")
    status = Counter((r["runtime"], r["status"]) for r in rows)
    runtimes = sorted({rt for rt, _ in status})
    for rt in runtimes:
        parts = ", ".join(f"{st} {n}" for (r, st), n in sorted(status.items()) if r == rt)
        print(f"  {rt}: {parts}")
    measured = {r["model_sha256"] for r in rows}
    print(f"models with at least one row: {len(measured)}")
    return 0


def _cmd_snapshot(args: argparse.Namespace) -> int:
    from graphrec.bench.store import is_postgres_url

    if is_postgres_url(args.store):
        print("snapshot copies a SQLite store; for PostgreSQL: graphrec store copy URL FILE")
        return 1
    return _snapshot(Path(args.store), Path(args.snapshot))


def _cmd_stop(args: argparse.Namespace) -> int:
    store_path = _side_path(args.store)
    pid = _running_pid(store_path)
    if pid is None:
        print("no campaign driver is running")
        return 0
    os.kill(pid, signal.SIGTERM)  # the driver closes its worker processes itself
    print(f"sent SIGTERM to the campaign driver (pid {pid}); rows stored so far are kept")
    return 0


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


def _command_line(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[str]:
    """The options of ``parser`` that ``args`` holds, as a command line (for ``--background``)."""
    out: list[str] = []
    for action in parser._actions:
        if not action.option_strings or action.help == argparse.SUPPRESS:
            continue
        value = getattr(args, action.dest, None)
        opt = action.option_strings[0]
        if value is None or value is False or isinstance(action, argparse._HelpAction):
            continue
        if value is True:
            out.append(opt)
        elif isinstance(action, argparse._AppendAction):
            for v in value:
                out += [opt, str(v)]
        elif isinstance(value, tuple):
            out += [opt, ",".join(str(v) for v in value)]
        elif isinstance(value, list):
            out += [opt, *(str(v) for v in value)]
        else:
            out += [opt, str(value)]
    return out


def register(subparsers: Any) -> None:
    """Add ``graphrec campaign run | status | snapshot | stop`` to the CLI."""
    from graphrec.bench._cli import add_protocol_arguments

    p = subparsers.add_parser(
        "campaign",
        help="the measurement campaign: zoo -> every runtime -> store (resumable)",
        description=__doc__.split("\n")[0],
    )
    sub = p.add_subparsers(dest="campaign_cmd", metavar="SUBCOMMAND", required=True)

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--zoo", default=str(DEFAULT_ZOO), help="zoo folder (default runs/zoo)")
        q.add_argument(
            "--store",
            default=str(DEFAULT_STORE),
            help="results store: a SQLite file (default runs/campaign.sqlite) or a "
            "postgresql://user@host/db URL",
        )
        q.add_argument(
            "--snapshot", default=str(DEFAULT_SNAPSHOT), help="tracked gzipped copy of the store"
        )

    run = sub.add_parser("run", help="generate and measure (resumable)")
    common(run)
    run.add_argument("--count", type=int, default=680, help="distinct models (default 680)")
    run.add_argument("--families", nargs="+", help="families (default: all)")
    run.add_argument("--seed", type=int, default=0, help="zoo generation seed")
    run.add_argument("--int8-fraction", type=float, default=0.1, help="share with int8 variant")
    run.add_argument("--chunk", type=int, default=44, help="models generated per step")
    run.add_argument("--batch", type=int, default=11, help="models per harness call")
    run.add_argument("--threads", type=_int_list, default=(1, 2), help="thread counts")
    run.add_argument("--repeat", type=int, default=1, help="rounds in fresh processes")
    add_protocol_arguments(run)
    run.add_argument(
        "--noise-every",
        type=int,
        default=10,
        help="every K-th model also gets --noise-repeat rounds (repeat-run noise)",
    )
    run.add_argument("--noise-repeat", type=int, default=3, help="rounds of the noise subset")
    run.add_argument("--runtimes", nargs="+", help="runtimes (default: all installed)")
    run.add_argument(
        "--isa-cap",
        choices=("avx2", "avx512_core"),
        help="measure this host with oneDNN/ATen capped at this ISA (its own device_id; "
        "same host, not a different CPU; default runtimes: the ones the cap changes)",
    )
    run.add_argument("--candidates", action="append", help="candidate-id pattern (repeatable)")
    run.add_argument("--timeout", type=float, default=300.0, help="seconds per measurement")
    run.add_argument("--max-time", type=float, default=1.0, help="max seconds of warm runs")
    run.add_argument("--cache-dir", help="conversion cache (default ~/.cache/graphrec)")
    run.add_argument("--max-hours", type=float, default=None, help="stop after this long")
    run.add_argument("--generate-only", action="store_true", help="do not measure")
    run.add_argument("--background", action="store_true", help="detach and log to <store>.log")
    run.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="measure as Ray tasks on the cluster at ADDRESS, on every device profile its "
        "nodes offer ('auto': the local cluster, started if none runs)",
    )
    run.add_argument(
        "--slots",
        type=int,
        default=None,
        help="(--ray auto, new local cluster) measurement slots of this machine "
        "(default: one per core)",
    )
    run.set_defaults(func=lambda a: _cmd_run(a, _command_line(run, a)))

    st = sub.add_parser("status", help="progress of the campaign")
    common(st)
    st.set_defaults(func=_cmd_status)
    sn = sub.add_parser("snapshot", help="write the tracked, gzipped copy of the store")
    common(sn)
    sn.set_defaults(func=_cmd_snapshot)
    nr = sub.add_parser(
        "node-resources",
        help="the Ray resources this machine offers as a fleet node (for ray start)",
    )
    nr.add_argument("--slots", type=int, default=None, help="measurement slots (default: cores)")
    nr.add_argument("--cores-per-slot", type=int, default=1, help="cores per slot (default 1)")
    nr.set_defaults(func=_cmd_node_resources)
    sp = sub.add_parser("stop", help="stop the background driver (SIGTERM)")
    common(sp)
    sp.set_defaults(func=_cmd_stop)
