"""Tests for graphrec.bench.store: round trip, uniqueness, schema checks, export."""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from graphrec.bench.store import HARNESS_VERSION, SCHEMA_VERSION, ResultStore, migrate_copy
from graphrec.errors import BenchStoreError
from graphrec.runtimes.base import input_key, measurement_key

ORT_ID = "onnxruntime/cpu/fp32/opt=all/threads=1"


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
        key = measurement_key({"sha256": "sha0"}, ORT_ID, None)
        assert store.done_keys("dev-1") == {
            (key, ORT_ID, "dev-1", 0),
            (key, ORT_ID, "dev-1", 1),
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


_V1_RESULTS = """CREATE TABLE results (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    model_sha256 TEXT NOT NULL, model_name TEXT, candidate_id TEXT NOT NULL,
    device_id TEXT NOT NULL, round INTEGER NOT NULL, runtime TEXT, runtime_version TEXT,
    backend TEXT, precision TEXT, threads INTEGER, options TEXT, status TEXT NOT NULL,
    error TEXT, convert_s REAL, convert_cached INTEGER, load_ms REAL, first_run_ms REAL,
    cold_start_ms REAL, n_runs INTEGER, p10_ms REAL, p50_ms REAL, p90_ms REAL,
    mean_ms REAL, std_ms REAL, min_ms REAL, peak_rss_mb REAL, rss_delta_mb REAL,
    max_abs_err REAL, max_rel_err REAL, rel_l2_err REAL, wall_s REAL, worker_pid INTEGER,
    harness_version TEXT, created_at TEXT, extra TEXT,
    UNIQUE (model_sha256, candidate_id, device_id, round))"""


def _make_v1(db: Path, n_models: int = 3, rounds: int = 2) -> int:
    """A schema-version-1 store exactly as graphrec wrote it before the key change."""
    con = sqlite3.connect(db)
    con.executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "CREATE TABLE devices (device_id TEXT PRIMARY KEY, profile_json TEXT NOT NULL,"
        " first_seen TEXT NOT NULL);"
        "CREATE TABLE models (sha256 TEXT PRIMARY KEY, name TEXT, path TEXT,"
        " spec_json TEXT NOT NULL);"
        f"{_V1_RESULTS};"
        "INSERT INTO meta VALUES ('schema_version', '1'), ('created_at', 'then');"
        "INSERT INTO devices VALUES ('dev-1', '{}', 'then');"
    )
    n = 0
    for i in range(n_models):
        spec = {
            "sha256": f"sha{i}",
            "input_names": ["x"],
            "input_shapes": [[1, 4 + i]],
            "input_dtypes": ["float32"],
            "output_names": ["y"],
        }
        con.execute(
            "INSERT INTO models VALUES (?, ?, ?, ?)",
            (f"sha{i}", f"m{i}", f"/m{i}.onnx", json.dumps(spec)),
        )
        for cand in (ORT_ID, "openvino/cpu/fp32/threads=1", "mnn/cpu/fp32/threads=2"):
            for r in range(rounds):
                con.execute(
                    "INSERT INTO results (model_sha256, model_name, candidate_id, device_id,"
                    " round, runtime, runtime_version, status, p50_ms) VALUES"
                    " (?, ?, ?, 'dev-1', ?, ?, '1.0', 'ok', ?)",
                    (f"sha{i}", f"m{i}", cand, r, cand.split("/")[0], 1.0 + n),
                )
                n += 1
    # a row whose model is missing from the models table, and one with a broken id
    con.execute(
        "INSERT INTO results (model_sha256, candidate_id, device_id, round, status)"
        " VALUES ('orphan', ?, 'dev-1', 0, 'crashed')",
        (ORT_ID,),
    )
    con.execute(
        "INSERT INTO results (model_sha256, candidate_id, device_id, round, status)"
        " VALUES ('sha0', 'not a candidate', 'dev-1', 0, 'unsupported')"
    )
    con.commit()
    con.close()
    return n + 2


def test_v1_store_migrates_in_place_keeping_every_row(tmp_path: Path) -> None:
    db = tmp_path / "v1.sqlite"
    n = _make_v1(db)
    before = {
        r[0]: r[1:]
        for r in sqlite3.connect(db).execute(
            "SELECT id, model_sha256, candidate_id, round, status, p50_ms FROM results"
        )
    }
    with ResultStore(db) as store:
        assert store.schema_version == SCHEMA_VERSION == 3
        rows = store.rows()
        assert len(rows) == n == len(before)
        assert {
            r["id"]: (r["model_sha256"], r["candidate_id"], r["round"], r["status"], r["p50_ms"])
            for r in rows
        } == before
        spec0 = store.models()["sha0"]["spec"]
        r0 = next(r for r in rows if r["model_sha256"] == "sha0" and r["candidate_id"] == ORT_ID)
        assert r0["measurement_key"] == measurement_key(spec0, ORT_ID, "1.0")
        assert r0["input_key"] == input_key(spec0)
        assert len({r["measurement_key"] for r in rows}) == n // 2 + 1  # rounds share a key
        assert input_key(spec0) in store.input_specs()
        # new rows keep going after the migrated ones, and resume keys are the new ones
        assert store.insert_result({**_row(0), "runtime_version": "1.0", "round": 5})
        assert max(r["id"] for r in store.rows()) == n + 1
    with ResultStore(db, readonly=True) as store:  # migrated: reads fine
        assert store.count() == n + 1


def test_readonly_v1_store_says_how_to_migrate_and_copy_migrates(tmp_path: Path) -> None:
    db = tmp_path / "v1.sqlite"
    n = _make_v1(db)
    raw = db.read_bytes()
    with pytest.raises(BenchStoreError, match="by opening it once read-write"):
        ResultStore(db, readonly=True)
    copy = migrate_copy(db, tmp_path / "copy.sqlite")
    assert db.read_bytes() == raw  # the original is untouched
    with ResultStore(copy, readonly=True) as store:
        assert store.count() == n


def test_failed_migration_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    db = tmp_path / "v1.sqlite"
    _make_v1(db)
    con = sqlite3.connect(db)  # a results_v2 name held by a view makes the migration fail
    con.execute("CREATE VIEW results_v2 AS SELECT 1")
    con.commit()
    con.close()
    raw = db.read_bytes()
    with pytest.raises(BenchStoreError, match="file unchanged"):
        ResultStore(db)
    assert db.read_bytes() == raw
    assert (
        sqlite3.connect(db)
        .execute("SELECT value FROM meta WHERE key = 'schema_version'")
        .fetchone()[0]
        == "1"
    )


def _make_v2(db: Path, n: int = 5) -> None:
    """A version-2 store as harness 1.0 wrote it: v2 columns only."""
    with ResultStore(db) as store:
        for i in range(n):
            store.insert_result(_row(i, round=i % 2))
    con = sqlite3.connect(db)
    for col in ("ci_rel", "busy", "foreign_cpu", "steal", "load_avg", "cores"):
        con.execute(f"ALTER TABLE results DROP COLUMN {col}")
    con.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    con.commit()
    con.close()


def test_v2_store_migrates_to_v3_keeping_rows_and_keys(tmp_path: Path) -> None:
    db = tmp_path / "v2.sqlite"
    _make_v2(db)
    before = sqlite3.connect(db).execute("SELECT * FROM results ORDER BY id").fetchall()
    with pytest.raises(BenchStoreError, match="schema version 2"):
        ResultStore(db, readonly=True)
    with ResultStore(db) as store:
        assert store.schema_version == 3
        rows = store.rows()
        assert len(rows) == len(before) == 5
        for old, new in zip(before, rows, strict=True):
            assert tuple(new.values())[: len(old)] == tuple(old)  # every old value kept
            assert new["busy"] is None and new["ci_rel"] is None
        assert store.insert_result(_row(9, busy=1, ci_rel=0.01, cores="1"))
        assert store.rows(model_sha256="sha9")[0]["busy"] == 1
    with ResultStore(db, readonly=True) as store:  # migrated: readable read-only now
        assert store.count() == 6
