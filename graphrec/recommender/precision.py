"""How far each lossy deployment choice's outputs stray from fp32: the user's tolerance.

bf16, fp16 and int8 choices are faster and less exact. Whether they are exact *enough*
is the user's call, so :func:`graphrec.recommend` ranks only fp32 choices by default and
shows what a lossy choice would gain, with the probability that its outputs stay within
a tolerance. That probability comes from an :class:`ErrorModel`: per candidate kind (the
candidate id without its thread count), the distribution of the relative L2 error
``||out - ref|| / ||ref||`` that the harness measured against onnxruntime fp32 on the
training models. It is unconditional on the model: a model-aware error model needs
real trained weights (random-weight zoo models err 10-100x less than real ones), so the
figure is what the training data says for that kind, and is stated as such.

Example:
    >>> import numpy as np
    >>> m = ErrorModel({"x/cpu/bf16": np.log10([1e-3, 2e-3, 1e-1]).tolist()})
    >>> round(m.p_within("x/cpu/bf16/threads=2", 5e-3), 2)
    0.62
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["EXACT_PRECISIONS", "ErrorModel", "candidate_kind", "fit_error_model"]

#: Precisions that are exact choices (ranked by default).
EXACT_PRECISIONS: tuple[str, ...] = ("fp32",)
#: File name inside an artefact folder.
FILENAME = "precision.json"


def candidate_kind(candidate_id: str) -> str:
    """The candidate id without its thread count."""
    return "/".join(p for p in candidate_id.split("/") if not p.startswith("threads="))


@dataclass
class ErrorModel:
    """Per candidate kind, measured ``log10`` relative L2 errors of runs that completed.

    Attributes:
        log10_errors: ``{kind: [log10 error, ...]}`` (sorted on use).
        source: Where the errors were measured (data card text).
    """

    log10_errors: dict[str, list[float]] = field(default_factory=dict)
    source: str = ""

    def p_within(self, candidate_id: str, tolerance: float) -> float | None:
        """Probability that the choice's relative L2 error is at most ``tolerance``.

        ``(k + 0.5) / (n + 1)`` over the ``n`` training runs of the kind, ``k`` of them
        within the tolerance; ``None`` when the kind was never measured.
        """
        errs = self.log10_errors.get(candidate_kind(candidate_id))
        if not errs:
            return None
        a = np.asarray(errs, dtype=np.float64)
        k = int(np.count_nonzero(a <= np.log10(max(float(tolerance), 1e-30))))
        return (k + 0.5) / (len(a) + 1)

    def n_runs(self, candidate_id: str) -> int:
        """How many training runs the kind's figure rests on."""
        return len(self.log10_errors.get(candidate_kind(candidate_id), []))

    def save(self, folder: str | os.PathLike[str]) -> Path:
        """Write ``precision.json`` into ``folder``."""
        p = Path(folder) / FILENAME
        p.write_text(
            json.dumps(
                {
                    "source": self.source,
                    "log10_errors": {
                        k: [round(float(v), 3) for v in sorted(vals)]
                        for k, vals in sorted(self.log10_errors.items())
                    },
                }
            )
        )
        return p

    @classmethod
    def load(cls, folder: str | os.PathLike[str]) -> ErrorModel | None:
        """The model saved in an artefact folder, or ``None`` when it has none."""
        p = Path(folder) / FILENAME
        if not p.is_file():
            return None
        try:
            d = json.loads(p.read_text())
            return cls(
                {str(k): list(map(float, v)) for k, v in d["log10_errors"].items()},
                str(d.get("source", "")),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None


def fit_error_model(rows: Any, *, source: str = "", max_per_kind: int = 2000) -> ErrorModel:
    """Collect the measured errors per candidate kind from result rows.

    Args:
        rows: Rows with ``candidate_id``, ``status`` and ``rel_l2_err`` (dicts or a
            pandas DataFrame); runs with status ``ok`` or ``wrong_output`` count.
        source: Text kept with the model.
        max_per_kind: Keep at most this many errors per kind (evenly spaced quantiles).
    """
    if hasattr(rows, "to_dict"):
        rows = rows[["candidate_id", "status", "rel_l2_err"]].to_dict("records")
    by: dict[str, list[float]] = {}
    for r in rows:
        if r.get("status") not in ("ok", "wrong_output"):
            continue
        e = r.get("rel_l2_err")
        if e is None or not np.isfinite(float(e)):
            continue
        by.setdefault(candidate_kind(str(r["candidate_id"])), []).append(
            float(np.log10(max(float(e), 1e-12)))
        )
    out: dict[str, list[float]] = {}
    for k, vals in by.items():
        a = np.sort(np.asarray(vals))
        if len(a) > max_per_kind:
            a = np.quantile(a, np.linspace(0.0, 1.0, max_per_kind))
        out[k] = a.tolist()
    return ErrorModel(out, source)
