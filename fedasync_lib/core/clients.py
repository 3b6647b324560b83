"""Clients: a shard of data and a speed."""

from __future__ import annotations

from typing import List, Optional, Sequence

import numpy as np

from . import seeding
from .config import AsyncConfig
from .data import AsyncDataset
from .model import Loss, State
from .training import LocalJob, local_trainer
from .update import Update


def draw_mean_latencies(config: AsyncConfig) -> np.ndarray:
    """Each client's typical job time, log-normal around ``mean_latency``.

        latency_i = mean_latency * exp(heterogeneity * z_i),  z_i ~ N(0, 1)

    The ratio of the slowest to the fastest of n clients is
    exp(heterogeneity * (max z - min z)). With 20 clients max z - min z has a
    median near 3.6 (over 200 seeds), so the ratio is typically about 15x at
    heterogeneity 0.75 and 36x at 1.0; one seed's draw can be well above or below.
    The lesson's seed (42) gives 21x at 0.75, 59x at 1.0 and about 3,500x at 2.0
    (``lesson.speed_spread`` prints them; notebook 1 shows them).
    """
    z = seeding.rng(config.seed, "client-speed").standard_normal(config.num_clients)
    return config.mean_latency * np.exp(config.heterogeneity * z)


def typical_job_times(config: AsyncConfig, sizes: Sequence[int],
                      latencies: Optional[np.ndarray] = None) -> np.ndarray:
    """Each client's typical job time: its speed, times what one job costs it.

        job_i = exp(heterogeneity * z_i) * (mean_latency + seconds_per_sample * local_epochs * n_i)

    The first factor is the client's slowness (:func:`draw_mean_latencies` divided by
    ``mean_latency``; the median client has 1); the second is a job's cost on the median
    client: the model going back and forth (``mean_latency``) and the local training, one
    pass over its ``n_i`` samples per epoch. With ``seconds_per_sample=0`` (the default)
    a job costs ``mean_latency`` whatever its work, and this is ``draw_mean_latencies``
    exactly. ``latencies``: given typical times without the training part (e.g. from
    :class:`~fedasync_lib.core.data.FederatedData`), to which the training part is added
    at each client's own speed.
    """
    base = draw_mean_latencies(config) if latencies is None else np.asarray(latencies, float)
    if config.seconds_per_sample == 0:
        return base
    work = config.seconds_per_sample * config.local_epochs * np.asarray(sizes, dtype=float)
    return base + (base / config.mean_latency) * work


def job_latency(mean_latency: float, jitter: float, gen: np.random.Generator) -> float:
    """Virtual seconds of one job: ``mean_latency * exp(jitter * z)``, z ~ N(0, 1)."""
    return mean_latency * float(np.exp(jitter * gen.standard_normal()))


class AsyncClient:
    """A device that holds ``dataset`` and takes ``mean_latency`` virtual seconds per job.

    A job's actual duration is ``mean_latency * exp(jitter * z)``, z ~ N(0, 1),
    drawn by the server's scheduler when the job starts.
    """

    def __init__(self, client_id: int, dataset: AsyncDataset, config: AsyncConfig,
                 mean_latency: float = 1.0):
        self.client_id = client_id
        self.dataset = dataset
        self.config = config
        self.mean_latency = float(mean_latency)

    def job_latency(self, gen: np.random.Generator) -> float:
        """Virtual seconds the next job takes."""
        return job_latency(self.mean_latency, self.config.jitter, gen)

    def train(self, state: State, version: int, job_id: int = 0,
              model=None,
              loss: Optional[Loss] = None, training: str = "auto") -> Update:
        """Train alone on this client's data, starting from ``state`` (server ``version``).

        ``model`` is the module ``state`` belongs to (``None``: the built-in
        MLP); ``loss`` and ``training`` as in
        :func:`~fedasync_lib.core.training.local_trainer`. The simulator trains
        many clients' jobs together (see :mod:`fedasync_lib.core.training`);
        this method gives the same result for one job.
        """
        job = LocalJob(job_id=job_id, client_id=0, base_version=version, base_state=state)
        trainer = local_trainer(model, [self.dataset], self.config, loss=loss, training=training)
        (new_state, train_loss), = trainer.train([job])
        return Update(new_state, self.client_id, version, len(self.dataset), train_loss=train_loss,
                      base_state=state)


def make_clients(config: AsyncConfig, datasets: List[AsyncDataset],
                 latencies: Optional[np.ndarray] = None) -> List[AsyncClient]:
    """One client per dataset, with typical job times from :func:`typical_job_times`
    (the given ``latencies``, or ones drawn from ``config``)."""
    times = typical_job_times(config, [len(d) for d in datasets], latencies)
    return [AsyncClient(i, d, config, times[i]) for i, d in enumerate(datasets)]
