"""The experiments of notebook 5: what convergence theory predicts, measured on the simulator.

Each function runs a small, seeded experiment and returns data; :mod:`.plots` draws it.
"Stable" is one verdict everywhere, :attr:`~fedasync_lib.core.history.History.stable`:
the training loss ends below its start and never passes twice its start on the way.

* :func:`staleness_prediction`: each client's staleness, predicted from the job queue
  (:mod:`fedasync_lib.analysis.queueing`) and measured in a long run;
* :func:`drop_prediction`: the share of updates a drop bound throws away, predicted and
  measured;
* :func:`alpha_runs`: the mixing rate as a step size, on the training objective;
* :func:`quadratic_run`, :func:`fixed_delay_check`, :func:`random_delay_check`: the exact
  stability region of a delayed step (:mod:`fedasync_lib.analysis.delayed_step`), checked on
  a quadratic that the simulator trains, first with every delay equal, then with a long tail;
* :func:`stability_grid`: the largest server step that stays stable on the MLP, against
  concurrency, with and without a delay-adaptive weight (FedBuff with a buffer of one
  update: asynchronous SGD with local steps);
* :func:`local_epochs_runs`: more local work under the device model (Stich's trade-off,
  under asynchrony);
* :func:`buffer_runs`: FedBuff's buffer size, with the staleness discount held apart.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..analysis.delayed_step import largest_stable_momentum_step, largest_stable_step
from ..analysis.queueing import predicted_drop_share, queue_model
from ..core.config import AsyncConfig
from ..core.data import FederatedData, load_digits_split
from ..core.history import History
from ..core.model import LinearModel
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
    """The lesson's experiment at each mixing rate, ``updates`` long, on each seed, recording
    ``grad_norm_sq`` (what the theorems bound) at each evaluation."""
    cfg = config.replace(num_updates=updates, eval_every=50, track_grad_norm=True)
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


# --- the exact stability region, on a quadratic that the simulator trains ------------------------
#: Every client holds the same digits, so that all clients share one objective f, a quadratic
#: with one curvature L: the clients differ only in speed, and asynchrony changes only the delay.
QUADRATIC_SAMPLES = 100
#: FedBuff with a buffer of one update, one local step on the whole of a client's data (so a
#: job returns -gamma * grad f at the model it started from), the local learning rate gamma set
#: to 1 / L (:func:`quadratic_config`): a server step ``server_lr`` is then eta * L itself.
#: Equal speeds and no jitter: every update is concurrency - 1 steps old.
QUADRATIC = AsyncConfig(dataset="digits", num_clients=20, concurrency=8, heterogeneity=0.0,
                        jitter=0.0, local_epochs=1, batch_size=QUADRATIC_SAMPLES, buffer_size=1,
                        max_staleness=None, num_updates=400, eval_every=20)


@functools.lru_cache(maxsize=1)
def quadratic_data() -> Tuple[FederatedData, float]:
    """The quadratic's data (the first ``QUADRATIC_SAMPLES`` training digits of the lesson's
    split, on each of ``QUADRATIC.num_clients`` clients; the split's test set) and its
    curvature ``L``: the largest eigenvalue of the Hessian of the mean
    squared error of a linear model (:mod:`fedasync_lib.core.dense`), ``(1/n) sum_i [x_i, 1][x_i, 1]^T`` (times the
    identity over the classes)."""
    train, test = load_digits_split(LESSON.seed)
    x, y = train.x[:QUADRATIC_SAMPLES], train.y[:QUADRATIC_SAMPLES]
    features = np.concatenate([x.astype(np.float64), np.ones((len(x), 1))], axis=1)
    curvature = float(np.linalg.eigvalsh(features.T @ features / len(x)).max())
    data = FederatedData.from_clients([(x, y)] * QUADRATIC.num_clients, (test.x, test.y))
    return data, curvature


#: A run on the quadratic lasts at least this many delays: just outside the stability limit
#: the error grows by a factor that shrinks with the delay (about 1 + 0.07 / d per step at
#: 1.1 times the limit), so the longer the delay, the longer the run must be to show it.
QUADRATIC_DELAYS = 40


def quadratic_config(concurrency: int, step: float, heterogeneity: float = 0.0,
                     seed: int = LESSON.seed, config: AsyncConfig = QUADRATIC) -> AsyncConfig:
    """``config`` with ``concurrency`` in flight, server step ``step`` (in units of 1 / L,
    through the local learning rate 1 / L), the speeds' ``heterogeneity`` and ``seed``; at
    least ``QUADRATIC_DELAYS`` times ``concurrency`` updates long."""
    _, curvature = quadratic_data()
    return config.replace(concurrency=int(concurrency), server_lr=float(step),
                          heterogeneity=float(heterogeneity), seed=int(seed),
                          learning_rate=1.0 / curvature,
                          num_updates=max(config.num_updates, QUADRATIC_DELAYS * int(concurrency)))


def quadratic_run(config: AsyncConfig, weight: Optional[Weight] = None) -> History:
    """FedBuff on the quadratic (a linear model with the squared error, initialised
    under the config's seed), each change weighted by ``weight`` (none by default); runs with
    this module's weights are kept in the run cache."""
    weight = weight or no_weight
    data, _ = quadratic_data()

    def compute() -> History:
        model = LinearModel(QUADRATIC.feature_dim, QUADRATIC.num_classes, seed=config.seed,
                            loss="squared_error")
        return run(config, "fedbuff", data, model=model,
                   buffer_step=weighted_step(weight, config.concurrency))
    if getattr(weight, "__module__", None) == __name__:
        return run_cache.cached(config, f"quadratic, fedbuff, weight {weight.__name__}", compute)
    return compute()


def quadratic_demo(concurrency: int, step: float) -> Tuple[History, float]:
    """Notebook 5's demo: one run on the quadratic at ``concurrency`` (equal speeds: every
    delay is concurrency - 1) and server ``step`` (eta * L), and the largest stable step
    predicted for that delay."""
    if not 1 <= int(concurrency) <= QUADRATIC.num_clients:
        raise ValueError(f"concurrency={concurrency!r} is invalid: expected 1 to "
                         f"{QUADRATIC.num_clients} (the quadratic's clients)")
    if not (math.isfinite(float(step)) and float(step) > 0):
        raise ValueError(f"step={step!r} is invalid: expected a finite number > 0 (eta * L)")
    return (quadratic_run(quadratic_config(concurrency, step)),
            largest_stable_step(int(concurrency) - 1))


def steady_staleness(history: History, warm_up: int = 100) -> np.ndarray:
    """The staleness of the updates after the first ``warm_up``."""
    return history.column("staleness")[warm_up:]


def fixed_delay_check(concurrencies: Sequence[int], factors: Sequence[float] = (0.9, 1.1),
                      seeds: Sequence[int] = SEEDS) -> List[Dict[str, object]]:
    """Per concurrency c (equal speeds, so every delay is c - 1): the delay measured, the step
    :func:`~fedasync_lib.analysis.delayed_step.largest_stable_step` predicts, and at each
    multiple of it in ``factors``, on how many of ``seeds`` the run was stable."""
    rows = []
    for c in concurrencies:
        predicted = largest_stable_step(int(c) - 1)
        stable = {}
        delays: List[int] = []
        for f in factors:
            runs = [quadratic_run(quadratic_config(c, f * predicted, seed=s)) for s in seeds]
            stable[float(f)] = sum(h.stable for h in runs)
            delays.extend(int(d) for h in runs for d in steady_staleness(h))
        rows.append({"concurrency": int(c), "min_delay": min(delays), "max_delay": max(delays),
                     "predicted": predicted, "stable": stable, "seeds": len(seeds)})
    return rows


def momentum_delay_check(cases: Sequence[Tuple[int, float, int]], factors: Sequence[float] = (0.9, 1.1),
                         seeds: Sequence[int] = SEEDS) -> List[Dict[str, object]]:
    """FedBuff with server momentum on the quadratic, equal speeds: per ``(concurrency c,
    momentum beta, updates)`` the step
    :func:`~fedasync_lib.analysis.delayed_step.largest_stable_momentum_step` predicts for the
    delay c - 1, and at each multiple of it in ``factors``, on how many ``seeds`` the run was
    stable. Near the bound a large beta makes the error grow slowly, so each case says how
    many updates its runs last."""
    rows = []
    for c, beta, updates in cases:
        predicted = largest_stable_momentum_step(int(c) - 1, float(beta))
        stable = {}
        for f in factors:
            runs = [quadratic_run(quadratic_config(c, f * predicted, seed=s).replace(
                server_optimizer="momentum", server_momentum=float(beta), num_updates=int(updates),
                eval_every=max(20, int(updates) // 30))) for s in seeds]
            stable[float(f)] = sum(h.stable for h in runs)
        rows.append({"concurrency": int(c), "momentum": float(beta), "predicted": predicted,
                     "long_run": predicted / (1.0 - float(beta)),
                     "plain": largest_stable_step(int(c) - 1), "stable": stable, "seeds": len(seeds)})
    return rows


def random_delay_check(concurrency: int, heterogeneities: Sequence[float],
                       multiples: Sequence[float], weights: Dict[str, Weight],
                       seeds: Sequence[int] = SEEDS) -> List[Dict[str, object]]:
    """At one concurrency c, for each speed ``heterogeneity`` (a longer tail of delays as it
    grows): the mean and the largest delay over the seeds' runs, and, per weight, on how many
    seeds the run is stable at each multiple of the step predicted for a fixed delay of
    c - 1."""
    base = largest_stable_step(int(concurrency) - 1)
    rows = []
    for h in heterogeneities:
        delays = np.concatenate([steady_staleness(quadratic_run(quadratic_config(
            concurrency, 0.5 * base, h, seed=s))) for s in seeds])
        stable = {name: {float(m): sum(quadratic_run(quadratic_config(concurrency, m * base, h, s),
                                                     w).stable for s in seeds)
                         for m in multiples} for name, w in weights.items()}
        rows.append({"heterogeneity": float(h), "mean_delay": float(delays.mean()),
                     "max_delay": int(delays.max()), "median_delay": float(np.median(delays)),
                     "base": base, "stable": stable, "seeds": len(seeds)})
    return rows


def stability_grid(weights: Dict[str, Weight], concurrencies: Sequence[int], steps: Sequence[float],
                   seeds: Sequence[int] = SEEDS, config: AsyncConfig = STEP) -> Dict[str, np.ndarray]:
    """For each weight: the share of ``seeds`` whose run was not stable
    (:attr:`History.stable <fedasync_lib.core.history.History.stable>`), at each concurrency
    (rows) and server step size (columns)."""
    out = {}
    for name, weight in weights.items():
        grid = np.zeros((len(concurrencies), len(steps)))
        for i, c in enumerate(concurrencies):
            for j, eta in enumerate(steps):
                unstable = 0
                for s in seeds:
                    cfg = config.replace(concurrency=int(c), server_lr=float(eta), seed=int(s))
                    unstable += not weighted_run(cfg, weight).stable
                grid[i, j] = unstable / len(seeds)
        out[name] = grid
    return out


def largest_stable(grid: np.ndarray, steps: Sequence[float]) -> List[Optional[float]]:
    """Per row of a :func:`stability_grid`: the largest step at which every seed was stable,
    and at every smaller step too (None if even the smallest was unstable on a seed)."""
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


#: FedBuff's buffer experiment: Exercise E4's task at heterogeneity 1.0 (300 updates).
BUFFER = SYNC_VS_ASYNC.replace(heterogeneity=1.0)


def buffer_runs(sizes: Sequence[int], step_per_arrival: Optional[float] = None,
                seeds: Sequence[int] = SEEDS, config: AsyncConfig = BUFFER) -> Dict[int, List[History]]:
    """FedBuff at each buffer size K, on each seed, for the same number of arrivals.

    ``step_per_arrival=None``: FedBuff as published, with the config's server learning rate
    eta and the discount 1 / sqrt(1 + t), t counted in server steps. Then K changes three
    things at once: how many changes a step averages, how stale they are in steps (about
    (c - 1) / K), and so how much each is discounted; each arrival moves the model by
    eta / (K sqrt(1 + t)) times its change (the ``alpha`` that the history records).

    ``step_per_arrival=s``: the discount held apart. No staleness weight, and a server
    learning rate of K * s, so that every arrival moves the model by s times its change,
    whatever K: what is left to differ is only that K changes are applied together, from
    models as old in arrivals as before."""
    if step_per_arrival is None:
        return {int(k): simulate_seeds(config.replace(buffer_size=int(k)), seeds, "fedbuff")
                for k in sizes}
    return {int(k): [weighted_run(config.replace(buffer_size=int(k), seed=int(s),
                                                 server_lr=float(k) * float(step_per_arrival)),
                                  no_weight) for s in seeds] for k in sizes}
