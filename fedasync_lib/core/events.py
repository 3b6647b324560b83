"""A virtual clock driven by a queue of future events.

The simulator never sleeps and never starts a thread. It keeps the moments
at which something will happen (a client finishes its job) in a heap, and
jumps the clock from one to the next, in time order. A run therefore takes
as long as its computation, not as long as the latencies it simulates, and
its outcome depends only on its config and seed.
"""

from __future__ import annotations

import heapq
import itertools
from typing import Any, List, Tuple


class EventQueue:
    """Events ordered by time; ties keep the order in which they were pushed.

    ``now`` is the virtual time of the last event popped (0 at the start).
    """

    def __init__(self) -> None:
        self._heap: List[Tuple[float, int, Any]] = []
        self._counter = itertools.count()  # tie-breaker: first pushed, first out
        self.now = 0.0

    def push(self, time: float, payload: Any) -> None:
        if time < self.now:
            raise ValueError(f"time={time} is invalid: an event cannot be scheduled "
                             f"before the current virtual time {self.now}")
        heapq.heappush(self._heap, (time, next(self._counter), payload))

    def pop(self) -> Tuple[float, Any]:
        """Remove the earliest event, move the clock to it, return (time, payload)."""
        time, _, payload = heapq.heappop(self._heap)
        self.now = time
        return time, payload

    def peek_time(self) -> float:
        """Time of the earliest event, without removing it."""
        return self._heap[0][0]

    def advance(self, time: float) -> None:
        """Move the clock forward to ``time`` with no event (nothing happened until then)."""
        if time < self.now:
            raise ValueError(f"time={time} is invalid: the clock cannot go back from {self.now}")
        self.now = time

    def __len__(self) -> int:
        return len(self._heap)
