"""The one chart helper of every report: horizontal bar charts drawn with matplotlib.

:func:`bar_chart_svg` returns a self-contained ``<svg>`` element (no XML prolog, so it can
be inlined in HTML or written as a file). The output is reproducible: the same input gives
the same bytes (fixed ``svg.hashsalt``, no date or creator metadata, text kept as
``<text>`` rather than glyph paths). Every bar is a ``<g id="bar-…">`` group, so a reader (or a test)
can find the bars.

matplotlib is imported inside the functions, and pyplot is never used: the figures are
plain :class:`matplotlib.figure.Figure` objects, so drawing a report neither selects a
backend for the calling process nor pays matplotlib's import time on CLI start-up.

Example:
    >>> from graphrec.reporting import bar_chart_svg
    >>> svg = bar_chart_svg(["onnxruntime", "tract"], [1.5, 3.0], value_labels=["1.5 ms", "3 ms"])
    >>> svg.startswith("<svg")
    True
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["PALETTE", "bar_chart_png", "bar_chart_svg", "draw_bars"]

#: Colours given to bars (single series) or series (stacked) in order (Tableau 10).
PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
)

#: matplotlib settings of every chart: reproducible SVG with searchable text.
_RC: dict[Any, Any] = {
    "svg.hashsalt": "graphrec",
    "svg.fonttype": "none",
    "font.family": "DejaVu Sans",
    "font.size": 9.0,
    "axes.titlesize": 11.0,
    "axes.spines.top": False,
    "axes.spines.right": False,
}

Values = Sequence[float] | Mapping[str, Sequence[float]]


def draw_bars(
    ax: Axes,
    labels: Sequence[str],
    values: Values,
    *,
    title: str = "",
    xlabel: str = "",
    value_labels: Sequence[str] | None = None,
    colors: Sequence[str] | None = None,
    log_scale: bool = False,
    segment_label: Callable[[float], str] | None = None,
    percent_axis: bool = False,
    empty_text: str = "(none)",
) -> None:
    """Draw horizontal bars on ``ax``, the first label at the top.

    Args:
        ax: The matplotlib axes to draw on.
        labels: One label per bar (row).
        values: One value per row, or, for stacked bars, a mapping ``series -> one value
            per row``; zero segments are not drawn. Series get :data:`PALETTE` colours in
            order and a legend.
        title: Axes title.
        xlabel: x-axis label.
        value_labels: Text written after each bar (single series only).
        colors: One colour per bar (single series; default: :data:`PALETTE` in turn).
        log_scale: Logarithmic x axis (single series of positive values).
        segment_label: For stacked bars, the text written inside a segment that takes at
            least 6 % of its row, from the segment's value.
        percent_axis: x tick labels as percentages of 1 (values are fractions).
        empty_text: Written in place of the bars when there are no rows.
    """
    n = len(labels)
    if title:
        ax.set_title(title, loc="left")
    if xlabel:
        ax.set_xlabel(xlabel)
    if n == 0:
        ax.set_axis_off()
        ax.text(0.0, 0.5, empty_text, transform=ax.transAxes, va="center")
        return
    rows = list(range(n))
    ax.set_yticks(rows, [str(label) for label in labels])
    ax.set_ylim(n - 0.5, -0.5)  # first row at the top
    if isinstance(values, Mapping):
        _stacked(ax, n, values, segment_label)
    else:
        _single(ax, [float(v) for v in values], value_labels, colors, log_scale)
    if percent_axis:
        from matplotlib.ticker import PercentFormatter

        ax.xaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))


def _single(
    ax: Axes,
    values: list[float],
    value_labels: Sequence[str] | None,
    colors: Sequence[str] | None,
    log_scale: bool,
) -> None:
    n = len(values)
    palette = list(colors) if colors else [PALETTE[i % len(PALETTE)] for i in range(n)]
    if log_scale:
        positive = [v for v in values if v > 0] or [1.0]
        lo, hi = min(positive), max(positive)
        decades = math.log10(hi / lo) if hi > lo else 1.0
        # The shortest bar keeps a tenth of the length, as a ratio scale starts nowhere.
        base = lo / 10 ** (decades / 9)
        ax.set_xscale("log")
        ax.set_xlim(base, hi * 10 ** (decades * 0.35))
    else:
        base = 0.0
        ax.set_xlim(0.0, (max(values, default=0.0) or 1.0) * 1.2)
    for i, v in enumerate(values):
        (bar,) = ax.barh(i, max(v - base, 0.0), left=base, color=palette[i], height=0.7)
        bar.set_gid(f"bar-{i}")
        if value_labels is not None:
            ax.annotate(
                value_labels[i],
                (max(v, base), i),
                xytext=(3, 0),
                textcoords="offset points",
                va="center",
            )


def _stacked(
    ax: Axes,
    n: int,
    series: Mapping[str, Sequence[float]],
    segment_label: Callable[[float], str] | None,
) -> None:
    from matplotlib.patches import Patch

    totals = [sum(float(s[i]) for s in series.values()) for i in range(n)]
    left = [0.0] * n
    handles = []
    for j, (name, vals) in enumerate(series.items()):
        color = PALETTE[j % len(PALETTE)]
        handles.append(Patch(color=color, label=name))
        for i in range(n):
            v = float(vals[i])
            if v <= 0:
                continue
            (bar,) = ax.barh(i, v, left=left[i], color=color, height=0.7)
            bar.set_gid(f"bar-{i}-{j}")
            if segment_label is not None and totals[i] and v / totals[i] >= 0.06:
                ax.text(left[i] + v / 2, i, segment_label(v), ha="center", va="center", fontsize=7)
            left[i] += v
    ax.set_xlim(0.0, max(totals, default=0.0) or 1.0)
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)


def _figure(rows: int, width_in: float, charts: int = 1) -> Any:
    from matplotlib.figure import Figure

    height_in = 0.9 + 0.24 * max(rows, 1)
    return Figure(figsize=(width_in * charts, height_in), layout="constrained")


def bar_chart_svg(
    labels: Sequence[str], values: Values, *, width_in: float = 8.0, **kwargs: Any
) -> str:
    """A horizontal bar chart as a reproducible, self-contained ``<svg>`` string.

    Args:
        labels: One label per bar (row), drawn top to bottom.
        values: One value per row, or ``series -> values`` for stacked bars.
        width_in: Figure width in inches (the height follows the number of rows).
        **kwargs: The options of :func:`draw_bars` (``title``, ``xlabel``,
            ``value_labels``, ``colors``, ``log_scale``, ``segment_label``, ``percent_axis``,
            ``empty_text``).

    Returns:
        The SVG document from its ``<svg`` tag on (no XML declaration or DOCTYPE).
    """
    import matplotlib as mpl

    with mpl.rc_context(_RC):
        fig = _figure(len(labels), width_in)
        draw_bars(fig.add_subplot(), labels, values, **kwargs)
        buf = io.StringIO()
        # No date and no creator (matplotlib's version): the bytes depend on the input only.
        meta: dict[str, str | None] = dict.fromkeys(("Date", "Creator", "Format", "Type"))
        fig.savefig(buf, format="svg", metadata=meta)
    text = buf.getvalue()
    return text[text.index("<svg") :]


def bar_chart_png(
    path: Any,
    charts: Sequence[tuple[Sequence[str], Values, dict[str, Any]]],
    *,
    width_in: float = 6.0,
    dpi: int = 110,
) -> None:
    """Draw several bar charts side by side into one PNG file.

    Args:
        path: File (or binary file object) to write.
        charts: ``(labels, values, options of draw_bars)`` per chart.
        width_in: Width of each chart in inches.
        dpi: Resolution.
    """
    import matplotlib as mpl

    with mpl.rc_context(_RC):
        fig = _figure(max((len(lab) for lab, _, _ in charts), default=1), width_in, len(charts))
        axes = fig.subplots(1, max(len(charts), 1), squeeze=False)[0]
        for ax, (labels, values, opts) in zip(axes, charts, strict=False):
            draw_bars(ax, labels, values, **opts)
        fig.savefig(path, format="png", dpi=dpi, metadata={"Software": None})
