"""The results store: one row per result, in SQLite (default) or PostgreSQL (fleets).

:class:`ResultStore` is the one interface; the location picks the backend: a file path
(or ``":memory:"``) opens :class:`SQLiteResultStore` (WAL), a ``postgresql://`` URL opens
:class:`~graphrec.bench.store_pg.PostgresResultStore`, which many machines write at
once. Both backends have the same tables, schema version, migrations and uniqueness
rule; :func:`copy_store` (``graphrec store copy SRC DST``) moves rows between them and
:func:`store_digest` checks that two stores hold the same rows.

Every measurement row is committed as soon as it exists, so a killed campaign loses
nothing that finished; the key ``(measurement_key, candidate_id, device_id, round)`` is
unique, so resuming never duplicates a row. ``measurement_key``
(:func:`graphrec.runtimes.base.measurement_key`) hashes the model file, its concrete
inputs (names, shapes, dtypes, fixed values), the runtime and its version and the
prepare options, so two input shapes or batch sizes of one file are two rows, and a new
runtime version is measured anew. ``input_key`` (file + inputs) groups the rows of one
(model, inputs) pair; the ``inputs`` table holds the spec each input key was run with.
Each row carries the runtime version and the harness version; device profiles live in
their own table, keyed by ``device_id``.

Schema versions: 1 keyed rows on ``(model_sha256, candidate_id, device_id, round)``;
2 keyed them on the measurement key; 3 added the columns of the measurement protocol of
harness 2.0 (``ci_rel``: the half-width of the median's 95 % confidence interval
relative to the median; ``busy``, ``foreign_cpu``, ``steal``, ``load_avg``: the state
of the machine while the row was timed; ``cores``: the cores the worker was pinned to;
rows of older versions have them empty). Opening an older store read-write migrates it
in place to version 3, in one transaction that either keeps every row or leaves the
file as it was (the keys of version-1 rows are computed from the spec in the ``models``
table: the inputs they were measured with, as recorded). A read-only open of an older
store is refused with an error that says how to migrate (:func:`migrate_copy` migrates
a copy and leaves the original alone).

Example:
    >>> from graphrec.bench.store import ResultStore
    >>> with ResultStore(":memory:") as store:
    ...     store.count()
    0
"""

from __future__ import annotations

import csv
import hashlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graphrec.errors import BenchStoreError
from graphrec.runtimes.base import input_key, measurement_key

__all__ = [
    "HARNESS_VERSION",
    "RECORD_TABLES",
    "RESULT_COLUMNS",
    "SCHEMA_VERSION",
    "CopyReport",
    "ResultStore",
    "SQLiteResultStore",
    "copy_store",
    "display_location",
    "is_postgres_url",
    "migrate_copy",
    "store_digest",
]

#: Version of the table layout; version 1 is migrated, any other version is refused.
SCHEMA_VERSION = 3
#: Version of the default measurement protocol, recorded with every row (rows measured
#: with :meth:`graphrec.bench.protocol.MeasureConfig.legacy` record "1.0").
HARNESS_VERSION = "2.0"

#: Result columns (besides the integer id), in table order, with SQL types.
RESULT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("measurement_key", "TEXT NOT NULL"),
    ("input_key", "TEXT"),
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
    ("ci_rel", "REAL"),
    ("busy", "INTEGER"),
    ("foreign_cpu", "REAL"),
    ("steal", "REAL"),
    ("load_avg", "REAL"),
    ("cores", "TEXT"),
)
#: Columns added by schema version 3 (appended to version-2 tables by the migration).
_V3_COLUMNS = RESULT_COLUMNS[-6:]
_COLS = [c for c, _ in RESULT_COLUMNS]

_PG_SCHEMES = ("postgresql", "postgres")

_V1_UNIQUE = "UNIQUE (model_sha256, candidate_id, device_id, round)"
_UNIQUE = "UNIQUE (measurement_key, candidate_id, device_id, round)"


def _results_ddl(table: str) -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {table} (\n"
        "    id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
        f"    {', '.join(f'{c} {t}' for c, t in RESULT_COLUMNS)},\n"
        f"    {_UNIQUE}\n)"
    )


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
CREATE TABLE IF NOT EXISTS inputs (
    input_key TEXT PRIMARY KEY,
    model_sha256 TEXT NOT NULL,
    spec_json TEXT NOT NULL
);
{_results_ddl("results")};
CREATE INDEX IF NOT EXISTS results_status ON results (status);
CREATE INDEX IF NOT EXISTS results_model ON results (model_sha256);
"""


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def is_postgres_url(location: str | Path) -> bool:
    """Whether ``location`` names a PostgreSQL store (``postgresql://`` or ``postgres://``)."""
    return isinstance(location, str) and location.split("://", 1)[0] in _PG_SCHEMES


def display_location(location: str | Path) -> str:
    """``location`` as it may be printed: a URL's password is masked."""
    text = str(location)
    if not is_postgres_url(text):
        return text
    scheme, _, rest = text.partition("://")
    auth, at, host = rest.rpartition("@")
    if at and ":" in auth:
        auth = auth.split(":", 1)[0] + ":***"
    return f"{scheme}://{auth}{at}{host}"


#: The tables besides ``results``, with their key column and columns in table order
#: (``store copy`` moves them verbatim).
RECORD_TABLES: dict[str, tuple[str, ...]] = {
    "devices": ("device_id", "profile_json", "first_seen"),
    "models": ("sha256", "name", "path", "spec_json"),
    "inputs": ("input_key", "model_sha256", "spec_json"),
}


class ResultStore:
    """The results store: one interface, two backends, chosen by the location.

    ``ResultStore(location)`` opens (creating on first use) a
    :class:`SQLiteResultStore` for a file path or ``":memory:"``, and a
    :class:`~graphrec.bench.store_pg.PostgresResultStore` for a
    ``postgresql://user@host[:port]/db`` URL. Both have the same tables, schema
    version, migrations and uniqueness rule (one row per ``(measurement_key,
    candidate_id, device_id, round)``), and commit each row as it is inserted.

    Args:
        location: Database file, ``":memory:"`` or a PostgreSQL URL.
        readonly: Open an existing store for reading only.
        **options: Backend options (PostgreSQL: ``retry_s``, how long a dropped
            connection is retried before an operation fails).

    Raises:
        BenchStoreError: The store cannot be opened (see the backends).

    Example:
        >>> with ResultStore(":memory:") as store:
        ...     type(store).__name__
        'SQLiteResultStore'
    """

    #: The location as given (a path or URL; print :func:`display_location` of it).
    location: str
    readonly: bool

    def __new__(cls, location: str | Path = ":memory:", *args: Any, **kwargs: Any) -> ResultStore:
        if cls is ResultStore:
            if is_postgres_url(location):
                from graphrec.bench.store_pg import PostgresResultStore

                cls = PostgresResultStore
            else:
                cls = SQLiteResultStore
        return super().__new__(cls)

    # ------------------------------------------------------------ backend hooks
    def _model_spec_json(self, sha256: str) -> str | None:
        """The stored ``spec_json`` of a model file (``None`` when unknown)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ writes
    def add_device(self, device_id: str, profile: Mapping[str, Any]) -> None:
        """Record a device profile (first write wins)."""
        raise NotImplementedError

    def add_model(self, sha256: str, name: str, path: str, spec: Mapping[str, Any]) -> None:
        """Record a model's identity and concrete inputs (first write wins per file in
        ``models``, per input key in ``inputs``)."""
        raise NotImplementedError

    def insert_result(self, row: Mapping[str, Any], *, replace: bool = False) -> bool:
        """Insert one result and commit it at once.

        Unknown keys go into the ``extra`` JSON column. Returns ``False`` when a row with
        the same key already exists and ``replace`` is off.
        """
        raise NotImplementedError

    def add_records(self, table: str, records: Sequence[Mapping[str, Any]]) -> int:
        """Insert rows of ``devices``, ``models`` or ``inputs`` verbatim, in one
        transaction; a key already stored is kept. Returns the number inserted."""
        raise NotImplementedError

    def add_results(self, rows: Sequence[Mapping[str, Any]]) -> int:
        """Insert result rows verbatim (every column of :data:`RESULT_COLUMNS` as
        stored, ``id`` ignored) in one transaction; a key already stored is kept.
        Returns the number inserted."""
        raise NotImplementedError

    # ------------------------------------------------------------------ reads
    def done_keys(self, device_id: str | None = None) -> set[tuple[str, str, str, int]]:
        """Keys ``(measurement_key, candidate_id, device_id, round)`` already stored."""
        raise NotImplementedError

    def rows(self, **where: Any) -> list[dict[str, Any]]:
        """Result rows as dicts, filtered by equality on columns (``status="ok"``)."""
        raise NotImplementedError

    def iter_rows(self) -> Iterator[dict[str, Any]]:
        """Every result row, oldest first."""
        raise NotImplementedError

    def count(self, **where: Any) -> int:
        """Number of result rows matching the filter."""
        raise NotImplementedError

    def records(self, table: str) -> list[dict[str, Any]]:
        """Every row of ``devices``, ``models`` or ``inputs``, as stored."""
        raise NotImplementedError

    def devices(self) -> dict[str, dict[str, Any]]:
        """Stored device profiles by id."""
        return {r["device_id"]: json.loads(r["profile_json"]) for r in self.records("devices")}

    def models(self) -> dict[str, dict[str, Any]]:
        """Stored models by sha256: ``name``, ``path`` and ``spec``."""
        return {
            r["sha256"]: {"name": r["name"], "path": r["path"], "spec": json.loads(r["spec_json"])}
            for r in self.records("models")
        }

    def input_specs(self) -> dict[str, dict[str, Any]]:
        """Stored inputs by input key: ``sha256``, ``name``, ``path`` and ``spec``."""
        models = self.models()
        out: dict[str, dict[str, Any]] = {}
        for r in self.records("inputs"):
            m = models.get(r["model_sha256"], {})
            out[r["input_key"]] = {
                "sha256": r["model_sha256"],
                "name": m.get("name"),
                "path": m.get("path"),
                "spec": json.loads(r["spec_json"]),
            }
        return out

    @property
    def schema_version(self) -> int:
        """Schema version recorded in the store."""
        raise NotImplementedError

    # ------------------------------------------------------------------ shared
    def _check_table(self, table: str) -> tuple[str, ...]:
        if table not in RECORD_TABLES:
            raise BenchStoreError(
                display_location(self.location),
                f"no table {table!r} (tables: {', '.join(RECORD_TABLES)})",
            )
        return RECORD_TABLES[table]

    def _check_where(self, where: Mapping[str, Any]) -> None:
        bad = sorted(set(where) - set(_COLS))
        if bad:
            raise BenchStoreError(display_location(self.location), f"no column(s) {bad}")

    def _result_values(self, row: Mapping[str, Any]) -> list[Any]:
        """The column values :meth:`insert_result` stores for ``row``, in table order."""
        values = {c: row.get(c) for c in _COLS}
        if not values["measurement_key"] or not values["input_key"]:
            # Rows written without keys (by hand, by old callers) get them from the
            # model's stored spec, exactly as migrated version-1 rows do.
            sha = str(values["model_sha256"])
            spec = _spec_for_key(sha, self._model_spec_json(sha))
            values["input_key"] = values["input_key"] or input_key(spec)
            values["measurement_key"] = values["measurement_key"] or measurement_key(
                spec, str(values["candidate_id"]), values["runtime_version"]
            )
        extra = {k: v for k, v in row.items() if k not in values}
        if extra:
            values["extra"] = json.dumps(extra, sort_keys=True, default=str)
        values["created_at"] = values["created_at"] or _now()
        values["harness_version"] = values["harness_version"] or HARNESS_VERSION
        for col in ("convert_cached", "busy"):
            flag = values[col]
            if isinstance(flag, bool):
                values[col] = int(flag)
        return [values[c] for c in _COLS]

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
        raise NotImplementedError

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SQLiteResultStore(ResultStore):
    """The SQLite backend of :class:`ResultStore` (WAL; created on first use).

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
        self.location = str(path)
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
                if existing is not None and int(existing) in (1, 2):
                    why = (
                        "keys without the input shapes"
                        if int(existing) == 1
                        else "no columns for the measurement protocol of harness 2.0"
                    )
                    raise BenchStoreError(
                        self.path,
                        f"schema version {existing} ({why}); this graphrec "
                        f"reads {SCHEMA_VERSION}. Migrate it in place by opening it once "
                        "read-write (ResultStore(path), or any 'graphrec bench --store "
                        f"{self.path}' run), or migrate a copy and leave this file alone: "
                        "graphrec.bench.store.migrate_copy(src, dst)",
                    )
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
            existing = self._meta("schema_version")
            if existing is not None and int(existing) == 1:
                _migrate_v1(self._conn, self.path)  # before WAL: a failure changes nothing
                existing = str(SCHEMA_VERSION)
            elif existing is not None and int(existing) == 2:
                _migrate_v2(self._conn, self.path)
                existing = str(SCHEMA_VERSION)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
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
        """Record a model's identity and concrete inputs (first write wins per file in
        ``models``, per input key in ``inputs``)."""
        blob = json.dumps(dict(spec), sort_keys=True)
        self._conn.execute(
            "INSERT OR IGNORE INTO models VALUES (?, ?, ?, ?)", (sha256, name, path, blob)
        )
        self._conn.execute(
            "INSERT OR IGNORE INTO inputs VALUES (?, ?, ?)",
            (input_key({**dict(spec), "sha256": sha256}), sha256, blob),
        )

    def _model_spec_json(self, sha256: str) -> str | None:
        row = self._conn.execute(
            "SELECT spec_json FROM models WHERE sha256 = ?", (sha256,)
        ).fetchone()
        return None if row is None else str(row[0])

    def insert_result(self, row: Mapping[str, Any], *, replace: bool = False) -> bool:
        """Insert one result and commit it at once.

        Unknown keys go into the ``extra`` JSON column. Returns ``False`` when a row with
        the same key already exists and ``replace`` is off.
        """
        verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
        cur = self._conn.execute(
            f"{verb} INTO results ({', '.join(_COLS)}) VALUES ({', '.join('?' * len(_COLS))})",
            self._result_values(row),
        )
        return cur.rowcount > 0

    def add_records(self, table: str, records: Sequence[Mapping[str, Any]]) -> int:
        """Insert rows of ``devices``, ``models`` or ``inputs`` verbatim, in one
        transaction; a key already stored is kept. Returns the number inserted."""
        cols = self._check_table(table)
        return self._insert_many(
            f"INSERT OR IGNORE INTO {table} ({', '.join(cols)}) "
            f"VALUES ({', '.join('?' * len(cols))})",
            [[r.get(c) for c in cols] for r in records],
        )

    def add_results(self, rows: Sequence[Mapping[str, Any]]) -> int:
        """Insert result rows verbatim (every column of :data:`RESULT_COLUMNS` as
        stored, ``id`` ignored) in one transaction; a key already stored is kept.
        Returns the number inserted."""
        return self._insert_many(
            f"INSERT OR IGNORE INTO results ({', '.join(_COLS)}) "
            f"VALUES ({', '.join('?' * len(_COLS))})",
            [[r.get(c) for c in _COLS] for r in rows],
        )

    def _insert_many(self, sql: str, values: list[list[Any]]) -> int:
        before = self._conn.total_changes
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            self._conn.executemany(sql, values)
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")
        return self._conn.total_changes - before

    # ------------------------------------------------------------------ reads
    def done_keys(self, device_id: str | None = None) -> set[tuple[str, str, str, int]]:
        """Keys ``(measurement_key, candidate_id, device_id, round)`` already stored."""
        sql = "SELECT measurement_key, candidate_id, device_id, round FROM results"
        args: tuple[Any, ...] = ()
        if device_id is not None:
            sql += " WHERE device_id = ?"
            args = (device_id,)
        return {(r[0], r[1], r[2], int(r[3])) for r in self._conn.execute(sql, args)}

    def rows(self, **where: Any) -> list[dict[str, Any]]:
        """Result rows as dicts, filtered by equality on columns (``status="ok"``)."""
        self._check_where(where)
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
        self._check_where(where)
        sql = "SELECT COUNT(*) FROM results"
        if where:
            sql += " WHERE " + " AND ".join(f"{k} = ?" for k in where)
        return int(self._conn.execute(sql, tuple(where.values())).fetchone()[0])

    def records(self, table: str) -> list[dict[str, Any]]:
        """Every row of ``devices``, ``models`` or ``inputs``, as stored."""
        cols = self._check_table(table)
        sql = f"SELECT {', '.join(cols)} FROM {table} ORDER BY {cols[0]}"
        return [dict(r) for r in self._conn.execute(sql)]

    @property
    def schema_version(self) -> int:
        """Schema version recorded in the store."""
        return int(self._meta("schema_version") or SCHEMA_VERSION)

    # ------------------------------------------------------------------ lifetime
    def close(self) -> None:
        """Close the connection (every row is already committed)."""
        self._conn.close()


def _spec_for_key(sha256: str, spec_json: str | None) -> dict[str, Any]:
    """The spec a row's keys are computed from (the file hash alone when none is stored)."""
    spec: dict[str, Any] = {}
    if spec_json:
        try:
            loaded = json.loads(spec_json)
            spec = dict(loaded) if isinstance(loaded, dict) else {}
        except ValueError:
            spec = {}
    spec["sha256"] = sha256
    return spec


def _commit_migration(conn: sqlite3.Connection, from_version: int, rows: int) -> None:
    """Record the new schema version and the migration, and commit."""
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))
    conn.execute(
        f"INSERT OR REPLACE INTO meta VALUES ('migrated_from_{from_version}', ?)",
        (json.dumps({"at": _now(), "rows": rows}),),
    )
    conn.execute("COMMIT")


def _abort_migration(
    conn: sqlite3.Connection, path: Path, from_version: int, exc: BaseException
) -> None:
    """Roll a failed migration back; re-raise a plain failure as a clear store error."""
    if conn.in_transaction:
        conn.execute("ROLLBACK")
    if isinstance(exc, Exception) and not isinstance(exc, BenchStoreError):
        raise BenchStoreError(
            path, f"migration from schema version {from_version} failed, file unchanged ({exc})"
        ) from exc


def _migrate_v1(conn: sqlite3.Connection, path: Path) -> None:
    """Migrate a version-1 store to version 2 in one transaction, keeping every row.

    Each row keeps its id and every column; ``measurement_key`` and ``input_key`` are
    computed from the model's spec in the ``models`` table (the inputs the row was
    measured with, as recorded), the row's candidate id and runtime version. The row
    counts are checked before the commit; on any failure the transaction is rolled back
    and the file is as it was.

    Raises:
        BenchStoreError: The migration failed (nothing was changed).
    """
    v1_cols = [str(r[1]) for r in conn.execute("PRAGMA table_info(results)")]
    try:
        conn.execute("BEGIN IMMEDIATE")
        before = int(conn.execute("SELECT COUNT(*) FROM results").fetchone()[0])
        specs = {
            str(r[0]): _spec_for_key(str(r[0]), r[1])
            for r in conn.execute("SELECT sha256, spec_json FROM models")
        }
        conn.execute(
            "CREATE TABLE IF NOT EXISTS inputs (input_key TEXT PRIMARY KEY, "
            "model_sha256 TEXT NOT NULL, spec_json TEXT NOT NULL)"
        )
        for sha, spec in specs.items():
            blob = json.dumps({k: v for k, v in spec.items()}, sort_keys=True)
            conn.execute(
                "INSERT OR IGNORE INTO inputs VALUES (?, ?, ?)", (input_key(spec), sha, blob)
            )
        conn.execute("DROP TABLE IF EXISTS results_v2")
        conn.execute(_results_ddl("results_v2"))
        keep = [c for c in ("id", *_COLS) if c in v1_cols]
        insert = (
            f"INSERT INTO results_v2 (measurement_key, input_key, {', '.join(keep)}) "
            f"VALUES ({', '.join('?' * (len(keep) + 2))})"
        )
        cur = conn.execute(f"SELECT {', '.join(keep)} FROM results ORDER BY id")
        for r in cur.fetchall():
            d = dict(zip(keep, r, strict=True))
            sha = str(d["model_sha256"])
            spec = specs.get(sha) or _spec_for_key(sha, None)
            mkey = measurement_key(spec, str(d["candidate_id"]), d.get("runtime_version"))
            conn.execute(insert, [mkey, input_key(spec), *r])
        after = int(conn.execute("SELECT COUNT(*) FROM results_v2").fetchone()[0])
        if after != before:
            raise BenchStoreError(path, f"migration kept {after} of {before} rows")
        seq = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'results'").fetchone()
        conn.execute("DROP TABLE results")
        conn.execute("ALTER TABLE results_v2 RENAME TO results")
        if seq is not None:
            conn.execute("DELETE FROM sqlite_sequence WHERE name = 'results'")
            conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('results', ?)", (seq[0],))
        conn.execute("CREATE INDEX IF NOT EXISTS results_status ON results (status)")
        conn.execute("CREATE INDEX IF NOT EXISTS results_model ON results (model_sha256)")
        _commit_migration(conn, 1, before)
    except BaseException as exc:
        _abort_migration(conn, path, 1, exc)
        raise


def _migrate_v2(conn: sqlite3.Connection, path: Path) -> None:
    """Migrate a version-2 store to version 3 in one transaction: append the protocol
    columns (empty for the old rows); every row and key is kept as it is.

    Raises:
        BenchStoreError: The migration failed (nothing was changed).
    """
    try:
        conn.execute("BEGIN IMMEDIATE")
        before = int(conn.execute("SELECT COUNT(*) FROM results").fetchone()[0])
        have = {str(r[1]) for r in conn.execute("PRAGMA table_info(results)")}
        for col, typ in _V3_COLUMNS:
            if col not in have:
                conn.execute(f"ALTER TABLE results ADD COLUMN {col} {typ}")
        after = int(conn.execute("SELECT COUNT(*) FROM results").fetchone()[0])
        if after != before:
            raise BenchStoreError(path, f"migration kept {after} of {before} rows")
        _commit_migration(conn, 2, before)
    except BaseException as exc:
        _abort_migration(conn, path, 2, exc)
        raise


def migrate_copy(src: str | Path, dst: str | Path) -> Path:
    """Copy a results store (any version) to ``dst`` and migrate the copy; ``src`` is untouched.

    Uses SQLite's online backup, so a store another process is writing is copied
    consistently. Returns ``dst``.

    Raises:
        BenchStoreError: ``src`` is missing or unreadable, or ``dst`` already exists.
    """
    s, d = Path(src), Path(dst)
    if not s.is_file():
        raise BenchStoreError(s, "no such results store")
    if d.exists():
        raise BenchStoreError(d, "already exists; migrate_copy does not overwrite")
    try:
        with sqlite3.connect(f"file:{s}?mode=ro", uri=True) as source:
            target = sqlite3.connect(str(d))
            try:
                source.backup(target)
            finally:
                target.close()
    except sqlite3.DatabaseError as exc:
        d.unlink(missing_ok=True)
        raise BenchStoreError(s, f"not a usable SQLite results store ({exc})") from None
    ResultStore(d).close()
    return d


# ----------------------------------------------------------------------------- copy


@dataclass
class CopyReport:
    """What :func:`copy_store` did.

    Attributes:
        source: Where the rows came from (password masked).
        destination: Where they went (password masked).
        rows: Result rows in the source.
        inserted: Result rows the destination did not hold before.
        records: Rows inserted per side table (``devices``, ``models``, ``inputs``).
        seconds: Wall time of the copy (reading, writing, committing).
        source_digest: :func:`store_digest` of the source.
        destination_digest: :func:`store_digest` of the destination after the copy
            (equal to ``source_digest`` when the destination was empty).
        destination_rows: Result rows in the destination after the copy.
        migrated_from: Schema version of an older SQLite source, copied from a migrated
            temporary copy (the source file is not touched), else ``None``.
        migrate_seconds: The part of ``seconds`` spent migrating that copy.
    """

    source: str
    destination: str
    rows: int
    inserted: int
    records: dict[str, int]
    seconds: float
    source_digest: str
    destination_digest: str
    destination_rows: int = 0
    migrated_from: int | None = None
    migrate_seconds: float = 0.0

    @property
    def identical(self) -> bool:
        """Whether the destination now holds exactly the source's rows."""
        return self.source_digest == self.destination_digest


def store_digest(store: ResultStore) -> str:
    """SHA-256 of every stored row, independent of order and backend.

    Covers every column of ``results`` (but the surrogate ``id``) and of ``devices``,
    ``models`` and ``inputs``; two stores have the same digest exactly when they hold
    the same rows with the same values (floats compared bit for bit through their
    shortest round-trip text).
    """
    lines = []
    for table, cols in RECORD_TABLES.items():
        lines += [json.dumps([table, *(r[c] for c in cols)]) for r in store.records(table)]
    lines += [json.dumps(["results", *(r[c] for c in _COLS)]) for r in store.iter_rows()]
    digest = hashlib.sha256()
    for line in sorted(lines):
        digest.update(line.encode())
        digest.update(b"\n")
    return digest.hexdigest()


def _sqlite_schema_version(path: Path) -> int | None:
    """The schema version of a SQLite store file (``None``: no such file or no meta)."""
    if not path.is_file():
        return None
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.DatabaseError:
        return None
    return None if row is None else int(row[0])


def copy_store(
    src: str | Path,
    dst: str | Path,
    *,
    batch: int = 2000,
    on_progress: Callable[[int, int], None] | None = None,
) -> CopyReport:
    """Copy every row of one results store into another, in either direction.

    Device, model and input records are copied first, then the result rows in batches
    of ``batch``, each batch in one transaction; a key the destination already holds is
    kept as it is there (copying twice adds nothing). The source is opened read-only; an
    older SQLite source is read from a migrated temporary copy.

    Args:
        src: Source store (file path or PostgreSQL URL).
        dst: Destination store (created when missing).
        batch: Result rows per transaction.
        on_progress: Called with ``(rows copied so far, rows in the source)``.

    Returns:
        The counts, time and digests of both stores.

    Raises:
        BenchStoreError: A store cannot be opened, or source and destination are the
            same store.
    """
    import tempfile

    if str(src) == str(dst) or (
        not is_postgres_url(src)
        and not is_postgres_url(dst)
        and Path(dst).exists()
        and Path(src).resolve() == Path(dst).resolve()
    ):
        raise BenchStoreError(display_location(dst), "source and destination are the same store")
    t0 = time.perf_counter()
    migrated: int | None = None
    migrate_s = 0.0
    with tempfile.TemporaryDirectory(prefix="graphrec-copy-") as tmp:
        source_location: str | Path = src
        if not is_postgres_url(src):
            version = _sqlite_schema_version(Path(src))
            if version is not None and version < SCHEMA_VERSION:
                migrated = version
                source_location = migrate_copy(src, Path(tmp) / "source.sqlite")
                migrate_s = time.perf_counter() - t0
        with (
            ResultStore(source_location, readonly=True) as source,
            ResultStore(dst) as target,
        ):
            records = {t: target.add_records(t, source.records(t)) for t in RECORD_TABLES}
            total = source.count()
            done = inserted = 0
            chunk: list[dict[str, Any]] = []
            for row in source.iter_rows():
                chunk.append(row)
                if len(chunk) >= batch:
                    inserted += target.add_results(chunk)
                    done += len(chunk)
                    chunk = []
                    if on_progress is not None:
                        on_progress(done, total)
            if chunk:
                inserted += target.add_results(chunk)
                done += len(chunk)
                if on_progress is not None:
                    on_progress(done, total)
            seconds = time.perf_counter() - t0
            return CopyReport(
                source=display_location(src),
                destination=display_location(dst),
                rows=done,
                inserted=inserted,
                records=records,
                seconds=seconds,
                source_digest=store_digest(source),
                destination_digest=store_digest(target),
                destination_rows=target.count(),
                migrated_from=migrated,
                migrate_seconds=migrate_s,
            )
