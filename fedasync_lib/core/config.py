"""Configuration of one asynchronous federated-learning experiment.

Every number that changes a run lives in :class:`AsyncConfig`, so a run is a
pure function of its config: same config, same history. The config checks
itself when it is built; a bad value raises ``ValueError`` naming the field,
the value and the allowed range, before any training starts.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import numbers
import reprlib
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

STALENESS_FUNCTIONS = ("constant", "polynomial", "hinge", "exponential")
MIXING_RULES = ("fedasync", "sample_damping")
STALENESS_POLICIES = ("drop", "wait")
UPDATE_ORDERS = ("arrival", "freshest")
CLIENT_ORDERS = ("random", "fastest", "fewest")
DATASETS = ("synthetic", "digits")
SERVER_OPTIMIZERS = ("sgd", "momentum", "adam")
AVAILABILITY_MODELS = ("always", "daily", "trace")


@dataclass(frozen=True)
class AsyncConfig:
    """All settings of one run. Times are in virtual seconds.

    Task and model (as in the original tutorial):
        num_updates: client updates that reach the server, applied or rejected.
        num_clients: clients that hold data.
        input_dim, hidden_dim, num_classes: the two-layer MLP. ``input_dim``
            applies to the synthetic task; digits always has 64 pixels.
        learning_rate, batch_size, local_epochs: each client's local SGD.
        max_staleness: updates older than this many server versions are
            rejected; ``None`` accepts any staleness.
        staleness_weight_decay: the base ``d`` of the exponential weighting d**s.
        seed: the one seed every random choice of the run derives from.

    Asynchrony (what makes staleness appear):
        concurrency: clients training at the same time (1 = sequential).
        mean_latency: the median client's virtual seconds per job when
            ``seconds_per_sample`` is 0; otherwise the part of a job that does
            not depend on how much it trains (receiving and sending the model).
        seconds_per_sample: virtual seconds the median client needs to train
            on one sample once (0: a job's time does not depend on its work).
            Client i's typical job time is then
            ``exp(heterogeneity * z_i) * (mean_latency + seconds_per_sample *
            local_epochs * n_i)`` for its ``n_i`` samples: more local epochs,
            or more data, make its jobs longer (the device model of notebook 5).
        heterogeneity: sigma of the log-normal spread of client speeds. Client
            i's typical job time is ``mean_latency * exp(heterogeneity * z_i)``
            with z_i ~ N(0, 1); 0 makes all clients equally fast.
        jitter: sigma of the per-job log-normal noise on top of that.
        staleness_policy: how ``max_staleness`` is enforced. ``"drop"``
            rejects a too-stale update on arrival; ``"wait"`` (bounded-staleness
            SGD) makes clients wait before starting a job instead (see
            :mod:`fedasync_lib.bounded`).
        apply_time: virtual seconds the server needs to apply one update
            (0: instantly). Updates that arrive meanwhile wait in a queue, and
            a client whose update waits is handed the model again only once
            the server has taken its update up, so the queue never holds more
            than one update per client.
        update_order, client_order: the scheduler's rules (see
            :mod:`fedasync_lib.scheduling`): which waiting update is applied
            next (``arrival`` or ``freshest``), which idle client is handed
            the model next (``random``, ``fastest`` or ``fewest``).

    Clients that come and go (see :mod:`fedasync_lib.core.availability`):
        availability: ``"always"`` (every client, all the time), ``"daily"``
            (a daily cycle, each client with its own phase) or ``"trace"``
            (``availability_trace``). Only available clients are handed the model.
        availability_share, availability_amplitude: the daily cycle's mean
            share of available hours in (0, 1], and how far it swings over the
            day in [0, 1] (0: the same every hour).
        day_length: virtual seconds of one day (24 hours) of the daily cycle.
        availability_trace: per client, the intervals ``(start, end)`` of
            virtual time when it is available, sorted and not overlapping.
        dropout: the probability in [0, 1) that a started job never comes back
            (the device left). Its slot is freed at ``job_timeout``.
        job_timeout: ``None`` (wait for every job) or virtual seconds after
            its start at which the server gives up on a job that has not come
            back: its slot is freed, and if it was only slow, its late result is
            never applied (``History.dropped``). Needed when ``dropout`` > 0.

    Aggregation:
        mixing: ``"fedasync"``: alpha_t = mixing_alpha * s(staleness)
            (Xie et al. 2019); ``"sample_damping"``: the original tutorial's
            w / (w + damping_constant) with w = s(staleness) * num_samples.
        mixing_alpha: FedAsync's alpha in (0, 1].
        damping_constant: the constant of the ``sample_damping`` rule.
        staleness: weighting function s, one of constant, polynomial, hinge,
            exponential (see :mod:`fedasync_lib.staleness`).
        poly_a: exponent of the polynomial rule (1 + s)^-a.
        hinge_a, hinge_b: slope and threshold of the hinge rule.
        buffer_size, server_lr: FedBuff's buffer of updates and its server
            learning rate (Nguyen et al. 2022); FedAvg uses neither.
        oversample, round_deadline: synchronous FedAvg as production runs it
            (Bonawitz et al. 2019): a round asks ``ceil(oversample *
            concurrency)`` clients and closes when ``concurrency`` of them have
            reported, or ``round_deadline`` virtual seconds after it started,
            whichever comes first; results that come later are discarded
            (``History.discarded``). 1.0 and ``None``: every client asked is
            waited for.
        buffer_window: ``None`` (FedBuff steps every ``buffer_size`` updates) or
            a time window in virtual seconds: FedBuff then steps on what the server
            took up within ``buffer_window`` seconds of the first update in its
            buffer, however many (0: every update at once, as ``buffer_size=1``).
        server_optimizer: FedBuff's server step on the buffer's averaged change:
            ``"sgd"`` (as published), ``"momentum"`` or ``"adam"`` (FedAdam); see
            :mod:`fedasync_lib.algorithms.server_optimizers`.
        server_momentum: the momentum's beta, or Adam's beta1, in [0, 1).
        server_beta2, server_epsilon: Adam's beta2 in [0, 1) and its tau > 0.

    Data and evaluation:
        dataset: ``"synthetic"`` (the tutorial's task) or ``"digits"``
            (scikit-learn's 1,797 handwritten 8x8 digits).
        samples_per_client: training samples per client (synthetic only).
        test_size: held-out samples (synthetic); digits holds out 20 %.
        dirichlet_alpha: ``None`` splits data IID; a positive value draws
            each class's share per client from Dirichlet(alpha): small values
            give strong label skew.
        eval_every: evaluate the server model every this many updates.
        track_grad_norm: also record, at each evaluation, ``grad_norm_sq``: the
            squared gradient norm of the clients' uniform average objective, the
            quantity the convergence theorems bound (notebook 5). It costs a
            backward pass over every training sample per evaluation (about 14 %
            of the lesson's default run natively, a third in the browser:
            docs/performance.md), so it is off unless asked for.
    """

    # The original tutorial's fields and defaults.
    num_updates: int = 200
    num_clients: int = 20
    input_dim: int = 32
    hidden_dim: int = 64
    num_classes: int = 10
    learning_rate: float = 0.01
    batch_size: int = 32
    local_epochs: int = 2
    max_staleness: Optional[int] = 10
    staleness_weight_decay: float = 0.5
    seed: int = 42

    # Asynchrony.
    concurrency: int = 10
    mean_latency: float = 1.0
    seconds_per_sample: float = 0.0
    heterogeneity: float = 0.75
    jitter: float = 0.2
    staleness_policy: str = "drop"
    apply_time: float = 0.0
    update_order: str = "arrival"
    client_order: str = "random"

    # Clients that come and go.
    availability: str = "always"
    availability_share: float = 0.5
    availability_amplitude: float = 1.0
    day_length: float = 100.0
    availability_trace: Optional[tuple] = None
    dropout: float = 0.0
    job_timeout: Optional[float] = None

    # Aggregation.
    mixing: str = "fedasync"
    mixing_alpha: float = 0.6
    damping_constant: float = 100.0
    staleness: str = "polynomial"
    poly_a: float = 0.5
    hinge_a: float = 10.0
    hinge_b: int = 4
    buffer_size: int = 10
    server_lr: float = 1.0
    buffer_window: Optional[float] = None
    oversample: float = 1.0
    round_deadline: Optional[float] = None
    server_optimizer: str = "sgd"
    server_momentum: float = 0.9
    server_beta2: float = 0.99
    server_epsilon: float = 1e-3

    # Data and evaluation.
    dataset: str = "synthetic"
    samples_per_client: int = 200
    test_size: int = 1000
    dirichlet_alpha: Optional[float] = None
    eval_every: int = 20
    track_grad_norm: bool = False

    def __post_init__(self) -> None:
        # A numpy scalar (np.int64(4) from np.arange, np.float32 from a computation) is
        # as good as the Python number it holds: store that number, so that the config
        # prints, hashes and compares the same whichever was given.
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.generic) and not isinstance(value, np.bool_):
                object.__setattr__(self, f.name, value.item())
        _check_int(self, "num_updates", 1, 1_000_000)
        _check_int(self, "num_clients", 1, 10_000)
        _check_int(self, "input_dim", 1, 4096)
        _check_int(self, "hidden_dim", 1, 4096)
        _check_int(self, "num_classes", 2, 1000)
        _check_float(self, "learning_rate", 0.0, 10.0, low_open=True)
        _check_int(self, "batch_size", 1, 100_000)
        _check_int(self, "local_epochs", 1, 1000)
        if self.max_staleness is not None:
            _check_int(self, "max_staleness", 0, 1_000_000, none_ok=True)
        _check_float(self, "staleness_weight_decay", 0.0, 1.0, low_open=True)
        _check_int(self, "seed", 0, 2**63 - 1)

        _check_int(self, "concurrency", 1, self.num_clients,
                   hint="at most num_clients: a client trains one job at a time")
        _check_float(self, "mean_latency", 0.0, 1e6, low_open=True)
        _check_float(self, "seconds_per_sample", 0.0, 1e3)
        _check_float(self, "heterogeneity", 0.0, 5.0)
        _check_float(self, "jitter", 0.0, 5.0)
        _check_choice(self, "staleness_policy", STALENESS_POLICIES)
        _check_float(self, "apply_time", 0.0, 1e6)
        _check_choice(self, "update_order", UPDATE_ORDERS)
        _check_choice(self, "client_order", CLIENT_ORDERS)
        _check_choice(self, "availability", AVAILABILITY_MODELS)
        _check_float(self, "availability_share", 0.0, 1.0, low_open=True)
        _check_float(self, "availability_amplitude", 0.0, 1.0)
        _check_float(self, "day_length", 0.0, 1e9, low_open=True)
        _check_trace(self)
        _check_float(self, "dropout", 0.0, 1.0, high_open=True)
        if self.job_timeout is not None:
            _check_float(self, "job_timeout", 0.0, 1e6, low_open=True)
        if self.dropout > 0 and self.job_timeout is None:
            raise ValueError(f"dropout={self.dropout!r} needs job_timeout: a job that never comes "
                             "back frees its slot only when the server gives up on it (a finite "
                             "number of virtual seconds in (0, 1e6])")

        _check_choice(self, "mixing", MIXING_RULES)
        _check_float(self, "mixing_alpha", 0.0, 1.0, low_open=True)
        _check_float(self, "damping_constant", 0.0, 1e9, low_open=True)
        _check_choice(self, "staleness", STALENESS_FUNCTIONS)
        _check_float(self, "poly_a", 0.0, 100.0)
        _check_float(self, "hinge_a", 0.0, 1e6)
        _check_int(self, "hinge_b", 0, 1_000_000)
        _check_int(self, "buffer_size", 1, 10_000)
        _check_float(self, "server_lr", 0.0, 100.0, low_open=True)
        if self.buffer_window is not None:
            _check_float(self, "buffer_window", 0.0, 1e6)
        _check_float(self, "oversample", 1.0, 100.0)
        if self.round_deadline is not None:
            _check_float(self, "round_deadline", 0.0, 1e6, low_open=True)
        _check_choice(self, "server_optimizer", SERVER_OPTIMIZERS)
        _check_float(self, "server_momentum", 0.0, 1.0, high_open=True)
        _check_float(self, "server_beta2", 0.0, 1.0, high_open=True)
        _check_float(self, "server_epsilon", 0.0, 1e3, low_open=True)

        _check_choice(self, "dataset", DATASETS)
        _check_int(self, "samples_per_client", 1, 1_000_000)
        _check_int(self, "test_size", 1, 10_000_000)
        if self.dirichlet_alpha is not None:
            _check_float(self, "dirichlet_alpha", 0.0, 1e6, low_open=True)
        _check_int(self, "eval_every", 1, 1_000_000)
        _check_bool(self, "track_grad_norm")
        if self.dataset == "digits" and self.num_classes != 10:
            raise ValueError(
                f"num_classes={self.num_classes!r} does not fit dataset='digits', "
                "which has exactly 10 classes; use num_classes=10"
            )

    @property
    def feature_dim(self) -> int:
        """Number of input features the model sees for this dataset."""
        return 64 if self.dataset == "digits" else self.input_dim

    def replace(self, **changes: Any) -> "AsyncConfig":
        """A copy with some fields changed, validated again. An unknown name raises,
        naming it and the nearest setting."""
        names = [f.name for f in dataclasses.fields(self)]
        for key in changes:
            if key not in names:
                near = difflib.get_close_matches(key, names, n=1)
                hint = f"; did you mean {near[0]!r}?" if near else ""
                raise TypeError(f"AsyncConfig has no setting {key!r}{hint} "
                                f"(settings: {', '.join(names)})")
        return dataclasses.replace(self, **changes)


def _check_int(cfg: AsyncConfig, name: str, low: int, high: int,
               hint: str = "", none_ok: bool = False) -> None:
    value = getattr(cfg, name)
    is_int = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not is_int or not low <= value <= high:
        allowed = f"an integer in [{low}, {high}]"
        if none_ok:
            allowed += " or None"
        if hint:
            allowed += f" ({hint})"
        raise ValueError(f"{name}={value!r} is invalid: expected {allowed}")


def _check_float(cfg: AsyncConfig, name: str, low: float, high: float,
                 low_open: bool = False, high_open: bool = False) -> None:
    value = getattr(cfg, name)
    is_number = isinstance(value, numbers.Real) and not isinstance(value, bool)
    ok = is_number and math.isfinite(value) and (value < high if high_open else value <= high) and (
        value > low if low_open else value >= low)
    if not ok:
        bracket = "(" if low_open else "["
        closing = ")" if high_open else "]"
        raise ValueError(
            f"{name}={value!r} is invalid: expected a finite number in "
            f"{bracket}{low}, {high}{closing}"
        )


def _check_trace(cfg: AsyncConfig) -> None:
    """``availability_trace`` fits ``availability``; stored as a tuple (per client) of
    ``(start, end)`` float tuples, sorted, each ``0 <= start < end``, none overlapping."""
    trace = cfg.availability_trace
    if trace is None:
        if cfg.availability == "trace":
            raise ValueError("availability='trace' needs availability_trace: per client, the "
                             "intervals (start, end) of virtual time when it is available")
        return
    try:
        if isinstance(trace, (str, bytes)):
            raise TypeError
        clients = [[(float(s), float(e)) for s, e in c] for c in trace]
    except (TypeError, ValueError):
        raise ValueError(f"availability_trace={reprlib.repr(trace)} is invalid: expected None or, "
                         "per client, a sequence of (start, end) pairs of numbers") from None
    if cfg.availability != "trace":
        raise ValueError(f"availability_trace is not read with availability={cfg.availability!r}: "
                         "set availability='trace', or leave availability_trace=None")
    if len(clients) != cfg.num_clients:
        raise ValueError(f"availability_trace has {len(clients)} clients: expected "
                         f"num_clients={cfg.num_clients}")
    for i, intervals in enumerate(clients):
        end = 0.0
        for start, stop in intervals:
            if not (math.isfinite(start) and math.isfinite(stop) and end <= start < stop):
                raise ValueError(
                    f"availability_trace of client {i} has the interval ({start:g}, {stop:g}): "
                    f"expected finite 0 <= start < end, sorted, not overlapping (the previous "
                    f"one ended at {end:g})")
            end = stop
    object.__setattr__(cfg, "availability_trace", tuple(tuple(c) for c in clients))


def _check_bool(cfg: AsyncConfig, name: str) -> None:
    value = getattr(cfg, name)
    if isinstance(value, np.bool_):
        object.__setattr__(cfg, name, bool(value))
    elif not isinstance(value, bool):
        raise ValueError(f"{name}={value!r} is invalid: expected one of True, False")


def _check_choice(cfg: AsyncConfig, name: str, choices: tuple[str, ...]) -> None:
    value = getattr(cfg, name)
    if value not in choices:
        raise ValueError(
            f"{name}={value!r} is invalid: expected one of {', '.join(map(repr, choices))}"
        )
