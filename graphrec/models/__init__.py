"""Deprecated: the learned recommender moved to :mod:`graphrec.recommender`.

``graphrec.models`` and its submodules still import for one release, with a
:class:`DeprecationWarning`; each ``graphrec.models.X`` is the module
``graphrec.recommender.X`` itself (``graphrec.models.dataset`` is
:mod:`graphrec.dataset.samples`), so classes and ``isinstance`` checks are shared.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from types import ModuleType
from typing import Any

_MOVED = {
    "artefact": "graphrec.recommender.artefact",
    "blend": "graphrec.recommender.blend",
    "dataset": "graphrec.dataset.samples",
    "encoder": "graphrec.recommender.encoder",
    "features": "graphrec.recommender.features",
    "latency_gbdt": "graphrec.recommender.latency_gbdt",
    "medn": "graphrec.recommender.medn",
    "pso_catboost": "graphrec.recommender.pso_catboost",
    "ranking": "graphrec.recommender.ranking",
}

warnings.warn(
    "graphrec.models is deprecated and will be removed in the next release; "
    "use graphrec.recommender (graphrec.dataset.samples for RecDataset)",
    DeprecationWarning,
    stacklevel=2,
)


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(self.target)

    def exec_module(self, module: ModuleType) -> None:
        return None


class _AliasFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        prefix, _, name = fullname.rpartition(".")
        if prefix != __name__ or name not in _MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(_MOVED[name]))


if not any(isinstance(f, _AliasFinder) for f in sys.meta_path):
    sys.meta_path.insert(0, _AliasFinder())


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
