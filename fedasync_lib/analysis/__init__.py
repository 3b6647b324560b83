"""Analysis: what theory predicts about a run, and honest statistics over seeds.

* :mod:`.queueing`: who is heard how often, and how stale each client's updates are,
  predicted from the concurrency and the clients' speeds (:func:`predicted_staleness`);
* :mod:`.statistics`: a metric over several seeds, its spread, and when a difference
  between two settings is a tie.
"""

from .queueing import QueueModel, predicted_drop_share, predicted_staleness, queue_model
from .statistics import Comparison, Spread, compare, spread

__all__ = ["Comparison", "QueueModel", "Spread", "compare", "predicted_drop_share",
           "predicted_staleness", "queue_model", "spread"]
