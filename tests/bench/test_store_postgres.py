"""The PostgreSQL backend of the results store, on a real server the tests start
(``initdb`` + ``pg_ctl`` on a free loopback port), and ``graphrec store copy``."""

from __future__ import annotations

import gzip
import json
import math
import shutil
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pg_server import PgServer, pg_bindir, start_server

from graphrec.bench.store import (
    SCHEMA_VERSION,
    ResultStore,
    SQLiteResultStore,
    copy_store,
    store_digest,
)
from graphrec.cli import main
from graphrec.errors import BenchStoreError

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "benchmarks" / "campaign_snapshot" / "harness-2.0-remeasure.sqlite.gz"

pytestmark = pytest.mark.skipif(
    pg_bindir() is None, reason="PostgreSQL server binaries missing (make sysdeps installs them)"
)


@pytest.fixture(scope="module")
def server() -> Iterator[PgServer]:
    srv = start_server()
    yield srv
    srv.cleanup()


@pytest.fixture()
def url(server: PgServer) -> str:
    return server.create_database("t_" + uuid.uuid4().hex[:10])


def _row(i: int, **kw: Any) -> dict[str, Any]:
    row = {
        "measurement_key": f"mk{i}",
        "input_key": f"ik{i}",
        "model_sha256": f"sha{i}",
        "model_name": f"m{i}",
        "candidate_id": "onnxruntime/cpu/fp32/opt=all/threads=1",
        "device_id": "dev-1",
        "round": 0,
        "status": "ok",
        "p50_ms": 0.1 + i / 3,
        "convert_cached": True,
        "threads": 1,
    }
    row.update(kw)
    return row


def test_url_picks_the_backend_and_rows_round_trip(url: str) -> None:
    with ResultStore(url) as store:
        assert type(store).__name__ == "PostgresResultStore"
        assert store.schema_version == SCHEMA_VERSION
        store.add_device("dev-1", {"name": "x"})
        store.add_model("sha0", "m0", "/m0.onnx", {"input_shapes": [[1, 2]]})
        assert store.insert_result(_row(0, reference="unavailable", worker_pid=2**40))
    with ResultStore(url, readonly=True) as store:  # a new connection: it was committed
        (r,) = store.rows()
        assert r["p50_ms"] == 0.1  # DOUBLE PRECISION: the float comes back bit for bit
        assert r["convert_cached"] == 1 and r["worker_pid"] == 2**40
        assert json.loads(r["extra"]) == {"reference": "unavailable"}
        assert store.devices() == {"dev-1": {"name": "x"}}
        assert store.models()["sha0"]["spec"] == {"input_shapes": [[1, 2]]}
        assert store.count(status="ok") == 1 and store.count(status="crashed") == 0
        assert store.done_keys("dev-1") == {("mk0", _row(0)["candidate_id"], "dev-1", 0)}
        with pytest.raises(BenchStoreError, match="no column"):
            store.rows(nope=1)
        with pytest.raises(BenchStoreError, match="read-only"):
            store.insert_result(_row(1))


def test_unique_key_and_replace(url: str) -> None:
    with ResultStore(url) as store:
        assert store.insert_result(_row(0))
        assert not store.insert_result(_row(0, p50_ms=9.0))
        assert store.rows()[0]["p50_ms"] == _row(0)["p50_ms"]
        assert store.insert_result(_row(0, p50_ms=9.0), replace=True)
        assert [r["p50_ms"] for r in store.rows()] == [9.0]
        assert store.insert_result(_row(0, round=1))
        assert store.count() == 2


def test_concurrent_writers_never_duplicate_or_lose_a_row(url: str) -> None:
    # 4 writers, each with its own connection, insert overlapping key ranges at once
    ranges = [range(0, 60), range(30, 90), range(0, 90, 2), range(45, 120)]
    inserted: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(ranges))

    def write(keys: range) -> None:
        try:
            with ResultStore(url) as store:
                barrier.wait()
                inserted.append(sum(store.insert_result(_row(i)) for i in keys))
        except BaseException as exc:  # (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(r,)) for r in ranges]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    expected = set().union(*ranges)
    assert sum(inserted) == len(expected)  # each key inserted by exactly one writer
    with ResultStore(url) as store:
        keys = [r["measurement_key"] for r in store.rows()]
    assert sorted(keys) == sorted(f"mk{i}" for i in expected)


def test_a_dropped_connection_is_retried(url: str) -> None:
    import psycopg

    with ResultStore(url) as store:
        assert store.insert_result(_row(0))
        pid = store._conn.info.backend_pid  # type: ignore[attr-defined]
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        assert store.insert_result(_row(1))  # reconnects and inserts
        assert store.reconnects >= 1  # type: ignore[attr-defined]
        assert store.count() == 2


def test_unreachable_server_and_missing_store_are_clear_errors(server: PgServer) -> None:
    dead = f"postgresql://postgres@127.0.0.1:{server.port + 1 if server.port < 65535 else 1}/x"
    with pytest.raises(BenchStoreError, match="cannot connect to PostgreSQL"):
        ResultStore(dead)
    empty = server.create_database("empty_" + uuid.uuid4().hex[:8])
    with pytest.raises(BenchStoreError, match="not a graphrec results store"):
        ResultStore(empty, readonly=True)


def test_schema_2_database_is_migrated_in_place(url: str) -> None:
    import psycopg

    from graphrec.bench.store import RESULT_COLUMNS
    from graphrec.bench.store_pg import pg_type

    v2_cols = RESULT_COLUMNS[:-6]
    with psycopg.connect(url, autocommit=True) as conn:  # a version-2 layout, by hand
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute("INSERT INTO meta VALUES ('schema_version', '2')")
        cols = ", ".join(f"{c} {pg_type(t)}" for c, t in v2_cols)
        conn.execute(
            "CREATE TABLE results (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, "
            f"{cols}, UNIQUE (measurement_key, candidate_id, device_id, round))"
        )
        conn.execute(
            "INSERT INTO results (measurement_key, model_sha256, candidate_id, device_id, "
            "round, status, p50_ms) VALUES ('k', 's', 'c', 'd', 0, 'ok', 1.25)"
        )
    with ResultStore(url) as store:
        assert store.schema_version == SCHEMA_VERSION
        (r,) = store.rows()
        assert r["p50_ms"] == 1.25 and r["ci_rel"] is None and "cores" in r


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped harness-2.0 store (768 measured rows), plus rows with edge values."""
    path = tmp_path_factory.mktemp("shipped") / "shipped.sqlite"
    with gzip.open(SHIPPED, "rb") as fin, path.open("wb") as fout:
        shutil.copyfileobj(fin, fout)
    with ResultStore(path) as store:
        store.insert_result(_row(10**6, p50_ms=float("inf"), error='ünïcode ✓\n"q"'))
        store.insert_result(_row(10**6 + 1, p50_ms=5e-324, min_ms=1.7976931348623157e308))
    return path


def test_store_copy_round_trips_sqlite_postgres_sqlite(
    shipped: Path, url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    back = tmp_path / "back.sqlite"
    assert main(["store", "copy", str(shipped), url, "--json", "--batch", "300"]) == 0
    there = json.loads(capsys.readouterr().out)
    assert main(["store", "copy", url, str(back), "--json"]) == 0
    home = json.loads(capsys.readouterr().out)
    with SQLiteResultStore(shipped, readonly=True) as src:
        rows = src.count()
        digest = store_digest(src)
    assert rows == 770
    assert there["rows"] == there["inserted"] == rows and there["identical"]
    assert home["rows"] == home["inserted"] == rows and home["identical"]
    assert there["source_digest"] == home["destination_digest"] == digest
    with ResultStore(back, readonly=True) as b, ResultStore(url, readonly=True) as pg:
        assert store_digest(b) == store_digest(pg) == digest
        edge = b.rows(model_sha256=f"sha{10**6}")[0]
        assert math.isinf(edge["p50_ms"]) and edge["error"] == 'ünïcode ✓\n"q"'
        tiny = pg.rows(model_sha256=f"sha{10**6 + 1}")[0]
        assert tiny["p50_ms"] == 5e-324 and tiny["min_ms"] == 1.7976931348623157e308
    # copying again adds nothing and keeps the row set
    again = copy_store(shipped, url)
    assert again.inserted == 0 and again.identical
    # the digest command prints the same hash for both backends
    assert main(["store", "digest", url]) == 0
    assert capsys.readouterr().out.split()[0] == digest


def test_store_copy_of_an_old_sqlite_store_migrates_a_temporary_copy(
    url: str, tmp_path: Path
) -> None:
    old = tmp_path / "v1.sqlite"
    conn = sqlite3.connect(old)
    conn.executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "INSERT INTO meta VALUES ('schema_version', '1');"
        "CREATE TABLE devices (device_id TEXT PRIMARY KEY, profile_json TEXT NOT NULL, "
        "first_seen TEXT NOT NULL);"
        "CREATE TABLE models (sha256 TEXT PRIMARY KEY, name TEXT, path TEXT, "
        "spec_json TEXT NOT NULL);"
        "INSERT INTO models VALUES ('s', 'm', '/m.onnx', '{}');"
        "CREATE TABLE results (id INTEGER PRIMARY KEY AUTOINCREMENT, model_sha256 TEXT NOT NULL,"
        " candidate_id TEXT NOT NULL, device_id TEXT NOT NULL, round INTEGER NOT NULL, "
        "status TEXT NOT NULL, p50_ms REAL, UNIQUE (model_sha256, candidate_id, device_id, round));"
        "INSERT INTO results (model_sha256, candidate_id, device_id, round, status, p50_ms) "
        "VALUES ('s', 'onnxruntime/cpu/fp32/opt=all/threads=1', 'd', 0, 'ok', 2.5);"
    )
    conn.commit()
    conn.close()
    before = old.read_bytes()
    report = copy_store(old, url)
    assert report.migrated_from == 1 and report.inserted == 1
    assert old.read_bytes() == before  # the source file is untouched
    with ResultStore(url) as store:
        (r,) = store.rows()
        assert r["p50_ms"] == 2.5 and r["measurement_key"]


def test_copy_refuses_the_same_store(url: str) -> None:
    with pytest.raises(BenchStoreError, match="same store"):
        copy_store(url, url)
