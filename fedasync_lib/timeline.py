"""Who trains when: job intervals for synchronous rounds and for an async run.

A *job* here is one client's local training, from the moment it receives the
model to the moment its update reaches the server. Synchronous federated
averaging runs jobs in rounds: the server picks ``concurrency`` clients,
waits until the slowest of them is done, and only then starts the next round.
Asynchronous training starts a new job the moment one finishes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List

from . import seeding
from .clients import draw_mean_latencies, job_latency
from .config import AsyncConfig
from .history import History


@dataclass(frozen=True)
class Job:
    client_id: int
    start: float
    end: float


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
        free = list(range(config.num_clients))
        for _ in range(config.concurrency):
            client = free.pop(int(gen.integers(len(free))))
            jobs.append(Job(client, now, now + job_latency(latency[client], config.jitter, gen)))
        now = max(j.end for j in jobs[-config.concurrency:])
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
