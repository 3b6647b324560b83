"""Scheduling: which waiting update the server applies next, and which idle
client gets the model next.

Updates wait for the server only when applying one takes time
(``AsyncConfig.apply_time`` > 0) and several arrive meanwhile. They wait in a
priority queue (a binary heap, ``heapq``): each entry is ``(priority, order
of arrival, job)``, and the smallest priority is applied first.

* ``update_order="arrival"``: first come, first served (priority = arrival time);
* ``update_order="freshest"``: the least stale first (priority = minus the
  version the update was computed from).

Idle clients wait for the model whenever fewer jobs may run than there are
clients (``concurrency < num_clients``):

* ``client_order="random"``: uniformly at random;
* ``client_order="fastest"``: the client with the shortest typical job time;
* ``client_order="fewest"``: the client that has delivered the fewest
  updates so far (the fastest of them on a tie), to give slow clients a voice.
"""

from __future__ import annotations

import heapq
import itertools
from typing import Any, List, Sequence, Tuple

import numpy as np

from .config import CLIENT_ORDERS, UPDATE_ORDERS


class Scheduler:
    """A priority queue of arrived updates, and a rule for picking idle clients."""

    def __init__(self, update_order: str = "arrival", client_order: str = "random"):
        if update_order not in UPDATE_ORDERS:
            raise ValueError(f"update_order={update_order!r} is invalid: expected one of "
                             f"{', '.join(map(repr, UPDATE_ORDERS))}")
        if client_order not in CLIENT_ORDERS:
            raise ValueError(f"client_order={client_order!r} is invalid: expected one of "
                             f"{', '.join(map(repr, CLIENT_ORDERS))}")
        self.update_order = update_order
        self.client_order = client_order
        self._heap: List[Tuple[float, int, Any]] = []
        self._arrivals = itertools.count()

    def push_update(self, job: Any, arrival_time: float, base_version: int) -> None:
        """An update arrived and waits for the server."""
        priority = arrival_time if self.update_order == "arrival" else -base_version
        heapq.heappush(self._heap, (priority, next(self._arrivals), job))

    def pop_update(self) -> Any:
        """The waiting update the server applies next."""
        return heapq.heappop(self._heap)[2]

    def __len__(self) -> int:
        return len(self._heap)

    def pick_client(self, idle: Sequence[int], latency: Sequence[float],
                    delivered: Sequence[int], gen: np.random.Generator) -> int:
        """Which of the ``idle`` clients (sorted ids) gets the model next."""
        if self.client_order == "random":
            return idle[int(gen.integers(len(idle)))]
        if self.client_order == "fastest":
            return min(idle, key=lambda c: (latency[c], c))
        return min(idle, key=lambda c: (delivered[c], latency[c], c))
