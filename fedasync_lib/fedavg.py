"""Synchronous federated averaging (McMahan et al. 2017) on the same virtual clock.

Rounds of ``concurrency`` clients: every client of a round starts from the
same server model, and the server waits for the slowest of them before it
averages their models, weighted by their number of samples:

    x <- sum_i n_i x_i / sum_i n_i

Clients and job times are drawn exactly as in :func:`timeline.sync_rounds`,
from the same speed model and seed as the asynchronous runs, so the
comparison is fair: same clients, same speeds, same local training.
Every update has staleness 0, and each round's updates are applied together
when the round ends.
"""

from __future__ import annotations

from .history import History
from .server import AsyncServer
from .seeding import rng
from .timeline import draw_round
from .training import LocalJob, train_jobs


class FedAvgServer(AsyncServer):
    algorithm = "fedavg"

    def train(self) -> History:
        cfg = self.config
        latency = [c.mean_latency for c in self.clients]
        history = History(self.algorithm, client_latency=latency)
        gen = rng(cfg.seed, "schedule")
        datasets = [c.dataset for c in self.clients]
        now, work, handled, job_id = 0.0, 0.0, 0, 0

        def record_eval() -> None:
            history.evals.append({"update": handled, "time": now, "work": work,
                                  "version": self.version, **self.evaluate()})

        record_eval()
        while handled < cfg.num_updates and not history.diverged:
            size = min(cfg.concurrency, cfg.num_updates - handled)
            jobs = []
            for client, duration in draw_round(cfg.num_clients, size, latency, cfg.jitter, gen):
                jobs.append(LocalJob(job_id, client, self.version, self.state,
                                     start_time=now, finish_time=now + duration))
                job_id += 1
            results = train_jobs(jobs, datasets, seed=cfg.seed, learning_rate=cfg.learning_rate,
                                 batch_size=cfg.batch_size, local_epochs=cfg.local_epochs,
                                 num_classes=cfg.num_classes)
            sizes = [len(datasets[j.client_id]) for j in jobs]
            total = sum(sizes)
            self.state = {k: sum(n / total * state[k] for n, (state, _) in zip(sizes, results))
                          for k in self.state}
            self.version += 1
            before = handled
            for job, n, (_, loss) in sorted(zip(jobs, sizes, results),
                                            key=lambda r: (r[0].finish_time, r[0].job_id)):
                history.record_update(job, applied_time=max(j.finish_time for j in jobs),
                                      version=self.version, staleness=0, alpha=n / total,
                                      train_loss=loss)
                history.diverged |= loss != loss  # NaN: local SGD blew up
            handled += size
            work += sum(j.finish_time - j.start_time for j in jobs)
            now = max(j.finish_time for j in jobs)
            if handled // cfg.eval_every > before // cfg.eval_every or handled == cfg.num_updates \
                    or history.diverged:
                record_eval()
                history.diverged |= history.evals[-1]["accuracy"] != history.evals[-1]["accuracy"]
        history.final_accuracy = float("nan") if history.diverged else history.evals[-1]["accuracy"]
        return history
