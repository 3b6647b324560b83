"""Deployment: the lesson's algorithms with real concurrent clients on Dask distributed.

:func:`run` is :func:`fedasync_lib.run` with a :class:`DaskDriver`: the same
event loop, policies and hooks, with each client's local training a Dask task
on a worker process and times in wall-clock seconds. With no
``scheduler_address`` and no ``client`` it starts a ``LocalCluster`` for the
run (worker processes, its web server on a random loopback port) and shuts it
down afterwards; given one, it runs on that cluster unchanged.

Failures, as they are handled:

* a worker dies mid-run: the jobs running on it are lost. Each lost job is
  counted (``History.incidents``) and handed out again, from the same model
  version, to a surviving worker. Updates already applied live in this
  process and are never lost. The redone job arrives later than it would
  have, so its staleness (and weight) can differ, and a bound may drop it.
  (On a cluster started here, Dask's own retry is switched off so that a
  loss is seen and counted; on an existing cluster Dask may retry it silently.)
* a client's training raises: the run goes on without that client, and the
  error is recorded. If every client has failed, the run stops with an error.
* the scheduler cannot be reached, or no worker joins within
  ``connect_timeout``: a ``RuntimeError`` that says which, and nothing is
  left running.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Optional

from ..core.config import AsyncConfig
from ..core.history import History
from ..runner import run as _run
from .dask_driver import (ClientTrainingError, DaskDriver, kill_busiest_worker, lost_jobs,
                          summary_lines, train_on_worker)


def run(config: AsyncConfig, algorithm: str = "fedasync", *,
        scheduler_address: Optional[str] = None, client: Any = None, n_workers: int = 2,
        time_scale: float = 0.05, connect_timeout: float = 30.0, progress: bool = True,
        faulty_clients: Iterable[int] = (), on_update: Optional[Callable[[int, Any], None]] = None,
        **hooks: Any) -> History:
    """Run ``algorithm`` with each client's training as a Dask task; returns a
    :class:`History` whose times are wall-clock seconds since the run started.

    ``hooks`` are those of :func:`fedasync_lib.run`; the other options are
    :class:`DaskDriver`'s.
    """
    driver = DaskDriver(scheduler_address, client, n_workers=n_workers, time_scale=time_scale,
                        connect_timeout=connect_timeout, progress=progress,
                        faulty_clients=faulty_clients, on_update=on_update)
    return _run(config, algorithm, driver=driver, **hooks)


def run_fedasync(config: AsyncConfig, **options: Any) -> History:
    """FedAsync on Dask: ``run(config, "fedasync", **options)``."""
    return run(config, "fedasync", **options)


def run_fedbuff(config: AsyncConfig, **options: Any) -> History:
    """FedBuff on Dask: ``run(config, "fedbuff", **options)``."""
    return run(config, "fedbuff", **options)


def run_fedavg(config: AsyncConfig, **options: Any) -> History:
    """Synchronous FedAvg on Dask: ``run(config, "fedavg", **options)``."""
    return run(config, "fedavg", **options)


__all__ = ["ClientTrainingError", "DaskDriver", "kill_busiest_worker", "lost_jobs", "run",
           "run_fedasync", "run_fedavg", "run_fedbuff", "summary_lines", "train_on_worker"]
