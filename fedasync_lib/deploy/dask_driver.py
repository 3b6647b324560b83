"""The Dask driver: real concurrent clients for the one event loop.

The simulator runs every client on a virtual clock. This driver makes each client's
local training a real Dask task on a worker process, and staleness comes from real
timing. The server loop is not copied here: it is the simulator's own
(:class:`~fedasync_lib.core.server.AsyncServer`), with every policy (FedAsync, FedBuff,
FedAvg, the staleness bounds), hook, model, loss and training path, driven by the wall
clock:

    * ``open``: each client gets a home worker, and its data is sent there once
      (:mod:`~fedasync_lib.deploy.placement`, :func:`~fedasync_lib.deploy.worker.install`);
    * ``start``: submit the job as a task pinned to the client's home;
    * ``next_event``: the next task to complete, or nothing before the server is free
      again (``apply_time``); meanwhile, every ``CHECK_EVERY`` seconds, whether a
      worker has left the cluster;
    * ``result``: the trained model the task returned.

Only model states cross the network once the run has started: a job carries the state
it starts from, and returns the trained one.

**Concurrency.** A slow device is slow on purpose: each task sleeps ``time_scale`` real
seconds per virtual second of its client's job time, then trains. The sleep holds one of
its worker's threads, as a real device is busy while it trains, and releases the GIL. So
that ``concurrency`` clients really train at once, every worker needs a thread for each
of its clients that may be in flight together, ``min(concurrency, its clients)``: a
local cluster is started with that many threads per worker, and a cluster given by
address is checked for them before the run starts. ``History.jobs`` records, per job,
when it was submitted and when it started and finished on its worker.

Failures, as they are handled:

* a worker is lost: its process dies (the scheduler no longer lists it), or its host
  drops off the network (the scheduler has heard no heartbeat from it for
  ``worker_timeout`` seconds of this process's clock). Its clients move, with their data, to the surviving workers
  (``History.incidents``: ``"worker lost"``), and each job it was running is counted
  (``"job lost"``) and handed out again, from the same model version, at the client's
  new home. Updates already applied live in this process and are never lost. The redone
  job arrives later than it would have, so its staleness (and weight) can differ, and a
  bound may drop it. A lost worker is never used again in the run, even if it comes back.
  (On a cluster started here, Dask's own retry is switched off so that a loss is seen at
  once.)
* a client's training raises (or the same job is lost three times): the run goes on
  without that client, and the error is recorded. If every client has failed, the run
  stops with an error.
* the scheduler cannot be reached, or no worker joins within ``connect_timeout``: a
  ``RuntimeError`` that says which, and nothing is left running. A model or loss that
  cannot be sent to the workers, or not loaded there, is a ``ValueError`` before any job
  starts.
"""

from __future__ import annotations

import logging
import math
from concurrent.futures import CancelledError
import numbers
import time
import uuid
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Optional, Tuple

from ..core.driver import Arrival, Driver, Failure
from ..core.history import History
from ..core.model import State
from ..core.training import LocalJob
from . import worker
from .cluster import connect, wait_for_workers
from .placement import Placement
from .worker import ClientDataMissing, TrainingSpec

if TYPE_CHECKING:
    from ..core.server import AsyncServer

class ResultLost(RuntimeError):
    """A task finished, but its worker left before its result was fetched."""


#: Seconds between two looks at which workers the scheduler still has.
CHECK_EVERY = 0.25
#: A job lost this many times fails its client (a worker that keeps dying on it).
MAX_ATTEMPTS = 3


def pack_spec(server: "AsyncServer") -> bytes:
    """The run's :class:`~fedasync_lib.deploy.worker.TrainingSpec` as cloudpickle bytes
    (what Dask uses: a model class or loss defined in a notebook or script travels by
    value). ``ValueError``, naming the object, if it cannot be sent."""
    import cloudpickle

    spec = TrainingSpec(server.config, server.module, server.loss,
                        server.training)
    for name, obj in (("model", spec.model), ("loss", spec.loss)):
        try:
            cloudpickle.loads(cloudpickle.dumps(obj))
        except Exception as err:  # whatever the learner's object raises
            shown = type(obj).__name__ if name == "model" else repr(obj)
            raise ValueError(
                f"{name}={shown} cannot be sent to "
                f"the Dask workers: {type(err).__name__}: {err}. Keep only layers, tensors "
                "and plain values on it (no open files, locks, generators or clients)") from None
    return cloudpickle.dumps(spec)


class DaskDriver(Driver):
    """Jobs as Dask tasks on the wall clock: see the module docstring.

    ``scheduler_address`` (``"tcp://host:8786"``) or ``client`` selects an existing
    cluster; with neither, a LocalCluster of ``n_workers`` processes with
    ``threads_per_worker`` threads each (default: enough for the config's concurrency)
    is started when the run opens and shut down when it closes. ``worker_timeout``:
    seconds without a heartbeat after which a worker counts as lost. ``time_scale``: real
    seconds a task sleeps per virtual second of its client's job time (and the server per
    virtual second of ``apply_time``). ``faulty_clients`` make their tasks raise (to teach
    failure handling). ``on_update(n, dask_client)`` is called after each handled update.
    """

    clock = "wall-clock"

    def __init__(self, scheduler_address: Optional[str] = None, client: Any = None, *,
                 n_workers: int = 2, threads_per_worker: Optional[int] = None,
                 time_scale: float = 0.05, connect_timeout: float = 30.0,
                 worker_timeout: float = 20.0, progress: bool = True,
                 faulty_clients: Iterable[int] = (),
                 on_update: Optional[Callable[[int, Any], None]] = None):
        from .cluster import check_address

        if not (isinstance(time_scale, numbers.Real) and math.isfinite(time_scale)
                and time_scale >= 0):
            raise ValueError(f"time_scale={time_scale!r} is invalid: expected a number >= 0")
        if not (isinstance(connect_timeout, numbers.Real) and math.isfinite(connect_timeout)
                and connect_timeout > 0):
            raise ValueError(f"connect_timeout={connect_timeout!r} is invalid: expected a "
                             "number of seconds > 0")
        if not (isinstance(worker_timeout, numbers.Real) and math.isfinite(worker_timeout)
                and worker_timeout > 0):
            raise ValueError(f"worker_timeout={worker_timeout!r} is invalid: expected a number "
                             "of seconds > 0 (a worker silent for that long is lost)")
        local = client is None and scheduler_address is None
        if local and not (isinstance(n_workers, numbers.Integral) and 1 <= n_workers <= 256):
            raise ValueError(f"n_workers={n_workers!r} is invalid: expected an integer in [1, 256]")
        if threads_per_worker is not None and not (
                isinstance(threads_per_worker, numbers.Integral) and 1 <= threads_per_worker <= 1024):
            raise ValueError(f"threads_per_worker={threads_per_worker!r} is invalid: expected an "
                             "integer in [1, 1024] or None (enough for the config's concurrency)")
        if threads_per_worker is not None and not local:
            raise ValueError("threads_per_worker is read only for a local cluster started by the "
                             "run: start the workers of your cluster with `dask worker ADDRESS "
                             "--nthreads N` instead")
        if scheduler_address is not None:
            check_address(scheduler_address)
        self.scheduler_address, self.client = scheduler_address, client
        self.n_workers, self.threads_per_worker = n_workers, threads_per_worker
        self.time_scale, self.connect_timeout, self.progress = time_scale, connect_timeout, progress
        self.worker_timeout = worker_timeout
        self.faulty = set(faulty_clients)
        self.on_update = on_update

    # --- setting up ---------------------------------------------------------------------
    def open(self, server: "AsyncServer", history: History) -> None:
        from distributed import as_completed

        self.config, self.history = server.config, history
        self.spec_bytes = pack_spec(server)  # before anything starts
        self.data = {c.client_id: (c.dataset.x, c.dataset.y) for c in server.clients}
        self.run_id = f"fedasync-{uuid.uuid4().hex[:12]}"
        self.started_cluster = self.client is None and self.scheduler_address is None
        self.stack = ExitStack()
        try:
            threads = self.threads_per_worker or max(1, min(self.config.concurrency,
                                                            self.config.num_clients))
            self.dask_client = connect(self.stack, self.scheduler_address, self.client,
                                       self.n_workers, threads, self.connect_timeout)
            wait_for_workers(self.dask_client, self.connect_timeout)
            self.gone: set = set()  # workers lost during the run: never used again
            self.heard: Dict[str, Tuple[float, float]] = {}  # worker -> (last_seen, when it changed)
            nthreads = self._alive()
            self.placement = Placement.spread(range(self.config.num_clients), list(nthreads))
            self._check_threads(nthreads)
            self.stack.callback(self._forget_run)
            self._install(dict(self.placement.home))
        except BaseException:
            self.stack.close()
            raise
        history.placement = dict(self.placement.home)
        _quiet_cancelled_gathers()
        self.bar = _progress_bar(self.config.num_updates, history.algorithm, self.progress)
        self.stack.callback(self.bar.close)
        self.in_flight: Dict[Any, LocalJob] = {}
        self.results: Dict[int, Tuple[State, float]] = {}
        self.sleeps: Dict[int, float] = {}
        self.where: Dict[int, str] = {}  # job id -> the worker its task is pinned to
        self.submitted: Dict[int, float] = {}
        self.attempts: Dict[int, int] = {}
        self.tasks = 0
        self.completed = as_completed()
        self.t0, self.t0_epoch = time.perf_counter(), time.time()  # the run's clock starts now
        self.next_check = CHECK_EVERY

    def _alive(self) -> Dict[str, int]:
        """The workers that count as alive now, with their threads: those the scheduler
        lists, has heard from within ``worker_timeout`` seconds, and that were not lost."""
        workers = self.dask_client.scheduler_info()["workers"]
        now = time.monotonic()
        alive = {}
        for address, info in workers.items():
            seen = info.get("last_seen")
            if self.heard.get(address, (None,))[0] != seen:
                self.heard[address] = (seen, now)  # its clock, not ours: compare changes only
            if address not in self.gone and now - self.heard[address][1] <= self.worker_timeout:
                alive[address] = int(info["nthreads"])
        return alive

    def _check_threads(self, nthreads: Dict[str, int]) -> None:
        c = self.config.concurrency
        for address, threads in sorted(nthreads.items()):
            need = min(c, len(self.placement.clients_on(address)))
            if threads < need:
                raise RuntimeError(
                    f"worker {address} has {threads} thread(s), but {need} of its clients may "
                    f"train at once (concurrency={c}): their jobs would queue on it, and fewer "
                    f"than {c} clients would train at once. Start the workers with `dask worker "
                    f"ADDRESS --nthreads {min(c, self.config.num_clients)}`")

    def _install(self, homes: Dict[int, str]) -> None:
        """Send each client's data (and the spec) to its home worker; wait until they hold it."""
        from distributed import wait

        by_worker: Dict[str, Dict[int, Any]] = {}
        for client_id, address in homes.items():
            by_worker.setdefault(address, {})[client_id] = self.data[client_id]
        futures = {address: self.dask_client.submit(
            worker.install, self.run_id, self.spec_bytes, clients, workers=[address],
            allow_other_workers=False, pure=False, key=f"{self.run_id}-install-{uuid.uuid4().hex[:8]}")
            for address, clients in by_worker.items()}
        try:
            wait(list(futures.values()), timeout=self.connect_timeout + 60)
        except TimeoutError:
            pass  # named below, worker by worker
        for address, future in futures.items():
            if future.status != "finished":
                error = future.exception() if future.status == "error" else "no answer"
                raise ValueError(
                    f"the run cannot be set up on worker {address}: "
                    f"{type(error).__name__ + ': ' if isinstance(error, BaseException) else ''}"
                    f"{error}. The model and the loss travel to the workers by cloudpickle: a "
                    "class from a module must be importable there (install it on every worker), "
                    "or define it in the notebook or script that calls deploy.run")

    def _forget_run(self) -> None:
        """Free the run's data on the workers of a cluster that outlives the run."""
        if self.started_cluster:
            return  # the cluster is shut down with the run
        from distributed import wait

        try:
            alive = set(self._alive())
            futures = [self.dask_client.submit(worker.drop, self.run_id, workers=[a],
                                               allow_other_workers=False, pure=False)
                       for a in self.placement.workers() if a in alive]
            wait(futures, timeout=5)
        except Exception:  # noqa: BLE001  # a cluster that is going away: nothing left to free
            pass

    # --- the clock and the jobs ---------------------------------------------------------
    def now(self) -> float:
        """Seconds since the run started."""
        return time.perf_counter() - self.t0

    def time_after(self, seconds: float) -> float:
        return self.now() + self.time_scale * seconds

    def start(self, job: LocalJob, duration: float) -> None:
        self.sleeps[job.job_id] = self.time_scale * duration
        self._submit(job)

    def _submit(self, job: LocalJob) -> None:
        home = self.placement.home[job.client_id]
        self.tasks += 1
        self.attempts[job.job_id] = self.attempts.get(job.job_id, 0) + 1
        future = self.dask_client.submit(
            worker.train_job, self.run_id, job.client_id, job.job_id, job.base_state,
            self.sleeps[job.job_id], job.client_id in self.faulty, workers=[home],
            allow_other_workers=False, pure=False, key=f"{self.run_id}-job-{job.job_id}-{self.tasks}")
        self.where[job.job_id] = home
        self.submitted[job.job_id] = self.now()
        self.in_flight[future] = job
        self.completed.add(future)

    def next_event(self, until: Optional[float]):
        while True:
            if self.completed.has_ready():
                future = next(self.completed)
                job = self.in_flight.pop(future, None)
                if job is None:
                    continue  # cancelled: its worker left, and the job was sent again
                if future.status == "finished":
                    out = self._fetch(future, job)
                    if not isinstance(out, BaseException):
                        return self._arrived(job, out)
                    error = out
                else:
                    error = future.exception() if future.status == "error" else RuntimeError(
                        f"task {future.status}")
                if not _lost_with_its_worker(error) or self.attempts[job.job_id] >= MAX_ATTEMPTS:
                    return Failure(job, error)  # the client's training raised: drop the client
                self._job_lost(job, error)
                continue
            now = self.now()
            if until is not None and now >= until:
                return None
            if now >= self.next_check:
                self._check_workers()
                self.next_check = self.now() + CHECK_EVERY
            time.sleep(0.002)

    def _fetch(self, future, job: LocalJob) -> Any:
        """The result of a finished task, or the error that stands for it. A finished
        task's result stays in its worker's memory until it is fetched, so a worker that
        dies in between takes it along, and Dask would wait for ever to recompute a task
        pinned to a worker that is gone: then :class:`ResultLost`, and the job is sent again."""
        while True:
            try:
                return future.result(timeout=4 * CHECK_EVERY)
            except TimeoutError:
                self._check_workers()
                if self.where[job.job_id] not in self.gone:
                    continue
                error: BaseException = ResultLost(
                    f"worker {self.where[job.job_id]} left before the job's result was fetched")
            except Exception as raised:  # noqa: BLE001  # judged by the caller
                error = raised
            future.cancel()
            return error

    def _arrived(self, job: LocalJob, out: Dict[str, Any]) -> Arrival:
        self.results[job.job_id] = (out["state"], out["loss"])
        job.arrival_time = self.now()
        self.history.jobs.append({
            "job_id": job.job_id, "client_id": job.client_id, "worker": out["worker"],
            "submitted": self.submitted[job.job_id],
            "started": out["started"] - self.t0_epoch, "finished": out["finished"] - self.t0_epoch,
            "arrived": job.arrival_time, "device": self.sleeps[job.job_id],
            "attempts": self.attempts[job.job_id]})
        return Arrival(job)

    def _job_lost(self, job: LocalJob, error: BaseException) -> None:
        """The task of ``job`` died with its worker: move the worker's clients if it has
        left, then send the same job (same model version) to the client's home."""
        self.history.incidents.append({"time": self.now(), "event": "job lost",
                                       "client_id": job.client_id, "worker": self.where[job.job_id],
                                       "error": repr(error)})
        self._check_workers()
        self._submit(job)

    def _check_workers(self) -> None:
        alive = self._alive()
        for lost in [w for w in self.placement.workers() if w not in alive]:
            self.gone.add(lost)
            self._worker_lost(lost, self._alive())
            alive = self._alive()

    def _worker_lost(self, lost: str, alive: Dict[str, int]) -> None:
        deadline = time.monotonic() + self.connect_timeout
        while not alive:  # a local cluster's nanny brings a worker back; give it time
            if time.monotonic() > deadline:
                raise RuntimeError(f"every worker has left the cluster (the last one: {lost}), "
                                   f"and none joined within {self.connect_timeout:g} s")
            time.sleep(0.1)
            alive = self._alive()
        moved = self.placement.move_from(lost, list(alive))
        self._install(moved)
        self.history.incidents.append({"time": self.now(), "event": "worker lost", "worker": lost,
                                       "client_ids": sorted(moved), "moved_to": moved})
        for future, job in list(self.in_flight.items()):
            if self.where[job.job_id] == lost:
                del self.in_flight[future]
                future.cancel()
                self.history.incidents.append({"time": self.now(), "event": "job lost",
                                               "client_id": job.client_id, "worker": lost,
                                               "error": f"worker {lost} left the cluster"})
                self._submit(job)

    def cancel(self, job: LocalJob) -> None:
        for future, running in list(self.in_flight.items()):
            if running is job:
                del self.in_flight[future]
                future.cancel()  # as_completed still yields it: skipped, not in in_flight
        self.results.pop(job.job_id, None)

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


class _QuietCancelledGather(logging.Filter):
    """Drops the one message Dask's client leaves when a fetch of a result is given up
    (``ResultLost``): asyncio's "Task exception was never retrieved" with ``AllExit``. It
    can come long after the run (when the task is garbage-collected), so the filter stays
    for the life of the process; it drops nothing else."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return type(exc).__name__ != "AllExit"


def _quiet_cancelled_gathers() -> None:
    log = logging.getLogger("asyncio")
    if not any(isinstance(f, _QuietCancelledGather) for f in log.filters):
        log.addFilter(_QuietCancelledGather())


def _lost_with_its_worker(error: BaseException) -> bool:
    """True when a task failed because its worker went away (or lacked the client's data),
    not because the training raised: then the job is sent again."""
    from distributed.comm.core import CommClosedError
    from distributed.scheduler import KilledWorker

    return isinstance(error, (KilledWorker, CommClosedError, ClientDataMissing, ResultLost,
                              CancelledError))


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
    address = max(processing, key=lambda a: (len(processing[a]), a))
    pid = dask_client.run(os.getpid, workers=[address])[address]
    os.kill(pid, signal.SIGKILL)
    return address


def held_data(dask_client) -> Dict[str, Dict[str, List[int]]]:
    """Per worker, the clients whose data it holds, per run: ``{worker: {run id: [client ids]}}``."""
    return dask_client.run(worker.held_clients)


def lost_jobs(history: History) -> int:
    """How many jobs were lost with a worker and handed out again."""
    return sum(1 for i in history.incidents if i["event"] == "job lost")


def lost_workers(history: History) -> List[str]:
    """The workers that left the cluster during the run, in order."""
    return [i["worker"] for i in history.incidents if i["event"] == "worker lost"]


def concurrency_profile(history: History) -> Tuple[List[float], List[int]]:
    """How many jobs were training on the workers at each moment, by the workers' own
    start and finish times: ``(times, counts)``, a step function (count from each time on)."""
    edges = sorted([(j["started"], 1) for j in history.jobs] + [(j["finished"], -1) for j in history.jobs],
                   key=lambda e: (e[0], e[1]))
    times, counts, running = [], [], 0
    for t, step in edges:
        running += step
        times.append(t)
        counts.append(running)
    return times, counts


def overhead_per_job(history: History) -> List[float]:
    """Per job, the seconds from submission to arrival beyond its emulated device time: the
    task's round trip, its training, and any wait for a thread or the training lock."""
    return [j["arrived"] - j["submitted"] - j["device"] for j in history.jobs]


def summary_lines(history: History) -> List[str]:
    s = history.summary()
    accuracy = (f"  DIVERGED after {len(history.updates)} updates: {s['divergence']}"
                if s["diverged"] else f"  final test accuracy   {s['final_accuracy']:.3f}")
    _, counts = concurrency_profile(history)
    return [
        accuracy,
        f"  updates applied       {s['updates_applied']}",
        f"  updates rejected      {s['updates_rejected']}",
        f"  staleness mean / max  {s['mean_staleness']:.2f} / {s['max_staleness']}",
        f"  wall-clock time       {s['virtual_time']:.1f} s",
        f"  most jobs training at once on the workers  {max(counts, default=0)}",
        f"  jobs lost and redone  {lost_jobs(history)}",
        f"  workers lost          {len(lost_workers(history))}",
        f"  clients failed        {sorted({i['client_id'] for i in history.incidents if i['event'] == 'client failed'})}",
    ]
