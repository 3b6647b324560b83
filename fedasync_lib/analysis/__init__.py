"""Analysis: what theory predicts about a run, and honest statistics over seeds.

* :mod:`.queueing`: who is heard how often, and how stale each client's updates are,
  predicted from the concurrency and the clients' speeds (:func:`predicted_staleness`);
* :mod:`.delayed_step`: the exact stability region of a gradient step taken with a
  gradient ``d`` steps old, on a quadratic (:func:`largest_stable_step`);
* :mod:`.rounds`: how many clients a synchronous round must ask when some do not report
  (:func:`fewest_clients`);
* :mod:`.statistics`: a metric over several seeds, its spread, and when a difference
  between two settings is a tie.
"""

from .delayed_step import (characteristic_roots, largest_stable_momentum_step, largest_stable_step,
                           spectral_radius)
from .queueing import QueueModel, predicted_drop_share, predicted_staleness, queue_model
from .rounds import fewest_clients, prob_at_least
from .statistics import Comparison, Spread, compare, spread

__all__ = ["Comparison", "QueueModel", "Spread", "characteristic_roots", "compare", "fewest_clients",
           "largest_stable_momentum_step", "largest_stable_step", "predicted_drop_share",
           "predicted_staleness", "prob_at_least", "queue_model",
           "spectral_radius", "spread"]
