"""What an algorithm decides, as a *policy* plugged into the one event loop.

The loop (:class:`fedasync_lib.core.server.AsyncServer`) is the same for
every algorithm: clients start jobs, their updates arrive, the server handles
them one at a time. What differs between FedAsync, FedBuff and synchronous
FedAvg is only three decisions, and a policy makes exactly those:

1. ``may_start``: may an idle client start a job now? (FedAsync: always;
   bounded-staleness SGD: only while the oldest job in flight is recent
   enough; FedAvg: only while a round is being filled.)
2. ``receive``: what does an arriving update do to the server model? It may
   mix it in at once (FedAsync), keep it in a buffer (FedBuff, FedAvg), or
   reject it (a staleness bound). It returns the weights of the updates that
   moved the model *now*, by their arrival index; an update kept for later
   gets its weight when the step that uses it is taken.
3. ``flush``: what to apply when the run ends (FedBuff's last partial buffer).

The time (virtual clock, or the wall clock of real workers) comes from a
*driver* (:mod:`fedasync_lib.core.driver`), never from the policy.
This split follows Flower's strategy / server / client-proxy layers and
FLSim's aggregator with an end-of-run flush.
"""

from __future__ import annotations

from typing import Callable, Dict, FrozenSet, List, Optional, Sequence

from .config import AsyncConfig
from .model import State, frozen
from .training import LocalJob
from .update import Update

#: AsyncConfig fields that only some algorithms read. Every other field
#: (data, model, local training, speeds, scheduling, evaluation) is read by
#: every run, whatever the algorithm.
ALGORITHM_FIELDS: FrozenSet[str] = frozenset({
    "max_staleness", "staleness_policy", "staleness", "staleness_weight_decay", "poly_a",
    "hinge_a", "hinge_b", "mixing", "mixing_alpha", "damping_constant", "buffer_size",
    "server_lr", "buffer_window", "oversample", "round_deadline", "server_optimizer", "server_momentum", "server_beta2", "server_epsilon",
})


class ServerModel:
    """The server's model and its version: the number of steps applied to it.

    A new state's numpy arrays are made read-only as it is set
    (:func:`~fedasync_lib.core.model.frozen`): states are never changed in place, and a
    hook that tries gets an error at once rather than a silently different run.
    """

    def __init__(self, state: State, version: int = 0):
        self.state = state
        self.version = version

    @property
    def state(self) -> State:
        return self._state

    @state.setter
    def state(self, state: State) -> None:
        self._state = frozen(state)

    def __repr__(self) -> str:
        return f"ServerModel(version={self.version}, keys={list(self._state)})"


class Policy:
    """The decisions of one algorithm. Subclasses override what they change."""

    #: The name a run is asked for by, e.g. ``run(config, algorithm="fedbuff")``.
    name = "policy"
    #: How a person calls it, e.g. "FedAsync".
    title = "a policy"

    def __init__(self, config: AsyncConfig):
        self.config = config

    @classmethod
    def fields_read(cls, config: AsyncConfig) -> FrozenSet[str]:
        """The algorithm-specific config fields (of :data:`ALGORITHM_FIELDS`) a run reads."""
        return frozenset()

    def may_start(self, server: ServerModel, in_flight: Sequence[LocalJob], handled: int) -> bool:
        """May an idle client start a job on the current model now?"""
        return True

    def on_start(self, job: LocalJob) -> None:
        """A job was started (a policy that counts its jobs hears of each one)."""

    def receive(self, server: ServerModel, update: Update, staleness: int, time: float,
                index: int) -> Dict[int, float]:
        """Handle the update with arrival index ``index``; change ``server`` if it moves.

        Returns ``{arrival index: weight}`` of every update whose step was taken now.
        """
        raise NotImplementedError

    def flush(self, server: ServerModel, time: float) -> Dict[int, float]:
        """At the end of a run: apply what is still kept back; same return as ``receive``."""
        return {}

    def held(self) -> List[int]:
        """Arrival indices of the updates kept back for a later step, not applied yet."""
        return []

    def discarded(self) -> List[int]:
        """Arrival indices of the updates thrown away because they came too late for their
        round (synchronous FedAvg with over-selection or a deadline)."""
        return []

    def on_abandon(self, server: ServerModel, job: LocalJob, time: float) -> Dict[int, float]:
        """The server gave up on ``job`` (``job_timeout``): it will never report. Same return
        as :meth:`receive` (a round that waited for it may close now)."""
        return {}

    def max_in_flight(self) -> int:
        """How many jobs may train at once: ``concurrency``, unless the policy asks more
        clients than it waits for (over-selection)."""
        return self.config.concurrency

    # --- time: a policy that acts at a moment, not only when an update arrives -----------
    def bind_clock(self, time_after: Callable[[float], float]) -> None:
        """The loop hands over its driver's ``time_after`` (virtual seconds from now, in
        the driver's time) when a run starts."""
        self.time_after = time_after

    def deadline(self) -> Optional[float]:
        """The driver time at which :meth:`on_deadline` must be called, if any: the loop
        wakes up then even when no update arrives."""
        return None

    def on_deadline(self, server: ServerModel, time: float) -> Dict[int, float]:
        """The deadline came; same return as :meth:`receive`."""
        return {}
