"""The numbers behind every demo of the lesson.

Each function here takes the values of a demo's sliders and returns data;
:mod:`fedasync_lib.plots` draws it. A notebook's slider callback is one call
of each. The tests call these functions with every slider's extreme values.

Runs are cached by config (an :class:`AsyncConfig` is frozen, so hashable):
moving a slider back to a value seen before answers at once. Treat the
returned histories as read-only.
"""

from __future__ import annotations

import copy
import functools
import time
from dataclasses import dataclass
from typing import Dict, List, Sequence

import numpy as np

from ..algorithms import ignored_fields
from ..algorithms import staleness as staleness_fns
from ..core import seeding
from ..core.clients import draw_mean_latencies
from ..core.config import AsyncConfig
from ..core.data import FederatedData, load_digits_split, make_federated_data
from ..core.history import History
from ..core.model import AsyncModel, DenseModel
from ..runner import run, server_for
from . import run_cache
from .timeline import Job, async_jobs, utilization

#: The lesson's default experiment: real handwritten digits split with label
#: skew (Dirichlet 0.5) over 20 clients, 10 of them training at once, with
#: strongly heterogeneous speeds (the slowest client is hundreds of times
#: slower than the fastest), a large mixing rate and no staleness bound.
#: In this regime staleness visibly hurts, which is what the lesson studies.
LESSON = AsyncConfig(
    dataset="digits", dirichlet_alpha=0.5, num_clients=20, concurrency=10,
    heterogeneity=2.0, learning_rate=0.1, mixing_alpha=0.9, max_staleness=None,
    staleness="constant", num_updates=200, eval_every=10,
)

#: (min, max, step) of every slider in the notebooks.
SLIDERS: Dict[str, tuple] = {
    "concurrency": (1, 20, 1),
    "heterogeneity": (0.0, 2.5, 0.25),
    "decay": (0.05, 1.0, 0.05),
    "poly_a": (0.0, 3.0, 0.1),
    "hinge_a": (0.0, 20.0, 0.5),
    "hinge_b": (0, 30, 1),
    "mixing_alpha": (0.05, 1.0, 0.05),
    "learning_rate": (0.01, 10.0, 0.01),
    "max_staleness": (0, 40, 1),
    "server_step": (0.01, 2.5, 0.01),
    "availability_amplitude": (0.0, 1.0, 0.25),
    "dropout": (0.0, 0.4, 0.1),
    "oversample": (1.0, 2.0, 0.25),
}

WEIGHTINGS = ("constant", "polynomial", "hinge", "exponential")


# --- running and caching --------------------------------------------------------
@functools.lru_cache(maxsize=16)
def _data(dataset: str, seed: int, num_clients: int, dirichlet_alpha, samples_per_client: int,
          test_size: int, input_dim: int, num_classes: int) -> FederatedData:
    cfg = AsyncConfig(dataset=dataset, seed=seed, num_clients=num_clients, concurrency=1,
                      dirichlet_alpha=dirichlet_alpha, samples_per_client=samples_per_client,
                      test_size=test_size, input_dim=input_dim, num_classes=num_classes)
    return make_federated_data(cfg)


def federated_data(config: AsyncConfig) -> FederatedData:
    """The data split of ``config``, built once per distinct data setting."""
    return _data(config.dataset, config.seed, config.num_clients, config.dirichlet_alpha,
                 config.samples_per_client, config.test_size, config.input_dim,
                 config.num_classes)


def simulate(config: AsyncConfig, algorithm: str = "fedasync") -> History:
    """``run(config, algorithm)`` on the cached data split, itself cached by config.

    Returns a fresh copy each time: a caller may change it without changing
    what the next caller gets.
    """
    return _simulate(config, algorithm).copy()


@functools.lru_cache(maxsize=256)
def _simulate(config: AsyncConfig, algorithm: str) -> History:
    return run_cache.cached(config, algorithm, lambda: run(config, algorithm, federated_data(config)))


#: The seeds the lesson's multi-seed comparisons use: the lesson's own, and three more.
SEEDS = (42, 1, 2, 3)


def simulate_seeds(config: AsyncConfig, seeds: Sequence[int] = SEEDS,
                   algorithm: str = "fedasync") -> List[History]:
    """:func:`simulate` for each seed: one History per seed, each cached."""
    return [simulate(config.replace(seed=int(s)), algorithm) for s in seeds]


def sequential(config: AsyncConfig) -> AsyncConfig:
    """The same experiment with one client at a time: no staleness at all."""
    return config.replace(concurrency=1)


# --- 1. why asynchronous? -------------------------------------------------------
@dataclass
class Timelines:
    sync_jobs: List[Job]
    async_jobs: List[Job]
    sync_time: float  # virtual seconds until the last sync job ended
    async_time: float  # virtual seconds until as many async updates had arrived
    sync_utilization: float
    async_utilization: float
    concurrency: int
    num_clients: int
    client_latency: List[float]  # each client's typical job time (the bars' colour)


def speed_spread(heterogeneity: float, config: AsyncConfig = LESSON) -> float:
    """How many times slower the slowest client is than the fastest, on ``config``'s seed.

    The typical job times are log-normal (``core.clients.draw_mean_latencies``), so
    the spread grows exponentially with ``heterogeneity``.
    """
    latency = draw_mean_latencies(config.replace(heterogeneity=heterogeneity))
    return float(latency.max() / latency.min())


def timelines(concurrency: int, heterogeneity: float, num_jobs: int = 40,
              config: AsyncConfig = LESSON) -> Timelines:
    """The same ``num_jobs`` client jobs, as synchronous rounds (FedAvg) and asynchronously."""
    cfg = config.replace(concurrency=concurrency, heterogeneity=heterogeneity,
                         num_updates=num_jobs)
    sync, asynchronous = simulate(cfg, "fedavg"), simulate(cfg)
    return Timelines(async_jobs(sync)[:num_jobs], async_jobs(asynchronous), sync.virtual_time,
                     asynchronous.virtual_time,
                     utilization(async_jobs(sync), concurrency, sync.virtual_time),
                     utilization(async_jobs(asynchronous), concurrency, asynchronous.virtual_time),
                     concurrency, cfg.num_clients, list(asynchronous.client_latency))


# --- 2. staleness -----------------------------------------------------------------
@dataclass
class StalenessProfile:
    staleness: np.ndarray  # of every arrived update
    client_latency: np.ndarray  # each client's typical job time
    contributions: np.ndarray  # updates each client delivered
    concurrency: int
    heterogeneity: float


def staleness_profile(concurrency: int, heterogeneity: float,
                      config: AsyncConfig = LESSON) -> StalenessProfile:
    """Where staleness comes from: its distribution, and who delivers the updates."""
    h = simulate(config.replace(concurrency=concurrency, heterogeneity=heterogeneity))
    return StalenessProfile(h.column("staleness"), np.array(h.client_latency),
                            h.contributions(applied_only=False), concurrency, heterogeneity)


def class_exposure(concurrency: int, heterogeneity: float,
                   config: AsyncConfig = LESSON) -> Dict[str, np.ndarray]:
    """Share of each class in the data, and in the samples behind the updates applied.

    With label skew, a class held mostly by slow clients reaches the server
    less often than its share of the data.
    """
    h = simulate(config.replace(concurrency=concurrency, heterogeneity=heterogeneity))
    counts = federated_data(config).label_counts(config.num_classes)  # clients x classes
    data_share = counts.sum(0) / counts.sum()
    seen = (h.contributions()[:, None] * counts).sum(0)
    return {"data": data_share, "updates": seen / seen.sum()}


# --- 3. staleness weighting -----------------------------------------------------
def weighting_curves(decay: float, poly_a: float, hinge_a: float, hinge_b: int,
                     max_staleness: int = 40) -> Dict[str, np.ndarray]:
    """s(t) for t = 0..max_staleness, for each of the four functions."""
    t = np.arange(max_staleness + 1)
    return {
        "t": t,
        "constant": staleness_fns.constant()(t),
        "polynomial": staleness_fns.polynomial(poly_a)(t),
        "hinge": staleness_fns.hinge(hinge_a, int(hinge_b))(t),
        "exponential": staleness_fns.exponential(decay)(t),
    }


def weighted(config: AsyncConfig, name: str, decay: float | None = None,
             poly_a: float | None = None, hinge_a: float | None = None,
             hinge_b: int | None = None) -> AsyncConfig:
    """``config`` with staleness function ``name`` and any parameters given."""
    changes = {"staleness": name}
    for field, value in (("staleness_weight_decay", decay), ("poly_a", poly_a),
                         ("hinge_a", hinge_a), ("hinge_b", hinge_b)):
        if value is not None:
            changes[field] = value
    return config.replace(**changes)


def compare_weightings(config: AsyncConfig = LESSON) -> Dict[str, History]:
    """One run per staleness function, plus the sequential run as the reference."""
    runs = {"sequential": simulate(sequential(config))}
    for name in WEIGHTINGS:
        runs[name] = simulate(weighted(config, name))
    return runs


def compare_weightings_seeds(seeds: Sequence[int] = SEEDS,
                             config: AsyncConfig = LESSON) -> Dict[str, List[History]]:
    """:func:`compare_weightings` on each seed: ``{run name: [History per seed]}``."""
    per_seed = [compare_weightings(config.replace(seed=int(s))) for s in seeds]
    return {name: [runs[name] for runs in per_seed] for name in per_seed[0]}


def weighting_demo(name: str, decay: float, poly_a: float, hinge_a: float, hinge_b: int,
                   config: AsyncConfig = LESSON) -> Dict[str, History]:
    """One weighting with the sliders' parameters, against the two references.

    Only the chosen run is new when a slider moves; the references are cached.
    """
    return {
        "sequential": simulate(sequential(config)),
        "constant": simulate(weighted(config, "constant")),
        name: simulate(weighted(config, name, decay, poly_a, hinge_a, int(hinge_b))),
    }


# --- 4. damping and mixing ---------------------------------------------------------
def alpha_sweep(alphas: Sequence[float], config: AsyncConfig = LESSON) -> Dict[float, History]:
    """One run per mixing rate alpha (FedAsync mixing, config's weighting)."""
    return {float(a): simulate(config.replace(mixing_alpha=float(a))) for a in alphas}


def weighting_gain(alphas: Sequence[float], seeds: Sequence[int], weighting: str = "polynomial",
                   config: AsyncConfig = LESSON) -> Dict[float, List[float]]:
    """Accuracy points won by ``weighting`` over constant weighting, per alpha and per seed.

    ``gain[alpha][k]`` = tail accuracy with ``weighting`` minus tail accuracy with
    constant weighting, both at mixing rate ``alpha`` on ``config`` with seed
    ``seeds[k]``. Staleness weighting only scales alpha down for stale updates
    (alpha_t = alpha * s(t)), so it can matter only when alpha is large.
    """
    gain: Dict[float, List[float]] = {}
    for alpha in alphas:
        gain[float(alpha)] = []
        for seed in seeds:
            cfg = config.replace(mixing_alpha=float(alpha), seed=int(seed))
            weighted_run = simulate(weighted(cfg, weighting)).tail_accuracy()
            constant_run = simulate(weighted(cfg, "constant")).tail_accuracy()
            gain[float(alpha)].append(weighted_run - constant_run)
    return gain


def alpha_sweep_seeds(alphas: Sequence[float], seeds: Sequence[int] = SEEDS,
                      config: AsyncConfig = LESSON) -> Dict[float, List[History]]:
    """:func:`alpha_sweep` on each seed: ``{alpha: [History per seed]}``."""
    return {float(a): simulate_seeds(config.replace(mixing_alpha=float(a)), seeds) for a in alphas}


def weighting_runs(alpha: float, seeds: Sequence[int] = SEEDS, weighting: str = "polynomial",
                   config: AsyncConfig = LESSON) -> Dict[str, List[History]]:
    """At mixing rate ``alpha``, on each seed: constant weighting, ``weighting``, and the
    control that tells the two apart, constant weighting at a smaller alpha equal to the
    mean rate ``weighting`` applied (``"same mean alpha"``). Weighting discounts stale
    updates *more than fresh ones*; the control discounts every update by the same factor."""
    runs: Dict[str, List[History]] = {"constant": [], weighting: [], "same mean alpha": []}
    for seed in seeds:
        cfg = config.replace(mixing_alpha=float(alpha), seed=int(seed))
        weighted_run = simulate(weighted(cfg, weighting))
        applied = weighted_run.column("alpha")
        mean_alpha = float(applied[applied > 0].mean())
        runs["constant"].append(simulate(weighted(cfg, "constant")))
        runs[weighting].append(weighted_run)
        runs["same mean alpha"].append(simulate(weighted(cfg.replace(mixing_alpha=round(mean_alpha, 4)),
                                                         "constant")))
    return runs


def mixing_demo(mixing_alpha: float, learning_rate: float,
                config: AsyncConfig = LESSON) -> Dict[str, History]:
    """A run at the sliders' alpha and learning rate, against the lesson's default.

    A large enough learning rate makes local SGD blow up; the run then stops
    and is marked diverged (see ``History.diverged``) instead of returning NaNs.
    """
    return {
        f"default (alpha {config.mixing_alpha:g}, lr {config.learning_rate:g})": simulate(config),
        f"alpha {mixing_alpha:g}, lr {learning_rate:g}": simulate(
            config.replace(mixing_alpha=mixing_alpha, learning_rate=learning_rate)),
    }


def damping_rates(sample_counts: Sequence[int], mixing_alpha: float, damping_constant: float = 100.0,
                  decay: float = 0.5, max_staleness: int = 12) -> Dict[str, np.ndarray]:
    """alpha_t against staleness: the original rule for several sample counts, and FedAsync's.

    Original rule: w = decay^t * n, alpha_t = w / (w + damping_constant).
    FedAsync: alpha_t = mixing_alpha * decay^t, whatever the sample count n.
    """
    t = np.arange(max_staleness + 1)
    s = staleness_fns.exponential(decay)(t)
    out: Dict[str, np.ndarray] = {"t": t, "fedasync": mixing_alpha * s}
    for n in sample_counts:
        w = s * n
        out[f"n={n}"] = w / (w + damping_constant)
    return out


def damping_comparison(config: AsyncConfig = LESSON) -> Dict[str, History]:
    """The same run with the original rule and with FedAsync mixing, exponential weighting.

    With label skew, clients hold very different amounts of data, so the
    original rule's rate follows the client's size as much as its staleness.
    """
    base = config.replace(staleness="exponential")
    return {rule: simulate(base.replace(mixing=rule)) for rule in ("sample_damping", "fedasync")}


# --- classroom mode ---------------------------------------------------------------------
#: The classroom's algorithm names, and the names :func:`fedasync_lib.run` knows them by.
ALGORITHM_NAMES = {"FedAsync": "fedasync", "FedBuff": "fedbuff", "FedAvg (sync)": "fedavg"}
ALGORITHMS = tuple(ALGORITHM_NAMES)
#: The classroom controls that set an algorithm-specific config field.
CLASSROOM_FIELDS = {"staleness": "staleness", "decay": "staleness_weight_decay",
                    "mixing_alpha": "mixing_alpha"}


def classroom_config(algorithm: str, concurrency: int, heterogeneity: float, staleness: str,
                     decay: float, mixing_alpha: float, config: AsyncConfig = LESSON) -> AsyncConfig:
    """The config of the classroom app's run at the controls' settings.

    FedBuff uses a buffer of 5 and a server learning rate of 3, as in Exercise 4.
    """
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm={algorithm!r} is invalid: expected one of "
                         f"{', '.join(map(repr, ALGORITHMS))}")
    return config.replace(concurrency=concurrency, heterogeneity=heterogeneity,
                          staleness=staleness, staleness_weight_decay=decay,
                          mixing_alpha=mixing_alpha, buffer_size=5, server_lr=3.0)


def classroom_ignored(algorithm: str, staleness: str, config: AsyncConfig = LESSON) -> List[str]:
    """The classroom controls that ``algorithm`` does not read (the app greys them out):
    FedBuff and FedAvg have no alpha and no staleness function, and only the
    exponential function reads the decay."""
    cfg = classroom_config(algorithm, config.concurrency, config.heterogeneity, staleness,
                           config.staleness_weight_decay, config.mixing_alpha, config)
    ignored = ignored_fields(ALGORITHM_NAMES[algorithm], cfg)
    return [control for control, field in CLASSROOM_FIELDS.items() if field in ignored]


def classroom_run(algorithm: str, concurrency: int, heterogeneity: float, staleness: str,
                  decay: float, mixing_alpha: float, config: AsyncConfig = LESSON) -> Dict[str, History]:
    """The classroom app's run: one algorithm at the sliders' settings, and the
    sequential run of the same experiment (FedAsync, one client at a time) as
    the reference. See :func:`classroom_config`.
    """
    cfg = classroom_config(algorithm, concurrency, heterogeneity, staleness, decay,
                           mixing_alpha, config)
    return {"sequential": simulate(sequential(cfg)),
            algorithm: simulate(cfg, ALGORITHM_NAMES[algorithm])}


# --- 6. bring your own model and data ----------------------------------------------
#: The models notebook 6 compares, by the name it shows them under.
MODELS = ("built-in MLP", "CNN", "logistic regression")


def make_model(name: str, config: AsyncConfig = LESSON):
    """A fresh model ``name`` (one of :data:`MODELS`) for ``config``'s data, seeded by it."""
    if name == "built-in MLP":
        return AsyncModel(config)
    from ..core.model_zoo import DigitsCNN, LogisticRegression  # torch: notebook 7 only

    if name == "CNN":
        return DigitsCNN(num_classes=config.num_classes, seed=config.seed)
    if name == "logistic regression":
        return LogisticRegression(config.feature_dim, config.num_classes, seed=config.seed)
    raise ValueError(f"model={name!r} is invalid: expected one of {', '.join(map(repr, MODELS))}")


@dataclass
class ModelRun:
    """One run of one model: what it learned (reproducible) and what it cost (not)."""

    name: str
    history: History
    parameters: int
    training: str  # which local-training path ran: hand-written or torch.func
    seconds_per_update: float  # wall-clock on this machine: differs from run to run


def model_run(name: str, staleness: str = "constant", config: AsyncConfig = LESSON,
              data: FederatedData | None = None) -> ModelRun:
    """FedAsync with model ``name`` and staleness function ``staleness`` on ``config``.

    ``data``: the clients' data (by default ``config``'s split). Runs on the
    default split are cached, in this process and in the run cache on disk
    (:mod:`.run_cache`) when one is set, so the timing is that of the first run,
    perhaps another process's. Runs on given data are kept in the run cache on disk
    only, under a hash of the data (:func:`.run_cache.data_digest`). A staleness
    function the config does not know is refused by the config.
    """
    if data is not None:
        config = config.replace(staleness=staleness)
        return run_cache.cached(config, f"fedasync, model {name}, data {run_cache.data_digest(data)}",
                                lambda: _model_run(name, config, data))
    return copy.deepcopy(_cached_model_run(name, config.replace(staleness=staleness)))


@functools.lru_cache(maxsize=64)
def _cached_model_run(name: str, config: AsyncConfig) -> ModelRun:
    return run_cache.cached(config, f"fedasync, model {name}",
                            lambda: _model_run(name, config, federated_data(config)))


def _model_run(name: str, config: AsyncConfig, data: FederatedData) -> ModelRun:
    model = make_model(name, config)
    server = server_for(config, "fedasync", data, model=model)
    start = time.perf_counter()
    history = server.train()
    seconds = time.perf_counter() - start
    parameters = (model.num_parameters() if isinstance(model, DenseModel)
                  else sum(p.numel() for p in model.parameters()))
    return ModelRun(name, history, parameters,
                    server.local_training.name, seconds / max(1, len(history.updates)))


def compare_models(staleness: str = "constant", config: AsyncConfig = LESSON) -> Dict[str, ModelRun]:
    """Every model of :data:`MODELS` in the same asynchronous experiment."""
    return {name: model_run(name, staleness, config) for name in MODELS}


def model_demo(model: str, staleness: str, config: AsyncConfig = LESSON) -> Dict[str, History]:
    """Notebook 6's demo: ``model`` next to the built-in MLP, with one staleness function."""
    names = dict.fromkeys(["built-in MLP", model])  # the MLP once, if it is the choice
    return {name: model_run(name, staleness, config).history for name in names}


def two_digit_shards(config: AsyncConfig = LESSON, images: bool = True) -> FederatedData:
    """The digits split as McMahan et al. (2017) split MNIST to make it hard:
    sort the training samples by label, cut them into ``2 * num_clients``
    shards, and give each client two shards (drawn with ``config.seed``). A
    shard can straddle two digits, and both of a client's shards can hold the
    same digit, so a client holds one to four digits.

    Built with :meth:`FederatedData.from_clients`, as a learner would bring
    their own data; ``images`` gives ``x`` the shape ``(n, 1, 8, 8)``.
    """
    train, test = load_digits_split(config.seed)
    order = np.argsort(train.y, kind="stable")
    shards = np.array_split(order, 2 * config.num_clients)
    pairing = seeding.rng(config.seed, "two-digit-shards").permutation(len(shards))
    shape = (-1, 1, 8, 8) if images else (-1, train.x.shape[1])
    clients = []
    for c in range(config.num_clients):
        rows = np.concatenate([shards[i] for i in pairing[2 * c: 2 * c + 2]])
        clients.append((train.x[rows].reshape(shape), train.y[rows]))
    return FederatedData.from_clients(clients, (test.x.reshape(shape), test.y))
