"""graphrec.reporting.templates: shipped jinja2 templates, loaded as package data."""

from __future__ import annotations

from importlib.resources import files

import jinja2
import pytest

from graphrec.reporting import fmt_number, fmt_pct, render_template, template_source

TEMPLATES = ("bench_report.html.j2", "mining_report.html.j2", "dataset_card.md.j2")


@pytest.mark.parametrize("name", TEMPLATES)
def test_templates_ship_as_package_resources(name: str) -> None:
    res = files("graphrec.reporting").joinpath("templates", name)
    assert res.is_file()
    assert template_source(name) == res.read_text(encoding="utf-8")


def test_unknown_template_is_a_clear_error() -> None:
    assert template_source("nope.j2") is None
    with pytest.raises(jinja2.TemplateNotFound, match=r"nope\.j2"):
        render_template("nope.j2")


def test_html_templates_escape_text() -> None:
    out = render_template(
        "bench_report.html.j2", title="<b>t</b>", statuses=[], n_rows=0, models=[]
    )
    assert "&lt;b&gt;t&lt;/b&gt;" in out and "<b>t</b>" not in out


def test_formatters() -> None:
    assert fmt_number(None) == "-" and fmt_number(1.23456, " ms") == "1.23 ms"
    assert fmt_number(0.123456, "", 2) == "0.12"
    assert fmt_pct(None) == "-" and fmt_pct(0.2541) == "25.4 %"
