"""Serving workloads: applications with model variants, heterogeneous servers, arrivals.

A workload file (YAML or JSON) describes what :mod:`graphrec.serving` schedules:

.. code-block:: yaml

    name: two-apps
    accuracy_source: "held-out accuracy of digits MLPs (graphrec.serving.accuracy)"
    apps:
      vision:
        share: 0.6                   # fraction of the tasks
        deadline_ms: [15, 60]        # relative deadline, drawn uniformly
        time_sensitivity: [0.2, 1.0]
        accuracy_sensitivity: [0.2, 1.0]
        default_variant: medium      # what the fixed-variant baselines run
        variants:
          - {name: small, model: resnet-s6, accuracy: 0.80}
    servers:
      - {name: a, candidate: onnxruntime/cpu/fp32/opt=all/threads=1, slowdown: 1.0}
    arrivals: {process: poisson, load: 1.0, tasks: 400}
    events:
      - {at_ms: 3000, server: a, kind: fail}

Latencies are never written in the file: each (variant, server) pair is looked up in
graphrec's measured dataset (see :mod:`graphrec.serving.latency`).

Example:
    >>> from graphrec.serving.workload import load_workload
    >>> wl = load_workload("examples/workloads/two_apps.yaml")  # doctest: +SKIP
    >>> [s.name for s in wl.servers]  # doctest: +SKIP
    ['fast', 'medium', 'slow']
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from graphrec.errors import GraphRecError

__all__ = [
    "ARRIVAL_PROCESSES",
    "App",
    "Arrivals",
    "Server",
    "ServerEvent",
    "Variant",
    "Workload",
    "WorkloadError",
    "load_workload",
    "parse_workload",
]

#: Arrival processes the generator knows.
ARRIVAL_PROCESSES: tuple[str, ...] = ("poisson", "bursty", "diurnal")
_EVENT_KINDS: tuple[str, ...] = ("fail", "slowdown")


class WorkloadError(GraphRecError, ValueError):
    """A workload file is missing, malformed or asks for something impossible.

    Attributes:
        path: The workload file (or ``"<dict>"``).
        reason: What was wrong, in words.
    """

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


@dataclass(frozen=True)
class Variant:
    """One model variant of an application.

    Attributes:
        name: Short name inside the application (``small``, ``large``...).
        model: Zoo model id whose measured latency the variant has (``resnet-s6``).
        accuracy: The variant's accuracy in [0, 1] (see the workload's ``accuracy_source``).
    """

    name: str
    model: str
    accuracy: float


@dataclass(frozen=True)
class App:
    """An application: a family of variants and the ranges its tasks are drawn from.

    Attributes:
        name: Application name.
        variants: Its variants, in the order the file lists them.
        share: Fraction of all tasks that belong to this application.
        deadline_ms: (low, high) of the relative deadline, drawn uniformly.
        time_sensitivity: (low, high) of the weight of being on time.
        accuracy_sensitivity: (low, high) of the weight of accuracy.
        default_variant: Index of the variant the fixed-variant baselines run.
        accuracy_floor: Accuracy the INFaaS-style policy asks for (default: the default
            variant's).
    """

    name: str
    variants: tuple[Variant, ...]
    share: float
    deadline_ms: tuple[float, float]
    time_sensitivity: tuple[float, float]
    accuracy_sensitivity: tuple[float, float]
    default_variant: int
    accuracy_floor: float


@dataclass(frozen=True)
class Server:
    """A server: a deployment candidate on the measured device, slowed down by a factor.

    Attributes:
        name: Server name.
        candidate: graphrec deployment candidate id whose measurements give the latency.
        slowdown: Multiplies every measured latency (an older or busier machine).
        hosts: ``app/variant`` pairs the server hosts.
    """

    name: str
    candidate: str
    slowdown: float
    hosts: frozenset[tuple[str, str]]


@dataclass(frozen=True)
class ServerEvent:
    """Something that happens to a server mid-run.

    Attributes:
        at_ms: When, from the start of the run.
        server: Index of the server.
        kind: ``fail`` (the server dies) or ``slowdown`` (its latency is multiplied).
        factor: The slowdown factor (``slowdown`` only).
    """

    at_ms: float
    server: int
    kind: str
    factor: float = 1.0


@dataclass(frozen=True)
class Arrivals:
    """How tasks arrive.

    Attributes:
        process: ``poisson``, ``bursty`` (on/off phases) or ``diurnal`` (sinusoidal rate).
        load: Offered load as a fraction of the cluster's capacity with default variants.
        tasks: How many tasks one run generates.
        burst_factor: Rate in an on phase over the mean rate (``bursty``).
        burst_fraction: Fraction of time spent in on phases (``bursty``).
        phase_ms: Mean length of an on+off cycle (``bursty``).
        period_ms: Period of the rate's cycle (``diurnal``).
        amplitude: Relative amplitude of the rate's cycle, in [0, 1) (``diurnal``).
    """

    process: str = "poisson"
    load: float = 1.0
    tasks: int = 400
    burst_factor: float = 3.0
    burst_fraction: float = 0.25
    phase_ms: float = 400.0
    period_ms: float = 4000.0
    amplitude: float = 0.6


@dataclass(frozen=True)
class Workload:
    """A parsed, validated workload.

    Attributes:
        name: Workload name.
        apps: Applications.
        servers: Servers.
        arrivals: Arrival process.
        events: Server events, sorted by time.
        accuracy_source: Where the variants' accuracy figures come from, in words.
        source: The file it was read from.
    """

    name: str
    apps: tuple[App, ...]
    servers: tuple[Server, ...]
    arrivals: Arrivals
    events: tuple[ServerEvent, ...] = ()
    accuracy_source: str = ""
    source: str = "<dict>"

    def with_arrivals(self, **changes: Any) -> Workload:
        """A copy with some arrival settings changed (``load=1.2``, ``tasks=50``...)."""
        return replace(self, arrivals=replace(self.arrivals, **changes))

    def without_events(self) -> Workload:
        """A copy with no server events."""
        return replace(self, events=())

    def app_index(self, name: str) -> int:
        """Index of the application called ``name``."""
        for i, app in enumerate(self.apps):
            if app.name == name:
                return i
        raise KeyError(name)


def _range(where: str, value: Any, *, low: float = 0.0) -> tuple[float, float]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        pair = (float(value), float(value))
    elif (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    ):
        pair = (float(value[0]), float(value[1]))
    else:
        raise ValueError(f"{where} must be a number or a [low, high] pair, got {value!r}")
    if pair[0] > pair[1] or pair[0] < low:
        raise ValueError(f"{where} must satisfy {low} <= low <= high, got {list(pair)}")
    return pair


def _need(where: str, mapping: Any, key: str) -> Any:
    if not isinstance(mapping, dict):
        raise ValueError(f"{where} must be a mapping, got {type(mapping).__name__}")
    if key not in mapping:
        raise ValueError(f"{where} has no '{key}' field")
    return mapping[key]


def _number(
    where: str, value: Any, *, low: float | None = None, high: float | None = None
) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise ValueError(f"{where} must be a number, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{where} must lie in [{low}, {high}], got {value}")
    return float(value)


def _parse_app(name: str, spec: Any) -> App:
    where = f"apps.{name}"
    raw_variants = _need(where, spec, "variants")
    if not isinstance(raw_variants, list) or not raw_variants:
        raise ValueError(f"{where}.variants must be a non-empty list")
    variants = []
    for k, raw in enumerate(raw_variants):
        vw = f"{where}.variants[{k}]"
        variants.append(
            Variant(
                name=str(_need(vw, raw, "name")),
                model=str(_need(vw, raw, "model")),
                accuracy=_number(f"{vw}.accuracy", _need(vw, raw, "accuracy"), low=0, high=1),
            )
        )
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise ValueError(f"{where}.variants has repeated names: {names}")
    default_name = spec.get("default_variant", names[len(names) // 2])
    if default_name not in names:
        raise ValueError(f"{where}.default_variant {default_name!r} is not one of {names}")
    default = names.index(default_name)
    floor = _number(
        f"{where}.accuracy_floor",
        spec.get("accuracy_floor", variants[default].accuracy),
        low=0,
        high=1,
    )
    return App(
        name=name,
        variants=tuple(variants),
        share=_number(f"{where}.share", spec.get("share", 1.0), low=0),
        deadline_ms=_range(f"{where}.deadline_ms", _need(where, spec, "deadline_ms"), low=1e-9),
        time_sensitivity=_range(f"{where}.time_sensitivity", spec.get("time_sensitivity", 1.0)),
        accuracy_sensitivity=_range(
            f"{where}.accuracy_sensitivity", spec.get("accuracy_sensitivity", 1.0)
        ),
        default_variant=default,
        accuracy_floor=floor,
    )


def _parse_server(k: int, spec: Any, apps: tuple[App, ...]) -> Server:
    where = f"servers[{k}]"
    name = str(_need(where, spec, "name"))
    where = f"servers[{k}] ({name})"
    candidate = str(_need(where, spec, "candidate"))
    slowdown = _number(f"{where}.slowdown", spec.get("slowdown", 1.0), low=1e-6)
    by_name = {a.name: a for a in apps}
    raw_hosts = spec.get("hosts", sorted(by_name))
    if not isinstance(raw_hosts, list) or not raw_hosts:
        raise ValueError(f"{where}.hosts must be a non-empty list of 'app' or 'app/variant'")
    hosts: set[tuple[str, str]] = set()
    for item in raw_hosts:
        app_name, _, variant_name = str(item).partition("/")
        if app_name not in by_name:
            raise ValueError(
                f"{where}.hosts names unknown app {app_name!r}; apps: {sorted(by_name)}"
            )
        app = by_name[app_name]
        if not variant_name:
            hosts.update((app_name, v.name) for v in app.variants)
        elif variant_name in {v.name for v in app.variants}:
            hosts.add((app_name, variant_name))
        else:
            raise ValueError(
                f"{where}.hosts names unknown variant {item!r}; "
                f"variants of {app_name}: {[v.name for v in app.variants]}"
            )
    return Server(name=name, candidate=candidate, slowdown=slowdown, hosts=frozenset(hosts))


def _parse_arrivals(spec: Any) -> Arrivals:
    if spec is None:
        return Arrivals()
    if not isinstance(spec, dict):
        raise ValueError("arrivals must be a mapping")
    known = set(Arrivals.__dataclass_fields__)
    unknown = sorted(set(spec) - known)
    if unknown:
        raise ValueError(f"arrivals has unknown fields {unknown}; valid: {sorted(known)}")
    process = str(spec.get("process", "poisson"))
    if process not in ARRIVAL_PROCESSES:
        raise ValueError(f"arrivals.process {process!r} is not one of {list(ARRIVAL_PROCESSES)}")
    values: dict[str, Any] = {"process": process}
    for key in known - {"process"}:
        if key in spec:
            values[key] = _number(f"arrivals.{key}", spec[key], low=0)
    if "tasks" in values:
        values["tasks"] = int(values["tasks"])
        if values["tasks"] < 1:
            raise ValueError("arrivals.tasks must be at least 1")
    arrivals = Arrivals(**values)
    if arrivals.load <= 0:
        raise ValueError("arrivals.load must be positive")
    if not 0 <= arrivals.amplitude < 1:
        raise ValueError("arrivals.amplitude must lie in [0, 1)")
    if not 0 < arrivals.burst_fraction < 1 or arrivals.burst_factor * arrivals.burst_fraction > 1:
        raise ValueError(
            "arrivals.burst_fraction must lie in (0, 1) and burst_factor * burst_fraction <= 1 "
            "(the on phases cannot carry more than all the traffic)"
        )
    return arrivals


def _parse_events(spec: Any, servers: tuple[Server, ...]) -> tuple[ServerEvent, ...]:
    if spec is None:
        return ()
    if not isinstance(spec, list):
        raise ValueError("events must be a list")
    names = [s.name for s in servers]
    out = []
    for k, raw in enumerate(spec):
        where = f"events[{k}]"
        server = str(_need(where, raw, "server"))
        if server not in names:
            raise ValueError(f"{where}.server {server!r} is not one of {names}")
        kind = str(_need(where, raw, "kind"))
        if kind not in _EVENT_KINDS:
            raise ValueError(f"{where}.kind {kind!r} is not one of {list(_EVENT_KINDS)}")
        factor = 1.0
        if kind == "slowdown":
            factor = _number(f"{where}.factor", _need(where, raw, "factor"), low=1e-6)
        out.append(
            ServerEvent(
                at_ms=_number(f"{where}.at_ms", _need(where, raw, "at_ms"), low=0),
                server=names.index(server),
                kind=kind,
                factor=factor,
            )
        )
    return tuple(sorted(out, key=lambda e: e.at_ms))


def parse_workload(spec: Any, source: str | Path = "<dict>") -> Workload:
    """Validate a workload given as a mapping (what the YAML file holds).

    Args:
        spec: The mapping.
        source: Where it came from, named in errors.

    Raises:
        WorkloadError: A field is missing or invalid; the message names it.
    """
    try:
        raw_apps = _need("workload", spec, "apps")
        if not isinstance(raw_apps, dict) or not raw_apps:
            raise ValueError("apps must be a non-empty mapping of app name -> spec")
        apps = tuple(_parse_app(str(n), s) for n, s in raw_apps.items())
        if sum(a.share for a in apps) <= 0:
            raise ValueError("the apps' shares add up to zero")
        raw_servers = _need("workload", spec, "servers")
        if not isinstance(raw_servers, list) or not raw_servers:
            raise ValueError("servers must be a non-empty list")
        servers = tuple(_parse_server(k, s, apps) for k, s in enumerate(raw_servers))
        names = [s.name for s in servers]
        if len(set(names)) != len(names):
            raise ValueError(f"server names repeat: {names}")
        for app in apps:
            if app.share > 0 and not any(h[0] == app.name for s in servers for h in s.hosts):
                raise ValueError(f"no server hosts any variant of app {app.name!r}")
        return Workload(
            name=str(spec.get("name", Path(str(source)).stem)),
            apps=apps,
            servers=servers,
            arrivals=_parse_arrivals(spec.get("arrivals")),
            events=_parse_events(spec.get("events"), servers),
            accuracy_source=str(spec.get("accuracy_source", "")),
            source=str(source),
        )
    except ValueError as exc:
        if isinstance(exc, WorkloadError):
            raise
        raise WorkloadError(source, str(exc)) from None


def load_workload(path: str | Path) -> Workload:
    """Read and validate a workload file (``.yaml``, ``.yml`` or ``.json``).

    Raises:
        WorkloadError: The file is missing, unreadable, or a field is invalid.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise WorkloadError(path, f"cannot read the workload file ({exc.strerror})") from None
    try:
        if path.suffix == ".json":
            spec = json.loads(text)
        else:
            import yaml

            spec = yaml.safe_load(text)
    except Exception as exc:
        raise WorkloadError(path, f"not valid {path.suffix.lstrip('.') or 'YAML'}: {exc}") from None
    return parse_workload(spec, path)
