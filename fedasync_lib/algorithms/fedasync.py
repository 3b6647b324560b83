"""FedAsync (Xie, Koyejo and Gupta 2019, arXiv:1903.03934) as a policy of the event loop.

Every arriving update is mixed into the server model at once,

    x  <-  (1 - alpha_t) x  +  alpha_t x_client,     alpha_t = alpha * s(staleness),

and the version moves by one (see :class:`~fedasync_lib.algorithms.aggregator.AsyncAggregator`).
A staleness bound (:mod:`~fedasync_lib.algorithms.bounded`) rejects too-stale
updates on arrival (drop), or holds clients back before they start (wait:
bounded-staleness SGD).
"""

from __future__ import annotations

from typing import Dict, FrozenSet, Optional, Sequence

from ..core.config import AsyncConfig
from ..core.policy import Policy, ServerModel
from ..core.training import LocalJob
from ..core.update import Update
from .aggregator import AsyncAggregator, MixingRule
from .bounded import AcceptRule, MayStartRule, StalenessBound

#: The parameter each staleness function reads.
STALENESS_PARAMETERS = {"constant": (), "polynomial": ("poly_a",),
                        "hinge": ("hinge_a", "hinge_b"),
                        "exponential": ("staleness_weight_decay",)}


class FedAsync(Policy):
    """Mix each update in as it arrives, with a rate that shrinks with its staleness.

    Hooks: ``mixing_rule`` (alpha_t, Exercise 3), ``accept`` / ``may_start``
    (the staleness bound, Exercise 1).
    """

    name = "fedasync"
    title = "FedAsync"

    def __init__(self, config: AsyncConfig, *, mixing_rule: Optional[MixingRule] = None,
                 accept: Optional[AcceptRule] = None, may_start: Optional[MayStartRule] = None):
        super().__init__(config)
        bound = StalenessBound(config, accept=accept, may_start=may_start, algorithm=self.name)
        self.aggregator = AsyncAggregator(config, mixing_rule=mixing_rule, bound=bound)

    @classmethod
    def fields_read(cls, config: AsyncConfig) -> FrozenSet[str]:
        fields = {"mixing", "staleness", *STALENESS_PARAMETERS[config.staleness]}
        fields.add("damping_constant" if config.mixing == "sample_damping" else "mixing_alpha")
        return StalenessBound.fields_read(config) | fields

    def may_start(self, server: ServerModel, in_flight: Sequence[LocalJob], handled: int) -> bool:
        return self.aggregator.bound.allows_start(server.version,
                                                  (j.base_version for j in in_flight))

    def receive(self, server: ServerModel, update: Update, staleness: int, time: float,
                index: int) -> Dict[int, float]:
        server.state, alpha = self.aggregator.aggregate(server.state, update, server.version, time)
        if alpha == 0.0:
            return {}  # rejected: the model and its version stay as they are
        server.version += 1
        return {index: alpha}
