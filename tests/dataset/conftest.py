"""Dataset test fixtures: the recommender tests' tiny measured store (tests/recommender)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "recommender"))

from rec_fixtures import rec_dataset, rec_models_dir, rec_store  # noqa: F401
