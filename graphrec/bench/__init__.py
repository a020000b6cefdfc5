"""The benchmark harness: measures ONNX models on real inference runtimes.

* :mod:`graphrec.bench.protocol` - statuses, timing loop, output agreement;
* :mod:`graphrec.bench.worker` / :mod:`graphrec.bench.pool` - isolated worker processes;
* :mod:`graphrec.bench.store` - the SQLite results store;
* :mod:`graphrec.bench.harness` - the campaign (:func:`run_campaign`);
* :mod:`graphrec.bench.report` - summaries and the HTML report.
"""

from __future__ import annotations

from graphrec.bench.harness import run_campaign
from graphrec.bench.protocol import MeasureConfig, Status
from graphrec.bench.store import ResultStore

__all__ = ["MeasureConfig", "ResultStore", "Status", "run_campaign"]
