"""RecDataset from a real results store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from graphrec.dataset.samples import (
    RecDataset,
    family_of,
    first_measured,
    masked_argmax,
    regret_matrix,
)
from graphrec.errors import BenchStoreError


def test_from_store_shapes_and_targets(rec_dataset: RecDataset) -> None:
    ds = rec_dataset
    assert len(ds) == 4
    assert all(c.startswith("onnxruntime/") for c in ds.candidates)
    n, c = ds.log_latency_ms.shape
    assert (n, c) == (4, len(ds.candidates))
    assert ds.graph_features.shape[0] == 4 and ds.device_features.shape[0] == 4
    assert set(ds.families) == {"mlp", "conv"}
    ok = ds.deployable == 1
    assert np.all(np.isfinite(ds.log_latency_ms[ok]))
    best = ds.best
    assert np.all(best >= 0)
    # The label is the fastest deployable candidate.
    lat = np.where(ok, ds.log_latency_ms, np.inf)
    assert np.array_equal(best, np.argmin(lat, axis=1))


def test_subset_keeps_alignment(rec_dataset: RecDataset) -> None:
    sub = rec_dataset.subset([2, 0])
    assert sub.model_names == [rec_dataset.model_names[2], rec_dataset.model_names[0]]
    assert np.array_equal(sub.log_latency_ms[1], rec_dataset.log_latency_ms[0])


def test_regret_matrix() -> None:
    lat = np.log(np.array([[1.0, 2.0, np.nan], [3.0, 1.5, 6.0]]))
    dep = np.array([[1, 1, 0], [1, 1, 1]], dtype=float)
    r = regret_matrix(lat, dep)
    np.testing.assert_allclose(r[0], [0.0, 1.0, 1.0])  # failed: max(worst, 1)
    np.testing.assert_allclose(r[1], [1.0, 0.0, 3.0])


def test_regret_matrix_unmeasured() -> None:
    lat = np.log(np.array([[1.0, 2.0, np.nan, np.nan]]))
    dep = np.array([[1, 1, 0, np.nan]])
    r = regret_matrix(lat, dep)  # default: an unmeasured candidate's regret is unknown
    np.testing.assert_allclose(r[0, :3], [0.0, 1.0, 1.0])
    assert np.isnan(r[0, 3])
    r = regret_matrix(lat, dep, unmeasured="penalty")
    np.testing.assert_allclose(r[0], [0.0, 1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="unmeasured"):
        regret_matrix(lat, dep, unmeasured="zero")


def test_picks_skip_unmeasured() -> None:
    regret = np.array([[np.nan, 0.5, 0.0], [0.0, np.nan, 2.0], [np.nan, np.nan, np.nan]])
    scores = np.array([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.2, 0.7, 0.1]])
    assert masked_argmax(scores, regret).tolist() == [1, 0, 1]
    assert first_measured([0, 2, 1], regret[0]) == 2
    assert first_measured([1, 0], regret[2]) == 1


def test_family_of() -> None:
    assert family_of("resnet-s3-int8_static") == "resnet"
    assert family_of("model") == "model"


def test_missing_store(tmp_path: Path) -> None:
    with pytest.raises(BenchStoreError, match="no such results store"):
        RecDataset.from_stores([tmp_path / "nope.sqlite"])


def test_not_a_store(tmp_path: Path) -> None:
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(BenchStoreError, match=str(bad.name)):
        RecDataset.from_stores([bad])


def test_repeat_rounds_are_medians_and_not_benchmark_time(
    rec_store: Path, rec_dataset: RecDataset, tmp_path: Path
) -> None:
    """A second round of every row: the label is the median over rounds, and the
    exhaustive-benchmark wall time still counts one pass (round 0)."""
    import shutil
    import sqlite3

    db = tmp_path / "two_rounds.sqlite"
    shutil.copy(rec_store, db)
    conn = sqlite3.connect(db)
    cols = [r[1] for r in conn.execute("PRAGMA table_info(results)") if r[1] != "id"]
    sel = ", ".join("1" if c == "round" else "3 * p50_ms" if c == "p50_ms" else c for c in cols)
    conn.execute(f"INSERT INTO results ({', '.join(cols)}) SELECT {sel} FROM results")
    conn.commit()
    conn.close()
    two = RecDataset.from_stores([db])
    np.testing.assert_allclose(two.measure_wall_s, rec_dataset.measure_wall_s)
    ok = rec_dataset.deployable == 1
    # Two rounds, p50 and 3 x p50: the median is their mean, 2 x p50.
    np.testing.assert_allclose(
        two.log_latency_ms[ok], rec_dataset.log_latency_ms[ok] + np.log(2.0), rtol=1e-9
    )


def test_dataset_indexes_like_an_array(rec_dataset: RecDataset) -> None:
    """scikit-learn's splitters index X as X[idx] and X[idx, ...]."""
    n = len(rec_dataset)
    assert rec_dataset.shape == (n,)
    idx = np.array([n - 1, 0])
    sub = rec_dataset[idx]
    assert sub.model_names == [rec_dataset.model_names[-1], rec_dataset.model_names[0]]
    np.testing.assert_array_equal(sub.log_latency_ms, rec_dataset.log_latency_ms[idx])
    assert rec_dataset[idx, ...].model_names == sub.model_names
    mask = np.zeros(n, dtype=bool)
    mask[1] = True
    assert rec_dataset[mask].model_names == [rec_dataset.model_names[1]]
    assert len(rec_dataset[1:]) == n - 1
    with pytest.raises(IndexError):
        rec_dataset[idx, 0]
    with pytest.raises(IndexError):
        rec_dataset[np.ones(n + 1, dtype=bool)]


def test_store_is_read_without_writing(rec_store: Path, tmp_path: Path) -> None:
    """Training reads a store read-only: a copy's bytes are unchanged, a bad one is named."""
    import shutil

    copy = tmp_path / "copy.sqlite"
    shutil.copy(rec_store, copy)
    before = copy.read_bytes()
    ds = RecDataset.from_stores([copy])
    assert len(ds) > 0 and copy.read_bytes() == before
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"not sqlite at all" * 10)
    with pytest.raises(BenchStoreError, match=r"bad\.sqlite"):
        RecDataset.from_stores([bad])
    with pytest.raises(BenchStoreError, match="no such results store"):
        RecDataset.from_stores([tmp_path / "missing.sqlite"])
