"""Where the time of a run goes: set-up, training, aggregation, evaluation, History, the loop.

    python benchmarks/profile_run.py [--scenario default|1k-clients] [--repeats N]

Wraps the functions that do each part in a timer (a few microseconds per
call, far less than what they time), runs FedAsync ``--repeats`` times after
one warm-up, and prints each part's share of the wall-clock time:

* set-up: the data split, the clients, the model, the server (``runner.build``
  and ``AsyncServer.__init__``);
* training: local SGD of the jobs (``LocalTrainer.train``), split into
  gathering the minibatches (the shuffles included) and the SGD itself;
* aggregation: the policy's decision and the server step (``Policy.receive``);
* evaluation: the test-set accuracy and loss (``AsyncServer.evaluate``);
* History: recording each update (``History.record_update``, ``set_weights``);
* the event loop: everything else in ``AsyncServer.train`` (starting jobs,
  picking clients, drawing job times, the event queue, the scheduler).
"""

from __future__ import annotations

import argparse
import collections
import functools
import statistics
import time
from typing import Callable, Dict, List

from fedasync_lib import AsyncConfig, run_fedasync
from fedasync_lib import runner
from fedasync_lib.algorithms.fedasync import FedAsync
from fedasync_lib.core import history, server, training

SCENARIOS = {
    "default": AsyncConfig(),
    "1k-clients": AsyncConfig(num_clients=1_000, num_updates=10_000, concurrency=10,
                              eval_every=100),
}

PARTS = [  # (label, object, attribute)
    ("set-up", runner, "build"),
    ("set-up", server.AsyncServer, "__init__"),
    ("training: gather minibatches", training.JobSteps, "gather"),
    ("training: SGD and the clients' loss", training.LocalTrainer, "train"),
    ("aggregation", FedAsync, "receive"),
    ("evaluation", server.AsyncServer, "evaluate"),
    ("History", history.History, "record_update"),
    ("History", history.History, "set_weights"),
]


def timed(totals: Dict[str, float], label: str, fn: Callable) -> Callable:
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            totals[label] += time.perf_counter() - start
    return wrapper


def main(argv: List[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=list(SCENARIOS), default="default")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args(argv)
    config = SCENARIOS[args.scenario]

    totals: Dict[str, float] = collections.defaultdict(float)
    for label, owner, name in PARTS:
        setattr(owner, name, timed(totals, label, getattr(owner, name)))
    batches: List[int] = []  # jobs per batched training computation
    gather = training.JobSteps.gather  # already wrapped in its timer, a plain function
    training.JobSteps.gather = lambda jobs, *rest: (batches.append(len(jobs)), gather(jobs, *rest))[1]
    run_fedasync(config)  # warm-up
    totals.clear()
    batches.clear()
    walls = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        run_fedasync(config)
        walls.append(time.perf_counter() - start)
    wall = sum(walls)
    # gather runs inside train: report train without it
    totals["training: SGD and the clients' loss"] -= totals["training: gather minibatches"]
    totals["the event loop (the rest)"] = wall - sum(totals.values())
    print(f"{args.scenario}: {config.num_updates} updates, {config.num_clients} clients, "
          f"concurrency {config.concurrency}; median run {statistics.median(walls) * 1e3:.1f} ms "
          f"over {args.repeats} runs")
    steps = config.local_epochs * -(-config.samples_per_client // config.batch_size)
    print(f"per run: {len(batches) / args.repeats:.0f} batched training calls of "
          f"{sum(batches) / len(batches):.1f} jobs on average, {steps} SGD steps per job\n")
    print("| part | ms per run | share |")
    print("|---|---:|---:|")
    for label, seconds in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"| {label} | {seconds / args.repeats * 1e3:.1f} | {seconds / wall:.0%} |")


if __name__ == "__main__":
    main()
