"""The asynchronous server: an event loop on a virtual clock.

At every moment up to ``concurrency`` clients are training. Each one trains
on the model version it was handed when it started, and finishes after its
own simulated latency. The server handles events in time order:

    1. the earliest event comes off the queue, and the clock jumps to it;
    2. an arriving update joins the scheduler's queue, and its client is idle again;
    3. if the server is free, it takes the next update from the queue:
       staleness = current version - the version the job started from;
       it mixes the update in, or rejects it if it is too stale;
    4. idle clients are handed the current model while slots are free
       (and, under the wait policy, while the bound allows it).

Fast clients come back sooner, so they contribute more updates, and every
update that arrives while others are in flight is stale. A sequential loop
(train one client, apply, repeat) can never show this: there, every update
is applied to exactly the model it was trained from, so staleness is always 0.
"""

from __future__ import annotations

import bisect
import math
from typing import Callable, Dict, Iterable, List, Optional

import torch.nn as nn

from . import bounded, seeding
from .aggregator import AcceptRule, AsyncAggregator, MixingRule
from .clients import AsyncClient
from .config import AsyncConfig
from .data import AsyncDataset
from .events import EventQueue
from .history import History
from .model import AsyncModel, evaluate
from .scheduling import Scheduler
from .training import LazyTrainer, LocalJob
from .update import Update

MayStartRule = Callable[[int, Iterable[int], Optional[int]], bool]
SERVER_FREE = "server free"  # event: the server finished applying an update


class AsyncServer:
    """Runs FedAsync over ``clients`` and evaluates on ``test_data``.

    Optional hooks replace one piece of the algorithm (the exercises use them):
    ``scheduler`` (update order and client choice), ``mixing_rule`` (alpha_t),
    ``accept`` (the drop bound) and ``may_start`` (the wait bound).
    """

    algorithm = "fedasync"

    def __init__(self, model: AsyncModel | nn.Module, clients: List[AsyncClient],
                 test_data: AsyncDataset, config: AsyncConfig, *,
                 scheduler: Optional[Scheduler] = None, mixing_rule: Optional[MixingRule] = None,
                 accept: Optional[AcceptRule] = None, may_start: Optional[MayStartRule] = None):
        if len(clients) != config.num_clients:
            raise ValueError(f"clients has {len(clients)} entries, expected "
                             f"num_clients={config.num_clients}")
        self.config = config
        self.clients = clients
        self.test_data = test_data
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.version = 0
        self.aggregator = AsyncAggregator(config, mixing_rule=mixing_rule, accept=accept)
        # `is None`, not `or`: an empty scheduler has len() 0 and is falsy.
        self.scheduler = (scheduler if scheduler is not None
                          else Scheduler(config.update_order, config.client_order))
        self._may_start = may_start or bounded.may_start

    # --- pieces a subclass may replace -------------------------------------------
    def may_start(self, in_flight: Dict[int, LocalJob]) -> bool:
        """Wait policy: may an idle client start a job now? Always, under the drop policy."""
        if self.config.staleness_policy != "wait":
            return True
        bases = [job.base_version for job in in_flight.values()]
        return bool(self._may_start(self.version, bases, self.config.max_staleness))

    def apply(self, update: Update, staleness: int, time: float) -> float:
        """Mix ``update`` into the server model; return the weight applied (0 = rejected)."""
        self.state, alpha = self.aggregator.aggregate(self.state, update, self.version, time)
        if alpha > 0:
            self.version += 1
        return alpha

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
        latency = [c.mean_latency for c in self.clients]
        delivered = [0] * cfg.num_clients
        idle = list(range(cfg.num_clients))  # kept sorted, so choices are reproducible
        in_flight: Dict[int, LocalJob] = {}
        job_ids = iter(range(10**12))
        work = 0.0  # client-seconds of the jobs that have arrived
        server_busy = False

        def start_jobs() -> None:
            while idle and len(in_flight) < cfg.concurrency and self.may_start(in_flight):
                client = self.clients[self.scheduler.pick_client(idle, latency, delivered, gen)]
                idle.remove(client.client_id)
                start = events.now
                job = LocalJob(next(job_ids), client.client_id, self.version, self.state,
                               start_time=start, finish_time=start + client.job_latency(gen))
                in_flight[job.job_id] = job
                trainer.submit(job)
                events.push(job.finish_time, job)

        def record_eval(n_handled: int) -> None:
            history.evals.append({"update": n_handled, "time": events.now, "work": work,
                                  "version": self.version, **self.evaluate()})

        start_jobs()
        record_eval(0)
        handled = 0
        while handled < cfg.num_updates and not history.diverged:
            _, event = events.pop()
            if event == SERVER_FREE:
                server_busy = False
            else:  # a client's update arrives
                job = event
                del in_flight[job.job_id]
                bisect.insort(idle, job.client_id)
                delivered[job.client_id] += 1
                work += job.finish_time - job.start_time
                self.scheduler.push_update(job, job.finish_time, job.base_version)

            if not server_busy and len(self.scheduler):
                job = self.scheduler.pop_update()
                new_state, loss = trainer.result(job)
                update = Update(new_state, job.client_id, job.base_version,
                                len(self.clients[job.client_id].dataset),
                                start_time=job.start_time, arrival_time=job.finish_time,
                                train_loss=loss, base_state=job.base_state)
                staleness = update.staleness(self.version)
                alpha = self.apply(update, staleness, events.now)
                handled += 1
                history.record_update(job, applied_time=events.now, version=self.version,
                                      staleness=staleness, alpha=alpha, train_loss=loss)
                if cfg.apply_time > 0:
                    server_busy = True
                    events.push(events.now + cfg.apply_time, SERVER_FREE)
                if not math.isfinite(loss):
                    history.diverged = True  # the client's local SGD blew up
                    record_eval(handled)
                elif handled % cfg.eval_every == 0 or handled == cfg.num_updates:
                    record_eval(handled)
                    history.diverged = math.isnan(history.evals[-1]["accuracy"])
            start_jobs()

        self._record_unfinished(history, in_flight.values(), events)
        # A diverged run has no accuracy worth reporting.
        history.final_accuracy = float("nan") if history.diverged else history.evals[-1]["accuracy"]
        return history

    def _record_unfinished(self, history: History, in_flight: Iterable[LocalJob],
                           events: EventQueue) -> None:
        """Jobs still training, and updates still queued, when the run stopped."""
        waiting = []
        while len(self.scheduler):
            waiting.append(self.scheduler.pop_update())
        for job in sorted([*in_flight, *waiting], key=lambda j: (j.finish_time, j.job_id)):
            history.unfinished.append({"client_id": job.client_id,
                                       "start_time": job.start_time, "time": job.finish_time})

