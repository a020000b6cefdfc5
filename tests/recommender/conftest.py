"""Recommender test fixtures (defined in rec_fixtures.py, shared with tests/test_api.py)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rec_fixtures import (  # noqa: F401
    HEAD_FAST,
    MEDN_FAST,
    rec_artefact,
    rec_dataset,
    rec_models_dir,
    rec_store,
)
