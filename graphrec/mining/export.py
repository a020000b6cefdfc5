"""Write an :class:`~graphrec.mining.inventory.Inventory` as JSON, SQLite, CSV or Parquet.

Files are written to a temporary name beside the target and renamed into
place, so an interrupted write never leaves a half-written inventory (and never
destroys an older one).
"""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from graphrec.errors import InventoryFormatError
from graphrec.mining.inventory import Inventory

__all__ = ["FLAT_COLUMNS", "SUFFIXES", "flat_rows", "write_inventory"]

#: Columns of the flat (CSV / Parquet) form: one row per finding.
FLAT_COLUMNS: tuple[str, ...] = (
    "record",
    "app",
    "location",
    "what",
    "abi",
    "size_bytes",
    "sha256",
    "suspected",
    "evidence",
    "version",
    "details",
)

#: Supported output suffixes.
SUFFIXES: tuple[str, ...] = (".json", ".sqlite", ".db", ".csv", ".parquet")


def flat_rows(inv: Inventory) -> list[dict[str, Any]]:
    """One dict per finding with the :data:`FLAT_COLUMNS` keys (details as JSON text)."""
    rows: list[dict[str, Any]] = []
    empty = dict.fromkeys(FLAT_COLUMNS)
    for m in inv.models:
        rows.append(
            {**empty, "record": "model", "app": m.app, "location": m.path, "what": m.format,
             "size_bytes": m.size_bytes, "sha256": m.sha256, "suspected": m.suspected,
             "evidence": m.reason, "details": json.dumps(m.details, default=str)}
        )  # fmt: skip
    for lib in inv.libraries:
        rows.append(
            {**empty, "record": "library", "app": lib.app, "location": lib.path,
             "what": lib.framework, "abi": lib.abi, "size_bytes": lib.size_bytes,
             "suspected": False, "evidence": lib.evidence}
        )  # fmt: skip
    for p in inv.packages:
        rows.append(
            {**empty, "record": "package", "app": p.app, "location": p.path, "what": p.framework,
             "suspected": False, "evidence": f"{p.evidence}: {p.package}", "version": p.version}
        )  # fmt: skip
    for i in inv.issues:
        rows.append(
            {**empty, "record": "issue", "app": i.app, "location": i.path, "what": i.kind,
             "suspected": False, "evidence": i.detail}
        )  # fmt: skip
    return rows


def _atomic(path: Path, write: Callable[[Path], None]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        tmp_path.unlink()
        write(tmp_path)
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    return path


def _sqlite(inv: Inventory, path: Path) -> None:
    con = sqlite3.connect(path)
    try:
        con.executescript(
            """
            CREATE TABLE apps (app TEXT PRIMARY KEY);
            CREATE TABLE models (app TEXT, location TEXT, format TEXT, size_bytes INTEGER,
                sha256 TEXT, suspected INTEGER, reason TEXT, details TEXT);
            CREATE TABLE libraries (app TEXT, location TEXT, framework TEXT, abi TEXT,
                size_bytes INTEGER, evidence TEXT);
            CREATE TABLE packages (app TEXT, location TEXT, package TEXT, framework TEXT,
                version TEXT, evidence TEXT);
            CREATE TABLE issues (app TEXT, location TEXT, kind TEXT, detail TEXT);
            CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
            """
        )
        con.executemany("INSERT INTO apps VALUES (?)", [(a,) for a in inv.apps])
        con.executemany(
            "INSERT INTO models VALUES (?,?,?,?,?,?,?,?)",
            [(m.app, m.path, m.format, m.size_bytes, m.sha256, int(m.suspected), m.reason,
              json.dumps(m.details, default=str)) for m in inv.models],
        )  # fmt: skip
        con.executemany(
            "INSERT INTO libraries VALUES (?,?,?,?,?,?)",
            [(x.app, x.path, x.framework, x.abi, x.size_bytes, x.evidence) for x in inv.libraries],
        )
        con.executemany(
            "INSERT INTO packages VALUES (?,?,?,?,?,?)",
            [(x.app, x.path, x.package, x.framework, x.version, x.evidence) for x in inv.packages],
        )
        con.executemany(
            "INSERT INTO issues VALUES (?,?,?,?)",
            [(x.app, x.path, x.kind, x.detail) for x in inv.issues],
        )
        con.executemany(
            "INSERT INTO meta VALUES (?,?)",
            [("schema", "graphrec.mining.inventory/1"), ("roots", json.dumps(inv.roots)),
             ("stats", json.dumps(inv.to_dict()["stats"]))],
        )  # fmt: skip
        con.commit()
    finally:
        con.close()


def _csv(inv: Inventory, path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(FLAT_COLUMNS))
        writer.writeheader()
        writer.writerows(flat_rows(inv))


def _parquet(inv: Inventory, path: Path) -> None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise InventoryFormatError(
            path,
            "writing Parquet needs pyarrow, which is not installed "
            "(pip install pyarrow), or choose .sqlite, .csv or .json",
        ) from exc
    rows = flat_rows(inv)
    table = pa.Table.from_pylist(
        rows,
        schema=pa.schema(
            [("record", pa.string()), ("app", pa.string()), ("location", pa.string()),
             ("what", pa.string()), ("abi", pa.string()), ("size_bytes", pa.int64()),
             ("sha256", pa.string()), ("suspected", pa.bool_()), ("evidence", pa.string()),
             ("version", pa.string()), ("details", pa.string())]
        ),
    )  # fmt: skip
    pq.write_table(table, path)


def write_inventory(inv: Inventory, path: str | os.PathLike[str]) -> Path:
    """Write ``inv`` in the format named by the suffix of ``path``.

    ``.json`` keeps everything (and can be read back with
    :meth:`Inventory.load_json`); ``.sqlite`` / ``.db`` writes one table per
    finding kind; ``.csv`` and ``.parquet`` write one flat row per finding.

    Args:
        inv: The inventory.
        path: Output file.

    Returns:
        The path written.

    Raises:
        InventoryFormatError: Unknown suffix, or ``.parquet`` without pyarrow.
    """
    out = Path(path)
    suffix = out.suffix.lower()

    def _json(p: Path) -> None:
        p.write_text(inv.to_json(), encoding="utf-8")

    writers: dict[str, Callable[[Path], None]] = {
        ".json": _json,
        ".sqlite": lambda p: _sqlite(inv, p),
        ".db": lambda p: _sqlite(inv, p),
        ".csv": lambda p: _csv(inv, p),
        ".parquet": lambda p: _parquet(inv, p),
    }
    if suffix not in writers:
        raise InventoryFormatError(
            out, f"unknown inventory format {suffix or '(none)'}; use one of {', '.join(SUFFIXES)}"
        )
    if suffix == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            _parquet(inv, out)  # raises the clear error before any file is touched
    return _atomic(out, writers[suffix])
