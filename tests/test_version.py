"""The built extension is the version pyproject.toml declares."""

from __future__ import annotations

from pathlib import Path

import tomllib

import graphrec
from graphrec import _core


def test_extension_version_matches_pyproject() -> None:
    meta = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    assert _core.__version__ == meta["project"]["version"]
    assert graphrec.__version__ == _core.__version__
