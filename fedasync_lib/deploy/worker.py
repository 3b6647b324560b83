"""What runs on a Dask worker: the clients it holds, and their jobs.

A deployed run first *installs* itself on every worker: the training spec (the config,
the initial model as a template, the loss, the training path), sent once, and the data
of the clients whose home is that worker (:mod:`fedasync_lib.deploy.placement`). Both
are kept in this module's memory on the worker, under the run's id, until the run ends.
A job then carries only the client's id and the model state it starts from, and returns
the trained state: only model states cross the network.

A job on a worker, :func:`train_job`:

    1. the emulated device time: ``sleep_seconds`` of real sleep (``time.sleep``
       releases the GIL, so the worker's other jobs sleep and train meanwhile);
    2. local SGD on the client's data, one job at a time per worker process (a lock:
       ``torch.func``'s transforms are not safe to run from two threads at once, and a
       worker process has one intra-op thread anyway), with the same trainers as the simulator
       (hand-written gradients for the built-in MLP, ``torch.func`` for any model) and
       the job's own shuffle stream, so a job trains as it would on the virtual clock;
    3. the trained state and the loss, with the worker's address and when, on the
       worker's clock, the job started and finished.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import torch

from ..core.config import AsyncConfig
from ..core.data import AsyncDataset
from ..core.model import Loss, State
from ..core.training import LocalJob, LocalTrainer, local_trainer


class ClientTrainingError(RuntimeError):
    """Raised inside a task when a client's training fails (or is made to fail)."""


class ClientDataMissing(RuntimeError):
    """Raised inside a task sent to a worker that does not hold the client's data."""


@dataclass
class TrainingSpec:
    """What every worker needs to train any client: sent once per worker and run."""

    config: AsyncConfig
    model: Optional[torch.nn.Module]  # the initial model, as a template; None: the built-in MLP
    loss: Optional[Loss]
    training: str


@dataclass
class _Installed:
    spec: TrainingSpec
    data: Dict[int, AsyncDataset] = field(default_factory=dict)
    trainers: Dict[int, LocalTrainer] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def trainer(self, client_id: int) -> LocalTrainer:
        with self.lock:  # the worker's threads share this store
            if client_id not in self.trainers:
                self.trainers[client_id] = local_trainer(
                    self.spec.model, [self.data[client_id]], self.spec.config,
                    loss=self.spec.loss, training=self.spec.training)
            return self.trainers[client_id]


_RUNS: Dict[str, _Installed] = {}
_RUNS_LOCK = threading.Lock()
_TRAINING = threading.Lock()  # one job trains at a time in this process (see above)


def _address() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return "local"


def install(run_id: str, spec_bytes: bytes, clients: Dict[int, Tuple[Any, Any]]) -> str:
    """Keep the run's spec (the first time) and ``clients``' data on this worker; returns
    the worker's address. The spec arrives as cloudpickle bytes, so that a model class
    defined in a notebook or script travels by value."""
    import cloudpickle

    # One thread per worker process for torch and the BLAS: no oversubscription.
    torch.set_num_threads(1)
    from threadpoolctl import threadpool_limits
    threadpool_limits(1)
    with _RUNS_LOCK:
        if run_id not in _RUNS:
            _RUNS[run_id] = _Installed(cloudpickle.loads(spec_bytes))
        store = _RUNS[run_id]
    with store.lock:
        for client_id, (x, y) in clients.items():
            store.data[int(client_id)] = AsyncDataset.from_arrays(x, y)
            store.trainers.pop(int(client_id), None)
    for client_id in clients:  # build the trainers now: the first job should not pay for it
        store.trainer(int(client_id))
    return _address()


def train_job(run_id: str, client_id: int, job_id: int, base_state: State,
              sleep_seconds: float, fail: bool = False) -> Dict[str, Any]:
    """One job of ``client_id`` (see the module docstring). Returns ``state``, ``loss``,
    ``worker``, and ``started``/``finished`` in seconds of the worker's ``time.time()``."""
    started = time.time()
    store = _RUNS.get(run_id)
    if store is None or client_id not in store.data:
        raise ClientDataMissing(f"worker {_address()} does not hold client {client_id}'s data "
                                f"for run {run_id}")
    if fail:
        raise ClientTrainingError(f"client {client_id} failed during training (job {job_id})")
    time.sleep(sleep_seconds)  # the emulated device's speed, on the real clock
    job = LocalJob(job_id, 0, 0, base_state)  # the trainer holds this one client: index 0
    with _TRAINING:
        (state, loss), = store.trainer(client_id).train([job])
    return {"state": dict(state), "loss": loss,  # the trainer's arrays are the job's own
            "worker": _address(), "started": started, "finished": time.time()}


def held_clients(run_id: Optional[str] = None) -> Dict[str, List[int]]:
    """The clients whose data this worker holds, per run (or for ``run_id``)."""
    with _RUNS_LOCK:
        runs = dict(_RUNS)
    return {rid: sorted(store.data) for rid, store in runs.items()
            if run_id is None or rid == run_id}


def drop(run_id: str) -> bool:
    """Forget the run's spec and data on this worker; True if it held any."""
    with _RUNS_LOCK:
        return _RUNS.pop(run_id, None) is not None
