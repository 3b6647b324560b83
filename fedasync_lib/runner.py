"""One call from a config to a finished run: :func:`run`.

    run(config, algorithm="fedasync" | "fedbuff" | "fedavg", data=None, *,
        model=None, loss=None, training="auto", driver=None, scheduler=None, **hooks)

builds the data split (or takes the learner's own, see
:meth:`~fedasync_lib.core.data.FederatedData.from_clients`), the clients with
their speeds and the initial model (the built-in MLP, or any ``nn.Module``),
plugs the algorithm's policy (with the learner's hooks) into the one event
loop, and runs it on a driver: the virtual clock by default, or real Dask
workers (:func:`fedasync_lib.deploy.run` passes a ``DaskDriver``).
``run_fedasync``, ``run_fedbuff`` and ``run_fedavg`` are the same call with
the algorithm filled in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional

from .algorithms import make_policy
from .core.clients import AsyncClient, make_clients
from .core.config import AsyncConfig
from .core.data import FederatedData, make_federated_data
from .core.driver import Driver
from .core.history import History
from .core.model import AsyncModel, Loss
from .core.scheduling import Scheduler
from .core.server import AsyncServer


@dataclass
class Setup:
    """Everything a run needs besides the algorithm: data, clients, initial model."""

    config: AsyncConfig
    data: FederatedData
    clients: List[AsyncClient]
    model: Any  # a built-in model, or a torch.nn.Module


def build(config: AsyncConfig, data: Optional[FederatedData] = None,
          model: Any = None) -> Setup:
    """Data split, clients with their speeds, and the initial model of ``config``.

    ``data``: a split already built for the same dataset, seed and number of
    clients (what ``make_federated_data(config)`` returns), or the learner's
    own (:meth:`FederatedData.from_clients`). ``model``: the initial model, a
    built-in one (``LinearModel``) or any ``nn.Module``; by default the built-in MLP of ``config``, whose
    ``hidden_dim`` is then the only setting that shapes it.
    """
    data = data if data is not None else make_federated_data(config)
    if len(data.clients) != config.num_clients:
        raise ValueError(f"data has {len(data.clients)} clients, expected "
                         f"num_clients={config.num_clients}")
    if model is not None and config.hidden_dim != AsyncConfig.hidden_dim:
        raise ValueError(f"hidden_dim={config.hidden_dim} is not read when a model is given "
                         f"(it sizes the built-in MLP only): leave it at {AsyncConfig.hidden_dim}")
    model = model if model is not None else AsyncModel(config)
    return Setup(config, data, make_clients(config, data.clients, data.latencies), model)


def server_for(config: AsyncConfig, algorithm: str = "fedasync",
               data: Optional[FederatedData] = None, *, model: Any = None,
               loss: Optional[Loss] = None, training: str = "auto",
               scheduler: Optional[Scheduler] = None, **hooks: Any) -> AsyncServer:
    """The :class:`AsyncServer` that :func:`run` trains (to inspect its model afterwards)."""
    policy = make_policy(algorithm, config, **hooks)
    setup = build(config, data, model)
    return AsyncServer(setup.model, setup.clients, setup.data.test, config, policy,
                       scheduler=scheduler, loss=loss, training=training)


def run(config: AsyncConfig, algorithm: str = "fedasync", data: Optional[FederatedData] = None,
        *, model: Any = None, loss: Optional[Loss] = None, training: str = "auto",
        driver: Optional[Driver] = None, scheduler: Optional[Scheduler] = None,
        **hooks: Any) -> History:
    """Run ``algorithm`` with ``config`` and return its :class:`History`.

    ``data``: the clients' data and the test set (default: ``config``'s
    dataset, split across ``config.num_clients``); bring your own with
    :meth:`FederatedData.from_clients`. ``model``: the initial model, a built-in
    one (numpy: the MLP by default, or ``LinearModel``) or any ``nn.Module`` that
    maps a batch of inputs to ``(n, num_classes)`` scores. ``loss``: for a
    built-in model the name of a built-in loss (``"cross_entropy"``, the default,
    or ``"squared_error"``); for a module a per-sample loss such as
    ``nn.CrossEntropyLoss(reduction="none")`` (the default). ``training``:
    ``"auto"`` (hand-written gradients in numpy for a built-in model,
    ``torch.func`` for a module), ``"hand-written"`` or ``"torch.func"`` (a
    built-in model as the same ``nn.Module``).
    ``hooks`` replace one piece of the algorithm (see :mod:`fedasync_lib.algorithms`);
    a hook the algorithm does not read raises ``ValueError``. ``scheduler``
    orders waiting updates and picks idle clients, for every algorithm.
    """
    return server_for(config, algorithm, data, model=model, loss=loss, training=training,
                      scheduler=scheduler, **hooks).train(driver)


def run_fedasync(config: AsyncConfig, data: Optional[FederatedData] = None,
                 **hooks: Any) -> History:
    """FedAsync: ``run(config, "fedasync", data, **hooks)``."""
    return run(config, "fedasync", data, **hooks)


def run_fedbuff(config: AsyncConfig, data: Optional[FederatedData] = None,
                **hooks: Any) -> History:
    """FedBuff (buffer of ``config.buffer_size``, server step ``config.server_lr``):
    ``run(config, "fedbuff", data, **hooks)``."""
    return run(config, "fedbuff", data, **hooks)


def run_fedavg(config: AsyncConfig, data: Optional[FederatedData] = None,
               **hooks: Any) -> History:
    """Synchronous FedAvg, rounds of ``config.concurrency`` clients:
    ``run(config, "fedavg", data, **hooks)``."""
    return run(config, "fedavg", data, **hooks)
