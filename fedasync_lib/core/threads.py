"""One thread while a run computes, so that its numbers do not depend on the machine's load.

A BLAS library (numpy's OpenBLAS) and PyTorch split a matrix product or a convolution over as many threads as the
machine has cores, and each thread sums its share of a reduction; how the
work is split decides the order of the additions, so the last bits of a
result depend on the thread count. The simulator's operations are small, so
on a quiet machine one thread costs about 10 % (the CNN about 30 %), and on a
busy one it saves three quarters of the time: each operation otherwise waits
for its slowest thread, which the operating system may have set aside
(``benchmarks/bench_speed.py --threads 1 --busy-core``).

:func:`one_thread` runs a block of code on one thread and gives the caller
back its own settings afterwards, so that a notebook's other code keeps all
its threads. PyTorch's setting is touched only when torch is already imported
(a run of a built-in model never imports it), the BLAS's through
``threadpoolctl`` (a dependency of scikit-learn) when it is there.
"""

from __future__ import annotations

import sys
from contextlib import ExitStack, contextmanager
from typing import Iterator

try:
    from threadpoolctl import ThreadpoolController
except ImportError:  # pragma: no cover - scikit-learn brings it; a bare numpy may not
    ThreadpoolController = None

_controller = None


def _blas_controller():
    """One ThreadpoolController for the process (building one looks up every loaded library)."""
    global _controller
    if _controller is None and ThreadpoolController is not None:
        _controller = ThreadpoolController()
    return _controller


@contextmanager
def one_thread() -> Iterator[None]:
    """Run the block on one BLAS thread and, if torch is imported, one torch intra-op
    thread; then restore the caller's counts."""
    with ExitStack() as stack:
        controller = _blas_controller()
        if controller is not None and any(p["num_threads"] > 1 for p in controller.info()
                                          if p["user_api"] == "blas"):
            stack.enter_context(controller.limit(limits=1, user_api="blas"))
        torch = sys.modules.get("torch")
        before = torch.get_num_threads() if torch is not None else 1
        if before > 1:
            torch.set_num_threads(1)
            stack.callback(torch.set_num_threads, before)
        yield
