"""The server's optimiser on FedBuff's buffered change: plain steps, momentum, or Adam.

FedBuff (``fedbuff.py``) turns a full buffer of K updates into one averaged change

    d = (1/K) sum_i Delta_i / sqrt(1 + s_i)

(each client's change Delta_i, discounted by its staleness s_i). The server then treats d
as a pseudo-gradient step (the direction to move in, the negative of a gradient) and takes
one step of its own optimiser with rate eta (``server_lr``):

* ``"sgd"`` (FedBuff as published, the default):  x <- x + eta d
* ``"momentum"`` (heavy ball, beta = ``server_momentum``):

      m <- beta m + d,          x <- x + eta m

* ``"adam"`` (FedAdam: beta1 = ``server_momentum``, beta2 = ``server_beta2``,
  tau = ``server_epsilon``):

      m <- beta1 m + (1 - beta1) d,    v <- beta2 v + (1 - beta2) d^2,
      x <- x + eta m / (sqrt(v) + tau)

  element by element, with m = v = 0 at the start and no bias correction: the form of
  "Adaptive Federated Optimization" (Reddi et al., ICLR 2021, arXiv:2003.00295) as
  APPFL's ``FedAdamServer`` implements it (``src/appfl/algorithm/Server_fed_adam.py``).
  The paper itself could not be read here; nothing else is claimed of it. tau bounds how
  adaptive the step is: a coordinate whose changes are small next to tau moves by about
  eta m / tau, one whose changes are large by about eta per step in its own units.

**Momentum and staleness.** With momentum, one server step moves the model by a weighted
sum of the buffers of all the steps before it, not by the last buffer alone. An update
whose client started from a model c - 1 steps old is applied together with momentum built
from changes that were computed after it started, and that it never saw; and its own
change keeps moving the model for about 1 / (1 - beta) steps after it is applied, on top of
the changes of the clients that started later. Staleness and momentum both act as delay:
the step a change makes is spread over later versions of the model.

The optimiser's state (m, v) has the keys and shapes of the server's state and is of the
same kind (numpy arrays, or tensors): the formulas use operators only.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from ..core.config import SERVER_OPTIMIZERS, AsyncConfig  # noqa: F401 (the names, re-exported)
from ..core.model import State


class ServerOptimizer:
    """Momentum or Adam on FedBuff's averaged change ``d`` (see the module). Plain steps
    (``"sgd"``) are :func:`fedbuff.fedbuff_step` itself and need no state."""

    def __init__(self, config: AsyncConfig):
        if config.server_optimizer not in ("momentum", "adam"):
            raise ValueError(f"server_optimizer={config.server_optimizer!r}: ServerOptimizer "
                             "keeps the state of 'momentum' and 'adam' only")
        self.kind = config.server_optimizer
        self.lr = config.server_lr
        self.beta1 = config.server_momentum
        self.beta2 = config.server_beta2
        self.tau = config.server_epsilon
        self.m: Optional[Dict[str, Any]] = None
        self.v: Optional[Dict[str, Any]] = None

    @staticmethod
    def fields_read(config: AsyncConfig) -> frozenset:
        """The optimiser's config fields a run with ``config.server_optimizer`` reads."""
        return frozenset({"server_optimizer"}
                         | ({"server_momentum"} if config.server_optimizer != "sgd" else set())
                         | ({"server_beta2", "server_epsilon"} if config.server_optimizer == "adam"
                            else set()))

    def step(self, x: State, d: State) -> State:
        """The new state from ``x`` and the averaged change ``d``; ``x`` and ``d`` unchanged."""
        if self.kind == "momentum":
            self.m = {k: d[k] if self.m is None else self.beta1 * self.m[k] + d[k] for k in x}
            return {k: x[k] + self.lr * self.m[k] for k in x}
        b1, b2 = self.beta1, self.beta2
        first = self.m is None
        self.m = {k: (1.0 - b1) * d[k] if first else b1 * self.m[k] + (1.0 - b1) * d[k] for k in x}
        self.v = {k: (1.0 - b2) * (d[k] * d[k]) if first else b2 * self.v[k] + (1.0 - b2) * (d[k] * d[k])
                  for k in x}
        return {k: x[k] + self.lr * self.m[k] / (self.v[k] ** 0.5 + self.tau) for k in x}
