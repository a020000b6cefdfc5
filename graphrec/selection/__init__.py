"""Function-driven model selection (``graphrec select``): a description of the job in
words -> catalogue models ranked by fit (TF-IDF + Labeled-LDA coarse classification, a
twin MiniLM encoder with multi-scale features) and by cost on the device (latency
predicted by ``graphrec.recommend``).

Example:
    >>> from graphrec.selection import select
    >>> sel = select("remove the background of product photos", top_k=3)  # doctest: +SKIP
    >>> sel.to_pandas()[["model_id", "task", "relevance", "latency_ms"]]  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from graphrec._lazy import lazy_attributes

if TYPE_CHECKING:
    from graphrec.selection.catalogue import Catalogue, Entry
    from graphrec.selection.select import Result, Selection, Selector, select
    from graphrec.selection.tasks import TASKS

__all__ = ["TASKS", "Catalogue", "Entry", "Result", "Selection", "Selector", "select"]

__getattr__ = lazy_attributes(
    __name__,
    {
        "Catalogue": "graphrec.selection.catalogue",
        "Entry": "graphrec.selection.catalogue",
        "Result": "graphrec.selection.select",
        "Selection": "graphrec.selection.select",
        "Selector": "graphrec.selection.select",
        "select": "graphrec.selection.select",
        "TASKS": "graphrec.selection.tasks",
    },
)
