"""The model catalogue: real models, zoo architectures and user models, kept in SQLite.

The shipped sources (``graphrec/data/selection``: package metadata, zoo descriptions, the
kernel figures of the zoo models, and the real-model set's manifest when present) are
synchronised into a SQLite file in the user's cache on first use; models the user
registers (``graphrec select add``) live in the same file and survive re-synchronisation.
The file also caches each model's predicted latency per device and the text features of
each entry.

Example:
    >>> from graphrec.selection.catalogue import Catalogue
    >>> cat = Catalogue.open()  # doctest: +SKIP
    >>> len(cat.entries()), cat.entries()[0].task  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from graphrec.selection.errors import CatalogueError

__all__ = ["CATALOGUE_ENV", "Catalogue", "Entry", "LatencyRecord", "default_catalogue_path"]

#: Environment variable naming the catalogue SQLite file.
CATALOGUE_ENV = "GRAPHREC_SELECT_CATALOGUE"

_SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
    model_id TEXT PRIMARY KEY,
    package TEXT NOT NULL,
    version TEXT,
    task TEXT NOT NULL,
    format TEXT NOT NULL,
    description TEXT NOT NULL,
    readme TEXT NOT NULL DEFAULT '',
    sha256 TEXT,
    inputs TEXT NOT NULL DEFAULT '[]',
    outputs TEXT NOT NULL DEFAULT '[]',
    size_bytes INTEGER,
    flops REAL,
    params REAL,
    license TEXT,
    accuracy TEXT,
    source TEXT NOT NULL,
    weights TEXT,
    file_path TEXT,
    zoo_id TEXT
);
CREATE TABLE IF NOT EXISTS latency (
    model_id TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    device_id TEXT NOT NULL,
    artefact TEXT NOT NULL,
    latency_ms REAL NOT NULL,
    candidate_id TEXT NOT NULL,
    computed_at REAL NOT NULL,
    PRIMARY KEY (model_id, sha256, device_id, artefact)
);
CREATE TABLE IF NOT EXISTS features (
    key TEXT PRIMARY KEY,
    blob BLOB NOT NULL
);
"""

_COLUMNS = (
    "model_id",
    "package",
    "version",
    "task",
    "format",
    "description",
    "readme",
    "sha256",
    "inputs",
    "outputs",
    "size_bytes",
    "flops",
    "params",
    "license",
    "accuracy",
    "source",
    "weights",
    "file_path",
    "zoo_id",
)

#: Sources synchronised from the shipped data (user entries have source ``user``).
SHIPPED_SOURCES = ("package", "zoo", "real")


@dataclass
class Entry:
    """One catalogue entry.

    Attributes:
        model_id: Unique id (``package/name`` for package models, ``zoo/…`` for zoo ones).
        package: The PyPI package that ships or fetches the model (``user`` for yours).
        version: The package version the entry describes.
        task: A task of :data:`graphrec.selection.tasks.TASKS`.
        format: File format (onnx, tflite, pt, keras, …).
        description: One sentence on what the model does.
        readme: A longer paragraph (the package's README or summary in words).
        sha256: SHA-256 of the model file, when known.
        inputs: Input signature: ``[{"name", "shape", "dtype"}]`` (ONNX files only).
        outputs: Output signature, same form.
        size_bytes: File size, when known.
        flops: Forward FLOPs from graphrec's graph kernel (ONNX files only).
        params: Parameter count from the kernel.
        license: The license as its source states it (``None`` when unknown).
        accuracy: Accuracy as its source states it, in words (``None`` when none).
        source: ``package`` (metadata only), ``zoo``, ``real`` or ``user``.
        weights: For package entries: ``bundled`` in the wheel or fetched on ``first-use``.
        file_path: The local ONNX file, when there is one.
        zoo_id: The graphrec zoo model id the file is regenerated from (zoo entries).
    """

    model_id: str
    package: str
    version: str | None
    task: str
    format: str
    description: str
    readme: str = ""
    sha256: str | None = None
    inputs: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[dict[str, Any]] = field(default_factory=list)
    size_bytes: int | None = None
    flops: float | None = None
    params: float | None = None
    license: str | None = None
    accuracy: str | None = None
    source: str = "user"
    weights: str | None = None
    file_path: str | None = None
    zoo_id: str | None = None

    @property
    def size_mb(self) -> float | None:
        """File size in MiB (``None`` when unknown)."""
        return None if self.size_bytes is None else self.size_bytes / 2**20

    @property
    def has_model_file(self) -> bool:
        """Whether an ONNX file exists or can be regenerated, so latency can be predicted."""
        if self.zoo_id:
            return True
        return bool(self.file_path) and Path(str(self.file_path)).is_file()

    @property
    def text(self) -> str:
        """The text the classifiers read: description, then README paragraph."""
        return f"{self.description} {self.readme}".strip()

    def to_row(self) -> tuple[Any, ...]:
        """The SQLite row, in :data:`_COLUMNS` order."""
        d = asdict(self)
        d["inputs"] = json.dumps(self.inputs)
        d["outputs"] = json.dumps(self.outputs)
        return tuple(d[c] for c in _COLUMNS)

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Entry:
        """An entry from a SQLite row in :data:`_COLUMNS` order."""
        d = dict(zip(_COLUMNS, row, strict=True))
        d["inputs"] = json.loads(d["inputs"] or "[]")
        d["outputs"] = json.loads(d["outputs"] or "[]")
        return cls(**d)


@dataclass(frozen=True)
class LatencyRecord:
    """A cached prediction of ``graphrec.recommend`` for one model on one device.

    Attributes:
        latency_ms: Predicted median warm latency of the best deployable choice.
        candidate_id: That choice (``runtime/…``).
    """

    latency_ms: float
    candidate_id: str

    @property
    def runtime(self) -> str:
        """The runtime part of the candidate id."""
        return self.candidate_id.split("/", 1)[0]


def default_catalogue_path() -> Path:
    """``$GRAPHREC_SELECT_CATALOGUE``, else ``<graphrec cache>/selection/catalogue.sqlite``."""
    env = os.environ.get(CATALOGUE_ENV)
    if env:
        return Path(env)
    from graphrec.bench.harness import default_cache_dir

    return default_cache_dir() / "selection" / "catalogue.sqlite"


class Catalogue:
    """The SQLite catalogue. Open it with :meth:`open`.

    Args:
        path: The SQLite file.
        conn: An open connection to it.
    """

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self._conn = conn
        self._entries: list[Entry] | None = None

    # -- opening -----------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike[str] | None = None, *, sync: bool = True) -> Catalogue:
        """Open (creating if needed) the catalogue and bring its shipped entries up to date.

        Args:
            path: The SQLite file (default :func:`default_catalogue_path`).
            sync: Re-synchronise the shipped entries when their sources changed.

        Raises:
            CatalogueError: The file exists but is not a graphrec catalogue.
        """
        p = Path(path) if path is not None else default_catalogue_path()
        p.parent.mkdir(parents=True, exist_ok=True)
        if p.exists() and p.stat().st_size > 0:
            with p.open("rb") as fh:
                head = fh.read(16)
            if head != b"SQLite format 3\x00":
                raise CatalogueError(p, "not a SQLite file (a graphrec select catalogue is)")
        try:
            conn = sqlite3.connect(str(p))
            conn.executescript(_SCHEMA)
            version = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if version is None:
                conn.execute(
                    "INSERT INTO meta VALUES ('schema_version', ?)", (str(_SCHEMA_VERSION),)
                )
                conn.commit()
            elif int(version[0]) != _SCHEMA_VERSION:
                raise CatalogueError(
                    p, f"catalogue schema {version[0]}, this graphrec reads {_SCHEMA_VERSION}"
                )
        except sqlite3.DatabaseError as exc:
            raise CatalogueError(p, f"cannot be read as a catalogue: {exc}") from exc
        cat = cls(p, conn)
        if sync:
            from graphrec.selection.sources import shipped_digest, shipped_entries

            digest = shipped_digest()
            if cat._meta("shipped_digest") != digest:
                cat._replace_shipped(shipped_entries())
                cat._set_meta("shipped_digest", digest)
        return cat

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    def _meta(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, key: str, value: str) -> None:
        with self._conn:
            self._conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def _replace_shipped(self, entries: Iterable[Entry]) -> None:
        marks = ",".join("?" * len(SHIPPED_SOURCES))
        placeholders = ",".join("?" * len(_COLUMNS))
        with self._conn:
            self._conn.execute(f"DELETE FROM entries WHERE source IN ({marks})", SHIPPED_SOURCES)
            for e in entries:
                self._conn.execute(
                    f"INSERT OR REPLACE INTO entries VALUES ({placeholders})", e.to_row()
                )
        self._entries = None

    # -- entries -----------------------------------------------------------------------
    def entries(self) -> list[Entry]:
        """Every entry, sorted by model id."""
        if self._entries is None:
            cols = ",".join(_COLUMNS)
            rows = self._conn.execute(f"SELECT {cols} FROM entries ORDER BY model_id").fetchall()
            self._entries = [Entry.from_row(r) for r in rows]
        return list(self._entries)

    def get(self, model_id: str) -> Entry:
        """The entry ``model_id``.

        Raises:
            CatalogueError: No such entry.
        """
        for e in self.entries():
            if e.model_id == model_id:
                return e
        raise CatalogueError(self.path, f"no entry {model_id!r}")

    def add(self, entry: Entry, *, replace: bool = False) -> Entry:
        """Register a user entry.

        Raises:
            CatalogueError: An entry with that id exists and ``replace`` is false, or the
                id belongs to a shipped entry.
        """
        from graphrec.selection.tasks import check_task

        check_task(entry.task)
        row = self._conn.execute(
            "SELECT source FROM entries WHERE model_id=?", (entry.model_id,)
        ).fetchone()
        if row is not None:
            if row[0] in SHIPPED_SOURCES:
                raise CatalogueError(
                    self.path, f"{entry.model_id!r} is a shipped entry; choose another --name"
                )
            if not replace:
                raise CatalogueError(
                    self.path, f"{entry.model_id!r} is already registered (use --replace)"
                )
        entry.source = "user"
        placeholders = ",".join("?" * len(_COLUMNS))
        with self._conn:
            self._conn.execute(
                f"INSERT OR REPLACE INTO entries VALUES ({placeholders})", entry.to_row()
            )
        self._entries = None
        return entry

    def remove(self, model_id: str) -> None:
        """Remove a user entry.

        Raises:
            CatalogueError: No such user entry.
        """
        with self._conn:
            cur = self._conn.execute(
                "DELETE FROM entries WHERE model_id=? AND source='user'", (model_id,)
            )
        if cur.rowcount == 0:
            raise CatalogueError(self.path, f"no user entry {model_id!r}")
        self._entries = None

    def digest(self) -> str:
        """A digest of every entry's id and text (keys the cached text features)."""
        h = hashlib.sha256()
        for e in self.entries():
            h.update(f"{e.model_id}\0{e.task}\0{e.text}\0".encode())
        return h.hexdigest()[:16]

    # -- caches ------------------------------------------------------------------------
    def latency(
        self, model_id: str, sha256: str, device_id: str, artefact: str
    ) -> LatencyRecord | None:
        """The cached latency prediction, if any."""
        row = self._conn.execute(
            "SELECT latency_ms, candidate_id FROM latency WHERE model_id=? AND sha256=? "
            "AND device_id=? AND artefact=?",
            (model_id, sha256, device_id, artefact),
        ).fetchone()
        return None if row is None else LatencyRecord(float(row[0]), str(row[1]))

    def put_latency(
        self, model_id: str, sha256: str, device_id: str, artefact: str, record: LatencyRecord
    ) -> None:
        """Cache a latency prediction."""
        with self._conn:
            self._conn.execute(
                "INSERT OR REPLACE INTO latency VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    model_id,
                    sha256,
                    device_id,
                    artefact,
                    record.latency_ms,
                    record.candidate_id,
                    time.time(),
                ),
            )

    def feature_blob(self, key: str) -> bytes | None:
        """A cached feature blob."""
        row = self._conn.execute("SELECT blob FROM features WHERE key=?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def put_feature_blob(self, key: str, blob: bytes) -> None:
        """Cache a feature blob."""
        with self._conn:
            self._conn.execute("INSERT OR REPLACE INTO features VALUES (?, ?)", (key, blob))
