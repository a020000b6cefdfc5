"""Fixtures of the graph tests; the model builders live in graph_models.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from graph_models import CASES, Built


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("graph_models")


@pytest.fixture(scope="session")
def built_models(model_dir: Path) -> dict[str, Built]:
    """Every test model, built once per session."""
    return {name: build(model_dir) for name, build in CASES.items()}
