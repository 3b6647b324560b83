"""The asynchronous server: the one event loop of every algorithm and driver.

At every moment up to ``concurrency`` clients are training. Each one trains
on the model version it was handed when it started, and its update arrives
when its device is done. The loop, for FedAsync, FedBuff, synchronous FedAvg
and the staleness bounds alike:

    1. idle clients are handed the current model while slots are free and
       the policy allows it (``policy.may_start``);
    2. the driver reports the next event: an update arrives (it joins the
       scheduler's queue and its client is idle again), or a client fails;
    3. when the server is free, it takes the next update from the queue:
       staleness = current version - the version the job started from, and
       the policy decides what it does to the model (``policy.receive``);
    4. after the last update the policy applies what it still holds
       (``policy.flush``), and the final model is evaluated.

What an algorithm decides is its policy (:mod:`fedasync_lib.core.policy`);
where time and results come from is the driver: the virtual clock
(:mod:`fedasync_lib.core.virtual_clock`) or real Dask workers
(:mod:`fedasync_lib.deploy`). One divergence rule, one evaluation cadence,
one history for all of them.

Fast clients come back sooner, so they contribute more updates, and every
update that arrives while others are in flight is stale. A sequential loop
(train one client, apply, repeat) can never show this: there, every update
is applied to exactly the model it was trained from, so staleness is 0.
"""

from __future__ import annotations

import bisect
import itertools
import math
from typing import Dict, List, Optional

import torch
import torch.nn as nn

from . import seeding
from .clients import AsyncClient
from .config import AsyncConfig
from .data import AsyncDataset
from .driver import Driver, Failure
from .history import History
from .model import AsyncModel, Loss, State, evaluate
from .policy import Policy, ServerModel
from .scheduling import Scheduler
from .training import LocalJob, local_trainer
from .update import Update


def diverged(train_loss: float, evaluation: Optional[Dict[str, float]] = None) -> bool:
    """The one divergence rule: a client's loss, or the server model's test accuracy or
    loss, is not a finite number (a non-finite model has nan accuracy)."""
    if not math.isfinite(train_loss):
        return True
    return evaluation is not None and not (math.isfinite(evaluation["accuracy"])
                                           and math.isfinite(evaluation["loss"]))


def check_model_output(model: nn.Module, test_data: AsyncDataset, config: AsyncConfig) -> None:
    """Raise ``ValueError`` unless ``model`` maps two test samples to ``(2, num_classes)`` scores."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"model={model!r} is invalid: expected a torch.nn.Module")
    x = test_data.x[:2]
    try:
        with torch.no_grad():
            out = model(x)
    except Exception as err:  # the learner's module: any error it raises is reported
        raise ValueError(f"model {type(model).__name__} cannot take the data's inputs of shape "
                         f"{tuple(x.shape[1:])} per sample: {type(err).__name__}: {err}") from None
    if not isinstance(out, torch.Tensor) or out.shape != (len(x), config.num_classes):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"model {type(model).__name__} returned {shape} for {len(x)} samples: "
                         f"expected ({len(x)}, num_classes={config.num_classes}) class scores")


def check_labels(datasets: List[AsyncDataset], test_data: AsyncDataset, config: AsyncConfig) -> None:
    """Raise ``ValueError`` if a label is outside ``0 .. num_classes - 1``, naming where."""
    for name, data in [*((f"client {i}", d) for i, d in enumerate(datasets)), ("test set", test_data)]:
        if len(data) and (int(data.y.min()) < 0 or int(data.y.max()) >= config.num_classes):
            raise ValueError(f"{name} has labels from {int(data.y.min())} to {int(data.y.max())}: "
                             f"expected 0 to num_classes - 1 = {config.num_classes - 1}")


class AsyncServer:
    """Runs ``policy`` (FedAsync when none is given) over ``clients``; evaluates on ``test_data``.

    ``model`` is the initial model: the built-in :class:`AsyncModel` or any
    ``nn.Module`` that maps a batch of inputs to ``(n, num_classes)`` scores.
    ``loss`` (per sample, ``reduction="none"``; cross-entropy by default) and
    ``training`` (``"auto"``, ``"hand-written"``, ``"torch.func"``) choose how
    clients train: see :func:`~fedasync_lib.core.training.local_trainer`.
    ``scheduler`` decides which waiting update is handled next and which idle
    client gets the model next (Exercise 2); by default the config's orders.
    """

    def __init__(self, model: AsyncModel | nn.Module, clients: List[AsyncClient],
                 test_data: AsyncDataset, config: AsyncConfig, policy: Optional[Policy] = None,
                 *, scheduler: Optional[Scheduler] = None,
                 loss: Optional[Loss] = None, training: str = "auto"):
        if len(clients) != config.num_clients:
            raise ValueError(f"clients has {len(clients)} entries, expected "
                             f"num_clients={config.num_clients}")
        check_model_output(model, test_data, config)
        check_labels([c.dataset for c in clients], test_data, config)
        if policy is None:  # the tutorial's default algorithm
            from ..algorithms.fedasync import FedAsync
            policy = FedAsync(config)
        self.config = config
        self.clients = clients
        self.test_data = test_data
        self.policy = policy
        self.module = model  # its own parameters stay untouched: the server trains copies
        self.loss = loss
        self.local_training = local_trainer(model, [c.dataset for c in clients], config,
                                            loss=loss, training=training)
        self.model = ServerModel({k: v.detach().clone() for k, v in model.state_dict().items()})
        # `is None`, not `or`: an empty scheduler has len() 0 and is falsy.
        self.scheduler = (scheduler if scheduler is not None
                          else Scheduler(config.update_order, config.client_order))

    @property
    def state(self) -> State:
        return self.model.state

    @property
    def version(self) -> int:
        return self.model.version

    def evaluate(self) -> Dict[str, float]:
        accuracy, loss = evaluate(self.model.state, self.test_data.x, self.test_data.y,
                                  self.module, self.loss)
        return {"accuracy": accuracy, "loss": loss}

    # --- the event loop ---------------------------------------------------------
    def train(self, driver: Optional[Driver] = None) -> History:
        """Run until ``config.num_updates`` updates were handled, or the model diverged."""
        if driver is None:
            from .virtual_clock import VirtualClock
            driver = VirtualClock()
        cfg, policy, model = self.config, self.policy, self.model
        latency = [c.mean_latency for c in self.clients]
        history = History(policy.name, client_latency=latency, clock=driver.clock)
        driver.open(self, history)
        gen = seeding.rng(cfg.seed, "schedule")
        idle = list(range(cfg.num_clients))  # kept sorted, so choices are reproducible
        alive = set(idle)
        delivered = [0] * cfg.num_clients
        in_flight: Dict[int, LocalJob] = {}
        job_ids = itertools.count()
        work = 0.0  # client-seconds of the jobs that have arrived (running ones are added at each evaluation)
        handled = 0
        busy_until = 0.0  # the server applies one update at a time, each taking apply_time

        def start_jobs() -> None:
            while (idle and len(in_flight) < cfg.concurrency
                   and policy.may_start(model, list(in_flight.values()), handled)):
                client = self.clients[self.scheduler.pick_client(idle, latency, delivered, gen)]
                del idle[bisect.bisect_left(idle, client.client_id)]  # idle is sorted
                job = LocalJob(next(job_ids), client.client_id, model.version, model.state,
                               start_time=driver.now())
                in_flight[job.job_id] = job
                policy.on_start(job)
                driver.start(job, client.job_latency(gen))

        def record_eval() -> Dict[str, float]:
            evaluation = self.evaluate()
            now = driver.now()  # client computation so far: finished jobs, plus the running ones up to now
            spent = work + sum(max(0.0, now - job.start_time) for job in in_flight.values())
            history.evals.append({"update": handled, "time": now, "work": spent,
                                  "version": model.version, **evaluation})
            return evaluation

        def handle(job: LocalJob) -> float:
            """The server takes up one waiting update; returns the client's loss."""
            now = driver.now()
            state, loss = driver.result(job)
            update = Update(state, job.client_id, job.base_version,
                            len(self.clients[job.client_id].dataset), start_time=job.start_time,
                            arrival_time=job.arrival_time, train_loss=loss,
                            base_state=job.base_state)
            staleness = update.staleness(model.version)
            index = len(history.updates)
            weights = policy.receive(model, update, staleness, now, index)
            history.record_update(job, applied_time=now, version=model.version,
                                  staleness=staleness, alpha=weights.pop(index, 0.0),
                                  train_loss=loss)
            history.set_weights(weights)  # earlier updates a buffered step has just applied
            return loss

        try:
            start_jobs()
            record_eval()
            while handled < cfg.num_updates and not history.diverged:
                if len(self.scheduler) and driver.now() >= busy_until:
                    loss = handle(self.scheduler.pop_update())
                    handled += 1
                    busy_until = driver.time_after(cfg.apply_time)
                    driver.after_update(handled)
                    finished = handled == cfg.num_updates
                    if finished and not diverged(loss):
                        history.set_weights(policy.flush(model, driver.now()))
                    evaluation = None
                    if finished or handled % cfg.eval_every == 0 or diverged(loss):
                        evaluation = record_eval()
                    history.diverged = diverged(loss, evaluation)
                    start_jobs()
                    continue
                if not in_flight and not len(self.scheduler):
                    raise RuntimeError(
                        f"no client may start a job: the {policy.name} policy's may_start refused "
                        f"every idle client while none is training (server version "
                        f"{model.version}, {handled} of {cfg.num_updates} updates handled)")
                event = driver.next_event(busy_until if len(self.scheduler) else None)
                if event is None:
                    continue  # the server became free
                job = event.job
                del in_flight[job.job_id]
                if isinstance(event, Failure):
                    alive.discard(job.client_id)
                    history.incidents.append({"time": driver.now(), "event": "client failed",
                                              "client_id": job.client_id, "error": str(event.error)})
                    if not alive:
                        raise RuntimeError(f"every client's training failed; the last error: "
                                           f"{event.error}")
                else:
                    bisect.insort(idle, job.client_id)
                    delivered[job.client_id] += 1
                    work += job.arrival_time - job.start_time
                    self.scheduler.push_update(job, job.arrival_time, job.base_version)
                    if len(self.scheduler) and driver.now() >= busy_until:
                        continue  # the server takes it up before anyone is handed the model
                start_jobs()
        finally:
            stopped = driver.close()  # also when the run fails: nothing is left running

        waiting = []
        while len(self.scheduler):
            waiting.append(self.scheduler.pop_update())
        for job in sorted([*stopped, *waiting], key=lambda j: (j.arrival_time, j.job_id)):
            history.unfinished.append({"client_id": job.client_id, "start_time": job.start_time,
                                       "arrival_time": job.arrival_time})
        history.final_accuracy = (float("nan") if history.diverged
                                  else history.evals[-1]["accuracy"])
        return history
