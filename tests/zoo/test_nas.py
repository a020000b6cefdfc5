"""Tests of the NAS-Bench-201 family: architecture strings from the official index."""

from __future__ import annotations

import pytest

from graphrec.errors import ZooArchStringError
from graphrec.zoo import ZooEntry
from graphrec.zoo.families.nas import (
    NB201_OPS,
    NB201_SIZE,
    _codes,
    arch_str_from_index,
    parse_arch_str,
)

# First rows of the NAS-Bench-201 latency table (/work/shared/data/nasbench201).
KNOWN = {
    0: "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
    1: "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
    3: "|avg_pool_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|skip_connect~2|",
}


def test_index_table_is_a_permutation_of_the_space() -> None:
    codes = _codes()
    assert len(codes) == NB201_SIZE
    assert sorted(set(codes.tolist())) == list(range(NB201_SIZE))


@pytest.mark.parametrize(("index", "arch"), sorted(KNOWN.items()))
def test_known_arch_strings(index: int, arch: str) -> None:
    assert arch_str_from_index(index) == arch


def test_parse_round_trip() -> None:
    nodes = parse_arch_str(KNOWN[3])
    assert nodes == [
        [("avg_pool_3x3", 0)],
        [("skip_connect", 0), ("none", 1)],
        [("none", 0), ("none", 1), ("skip_connect", 2)],
    ]
    assert all(op in NB201_OPS for node in nodes for op, _ in node)


@pytest.mark.parametrize(
    "bad",
    ["", "|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|", "|none~1|+|none~0|none~1|", "|none~0|"],
)
def test_bad_arch_strings_raise(bad: str) -> None:
    with pytest.raises(ZooArchStringError):
        parse_arch_str(bad)


def test_out_of_range_index_raises() -> None:
    with pytest.raises(ZooArchStringError, match="outside"):
        arch_str_from_index(NB201_SIZE)


def test_sampled_entry_carries_index_and_string() -> None:
    entry = ZooEntry.sample("nb201", seed=11)
    assert entry.params["arch_str"] == arch_str_from_index(entry.params["arch_index"])
