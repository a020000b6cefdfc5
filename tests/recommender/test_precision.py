"""Precision is the user's choice: the error model and what recommend does with it."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import graphrec
from graphrec.errors import CandidateSpecError
from graphrec.recommender.precision import ErrorModel, candidate_kind, fit_error_model
from graphrec.runtimes.base import Candidate


def test_error_model_counts_the_measured_errors_per_kind(tmp_path: Path) -> None:
    rows = [
        {"candidate_id": "rt/cpu/int8/threads=1", "status": "ok", "rel_l2_err": 1e-3},
        {"candidate_id": "rt/cpu/int8/threads=2", "status": "ok", "rel_l2_err": 2e-2},
        {"candidate_id": "rt/cpu/int8/threads=2", "status": "wrong_output", "rel_l2_err": 0.5},
        {"candidate_id": "rt/cpu/int8/threads=2", "status": "load_failed", "rel_l2_err": None},
        {"candidate_id": "rt/cpu/int8/threads=1", "status": "ok", "rel_l2_err": float("nan")},
    ]
    m = fit_error_model(rows, source="test")
    assert candidate_kind("rt/cpu/int8/threads=2") == "rt/cpu/int8"
    assert m.n_runs("rt/cpu/int8/threads=7") == 3
    # (k + 0.5) / (n + 1): 1 of 3 within 5e-3, 2 within 5e-2, all within 1.
    assert m.p_within("rt/cpu/int8/threads=1", 5e-3) == pytest.approx(1.5 / 4)
    assert m.p_within("rt/cpu/int8/threads=1", 5e-2) == pytest.approx(2.5 / 4)
    assert m.p_within("rt/cpu/int8/threads=1", 1.0) == pytest.approx(3.5 / 4)
    assert m.p_within("other/cpu/bf16/threads=1", 1.0) is None
    m.save(tmp_path)
    back = ErrorModel.load(tmp_path)
    assert back is not None and back.source == "test"
    assert back.p_within("rt/cpu/int8/threads=1", 5e-2) == pytest.approx(2.5 / 4)
    (tmp_path / "precision.json").write_text("{broken")
    assert ErrorModel.load(tmp_path) is None
    assert ErrorModel.load(tmp_path / "nowhere") is None


def _precision(cid: str) -> str:
    return Candidate.parse(cid).precision


def test_recommend_ranks_exact_choices_unless_the_user_opts_in(
    rec_artefact: Path, rec_models_dir: Path
) -> None:
    model = rec_models_dir / "conv-s1.onnx"
    rec = graphrec.recommend(model, "auto", artefact=rec_artefact)
    ranked = [c for c in rec.choices if c.note is None]
    lossy = [c for c in rec.choices if c.note and c.note.startswith("lossy")]
    assert ranked and all(_precision(c.candidate_id) == "fp32" for c in ranked)
    assert lossy and all(_precision(c.candidate_id) != "fp32" for c in lossy)
    assert all(not c.deployable and c.expected_loss is None for c in lossy)
    assert rec.best.candidate_id in {c.candidate_id for c in ranked}
    # The artefact was trained here: its error model measured the int8 choice's errors.
    assert all(c.p_within_tolerance is not None and 0 < c.p_within_tolerance < 1 for c in lossy)
    assert all("the pick's speed" in (c.note or "") for c in lossy)
    # The lossy choices come after every ranked one.
    ranks = {c.candidate_id: c.rank for c in rec.choices}
    assert max(ranks[c.candidate_id] for c in ranked) < min(ranks[c.candidate_id] for c in lossy)

    opted = graphrec.recommend(model, "auto", artefact=rec_artefact, precision="fp32,int8")
    assert all(c.note is None for c in opted.choices)
    assert {_precision(c.candidate_id) for c in opted.choices} == {"fp32", "int8"}
    assert any(
        c.expected_loss is not None for c in opted.choices if _precision(c.candidate_id) == "int8"
    )


def test_a_tolerance_weighs_lossy_choices_by_their_risk(
    rec_artefact: Path, rec_models_dir: Path
) -> None:
    model = rec_models_dir / "conv-s1.onnx"
    loose = graphrec.recommend(model, "auto", artefact=rec_artefact, tolerance=1.0)
    strict = graphrec.recommend(model, "auto", artefact=rec_artefact, tolerance=1e-9)

    def p_int8(rec: graphrec.Recommendation) -> float:
        return float(
            np.mean([c.p_deployable for c in rec.choices if _precision(c.candidate_id) == "int8"])
        )

    assert all(c.note is None for c in strict.choices)  # every precision is ranked
    # No measured int8 error is below 1e-9: the smoothed share is 0.5 / (n + 1).
    int8 = [c for c in strict.choices if _precision(c.candidate_id) == "int8"]
    assert int8 and all(c.p_within_tolerance is not None for c in int8)
    assert all((c.p_within_tolerance or 1.0) <= 0.5 / 2 for c in int8)
    assert p_int8(strict) < p_int8(loose) / 5
    assert _precision(strict.best.candidate_id) == "fp32"


def test_unknown_precisions_are_refused(rec_artefact: Path, rec_models_dir: Path) -> None:
    with pytest.raises(CandidateSpecError, match="fp9"):
        graphrec.recommend(rec_models_dir / "mlp-s0.onnx", artefact=rec_artefact, precision="fp9")


def test_an_artefact_without_error_model_says_the_error_is_unknown(
    rec_artefact: Path, rec_models_dir: Path, tmp_path: Path
) -> None:
    art = tmp_path / "art"
    shutil.copytree(rec_artefact, art)
    (art / "precision.json").unlink()
    rec = graphrec.recommend(rec_models_dir / "conv-s1.onnx", artefact=art)
    lossy = [c for c in rec.choices if c.note and c.note.startswith("lossy")]
    assert lossy and all("error never measured" in (c.note or "") for c in lossy)
    assert all(c.p_within_tolerance is None for c in lossy)
