"""The five module regressors: they learn, export to arrays and come back identical."""

from __future__ import annotations

import numpy as np
import pytest

from graphrec.errors import GraphRecError
from graphrec.recommender.modules.regressors import REGRESSORS, from_arrays, make_regressor


def _data(n: int = 60) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = np.exp(rng.uniform(0.5, 6.0, (n, 4)))  # sizes, as module features are
    y = np.column_stack(
        [0.9 * np.log(x[:, 0]) + 0.4 * np.log(x[:, 1]) - 3, 0.8 * np.log(x[:, 0]) - 2]
    )
    y[:4, 1] = np.nan  # a runtime that did not run some points
    return x, y


@pytest.mark.parametrize("name", REGRESSORS)
def test_regressor_learns_and_round_trips(name: str) -> None:
    x, y = _data()
    reg = make_regressor(name, seed=0).fit(x[:48], y[:48])
    pred = reg.predict(x[48:])
    assert pred.shape == (12, 2)
    base = np.abs(y[48:] - np.nanmean(y[:48], axis=0)).mean()
    assert np.abs(pred - y[48:]).mean() < 0.6 * base  # better than the mean by a margin
    back = from_arrays(reg.to_arrays())
    np.testing.assert_allclose(back.predict(x[48:]), pred, rtol=1e-9, atol=1e-9)
    assert reg.size_bytes() > 0 and reg.predict_time_us(x) > 0


def test_ridge_recovers_a_power_law() -> None:
    x, y = _data(200)
    reg = make_regressor("ridge").fit(x, np.nan_to_num(y[:, :1], nan=0.0))
    err = np.abs(reg.predict(x)[:, 0] - y[:, 0])
    assert np.median(err) < 0.05


def test_unknown_names_are_refused() -> None:
    with pytest.raises(GraphRecError, match="unknown module regressor 'svm'"):
        make_regressor("svm")
    with pytest.raises(GraphRecError, match="unknown kind"):
        from_arrays({"kind": np.array("svm")})
