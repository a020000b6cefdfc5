"""Fixtures: tiny models generated once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_models import export_cnn, make_mlp


@pytest.fixture(scope="session")
def cnn_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_cnn(tmp_path_factory.mktemp("cnn"))


@pytest.fixture(scope="session")
def mlp_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_mlp(tmp_path_factory.mktemp("mlp") / "mlp.onnx")
