"""Rank deployment choices for an ONNX model, then check the top ones by measuring them.

Run from the repository root (after ``make demo`` or ``make install``)::

    .venv/bin/python examples/recommend_and_verify.py examples/models/tiny_convnet.onnx

``graphrec.recommend`` answers in milliseconds from the shipped recommender;
``graphrec.verify`` then runs the real runtimes on this machine for the top choices, so
the predicted and measured latencies can be compared side by side.
"""

from __future__ import annotations

import argparse
import warnings

import graphrec


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", help="an .onnx file")
    ap.add_argument("--top", type=int, default=3, help="how many choices to measure")
    args = ap.parse_args()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rec = graphrec.recommend(args.model, "auto")
    for w in caught:
        print(f"warning: {w.message}")
    print(f"recommended on {rec.device_name}: {rec.best.candidate_id}")
    graphrec.verify(rec, args.top)
    frame = rec.to_pandas()
    cols = ["rank", "candidate_id", "latency_ms", "p_fastest", "expected_loss", "measured_ms"]
    print(frame[cols].head(max(args.top, 5)).to_string(index=False))
    ran = [c for c in rec.choices if c.measured_ms is not None]
    if ran:
        fastest = min(ran, key=lambda c: c.measured_ms or 0.0)
        print(f"fastest of the {len(ran)} measured: {fastest.candidate_id}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
