"""The experiments of the four exercises: each function returns data,
:mod:`fedasync_lib.plots` draws it, and every function accepts the learner's
code in place of the library's reference implementation.
"""

from __future__ import annotations

import copy
import functools
import math
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from ..algorithms import bounded
from ..core.clients import draw_mean_latencies
from ..core.config import AsyncConfig
from ..core.data import FederatedData, load_digits_split
from ..core.history import History
from ..core.model import evaluate
from ..core.scheduling import Scheduler
from ..runner import run, server_for
from . import run_cache
from .lesson import LESSON, federated_data, simulate
from .timeline import async_jobs, utilization


# --- Exercise 1: bounded staleness ---------------------------------------------------------
@dataclass
class BoundResult:
    policy: str  # "drop" or "wait"
    max_staleness: Optional[int]
    accuracy: float  # mean test accuracy over the last 5 evaluations
    thrown_away: float  # share of client-seconds spent on rejected updates
    idle: float  # share of client slots left idle (clients waiting)
    virtual_time: float  # until the last update was handled
    max_seen_staleness: int
    history: History


def bound_run(policy: str, max_staleness: Optional[int], config: AsyncConfig = LESSON,
              accept: Optional[Callable] = None, may_start: Optional[Callable] = None) -> BoundResult:
    """One run of ``config`` under a staleness bound enforced by ``policy``."""
    cfg = config.replace(staleness_policy=policy, max_staleness=max_staleness)
    # Each policy calls one hook: drop calls accept, wait calls may_start.
    hook, default = (("accept", bounded.accept) if policy == "drop"
                     else ("may_start", bounded.may_start))
    learner = accept if policy == "drop" else may_start
    h = (run(cfg, "fedasync", federated_data(cfg), **{hook: learner})
         if learner is not None and learner is not default else simulate(cfg))
    durations = h.column("arrival_time") - h.column("start_time")
    rejected = h.column("alpha") == 0
    busy = utilization(async_jobs(h), cfg.concurrency, h.virtual_time)
    return BoundResult(policy, max_staleness, h.tail_accuracy(),
                       float(durations[rejected].sum() / durations.sum()), max(0.0, 1.0 - busy),
                       h.virtual_time, int(h.column("staleness").max()), h)


def bound_sweep(bounds: Sequence[int], config: AsyncConfig = LESSON, accept=None,
                may_start=None) -> Dict[str, List[BoundResult]]:
    """``bound_run`` for each bound and both policies, plus the unbounded run."""
    return {policy: [bound_run(policy, b, config, accept, may_start) for b in bounds]
            + [bound_run(policy, None, config, accept, may_start)]
            for policy in ("drop", "wait")}


# --- Exercise 2: priority scheduling ----------------------------------------------------------
#: Exercise 2's experiment: the digits split by label, with slow clients
#: holding the high digits that the fast clients lack; five clients train at
#: once, so the scheduler decides who is next, and applying an update takes
#: the server a little time, so updates queue.
SCHEDULING = LESSON.replace(concurrency=5, heterogeneity=1.0, dirichlet_alpha=None,
                            staleness="polynomial", mixing_alpha=0.6, apply_time=0.05,
                            num_updates=300, eval_every=20)


@functools.lru_cache(maxsize=4)
def speed_skewed_digits(config: AsyncConfig = SCHEDULING) -> FederatedData:
    """Digits sorted by label into ``num_clients`` shards: client k holds about
    ``10 / num_clients`` neighbouring digits, and the clients' speeds, drawn as
    usual, are sorted so that client 0 (digit 0) is the fastest and the last
    client (digit 9) the slowest."""
    train, test = load_digits_split(config.seed)
    order = np.argsort(train.y, kind="stable")
    shards = np.array_split(order, config.num_clients)
    latencies = np.sort(draw_mean_latencies(config))
    return FederatedData([train.subset(np.sort(s)) for s in shards], test, latencies)


@dataclass
class SchedulingResult:
    label: str
    history: History
    jain: float  # Jain's index of updates delivered
    fastest_decile: int  # updates delivered by the fastest 10 % of clients
    slowest_decile: int
    accuracy: float
    slow_class_accuracy: float  # test accuracy on the digits the slowest fifth of clients hold
    slow_classes: List[int]


def scheduling_run(update_order: str, client_order: str, config: AsyncConfig = SCHEDULING,
                   scheduler_class: Callable[..., object] = Scheduler) -> SchedulingResult:
    """One run of Exercise 2's experiment with a given scheduler (the library's scheduler's
    runs are kept in the run cache)."""
    if scheduler_class is Scheduler:
        return run_cache.cached(config, f"scheduling {update_order} {client_order}",
                                lambda: _scheduling_run(update_order, client_order, config, Scheduler))
    return _scheduling_run(update_order, client_order, config, scheduler_class)


def _scheduling_run(update_order: str, client_order: str, config: AsyncConfig,
                    scheduler_class: Callable[..., object]) -> SchedulingResult:
    data = speed_skewed_digits(config)
    server = server_for(config, "fedasync", data,
                        scheduler=scheduler_class(update_order, client_order))
    h = server.train()
    delivered = h.contributions(applied_only=False)
    n = max(1, config.num_clients // 10)
    by_speed = np.argsort(data.latencies, kind="stable")
    slowest_fifth = by_speed[-max(1, config.num_clients // 5):]
    slow_classes = sorted(set().union(*(data.clients[c].y.tolist() for c in slowest_fifth)))
    slow_acc = digit_accuracy(server, slow_classes)
    return SchedulingResult(f"{update_order} / {client_order}", h, h.jain_index(applied_only=False),
                            int(delivered[by_speed[:n]].sum()), int(delivered[by_speed[-n:]].sum()),
                            h.tail_accuracy(), slow_acc, slow_classes)


def scheduling_comparison(config: AsyncConfig = SCHEDULING,
                          scheduler_class: Callable[..., object] = Scheduler) -> List[SchedulingResult]:
    """Every client order (with arrival order), and freshest-first with random clients."""
    runs = [("arrival", order) for order in ("random", "fastest", "fewest")]
    runs.append(("freshest", "random"))
    return [scheduling_run(u, c, config, scheduler_class) for u, c in runs]


def fairness(runs: Sequence) -> tuple:
    """``(Jain's index, slowest fifth's share of an equal share, virtual times)`` over
    ``(history, data)`` pairs of Exercise 2's experiment (means over the runs)."""
    jain, slow, times = [], [], []
    for h, data in runs:
        delivered = h.contributions(applied_only=False)
        slowest = np.argsort(data.latencies, kind="stable")[-max(1, len(delivered) // 5):]
        jain.append(h.jain_index(applied_only=False))
        slow.append(delivered[slowest].sum() / (delivered.sum() * len(slowest) / len(delivered)))
        times.append(h.virtual_time)
    return float(np.mean(jain)), float(np.mean(slow)), times


def scheduler_table(schedulers: Dict[str, tuple], seeds: Sequence[int] = (42, 1, 2, 3),
                    config: AsyncConfig = SCHEDULING) -> Dict[str, List[SchedulingResult]]:
    """Exercise 2's experiment on each seed for each scheduler: ``{name: [result per seed]}``.

    ``schedulers`` maps a name to ``(scheduler class, client_order)``, such as
    ``(Scheduler, "fewest")`` or ``(MyScheduler, "random")``; updates leave in arrival order.
    """
    table: Dict[str, List[SchedulingResult]] = {}
    for name, (cls, client_order) in schedulers.items():
        table[name] = []
        for seed in seeds:
            r = copy.copy(scheduling_run("arrival", client_order, config.replace(seed=int(seed)),
                                         scheduler_class=cls))
            r.label = name
            table[name].append(r)
    return table


# --- Exercise 3: adaptive mixing ---------------------------------------------------------------
def mixing_rules_run(heterogeneity: float, rules: Dict[str, Optional[Callable]],
                     config: AsyncConfig = LESSON) -> Dict[str, History]:
    """One run per mixing rule at ``heterogeneity``; ``None`` means the fixed alpha
    (constant weighting, no adaptation)."""
    cfg = config.replace(heterogeneity=heterogeneity)
    data = federated_data(cfg)
    return {name: (simulate(cfg.replace(staleness="constant")) if rule is None
                   else rule_run(cfg, rule, data))
            for name, rule in rules.items()}


def rule_run(config: AsyncConfig, rule: Callable, data: Optional[FederatedData] = None) -> History:
    """FedAsync on ``config`` with mixing rule ``rule``; a library rule (one that has a
    ``cache_key``) has its runs kept in the run cache, a learner's does not."""
    data = data if data is not None else federated_data(config)

    def compute() -> History:
        if hasattr(rule, "reset"):
            rule.reset()
        return run(config, "fedasync", data, mixing_rule=rule)
    key = getattr(rule, "cache_key", None)
    return run_cache.cached(config, f"fedasync, {key}", compute) if key else compute()


def mixing_rules_seeds(heterogeneity: float, rules: Dict[str, Optional[Callable]],
                       seeds: Sequence[int] = (42, 1, 2, 3),
                       config: AsyncConfig = LESSON) -> Dict[str, List[History]]:
    """:func:`mixing_rules_run` on each seed: ``{rule name: [History per seed]}``."""
    per_seed = [mixing_rules_run(heterogeneity, rules, config.replace(seed=int(s))) for s in seeds]
    return {name: [runs[name] for runs in per_seed] for name in rules}


def update_distances(config: AsyncConfig = LESSON, seeds: Sequence[int] = (42, 1, 2, 3),
                     rule: Optional[Callable] = None) -> np.ndarray:
    """How far each applied update's model lies from the server's when it is mixed in:
    ``model_distance(client, server)`` for every update of FedAsync runs of ``config``, one
    per seed, pooled. The runs mix with ``rule`` (by default FedAsync's staleness weighting
    alpha (1 + t)^-1/2, :func:`~fedasync_lib.algorithms.adaptive.staleness_only`): measure on
    the trajectory that a rule built on the distances will run on. On a trajectory with
    constant weighting the models move farther: on the lesson's four seeds the median
    distance is 0.140 against 0.051 (Exercise E3 prints both and calibrates its trust
    region on the second)."""
    from ..algorithms.adaptive import model_distance, staleness_only

    mixing = rule if rule is not None else staleness_only()
    seen: List[float] = []

    def recording(ctx) -> float:
        seen.append(model_distance(ctx.update.state_dict, ctx.server_state))
        return mixing(ctx)

    for seed in seeds:
        cfg = config.replace(seed=int(seed))
        run(cfg, "fedasync", federated_data(cfg), mixing_rule=recording)
    return np.array(seen)


# --- Exercise 4: sync against async --------------------------------------------------------------
#: Exercise 4's experiment: the lesson's digits with polynomial weighting, 10
#: clients per round (sync) or in flight (async), FedBuff with a buffer of 5
#: and server learning rate 3.
#: No per-job jitter: at heterogeneity 0 every job takes exactly 1 s and
#: synchronous rounds never wait, which is sync's best case.
SYNC_VS_ASYNC = LESSON.replace(staleness="polynomial", buffer_size=5, server_lr=3.0,
                               num_updates=300, jitter=0.0)


def sync_vs_async(heterogeneity: float, config: AsyncConfig = SYNC_VS_ASYNC,
                  buffer_step: Optional[Callable] = None) -> Dict[str, History]:
    """FedAvg, FedAsync and FedBuff on one virtual clock at ``heterogeneity``."""
    from ..algorithms.fedbuff import fedbuff_step

    cfg = config.replace(heterogeneity=heterogeneity)
    data = federated_data(cfg)
    hooks = {"buffer_step": buffer_step} if buffer_step not in (None, fedbuff_step) else {}
    return {"FedAvg (sync)": simulate(cfg, "fedavg"),
            "FedAsync": simulate(cfg),
            "FedBuff": run(cfg, "fedbuff", data, **hooks) if hooks else simulate(cfg, "fedbuff")}


def time_to_target(runs: Dict[str, History], target: float) -> Dict[str, Optional[float]]:
    """Virtual seconds until each run first reaches ``target`` test accuracy (None: never)."""
    return {name: h.time_to_accuracy(target) for name, h in runs.items()}


def fedbuff_seeds(config: AsyncConfig, seeds: Sequence[int] = (42, 1, 2, 3),
                  buffer_step: Optional[Callable] = None) -> List[History]:
    """FedBuff on ``config`` for each seed, with the learner's server step (the reference
    step's runs come from the lesson's cache)."""
    from ..algorithms.fedbuff import fedbuff_step

    if buffer_step in (None, fedbuff_step):
        return [simulate(config.replace(seed=int(s)), "fedbuff") for s in seeds]
    return [run(config.replace(seed=int(s)), "fedbuff", federated_data(config.replace(seed=int(s))),
                buffer_step=buffer_step) for s in seeds]


def race_seeds(heterogeneity: float, seeds: Sequence[int] = (42, 1, 2, 3),
               config: AsyncConfig = SYNC_VS_ASYNC,
               buffer_step: Optional[Callable] = None) -> Dict[str, List[History]]:
    """:func:`sync_vs_async` on each seed: ``{algorithm: [History per seed]}``."""
    per_seed = [sync_vs_async(heterogeneity, config.replace(seed=int(s)), buffer_step) for s in seeds]
    return {name: [runs[name] for runs in per_seed] for name in per_seed[0]}


def log_time_to(target: float) -> Callable[[History], float]:
    """A metric for :func:`fedasync_lib.analysis.compare`: the log of the virtual time to
    ``target`` accuracy (inf if never reached). Times to a target spread over orders of
    magnitude across seeds, so runs are compared by their ratio, not their difference."""
    def metric(h: History) -> float:
        t = h.time_to_accuracy(target)
        return math.inf if t is None else math.log(t)
    return metric


def time_resolution(runs: Sequence[History], target: float) -> float:
    """The finest log-time difference a time to ``target`` can show: one evaluation interval
    at the time the target is reached, ``log(1 + interval / time)``, the mean over ``runs``."""
    out = []
    for h in runs:
        t = h.time_to_accuracy(target)
        times = h.column("time", "evals")
        if t is not None and len(times) > 1:
            out.append(math.log1p(float(np.diff(times).mean()) / t))
    return float(np.mean(out)) if out else 0.0


def crossover(heterogeneities: Sequence[float], target: float, config: AsyncConfig = SYNC_VS_ASYNC,
              buffer_step: Optional[Callable] = None) -> Dict[str, List[Optional[float]]]:
    """Time to ``target`` for each algorithm, across heterogeneity."""
    rows = [time_to_target(sync_vs_async(h, config, buffer_step), target) for h in heterogeneities]
    return {name: [r[name] for r in rows] for name in rows[0]}


# --- Exercise 2: the fast-client bias, measured and corrected -----------------------------------
def slow_clients(latencies: Sequence[float], fraction: float = 0.2) -> np.ndarray:
    """Ids of the slowest ``fraction`` of the clients (at least one)."""
    order = np.argsort(np.asarray(latencies), kind="stable")
    return order[-max(1, int(round(fraction * len(order)))):]


def slow_digits(data: FederatedData, latencies: Sequence[float], fraction: float = 0.2) -> List[int]:
    """The digits of which the slowest ``fraction`` of the clients hold more than their share
    (they hold ``fraction`` of the clients, and more than ``fraction`` of that digit's samples)."""
    counts = data.label_counts(10)
    held = counts[slow_clients(latencies, fraction)].sum(0) / counts.sum(0)
    return [int(d) for d in np.flatnonzero(held > fraction)]


def digit_accuracy(server, digits: Sequence[int]) -> float:
    """Test accuracy of ``server``'s model on the test samples of ``digits``."""
    test = server.test_data
    mask = np.isin(test.y, list(digits))
    accuracy, _ = evaluate(server.state, test.x[mask], test.y[mask], server.module, server.loss)
    return accuracy


def influence_over_time(history: History, sizes: Sequence[int], clients: Sequence[int],
                        points: int = 60) -> Dict[str, np.ndarray]:
    """The share of the applied update mass (the sum of alphas) that ``clients`` have pulled
    the model with, up to each moment of virtual time, against their share of the data."""
    t = history.column("arrival_time")
    alpha = history.column("alpha")
    mine = np.isin(history.column("client_id"), np.asarray(clients))
    grid = np.linspace(0, history.virtual_time, points)[1:]
    total = np.array([alpha[t <= g].sum() for g in grid])
    ours = np.array([alpha[(t <= g) & mine].sum() for g in grid])
    sizes = np.asarray(sizes, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total > 0, ours / total, np.nan)
    return {"time": grid, "influence": share,
            "data": np.full(len(grid), sizes[list(clients)].sum() / sizes.sum())}


@dataclass
class BiasCorrection:
    """One seed of the comparison: FedAsync, and FedAsync with participation weighting."""

    seed: int
    jain: Dict[str, float]  # Jain's index of applied alpha
    accuracy: Dict[str, float]  # tail accuracy
    slow_digit_accuracy: Dict[str, float]  # on the digits the slowest fifth hold
    digits: List[int]


def bias_correction(seed: int, config: AsyncConfig = None, speed_skewed: bool = True,
                    rule: Optional[Callable] = None) -> BiasCorrection:
    """FedAsync with and without a correction of the fast-client bias (``rule``, by default
    :func:`~fedasync_lib.algorithms.adaptive.participation_weighted`) on one seed of
    Exercise 2's experiment (``speed_skewed``: slow clients hold the high digits, updates
    applied at once) or of the lesson's Dirichlet split."""
    from ..algorithms.adaptive import participation_weighted

    if config is None:
        config = SCHEDULING.replace(apply_time=0.0, staleness="polynomial") if speed_skewed else LESSON
    cfg = config.replace(seed=seed)
    correction = rule if rule is not None else participation_weighted()
    key = getattr(correction, "cache_key", None)
    if key:  # a library rule: the comparison is kept in the run cache
        return run_cache.cached(cfg, f"bias correction {speed_skewed} {key}",
                                lambda: _bias_correction(cfg, speed_skewed, correction))
    return _bias_correction(cfg, speed_skewed, correction)


def _bias_correction(cfg: AsyncConfig, speed_skewed: bool, correction: Callable) -> BiasCorrection:
    data = speed_skewed_digits(cfg) if speed_skewed else federated_data(cfg)
    out: Dict[str, Dict[str, float]] = {"jain": {}, "accuracy": {}, "slow": {}}
    digits: List[int] = []
    if hasattr(correction, "reset"):
        correction.reset()
    for name, hooks in (("plain", {}), ("weighted", {"mixing_rule": correction})):
        server = server_for(cfg, "fedasync", data, **hooks)
        h = server.train()
        latencies = [c.mean_latency for c in server.clients]
        digits = slow_digits(data, latencies)
        out["jain"][name] = h.jain_index(by="alpha")
        out["accuracy"][name] = h.tail_accuracy()
        out["slow"][name] = digit_accuracy(server, digits)
    return BiasCorrection(cfg.seed, out["jain"], out["accuracy"], out["slow"], digits)


# --- server optimisers on FedBuff's buffer (#31) -------------------------------------
#: FedBuff on the lesson's experiment with a buffer of 2, 400 updates: staleness, counted in
#: server steps, is then about (concurrency - 1) / 2.
SERVER_OPTIMIZER_BASE = LESSON.replace(buffer_size=2, num_updates=400)

#: The optimisers compared, at the same long-run step: heavy-ball momentum with beta moves a
#: steady change by eta / (1 - beta) per step, so its eta is (1 - beta) times plain SGD's.
#: Adam's rate is in its own units (about eta per coordinate and step), not tuned.
SERVER_OPTIMIZER_SETTINGS: Dict[str, dict] = {
    "plain (eta 1)": dict(server_optimizer="sgd", server_lr=1.0),
    "momentum 0.5 (eta 0.5)": dict(server_optimizer="momentum", server_momentum=0.5, server_lr=0.5),
    "momentum 0.9 (eta 0.1)": dict(server_optimizer="momentum", server_momentum=0.9, server_lr=0.1),
    "Adam (eta 0.01)": dict(server_optimizer="adam", server_lr=0.01),
}


@dataclass
class OptimizerRow:
    """One optimiser at one concurrency, over seeds."""

    setting: str
    concurrency: int
    accuracy: List[float]  # mean test accuracy of the last five evaluations, per seed
    fluctuation: List[float]  # how much the training loss moves at the end, per seed
    stable: int  # runs whose training loss converged (History.stable)
    gain: List[float]  # accuracy minus plain steps' on the same seed


def server_optimizer_table(concurrencies: Sequence[int] = (1, 5, 10, 20),
                           settings: Optional[Dict[str, dict]] = None,
                           seeds: Sequence[int] = (42, 1, 2, 3),
                           config: AsyncConfig = SERVER_OPTIMIZER_BASE) -> List[OptimizerRow]:
    """FedBuff with each server optimiser of ``settings`` at each concurrency, on each seed.
    The plain step (the first setting) is the baseline of ``gain``."""
    from .convergence import fluctuation

    settings = settings or SERVER_OPTIMIZER_SETTINGS
    rows = []
    for c in concurrencies:
        baseline = None
        for name, values in settings.items():
            runs = [simulate(config.replace(concurrency=int(c), seed=int(s), **values), "fedbuff")
                    for s in seeds]
            accuracy = [h.tail_accuracy() for h in runs]
            baseline = baseline or accuracy
            rows.append(OptimizerRow(name, int(c), accuracy, [fluctuation(h) for h in runs],
                                     sum(h.stable for h in runs),
                                     [a - b for a, b in zip(accuracy, baseline)]))
    return rows


def mean_buffer_size(history: History) -> float:
    """Updates taken up per FedBuff server step (rejected ones included), over a run."""
    steps = len({u["version"] for u in history.updates})
    return len(history.updates) / max(steps, 1)


def window_for_buffer_size(size: float, config: AsyncConfig = SERVER_OPTIMIZER_BASE,
                           low: float = 0.0, high: float = 50.0, rounds: int = 14) -> float:
    """The time window whose FedBuff run on ``config`` takes ``size`` updates per step on
    average (bisection on the window; the mean grows with it)."""
    for _ in range(rounds):
        mid = (low + high) / 2
        if mean_buffer_size(simulate(config.replace(buffer_window=mid), "fedbuff")) < size:
            low = mid
        else:
            high = mid
    return round((low + high) / 2, 3)


@dataclass
class WindowRow:
    """A K-buffer and the time window with the same mean buffer size, over seeds."""

    buffer_size: int
    window: float
    window_mean_size: List[float]  # per seed
    buffer_accuracy: List[float]  # tail accuracy per seed
    window_accuracy: List[float]
    buffer_stable: int
    window_stable: int


def window_vs_buffer(sizes: Sequence[int] = (2, 5, 10), seeds: Sequence[int] = (42, 1, 2, 3),
                     config: AsyncConfig = SERVER_OPTIMIZER_BASE) -> List[WindowRow]:
    """FedBuff with a buffer of K against FedBuff with the time window whose mean buffer
    size is K on the lesson's seed (``window_for_buffer_size``), on each seed."""
    rows = []
    for k in sizes:
        window = window_for_buffer_size(k, config.replace(buffer_size=int(k)))
        by_size = [simulate(config.replace(buffer_size=int(k), seed=int(s)), "fedbuff") for s in seeds]
        by_time = [simulate(config.replace(buffer_window=window, seed=int(s)), "fedbuff") for s in seeds]
        rows.append(WindowRow(int(k), window, [mean_buffer_size(h) for h in by_time],
                              [h.tail_accuracy() for h in by_size], [h.tail_accuracy() for h in by_time],
                              sum(h.stable for h in by_size), sum(h.stable for h in by_time)))
    return rows


# --- Exercise 4, section 4: synchronous FedAvg as production runs it ------------------------------
#: The server's job timeout when devices drop out (virtual seconds), the same for every
#: algorithm: the environment, not a knob either side tunes.
RACE_TIMEOUT = 20.0
#: What each side may tune, six settings each, the same two kinds of knob: how long the
#: server waits for a client (FedAvg: the round's deadline; FedAsync: the job timeout, past
#: which a late update is given up on; None: no limit but the environment's timeout) and how
#: it aggregates (FedAvg: the over-selection, Bonawitz et al. 2019 as issue #31 describes it;
#: FedAsync: its mixing rate alpha).
FEDAVG_GRID = tuple({"oversample": o, "round_deadline": d}
                    for o in (1.0, 2.0) for d in (None, 2.0, 5.0))
FEDASYNC_GRID = tuple({"mixing_alpha": a, "job_timeout": t}
                      for a in (0.6, 0.9) for t in (None, 2.0, 5.0))
#: Settings are chosen on these seeds, and compared on the lesson's four (lesson.SEEDS).
TUNING_SEEDS = (10, 11)


def race_config(heterogeneity: float, dropout: float = 0.0,
                config: AsyncConfig = SYNC_VS_ASYNC) -> AsyncConfig:
    """Exercise 4's race at ``heterogeneity``, with ``dropout`` (and then the server's
    timeout, :data:`RACE_TIMEOUT`)."""
    return config.replace(heterogeneity=heterogeneity, dropout=dropout,
                          job_timeout=RACE_TIMEOUT if dropout > 0 else None)


def tuned_settings(algorithm: str, grid: Sequence[Dict], heterogeneity: float, dropout: float,
                   target: float, seeds: Sequence[int] = TUNING_SEEDS) -> tuple:
    """The setting of ``grid`` with the shortest median time to ``target`` accuracy over
    ``seeds`` (never reaching it counts as infinitely long; the first of equals wins), and
    every setting's median time: ``(best, [(setting, median seconds)])``."""
    base = race_config(heterogeneity, dropout)
    table = []
    for setting in grid:
        times = [simulate(_with(base.replace(seed=int(s)), setting), algorithm)
                 .time_to_accuracy(target) for s in seeds]
        table.append((dict(setting), float(np.median([math.inf if t is None else t for t in times]))))
    best = min(table, key=lambda row: row[1])[0]
    return best, table


def production_race(heterogeneity: float, dropout: float, fedavg: Dict, fedasync: Dict,
                    seeds: Sequence[int] = (42, 1, 2, 3)) -> Dict[str, List[History]]:
    """On each seed: FedAvg waiting for every client it asked (section 3's baseline), FedAvg
    with the ``fedavg`` settings (over-selection, deadline), and FedAsync with ``fedasync``'s."""
    base = race_config(heterogeneity, dropout)
    return {"FedAvg (waits for all)": [simulate(base.replace(seed=int(s)), "fedavg") for s in seeds],
            "FedAvg (production)": [simulate(_with(base.replace(seed=int(s)), fedavg), "fedavg")
                                    for s in seeds],
            "FedAsync (tuned)": [simulate(_with(base.replace(seed=int(s)), fedasync)) for s in seeds]}


def _with(config: AsyncConfig, setting: Dict) -> AsyncConfig:
    """``config`` with a tuned ``setting``; a job timeout of None keeps the environment's
    (:data:`RACE_TIMEOUT` when clients drop out, else none). Over-selection ``o`` gets
    ``o`` times the budget of handled updates: the extra clients' discarded reports would
    otherwise use up the reports a round can count."""
    if setting.get("job_timeout", 0) is None:
        setting = {k: v for k, v in setting.items() if k != "job_timeout"}
    if "oversample" in setting:  # results discarded by over-selection come on top of the budget
        setting = {**setting, "num_updates": math.ceil(setting["oversample"] * config.num_updates)}
    return config.replace(**setting)


def round_fill(history: History, k: int) -> float:
    """The share of a synchronous run's rounds that averaged ``k`` reports (the others closed
    at their deadline, or when their missing clients were given up on, with fewer)."""
    sizes: Dict[int, int] = {}
    for u in history.updates:  # a round's members all start from the same version
        if u["alpha"] > 0:
            sizes[u["base_version"]] = sizes.get(u["base_version"], 0) + 1
    return float(np.mean([n >= k for n in sizes.values()])) if sizes else float("nan")


#: Exercise E4's demo of clients that come and go: heterogeneity 1, a day of 40 virtual
#: seconds in which each client is available half of the hours on average.
COMINGS_AND_GOINGS = SYNC_VS_ASYNC.replace(heterogeneity=1.0, availability="daily",
                                           availability_share=0.5, day_length=40.0)
#: Production FedAvg's round deadline in the demo (virtual seconds).
DEMO_DEADLINE = 5.0


def comings_and_goings(amplitude: float, dropout: float, oversample: float,
                       config: AsyncConfig = COMINGS_AND_GOINGS) -> Dict[str, History]:
    """FedAvg as production runs it (``oversample``, a deadline of :data:`DEMO_DEADLINE`)
    and FedAsync, with the daily cycle's ``amplitude`` and ``dropout`` (the server gives up
    on a job after :data:`RACE_TIMEOUT`)."""
    cfg = config.replace(availability_amplitude=amplitude, dropout=dropout,
                         job_timeout=RACE_TIMEOUT if dropout > 0 else None)
    fedavg = cfg.replace(oversample=oversample, round_deadline=DEMO_DEADLINE,
                         num_updates=math.ceil(oversample * cfg.num_updates))
    return {"FedAvg (production)": simulate(fedavg, "fedavg"), "FedAsync": simulate(cfg)}


#: Exercise E4.2's round: K reports wanted by a deadline; the server gives up on a job at
#: the deadline too, so a client that dropped out is free again for the next round.
ROUND_K, ROUND_DEADLINE = 5, 3.0


def report_probability(config: AsyncConfig) -> float:
    """``q``: the chance that a client asked at random reports before the round's deadline,
    ``(1 - dropout) * (share of clients whose job ends within the deadline)``; the race
    has no per-job jitter, so each client's job time is its typical time."""
    if config.seconds_per_sample != 0:
        raise ValueError(f"seconds_per_sample={config.seconds_per_sample!r}: report_probability "
                         "reads job times that do not depend on a client's data (expected 0)")
    latencies = draw_mean_latencies(config)  # the clients' job times (no jitter in the race)
    return (1.0 - config.dropout) * float(np.mean(latencies <= config.round_deadline))


def round_size_runs(clients_to_ask: Callable[[int, float, float], int], dropout: float,
                    confidence: float = 0.9, heterogeneity: float = 1.0,
                    seeds: Sequence[int] = (42, 1, 2, 3)) -> List[dict]:
    """Per seed: ``q``, the clients asked ``n = clients_to_ask(K, q, confidence)``, and the
    synchronous run that asks them (``oversample = n / K``, at most every client):
    the share of its rounds that got K reports, and its time to 90 % accuracy."""
    rows = []
    for seed in seeds:
        cfg = race_config(heterogeneity, dropout).replace(
            seed=int(seed), concurrency=ROUND_K, round_deadline=ROUND_DEADLINE,
            job_timeout=ROUND_DEADLINE)
        q = report_probability(cfg)
        n = int(clients_to_ask(ROUND_K, q, confidence))
        oversample = min(n / ROUND_K, cfg.num_clients / ROUND_K)
        h = simulate(cfg.replace(oversample=oversample,
                                 num_updates=math.ceil(oversample * cfg.num_updates)), "fedavg")
        rows.append({"seed": int(seed), "q": q, "asked": n, "fill": round_fill(h, ROUND_K),
                     "time_to_90": h.time_to_accuracy(0.9), "history": h})
    return rows
