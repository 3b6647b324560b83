"""One intra-op thread while a run computes, so that its numbers do not depend on the machine's load.

PyTorch splits a matrix product or a convolution over as many threads as the
machine has cores, and each thread sums its share of a reduction; how the
work is split decides the order of the additions, so the last bits of a
result depend on the thread count. The simulator's operations are small, so
on a quiet machine one thread costs about 10 % (the CNN about 30 %), and on a
busy one it saves three quarters of the time: each operation otherwise waits
for its slowest thread, which the operating system may have set aside
(``benchmarks/bench_speed.py --threads 1 --busy-core``).

:func:`one_thread` runs a block of code on one thread and gives the caller
back its own setting afterwards, so that a notebook's other torch code keeps
all its threads.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch


@contextmanager
def one_thread() -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(1)``, then restore the caller's count."""
    before = torch.get_num_threads()
    if before == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
