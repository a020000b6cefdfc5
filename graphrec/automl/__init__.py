"""Light-compute AutoML (``graphrec automl``): augmentation search, staged architecture
search with a latency term from graphrec's recommender, and deployment of the found model.

* :mod:`~graphrec.automl.data`: the three offline tasks (``digits``, ``mnist1d``,
  ``shapes``) and their splits.
* :mod:`~graphrec.automl.augment`: the differentiable, sigmoid-gated augmentation search
  and its baselines (none, RandAugment-style, discrete AutoAugment-style search).
* :mod:`~graphrec.automl.space` / :mod:`~graphrec.automl.search`: the cell search space,
  the 4-stage search, plain DARTS and random search.
* :mod:`~graphrec.automl.latency`: per-operation latency table from
  :func:`graphrec.recommend`, ONNX export, measurement with :func:`graphrec.verify`.
* :mod:`~graphrec.automl.pipeline`: the resumable end-to-end run.

Example:
    >>> from graphrec.automl import run_pipeline
    >>> summary = run_pipeline("digits", "runs/automl-digits", budget_min=5)  # doctest: +SKIP
    >>> summary["test_accuracy"], summary["measured_latency_ms"]  # doctest: +SKIP
"""

from __future__ import annotations

from graphrec._lazy import lazy_attributes

__all__ = ["TASKS", "AutoMLError", "load_task", "run_pipeline"]

__getattr__ = lazy_attributes(
    __name__,
    {
        "TASKS": "graphrec.automl.data",
        "AutoMLError": "graphrec.automl.data",
        "load_task": "graphrec.automl.data",
        "run_pipeline": "graphrec.automl.pipeline",
    },
)
