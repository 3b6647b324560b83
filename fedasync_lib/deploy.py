"""FedAsync and FedBuff with real concurrent clients, on Dask distributed.

The simulator runs every client on a virtual clock. Here each client's local
training is a real Dask task on a worker process, and staleness comes from
real timing. The server loop is the simulator's, on the wall clock:

    1. hand the current model to ``concurrency`` clients (one task each);
    2. take results as they complete (``distributed.as_completed``);
    3. staleness = current version - the version the task started from;
       mix the update in with the same aggregator (or FedBuff buffer);
    4. hand the current model to the next idle client.

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
import time
from contextlib import ExitStack
from typing import Any, Callable, Dict, Iterable, List, Optional


from . import seeding
from .config import AsyncConfig
from .data import make_federated_data
from .fedbuff import FedBuffServer
from .history import History
from .model import State
from .server import AsyncServer
from .simulation import build
from .training import LocalJob, train_jobs
from .update import Update


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
    (state, loss), = train_jobs([job], data.clients, seed=config.seed,
                                learning_rate=config.learning_rate, batch_size=config.batch_size,
                                local_epochs=config.local_epochs, num_classes=config.num_classes)
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
        try:
            return stack.enter_context(Client(scheduler_address, timeout=f"{connect_timeout}s"))
        except (OSError, TimeoutError) as err:
            raise RuntimeError(f"scheduler_address={scheduler_address!r} cannot be reached within "
                               f"{connect_timeout:g} s: {err}") from None
    if n_workers < 1:
        raise ValueError(f"n_workers={n_workers!r} is invalid: expected an integer >= 1")
    stack.enter_context(dask.config.set({"distributed.scheduler.allowed-failures": 0}))
    # Dask's own log lines about dead workers would repeat what History.incidents records.
    # dashboard_address=None would still bind the default port 8787: use a random one.
    cluster = stack.enter_context(LocalCluster(n_workers=n_workers, threads_per_worker=1,
                                               processes=True, dashboard_address="127.0.0.1:0",
                                               silence_logs=logging.CRITICAL))
    return stack.enter_context(Client(cluster))


def _wait_for_workers(client, connect_timeout: float) -> None:
    try:
        client.wait_for_workers(1, timeout=connect_timeout)
    except (TimeoutError, OSError):
        raise RuntimeError(f"no worker joined the cluster at {client.scheduler.address} within "
                           f"{connect_timeout:g} s: start workers (`dask worker ADDRESS`) or "
                           "pass a cluster that has some") from None


# --- the server loop ------------------------------------------------------------------------------
def _run(server_class, config: AsyncConfig, scheduler_address: Optional[str], client: Any, *,
         n_workers: int, time_scale: float, connect_timeout: float, progress: bool,
         faulty_clients: Iterable[int], on_update: Optional[Callable[[int, Any], None]]) -> History:
    from distributed import as_completed

    if not (math.isfinite(time_scale) and time_scale >= 0):
        raise ValueError(f"time_scale={time_scale!r} is invalid: expected a number >= 0")
    setup = build(config)
    server = server_class(setup.model, setup.clients, setup.data.test, config)
    faulty = set(faulty_clients)
    history = History(server.algorithm, client_latency=[c.mean_latency for c in setup.clients])
    gen = seeding.rng(config.seed, "schedule")

    with ExitStack() as stack:
        dask_client = _connect(stack, scheduler_address, client, n_workers, connect_timeout)
        _wait_for_workers(dask_client, connect_timeout)
        bar = _progress_bar(config.num_updates, server.algorithm, progress)
        stack.callback(bar.close)
        t0 = time.perf_counter()
        now = lambda: time.perf_counter() - t0  # noqa: E731  (seconds since the run started)
        idle = list(range(config.num_clients))
        alive = set(idle)
        delivered = [0] * config.num_clients
        in_flight: Dict[Any, LocalJob] = {}
        job_ids = iter(range(10**12))
        completed = as_completed()

        def submit(job: LocalJob) -> None:
            sleep = time_scale * setup.clients[job.client_id].job_latency(gen)
            future = dask_client.submit(train_on_worker, config, job.client_id, job.job_id,
                                        job.base_state, sleep, job.client_id in faulty,
                                        pure=False, key=f"fedasync-job-{job.job_id}")
            in_flight[future] = job
            completed.add(future)

        def start_jobs() -> None:
            while idle and len(in_flight) < config.concurrency:
                cid = server.scheduler.pick_client(idle, history.client_latency, delivered, gen)
                idle.remove(cid)
                submit(LocalJob(next(job_ids), cid, server.version, server.state, start_time=now()))

        def record_eval(n: int) -> None:
            history.evals.append({"update": n, "time": now(), "version": server.version,
                                  "work": sum(u["time"] - u["start_time"] for u in history.updates),
                                  **server.evaluate()})

        start_jobs()
        record_eval(0)
        handled = 0
        for future in completed:
            job = in_flight.pop(future)
            if future.status == "error":
                error = future.exception()
                if isinstance(error, ClientTrainingError) or job.client_id in faulty:
                    alive.discard(job.client_id)
                    history.incidents.append({"time": now(), "event": "client failed",
                                              "client_id": job.client_id, "error": str(error)})
                    if not alive:
                        raise RuntimeError(f"every client's training failed; the last error: {error}")
                else:  # the worker running it died: hand the same job out again
                    history.incidents.append({"time": now(), "event": "job lost",
                                              "client_id": job.client_id, "error": repr(error)})
                    submit(LocalJob(next(job_ids), job.client_id, job.base_version,
                                    job.base_state, start_time=job.start_time))
                start_jobs()
                continue
            state, loss, _ = future.result()
            arrival = job.finish_time = now()
            update = Update(state, job.client_id, job.base_version,
                            len(setup.clients[job.client_id].dataset), start_time=job.start_time,
                            arrival_time=arrival, train_loss=loss, base_state=job.base_state)
            staleness = update.staleness(server.version)
            alpha = server.apply(update, staleness, arrival)
            handled += 1
            delivered[job.client_id] += 1
            history.record_update(job, applied_time=arrival, version=server.version,
                                  staleness=staleness, alpha=alpha, train_loss=loss)
            bar.update(1)
            if handled % config.eval_every == 0 or handled == config.num_updates:
                record_eval(handled)
            if on_update is not None:
                on_update(handled, dask_client)
            if handled == config.num_updates or not math.isfinite(loss):
                history.diverged = not math.isfinite(loss)
                break
            if job.client_id in alive:
                idle.append(job.client_id)
                idle.sort()
            start_jobs()
        for future in list(in_flight):
            future.cancel()
    if history.diverged and (not history.evals or history.evals[-1]["update"] != handled):
        record_eval(handled)
    history.final_accuracy = float("nan") if history.diverged else history.evals[-1]["accuracy"]
    return history


def _progress_bar(total: int, algorithm: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"{algorithm} on Dask", unit="update", disable=not enabled,
                leave=True)


def run_fedasync(config: AsyncConfig, scheduler_address: Optional[str] = None, client: Any = None,
                 *, n_workers: int = 2, time_scale: float = 0.05, connect_timeout: float = 30.0,
                 progress: bool = True, faulty_clients: Iterable[int] = (),
                 on_update: Optional[Callable[[int, Any], None]] = None) -> History:
    """FedAsync with each client's training as a Dask task; returns a :class:`History`
    whose times are wall-clock seconds since the run started.

    ``scheduler_address`` (``"tcp://host:8786"``) or ``client`` selects an existing
    cluster; with neither, a LocalCluster of ``n_workers`` processes is started and
    shut down afterwards. ``time_scale``: real seconds a task sleeps per virtual
    second of its client's job time. ``faulty_clients`` make their tasks raise
    (to teach failure handling). ``on_update(n, dask_client)`` is called after each
    handled update.
    """
    return _run(AsyncServer, config, scheduler_address, client, n_workers=n_workers,
                time_scale=time_scale, connect_timeout=connect_timeout, progress=progress,
                faulty_clients=faulty_clients, on_update=on_update)


def run_fedbuff(config: AsyncConfig, scheduler_address: Optional[str] = None, client: Any = None,
                **kwargs: Any) -> History:
    """FedBuff (buffer of ``config.buffer_size``) on Dask; same options as :func:`run_fedasync`."""
    defaults = dict(n_workers=2, time_scale=0.05, connect_timeout=30.0, progress=True,
                    faulty_clients=(), on_update=None)
    return _run(FedBuffServer, config, scheduler_address, client, **{**defaults, **kwargs})


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
    return [
        f"  final test accuracy   {s['final_accuracy']:.3f}",
        f"  updates applied       {s['updates_applied']}",
        f"  updates rejected      {s['updates_rejected']}",
        f"  staleness mean / max  {s['mean_staleness']:.2f} / {s['max_staleness']}",
        f"  wall-clock time       {s['virtual_time']:.1f} s",
        f"  jobs lost and redone  {lost_jobs(history)}",
        f"  clients failed        {sorted({i['client_id'] for i in history.incidents if i['event'] == 'client failed'})}",
    ]
