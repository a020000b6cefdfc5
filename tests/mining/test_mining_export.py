"""Inventory files: JSON, SQLite, CSV, Parquet."""

from __future__ import annotations

import csv
import sqlite3
import sys
from pathlib import Path

import pytest

from graphrec.errors import InventoryFormatError
from graphrec.mining import Inventory, scan
from graphrec.mining.export import FLAT_COLUMNS, write_inventory
from mining.mining_builders import MakeApk


@pytest.fixture
def inv(tmp_path: Path, make_apk: MakeApk) -> Inventory:
    return scan([make_apk(tmp_path / "a.apk")])


def test_sqlite(tmp_path: Path, inv: Inventory) -> None:
    path = write_inventory(inv, tmp_path / "out" / "inv.sqlite")
    con = sqlite3.connect(path)
    try:
        counts = {t: con.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                  for t in ("apps", "models", "libraries", "packages", "issues")}  # fmt: skip
        formats = {r[0] for r in con.execute("SELECT format FROM models")}
    finally:
        con.close()
    assert counts == {"apps": 1, "models": len(inv.models), "libraries": len(inv.libraries),
                      "packages": 0, "issues": 0}  # fmt: skip
    assert {"onnx", "tflite", "torchscript", "ncnn", "safetensors"} <= formats


def test_csv(tmp_path: Path, inv: Inventory) -> None:
    path = write_inventory(inv, tmp_path / "inv.csv")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == FLAT_COLUMNS
    assert len(rows) == len(inv.models) + len(inv.libraries)
    assert {r["record"] for r in rows} == {"model", "library"}


def test_parquet_or_clear_error(
    tmp_path: Path, inv: Inventory, monkeypatch: pytest.MonkeyPatch
) -> None:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        pq = None
    if pq is not None:
        path = write_inventory(inv, tmp_path / "inv.parquet")
        table = pq.read_table(path)
        assert table.num_rows == len(inv.models) + len(inv.libraries)
        assert table.column_names == list(FLAT_COLUMNS)
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(InventoryFormatError, match="pyarrow"):
        write_inventory(inv, tmp_path / "other.parquet")
    assert not (tmp_path / "other.parquet").exists()


def test_unknown_suffix_and_atomic_write(tmp_path: Path, inv: Inventory) -> None:
    with pytest.raises(InventoryFormatError, match="unknown inventory format"):
        write_inventory(inv, tmp_path / "inv.xlsx")
    target = tmp_path / "inv.json"
    target.write_text("old")
    write_inventory(inv, target)
    assert Inventory.load_json(target).models == inv.models
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.apk", "inv.json"]  # no temp files
