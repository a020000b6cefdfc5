from __future__ import annotations

import collections
import sqlite3
from pathlib import Path

import pytest
from sel_models import make_convnet, small_catalogue

from graphrec.errors import ModelLoadError
from graphrec.selection.catalogue import Catalogue, Entry
from graphrec.selection.errors import CatalogueError, UnknownTaskError
from graphrec.selection.sources import describe_onnx, load_yaml_entries, shipped_entries
from graphrec.selection.tasks import TASKS


def test_shipped_catalogue_size_and_task_coverage() -> None:
    entries = shipped_entries()
    assert len(entries) >= 100
    assert len({e.model_id for e in entries}) == len(entries)
    per_task = collections.Counter(e.task for e in entries)
    assert set(per_task) <= set(TASKS)
    assert sum(1 for n in per_task.values() if n >= 3) >= 12
    zoo = [e for e in entries if e.source == "zoo"]
    assert zoo and all(e.flops and e.params and e.sha256 and e.inputs for e in zoo)
    # metadata-only entries carry no file, so no latency
    assert all(not e.has_model_file for e in entries if e.source == "package")


def test_open_syncs_shipped_and_keeps_user_entries(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    cat = Catalogue.open(path)
    n = len(cat.entries())
    f = make_convnet(tmp_path / "m.onnx", 4)
    cat.add(
        Entry("user/m", "user", None, "segmentation", "onnx", "my mask model", **describe_onnx(f))
    )
    # a changed shipped digest forces a re-sync; the user entry survives it
    cat._set_meta("shipped_digest", "stale")
    cat.close()
    again = Catalogue.open(path)
    assert len(again.entries()) == n + 1
    assert again.get("user/m").source == "user"


def test_add_validates(tmp_path: Path) -> None:
    cat = small_catalogue(tmp_path)
    e = cat.get("user/face-finder")
    assert e.flops and e.flops > 0 and e.params and e.size_bytes
    with pytest.raises(CatalogueError, match="already registered"):
        cat.add(Entry("user/face-finder", "user", None, "face-detection", "onnx", "again"))
    cat.add(
        Entry("user/face-finder", "user", None, "face-detection", "onnx", "again"), replace=True
    )
    assert cat.get("user/face-finder").description == "again"
    with pytest.raises(UnknownTaskError, match="valid tasks"):
        cat.add(Entry("user/x", "user", None, "weather-forecast", "onnx", "rain"))
    cat.remove("user/face-finder")
    with pytest.raises(CatalogueError, match="no user entry"):
        cat.remove("user/face-finder")


def test_bad_files_get_clear_errors(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite"
    junk.write_text("not a database")
    with pytest.raises(CatalogueError, match="not a SQLite file"):
        Catalogue.open(junk)
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        conn.execute("INSERT INTO meta VALUES ('schema_version', '99')")
    with pytest.raises(CatalogueError, match="schema 99"):
        Catalogue.open(other)
    bad = tmp_path / "bad.yaml"
    bad.write_text("- id: a\n  task: [unclosed\n")
    with pytest.raises(CatalogueError, match="does not parse as YAML"):
        load_yaml_entries(bad, source="user")
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("- {id: a, task: teleportation, description: beam me up}\n")
    with pytest.raises(UnknownTaskError, match="teleportation"):
        load_yaml_entries(unknown, source="user")
    missing = tmp_path / "missing.yaml"
    missing.write_text("- {id: a, task: segmentation}\n")
    with pytest.raises(CatalogueError, match="missing description"):
        load_yaml_entries(missing, source="user")
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07garbage")
    with pytest.raises(ModelLoadError):
        describe_onnx(corrupt)


def test_yaml_with_model_file(tmp_path: Path) -> None:
    make_convnet(tmp_path / "mine.onnx", 4)
    y = tmp_path / "models.yaml"
    y.write_text(
        "models:\n- id: user/mine\n  task: image-classification\n"
        "  description: sort screws from bolts\n  path: mine.onnx\n"
    )
    [e] = load_yaml_entries(y, source="user")
    assert e.file_path == str((tmp_path / "mine.onnx").resolve()) and e.has_model_file
    assert e.sha256 and len(e.sha256) == 64 and e.inputs[0]["shape"] == [1, 3, 32, 32]


def test_real_model_set_is_mapped_to_tasks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    import yaml

    from graphrec.selection import sources

    manifest = json.loads((sources.REAL_DIR / "manifest.json").read_text())
    mapping = yaml.safe_load((sources.DATA_DIR / "real_tasks.yaml").read_text())
    ids = {m["id"] for m in manifest["models"]}
    assert set(mapping["models"]) == ids  # every real model decided, none invented
    assert all(t is None or t in TASKS for t in mapping["models"].values())
    # without fetched files the real entries carry the manifest's figures but no file
    monkeypatch.setenv(sources.REAL_MODELS_ENV, str(tmp_path / "nowhere"))
    real = [e for e in shipped_entries() if e.source == "real"]
    assert len(real) == sum(t is not None for t in mapping["models"].values())
    assert all(e.sha256 and e.size_bytes and not e.has_model_file for e in real)
