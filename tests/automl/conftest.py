"""One torch thread for the automl tests: the searches are many tiny operations, which
intra-op threads only slow down on a shared 2-core machine (the pipeline does the same)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
