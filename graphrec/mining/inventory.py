"""The result of a scan: models, framework libraries, packages and issues.

Everything is plain data (dataclasses of str / int / dict) so an
:class:`Inventory` round-trips through JSON and flattens into SQLite, CSV or
Parquet rows.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from graphrec.errors import InventoryFormatError

__all__ = [
    "Aggregate",
    "Inventory",
    "LibraryFinding",
    "ModelFinding",
    "PackageFinding",
    "ScanIssue",
    "ScanStats",
    "location_str",
]

SIZE_BUCKETS: tuple[tuple[str, int], ...] = (
    ("<100 KB", 100_000),
    ("100 KB-1 MB", 1_000_000),
    ("1-10 MB", 10_000_000),
    ("10-100 MB", 100_000_000),
    (">=100 MB", 1 << 62),
)


def location_str(location: Iterable[str]) -> str:
    """Render an archive chain as ``outer.apk!/assets/inner.zip!/model.tflite``."""
    return "!/".join(location)


@dataclass
class ModelFinding:
    """A model file (or a suspected one) found by content.

    Attributes:
        app: The scanned app / package / folder the model belongs to.
        location: Archive chain, outermost first (file on disk, member, member ...).
        format: Format id (see :data:`graphrec.mining.formats.FORMATS`), ``"unknown"``
            for an opaque suspected blob.
        size_bytes: Size of the model file.
        sha256: Hex digest of the content (``None`` when the file was too big to hash).
        suspected: True when only the name or the entropy points at a model.
        reason: How it was recognised.
        details: Cheap facts: operators, tensors, versions, FLOPs when analysed.
    """

    app: str
    location: tuple[str, ...]
    format: str
    size_bytes: int
    sha256: str | None
    suspected: bool
    reason: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> str:
        """The location as one string."""
        return location_str(self.location)


@dataclass
class LibraryFinding:
    """A native library that belongs to (or contains) an inference framework.

    Attributes:
        app: The scanned app / package / folder.
        location: Archive chain of the library.
        framework: Framework id (see :data:`graphrec.mining.frameworks.FRAMEWORKS`).
        abi: ``arm64-v8a``, ``armeabi-v7a``, ``x86_64`` ... (``None`` if unknown).
        size_bytes: Library size.
        evidence: ``"file name"`` or ``"marker <string>"`` (statically linked).
    """

    app: str
    location: tuple[str, ...]
    framework: str
    abi: str | None
    size_bytes: int
    evidence: str

    @property
    def path(self) -> str:
        """The location as one string."""
        return location_str(self.location)


@dataclass
class PackageFinding:
    """A Python package of an inference framework (vendored, in a wheel, or required).

    Attributes:
        app: The scanned app / package / folder.
        location: Where the evidence was seen.
        package: Distribution or import name.
        framework: Framework id.
        version: Version when known.
        evidence: ``"package folder"``, ``"dist-info"``, ``"Requires-Dist"`` or ``"wheel name"``.
    """

    app: str
    location: tuple[str, ...]
    package: str
    framework: str
    version: str | None
    evidence: str

    @property
    def path(self) -> str:
        """The location as one string."""
        return location_str(self.location)


@dataclass
class ScanIssue:
    """Something hostile, broken or over a limit, recorded instead of raised.

    Attributes:
        app: The scanned app / package / folder.
        location: Where it happened.
        kind: ``compression-ratio``, ``expanded-size-limit``, ``nesting-depth``,
            ``member-count``, ``path-traversal``, ``symlink``, ``hardlink``,
            ``special-file``, ``corrupt-archive``, ``corrupt-member``,
            ``encrypted-entry``, ``huge-file``, ``unreadable``, ``analysis-error``.
        detail: Human-readable detail.
    """

    app: str
    location: tuple[str, ...]
    kind: str
    detail: str

    @property
    def path(self) -> str:
        """The location as one string."""
        return location_str(self.location)


@dataclass
class ScanStats:
    """Counters of one scan."""

    files: int = 0
    archives: int = 0
    bytes_on_disk: int = 0
    bytes_read: int = 0
    elapsed_s: float = 0.0


@dataclass
class Aggregate:
    """Cross-app statistics, like the seed's trend analysis.

    Attributes:
        apps: Number of scanned apps.
        apps_with_models: Apps holding at least one (non-suspected) model.
        apps_with_frameworks: Apps shipping at least one framework.
        framework_apps: Framework id -> number of apps using it.
        framework_abis: Framework id -> ABI -> number of apps.
        format_models: Format id -> number of models.
        format_apps: Format id -> number of apps.
        size_buckets: Size bucket label -> number of models.
        size_stats: ``min`` / ``median`` / ``max`` / ``total`` model bytes.
        shared_models: Models found (by sha256) in more than one app.
        suspected: Number of suspected model blobs.
        issues: Issue kind -> count.
    """

    apps: int
    apps_with_models: int
    apps_with_frameworks: int
    framework_apps: dict[str, int]
    framework_abis: dict[str, dict[str, int]]
    format_models: dict[str, int]
    format_apps: dict[str, int]
    size_buckets: dict[str, int]
    size_stats: dict[str, int]
    shared_models: list[dict[str, Any]]
    suspected: int
    issues: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict."""
        return asdict(self)


@dataclass
class Inventory:
    """Everything one scan found.

    Attributes:
        roots: The paths that were scanned.
        apps: The apps (archives on disk, or scanned folders) in scan order.
        models: Model findings.
        libraries: Framework library findings.
        packages: Framework package findings.
        issues: Recorded problems (bombs, traversal, corrupt members ...).
        stats: Counters (files, archives, bytes read, seconds).

    Example:
        >>> from graphrec.mining import scan
        >>> inv = scan(["app.apk"])  # doctest: +SKIP
        >>> [m.format for m in inv.models]  # doctest: +SKIP
        ['tflite', 'onnx']
    """

    roots: list[str] = field(default_factory=list)
    apps: list[str] = field(default_factory=list)
    models: list[ModelFinding] = field(default_factory=list)
    libraries: list[LibraryFinding] = field(default_factory=list)
    packages: list[PackageFinding] = field(default_factory=list)
    issues: list[ScanIssue] = field(default_factory=list)
    stats: ScanStats = field(default_factory=ScanStats)

    # -- queries -------------------------------------------------------------------------

    def frameworks(self) -> dict[str, dict[str, set[str]]]:
        """App -> framework id -> set of ABIs (``"python"`` for packages, ``"?"`` unknown)."""
        out: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        for lib in self.libraries:
            out[lib.app][lib.framework].add(lib.abi or "?")
        for pkg in self.packages:
            out[pkg.app][pkg.framework].add("python")
        return {app: dict(fws) for app, fws in out.items()}

    def aggregate(self) -> Aggregate:
        """Cross-app statistics (framework share, format share, sizes, shared models)."""
        real = [m for m in self.models if not m.suspected]
        fw = self.frameworks()
        framework_apps: Counter[str] = Counter()
        framework_abis: dict[str, Counter[str]] = defaultdict(Counter)
        for per_app in fw.values():
            for fid, abis in per_app.items():
                framework_apps[fid] += 1
                for abi in abis:
                    framework_abis[fid][abi] += 1
        format_apps: Counter[str] = Counter()
        for fmt, app in {(m.format, m.app) for m in real}:
            format_apps[fmt] += 1
            del app
        buckets = dict.fromkeys((label for label, _ in SIZE_BUCKETS), 0)
        for m in real:
            for label, bound in SIZE_BUCKETS:
                if m.size_bytes < bound:
                    buckets[label] += 1
                    break
        sizes = sorted(m.size_bytes for m in real)
        size_stats = (
            {
                "min": sizes[0],
                "median": int(statistics.median(sizes)),
                "max": sizes[-1],
                "total": sum(sizes),
            }
            if sizes
            else {}
        )
        by_hash: dict[str, list[ModelFinding]] = defaultdict(list)
        for m in real:
            if m.sha256:
                by_hash[m.sha256].append(m)
        shared: list[dict[str, Any]] = []
        for digest, found in by_hash.items():
            apps = sorted({m.app for m in found})
            if len(apps) > 1:
                shared.append(
                    {
                        "sha256": digest,
                        "format": found[0].format,
                        "size_bytes": found[0].size_bytes,
                        "apps": apps,
                        "names": sorted({m.location[-1] for m in found}),
                    }
                )
        shared.sort(key=lambda s: (-len(s["apps"]), -int(s["size_bytes"])))
        return Aggregate(
            apps=len(self.apps),
            apps_with_models=len({m.app for m in real}),
            apps_with_frameworks=len(fw),
            framework_apps=dict(framework_apps.most_common()),
            framework_abis={k: dict(v) for k, v in framework_abis.items()},
            format_models=dict(Counter(m.format for m in real).most_common()),
            format_apps=dict(format_apps.most_common()),
            size_buckets=buckets,
            size_stats=size_stats,
            shared_models=shared,
            suspected=sum(1 for m in self.models if m.suspected),
            issues=dict(Counter(i.kind for i in self.issues).most_common()),
        )

    # -- serialisation -------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (locations become lists)."""
        return {
            "schema": "graphrec.mining.inventory/1",
            "roots": list(self.roots),
            "apps": list(self.apps),
            "models": [asdict(m) for m in self.models],
            "libraries": [asdict(x) for x in self.libraries],
            "packages": [asdict(x) for x in self.packages],
            "issues": [asdict(x) for x in self.issues],
            "stats": asdict(self.stats),
            "aggregate": self.aggregate().to_dict(),
        }

    def to_json(self, indent: int | None = 2) -> str:
        """Serialise to JSON text."""
        return json.dumps(self.to_dict(), indent=indent, default=str)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str | Path | None = None) -> Inventory:
        """Rebuild an inventory from :meth:`to_dict` output.

        Raises:
            InventoryFormatError: The data is not an inventory.
        """
        if not isinstance(data, dict) or data.get("schema") != "graphrec.mining.inventory/1":
            raise InventoryFormatError(source, "not a graphrec inventory (missing schema tag)")
        try:

            def loc(d: dict[str, Any]) -> dict[str, Any]:
                return {**d, "location": tuple(d["location"])}

            return cls(
                roots=list(data["roots"]),
                apps=list(data["apps"]),
                models=[ModelFinding(**loc(d)) for d in data["models"]],
                libraries=[LibraryFinding(**loc(d)) for d in data["libraries"]],
                packages=[PackageFinding(**loc(d)) for d in data["packages"]],
                issues=[ScanIssue(**loc(d)) for d in data["issues"]],
                stats=ScanStats(**data["stats"]),
            )
        except (KeyError, TypeError) as exc:
            raise InventoryFormatError(source, f"malformed inventory: {exc}") from exc

    @classmethod
    def load_json(cls, path: str | Path) -> Inventory:
        """Read an inventory saved with ``graphrec mine --json`` / ``--out x.json``.

        Raises:
            InventoryFormatError: Unreadable or not an inventory.
        """
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InventoryFormatError(path, f"cannot read inventory JSON: {exc}") from exc
        return cls.from_dict(data, path)

    def merge(self, other: Inventory) -> Inventory:
        """Return a new inventory holding the findings of both (for reports over several scans)."""
        return Inventory(
            roots=self.roots + other.roots,
            apps=self.apps + [a for a in other.apps if a not in self.apps],
            models=self.models + other.models,
            libraries=self.libraries + other.libraries,
            packages=self.packages + other.packages,
            issues=self.issues + other.issues,
            stats=ScanStats(
                files=self.stats.files + other.stats.files,
                archives=self.stats.archives + other.stats.archives,
                bytes_on_disk=self.stats.bytes_on_disk + other.stats.bytes_on_disk,
                bytes_read=self.stats.bytes_read + other.stats.bytes_read,
                elapsed_s=self.stats.elapsed_s + other.stats.elapsed_s,
            ),
        )
