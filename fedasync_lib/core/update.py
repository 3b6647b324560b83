"""What a client sends back to the server."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .model import State


@dataclass
class Update:
    """A client's trained model, tagged with the server version it started from.

    ``base_version`` is what makes staleness measurable: when the update
    arrives at server version ``v``, its staleness is ``v - base_version``,
    the number of other updates the server applied while this client trained.
    """

    state_dict: State
    client_id: int
    base_version: int
    num_samples: int
    start_time: float = 0.0  # virtual seconds, when the client got the model
    arrival_time: float = 0.0  # virtual seconds, when the update reached the server
    train_loss: float = float("nan")  # the client's loss on its own data after training
    base_state: Optional[State] = None  # the model the client started from, if kept

    def staleness(self, current_version: int) -> int:
        """Server versions applied since this update's base model: v - base_version."""
        if current_version < self.base_version:
            raise ValueError(
                f"current_version={current_version} is invalid: expected >= "
                f"base_version={self.base_version}"
            )
        return current_version - self.base_version
