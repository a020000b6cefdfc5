"""Every measured row traces to a zoo model that regenerates bit-identically from its seed.

Checks a deterministic sample of the models in the committed campaign snapshot (and, once
it ships, the dataset): the store's sha256 of the file that was measured must equal the
sha256 of ``ZooEntry.from_model_id(model_name).onnx_bytes()`` regenerated here.
"""

from __future__ import annotations

import gzip
import hashlib
import sqlite3
from pathlib import Path

import pytest

from graphrec.zoo import ZooEntry

SNAPSHOT = (
    Path(__file__).resolve().parents[2] / "benchmarks" / "campaign_snapshot" / "campaign.sqlite.gz"
)


def _sample(path: Path, tmp: Path, k: int = 3) -> list[tuple[str, str]]:
    db = tmp / "snap.sqlite"
    db.write_bytes(gzip.decompress(path.read_bytes()))
    con = sqlite3.connect(db)
    rows = con.execute(
        "SELECT DISTINCT model_name, model_sha256 FROM results WHERE model_name IS NOT NULL ORDER BY model_sha256"
    ).fetchall()
    con.close()
    # The lightest families first (export time), then a deterministic spread.
    light = [
        r
        for r in rows
        if r[0].split("-s")[0] in {"mlp_mixer", "nb201", "rnn", "squeezenet", "audio_cnn"}
    ]
    return (light or rows)[:k]


@pytest.mark.skipif(not SNAPSHOT.exists(), reason="no campaign snapshot committed")
def test_campaign_rows_regenerate_bit_identically(tmp_path: Path) -> None:
    sample = _sample(SNAPSHOT, tmp_path)
    assert sample
    for name, sha in sample:
        data = ZooEntry.from_model_id(name).onnx_bytes()
        assert hashlib.sha256(data).hexdigest() == sha, name
