"""Shared rendering of graphrec's reports: one bar-chart helper and jinja2 templates.

* :mod:`graphrec.reporting.charts`: :func:`bar_chart_svg` (reproducible SVG) and
  :func:`bar_chart_png`, drawn with matplotlib;
* :mod:`graphrec.reporting.templates`: :func:`render_template` over the templates shipped
  in ``graphrec/reporting/templates/``.

Used by the benchmark report (``graphrec bench report``), the mining report
(``graphrec mine --report``) and the data card (``graphrec dataset card``). matplotlib and
jinja2 are imported only when a chart or a template is rendered.
"""

from graphrec.reporting.charts import PALETTE, bar_chart_png, bar_chart_svg, draw_bars
from graphrec.reporting.templates import (
    fmt_number,
    fmt_pct,
    render_template,
    safe_svg,
    template_source,
)

__all__ = [
    "PALETTE",
    "bar_chart_png",
    "bar_chart_svg",
    "draw_bars",
    "fmt_number",
    "fmt_pct",
    "render_template",
    "safe_svg",
    "template_source",
]
