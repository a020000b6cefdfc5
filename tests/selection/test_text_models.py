from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from graphrec.errors import ArtefactError
from graphrec.selection.coarse import CoarseClassifier, tokenize
from graphrec.selection.encoder import TwinConfig, load_twin, save_twin, train_twin, twin_embed

DOCS = [
    ("detect faces in photos and camera frames", "face-detection"),
    ("face boxes for selfies", "face-detection"),
    ("transcribe speech audio into text", "speech-recognition"),
    ("spoken words to text, dictation", "speech-recognition"),
    ("remove the background of an image, a mask per pixel", "segmentation"),
]
TASKS = ["face-detection", "speech-recognition", "segmentation", "ocr-detection"]


def test_tokenize_drops_stop_words() -> None:
    assert tokenize("The faces IN a Photo!") == ["faces", "photo"]


@pytest.mark.parametrize("use_llda", [False, True])
def test_coarse_distribution(use_llda: bool) -> None:
    docs, labels = zip(*DOCS, strict=True)
    clf = CoarseClassifier(use_llda=use_llda).fit(list(docs), list(labels), TASKS)
    p = clf.task_distribution("transcribe my audio")
    assert p.shape == (4,) and abs(p.sum() - 1) < 1e-6
    assert TASKS[int(p.argmax())] == "speech-recognition"
    assert p[TASKS.index("ocr-detection")] < 1e-3 or use_llda  # no document, no TF-IDF mass
    again = CoarseClassifier(use_llda=use_llda).fit(list(docs), list(labels), TASKS)
    np.testing.assert_allclose(again.task_distribution("transcribe my audio"), p)
    if use_llda:
        uniform = clf.llda_distribution("zzzz qqqq")
        np.testing.assert_allclose(uniform, np.full(4, 0.25))


def test_twin_trains_and_round_trips(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    labels = ["a", "b"] * 8
    centres = {"a": rng.standard_normal(384), "b": rng.standard_normal(384)}
    feats = np.stack(
        [np.stack([centres[t] + rng.standard_normal(384)] * 3) for t in labels]
    ).astype(np.float32)
    config = TwinConfig(epochs=30)
    head, losses = train_twin(feats, labels, config)
    assert losses[-1] < losses[0]
    save_twin(head, config, tmp_path / "h", {"note": "test"})
    loaded, meta = load_twin(tmp_path / "h")
    np.testing.assert_allclose(twin_embed(loaded, feats), twin_embed(head, feats), atol=1e-6)
    assert meta["config"]["epochs"] == 30
    with pytest.raises(ArtefactError, match="no usable twin head"):
        load_twin(tmp_path / "missing")
