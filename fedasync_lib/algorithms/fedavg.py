"""Synchronous federated averaging (McMahan et al. 2017) as a policy of the event loop.

Rounds of ``concurrency`` clients: every client of a round starts from the
same server model, and the server waits for the slowest of them before it
averages their models, weighted by their number of samples:

    x <- sum_i n_i x_i / sum_i n_i,      version <- version + 1

The loop, the clients, their speeds and the random draws are those of the
asynchronous runs, so the comparison is fair: same clients, same speeds,
same local training. A round starts only when nothing is in flight, so every
update has staleness 0; its weight n_i / sum_i n_i is written when the round
is averaged. The last round is cut short so that exactly ``num_updates``
updates are handled.
"""

from __future__ import annotations

from typing import Dict, List, Sequence

from ..core.config import AsyncConfig
from ..core.policy import Policy, ServerModel
from ..core.training import LocalJob
from ..core.update import Update


class FedAvg(Policy):
    """Start a round only when the last one is done; average it when its last update lands."""

    name = "fedavg"
    title = "FedAvg (synchronous)"

    def __init__(self, config: AsyncConfig):
        super().__init__(config)
        self.started = 0  # jobs started in this round
        self.round: List[Update] = []
        self.indices: List[int] = []

    def may_start(self, server: ServerModel, in_flight: Sequence[LocalJob], handled: int) -> bool:
        # While a round is filled, nothing of it has been handled yet, so
        # num_updates - handled + len(self.round) is what is left at its start.
        remaining = self.config.num_updates - handled + len(self.round)
        return self.started < min(self.config.concurrency, remaining)

    def on_start(self, job: LocalJob) -> None:
        self.started += 1

    def receive(self, server: ServerModel, update: Update, staleness: int, time: float,
                index: int) -> Dict[int, float]:
        self.round.append(update)
        self.indices.append(index)
        if len(self.round) < self.started:
            return {}  # the round is not over: the server waits for its slowest client
        total = sum(u.num_samples for u in self.round)
        server.state = {k: sum(u.num_samples / total * u.state_dict[k] for u in self.round)
                        for k in server.state}
        server.version += 1
        weights = {i: u.num_samples / total for i, u in zip(self.indices, self.round)}
        self.started, self.round, self.indices = 0, [], []
        return weights

    def held(self) -> List[int]:
        return list(self.indices)
