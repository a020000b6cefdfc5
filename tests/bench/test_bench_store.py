"""Tests for graphrec.bench.store: round trip, uniqueness, schema checks, export."""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from graphrec.bench.store import HARNESS_VERSION, SCHEMA_VERSION, ResultStore
from graphrec.errors import BenchStoreError


def _row(i: int, **kw: Any) -> dict[str, Any]:
    row = {
        "model_sha256": f"sha{i}",
        "model_name": f"m{i}",
        "candidate_id": "onnxruntime/cpu/fp32/opt=all/threads=1",
        "device_id": "dev-1",
        "round": 0,
        "status": "ok",
        "p50_ms": 1.5 + i,
        "convert_cached": True,
    }
    row.update(kw)
    return row


def test_round_trip_and_extra(tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite"
    with ResultStore(db) as store:
        store.add_device("dev-1", {"name": "x"})
        store.add_model("sha0", "m0", "/m0.onnx", {"input_shapes": [[1, 2]]})
        assert store.insert_result(_row(0, reference="unavailable"))
    with ResultStore(db) as store:  # reopen: everything was committed
        rows = store.rows()
        assert len(rows) == 1
        r = rows[0]
        assert r["p50_ms"] == 1.5 and r["status"] == "ok" and r["convert_cached"] == 1
        assert r["harness_version"] == HARNESS_VERSION and r["created_at"]
        assert '"reference": "unavailable"' in r["extra"]
        assert store.devices() == {"dev-1": {"name": "x"}}
        assert store.models()["sha0"]["spec"] == {"input_shapes": [[1, 2]]}
        assert store.schema_version == SCHEMA_VERSION


def test_wal_mode(tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite"
    ResultStore(db).close()
    mode = sqlite3.connect(db).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_unique_key_and_replace(tmp_path: Path) -> None:
    with ResultStore(tmp_path / "r.sqlite") as store:
        assert store.insert_result(_row(0))
        assert not store.insert_result(_row(0, p50_ms=9.0))  # same key: ignored
        assert store.rows()[0]["p50_ms"] == 1.5
        assert store.insert_result(_row(0, p50_ms=9.0), replace=True)
        assert store.count() == 1 and store.rows()[0]["p50_ms"] == 9.0
        assert store.insert_result(_row(0, round=1))
        assert store.done_keys("dev-1") == {
            ("sha0", "onnxruntime/cpu/fp32/opt=all/threads=1", "dev-1", 0),
            ("sha0", "onnxruntime/cpu/fp32/opt=all/threads=1", "dev-1", 1),
        }
        assert store.done_keys("other") == set()


def test_filters(tmp_path: Path) -> None:
    with ResultStore(tmp_path / "r.sqlite") as store:
        store.insert_result(_row(0))
        store.insert_result(_row(1, status="crashed", p50_ms=None))
        assert store.count(status="crashed") == 1
        with pytest.raises(BenchStoreError, match="no column"):
            store.rows(nope=1)


def test_refuses_other_schema_version(tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite"
    ResultStore(db).close()
    con = sqlite3.connect(db)
    con.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    con.commit()
    con.close()
    with pytest.raises(BenchStoreError, match="schema version 999"):
        ResultStore(db)


def test_not_a_database(tmp_path: Path) -> None:
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(BenchStoreError) as info:
        ResultStore(bad)
    assert "bad.sqlite" in str(info.value)


def test_export_csv_and_parquet(tmp_path: Path) -> None:
    with ResultStore(tmp_path / "r.sqlite") as store:
        for i in range(3):
            store.insert_result(_row(i))
        out = store.export_csv(tmp_path / "r.csv")
        with out.open() as fh:
            rows = list(csv.DictReader(fh))
        assert [r["model_name"] for r in rows] == ["m0", "m1", "m2"]
        pq = pytest.importorskip("pyarrow.parquet")
        table = pq.read_table(store.export_parquet(tmp_path / "r.parquet"))
        assert table.num_rows == 3
        assert table.column("p50_ms").to_pylist() == [1.5, 2.5, 3.5]
