"""Who trains when: job intervals for synchronous rounds and for an async run.

A *job* here is one client's local training, from the moment it receives the
model to the moment its update reaches the server. Synchronous federated
averaging runs jobs in rounds: the server picks ``concurrency`` clients,
waits until the slowest of them is done, and only then starts the next round.
Asynchronous training starts a new job the moment one finishes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy as np

from . import seeding
from .clients import draw_mean_latencies, job_latency
from .config import AsyncConfig
from .history import History


@dataclass(frozen=True)
class Job:
    client_id: int
    start: float
    end: float


def draw_round(num_clients: int, size: int, latency: Sequence[float], jitter: float,
               gen: np.random.Generator) -> List[Tuple[int, float]]:
    """One synchronous round: ``size`` distinct clients, each with its job's duration.

    Draws in the same order as the asynchronous scheduler (a client, then its
    job time), so at one client per round both see the same sequence.
    """
    free = list(range(num_clients))
    picks = []
    for _ in range(size):
        client = free.pop(int(gen.integers(len(free))))
        picks.append((client, job_latency(latency[client], jitter, gen)))
    return picks


def sync_rounds(config: AsyncConfig, num_jobs: int) -> List[Job]:
    """Jobs of synchronous rounds of ``config.concurrency`` clients each.

    Each round draws its clients uniformly without replacement, and job times
    follow the same speed model as the asynchronous simulator, with the same
    random stream and the same order of draws: the same clients are fast, and
    at concurrency 1 both schedules are identical.
    A round ends when its slowest job ends.
    """
    latency = draw_mean_latencies(config)
    gen = seeding.rng(config.seed, "schedule")
    jobs: List[Job] = []
    now = 0.0
    while len(jobs) < num_jobs:
        picks = draw_round(config.num_clients, config.concurrency, latency, config.jitter, gen)
        jobs.extend(Job(c, now, now + d) for c, d in picks)
        now = max(j.end for j in jobs[-len(picks):])
    return jobs[:num_jobs]


def async_jobs(history: History) -> List[Job]:
    """The jobs of an asynchronous run: one per arrived update, then those still in flight."""
    records = history.updates + history.unfinished
    return [Job(u["client_id"], u["start_time"], u["time"]) for u in records]


def utilization(jobs: List[Job], slots: int, horizon: float) -> float:
    """Share of the ``slots`` x ``horizon`` client-seconds spent training.

    Synchronous rounds leave fast clients idle while they wait for the slowest;
    this is the number that shows it. Jobs running past ``horizon`` count up
    to it.
    """
    busy = sum(max(0.0, min(j.end, horizon) - j.start) for j in jobs)
    return busy / (slots * horizon)
