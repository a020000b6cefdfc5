"""Train the twin heads shipped in ``graphrec/data/selection/twin`` (maintainers; niced).

Only catalogue texts are used (entry descriptions, README paragraphs and their sentences,
task definitions); the held-out evaluation queries are never read here.

Usage:
    nice -n 19 python -m graphrec.selection.train [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

__all__ = ["train_heads"]


def train_heads(
    out: Path,
    catalogue: str | None = None,
    crops_per_doc: int = 0,
    epochs: int = 15,
    lr: float = 1e-3,
) -> dict[str, dict[str, float]]:
    """Train the single-scale (``document``) and the ``multiscale`` heads into ``out``.

    Returns:
        Per head: the first and last epoch loss and the training seconds.
    """
    import torch

    from graphrec.selection.catalogue import SHIPPED_SOURCES, Catalogue
    from graphrec.selection.encoder import SCALES, TwinConfig, save_twin, train_twin
    from graphrec.selection.select import cached_features, training_texts

    torch.set_num_threads(1)
    cat = Catalogue.open(catalogue)
    entries = [e for e in cat.entries() if e.source in SHIPPED_SOURCES]
    docs, labels = training_texts(entries)
    crops, crop_labels = _crops(docs, labels, per_doc=crops_per_doc, seed=0)
    docs, labels = docs + crops, labels + crop_labels
    t0 = time.perf_counter()
    feats = cached_features(cat, docs)
    encode_s = time.perf_counter() - t0
    summary: dict[str, dict[str, float]] = {}
    for name, scales in (("document", ("document",)), ("multiscale", SCALES)):
        config = TwinConfig(scales=scales, epochs=epochs, lr=lr)
        t0 = time.perf_counter()
        head, losses = train_twin(feats, labels, config)
        secs = time.perf_counter() - t0
        save_twin(
            head,
            config,
            out / name,
            {
                "texts": len(docs),
                "entries": len(entries),
                "catalogue_digest": cat.digest(),
                "loss_first": losses[0],
                "loss_last": losses[-1],
                "train_seconds": round(secs, 2),
                "encode_seconds": round(encode_s, 2),
            },
        )
        summary[name] = {"loss_first": losses[0], "loss_last": losses[-1], "seconds": secs}
    return summary


def _crops(
    docs: list[str], labels: list[str], per_doc: int, seed: int
) -> tuple[list[str], list[str]]:
    """Short random word spans of each text (4-10 words), query-length training texts."""
    import random

    rng = random.Random(seed)
    out, out_labels = [], []
    for doc, label in zip(docs, labels, strict=True):
        words = doc.split()
        if len(words) < 8:
            continue
        for _ in range(per_doc):
            n = rng.randint(4, min(10, len(words)))
            start = rng.randint(0, len(words) - n)
            out.append(" ".join(words[start : start + n]))
            out_labels.append(label)
    return out, out_labels


def main() -> None:  # pragma: no cover - a maintainer's script
    from graphrec.selection.select import TWIN_DIR

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=TWIN_DIR)
    ap.add_argument("--catalogue", default=None)
    ap.add_argument("--crops", type=int, default=0, help="random word spans per text")
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--lr", type=float, default=1e-3)
    args = ap.parse_args()
    print(
        json.dumps(
            train_heads(args.out, args.catalogue, args.crops, args.epochs, args.lr), indent=2
        )
    )


if __name__ == "__main__":  # pragma: no cover
    main()
