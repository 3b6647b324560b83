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
from typing import List

import torch

from .model import State
from .server import AsyncServer
from .update import Update


class FedBuffServer(AsyncServer):
    algorithm = "fedbuff"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.buffer: List[State] = []

    def apply(self, update: Update, staleness: int, time: float) -> float:
        if not self.aggregator.accepts(staleness):
            return 0.0
        cfg = self.config
        weight = 1.0 / math.sqrt(1.0 + staleness)
        self.buffer.append({k: (update.state_dict[k] - update.base_state[k]) * weight
                            for k in self.state})
        if len(self.buffer) == cfg.buffer_size:
            self.state = {k: self.state[k] + cfg.server_lr * torch.stack(
                [delta[k] for delta in self.buffer]).mean(dim=0) for k in self.state}
            self.version += 1
            self.buffer = []
        return cfg.server_lr * weight / cfg.buffer_size
