"""fedasync_lib: asynchronous federated learning on a virtual clock, for teaching.

Start with :func:`run` and :class:`AsyncConfig`::

    from fedasync_lib import AsyncConfig, run
    history = run(AsyncConfig(dataset="digits", concurrency=10), algorithm="fedasync")
    print(history.summary())

Four layers, one subpackage each:

* :mod:`fedasync_lib.core`: the simulator (config, data, model, training,
  clients, the one event loop, the virtual clock);
* :mod:`fedasync_lib.algorithms`: FedAsync, FedBuff, FedAvg and the staleness
  bounds, each a policy of that loop;
* :mod:`fedasync_lib.teaching`: the lesson's data, plots, sliders, exercises;
* :mod:`fedasync_lib.deploy`: the same loop with real clients on Dask.
"""

from .algorithms import adaptive, bounded, staleness
from .algorithms.aggregator import AsyncAggregator
from .core.clients import AsyncClient
from .core.config import AsyncConfig
from .core.data import AsyncDataset, FederatedData, make_federated_data
from .core.history import History
from .core.model import AsyncModel, LinearModel
from .core.server import AsyncServer
from .core.update import Update
from .runner import build, run, run_fedasync, run_fedavg, run_fedbuff
from .seeds import run_seeds
from .analysis import predicted_staleness
from .teaching import experiments, exercises, lesson, plots

__version__ = "0.2.0"


def __getattr__(name: str):
    # deploy needs Dask, widgets ipywidgets, and the model zoo torch: imported on first use only.
    if name in ("DigitsCNN", "LogisticRegression"):
        from .core import model_zoo
        return getattr(model_zoo, name)
    if name in ("deploy", "widgets"):
        import importlib
        return importlib.import_module(f".{'deploy' if name == 'deploy' else 'teaching.widgets'}",
                                       __name__)
    raise AttributeError(f"module 'fedasync_lib' has no attribute {name!r}")


__all__ = [
    "AsyncAggregator", "AsyncClient", "AsyncConfig", "AsyncDataset", "AsyncModel",
    "AsyncServer", "FederatedData", "History", "LinearModel", "Update",
    "adaptive", "bounded", "build",
    "experiments", "exercises", "lesson", "make_federated_data", "plots", "run",
    "predicted_staleness", "run_fedasync", "run_fedavg", "run_fedbuff", "run_seeds", "staleness",
]
# Not in __all__, so that `from fedasync_lib import *` needs neither torch nor Dask:
# DigitsCNN and LogisticRegression (torch modules), deploy (Dask), widgets (ipywidgets).
