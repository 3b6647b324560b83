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

**As production runs it** (Bonawitz et al. 2019, "Towards Federated Learning at Scale";
the paper was not read here, only what issue #31 says of it): with ``oversample`` > 1 a
round asks ``ceil(oversample * K)`` clients, K = ``concurrency``, and closes as soon as K of
them have reported; with ``round_deadline`` it also closes that many virtual seconds after
it started, with whatever has reported (a round with no report by then is abandoned: no
step). The next round starts at once, with the clients that are idle. Results of the
round's other clients come later and are discarded (weight 0; their arrival indices in
``History.discarded``). A round asks for its clients as they become idle, so one whose
clients are all still busy with a closed round's jobs fills up as those come back.

A job the server gives up on (``job_timeout``: the device dropped out, or was too slow)
will never report: the round then waits only for the K reports it can still get, or for
every job it has left (without over-selection, a round whose client dropped out closes at
the timeout with the others' models).
"""

from __future__ import annotations

import math
from typing import Dict, FrozenSet, List, Optional, Sequence, Set, Tuple

from ..core.config import AsyncConfig
from ..core.policy import Policy, ServerModel
from ..core.training import LocalJob
from ..core.update import Update


class FedAvg(Policy):
    """Start a round when the last one is closed; average it when its K-th update lands
    (its last, without over-selection), or at its deadline."""

    name = "fedavg"
    title = "FedAvg (synchronous)"

    def __init__(self, config: AsyncConfig):
        super().__init__(config)
        self.started = 0  # jobs started in this round
        self.round: List[Update] = []
        self.indices: List[int] = []
        self.members: Set[Tuple[int, float]] = set()  # (client, start time) of this round's jobs
        self.late: List[int] = []  # arrival indices of discarded results
        self.gone = 0  # this round's jobs the server gave up on (job_timeout)
        self.round_ends: Optional[float] = None
        self.asked = math.ceil(config.oversample * config.concurrency - 1e-9)
        self.limit = self.asked

    @classmethod
    def fields_read(cls, config: AsyncConfig) -> FrozenSet[str]:
        return frozenset({"oversample", "round_deadline"})

    def max_in_flight(self) -> int:
        # over-selection: the round's clients, and the closed rounds' late ones still training
        if self.asked > self.config.concurrency or self.config.round_deadline is not None:
            return self.config.num_clients
        return self.config.concurrency

    def may_start(self, server: ServerModel, in_flight: Sequence[LocalJob], handled: int) -> bool:
        # While a round is filled, nothing of it has been handled yet, so
        # num_updates - handled + len(self.round) is what is left at its start.
        remaining = self.config.num_updates - handled + len(self.round)
        self.limit = min(self.asked, remaining)  # the jobs this round may have
        return self.started < self.limit

    def on_start(self, job: LocalJob) -> None:
        if not self.started and self.config.round_deadline is not None:
            self.round_ends = self.time_after(self.config.round_deadline)
        self.started += 1
        self.members.add((job.client_id, job.start_time))

    def receive(self, server: ServerModel, update: Update, staleness: int, time: float,
                index: int) -> Dict[int, float]:
        if (update.client_id, update.start_time) not in self.members:
            self.late.append(index)  # its round closed without it
            return {}
        self.round.append(update)
        self.indices.append(index)
        return self._close(server) if self._complete() else {}

    def _complete(self) -> bool:
        """K reports, or every job of the round that can still report has."""
        return len(self.round) >= min(self.config.concurrency, self.limit - self.gone)

    def on_abandon(self, server: ServerModel, job: LocalJob, time: float) -> Dict[int, float]:
        if (job.client_id, job.start_time) not in self.members:
            return {}  # a closed round's job
        self.members.discard((job.client_id, job.start_time))
        self.gone += 1
        return self._close(server) if self._complete() else {}

    def flush(self, server: ServerModel, time: float) -> Dict[int, float]:
        # A run that ends inside a round (late results count towards num_updates) averages
        # what has reported; without over-selection or a deadline the last round is always
        # complete here, and this does nothing.
        return self._close(server) if self.round else {}

    def deadline(self) -> Optional[float]:
        return self.round_ends if self.started else None

    def on_deadline(self, server: ServerModel, time: float) -> Dict[int, float]:
        return self._close(server)

    def _close(self, server: ServerModel) -> Dict[int, float]:
        """Average the round's reports (if any) into the server model; open the next round."""
        weights: Dict[int, float] = {}
        if self.round:
            total = sum(u.num_samples for u in self.round)
            server.state = {k: sum(u.num_samples / total * u.state_dict[k] for u in self.round)
                            for k in server.state}
            server.version += 1
            weights = {i: u.num_samples / total for i, u in zip(self.indices, self.round)}
        self.started, self.round, self.indices = 0, [], []
        self.members, self.round_ends, self.gone = set(), None, 0
        return weights

    def held(self) -> List[int]:
        return list(self.indices)

    def discarded(self) -> List[int]:
        return list(self.late)
