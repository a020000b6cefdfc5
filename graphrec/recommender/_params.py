"""The scikit-learn estimator protocol (parameters, cloning, tags) without importing it.

``sklearn.base`` costs about a second to import (it pulls in SciPy), and the recommend
command answers in less than that, so graphrec's estimators do not inherit from
``BaseEstimator``. They follow its rules instead, which is all that
:func:`sklearn.base.clone`, ``GridSearchCV`` and ``cross_validate`` need:

* ``__init__`` only stores its keyword arguments, under the same names;
* :meth:`get_params` reads them back (``deep=True`` adds ``name__param`` entries of
  nested estimators);
* :meth:`set_params` writes them, nested ones included, and returns the estimator;
* ``__sklearn_tags__`` (called by scikit-learn only, so it is imported by then) returns
  the default tags.

Example:
    >>> from graphrec.recommender.pso_catboost import PSOWCatBoostClassifier
    >>> head = PSOWCatBoostClassifier(depth=4)
    >>> head.set_params(depth=5).get_params()["depth"]
    5
"""

from __future__ import annotations

import inspect
from typing import Any

__all__ = ["EstimatorParams"]


class EstimatorParams:
    """Mixin: scikit-learn's ``get_params`` / ``set_params`` / tags contract."""

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        names = []
        for p in sig.parameters.values():
            if p.name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            names.append(p.name)
        return sorted(names)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor parameters by name (scikit-learn convention).

        Args:
            deep: Also list the parameters of nested estimators as ``name__param``.
        """
        out: dict[str, Any] = {}
        for name in self._param_names():
            value = getattr(self, name)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                out.update((f"{name}__{k}", v) for k, v in value.get_params(deep=True).items())
            out[name] = value
        return out

    def set_params(self, **params: Any) -> Any:
        """Set constructor parameters (``name__param`` reaches a nested estimator).

        Raises:
            ValueError: An unknown parameter name (the message lists the valid ones).
        """
        valid = self._param_names()
        nested: dict[str, dict[str, Any]] = {}
        for key, value in params.items():
            name, sep, sub = key.partition("__")
            if name not in valid:
                raise ValueError(
                    f"invalid parameter {name!r} for {type(self).__name__}; valid: {valid}"
                )
            if sep:
                nested.setdefault(name, {})[sub] = value
            else:
                setattr(self, name, value)
        for name, sub_params in nested.items():
            getattr(self, name).set_params(**sub_params)
        return self

    def __sklearn_tags__(self) -> Any:
        from sklearn.utils import Tags, TargetTags

        return Tags(estimator_type=None, target_tags=TargetTags(required=False))

    def __repr__(self) -> str:
        defaults = {
            p.name: p.default
            for p in inspect.signature(type(self).__init__).parameters.values()
            if p.default is not inspect.Parameter.empty
        }
        shown = []
        for k, v in self.get_params(deep=False).items():
            if k in defaults and _same(defaults[k], v):
                continue
            shown.append(f"{k}={v!r}")
        return f"{type(self).__name__}({', '.join(shown)})"


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a is b or a == b)
    except Exception:  # arrays and other objects without a plain truth value
        return False
