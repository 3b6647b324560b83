"""Who trains when: the job intervals of a run, and how busy they kept the clients.

A *job* here is one client's local training, from the moment it receives the
model (``start_time``) to the moment its update reaches the server
(``arrival_time``). Synchronous federated averaging runs jobs in rounds: the
server picks ``concurrency`` clients, waits until the slowest of them is done,
and only then starts the next round. Asynchronous training starts a new job
the moment one finishes. Both come from real runs of the one event loop
(``run(config, "fedavg")`` and ``run(config, "fedasync")``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List

from ..core.history import History


@dataclass(frozen=True)
class Job:
    client_id: int
    start_time: float
    arrival_time: float


def async_jobs(history: History) -> List[Job]:
    """The jobs of a run: one per handled update, then those still in flight or waiting."""
    records = history.updates + history.unfinished
    return [Job(u["client_id"], u["start_time"], u["arrival_time"]) for u in records]


def utilization(jobs: List[Job], slots: int, horizon: float) -> float:
    """Share of the ``slots`` x ``horizon`` client-seconds spent training.

    Synchronous rounds leave fast clients idle while they wait for the slowest;
    this is the number that shows it. Jobs running past ``horizon`` count up
    to it.
    """
    busy = sum(max(0.0, min(j.arrival_time, horizon) - j.start_time) for j in jobs)
    return busy / (slots * horizon)
