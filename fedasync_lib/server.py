"""The asynchronous server: an event loop on a virtual clock.

At every moment ``concurrency`` clients are training. Each one trains on the
model version it was handed when it started, and finishes after its own
simulated latency. The server handles arrivals in time order:

    1. pop the earliest finishing job from the event queue (the clock jumps there);
    2. staleness = current server version - the version the job started from;
    3. mix the update in (or reject it if it is too stale);
    4. hand the current model to an idle client, whose job finishes later.

Fast clients come back sooner, so they contribute more updates, and every
update that arrives while others are in flight is stale. A sequential loop
(train one client, apply, repeat) can never show this: there, every update
is applied to exactly the model it was trained from, so staleness is always 0.
"""

from __future__ import annotations

import bisect
import math
from typing import Dict, List

import numpy as np
import torch.nn as nn

from . import seeding
from .aggregator import AsyncAggregator
from .clients import AsyncClient
from .config import AsyncConfig
from .data import AsyncDataset
from .events import EventQueue
from .history import History
from .model import AsyncModel, evaluate
from .training import LazyTrainer, LocalJob
from .update import Update


class AsyncServer:
    """Runs FedAsync over ``clients`` and evaluates on ``test_data``."""

    algorithm = "fedasync"

    def __init__(self, model: AsyncModel | nn.Module, clients: List[AsyncClient],
                 test_data: AsyncDataset, config: AsyncConfig):
        if len(clients) != config.num_clients:
            raise ValueError(f"clients has {len(clients)} entries, expected "
                             f"num_clients={config.num_clients}")
        self.config = config
        self.clients = clients
        self.test_data = test_data
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.version = 0
        self.aggregator = AsyncAggregator(config)

    # --- pieces a subclass or an exercise may replace -------------------------
    def select_client(self, idle: List[int], gen: np.random.Generator) -> int:
        """Which idle client gets the model next: uniformly at random."""
        return idle[int(gen.integers(len(idle)))]

    def evaluate(self) -> Dict[str, float]:
        accuracy, loss = evaluate(self.state, self.test_data.x, self.test_data.y)
        return {"accuracy": accuracy, "loss": loss}

    # --- the event loop ---------------------------------------------------------
    def train(self) -> History:
        cfg = self.config
        history = History(self.algorithm,
                          client_latency=[c.mean_latency for c in self.clients])
        events = EventQueue()
        trainer = LazyTrainer([c.dataset for c in self.clients], cfg.seed, cfg.learning_rate,
                              cfg.batch_size, cfg.local_epochs, cfg.num_classes)
        gen = seeding.rng(cfg.seed, "schedule")
        idle = list(range(cfg.num_clients))  # kept sorted, so choices are reproducible
        job_ids = iter(range(10**12))

        def dispatch() -> None:
            client = self.clients[self.select_client(idle, gen)]
            idle.remove(client.client_id)
            start = events.now
            job = LocalJob(next(job_ids), client.client_id, self.version, self.state,
                           start_time=start, finish_time=start + client.job_latency(gen))
            trainer.submit(job)
            events.push(job.finish_time, job)

        def record_eval(n_handled: int) -> None:
            history.evals.append({"update": n_handled, "time": events.now,
                                  "version": self.version, **self.evaluate()})

        for _ in range(cfg.concurrency):
            dispatch()
        record_eval(0)

        for n in range(1, cfg.num_updates + 1):
            _, job = events.pop()
            new_state, loss = trainer.result(job)
            client = self.clients[job.client_id]
            update = Update(new_state, job.client_id, job.base_version, len(client.dataset),
                            start_time=job.start_time, arrival_time=job.finish_time,
                            train_loss=loss)
            staleness = update.staleness(self.version)
            self.state, alpha = self.aggregator.aggregate(self.state, update, self.version)
            if alpha > 0:
                self.version += 1
            history.updates.append({
                "time": job.finish_time, "start_time": job.start_time,
                "client_id": job.client_id, "base_version": job.base_version,
                "version": self.version, "staleness": staleness, "alpha": alpha,
                "train_loss": loss,
            })
            if not math.isfinite(loss):
                history.diverged = True  # the client's local SGD blew up
                record_eval(n)
                break
            bisect.insort(idle, job.client_id)
            dispatch()
            if n % cfg.eval_every == 0 or n == cfg.num_updates:
                record_eval(n)
                if math.isnan(history.evals[-1]["accuracy"]):
                    history.diverged = True
                    break

        while events:
            _, job = events.pop()
            history.unfinished.append({"client_id": job.client_id,
                                       "start_time": job.start_time, "time": job.finish_time})
        # A diverged run has no accuracy worth reporting.
        history.final_accuracy = float("nan") if history.diverged else history.evals[-1]["accuracy"]
        return history
