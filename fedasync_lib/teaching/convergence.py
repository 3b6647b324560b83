"""The experiments of notebook 5: what convergence theory predicts, measured on the simulator.

Each function runs a small, seeded experiment and returns data; :mod:`.plots` draws it.

* :func:`staleness_prediction`: each client's staleness, predicted from the job queue
  (:mod:`fedasync_lib.analysis.queueing`) and measured in a long run;
* :func:`drop_prediction`: the share of updates a drop bound throws away, predicted and
  measured;
* :func:`alpha_runs`: the mixing rate as a step size, on the training objective;
* :func:`stability_grid`: the largest server step that stays stable, against concurrency,
  with and without a delay-adaptive weight (FedBuff with a buffer of one update:
  asynchronous SGD with local steps);
* :func:`local_epochs_runs`: more local work under the device model (Stich's trade-off,
  under asynchrony);
* :func:`buffer_runs`: FedBuff's buffer size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from ..analysis.queueing import predicted_drop_share, queue_model
from ..core.config import AsyncConfig
from ..core.history import History
from ..runner import run
from . import run_cache
from .experiments import SYNC_VS_ASYNC
from .lesson import LESSON, SEEDS, federated_data, simulate, simulate_seeds

#: A small task for the queue experiments: long runs (3,000 updates) in well under a second.
#: Only the clients' speeds and the job queue matter to staleness, not what they learn.
QUEUE = AsyncConfig(num_clients=40, concurrency=10, heterogeneity=1.0, samples_per_client=20,
                    test_size=50, input_dim=8, max_staleness=None, num_updates=3000,
                    eval_every=3000)
#: Updates left out of a measurement of the steady state.
WARM_UP = 200


@dataclass
class StalenessPrediction:
    """Per client: mean job time, staleness predicted (exact and mean-field) and measured
    after the first ``WARM_UP`` updates, and shares of the updates predicted and measured."""

    durations: np.ndarray
    predicted: np.ndarray
    mean_field: np.ndarray
    measured: np.ndarray  # nan for a client that delivered nothing after the warm-up
    predicted_share: np.ndarray
    measured_share: np.ndarray
    mean_measured: float  # over the arrivals after the warm-up
    mean_first: float  # over the first WARM_UP arrivals
    concurrency: int
    num_clients: int

    @property
    def error(self) -> float:
        """The prediction's relative error per client, weighted by each client's share."""
        return weighted_error(self.predicted, self.measured, self.measured_share)

    @property
    def mean_field_error(self) -> float:
        return weighted_error(self.mean_field, self.measured, self.measured_share)


def weighted_error(predicted: np.ndarray, measured: np.ndarray, share: np.ndarray) -> float:
    """sum_i share_i |predicted_i - measured_i| / measured_i over the clients measured with a
    staleness above 0 (0, a perfect match, when every measured staleness is 0, as with one
    client in flight, and the prediction is 0 too)."""
    seen = ~np.isnan(measured) & (measured > 0)
    if not seen.any():
        return 0.0 if np.allclose(predicted[~np.isnan(measured)], 0) else float("inf")
    return float(np.sum(share[seen] * np.abs(predicted[seen] - measured[seen]) / measured[seen])
                 / share[seen].sum())


def staleness_prediction(concurrency: int, heterogeneity: float, num_clients: Optional[int] = None,
                         config: AsyncConfig = QUEUE) -> StalenessPrediction:
    """Predict each client's steady-state staleness from the queue, and measure it in a long
    run of ``config`` (default: 40 clients, 3,000 updates). ``num_clients`` defaults to four
    per slot (at least the config's)."""
    n = num_clients or max(config.num_clients, 4 * concurrency)
    cfg = config.replace(num_clients=n, concurrency=concurrency, heterogeneity=heterogeneity)
    h = simulate(cfg)
    cid, staleness = h.column("client_id"), h.column("staleness")
    later, first = slice(WARM_UP, None), slice(0, WARM_UP)
    share = np.bincount(cid[later], minlength=n) / len(cid[later])
    measured = np.array([staleness[later][cid[later] == i].mean() if np.any(cid[later] == i)
                         else np.nan for i in range(n)])
    model = queue_model(cfg, method="exact")
    return StalenessPrediction(model.durations, model.staleness,
                               queue_model(cfg, method="mean-field").staleness, measured,
                               model.shares, share, float(staleness[later].mean()),
                               float(staleness[first].mean()), concurrency, n)


def drop_prediction(bounds: Sequence[int], config: AsyncConfig = QUEUE,
                    seeds: Sequence[int] = (1, 2, 3)) -> Dict[int, Dict[str, float]]:
    """For each drop bound: the share of updates thrown away, predicted
    (:func:`~fedasync_lib.analysis.queueing.predicted_drop_share`) and measured after the
    warm-up, over ``seeds``."""
    out = {}
    for bound in bounds:
        measured = [float(np.mean(simulate(config.replace(max_staleness=bound, seed=s))
                                  .column("alpha")[WARM_UP:] == 0)) for s in seeds]
        predicted = [predicted_drop_share(config.replace(seed=s), bound) for s in seeds]
        out[int(bound)] = {"predicted": float(np.mean(predicted)), "measured": float(np.mean(measured)),
                           "low": min(measured), "high": max(measured)}
    return out


def alpha_runs(alphas: Sequence[float], updates: int = 1000, seeds: Sequence[int] = SEEDS,
               config: AsyncConfig = LESSON) -> Dict[float, List[History]]:
    """The lesson's experiment at each mixing rate, ``updates`` long, on each seed."""
    cfg = config.replace(num_updates=updates, eval_every=50)
    return {float(a): simulate_seeds(cfg.replace(mixing_alpha=float(a)), seeds) for a in alphas}


def fluctuation(history: History, key: str = "train_loss", last: int = 10) -> float:
    """How much ``key`` moves between consecutive evaluations over the last ``last`` ones:
    the mean absolute change, relative to its mean there (0 for a settled curve)."""
    values = history.column(key, "evals").astype(float)[-last:]
    return float(np.mean(np.abs(np.diff(values))) / np.mean(values))


# --- the largest stable step, against staleness -------------------------------------------------
#: FedBuff with a buffer of one update and one local epoch: each arrival is one server step of
#: size server_lr times its change, so the server runs asynchronous SGD with local steps, and
#: staleness counts steps, about concurrency - 1.
STEP = LESSON.replace(heterogeneity=0.5, num_updates=300, max_staleness=None, local_epochs=1,
                      buffer_size=1)

Weight = Callable[[int, int], float]  # (staleness, concurrency) -> factor in [0, 1]


def no_weight(staleness: int, concurrency: int) -> float:
    """Every change at full weight, however stale."""
    return 1.0


def sqrt_weight(staleness: int, concurrency: int) -> float:
    """FedBuff's 1 / sqrt(1 + staleness)."""
    return 1.0 / math.sqrt(1.0 + staleness)


def delay_adaptive_weight(staleness: int, concurrency: int) -> float:
    """The shape Koloskova, Stich and Jaggi's Theorem 8 allows: the full step while the
    staleness is at most the concurrency, at most concurrency / staleness of it beyond."""
    return 1.0 if staleness <= concurrency else concurrency / staleness


def weighted_step(weight: Weight, concurrency: int) -> Callable:
    """A FedBuff server step that weights each buffered change by ``weight(staleness,
    concurrency)``: x + server_lr * mean_i weight(t_i) delta_i."""
    def step(server_state, buffered, server_lr):
        factors = [float(weight(s, concurrency)) for _, s in buffered]
        return {k: v + server_lr * sum(f * d[k] for f, (d, _) in zip(factors, buffered)) / len(buffered)
                for k, v in server_state.items()}
    return step


def weighted_run(config: AsyncConfig, weight: Weight) -> History:
    """FedBuff on ``config`` with :func:`weighted_step` of ``weight``; a run with one of this
    module's weights is kept in the run cache (:mod:`.run_cache`), a learner's is not."""
    def compute() -> History:
        return run(config, "fedbuff", federated_data(config),
                   buffer_step=weighted_step(weight, config.concurrency))
    if getattr(weight, "__module__", None) == __name__:
        return run_cache.cached(config, f"fedbuff, weight {weight.__name__}", compute)
    return compute()


def stability_grid(weights: Dict[str, Weight], concurrencies: Sequence[int], steps: Sequence[float],
                   seeds: Sequence[int] = SEEDS, config: AsyncConfig = STEP) -> Dict[str, np.ndarray]:
    """For each weight: the share of ``seeds`` that diverged, at each concurrency (rows) and
    server step size (columns)."""
    out = {}
    for name, weight in weights.items():
        grid = np.zeros((len(concurrencies), len(steps)))
        for i, c in enumerate(concurrencies):
            for j, eta in enumerate(steps):
                diverged = 0
                for s in seeds:
                    cfg = config.replace(concurrency=int(c), server_lr=float(eta), seed=int(s))
                    diverged += weighted_run(cfg, weight).diverged
                grid[i, j] = diverged / len(seeds)
        out[name] = grid
    return out


def largest_stable(grid: np.ndarray, steps: Sequence[float]) -> List[Optional[float]]:
    """Per row of a :func:`stability_grid`: the largest step at which no seed diverged, with
    no divergence at any smaller step (None if even the smallest diverged)."""
    out = []
    for row in grid:
        stable = None
        for eta, share in zip(steps, row):
            if share > 0:
                break
            stable = float(eta)
        out.append(stable)
    return out


# --- local work under the device model, and FedBuff's buffer -------------------------------------
#: The device model: a job costs 1 s of communication plus 0.01 s per sample and epoch (the
#: median client; 0.7 s per epoch of its 72 samples), at each client's speed. A smaller local
#: learning rate than the lesson's, so that the local steps, not one large step, do the work.
DEVICE = LESSON.replace(staleness="polynomial", seconds_per_sample=0.01, learning_rate=0.05,
                        num_updates=400, eval_every=10)


def local_epochs_runs(epochs: Sequence[int], seeds: Sequence[int] = SEEDS,
                      config: AsyncConfig = DEVICE) -> Dict[int, List[History]]:
    """The lesson's experiment under the device model at each number of local epochs."""
    return {int(e): simulate_seeds(config.replace(local_epochs=int(e)), seeds) for e in epochs}


def at_time(history: History, time: float, key: str = "train_loss") -> float:
    """``key`` at the last evaluation at or before virtual ``time``."""
    times = history.column("time", "evals")
    return float(history.column(key, "evals")[np.searchsorted(times, time, side="right") - 1])


def buffer_runs(sizes: Sequence[int], scale_step: bool, seeds: Sequence[int] = SEEDS,
                config: AsyncConfig = SYNC_VS_ASYNC.replace(heterogeneity=1.0)) -> Dict[int, List[History]]:
    """FedBuff at each buffer size K, with the lesson's server learning rate of 3, or, with
    ``scale_step``, a server learning rate of K (the same progress per update)."""
    return {int(k): simulate_seeds(config.replace(buffer_size=int(k),
                                                  server_lr=float(k) if scale_step else 3.0),
                                   seeds, "fedbuff") for k in sizes}
