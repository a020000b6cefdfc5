"""The benchmark harness: measures ONNX models on real inference runtimes.

* :mod:`graphrec.bench.protocol` - statuses, timing loop, output agreement;
* :mod:`graphrec.bench.worker` / :mod:`graphrec.bench.pool` - isolated worker processes;
* :mod:`graphrec.bench.store` - the SQLite results store;
* :mod:`graphrec.bench.harness` - the campaign (:func:`run_campaign`);
* :mod:`graphrec.bench.report` - summaries and the HTML report.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from graphrec._lazy import lazy_attributes

if TYPE_CHECKING:
    from graphrec.bench.harness import run_campaign
    from graphrec.bench.protocol import MeasureConfig, Status
    from graphrec.bench.store import ResultStore

__all__ = ["MeasureConfig", "ResultStore", "Status", "run_campaign"]


# Imported on first access (PEP 562), so importing the package (or its _cli) stays cheap.
__getattr__ = lazy_attributes(
    __name__,
    {
        "run_campaign": "graphrec.bench.harness",
        "MeasureConfig": "graphrec.bench.protocol",
        "Status": "graphrec.bench.protocol",
        "ResultStore": "graphrec.bench.store",
    },
)
