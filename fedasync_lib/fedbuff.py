"""FedBuff: buffered asynchronous aggregation (Nguyen et al., AISTATS 2022).

Clients train asynchronously as in FedAsync, but the server does not mix each
update in at once. It keeps a buffer. Each arriving update contributes its
*change* Delta = x_client - x_base (the client's model minus the model it
started from), scaled by how stale it is:

    buffer += Delta / sqrt(1 + staleness)

When ``buffer_size`` (K) updates have been buffered, the server takes one step
with its own learning rate eta (``server_lr``) and empties the buffer:

    x <- x + eta * buffer / K,       version <- version + 1

Staleness is counted in these server steps. Because K updates share one step,
each one is staler by a factor of about K less than in FedAsync with the same
number of clients in flight. The ``alpha`` recorded for an update is its
effective weight eta / (K sqrt(1 + staleness)).
"""

from __future__ import annotations

import math
from typing import Callable, List, Optional, Tuple


from .model import State
from .server import AsyncServer
from .update import Update

BufferStep = Callable[[State, List[Tuple[State, int]], float], State]


def fedbuff_step(server_state: State, buffered: List[Tuple[State, int]], server_lr: float) -> State:
    """One FedBuff server step from a full buffer of ``(delta, staleness)`` pairs:

        x_new = x + server_lr * (1/K) * sum_i delta_i / sqrt(1 + staleness_i)

    Returns a new state; the inputs are left unchanged.
    """
    weights = [1.0 / math.sqrt(1.0 + s) for _, s in buffered]
    return {k: server_state[k] + server_lr * sum(w * delta[k] for w, (delta, _) in
                                                 zip(weights, buffered)) / len(buffered)
            for k in server_state}


class FedBuffServer(AsyncServer):
    algorithm = "fedbuff"

    def __init__(self, *args, buffer_step: Optional[BufferStep] = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.buffer: List[Tuple[State, int]] = []
        self.buffer_step = buffer_step or fedbuff_step

    def apply(self, update: Update, staleness: int, time: float) -> float:
        if not self.aggregator.accepts(staleness):
            return 0.0
        cfg = self.config
        delta = {k: update.state_dict[k] - update.base_state[k] for k in self.state}
        self.buffer.append((delta, staleness))
        if len(self.buffer) == cfg.buffer_size:
            self.state = self.buffer_step(self.state, self.buffer, cfg.server_lr)
            self.version += 1
            self.buffer = []
        return cfg.server_lr / (cfg.buffer_size * math.sqrt(1.0 + staleness))
