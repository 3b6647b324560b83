"""The Dask driver: real concurrent clients for the one event loop.

The simulator runs every client on a virtual clock. This driver makes each
client's local training a real Dask task on a worker process, and staleness
comes from real timing. The server loop is not copied here: it is the
simulator's own (:class:`~fedasync_lib.core.server.AsyncServer`), with every
policy (FedAsync, FedBuff, FedAvg, the staleness bounds) and hook, driven by
the wall clock:

    * ``start``: submit the job as a task;
    * ``next_event``: the next task to complete (``distributed.as_completed``),
      or nothing before the server is free again (``apply_time``);
    * ``result``: the trained model the task returned.

It runs on a ``LocalCluster`` started for the run (worker processes; its HTTP
and dashboard server on a random loopback port, so no port conflicts), or
unchanged on a real cluster given its scheduler address, or on an existing
``distributed.Client``.

Teaching heterogeneity on one laptop: every client keeps the typical job
time the simulator would give it, and its task sleeps ``time_scale`` real
seconds per virtual second before it trains. A slow device is slow on
purpose. With ``time_scale=0`` tasks take only as long as their training.

Failures, as they are handled:

* a worker dies mid-run: the jobs running on it are lost. Each lost job is
  counted (``History.incidents``) and handed out again, from the same model
  version, to a surviving worker. Updates already applied live in this
  process and are never lost. (On a cluster started here, Dask's own retry
  is switched off so that a loss is seen and counted; on an existing cluster
  Dask may retry it silently first.)
* a client's training raises: the run goes on without that client, and the
  error is recorded. If every client has failed, the run stops with an error.
* the scheduler cannot be reached, or no worker joins within
  ``connect_timeout``: a ``RuntimeError`` that says which, and nothing is
  left running.
"""

from __future__ import annotations

import functools
import logging
import math
import numbers
import time
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Optional, Tuple

if TYPE_CHECKING:
    from ..core.server import AsyncServer


import torch

from ..core import processes
from ..core.config import AsyncConfig
from ..core.data import make_federated_data
from ..core.driver import Arrival, Driver, Failure
from ..core.history import History
from ..core.model import State
from ..core.training import LocalJob
from ..core.training_mlp import MLPTrainer


class ClientTrainingError(RuntimeError):
    """Raised inside a task when a client's training fails (or is made to fail)."""


# --- what runs on a worker ---------------------------------------------------------------
@functools.lru_cache(maxsize=4)
def _worker_data(config: AsyncConfig):
    """Each worker builds the data split once: it is a pure function of the config."""
    return make_federated_data(config)


def train_on_worker(config: AsyncConfig, client_id: int, job_id: int, base_state: State,
                    sleep_seconds: float, fail: bool = False) -> tuple:
    """One client's job on a worker: wait as long as the device would, then train.

    Returns ``(new_state, train_loss, worker_seconds)``.
    """
    import torch

    start = time.perf_counter()
    torch.set_num_threads(1)  # one thread per worker process: no oversubscription
    if fail:
        raise ClientTrainingError(f"client {client_id} failed during training (job {job_id})")
    time.sleep(sleep_seconds)  # the emulated device's speed (deliberate, on the real clock)
    data = _worker_data(config)
    job = LocalJob(job_id, client_id, 0, base_state)
    (state, loss), = MLPTrainer(data.clients, config).train([job])
    return {k: v.clone() for k, v in state.items()}, loss, time.perf_counter() - start


# --- connecting ----------------------------------------------------------------------------
def _connect(stack: ExitStack, scheduler_address: Optional[str], client: Any, n_workers: int,
             connect_timeout: float):
    """A ``distributed.Client``: the one given, one connected to the address, or a new
    LocalCluster's. Everything started here is closed by ``stack``."""
    import dask
    from distributed import Client, LocalCluster

    if client is not None:
        return client
    if scheduler_address is not None:
        _probe_scheduler(scheduler_address, connect_timeout)
        try:
            return stack.enter_context(Client(scheduler_address, timeout=f"{connect_timeout}s"))
        except (OSError, TimeoutError) as err:
            raise RuntimeError(f"scheduler_address={scheduler_address!r} cannot be reached within "
                               f"{connect_timeout:g} s: {err}") from None
    unguarded = processes.unguarded_call_in_main_script()
    if unguarded is not None:
        path, line = unguarded
        raise RuntimeError(
            f"{path}, line {line}, starts a local Dask cluster from the top level of the script, "
            "outside an `if __name__ == \"__main__\":` block. Each of the cluster's worker "
            "processes is a new Python that imports your script again, and would start a "
            "cluster of its own; put the code that calls deploy.run under that `if`")
    stack.enter_context(dask.config.set({"distributed.scheduler.allowed-failures": 0}))
    # Dask's own log lines about dead workers would repeat what History.incidents records.
    # dashboard_address=None would still bind the default port 8787: use a random one.
    cluster = stack.enter_context(LocalCluster(n_workers=n_workers, threads_per_worker=1,
                                               processes=True, dashboard_address="127.0.0.1:0",
                                               silence_logs=logging.CRITICAL))
    return stack.enter_context(Client(cluster))


def check_address(address: str) -> None:
    """Raise ``ValueError`` unless ``address`` reads as a Dask scheduler address, PROTOCOL://HOST:PORT."""
    from distributed.comm import parse_address, parse_host_port

    example = "expected PROTOCOL://HOST:PORT, for example 'tcp://10.0.0.5:8786'"
    if not isinstance(address, str) or "://" not in address:
        raise ValueError(f"scheduler_address={address!r} is invalid: {example}")
    try:
        scheme, location = parse_address(address)
        if scheme not in ("tcp", "tls"):
            raise ValueError(f"protocol {scheme!r}")
        host, port = parse_host_port(location)
        if not host or not 0 < int(port) < 65536:
            raise ValueError("host or port")
    except (ValueError, TypeError) as err:
        raise ValueError(f"scheduler_address={address!r} is invalid ({err}): {example}, "
                         "with protocol tcp or tls") from None


def _probe_scheduler(address: str, timeout: float) -> None:
    """Ask whatever listens at ``address`` who it is, within ``timeout`` seconds; raise
    ``RuntimeError`` unless a Dask scheduler answers. (Dask's own client, pointed at
    another kind of server, can wait for ever or read a garbage message length and
    try to allocate exabytes.)"""
    import asyncio
    import concurrent.futures
    import socket

    from distributed.comm import connect, parse_address, parse_host_port

    host, port = parse_host_port(parse_address(address)[1])
    try:  # first, is anything listening at all?
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as err:
        raise RuntimeError(f"scheduler_address={address!r} cannot be reached within {timeout:g} "
                           f"s: {err}") from None

    async def identity() -> Any:
        comm = await connect(address, timeout=timeout)
        try:
            await comm.write({"op": "identity", "reply": True})
            return await asyncio.wait_for(comm.read(), timeout)
        finally:
            comm.abort()

    def ask() -> Any:  # its own event loop, also when the caller runs one (Jupyter)
        return asyncio.run(identity())

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        try:
            reply = pool.submit(ask).result(3 * timeout + 5)
        except BaseException as err:  # no answer, or a garbage one (MemoryError, ...)
            reply = err
    if not (isinstance(reply, dict) and reply.get("type") == "Scheduler"):
        raise RuntimeError(f"scheduler_address={address!r} answers, but not as a Dask scheduler "
                           "does: is something else listening on that port? Start one with "
                           "`dask scheduler` and give its address")


def _wait_for_workers(client, connect_timeout: float) -> None:
    try:
        client.wait_for_workers(1, timeout=connect_timeout)
    except (TimeoutError, OSError):
        raise RuntimeError(f"no worker joined the cluster at {client.scheduler.address} within "
                           f"{connect_timeout:g} s: start workers (`dask worker ADDRESS`) or "
                           "pass a cluster that has some") from None


def _check_server(server: "AsyncServer") -> None:
    """Workers rebuild the data from the config and train the built-in MLP: refuse anything else."""
    if not isinstance(server.local_training, MLPTrainer):
        raise ValueError(f"DaskDriver trains the built-in MLP only, not {type(server.module).__name__} "
                         f"with {server.local_training.name}: run other models on the virtual clock")
    expected = make_federated_data(server.config).clients
    same = len(expected) == len(server.clients) and all(
        torch.equal(e.x, c.dataset.x) and torch.equal(e.y, c.dataset.y)
        for e, c in zip(expected, server.clients))
    if not same:
        raise ValueError("DaskDriver's workers build the data from the config "
                         "(make_federated_data(config)), but this run's clients hold other data: "
                         "run custom data on the virtual clock")


# --- the driver ------------------------------------------------------------------------------
class DaskDriver(Driver):
    """Jobs as Dask tasks on the wall clock: see the module docstring.

    ``scheduler_address`` (``"tcp://host:8786"``) or ``client`` selects an
    existing cluster; with neither, a LocalCluster of ``n_workers`` processes
    is started when the run opens and shut down when it closes.
    ``time_scale``: real seconds a task sleeps per virtual second of its
    client's job time (and the server per virtual second of ``apply_time``).
    ``faulty_clients`` make their tasks raise (to teach failure handling).
    ``on_update(n, dask_client)`` is called after each handled update.
    """

    clock = "wall-clock"

    def __init__(self, scheduler_address: Optional[str] = None, client: Any = None, *,
                 n_workers: int = 2, time_scale: float = 0.05, connect_timeout: float = 30.0,
                 progress: bool = True, faulty_clients: Iterable[int] = (),
                 on_update: Optional[Callable[[int, Any], None]] = None):
        if not (isinstance(time_scale, numbers.Real) and math.isfinite(time_scale)
                and time_scale >= 0):
            raise ValueError(f"time_scale={time_scale!r} is invalid: expected a number >= 0")
        if not (isinstance(connect_timeout, numbers.Real) and math.isfinite(connect_timeout)
                and connect_timeout > 0):
            raise ValueError(f"connect_timeout={connect_timeout!r} is invalid: expected a "
                             "number of seconds > 0")
        if client is None and scheduler_address is None and not (
                isinstance(n_workers, numbers.Integral) and 1 <= n_workers <= 256):
            raise ValueError(f"n_workers={n_workers!r} is invalid: expected an integer in [1, 256]")
        if scheduler_address is not None:
            check_address(scheduler_address)
        self.scheduler_address, self.client = scheduler_address, client
        self.n_workers, self.time_scale = n_workers, time_scale
        self.connect_timeout, self.progress = connect_timeout, progress
        self.faulty = set(faulty_clients)
        self.on_update = on_update

    def open(self, server: "AsyncServer", history: History) -> None:
        from distributed import as_completed

        _check_server(server)
        self.config, self.history = server.config, history
        self.stack = ExitStack()
        try:
            self.dask_client = _connect(self.stack, self.scheduler_address, self.client,
                                        self.n_workers, self.connect_timeout)
            _wait_for_workers(self.dask_client, self.connect_timeout)
        except BaseException:
            self.stack.close()
            raise
        self.bar = _progress_bar(self.config.num_updates, history.algorithm, self.progress)
        self.stack.callback(self.bar.close)
        self.in_flight: Dict[Any, LocalJob] = {}
        self.results: Dict[int, Tuple[State, float]] = {}
        self.sleeps: Dict[int, float] = {}
        self.attempts = 0
        self.completed = as_completed()
        self.t0 = time.perf_counter()

    def now(self) -> float:
        """Seconds since the run started."""
        return time.perf_counter() - self.t0

    def time_after(self, seconds: float) -> float:
        return self.now() + self.time_scale * seconds

    def start(self, job: LocalJob, duration: float) -> None:
        self._submit(job, self.time_scale * duration)

    def _submit(self, job: LocalJob, sleep: float) -> None:
        self.attempts += 1
        future = self.dask_client.submit(
            train_on_worker, self.config, job.client_id, job.job_id, job.base_state, sleep,
            job.client_id in self.faulty, pure=False,
            key=f"fedasync-job-{job.job_id}-{self.attempts}")
        self.sleeps[job.job_id] = sleep
        self.in_flight[future] = job
        self.completed.add(future)

    def next_event(self, until: Optional[float]):
        while True:
            if until is not None:  # the server is busy until then: wait no longer
                while not self.completed.has_ready():
                    if self.now() >= until:
                        return None
                    time.sleep(0.001)
            future = next(self.completed)
            job = self.in_flight.pop(future)
            if future.status != "error":
                state, loss, _ = future.result()
                self.results[job.job_id] = (state, loss)
                del self.sleeps[job.job_id]
                job.arrival_time = self.now()
                return Arrival(job)
            error = future.exception()
            if isinstance(error, ClientTrainingError) or job.client_id in self.faulty:
                return Failure(job, error)
            # The worker running it died: hand the same job out again, from the same model.
            self.history.incidents.append({"time": self.now(), "event": "job lost",
                                           "client_id": job.client_id, "error": repr(error)})
            self._submit(job, self.sleeps[job.job_id])

    def result(self, job: LocalJob) -> Tuple[State, float]:
        return self.results.pop(job.job_id)

    def after_update(self, handled: int) -> None:
        self.bar.update(1)
        if self.on_update is not None:
            self.on_update(handled, self.dask_client)

    def close(self) -> List[LocalJob]:
        stopped = list(self.in_flight.values())
        for future in list(self.in_flight):
            future.cancel()
        for job in stopped:
            job.arrival_time = self.now()  # cancelled now
        self.stack.close()
        return stopped


def _progress_bar(total: int, algorithm: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"{algorithm} on Dask", unit="update", disable=not enabled,
                leave=True)


def kill_busiest_worker(dask_client) -> Optional[str]:
    """Kill (SIGKILL) the worker process that is running the most tasks; return its address.

    For teaching and testing fault tolerance on a LocalCluster; its nanny restarts it.
    """
    import os
    import signal

    processing = dask_client.processing()
    if not processing:
        return None
    address = max(processing, key=lambda a: len(processing[a]))
    pid = dask_client.run(os.getpid, workers=[address])[address]
    os.kill(pid, signal.SIGKILL)
    return address


def lost_jobs(history: History) -> int:
    """How many jobs were lost with a dead worker and handed out again."""
    return sum(1 for i in history.incidents if i["event"] == "job lost")


def summary_lines(history: History) -> List[str]:
    s = history.summary()
    accuracy = (f"  DIVERGED after {len(history.updates)} updates: {s['divergence']}"
                if s["diverged"] else f"  final test accuracy   {s['final_accuracy']:.3f}")
    return [
        accuracy,
        f"  updates applied       {s['updates_applied']}",
        f"  updates rejected      {s['updates_rejected']}",
        f"  staleness mean / max  {s['mean_staleness']:.2f} / {s['max_staleness']}",
        f"  wall-clock time       {s['virtual_time']:.1f} s",
        f"  jobs lost and redone  {lost_jobs(history)}",
        f"  clients failed        {sorted({i['client_id'] for i in history.incidents if i['event'] == 'client failed'})}",
    ]
