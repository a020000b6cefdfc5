"""Tests for graphrec.runtimes.registry."""

from __future__ import annotations

import importlib.metadata

import pytest

from graphrec.errors import CandidateSpecError, GraphRecError, RuntimeUnavailableError
from graphrec.runtimes.base import RuntimeAdapter
from graphrec.runtimes.registry import (
    BUILTIN_ADAPTERS,
    adapter_entries,
    adapter_names,
    available_adapters,
    get_adapter,
)


def test_builtin_names() -> None:
    names = adapter_names()
    for expected in (
        "onnxruntime",
        "openvino",
        "mnn",
        "ncnn",
        "tract",
        "litert",
        "executorch",
        "torch",
    ):
        assert expected in names


def test_every_builtin_imports_without_its_runtime_loaded() -> None:
    for entry in BUILTIN_ADAPTERS:
        adapter = get_adapter(entry.name)
        assert isinstance(adapter, RuntimeAdapter)
        assert adapter.name == entry.name
        assert adapter.install_hint


def test_unknown_runtime_lists_valid_ones() -> None:
    with pytest.raises(CandidateSpecError, match="onnxruntime"):
        get_adapter("tensorflow-9000")


def test_onnxruntime_is_available() -> None:
    assert "onnxruntime" in [a.name for a in available_adapters()]


def test_entry_point_adapter_missing_module_gives_install_hint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ep = importlib.metadata.EntryPoint(
        name="fancyrt", value="fancyrt_not_installed.adapter:Adapter", group="graphrec.runtimes"
    )
    real = importlib.metadata.entry_points

    def fake_entry_points(**kw: object) -> object:
        if kw.get("group") == "graphrec.runtimes":
            return [ep]
        return real(**kw)

    monkeypatch.setattr("graphrec.runtimes.registry.entry_points", fake_entry_points)
    assert "fancyrt" in adapter_entries()
    with pytest.raises(RuntimeUnavailableError) as info:
        get_adapter("fancyrt")
    assert isinstance(info.value, GraphRecError)
    assert "install" in str(info.value)
