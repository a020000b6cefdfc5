"""The measured dataset graphrec learns from: build it from harness stores, read its card.

Example:
    >>> from graphrec.dataset import build_dataset, load_dataset, card_figures
    >>> build_dataset(["runs/campaign.sqlite"], ["runs/zoo"], "graphrec/data/measurements")  # doctest: +SKIP
    >>> meas, models, meta = load_dataset("graphrec/data/measurements")  # doctest: +SKIP
    >>> card_figures(meas)["fragmentation"]["overall"]  # doctest: +SKIP
"""

from pathlib import Path

from graphrec.dataset.build import MEASUREMENT_COLUMNS, build_dataset, load_dataset
from graphrec.dataset.card import card_figures, fragmentation_svg, render_card

#: Where the shipped dataset lives inside the package.
SHIPPED_DATASET = Path(__file__).resolve().parent.parent / "data" / "measurements"

__all__ = [
    "MEASUREMENT_COLUMNS",
    "SHIPPED_DATASET",
    "build_dataset",
    "card_figures",
    "fragmentation_svg",
    "load_dataset",
    "render_card",
]
