"""Local rank launcher: one core per rank, the timed ranks' own raised-priority session."""

from __future__ import annotations

import json
import os

import pytest

from graphrec.parallel.launch import LaunchError, launch_local

_REPORT = (
    "import json, os; print(json.dumps({'cores': sorted(os.sched_getaffinity(0)), "
    "'nice': os.getpriority(os.PRIO_PROCESS, 0), 'sid': os.getsid(0), "
    "'rank': int(os.environ['RANK'])}))"
)


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="Linux affinity")
def test_ranks_are_pinned_and_get_their_own_session() -> None:
    outs = launch_local(["-c", _REPORT], 2, pin=True, priority=5, timeout_s=60)
    ncpu = os.cpu_count() or 1
    rows = [json.loads(o) for o in outs]
    for r in rows:
        assert r["cores"] == [r["rank"] % ncpu]
        assert r["sid"] != os.getsid(0)
        # Lowering priority is always allowed; raising it needs privileges (root here).
        mine = os.getpriority(os.PRIO_PROCESS, 0)
        assert r["nice"] == (5 if os.geteuid() == 0 else max(5, mine))
    plain = [json.loads(o) for o in launch_local(["-c", _REPORT], 1, timeout_s=60)]
    assert plain[0]["sid"] == os.getsid(0)


def test_a_failing_rank_is_reported() -> None:
    with pytest.raises(LaunchError, match="rank 1 exited"):
        launch_local(["-c", "import os, sys; sys.exit(int(os.environ['RANK']))"], 2)
    with pytest.raises(LaunchError, match="at least one rank"):
        launch_local(["-c", "pass"], 0)
