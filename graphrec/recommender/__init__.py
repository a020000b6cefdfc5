"""The learned recommender: which deployment choice runs a model fastest on a device.

:class:`Recommender` is the one estimator (``fit`` / ``predict_latency`` / ``rank`` /
``score``, scikit-learn compatible); its parts are imported on first use (torch and
CatBoost are heavy):

* :mod:`graphrec.recommender.estimator`: :class:`Recommender`;
* :mod:`graphrec.recommender.encoder`: the GNN graph encoder;
* :mod:`graphrec.recommender.medn`: the MEDN multi-task latency / cold-start /
  deployability network;
* :mod:`graphrec.recommender.latency_gbdt`: the pooled CatBoost latency regressor;
* :mod:`graphrec.recommender.pso_catboost`: the best-choice head, CatBoost with class
  weights and hyper-parameters tuned by particle swarm optimisation;
* :mod:`graphrec.recommender.ranking`: latency distributions and the head's opinion
  combined into ranked choices with expected losses;
* :mod:`graphrec.recommender.baselines`: the simple rules it must beat;
* :mod:`graphrec.recommender.evaluate`: leave-family-out evaluation with confidence
  intervals;
* :mod:`graphrec.recommender.artefact`: the saved folder;
* :mod:`graphrec.recommender.train`: training from results stores (``graphrec train``).

Example:
    >>> from graphrec.recommender import Recommender
    >>> Recommender(alpha="auto").get_params()["alpha"]
    'auto'
"""

from __future__ import annotations

from typing import Any

__all__ = ["Recommender"]


def __getattr__(name: str) -> Any:
    if name == "Recommender":
        from graphrec.recommender.estimator import Recommender

        return Recommender
    raise AttributeError(f"module 'graphrec.recommender' has no attribute {name!r}")
