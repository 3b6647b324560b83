"""How stale each client's updates are, predicted from the queue of jobs, without running anything.

The simulator keeps ``c`` jobs in flight (``concurrency``). When a job ends, its
update is applied and one of the idle clients, drawn uniformly at random (the
one that just finished included), gets the model. Each client ``i`` has a mean
job time ``D_i`` (its typical time times ``exp(jitter^2 / 2)``, the mean of the
log-normal jitter).

**Who is busy.** The set ``S`` of clients training at a given moment has the
stationary distribution

    P(S) proportional to  prod_{i in S} D_i          (|S| = c),

a product form: the chain satisfies detailed balance, since moving from ``S`` to
``S - {i} + {j}`` happens at rate ``(1/D_i) / (N - c + 1)`` and back at rate
``(1/D_j) / (N - c + 1)``. It is exact for exponential job times, and the
measurement in :mod:`tests.test_queueing` (and notebook 5) shows it holds for
the lesson's nearly fixed ones too. Writing ``e_k`` for the elementary
symmetric polynomials of the ``D``'s, client ``i`` is busy with probability
``b_i = D_i e_{c-1}(D without i) / e_c(D)`` and delivers updates at rate
``lambda_i = b_i / D_i``; its share of the updates is ``p_i = lambda_i / lambda``.
Fast clients are idle, and so drawn, more often, but each of their jobs is short.

**How stale.** While client ``i`` trains, the other ``c - 1`` jobs in flight
form the same kind of system on the other ``N - 1`` clients, with throughput
``lambda_{-i} = (N - c + 1) e_{c-2}(D without i) / e_{c-1}(D without i)``. A job
of client ``i`` therefore meets, on average,

    s_i = lambda_{-i} * D_i

other arrivals: its expected staleness. Averaged over the arrivals this is about
``c - 1`` (Little's law: each arrival finds ``c - 1`` other jobs in flight, and
ages each of them by one version; Koloskova, Stich and Jaggi 2022, Remark 5, make
the same observation for asynchronous SGD). Slow clients are far staler than
fast ones: ``s_i`` grows in proportion to ``D_i``.

**The mean-field shortcut** treats each client as busy independently:
``p_i = 1 / (N - c + lambda D_i)`` with ``lambda`` fixed by ``sum p_i = 1``, and
``s_i = lambda (c - 1) / c * D_i`` ("throughput times duration"). It is close
when there are many clients per slot, and off by up to a quarter with two per
slot (the lesson's 20 clients for 10 slots): ``method="mean-field"`` shows it.

Both describe a long run's steady state. A short run sees less staleness: its
slowest jobs are still in flight when it ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from ..core.clients import typical_job_times
from ..core.config import AsyncConfig

METHODS = ("auto", "exact", "mean-field")
#: The exact method costs about N * N * c operations; above this, "auto" uses mean-field.
EXACT_LIMIT = 50_000_000


@dataclass
class QueueModel:
    """The steady state of the job queue of one config (see the module docstring)."""

    durations: np.ndarray  # D_i: each client's mean job time
    shares: np.ndarray  # p_i: each client's share of the updates
    throughput: float  # lambda: updates per (virtual) second
    staleness: np.ndarray  # s_i: each client's expected staleness
    concurrency: int
    method: str

    @property
    def mean_staleness(self) -> float:
        """The staleness of the average update: sum_i p_i s_i (about c - 1)."""
        return float(np.sum(self.shares * self.staleness))

    @property
    def busy(self) -> np.ndarray:
        """Each client's share of the time spent training: lambda p_i D_i (they add up to c)."""
        return self.throughput * self.shares * self.durations


def _check(config: AsyncConfig, algorithm: str) -> None:
    """The prediction models FedAsync or FedBuff with random client choice, no bound that
    changes who starts, and a server that applies updates instantly: refuse anything else."""
    if algorithm not in ("fedasync", "fedbuff"):
        raise ValueError(f"algorithm={algorithm!r} is invalid: the queue model predicts "
                         "'fedasync' and 'fedbuff' (FedAvg's updates all have staleness 0)")
    if config.client_order != "random":
        raise ValueError(f"client_order={config.client_order!r} is not modelled: the prediction "
                         "assumes client_order='random'")
    if config.apply_time != 0:
        raise ValueError(f"apply_time={config.apply_time!r} is not modelled: the prediction "
                         "assumes the server applies updates instantly (apply_time=0)")
    if config.staleness_policy == "wait" and config.max_staleness is not None:
        raise ValueError("staleness_policy='wait' with a bound is not modelled: it holds clients "
                         "back; use max_staleness=None or the drop policy")


def _log_esp(log_d: np.ndarray, k: int) -> np.ndarray:
    """log e_0 .. log e_k of exp(log_d): the elementary symmetric polynomials, in logs so that
    products of thousands of job times neither overflow nor underflow."""
    out = np.full(k + 1, -np.inf)
    out[0] = 0.0
    for value in log_d:
        out[1:] = np.logaddexp(out[1:], value + out[:-1])
    return out


def _exact(d: np.ndarray, c: int):
    n = len(d)
    log_d = np.log(d)
    log_e = _log_esp(log_d, c)
    own_rate, others_rate = np.empty(n), np.empty(n)
    for i in range(n):
        without = _log_esp(np.delete(log_d, i), c)  # e_k(D without i)
        own_rate[i] = np.exp(without[c - 1] - log_e[c])
        others_rate[i] = (n - c + 1) * np.exp(without[c - 2] - without[c - 1]) if c >= 2 else 0.0
    throughput = float(own_rate.sum())
    return own_rate / throughput, throughput, others_rate * d


def _mean_field(d: np.ndarray, c: int):
    n = len(d)
    if n == c:  # every client always busy: each delivers once per job
        throughput = float(np.sum(1.0 / d))
    else:  # sum_i 1 / (n - c + lam d_i) = 1, decreasing in lam: bisect on log lam
        low, high = 1e-12 / d.max(), 1e12 / d.min()
        for _ in range(200):
            mid = np.sqrt(low * high)
            low, high = (mid, high) if np.sum(1.0 / (n - c + mid * d)) > 1 else (low, mid)
        throughput = float(np.sqrt(low * high))
    shares = 1.0 / (n - c + throughput * d)
    shares /= shares.sum()
    return shares, throughput, throughput * (c - 1) / c * d


def queue_model(config: AsyncConfig, algorithm: str = "fedasync", *,
                latencies: Optional[Sequence[float]] = None,
                sizes: Optional[Sequence[int]] = None, method: str = "auto") -> QueueModel:
    """The steady state of ``config``'s job queue: shares, throughput and staleness per client.

    ``latencies``: each client's typical job time (default: drawn from ``config``, as a
    run draws them; with ``seconds_per_sample > 0`` the training part is added for
    ``sizes``, each client's number of samples, by default those of ``config``'s split).
    ``method``: ``"exact"`` (the product form), ``"mean-field"`` or ``"auto"`` (exact
    unless the config is very large). For FedBuff, staleness counts server steps, one
    per ``buffer_size`` updates.
    """
    _check(config, algorithm)
    if method not in METHODS:
        raise ValueError(f"method={method!r} is invalid: expected one of "
                         f"{', '.join(map(repr, METHODS))}")
    if sizes is None and config.seconds_per_sample > 0:
        from ..core.data import make_federated_data
        sizes = make_federated_data(config).sizes
    if sizes is None:
        sizes = np.ones(config.num_clients, dtype=int)
    if latencies is not None and len(latencies) != config.num_clients:
        raise ValueError(f"latencies has {len(latencies)} entries, expected num_clients="
                         f"{config.num_clients}")
    base = None if latencies is None else np.asarray(latencies, dtype=float)
    d = typical_job_times(config, sizes, base) * np.exp(config.jitter ** 2 / 2)
    n, c = config.num_clients, config.concurrency
    if method == "auto":
        method = "exact" if n * n * c <= EXACT_LIMIT else "mean-field"
    shares, throughput, staleness = (_exact if method == "exact" else _mean_field)(d, c)
    if algorithm == "fedbuff":
        staleness = staleness / config.buffer_size
    return QueueModel(d, shares, throughput, staleness, c, method)


def predicted_staleness(config: AsyncConfig, algorithm: str = "fedasync", **options) -> np.ndarray:
    """Each client's expected staleness in the steady state, one value per client.

    See :func:`queue_model` for ``options`` and the module docstring for the derivation.
    """
    return queue_model(config, algorithm, **options).staleness


def predicted_drop_share(config: AsyncConfig, max_staleness: int, **options) -> float:
    """The share of updates a drop bound of ``max_staleness`` would throw away, predicted.

    Each job of client ``i`` meets about ``a * s_i`` applied updates, where ``a`` is the
    share of updates applied; their number is taken as Poisson with that mean, over the
    log-normal jitter of the job's duration. A dropped update does not move the version,
    so ``a = 1 - sum_i p_i P(staleness_i > max_staleness)``, solved by iterating.
    """
    if not (isinstance(max_staleness, (int, np.integer)) and max_staleness >= 0):
        raise ValueError(f"max_staleness={max_staleness!r} is invalid: expected an integer >= 0")
    from math import lgamma

    model = queue_model(config.replace(max_staleness=None, staleness_policy="drop"), **options)
    z, w = np.polynomial.hermite_e.hermegauss(24)  # E over the jitter z ~ N(0, 1)
    w = w / w.sum()
    jitter = np.exp(config.jitter * z - config.jitter ** 2 / 2)  # duration / its mean
    ks = np.arange(max_staleness + 1)
    log_fact = np.array([lgamma(k + 1.0) for k in ks])
    applied = 1.0
    for _ in range(200):
        means = applied * model.staleness[:, None] * jitter[None, :]  # (clients, nodes)
        with np.errstate(divide="ignore"):
            log_pmf = (ks[None, None, :] * np.log(means[..., None]) - means[..., None]
                       - log_fact[None, None, :])
        kept = np.exp(log_pmf).sum(-1) @ w  # P(staleness <= bound), per client
        new = 1.0 - float(np.sum(model.shares * (1.0 - kept)))
        if abs(new - applied) < 1e-10:
            break
        applied = new
    return 1.0 - applied
