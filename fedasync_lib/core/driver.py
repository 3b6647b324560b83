"""Drivers: where time and training results come from.

The event loop asks its driver four things: what time it is, to start a job,
for the next thing that happens (an update arrives, or a client fails), and
for a job's trained model; with ``job_timeout``, also to cancel a job. Two drivers answer:

* :class:`fedasync_lib.core.virtual_clock.VirtualClock`: a heap of events on
  a virtual clock, jobs trained lazily in batches (the simulator);
* :class:`fedasync_lib.deploy.dask_driver.DaskDriver`: real worker processes,
  the wall clock, results as they complete (``distributed.as_completed``).

Because both drive the same loop, an algorithm behaves the same way under
both: the same bounds, the same flush at the end, the same divergence rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, List, Optional, Tuple, Union

from .model import State
from .training import LocalJob

if TYPE_CHECKING:
    from .history import History
    from .server import AsyncServer


@dataclass
class Arrival:
    """A job's update reached the server (``job.arrival_time`` is set)."""

    job: LocalJob


@dataclass
class Failure:
    """A client's training raised: the client is gone for the rest of the run."""

    job: LocalJob
    error: BaseException


Event = Union[Arrival, Failure]


class Driver:
    """The interface between the event loop and a clock (see the module docstring)."""

    #: What the History's times are: "virtual" seconds or "wall-clock" seconds.
    clock = "virtual"
    #: Driver seconds per virtual second (a wall clock may run the devices' times faster).
    time_scale = 1.0

    def open(self, server: "AsyncServer", history: "History") -> None:
        """Get ready for a run of ``server``; ``history`` takes any incidents."""

    def now(self) -> float:
        raise NotImplementedError

    def time_after(self, seconds: float) -> float:
        """The time ``seconds`` virtual seconds from now (a wall clock scales them)."""
        return self.now() + seconds

    def start(self, job: LocalJob, duration: float) -> None:
        """Start ``job``; its device takes ``duration`` virtual seconds."""
        raise NotImplementedError

    def next_event(self, until: Optional[float]) -> Optional[Event]:
        """The next event, or None when time ``until`` comes first (the server is free).

        With ``until=None`` it waits for the next event; at least one job is in flight.
        """
        raise NotImplementedError

    def cancel(self, job: LocalJob) -> None:
        """The server gave up on ``job`` (``job_timeout``): it never arrives, and its
        result is never asked for."""
        raise NotImplementedError(f"{type(self).__name__} cannot cancel a job: job_timeout "
                                  "is not supported by this driver")

    def result(self, job: LocalJob) -> Tuple[State, float]:
        """``(trained state, loss on the client's data)`` of an arrived job."""
        raise NotImplementedError

    def after_update(self, handled: int) -> None:
        """Called after each handled update (progress bars, fault injection)."""

    def close(self) -> List[LocalJob]:
        """End the run: stop the jobs still in flight and return them."""
        return []
