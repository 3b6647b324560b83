"""fedasync_lib: asynchronous federated learning on a virtual clock, for teaching.

Start with :func:`run_fedasync` and :class:`AsyncConfig`::

    from fedasync_lib import AsyncConfig, run_fedasync
    history = run_fedasync(AsyncConfig(dataset="digits", concurrency=10))
    print(history.summary())
"""

from . import staleness
from .aggregator import AsyncAggregator
from .clients import AsyncClient
from .config import AsyncConfig
from .data import AsyncDataset, FederatedData, make_federated_data
from .history import History
from .model import AsyncModel
from .server import AsyncServer
from .simulation import build, run_fedasync, run_fedavg, run_fedbuff
from .update import Update

__all__ = [
    "AsyncAggregator", "AsyncClient", "AsyncConfig", "AsyncDataset", "AsyncModel",
    "AsyncServer", "FederatedData", "History", "Update", "build",
    "make_federated_data", "run_fedasync", "run_fedavg", "run_fedbuff", "staleness",
]
