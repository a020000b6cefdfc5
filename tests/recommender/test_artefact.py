"""Artefact save / load: checksums, no unpickling, round trip."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from graphrec.dataset.samples import RecDataset
from graphrec.errors import ArtefactError
from graphrec.recommender import Recommender


def test_round_trip(rec_artefact: Path, rec_dataset: RecDataset, tmp_path: Path) -> None:
    rec = Recommender.load(rec_artefact)
    meta = json.loads((rec_artefact / "meta.json").read_text())
    assert set(meta["sha256"]) >= {"medn.pt"}
    assert meta["candidates"] == rec.candidates == rec_dataset.candidates
    p1, q1 = rec.predict(rec_dataset)
    out = rec.save(tmp_path / "again")
    p2, q2 = Recommender.load(out).predict(rec_dataset)
    np.testing.assert_allclose(p1.log_latency_ms, p2.log_latency_ms, rtol=1e-6)
    np.testing.assert_allclose(q1, q2)
    assert Recommender.load(out).draw_scale_ == rec.draw_scale_ > 0


def test_draw_scale_fitted_and_applied(rec_artefact: Path, rec_dataset: RecDataset) -> None:
    rec = Recommender.load(rec_artefact)
    meta = json.loads((rec_artefact / "meta.json").read_text())
    fit = meta["info"]["draw_scale_fit"]
    if "samples" in fit:
        assert 0.0 < rec.draw_scale_ <= 1.5
    else:  # two families: none to hold out, nothing to fit
        assert rec.draw_scale_ == 1.0 and fit["method"].startswith("none")
    args = (rec_dataset.hetero, rec_dataset.graph_features, rec_dataset.device_features)
    rec.draw_scale_ = 1.0
    plain, _ = rec.predict_arrays(*args)
    rec.draw_scale_ = 0.4
    scaled, _ = rec.predict_arrays(*args)
    assert plain.log_latency_rel_sigma is not None and scaled.log_latency_rel_sigma is not None
    np.testing.assert_allclose(scaled.log_latency_rel_sigma, 0.4 * plain.log_latency_rel_sigma)
    np.testing.assert_allclose(scaled.log_latency_sigma, plain.log_latency_sigma)


def test_tampered_file_refused(rec_artefact: Path, tmp_path: Path) -> None:
    copy = tmp_path / "art"
    shutil.copytree(rec_artefact, copy)
    with (copy / "medn.pt").open("ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ArtefactError, match="sha256"):
        Recommender.load(copy)


def test_missing_and_bad_meta(tmp_path: Path) -> None:
    with pytest.raises(ArtefactError, match="cannot read"):
        Recommender.load(tmp_path)
    (tmp_path / "meta.json").write_text("{not json")
    with pytest.raises(ArtefactError, match="not valid JSON"):
        Recommender.load(tmp_path)
    (tmp_path / "meta.json").write_text(json.dumps({"format_version": 99}))
    with pytest.raises(ArtefactError, match="format 99"):
        Recommender.load(tmp_path)


def test_latency_ensemble_saved_and_blended(rec_artefact: Path, rec_dataset: RecDataset) -> None:
    rec = Recommender.load(rec_artefact)
    assert rec.latency_gbdt_ is not None and 0.0 < rec.latency_weight < 1.0
    pred, _ = rec.predict(rec_dataset)
    medn = rec.medn_.predict(rec_dataset)
    gb, _ = rec.latency_gbdt_.predict_arrays(
        rec_dataset.graph_features, rec_dataset.device_features
    )
    w = rec.latency_weight
    np.testing.assert_allclose(pred.log_latency_ms, w * medn.log_latency_ms + (1 - w) * gb)
    assert (pred.log_latency_sigma > 0).all()


def test_other_feature_set_refused(rec_artefact: Path, tmp_path: Path) -> None:
    art = tmp_path / "art"
    shutil.copytree(rec_artefact, art)
    meta = json.loads((art / "meta.json").read_text())
    meta["feature_names"] = meta["feature_names"][:-1]
    (art / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ArtefactError, match="retrain"):
        Recommender.load(art)
