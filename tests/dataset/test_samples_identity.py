"""RecDataset with the measurement key: two batch sizes of one file are two samples, and
an ``implausible`` row counts as a failure of its candidate (not as unmeasured)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtimes"))

from tiny_models import make_mlp

from graphrec.bench.store import ResultStore
from graphrec.dataset.samples import RecDataset
from graphrec.runtimes.base import input_key, measurement_key
from graphrec.runtimes.inputs import model_spec

A = "onnxruntime/cpu/fp32/opt=all/threads=1"
B = "onnxruntime/cpu/fp32/opt=basic/threads=1"


def test_two_shapes_two_samples_and_implausible_is_a_failure(tmp_path: Path) -> None:
    path = make_mlp(tmp_path / "mlp_dyn.onnx", dynamic_batch=True)
    db = tmp_path / "r.sqlite"
    with ResultStore(db) as store:
        store.add_device("dev", {"name": "dev", "logical_cores": 2})
        for batch, lat in ((1, 1.0), (8, 5.0)):
            spec = model_spec(path, batch_size=batch)
            store.add_model(spec.sha256, spec.name, str(path), spec.to_dict())
            for cand, status, p50 in ((A, "ok", lat), (B, "implausible", lat / 1000)):
                store.insert_result(
                    {
                        "measurement_key": measurement_key(spec, cand, "1"),
                        "input_key": input_key(spec),
                        "model_sha256": spec.sha256,
                        "model_name": spec.name,
                        "candidate_id": cand,
                        "device_id": "dev",
                        "round": 0,
                        "runtime_version": "1",
                        "status": status,
                        "p50_ms": p50,
                    }
                )
    ds = RecDataset.from_stores([db])
    assert len(ds) == 2 and len(set(ds.model_sha256)) == 1  # one file, two input shapes
    assert sorted(np.exp(ds.log_latency_ms[:, ds.candidates.index(A)]).round(6)) == [1.0, 5.0]
    assert np.all(ds.deployable[:, ds.candidates.index(B)] == 0)  # failure, not NaN
    assert np.all(ds.best == ds.candidates.index(A))
    assert ds.flops[0] != ds.flops[1]  # features follow each sample's own input shapes
