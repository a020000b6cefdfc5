"""Family folds: whole families per fold, every sample once, deterministic."""

from __future__ import annotations

import numpy as np
import pytest

from graphrec.dataset.folds import family_folds, family_of


def test_family_folds_keep_families_whole() -> None:
    fam = ["a", "a", "b", "c", "c", "c", "d", "e"]
    folds = family_folds(fam, k=3, seed=1)
    assert len(folds) == 3
    allidx = np.sort(np.concatenate(folds))
    np.testing.assert_array_equal(allidx, np.arange(len(fam)))
    for f in folds:
        inside = {fam[i] for i in f}
        outside = {fam[i] for i in np.setdiff1d(np.arange(len(fam)), f)}
        assert not inside & outside
    again = family_folds(fam, k=3, seed=1)
    assert all(np.array_equal(x, y) for x, y in zip(folds, again, strict=True))
    assert len(family_folds(["a", "b"], k=5)) == 2
    with pytest.raises(ValueError, match="at least 1"):
        family_folds(fam, k=0)


def test_family_of_zoo_names() -> None:
    assert family_of("resnet-s3-int8_static") == "resnet"
    assert family_of("custom") == "custom"
