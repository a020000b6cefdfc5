"""The example workloads' accuracy figures are what the digits MLPs really score."""

from __future__ import annotations

from pathlib import Path

import pytest

from graphrec.serving.accuracy import digits_mlp_accuracy
from graphrec.serving.workload import load_workload

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "workloads"


@pytest.mark.parametrize(("units", "app", "variant"), [(8, "vision", "medium")])
def test_shipped_figure_matches_a_fresh_training(units: int, app: str, variant: str) -> None:
    wl = load_workload(EXAMPLES / "two_apps.yaml")
    shipped = next(v.accuracy for v in wl.apps[wl.app_index(app)].variants if v.name == variant)
    assert digits_mlp_accuracy(units) == pytest.approx(shipped, abs=5e-5)
