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


def train_heads(out: Path, catalogue: str | None = None) -> dict[str, dict[str, float]]:
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
    t0 = time.perf_counter()
    feats = cached_features(cat, docs)
    encode_s = time.perf_counter() - t0
    summary: dict[str, dict[str, float]] = {}
    for name, scales in (("document", ("document",)), ("multiscale", SCALES)):
        config = TwinConfig(scales=scales)
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


def main() -> None:  # pragma: no cover - a maintainer's script
    from graphrec.selection.select import TWIN_DIR

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=TWIN_DIR)
    ap.add_argument("--catalogue", default=None)
    args = ap.parse_args()
    print(json.dumps(train_heads(args.out, args.catalogue), indent=2))


if __name__ == "__main__":  # pragma: no cover
    main()
