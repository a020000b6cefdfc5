"""Tests for graphrec.device: detection, JSON round trip, features, bad files, CLI."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest

from graphrec.device import KNOWN_ISA_FLAGS, DeviceProfile, GpuInfo
from graphrec.device._cli import register
from graphrec.errors import DeviceProfileError, GraphRecError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "devices"


def main(argv: list[str]) -> int:
    """Run ``graphrec device`` through its own ``register`` (as graphrec.cli.main does)."""
    parser = argparse.ArgumentParser(prog="graphrec")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except GraphRecError as exc:
        print(f"graphrec: error: {exc}", file=sys.stderr)
        return 1


def test_detect_describes_this_machine() -> None:
    dev = DeviceProfile.detect(probe_gpus=False)
    assert dev.source == "detected"
    assert dev.arch
    assert dev.logical_cores >= 1
    assert 1 <= dev.threads_available <= dev.logical_cores
    assert dev.memory_total_mb > 0
    assert set(dev.isa_flags) <= set(KNOWN_ISA_FLAGS)


def test_round_trip(tmp_path: Path) -> None:
    dev = DeviceProfile.detect(probe_gpus=False)
    dev.gpus.append(
        GpuInfo(name="Test GPU", vendor="nvidia", memory_mb=8192, compute_capability="8.6")
    )
    path = dev.save(tmp_path / "dev.json")
    back = DeviceProfile.load(path)
    assert back == dev
    assert back.device_id == dev.device_id
    assert back.to_features() == dev.to_features()


def test_features_are_stable_and_numeric() -> None:
    dev = DeviceProfile(
        name="x",
        arch="aarch64",
        physical_cores=4,
        logical_cores=4,
        threads_available=2,
        isa_flags=["neon", "dotprod"],
        l2_cache_kb=1023,
        memory_total_mb=2048,
        gpus=[GpuInfo(name="g", memory_mb=1024, compute_capability="8.7")],
    )
    feats = dev.to_features()
    assert tuple(feats) == DeviceProfile.feature_names()
    assert all(isinstance(v, float) for v in feats.values())
    assert feats["arch_aarch64"] == 1.0 and feats["arch_x86_64"] == 0.0
    assert feats["isa_dotprod"] == 1.0 and feats["isa_avx2"] == 0.0
    assert feats["log2_l2_kb"] == pytest.approx(10.0)
    assert feats["memory_gb"] == pytest.approx(2.0)
    assert feats["gpu_compute_capability"] == pytest.approx(8.7)
    assert feats["threads_available"] == 2.0


def test_device_id_ignores_name_and_notes() -> None:
    a = DeviceProfile(name="a", cpu_model="Cortex-A76", logical_cores=4)
    b = DeviceProfile(name="b", cpu_model="Cortex-A76", logical_cores=4, notes="hello")
    c = DeviceProfile(name="a", cpu_model="Cortex-A76", logical_cores=8)
    assert a.device_id == b.device_id
    assert a.device_id != c.device_id
    assert a.device_id.startswith("cortex-a76-")


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.json")), ids=lambda p: p.stem)
def test_example_profiles_load_and_are_labelled(path: Path) -> None:
    dev = DeviceProfile.load(path)
    assert dev.source == "spec-sheet"
    assert "not measured" in dev.notes.lower()
    assert len(dev.to_features()) == len(DeviceProfile.feature_names())


def test_examples_exist() -> None:
    assert len(list(EXAMPLES.glob("*.json"))) >= 3


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"name": "x", "bogus": 1}', "unknown field"),
        ('{"cpu_model": "x"}', "missing required field"),
        ('{"name": "x", "isa_flags": ["avx9000"]}', "unknown ISA flag"),
        ('{"name": "x", "logical_cores": -2}', "non-negative integer"),
        ('{"name": "x", "source": "guess"}', "'source'"),
        ('{"name": "x", "schema_version": 99}', "schema_version"),
    ],
)
def test_bad_files_raise_typed_error_naming_file(tmp_path: Path, content: str, reason: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(DeviceProfileError) as info:
        DeviceProfile.load(path)
    assert str(path) in str(info.value)
    assert reason in str(info.value)
    assert isinstance(info.value, GraphRecError)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DeviceProfileError, match="cannot read"):
        DeviceProfile.load(tmp_path / "nope.json")


def test_cli_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out_path = tmp_path / "me.json"
    assert main(["device", "--json", "--save", str(out_path)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["source"] == "detected"
    assert data["device_id"] == DeviceProfile.load(out_path).device_id


def test_cli_table_for_saved_profile(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["device", "--profile", str(EXAMPLES / "raspberry-pi-4b-4gb.json")]) == 0
    out = capsys.readouterr().out
    assert "Cortex-A72" in out and "spec-sheet" in out


def test_cli_bad_profile_is_clean_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    assert main(["device", "--profile", str(bad)]) == 1
    assert "bad.json" in capsys.readouterr().err
