"""Fleet measurement on Ray: work items as Ray tasks, results straight into one store.

``graphrec campaign run --ray ADDRESS`` (or ``--ray auto``) turns the campaign's work
into Ray tasks; each node measures with the same harness, worker isolation and
protocol as a single machine (:func:`graphrec.bench.harness.run_campaign`), and writes
each row to the shared store (PostgreSQL for a fleet; a SQLite file only when every
node is this machine) the moment it exists.

Work items.
    One item is a batch of models (``batch``, default 1) measured on one device
    profile: every candidate, every round (and the adaptive rounds), as one harness
    call, whose worker processes the batch's models share. Its rows are keyed by the
    store's measurement key, so an item run twice adds nothing, and a resumed item
    measures only the keys still missing.

Placement: a custom resource per device profile.
    A node offers ``graphrec-device-<device_id>: S`` (:func:`node_resources`, e.g.
    ``ray start --resources "$(graphrec campaign node-resources)"``), where ``S`` is its
    number of measurement slots; each item asks for one unit of its profile's resource
    (and no CPU), so it runs only on a node of that profile, and Ray never runs more
    than ``S`` items on a node at once.

One measurement per core at a time.
    A node's cores are split into ``S`` disjoint slots (:func:`slot_cores`). A task takes
    a free slot under an exclusive ``flock`` on each of its cores' lock files
    (machine-local, released by the kernel the moment its holder dies, even by SIGKILL;
    per core, so even two Ray nodes on one machine never share one), pins itself to the
    slot's cores, and the
    harness pins its workers inside them as it does on one machine (the first core to
    the harness parent when the slot has more than one). Ray's resource count bounds
    the tasks on a node by ``S``, the locks give them disjoint cores, and the harness
    runs one measurement at a time per task: so no two timing measurements ever share
    a core. The harness workers of a task carry its slot in their environment; a task
    that takes a slot first kills any worker a dead holder left behind (a worker
    orphaned by a SIGKILLed task would otherwise finish its current burst there).

Failures.
    A node or worker that dies mid-item loses only the measurement in flight (every
    row before it is committed); Ray retries the task (``max_retries``) on a node of the
    same profile, now or when one joins, and the retry skips the stored keys. An item
    whose task fails for another reason (the store unreachable past its retry time) is
    resubmitted by the driver up to ``item_retries`` times, after the others.

Progress: a rich progress bar of items (rows added, per node), and the Ray dashboard
when the cluster runs one.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import signal
import socket
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graphrec.bench.protocol import MeasureConfig
from graphrec.bench.store import ResultStore, display_location, is_postgres_url
from graphrec.errors import GraphRecError

__all__ = [
    "DEVICE_RESOURCE_PREFIX",
    "FleetError",
    "FleetReport",
    "FleetSettings",
    "ItemResult",
    "WorkItem",
    "device_resource",
    "measure_item",
    "node_resources",
    "run_fleet",
    "slot_cores",
]

#: Prefix of the custom Ray resource a node offers per device profile.
DEVICE_RESOURCE_PREFIX = "graphrec-device-"
#: Environment variable naming the slot cores of a task's harness workers.
SLOT_ENV = "GRAPHREC_FLEET_SLOT"


class FleetError(GraphRecError):
    """The fleet cannot run: no cluster, no node offering a device resource, a store
    the nodes cannot reach."""


def device_resource(device_id: str) -> str:
    """The Ray resource name of a device profile."""
    return DEVICE_RESOURCE_PREFIX + device_id


def _allowed_cores() -> list[int]:
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def node_resources(
    slots: int | None = None, *, cores_per_slot: int = 1, device_id: str | None = None
) -> dict[str, float]:
    """The custom resources this machine offers as a fleet node.

    Args:
        slots: Measurement slots (default: the usable cores // ``cores_per_slot``).
        cores_per_slot: Cores per slot: the most threads a candidate runs with (a slot
            with fewer cores runs such a candidate on fewer cores than its threads).
        device_id: The profile (default: this machine's, detected).

    Returns:
        ``{"graphrec-device-<device_id>": slots}`` for ``ray start --resources`` or
        ``ray.init(resources=...)``.
    """
    if device_id is None:
        from graphrec.device import DeviceProfile

        device_id = DeviceProfile.detect().device_id
    if slots is None:
        slots = max(1, len(_allowed_cores()) // max(1, cores_per_slot))
    if slots < 1:
        raise FleetError(f"a node needs at least one measurement slot, got {slots}")
    return {device_resource(device_id): float(slots)}


def slot_cores(allowed: Sequence[int], slots: int, index: int) -> tuple[int, ...]:
    """The cores of slot ``index`` of ``slots``: contiguous, disjoint, covering ``allowed``.

    Raises:
        FleetError: More slots than cores, or an index out of range.
    """
    cores = sorted(allowed)
    if slots < 1 or slots > len(cores):
        raise FleetError(f"{slots} measurement slots on {len(cores)} cores: at most one per core")
    if not 0 <= index < slots:
        raise FleetError(f"slot {index} of {slots}")
    size, extra = divmod(len(cores), slots)
    start = index * size + min(index, extra)
    return tuple(cores[start : start + size + (1 if index < extra else 0)])


@dataclass(frozen=True)
class ModelRef:
    """A model file of a work item: its path on the driver, content hash and name."""

    path: str
    sha256: str
    name: str


@dataclass(frozen=True)
class WorkItem:
    """Models measured on one device profile (every candidate and round), as one
    harness call: a batch of a few models shares the harness's worker processes."""

    models: tuple[ModelRef, ...]
    device_id: str
    repeat: int = 1

    @property
    def key(self) -> str:
        """Idempotent key of the item (profile, model contents, rounds)."""
        digest = hashlib.sha256("".join(m.sha256 for m in self.models).encode()).hexdigest()
        more = f"+{len(self.models) - 1}" if len(self.models) > 1 else ""
        return f"{self.device_id}/{digest[:12]}/{self.models[0].name}{more}/r{self.repeat}"


@dataclass
class FleetSettings:
    """What every item measures and how (the ``run_campaign`` arguments but the models;
    ``repeat`` is the rounds of a model given without its own)."""

    runtimes: list[str] | None = None
    patterns: list[str] | None = None
    threads: tuple[int, ...] = (1, 2)
    repeat: int = 1
    max_rounds: int | None = None
    config: MeasureConfig = field(default_factory=MeasureConfig)
    cache_dir: str | None = None
    #: How long a store operation retries a dropped PostgreSQL connection.
    store_retry_s: float = 600.0


@dataclass
class ItemResult:
    """What one finished item did on its node."""

    key: str
    rows_added: int
    pending: int
    host: str
    node_id: str
    pid: int
    cores: tuple[int, ...]
    seconds: float
    #: Times the item's store connection was retried (a dropped PostgreSQL server).
    store_retries: int = 0


@dataclass
class FleetReport:
    """The outcome of :func:`run_fleet`."""

    items: int
    results: list[ItemResult]
    failed: dict[str, str]
    resubmitted: int
    seconds: float
    profiles: dict[str, float]
    dashboard_url: str | None = None

    @property
    def rows_added(self) -> int:
        """Rows the items added to the store."""
        return sum(r.rows_added for r in self.results)


# ----------------------------------------------------------------------------- node side


def _pin_process(cores: Sequence[int]) -> None:
    """Pin every thread of this process to ``cores``."""
    try:
        tids = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        tids = [0]
    for tid in tids:
        with suppress(OSError):  # a thread that ended meanwhile
            os.sched_setaffinity(tid, cores)


def _reap_orphans(cores: Sequence[int]) -> int:
    """SIGKILL harness workers that a dead holder left on ``cores``; returns how many.

    Called with the cores' locks held: a worker whose marker names one of them belongs
    to a holder that is gone (a live holder would still hold the lock).
    """
    mine = set(cores)
    prefix = f"{SLOT_ENV}=".encode()
    killed = 0
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            env = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        marks = [e[len(prefix) :] for e in env.split(b"\0") if e.startswith(prefix)]
        try:
            theirs = {int(c) for m in marks for c in m.decode().split(",") if c}
        except ValueError:
            continue
        if theirs & mine:
            with suppress(OSError):
                os.killpg(int(entry), signal.SIGKILL)
            with suppress(OSError):
                os.kill(int(entry), signal.SIGKILL)
            killed += 1
    return killed


@contextmanager
def _slot(
    slots: int, lock_dir: Path | None = None, wait_s: float = 600.0
) -> Iterator[tuple[str, tuple[int, ...]]]:
    """Hold a free measurement slot of this node: yields ``(marker, cores)``.

    A slot is held by an exclusive ``flock`` on each of its cores' lock files (one file
    per core of the machine), taken all or none; so two holders never share a core,
    whatever slot counts they were started with. ``marker`` (the cores, ``"2,3"``) goes
    into the environment of the holder's harness workers.
    """
    folder = lock_dir or Path(tempfile.gettempdir()) / "graphrec-fleet-cores"
    folder.mkdir(parents=True, exist_ok=True)
    allowed = _allowed_cores()
    slots = min(slots, len(allowed))
    deadline = time.monotonic() + wait_s
    while True:
        for index in range(slots):
            cores = slot_cores(allowed, slots, index)
            held = []
            for core in cores:
                fh = (folder / f"core-{core}.lock").open("a")
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    fh.close()
                    break
                held.append(fh)
            if len(held) < len(cores):
                for fh in held:
                    fh.close()  # (closing the file releases its lock)
                continue
            try:
                _reap_orphans(cores)
                yield ",".join(str(c) for c in cores), cores
            finally:
                for fh in held:
                    fh.close()
            return
        # (Ray admits at most `slots` items per node, so a slot frees within moments:
        # a dead holder's locks are released by the kernel)
        if time.monotonic() > deadline:
            raise FleetError(f"no free measurement slot among {slots} on {socket.gethostname()}")
        time.sleep(0.2)


def _node_slots(resource: str) -> int:
    """How many units of ``resource`` this Ray node offers (1 outside Ray)."""
    try:
        import ray

        node_id = ray.get_runtime_context().get_node_id()
        for node in ray.nodes():
            if node.get("NodeID") == node_id:
                return max(1, int(node.get("Resources", {}).get(resource, 1)))
    except Exception:  # not in a Ray worker (a direct call): one slot
        return 1
    return 1


def _model_file(model: ModelRef, payload: bytes | None, cache_dir: Path) -> Path:
    """A model on this node: its path when that file has the model's content, else a
    copy of the shipped bytes in the cache."""
    path = Path(model.path)
    if path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == model.sha256:
        return path
    if payload is None:
        raise FleetError(f"{model.path}: not on node {socket.gethostname()} (and not shipped)")
    local = cache_dir / "fleet-models" / model.sha256[:16] / path.name
    if not local.is_file():
        local.parent.mkdir(parents=True, exist_ok=True)
        tmp = local.with_name(local.name + f".{os.getpid()}.tmp")
        tmp.write_bytes(payload)
        tmp.replace(local)
    return local


def measure_item(
    item: WorkItem,
    store: str,
    settings: FleetSettings,
    *payloads: bytes | None,
    slots: int | None = None,
) -> ItemResult:
    """Measure one work item on this node, into ``store`` (the body of a Ray task).

    Takes a free measurement slot, pins to its cores and runs the harness on the
    item's models with ``resume=True`` (stored keys are skipped).

    Args:
        item: The work item.
        store: Store location every node reaches (a PostgreSQL URL for a fleet).
        settings: What to measure and how.
        *payloads: The model files' bytes, in the item's order, used where the node
            lacks a file (none: every node has the files).
        slots: Measurement slots of this node (default: its units of the item's
            device resource).

    Raises:
        FleetError: The node is not of the item's device profile, or lacks the model.
    """
    from graphrec.bench.harness import default_cache_dir, run_campaign
    from graphrec.device import DeviceProfile

    t0 = time.monotonic()
    device = DeviceProfile.detect()
    if device.device_id != item.device_id:
        raise FleetError(
            f"node {socket.gethostname()} is device {device.device_id}, not "
            f"{item.device_id}: it offers the wrong {DEVICE_RESOURCE_PREFIX}* resource"
        )
    cache = Path(settings.cache_dir) if settings.cache_dir else default_cache_dir()
    files = [
        _model_file(m, payloads[i] if i < len(payloads) else None, cache)
        for i, m in enumerate(item.models)
    ]
    n_slots = slots if slots is not None else _node_slots(device_resource(item.device_id))
    before = sorted(os.sched_getaffinity(0))
    pending: list[int] = []
    with _slot(n_slots) as (marker, cores):
        _pin_process(cores)
        try:
            options: dict[str, Any] = {}
            if is_postgres_url(store):
                options.update(retry_s=settings.store_retry_s, wait=True)
            with ResultStore(store, **options) as results:
                rows = run_campaign(
                    files,
                    store=results,
                    device=device,
                    runtimes=settings.runtimes,
                    patterns=settings.patterns,
                    threads=settings.threads,
                    repeat=item.repeat,
                    max_rounds=max(item.repeat, settings.max_rounds or item.repeat),
                    config=settings.config,
                    cache_dir=cache,
                    resume=True,
                    worker_env={SLOT_ENV: marker},
                    on_plan=pending.append,
                )
                retries = int(getattr(results, "reconnects", 0))
        finally:
            _pin_process(before)
    return ItemResult(
        key=item.key,
        rows_added=len(rows),
        pending=sum(pending),
        host=socket.gethostname(),
        node_id=_node_id(),
        pid=os.getpid(),
        cores=cores,
        seconds=time.monotonic() - t0,
        store_retries=retries,
    )


def _node_id() -> str:
    try:
        import ray

        return str(ray.get_runtime_context().get_node_id())
    except Exception:
        return ""


# ----------------------------------------------------------------------------- driver


def cluster_profiles() -> dict[str, float]:
    """Device profiles the connected Ray cluster offers: ``{device_id: slots}``."""
    import ray

    return {
        name[len(DEVICE_RESOURCE_PREFIX) :]: float(total)
        for name, total in ray.cluster_resources().items()
        if name.startswith(DEVICE_RESOURCE_PREFIX)
    }


@dataclass
class Connection:
    """A connection made by :func:`connect`."""

    started: bool
    dashboard_url: str | None


def connect(address: str, *, slots: int | None = None, cores_per_slot: int = 1) -> Connection:
    """Connect to a Ray cluster.

    ``address`` is a Ray address (``ray://host:10001``, ``host:6379``), or ``auto``: the
    cluster running on this machine if there is one, else a new local cluster whose
    node offers this machine's device resource (:func:`node_resources`).

    Raises:
        FleetError: No cluster answers at ``address``.
    """
    import ray

    if ray.is_initialized():
        return Connection(False, None)
    started = False
    try:
        if address == "auto":
            try:
                ctx = ray.init(address="auto")
            except ConnectionError:
                resources = node_resources(slots, cores_per_slot=cores_per_slot)
                ctx = ray.init(num_cpus=len(_allowed_cores()), resources=resources)
                started = True
        else:
            ctx = ray.init(address=address)
    except ConnectionError as exc:
        raise FleetError(f"no Ray cluster at {address} ({exc})") from None
    url = getattr(ctx, "dashboard_url", None)
    if url and not str(url).startswith("http"):
        url = f"http://{url}"
    return Connection(started, url or None)


#: A model to measure: a path (file or folder), or ``(path, rounds)``.
ModelArg = str | Path | tuple[str | Path, int]


def plan_items(
    models: Sequence[ModelArg], profiles: Sequence[str], repeat: int = 1, batch: int = 1
) -> list[WorkItem]:
    """Work items: every model (folders expanded) on every device profile, ``batch``
    models of the same rounds per item (in the given order).

    A model given as ``(path, rounds)`` gets that many rounds instead of ``repeat``.

    Raises:
        FleetError: ``batch`` < 1.
    """
    from graphrec.bench.harness import discover_models

    if batch < 1:
        raise FleetError(f"batch must be >= 1, got {batch}")
    by_rounds: dict[int, list[ModelRef]] = {}
    seen: set[str] = set()
    for m in models:
        target, rounds = m if isinstance(m, tuple) else (m, repeat)
        for path in discover_models([target]):
            sha = hashlib.sha256(path.read_bytes()).hexdigest()
            if sha in seen:
                continue
            seen.add(sha)
            by_rounds.setdefault(rounds, []).append(ModelRef(str(path.resolve()), sha, path.stem))
    items: list[WorkItem] = []
    for rounds, refs in by_rounds.items():
        for i in range(0, len(refs), batch):
            for dev in profiles:
                items.append(WorkItem(tuple(refs[i : i + batch]), dev, rounds))
    return items


def run_fleet(
    models: Sequence[ModelArg],
    *,
    store: str,
    settings: FleetSettings | None = None,
    address: str | None = None,
    profiles: Sequence[str] | None = None,
    batch: int = 1,
    item_retries: int = 2,
    task_retries: int = 3,
    ship_models: bool = True,
    progress: bool = True,
    on_result: Callable[[ItemResult], None] | None = None,
) -> FleetReport:
    """Measure ``models`` on every device profile of a Ray cluster, into ``store``.

    Args:
        models: ONNX files or folders, or ``(path, rounds)`` pairs.
        store: A store every node reaches: a PostgreSQL URL, or a SQLite path when
            the cluster is this machine only.
        settings: What to measure and how (defaults: :class:`FleetSettings`).
        address: Connect first (see :func:`connect`); ``None`` uses the connected
            cluster (``ray.init`` already called).
        profiles: Device profiles to measure on (default: every one the cluster offers).
        batch: Models per work item (one harness call, sharing its worker processes:
            fewer worker starts, coarser spreading).
        item_retries: Resubmissions of an item whose task failed (after Ray's own
            retries), queued after the other items.
        task_retries: Ray's retries of a task whose worker or node died.
        ship_models: Put each model's bytes in the object store, for nodes that lack
            the file.
        progress: Show a progress bar on stderr.
        on_result: Called with each finished item.

    Returns:
        Counts, per-item results and failures.

    Raises:
        FleetError: No cluster, no node offering a device resource, or a SQLite store
            with nodes on other machines.
    """
    import ray

    cfg = settings or FleetSettings()
    conn = connect(address) if address is not None else Connection(False, None)
    if not ray.is_initialized():
        raise FleetError("not connected to a Ray cluster (pass address, or call ray.init)")
    try:
        return _drive(
            models, store, cfg, profiles, batch, item_retries, task_retries, ship_models, progress,
            on_result, conn.dashboard_url,
        )  # fmt: skip
    finally:
        if conn.started:
            ray.shutdown()


def _drive(
    models: Sequence[ModelArg],
    store: str,
    cfg: FleetSettings,
    profiles: Sequence[str] | None,
    batch: int,
    item_retries: int,
    task_retries: int,
    ship_models: bool,
    progress: bool,
    on_result: Callable[[ItemResult], None] | None,
    dashboard: str | None,
) -> FleetReport:
    import ray
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    t0 = time.monotonic()
    offered = cluster_profiles()
    if not offered:
        raise FleetError(
            "no node of the Ray cluster offers a graphrec device resource; start each node "
            'with: ray start ... --resources "$(graphrec campaign node-resources)"'
        )
    chosen = list(profiles) if profiles is not None else sorted(offered)
    missing = [p for p in chosen if p not in offered]
    if missing:
        raise FleetError(f"no node offers device profile(s) {missing}; offered: {sorted(offered)}")
    if not is_postgres_url(store):
        hosts = {n.get("NodeManagerAddress") for n in ray.nodes() if n.get("Alive")}
        if len(hosts) > 1:
            raise FleetError(
                f"{store}: a SQLite store is reachable only on this machine, and the cluster "
                f"has {len(hosts)} hosts; use a PostgreSQL store (--store postgresql://...)"
            )
    # Create (or migrate) the store once, before any task opens it; a bad URL fails here.
    ResultStore(store).close()
    items = plan_items(models, chosen, cfg.repeat, batch)
    payloads: dict[str, Any] = {}
    if ship_models:
        for it in items:
            for m in it.models:
                if m.sha256 not in payloads:
                    payloads[m.sha256] = ray.put(Path(m.path).read_bytes())
    task: Any = ray.remote(num_cpus=0, max_retries=task_retries)(measure_item)

    def submit(it: WorkItem) -> Any:
        return task.options(
            resources={device_resource(it.device_id): 1}, name=f"measure {it.key}"
        ).remote(it, store, cfg, *(payloads[m.sha256] for m in it.models if ship_models))

    refs: dict[Any, WorkItem] = {submit(it): it for it in items}
    attempts: Counter[str] = Counter()
    results: list[ItemResult] = []
    failed: dict[str, str] = {}
    resubmitted = 0
    rows = 0
    per_host: Counter[str] = Counter()
    console = Console(stderr=True)
    if dashboard and progress:
        console.print(f"Ray dashboard: {dashboard}")
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=console,
        disable=not progress,
    )
    with bar:
        task_id = bar.add_task(
            f"fleet: {len(items)} items on {len(chosen)} profile(s)",
            total=len(items),
            detail="",
        )
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1, timeout=1.0)
            for ref in ready:
                it = refs.pop(ref)
                try:
                    res = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    attempts[it.key] += 1
                    if attempts[it.key] <= item_retries:
                        resubmitted += 1
                        refs[submit(it)] = it
                        continue
                    failed[it.key] = _short(exc)
                    bar.advance(task_id)
                    continue
                results.append(res)
                rows += res.rows_added
                per_host[res.host] += 1
                bar.advance(task_id)
                if on_result is not None:
                    on_result(res)
            by_host = ", ".join(f"{h} {n}" for h, n in sorted(per_host.items()))
            bar.update(
                task_id,
                detail=f"{rows} rows added; {len(failed)} failed; items by host: {by_host}",
            )
    return FleetReport(
        items=len(items),
        results=results,
        failed=failed,
        resubmitted=resubmitted,
        seconds=time.monotonic() - t0,
        profiles={p: offered[p] for p in chosen},
        dashboard_url=dashboard,
    )


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[-400:] if len(text) > 400 else text


def describe(store: str, report: FleetReport) -> str:
    """A one-paragraph summary of a fleet run."""
    statuses = Counter(r.host for r in report.results)
    return (
        f"{len(report.results)}/{report.items} items measured in {report.seconds:.0f} s, "
        f"{report.rows_added} rows added to {display_location(store)}; "
        f"{len(report.failed)} failed, {report.resubmitted} resubmitted; "
        f"by host {dict(statuses)}"
    )


def settings_from(args: Any, config: MeasureConfig) -> FleetSettings:
    """:class:`FleetSettings` from ``campaign run`` arguments."""
    return FleetSettings(
        runtimes=getattr(args, "runtimes", None),
        patterns=getattr(args, "candidates", None),
        threads=tuple(getattr(args, "threads", (1, 2))),
        repeat=int(getattr(args, "repeat", 1)),
        max_rounds=getattr(args, "max_rounds", None),
        config=config,
        cache_dir=getattr(args, "cache_dir", None),
    )
