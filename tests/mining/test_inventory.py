"""Inventory serialisation, merging and aggregation."""

from __future__ import annotations

from pathlib import Path

import pytest

from graphrec.errors import InventoryFormatError
from graphrec.mining import Inventory, scan
from mining.mining_builders import MakeApk


def test_json_round_trip(tmp_path: Path, make_apk: MakeApk) -> None:
    inv = scan([make_apk(tmp_path / "a.apk")])
    path = tmp_path / "inv.json"
    path.write_text(inv.to_json())
    back = Inventory.load_json(path)
    assert back.models == inv.models
    assert back.libraries == inv.libraries
    assert back.aggregate() == inv.aggregate()


def test_merge_builds_cross_scan_aggregate(tmp_path: Path, make_apk: MakeApk) -> None:
    a = scan([make_apk(tmp_path / "a.apk")])
    b = scan([make_apk(tmp_path / "b.apk")])
    merged = a.merge(b)
    agg = merged.aggregate()
    assert agg.apps == 2
    assert agg.framework_apps["tflite"] == 2
    # every model of the (identical) apps is shared by hash
    assert len(agg.shared_models) == len({m.sha256 for m in a.models if not m.suspected})


def test_bad_inventory_json(tmp_path: Path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text('{"models": []}')
    with pytest.raises(InventoryFormatError, match="not a graphrec inventory"):
        Inventory.load_json(bad)
    bad.write_text("{")
    with pytest.raises(InventoryFormatError, match="cannot read"):
        Inventory.load_json(bad)
