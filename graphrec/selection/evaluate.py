"""Score the relevance ranking on a query set (the held-out one or the development one).

A query set is a YAML list of ``{query, tasks, models}``: the tasks whose models do the
job and catalogue ids (shell patterns) that are good answers.

* top-1 task accuracy: the first result's task is one of ``tasks``;
* top-5 model hit rate: one of the first five results matches ``models``;
* coarse task accuracy: the coarse classifier's most likely task is one of ``tasks``;
* MRR: mean reciprocal rank of the first result matching ``models``.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from graphrec.selection.errors import CatalogueError

__all__ = ["DEV", "HELD_OUT", "Query", "load_queries", "score"]

_DATA = Path(__file__).resolve().parent.parent / "data" / "selection"
HELD_OUT = _DATA / "queries.yaml"
DEV = _DATA / "dev_queries.yaml"


@dataclass(frozen=True)
class Query:
    """One evaluation query.

    Attributes:
        text: The query.
        tasks: Acceptable tasks.
        models: Acceptable model ids (shell patterns).
        origin: ``scenario`` or ``doc`` (how it was written).
    """

    text: str
    tasks: tuple[str, ...]
    models: tuple[str, ...]
    origin: str = ""

    def matches(self, model_id: str) -> bool:
        """Whether ``model_id`` is an acceptable answer."""
        return any(fnmatch.fnmatchcase(model_id, p) for p in self.models)


def load_queries(path: str | os.PathLike[str] = HELD_OUT) -> list[Query]:
    """Read a query set.

    Raises:
        CatalogueError: The file does not parse or an item is malformed.
        UnknownTaskError: An item names a task outside the vocabulary.
    """
    import yaml

    from graphrec.selection.tasks import check_task

    p = Path(path)
    try:
        items = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise CatalogueError(p, f"cannot read the query set: {exc}") from exc
    if not isinstance(items, list):
        raise CatalogueError(p, "expected a list of queries")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not item.get("query") or not item.get("tasks"):
            raise CatalogueError(p, f"item {i}: needs query and tasks")
        tasks = tuple(check_task(str(t)) for t in item["tasks"])
        out.append(
            Query(
                text=str(item["query"]),
                tasks=tasks,
                models=tuple(str(m) for m in item.get("models") or ()),
                origin=str(item.get("origin", "")),
            )
        )
    return out


def score(selector: Any, queries: list[Query], k: int = 5) -> dict[str, Any]:
    """Score a :class:`~graphrec.selection.select.Selector`'s relevance ranking.

    Returns:
        ``{"top1_task", "top5_model", "coarse_task", "mrr", "n", "misses"}``; ``misses``
        lists the queries whose first result has a wrong task or whose top five miss.
    """
    top1 = hit = coarse_ok = 0
    rr = []
    misses = []
    for q in queries:
        rel, p_task, _ = selector.relevance(q.text)
        order = np.argsort(-rel, kind="stable")
        ids = [selector.entries[int(i)].model_id for i in order]
        first_task = selector.entries[int(order[0])].task
        ok_task = first_task in q.tasks
        ok_hit = any(q.matches(m) for m in ids[:k])
        top1 += ok_task
        hit += ok_hit
        coarse_ok += selector.tasks[int(np.argmax(p_task))] in q.tasks
        rank = next((j + 1 for j, m in enumerate(ids) if q.matches(m)), None)
        rr.append(0.0 if rank is None else 1.0 / rank)
        if not (ok_task and ok_hit):
            misses.append({"query": q.text, "top1": ids[0], "top1_task": first_task})
    n = max(len(queries), 1)
    return {
        "n": len(queries),
        "top1_task": top1 / n,
        "top5_model": hit / n,
        "coarse_task": coarse_ok / n,
        "mrr": float(np.mean(rr)) if rr else 0.0,
        "misses": misses,
    }
