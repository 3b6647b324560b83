"""One call from a config to a finished run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional

from .clients import AsyncClient, make_clients
from .config import AsyncConfig
from .data import FederatedData, make_federated_data
from .history import History
from .model import AsyncModel
from .fedavg import FedAvgServer
from .fedbuff import FedBuffServer
from .server import AsyncServer


@dataclass
class Setup:
    """Everything a run needs besides the algorithm: data, clients, initial model."""

    config: AsyncConfig
    data: FederatedData
    clients: List[AsyncClient]
    model: AsyncModel


def build(config: AsyncConfig, data: Optional[FederatedData] = None) -> Setup:
    """Data split, clients with their speeds, and the initial model of ``config``.

    Pass ``data`` to reuse a split already built for the same dataset, seed and
    number of clients (it is what ``make_federated_data(config)`` returns).
    """
    data = data if data is not None else make_federated_data(config)
    if len(data.clients) != config.num_clients:
        raise ValueError(f"data has {len(data.clients)} clients, expected "
                         f"num_clients={config.num_clients}")
    return Setup(config, data, make_clients(config, data.clients, data.latencies), AsyncModel(config))


def run_fedasync(config: AsyncConfig, data: Optional[FederatedData] = None,
                 **hooks: Any) -> History:
    """Simulate FedAsync with ``config`` and return its :class:`History`.

    ``hooks`` go to :class:`AsyncServer`: ``scheduler``, ``mixing_rule``,
    ``accept``, ``may_start``.
    """
    setup = build(config, data)
    return AsyncServer(setup.model, setup.clients, setup.data.test, config, **hooks).train()


def run_fedbuff(config: AsyncConfig, data: Optional[FederatedData] = None,
                **hooks: Any) -> History:
    """Simulate FedBuff (buffer of ``config.buffer_size``, server step ``config.server_lr``).

    ``hooks`` are those of :func:`run_fedasync`, plus ``buffer_step``.
    """
    setup = build(config, data)
    return FedBuffServer(setup.model, setup.clients, setup.data.test, config, **hooks).train()


def run_fedavg(config: AsyncConfig, data: Optional[FederatedData] = None) -> History:
    """Simulate synchronous FedAvg: rounds of ``config.concurrency`` clients."""
    setup = build(config, data)
    return FedAvgServer(setup.model, setup.clients, setup.data.test, config).train()
