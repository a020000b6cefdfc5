"""The results store: a SQLite database (WAL, versioned schema), one row per result.

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
import json
import sqlite3
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from graphrec.errors import BenchStoreError
from graphrec.runtimes.base import input_key, measurement_key

__all__ = ["HARNESS_VERSION", "RESULT_COLUMNS", "SCHEMA_VERSION", "ResultStore", "migrate_copy"]

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

    def _spec_of(self, sha256: str) -> dict[str, Any]:
        row = self._conn.execute(
            "SELECT spec_json FROM models WHERE sha256 = ?", (sha256,)
        ).fetchone()
        return _spec_for_key(sha256, None if row is None else str(row[0]))

    def insert_result(self, row: Mapping[str, Any], *, replace: bool = False) -> bool:
        """Insert one result and commit it at once.

        Unknown keys go into the ``extra`` JSON column. Returns ``False`` when a row with
        the same key already exists and ``replace`` is off.
        """
        values = {c: row.get(c) for c in _COLS}
        if not values["measurement_key"] or not values["input_key"]:
            # Rows written without keys (by hand, by old callers) get them from the
            # model's stored spec, exactly as migrated version-1 rows do.
            spec = self._spec_of(str(values["model_sha256"]))
            values["input_key"] = values["input_key"] or input_key(spec)
            values["measurement_key"] = values["measurement_key"] or measurement_key(
                spec, str(values["candidate_id"]), values["runtime_version"]
            )
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
        """Keys ``(measurement_key, candidate_id, device_id, round)`` already stored."""
        sql = "SELECT measurement_key, candidate_id, device_id, round FROM results"
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

    def input_specs(self) -> dict[str, dict[str, Any]]:
        """Stored inputs by input key: ``sha256``, ``name``, ``path`` and ``spec``."""
        models = self.models()
        out: dict[str, dict[str, Any]] = {}
        for r in self._conn.execute("SELECT * FROM inputs"):
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
