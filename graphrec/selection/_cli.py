"""``graphrec select``: propose models for a job described in words, ranked by fit and cost.

graphrec select "count people in a shop camera feed" [--top-k K] [--device D] [--json]
graphrec select add model.onnx --task object-detection --description "..."
graphrec select add models.yaml
graphrec select list [--task T]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

__all__ = ["register"]


def _cmd(args: argparse.Namespace) -> int:
    words = list(args.query)
    if words and words[0] == "add":
        return _add(args, words[1:])
    if words and words[0] == "list" and len(words) == 1:
        return _list(args)
    return _select(args, " ".join(words))


def _select(args: argparse.Namespace, query: str) -> int:
    from graphrec.selection.select import Selector

    selector = Selector(args.catalogue, variant=args.variant)
    sel = selector.select(
        query,
        top_k=args.top_k,
        device=args.device,
        max_latency_ms=args.max_latency_ms,
        max_size_mb=args.max_size_mb,
        tasks=args.task or None,
    )
    if args.json:
        print(sel.to_json())
        return 0
    from rich.table import Table

    from graphrec.cli import console

    tasks = ", ".join(f"{t} {p:.2f}" for t, p in sel.task_distribution.items())
    table = Table(title=f"{sel.query!r} on {sel.device_id} (tasks: {tasks})")
    for col in ("#", "model", "task", "relevance", "latency ms", "MB", "score", "runtime"):
        table.add_column(col, justify="right" if col in ("#", "relevance", "score") else "left")
    for r in sel.results:
        table.add_row(
            str(r.rank),
            r.model_id,
            r.task,
            f"{r.relevance:.3f}",
            "not fetched" if r.latency_ms is None and not r.fetched else _fmt(r.latency_ms),
            _fmt(r.size_mb),
            f"{r.score:.3f}",
            r.runtime or "-",
        )
    out = console()
    out.print(table)
    for r in sel.results:
        out.print(f"{r.rank}. {r.model_id}: {r.reason}", highlight=False)
    if sel.excluded:
        parts = ", ".join(f"{n} {why}" for why, n in sel.excluded.items())
        out.print(f"excluded: {parts}", highlight=False)
    if not sel.results:
        out.print("no model meets the constraints", highlight=False)
    return 0


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def _add(args: argparse.Namespace, paths: list[str]) -> int:
    from graphrec.selection.catalogue import Catalogue, Entry
    from graphrec.selection.errors import SelectionError
    from graphrec.selection.sources import describe_onnx, load_yaml_entries
    from graphrec.selection.tasks import check_task

    if len(paths) != 1:
        raise SelectionError("usage: graphrec select add MODEL.onnx|MODELS.yaml [--task T ...]")
    path = Path(paths[0])
    cat = Catalogue.open(args.catalogue)
    if path.suffix.lower() in (".yaml", ".yml"):
        entries = load_yaml_entries(path, source="user")
    else:
        if not args.task or not args.description:
            raise SelectionError(f"{path}: an ONNX model needs --task and --description")
        if len(args.task) != 1:
            raise SelectionError("give one --task for a model")
        check_task(args.task[0])
        if not path.is_file():
            raise SelectionError(f"{path}: no such file")
        fig = describe_onnx(path)
        entries = [
            Entry(
                model_id=args.name or f"user/{path.stem}",
                package=args.package or "user",
                version=None,
                task=args.task[0],
                format="onnx",
                description=args.description,
                readme="",
                license=args.license,
                source="user",
                file_path=str(path.resolve()),
                **fig,
            )
        ]
    for e in entries:
        cat.add(e, replace=args.replace)
        print(f"added {e.model_id} ({e.task})")
    return 0


def _list(args: argparse.Namespace) -> int:
    from graphrec.selection.catalogue import Catalogue

    cat = Catalogue.open(args.catalogue)
    rows = [e for e in cat.entries() if not args.task or e.task in args.task]
    if args.json:
        print(json.dumps([{k: getattr(e, k) for k in _LIST_KEYS} for e in rows], indent=2))
        return 0
    for e in rows:
        size = "-" if e.size_mb is None else f"{e.size_mb:.1f} MB"
        print(f"{e.model_id:55s} {e.task:26s} {e.source:8s} {size}")
    print(f"{len(rows)} entries ({cat.path})")
    return 0


_LIST_KEYS = ("model_id", "package", "version", "task", "source", "size_bytes", "sha256")


def register(subparsers: Any) -> None:
    """Add ``select`` to the ``graphrec`` command."""
    p = subparsers.add_parser(
        "select",
        help="propose models for a job described in words, ranked by fit and cost",
        description=(
            "Propose catalogue models for a job described in words, ranked by fit and "
            "by predicted latency on the device. 'graphrec select add FILE' registers "
            "your own model (ONNX with --task/--description, or a YAML list); "
            "'graphrec select list' lists the catalogue."
        ),
    )
    p.add_argument("query", nargs="+", help="what the model should do (or: add FILE, list)")
    p.add_argument("--top-k", type=int, default=5, help="how many models (default 5)")
    p.add_argument("--device", default="auto", help="'auto' or a device profile JSON")
    p.add_argument("--max-latency-ms", type=float, default=None, help="latency limit")
    p.add_argument("--max-size-mb", type=float, default=None, help="model file size limit")
    p.add_argument(
        "--task",
        action="append",
        default=None,
        help="keep only this task (repeatable); with 'add': the model's task",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--catalogue", default=None, help="catalogue SQLite file")
    p.add_argument(
        "--variant",
        default="multiscale",
        choices=["tfidf", "tfidf+llda", "frozen", "twin", "multiscale"],
        help="ablation variant of the relevance model (default multiscale)",
    )
    p.add_argument("--description", default=None, help="with 'add': what the model does")
    p.add_argument("--name", default=None, help="with 'add': the catalogue id")
    p.add_argument("--package", default=None, help="with 'add': the package it comes from")
    p.add_argument("--license", default=None, help="with 'add': its license")
    p.add_argument("--replace", action="store_true", help="with 'add': replace an entry")
    p.set_defaults(func=_cmd)
