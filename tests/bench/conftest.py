"""Fixtures for the harness tests: tiny generated models and a fast protocol."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtimes"))

from tiny_models import make_mlp, make_outlier_matmul

from graphrec.bench.protocol import MeasureConfig


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("models")
    make_mlp(d / "mlp_a.onnx", seed=0)
    make_mlp(d / "mlp_b.onnx", seed=1)
    return d


@pytest.fixture(scope="session")
def outlier_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_outlier_matmul(tmp_path_factory.mktemp("outlier") / "outlier.onnx")


@pytest.fixture()
def fast_config() -> MeasureConfig:
    return MeasureConfig(
        warmup_runs=1,
        min_runs=3,
        max_runs=30,
        min_time_s=0.0,
        max_time_s=0.05,
        timeout_s=60.0,
        memory_limit_mb=4096,
    )
