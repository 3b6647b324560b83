"""Several seeds in one call: :func:`run_seeds`.

    run_seeds(config, seeds, algorithm="fedasync", **run_options) -> [History, ...]

returns one :class:`~fedasync_lib.core.history.History` per seed, and seed ``s``
gives exactly what ``run(config.replace(seed=s), algorithm, **run_options)`` gives:
each run depends only on its config and seed, and computes on one thread
(:mod:`fedasync_lib.core.threads`), so where it runs changes nothing.

Where it runs: the first seed in this process, timed. If sharing the others out to
worker processes would save time (this machine has more than one core, and they
would take longer than starting the workers, about 4 s the first time; the workers
are kept for the next call), they go there; otherwise, or when the options cannot be
sent to another process (a lambda hook, a module defined in a notebook), they run
here too. ``workers=1`` always runs here.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import multiprocessing
import numbers
import os
import pickle
import time
from typing import Any, Iterable, List, Optional

from .core import processes
from .core.config import AsyncConfig
from .core.history import History
from .runner import run

#: Seconds it takes to start the worker processes (each imports torch), measured on the
#: 2-core CI machine; and to hand one run to a worker that is already up.
POOL_START_SECONDS = 4.0
HAND_OVER_SECONDS = 0.1

_pool: Optional[concurrent.futures.ProcessPoolExecutor] = None
_pool_size = 0


def _one(config: AsyncConfig, algorithm: str, options: dict) -> History:
    return run(config, algorithm, **options)


def _get_pool(size: int) -> concurrent.futures.ProcessPoolExecutor:
    global _pool, _pool_size
    if _pool is None or _pool_size < size:
        if _pool is not None:
            _pool.shutdown(wait=True)
        _pool = concurrent.futures.ProcessPoolExecutor(
            size, mp_context=multiprocessing.get_context("spawn"))
        _pool_size = size
    return _pool


@atexit.register
def _close_pool() -> None:
    global _pool
    if _pool is not None:
        _pool.shutdown(wait=False, cancel_futures=True)
        _pool = None


def _can_send(config: AsyncConfig, options: dict) -> bool:
    try:
        pickle.dumps((config, options))
    except Exception:  # a lambda, a class defined in __main__ or a notebook, an open file ...
        return False
    return processes.spawn_is_safe()


def run_seeds(config: AsyncConfig, seeds: Iterable[int], algorithm: str = "fedasync", *,
              workers: Optional[int] = None, **run_options: Any) -> List[History]:
    """One run of ``algorithm`` per seed; ``run_options`` as for :func:`fedasync_lib.run`.

    ``workers``: at most this many processes (default: this machine's cores); 1 runs
    every seed in this process. The results do not depend on it.
    """
    if not isinstance(config, AsyncConfig):
        raise ValueError(f"config={config!r} is invalid: expected an AsyncConfig")
    seeds = list(seeds)
    if not seeds or not all(isinstance(s, numbers.Integral) and not isinstance(s, bool)
                            for s in seeds):
        raise ValueError(f"seeds={seeds!r} is invalid: expected a non-empty list of integers")
    if workers is not None and not (isinstance(workers, numbers.Integral) and workers >= 1):
        raise ValueError(f"workers={workers!r} is invalid: expected an integer >= 1 or None")
    configs = [config.replace(seed=int(s)) for s in seeds]  # validated before anything runs
    start = time.perf_counter()
    first = run(configs[0], algorithm, **run_options)
    seconds = time.perf_counter() - start
    rest = configs[1:]
    size = min(workers or os.cpu_count() or 1, len(rest))
    start_up = HAND_OVER_SECONDS if _pool is not None and _pool_size >= size else POOL_START_SECONDS
    saves = seconds * len(rest) * (1 - 1 / max(size, 1)) - start_up
    if size < 2 or saves <= 0 or not _can_send(config, run_options):
        return [first] + [run(cfg, algorithm, **run_options) for cfg in rest]
    pool = _get_pool(size)
    futures = [pool.submit(_one, cfg, algorithm, run_options) for cfg in rest]
    return [first] + [f.result() for f in futures]
