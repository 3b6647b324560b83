"""Applying one arriving update to the server model.

FedAsync (Xie, Koyejo and Gupta 2019, Algorithm 1) mixes each update into
the server model as soon as it arrives:

    x  <-  (1 - alpha_t) x  +  alpha_t x_client,   alpha_t = alpha * s(staleness)

where ``s`` is a staleness function (:mod:`fedasync_lib.staleness`) and
``alpha`` (``mixing_alpha``) is a constant in (0, 1]. An update whose
staleness exceeds ``max_staleness`` is rejected: alpha_t = 0.

The original tutorial used a different rate, kept here as the
``"sample_damping"`` rule so that the lesson can show its flaw:

    w = s(staleness) * num_samples,   alpha_t = w / (w + damping_constant)

It adds a sample count to a constant with no unit. The same staleness gives a
different rate on a client with 50 samples than on one with 5,000 (0.33
against 0.98 at the default constant 100), so changing the dataset size
silently changes the optimiser.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Tuple

from ..core.config import AsyncConfig
from ..core.model import State
from ..core.update import Update
from . import staleness as staleness_fns
from .bounded import AcceptRule, StalenessBound
from .hook_results import Untouched, as_rate


@dataclass
class MixingContext:
    """What a custom mixing rule may look at to choose alpha_t."""

    update: Update
    staleness: int
    server_state: State
    version: int
    time: float  # seconds: virtual, or wall-clock in a deployed run
    config: AsyncConfig


MixingRule = Callable[[MixingContext], float]


class AsyncAggregator:
    """Turns (server state, update, server version) into the next server state.

    ``mixing_rule`` replaces the config's rate for accepted updates (adaptive
    mixing, Exercise 3); ``accept`` replaces the staleness bound (Exercise 1),
    or pass a whole :class:`~fedasync_lib.algorithms.bounded.StalenessBound` as ``bound``.
    """

    def __init__(self, config: AsyncConfig, mixing_rule: Optional[MixingRule] = None,
                 accept: Optional[AcceptRule] = None, bound: Optional[StalenessBound] = None):
        self.config = config
        self.staleness_fn = staleness_fns.from_config(config)
        self.mixing_rule = mixing_rule
        self.bound = bound if bound is not None else StalenessBound(config, accept=accept)

    def accepts(self, staleness: int) -> bool:
        """False when the staleness bound rejects the update (drop policy)."""
        return self.bound.accepts(staleness)

    def mixing_rate(self, update: Update, current_version: int, server_state: Optional[State] = None,
                    time: float = 0.0) -> float:
        """alpha_t for this update, 0 when it is rejected."""
        s = update.staleness(current_version)
        if not self.accepts(s):
            return 0.0
        if self.mixing_rule is not None:
            states = {"ctx.server_state": server_state or {}, "ctx.update.state_dict": update.state_dict}
            if update.base_state is not None:
                states["ctx.update.base_state"] = update.base_state
            alpha = Untouched("mixing_rule", states).call(
                self.mixing_rule, MixingContext(update, s, server_state, current_version, time,
                                                self.config))
            return as_rate(alpha, "mixing_rule")
        weight = self.staleness_fn(s)
        if self.config.mixing == "sample_damping":
            w = weight * update.num_samples
            return w / (w + self.config.damping_constant)
        return self.config.mixing_alpha * weight

    def aggregate(self, model_state: State, update: Update, current_version: int,
                  time: float = 0.0) -> Tuple[State, float]:
        """Return ``(new_state, alpha_t)``. A rejected update returns the state unchanged."""
        alpha = self.mixing_rate(update, current_version, model_state, time)
        if alpha == 0.0:
            return model_state, 0.0
        return mix(model_state, update.state_dict, alpha), alpha


def mix(server: State, client: State, alpha: float) -> State:
    """(1 - alpha) * server + alpha * client, as a new state (inputs untouched); numpy arrays
    or tensors alike. alpha = 0 gives the server's model and alpha = 1 the client's, exactly.
    alpha is taken as a Python float, so that a numpy scalar does not promote a float32 state
    to float64 (numpy 2 keeps a numpy scalar's type, NEP 50)."""
    alpha = float(alpha)
    return {k: (1.0 - alpha) * server[k] + alpha * client[k] for k in server}
