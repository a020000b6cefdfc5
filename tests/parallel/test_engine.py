"""Engine calibration on real local processes: the shared-speed probe."""

from __future__ import annotations

from graphrec.parallel.engine import calibrate_sharing


def test_sharing_probe_runs_alone_then_in_pairs() -> None:
    speed, raw = calibrate_sharing(seconds=0.2, rounds=1, priority=None)
    assert 0 < speed <= 1
    assert len(raw["alone_ms"]) == 1 and len(raw["pair_ms"]) == 1 and len(raw["pair_ms"][0]) == 2
    assert all(ms > 0 for ms in raw["pair_ms"][0])
    assert speed == min(1.0, raw["ratios"][0])
