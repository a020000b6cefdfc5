"""The three offline tasks and their splits."""

from __future__ import annotations

import numpy as np
import pytest

from graphrec.automl.data import AutoMLError, load_task, make_shapes
from graphrec.errors import GraphRecError


def test_digits_splits_are_disjoint_stratified_and_standardised() -> None:
    t = load_task("digits")
    assert t.input_shape == (1, 8, 8) and t.n_classes == 10
    assert len(t.y_train) + len(t.y_val) + len(t.y_test) == 1797
    assert abs(len(t.y_val) - 0.2 * 1797) < 10 and abs(len(t.y_test) - 0.2 * 1797) < 10
    # every class in every split, in about the same share
    for y in (t.y_train, t.y_val, t.y_test):
        share = np.bincount(y, minlength=10) / len(y)
        assert share.min() > 0.07 and share.max() < 0.13
    assert abs(float(t.x_train.mean())) < 1e-4 and abs(float(t.x_train.std()) - 1) < 1e-3
    again = load_task("digits")
    np.testing.assert_array_equal(again.y_test, t.y_test)


def test_shapes_is_deterministic_balanced_and_not_trivial() -> None:
    x, y = make_shapes(n=160, seed=3)
    x2, y2 = make_shapes(n=160, seed=3)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    assert x.shape == (160, 1, 16, 16) and x.dtype == np.float32
    assert np.bincount(y).tolist() == [20] * 8
    # class means differ (the shapes are there), but single examples are noisy
    means = np.stack([x[y == c].mean(axis=0) for c in range(8)])
    assert np.abs(means[0] - means[1]).max() > 0.05
    assert float(x.std()) > 0.25


def test_mnist1d_is_one_dimensional() -> None:
    pytest.importorskip("mnist1d")
    t = load_task("mnist1d")
    assert t.input_shape == (1, 1, 40) and t.is_1d
    assert (len(t.y_train), len(t.y_val), len(t.y_test)) == (3000, 1000, 1000)


def test_bad_inputs_name_the_reason() -> None:
    with pytest.raises(AutoMLError, match=r"unknown task .cifar.*digits, mnist1d, shapes"):
        load_task("cifar")
    with pytest.raises(GraphRecError, match="at least 14 pixels"):
        make_shapes(n=4, size=8)


def test_subsample_keeps_every_split() -> None:
    t = load_task("digits").subsample(0.1)
    assert 100 < len(t.y_train) < 120 and len(t.y_val) >= 10 and len(t.y_test) >= 10
