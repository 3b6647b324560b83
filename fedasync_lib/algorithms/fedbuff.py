"""FedBuff: buffered asynchronous aggregation (Nguyen et al., AISTATS 2022,
arXiv:2106.06639), as a policy of the event loop.

Clients train asynchronously as in FedAsync, but the server does not mix each
update in at once. It keeps a buffer. Each arriving update contributes its
*change* Delta = x_client - x_base (the client's model minus the model it
started from), scaled by how stale it is:

    buffer += Delta / sqrt(1 + staleness)

When ``buffer_size`` (K) updates have been buffered, the server takes one step
with its own learning rate eta (``server_lr``) and empties the buffer:

    x <- x + eta * buffer / K,       version <- version + 1

When the run ends with a partly filled buffer of K' < K updates, that buffer
is applied too (divided by K'), so every accepted update moves the model.

Staleness is counted in these server steps. Because K updates share one step,
each one is staler by a factor of about K less than in FedAsync with the same
number of clients in flight. The ``alpha`` recorded for an update is its
effective weight eta / (K sqrt(1 + staleness)), written when its step is taken.

``buffer_window`` replaces the K-buffer by a time window (as Plato, FLGo and APPFL
aggregate): the first update the buffer takes opens a window, and ``buffer_window``
virtual seconds later the server steps on everything it took up meanwhile (divided by
their number K'), however many; 0 applies each update at once, as K = 1 does.

``server_optimizer`` replaces the plain step by momentum or Adam (FedAdam) on the
averaged change d = buffer / K (:mod:`.server_optimizers`): x <- x + eta m, or
x <- x + eta m / (sqrt(v) + tau). A learner's ``buffer_step`` still plugs in: it is then
called with the rate 1, and its new state minus the old is d. The recorded ``alpha``
stays the plain step's weight eta / (K sqrt(1 + s)); momentum spreads an update's
effect over later steps, which no single number per update describes.

FedBuff reads ``buffer_size``, ``server_lr``, ``server_optimizer`` (and that
optimiser's settings) and the staleness bound; its
staleness weight is the paper's 1/sqrt(1 + s), whatever ``config.staleness``,
``mixing`` and ``mixing_alpha`` say (see :meth:`FedBuff.fields_read`).
"""

from __future__ import annotations

import math
from typing import Callable, Dict, FrozenSet, List, Optional, Sequence, Tuple

from ..core.config import AsyncConfig
from ..core.model import State
from ..core.policy import Policy, ServerModel
from ..core.training import LocalJob
from ..core.update import Update
from .bounded import AcceptRule, MayStartRule, StalenessBound
from .hook_results import Untouched, check_state
from .server_optimizers import ServerOptimizer

BufferStep = Callable[[State, List[Tuple[State, int]], float], State]


def fedbuff_step(server_state: State, buffered: List[Tuple[State, int]], server_lr: float) -> State:
    """One FedBuff server step from a buffer of ``(delta, staleness)`` pairs:

        x_new = x + server_lr * (1/K) * sum_i delta_i / sqrt(1 + staleness_i)

    with K = len(buffered). Returns a new state; the inputs are left unchanged.
    """
    total = discounted_sum(buffered, server_state)
    return {k: server_state[k] + server_lr * total[k] / len(buffered) for k in server_state}


def discounted_sum(buffered: List[Tuple[State, int]], keys) -> State:
    """``sum_i delta_i / sqrt(1 + staleness_i)`` over the buffer, key by key (for ``keys``):
    FedBuff's staleness discount, written once. Divided by K it is the averaged change d
    that a server optimiser steps on (:mod:`.server_optimizers`)."""
    weights = [1.0 / math.sqrt(1.0 + s) for _, s in buffered]
    return {k: sum(w * delta[k] for w, (delta, _) in zip(weights, buffered)) for k in keys}


class FedBuff(Policy):
    """Buffer K updates' changes, then take one server step.

    Hooks: ``buffer_step`` (the server step, Exercise 4), ``accept`` /
    ``may_start`` (the staleness bound).
    """

    name = "fedbuff"
    title = "FedBuff"

    def __init__(self, config: AsyncConfig, *, buffer_step: Optional[BufferStep] = None,
                 accept: Optional[AcceptRule] = None, may_start: Optional[MayStartRule] = None):
        super().__init__(config)
        self.bound = StalenessBound(config, accept=accept, may_start=may_start,
                                    algorithm=self.name)
        self.buffer_step = buffer_step or fedbuff_step
        # momentum or Adam on the averaged change (None: plain steps, FedBuff as published)
        self.optimizer = ServerOptimizer(config) if config.server_optimizer != "sgd" else None
        self.buffer: List[Tuple[State, int]] = []
        self.buffered: List[int] = []  # arrival indices of the buffered updates
        self.window_ends: Optional[float] = None  # with buffer_window: when the open window closes

    @classmethod
    def fields_read(cls, config: AsyncConfig) -> FrozenSet[str]:
        size = {"buffer_size"} if config.buffer_window is None else set()
        return (StalenessBound.fields_read(config) | {"server_lr", "buffer_window"} | size
                | ServerOptimizer.fields_read(config))

    def may_start(self, server: ServerModel, in_flight: Sequence[LocalJob], handled: int) -> bool:
        # An open time window is a step to come: the wait bound counts it as taken (its
        # argument assumes the version moves when an update arrives, not later). With no job
        # in flight, a new one would still see that step if it lands after the window
        # closes: under a bound of 0 it waits for the step.
        pending = 1 if self.deadline() is not None else 0
        bases = [j.base_version for j in in_flight]
        cfg = self.config
        if (pending and not bases and cfg.staleness_policy == "wait"
                and cfg.max_staleness is not None and pending > cfg.max_staleness):
            return False
        return self.bound.allows_start(server.version + pending, bases)

    def receive(self, server: ServerModel, update: Update, staleness: int, time: float,
                index: int) -> Dict[int, float]:
        if not self.bound.accepts(staleness):
            return {}
        if update.base_state is None:
            raise ValueError(f"update from client {update.client_id} has base_state=None: "
                             "FedBuff needs the model the client started from to compute its "
                             "change")
        delta = {k: update.state_dict[k] - update.base_state[k] for k in server.state}
        self.buffer.append((delta, staleness))
        self.buffered.append(index)
        window = self.config.buffer_window
        if window is None:
            return self._step(server) if len(self.buffer) >= self.config.buffer_size else {}
        if window == 0:
            return self._step(server)
        if len(self.buffer) == 1:  # the first update of a buffer opens its window
            self.window_ends = self.time_after(window)
        return {}

    def deadline(self) -> Optional[float]:
        return self.window_ends if self.buffer and self.config.buffer_window else None

    def on_deadline(self, server: ServerModel, time: float) -> Dict[int, float]:
        return self._step(server)

    def flush(self, server: ServerModel, time: float) -> Dict[int, float]:
        return self._step(server) if self.buffer else {}

    def held(self) -> List[int]:
        return list(self.buffered)

    def _step(self, server: ServerModel) -> Dict[int, float]:
        """Apply the buffer (full, or the last partial one) as one server step."""
        k, eta = len(self.buffer), self.config.server_lr
        # With a server optimiser, the step from the buffer is taken at rate 1: it gives the
        # averaged change d (its new state minus the old), on which the optimiser steps.
        rate = eta if self.optimizer is None else 1.0
        if self.buffer_step is fedbuff_step:
            stepped = fedbuff_step(server.state, self.buffer, rate)
        else:  # the learner's step: its answer is checked, and so are its inputs
            shown = {"server_state": server.state,
                     **{f"the delta of buffered update {i}": d for i, (d, _) in enumerate(self.buffer)}}
            result = Untouched("buffer_step", shown).call(
                self.buffer_step, server.state, list(self.buffer), rate)
            stepped = check_state(result, server.state, "buffer_step")
        if self.optimizer is None:
            server.state = stepped
        else:
            change = {key: stepped[key] - server.state[key] for key in server.state}
            server.state = self.optimizer.step(server.state, change)
        server.version += 1
        weights = {i: eta / (k * math.sqrt(1.0 + s))
                   for i, (_, s) in zip(self.buffered, self.buffer)}
        self.buffer, self.buffered = [], []
        return weights
