"""Deployment: the lesson's algorithms with real concurrent clients on Dask distributed.

:func:`run` is :func:`fedasync_lib.run` with a :class:`DaskDriver`: the same event loop,
policies, hooks, models, losses and data, with each client's local training a Dask task
on a worker process and times in wall-clock seconds. With no ``scheduler_address`` and
no ``client`` it starts a ``LocalCluster`` for the run (worker processes with enough
threads for the config's concurrency, its web server on a random loopback port) and
shuts it down afterwards; given one, it runs on that cluster unchanged.

Each client's data lives on one worker, its home, and its jobs run there: only model
states travel once the run has started (:mod:`~fedasync_lib.deploy.placement`). The
failures a real cluster has, and how they are handled, are in
:mod:`~fedasync_lib.deploy.dask_driver`; :mod:`~fedasync_lib.deploy.netns` builds
separate hosts on one Linux machine to try them.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Optional

import torch.nn as nn

from ..core.config import AsyncConfig
from ..core.data import FederatedData
from ..core.history import History
from ..core.model import Loss
from ..core.scheduling import Scheduler
from ..runner import run as _run
from .dask_driver import (DaskDriver, concurrency_profile, held_data, kill_busiest_worker,
                          lost_jobs, lost_workers, overhead_per_job, pack_spec, summary_lines)
from .placement import Placement
from .worker import ClientDataMissing, ClientTrainingError


def run(config: AsyncConfig, algorithm: str = "fedasync", data: Optional[FederatedData] = None,
        *, model: Optional[nn.Module] = None, loss: Optional[Loss] = None,
        training: str = "auto", scheduler: Optional[Scheduler] = None,
        scheduler_address: Optional[str] = None, client: Any = None, n_workers: int = 2,
        threads_per_worker: Optional[int] = None, time_scale: float = 0.05,
        connect_timeout: float = 30.0, worker_timeout: float = 20.0, progress: bool = True,
        faulty_clients: Iterable[int] = (), on_update: Optional[Callable[[int, Any], None]] = None,
        **hooks: Any) -> History:
    """Run ``algorithm`` with each client's training as a Dask task; returns a
    :class:`History` whose times are wall-clock seconds since the run started.

    ``data``, ``model``, ``loss``, ``training``, ``scheduler`` and ``hooks`` are those of
    :func:`fedasync_lib.run`: any ``nn.Module``, any per-sample loss, the learner's own
    data (:meth:`FederatedData.from_clients`). The other options are :class:`DaskDriver`'s.
    """
    driver = DaskDriver(scheduler_address, client, n_workers=n_workers,
                        threads_per_worker=threads_per_worker, time_scale=time_scale,
                        connect_timeout=connect_timeout, worker_timeout=worker_timeout,
                        progress=progress,
                        faulty_clients=faulty_clients, on_update=on_update)
    return _run(config, algorithm, data, model=model, loss=loss, training=training,
                driver=driver, scheduler=scheduler, **hooks)


def run_fedasync(config: AsyncConfig, data: Optional[FederatedData] = None, **options: Any) -> History:
    """FedAsync on Dask: ``run(config, "fedasync", data, **options)``."""
    return run(config, "fedasync", data, **options)


def run_fedbuff(config: AsyncConfig, data: Optional[FederatedData] = None, **options: Any) -> History:
    """FedBuff on Dask: ``run(config, "fedbuff", data, **options)``."""
    return run(config, "fedbuff", data, **options)


def run_fedavg(config: AsyncConfig, data: Optional[FederatedData] = None, **options: Any) -> History:
    """Synchronous FedAvg on Dask: ``run(config, "fedavg", data, **options)``."""
    return run(config, "fedavg", data, **options)


__all__ = ["ClientDataMissing", "ClientTrainingError", "DaskDriver", "Placement",
           "concurrency_profile", "held_data", "kill_busiest_worker", "lost_jobs", "lost_workers",
           "overhead_per_job", "pack_spec", "run", "run_fedasync", "run_fedavg", "run_fedbuff", "summary_lines"]
