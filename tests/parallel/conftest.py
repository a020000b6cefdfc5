"""Fixtures of the planner tests: small validation models written once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from graphrec.parallel.models import write_model


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("parallel_models")


@pytest.fixture(scope="session")
def tiny_mlp(model_dir: Path) -> Path:
    """An 4-block MLP (width 64) with its torch sidecar."""
    return write_model("mlp", model_dir, name="tiny_mlp", width=64, depth=4, features=32)


@pytest.fixture(scope="session")
def tiny_cnn(model_dir: Path) -> Path:
    """A 4-block CNN on 16x16 images with its torch sidecar."""
    return write_model("cnn", model_dir, name="tiny_cnn", width=8, depth=4, resolution=16)
