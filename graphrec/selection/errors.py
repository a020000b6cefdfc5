"""Errors of ``graphrec select`` (children of :class:`graphrec.errors.GraphRecError`)."""

from __future__ import annotations

from pathlib import Path

from graphrec.errors import GraphRecError

__all__ = ["CatalogueError", "QueryError", "SelectionError", "UnknownTaskError"]


class SelectionError(GraphRecError):
    """``graphrec select`` could not do what was asked."""


class QueryError(SelectionError, ValueError):
    """The query is empty, or its constraints cannot be met as written."""


class UnknownTaskError(SelectionError, ValueError):
    """A task name is not in the task vocabulary (the message lists the valid ones)."""


class CatalogueError(SelectionError):
    """A catalogue file (SQLite, YAML source, manifest) is missing or malformed.

    Attributes:
        path: The file involved.
        reason: What was wrong, in words.
    """

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")
