"""Report text from jinja2 templates shipped inside the package.

Templates live in ``graphrec/reporting/templates/`` and are read through
:mod:`importlib.resources`, so they load the same from a source checkout, an editable
install and a wheel. ``*.html.j2`` templates autoescape; Markdown templates do not.
jinja2 is imported on first use.

Example:
    >>> from graphrec.reporting import render_template
    >>> render_template("dataset_card.md.j2", figures=..., meta=...)  # doctest: +SKIP
"""

from __future__ import annotations

import functools
from importlib.resources import files
from typing import Any

__all__ = ["fmt_number", "fmt_pct", "render_template", "safe_svg", "template_source"]


def fmt_number(x: float | None, unit: str = "", digits: int = 3) -> str:
    """``x`` to ``digits`` significant digits followed by ``unit``; ``-`` for ``None``."""
    if x is None:
        return "-"
    return f"{x:.{digits}g}{unit}"


def fmt_pct(v: float | None) -> str:
    """A fraction as a percentage with one decimal (``0.254 -> "25.4 %"``); ``-`` for ``None``."""
    return "-" if v is None else f"{100 * v:.1f} %"


def template_source(name: str) -> str | None:
    """The text of the shipped template ``name``, or ``None`` if there is none."""
    res = files("graphrec.reporting").joinpath("templates", name)
    return res.read_text(encoding="utf-8") if res.is_file() else None


@functools.lru_cache(maxsize=1)
def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(template_source),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html.j2",), default_for_string=False
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["num"] = fmt_number
    env.filters["pct"] = fmt_pct
    return env


def render_template(name: str, **context: Any) -> str:
    """Render the shipped template ``name`` with ``context``.

    Filters available to every template: ``num`` (:func:`fmt_number`) and ``pct``
    (:func:`fmt_pct`). Inline SVG from :func:`~graphrec.reporting.bar_chart_svg` is
    passed through :func:`markupsafe.Markup` (see :func:`safe_svg`) so autoescaping keeps it.

    Raises:
        jinja2.TemplateNotFound: No template of that name ships with graphrec.
    """
    return str(_environment().get_template(name).render(**context))


def safe_svg(svg: str) -> Any:
    """Mark generated SVG as safe HTML, so autoescaping templates insert it unchanged."""
    from markupsafe import Markup

    return Markup(svg)
