"""The results store: a SQLite database (WAL, versioned schema), one row per result.

Every measurement row is committed as soon as it exists, so a killed campaign loses
nothing that finished; the key ``(model_sha256, candidate_id, device_id, round)`` is
unique, so resuming never duplicates a row. Each row carries the runtime version and
the harness version; device profiles live in their own table, keyed by ``device_id``.

Example:
    >>> from graphrec.bench.store import ResultStore
    >>> with ResultStore(":memory:") as store:
    ...     store.count()
    0
"""

from __future__ import annotations

import csv
import json
import sqlite3
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from graphrec.errors import BenchStoreError

__all__ = ["HARNESS_VERSION", "RESULT_COLUMNS", "SCHEMA_VERSION", "ResultStore"]

#: Version of the table layout; a store with another version is refused.
SCHEMA_VERSION = 1
#: Version of the measurement protocol, recorded with every row.
HARNESS_VERSION = "1.0"

#: Result columns (besides the integer id), in table order, with SQL types.
RESULT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("model_sha256", "TEXT NOT NULL"),
    ("model_name", "TEXT"),
    ("candidate_id", "TEXT NOT NULL"),
    ("device_id", "TEXT NOT NULL"),
    ("round", "INTEGER NOT NULL"),
    ("runtime", "TEXT"),
    ("runtime_version", "TEXT"),
    ("backend", "TEXT"),
    ("precision", "TEXT"),
    ("threads", "INTEGER"),
    ("options", "TEXT"),
    ("status", "TEXT NOT NULL"),
    ("error", "TEXT"),
    ("convert_s", "REAL"),
    ("convert_cached", "INTEGER"),
    ("load_ms", "REAL"),
    ("first_run_ms", "REAL"),
    ("cold_start_ms", "REAL"),
    ("n_runs", "INTEGER"),
    ("p10_ms", "REAL"),
    ("p50_ms", "REAL"),
    ("p90_ms", "REAL"),
    ("mean_ms", "REAL"),
    ("std_ms", "REAL"),
    ("min_ms", "REAL"),
    ("peak_rss_mb", "REAL"),
    ("rss_delta_mb", "REAL"),
    ("max_abs_err", "REAL"),
    ("max_rel_err", "REAL"),
    ("rel_l2_err", "REAL"),
    ("wall_s", "REAL"),
    ("worker_pid", "INTEGER"),
    ("harness_version", "TEXT"),
    ("created_at", "TEXT"),
    ("extra", "TEXT"),
)
_COLS = [c for c, _ in RESULT_COLUMNS]

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS devices (
    device_id TEXT PRIMARY KEY,
    profile_json TEXT NOT NULL,
    first_seen TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS models (
    sha256 TEXT PRIMARY KEY,
    name TEXT,
    path TEXT,
    spec_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS results (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    {", ".join(f"{c} {t}" for c, t in RESULT_COLUMNS)},
    UNIQUE (model_sha256, candidate_id, device_id, round)
);
CREATE INDEX IF NOT EXISTS results_status ON results (status);
"""


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


class ResultStore:
    """A SQLite results store (created on first use).

    Args:
        path: Database file (``":memory:"`` for a throwaway store).
        readonly: Open an existing store for reading only: nothing is created or
            written, and a missing file is an error.

    Raises:
        BenchStoreError: The file is not a SQLite database, has another schema version,
            or (``readonly``) does not exist.
    """

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = Path(path) if str(path) != ":memory:" else Path(":memory:")
        self.readonly = readonly
        try:
            if readonly:
                if not self.path.is_file():
                    raise BenchStoreError(self.path, "no such results store")
                self._conn = sqlite3.connect(
                    f"file:{self.path}?mode=ro", uri=True, timeout=30.0, isolation_level=None
                )
                self._conn.row_factory = sqlite3.Row
                existing = self._meta("schema_version")
                if existing is None or int(existing) != SCHEMA_VERSION:
                    raise BenchStoreError(
                        self.path,
                        f"schema version {existing}, this graphrec reads {SCHEMA_VERSION}"
                        if existing is not None
                        else "not a graphrec results store (no schema version)",
                    )
                return
            if str(path) != ":memory:":
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(str(path), timeout=30.0, isolation_level=None)
            self._conn.row_factory = sqlite3.Row
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            existing = self._meta("schema_version")
            if existing is not None and int(existing) != SCHEMA_VERSION:
                raise BenchStoreError(
                    self.path, f"schema version {existing}, this graphrec reads {SCHEMA_VERSION}"
                )
            self._conn.executescript(_SCHEMA)
            if existing is None:
                self._conn.execute(
                    "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?), ('created_at', ?)",
                    (str(SCHEMA_VERSION), _now()),
                )
        except sqlite3.DatabaseError as exc:
            raise BenchStoreError(self.path, f"not a usable SQLite results store ({exc})") from None

    def _meta(self, key: str) -> str | None:
        try:
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        except sqlite3.OperationalError:  # no meta table yet
            return None
        return None if row is None else str(row[0])

    # ------------------------------------------------------------------ writes
    def add_device(self, device_id: str, profile: Mapping[str, Any]) -> None:
        """Record a device profile (first write wins)."""
        self._conn.execute(
            "INSERT OR IGNORE INTO devices VALUES (?, ?, ?)",
            (device_id, json.dumps(dict(profile), sort_keys=True), _now()),
        )

    def add_model(self, sha256: str, name: str, path: str, spec: Mapping[str, Any]) -> None:
        """Record a model's identity and concrete inputs (first write wins)."""
        self._conn.execute(
            "INSERT OR IGNORE INTO models VALUES (?, ?, ?, ?)",
            (sha256, name, path, json.dumps(dict(spec), sort_keys=True)),
        )

    def insert_result(self, row: Mapping[str, Any], *, replace: bool = False) -> bool:
        """Insert one result and commit it at once.

        Unknown keys go into the ``extra`` JSON column. Returns ``False`` when a row with
        the same key already exists and ``replace`` is off.
        """
        values = {c: row.get(c) for c in _COLS}
        extra = {k: v for k, v in row.items() if k not in values}
        if extra:
            values["extra"] = json.dumps(extra, sort_keys=True, default=str)
        values["created_at"] = values["created_at"] or _now()
        values["harness_version"] = values["harness_version"] or HARNESS_VERSION
        if isinstance(values["convert_cached"], bool):
            values["convert_cached"] = int(values["convert_cached"])
        verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
        cur = self._conn.execute(
            f"{verb} INTO results ({', '.join(_COLS)}) VALUES ({', '.join('?' * len(_COLS))})",
            [values[c] for c in _COLS],
        )
        return cur.rowcount > 0

    # ------------------------------------------------------------------ reads
    def done_keys(self, device_id: str | None = None) -> set[tuple[str, str, str, int]]:
        """Keys ``(model_sha256, candidate_id, device_id, round)`` already stored."""
        sql = "SELECT model_sha256, candidate_id, device_id, round FROM results"
        args: tuple[Any, ...] = ()
        if device_id is not None:
            sql += " WHERE device_id = ?"
            args = (device_id,)
        return {(r[0], r[1], r[2], int(r[3])) for r in self._conn.execute(sql, args)}

    def rows(self, **where: Any) -> list[dict[str, Any]]:
        """Result rows as dicts, filtered by equality on columns (``status="ok"``)."""
        bad = sorted(set(where) - set(_COLS))
        if bad:
            raise BenchStoreError(self.path, f"no column(s) {bad}")
        sql = "SELECT * FROM results"
        if where:
            sql += " WHERE " + " AND ".join(f"{k} = ?" for k in where)
        sql += " ORDER BY id"
        return [dict(r) for r in self._conn.execute(sql, tuple(where.values()))]

    def iter_rows(self) -> Iterator[dict[str, Any]]:
        """Every result row, oldest first."""
        for r in self._conn.execute("SELECT * FROM results ORDER BY id"):
            yield dict(r)

    def count(self, **where: Any) -> int:
        """Number of result rows matching the filter."""
        return (
            len(self.rows(**where))
            if where
            else int(self._conn.execute("SELECT COUNT(*) FROM results").fetchone()[0])
        )

    def devices(self) -> dict[str, dict[str, Any]]:
        """Stored device profiles by id."""
        return {
            r["device_id"]: json.loads(r["profile_json"])
            for r in self._conn.execute("SELECT * FROM devices")
        }

    def models(self) -> dict[str, dict[str, Any]]:
        """Stored models by sha256: ``name``, ``path`` and ``spec``."""
        return {
            r["sha256"]: {"name": r["name"], "path": r["path"], "spec": json.loads(r["spec_json"])}
            for r in self._conn.execute("SELECT * FROM models")
        }

    @property
    def schema_version(self) -> int:
        """Schema version recorded in the file."""
        return int(self._meta("schema_version") or SCHEMA_VERSION)

    # ------------------------------------------------------------------ export
    def export_csv(self, path: str | Path) -> Path:
        """Write every result row to a CSV file."""
        p = Path(path)
        with p.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=["id", *_COLS])
            writer.writeheader()
            for row in self.iter_rows():
                writer.writerow(row)
        return p

    def export_parquet(self, path: str | Path) -> Path:
        """Write every result row to a Parquet file (needs ``pyarrow``).

        Raises:
            BenchStoreError: pyarrow is not installed.
        """
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise BenchStoreError(
                path, "Parquet export needs pyarrow: pip install pyarrow"
            ) from None
        rows = list(self.iter_rows())
        types = {"INTEGER": pa.int64(), "REAL": pa.float64(), "TEXT": pa.string()}
        schema = pa.schema(
            [("id", pa.int64())] + [(c, types[t.split()[0]]) for c, t in RESULT_COLUMNS]
        )
        table = pa.Table.from_pylist(rows, schema=schema)
        pq.write_table(table, str(path))
        return Path(path)

    # ------------------------------------------------------------------ lifetime
    def close(self) -> None:
        """Close the connection (every row is already committed)."""
        self._conn.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
