"""Process-wide settings of a gate run: how many threads the model's library may use."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager


def share_cores(workers: int) -> int:
    """Give this process its share of the machine's cores (at least one thread) and return it.

    Under pytest-xdist every worker would otherwise start a thread pool as large as the machine,
    and the workers would fight over the cores. Called once per process, before any model runs.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = max(1, (cores or 1) // max(1, workers))
    import torch  # the gate's models are torch models; imported here, once, for its pool size

    torch.set_num_threads(threads)
    return threads


@contextmanager
def torch_threads(count: int) -> Iterator[int]:
    """Run the block with `count` torch threads, and give the pool its earlier size back."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield count
    finally:
        torch.set_num_threads(before)
