"""The simulator's driver: a virtual clock, and local training in batches.

Jobs finish at ``start + duration`` on a virtual clock kept by an
:class:`~fedasync_lib.core.events.EventQueue`: no thread, no sleep, so a run
takes as long as its arithmetic and depends only on its config and seed.
Jobs are trained only when their result is needed, all pending ones in one
batched computation (:class:`~fedasync_lib.core.training.LazyTrainer`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

from .driver import Arrival, Driver
from .events import EventQueue
from .model import State
from .training import LazyTrainer, LocalJob

if TYPE_CHECKING:
    from .history import History
    from .server import AsyncServer


class VirtualClock(Driver):
    clock = "virtual"

    def open(self, server: "AsyncServer", history: "History") -> None:
        self.events = EventQueue()
        self.in_flight: Dict[int, LocalJob] = {}
        self.trainer = LazyTrainer(server.local_training)

    def now(self) -> float:
        return self.events.now

    def start(self, job: LocalJob, duration: float) -> None:
        job.arrival_time = job.start_time + duration
        self.in_flight[job.job_id] = job
        self.trainer.submit(job)
        self.events.push(job.arrival_time, job)

    def next_event(self, until: Optional[float]) -> Optional[Arrival]:
        while True:
            if until is not None and (not len(self.events) or self.events.peek_time() > until):
                self.events.advance(until)
                return None
            _, job = self.events.pop()
            if self.in_flight.pop(job.job_id, None) is job:
                return Arrival(job)
            # a cancelled job's event: skipped (removing it from the heap would cost more)

    def cancel(self, job: LocalJob) -> None:
        del self.in_flight[job.job_id]
        self.trainer.cancel(job)

    def result(self, job: LocalJob) -> Tuple[State, float]:
        return self.trainer.result(job)

    def close(self) -> List[LocalJob]:
        return list(self.in_flight.values())
