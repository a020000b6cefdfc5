"""Model and device features for the learned models.

A *sample* is one (model, device) pair. Its inputs are the model's heterogeneous graph
(:meth:`graphrec.graph.OperatorGraph.to_hetero_data`), the model-level numeric features
(:data:`graphrec.graph.GRAPH_FEATURE_NAMES`, ``log1p``-scaled) and the device features
(:meth:`graphrec.device.DeviceProfile.to_features`).

Example:
    >>> from graphrec.models.features import model_inputs
    >>> mi = model_inputs("model.onnx")  # doctest: +SKIP
    >>> mi.graph_features.shape  # doctest: +SKIP
    (22,)
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from torch_geometric.data import HeteroData

    from graphrec.device import DeviceProfile

__all__ = ["ModelInputs", "device_vector", "model_inputs"]


@dataclass
class ModelInputs:
    """What the learned models see of one ONNX model.

    Attributes:
        path: The ONNX file.
        graph_features: ``log1p`` of the model-level features, float64 ``[F]``.
        hetero: The heterogeneous graph (``HeteroData``).
        input_shapes: The concrete input shapes the features were computed with.
        flops: Total FLOPs (raw, for the FLOPs-rule baseline).
    """

    path: Path
    graph_features: np.ndarray
    hetero: HeteroData
    input_shapes: dict[str, list[int]]
    flops: float


def model_inputs(
    path: str | os.PathLike[str],
    *,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    batch_size: int = 1,
    dim_values: Mapping[str, int] | None = None,
) -> ModelInputs:
    """Load an ONNX model with the C++ kernel and return its learned-model inputs.

    Dynamic dimensions are resolved by the same rule as ``graphrec bench``
    (:func:`graphrec.graph.shapes.resolve_input_shapes`).

    Raises:
        ModelLoadError: The file cannot be read as ONNX (the subclass says why).
        ShapeSpecError: ``input_shapes`` does not fit the model.
    """
    import graphrec.graph

    g = graphrec.graph.load(
        path, input_shapes=input_shapes, batch_size=batch_size, dim_values=dim_values
    )
    feats = np.log1p(np.maximum(g.graph_features().astype(np.float64), 0.0))
    return ModelInputs(
        path=Path(path),
        graph_features=feats,
        hetero=g.to_hetero_data(),
        input_shapes={k: list(v) for k, v in g.input_shapes.items()},
        flops=float(g.total_flops),
    )


def device_vector(profile: DeviceProfile | Mapping[str, Any]) -> np.ndarray:
    """Device features in :meth:`DeviceProfile.feature_names` order (float64)."""
    from graphrec.device import DeviceProfile

    prof = profile if isinstance(profile, DeviceProfile) else DeviceProfile.from_dict(dict(profile))
    feats = prof.to_features()
    return np.array([feats[n] for n in DeviceProfile.feature_names()], dtype=np.float64)
