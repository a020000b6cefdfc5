"""Fixtures for the recommender tests: tiny models measured by the real harness.

Imported by ``tests/recommender/conftest.py`` and ``tests/test_api.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rec_models import make_convnet, make_mlp

from graphrec.bench.protocol import MeasureConfig

#: Small settings so that the tests stay fast.
MEDN_FAST = {"epochs": 8, "hidden": 16, "embedding_dim": 8, "batch_size": 4, "patience": 8}
HEAD_FAST = {"iterations": 20, "n_particles": 2, "n_pso_iterations": 1, "depth": 3}


@pytest.fixture(scope="session")
def rec_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("rec_models")
    make_mlp(d / "mlp-s0.onnx", width=64, depth=2, seed=0)
    make_mlp(d / "mlp-s1.onnx", width=256, depth=4, seed=1)
    make_convnet(d / "conv-s0.onnx", channels=8, seed=0)
    make_convnet(d / "conv-s1.onnx", channels=32, seed=1)
    return d


@pytest.fixture(scope="session")
def rec_store(rec_models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A results store of the 4 tiny models x onnxruntime candidates (threads=1)."""
    from graphrec.bench.harness import run_campaign
    from graphrec.bench.store import ResultStore

    db = tmp_path_factory.mktemp("rec_store") / "bench.sqlite"
    config = MeasureConfig(
        warmup_runs=1,
        min_runs=5,
        max_runs=50,
        min_time_s=0.0,
        max_time_s=0.05,
        timeout_s=60.0,
        memory_limit_mb=4096,
    )
    with ResultStore(db) as store:
        run_campaign(
            [rec_models_dir],
            store=store,
            runtimes=["onnxruntime"],
            threads=(1,),
            config=config,
            cache_dir=tmp_path_factory.mktemp("rec_cache"),
        )
    return db


@pytest.fixture(scope="session")
def rec_dataset(rec_store: Path):  # type: ignore[no-untyped-def]
    from graphrec.dataset.samples import RecDataset

    return RecDataset.from_stores([rec_store])


@pytest.fixture(scope="session")
def rec_artefact(rec_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from graphrec.recommender.train import train

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("rec_art") / "artefact"
    train([rec_store], out, medn_params=MEDN_FAST, head_params=HEAD_FAST, seed=0, alpha="auto")
    return out
