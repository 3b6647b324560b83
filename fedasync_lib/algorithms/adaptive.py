"""Adaptive mixing: a rate alpha_t that reacts to more than staleness.

FedAsync already adapts alpha to staleness: alpha_t = alpha * s(t). This
module adds a second signal, how far the client's model lies from the
server's, as a trust region:

    d = ||x_client - x_server|| / ||x_server||          (relative distance)
    alpha_t = alpha * (1 + t)^(-a) * min(1, scale / d)

An update that lands within ``scale`` of the server model (in relative
terms) keeps FedAsync's rate. One that lands far away, typically a very
stale update or one from a client whose data differs a lot, is damped in
proportion. How far updates land depends on the trajectory: measure it on the
runs the rule will make (``experiments.update_distances``, which mixes with staleness
weighting). Exercise E3 prints these distances and sets its scale near their median, so
that about half of the updates are damped; the default ``scale=0.1`` is a round number,
not a calibration.
"""

from __future__ import annotations

from typing import Callable, Optional

from .aggregator import MixingContext
from ..core.model import State


def model_distance(a: State, b: State) -> float:
    """Relative L2 distance ||a - b|| / ||b|| over all parameters.

    When ``b`` is all zeros there is no scale to divide by: the plain distance ||a||.
    """
    diff = float(sum(((a[k] - b[k]) ** 2).sum() for k in b)) ** 0.5
    norm = float(sum((b[k] ** 2).sum() for k in b)) ** 0.5
    return diff / norm if norm > 0 else diff


def staleness_only(a: float = 0.5) -> Callable[[MixingContext], float]:
    """FedAsync's rule alpha * (1 + t)^-a, as a mixing rule."""

    def rule(ctx: MixingContext) -> float:
        return ctx.config.mixing_alpha * (1.0 + ctx.staleness) ** (-a)

    rule.cache_key = f"staleness_only(a={a!r})"  # a library rule: runs with it may be cached
    return rule


def staleness_and_distance(a: float = 0.5, scale: float = 0.1) -> Callable[[MixingContext], float]:
    """alpha * (1 + t)^-a * min(1, scale / d): staleness weighting plus a trust region."""
    if not scale > 0:
        raise ValueError(f"scale={scale!r} is invalid: expected a number > 0")

    def rule(ctx: MixingContext) -> float:
        d = model_distance(ctx.update.state_dict, ctx.server_state)
        trust = 1.0 if d <= scale else scale / d
        return ctx.config.mixing_alpha * (1.0 + ctx.staleness) ** (-a) * trust

    rule.cache_key = f"staleness_and_distance(a={a!r}, scale={scale!r})"
    return rule


class ParticipationWeighted:
    """A FedAsync mixing rule that gives rarely heard clients more weight and often heard ones
    less: the fast-client bias, corrected online.

        alpha_t = min(cap, alpha * s(t) * w_i),     w_i = (mean interval of client i) / N

    The interval of client ``i`` is the number of server versions between two of its
    updates, and ``w_i`` is the mean of the intervals seen so far (each at most
    ``cutoff``), divided by the number of clients ``N``. A client heard as often as every
    other one comes back every ``N`` versions and keeps FedAsync's rate (``w = 1``); a
    fast client heard four times as often gets a quarter of it, a slow one more, up to
    ``cap``. Since each version is one arrival, the intervals' reciprocals add up to 1,
    so the arrival-weighted mean of ``w`` is 1: the average rate stays ``alpha`` and only
    its distribution over clients changes, until ``cap`` cuts the largest weights. ``s``
    is the config's staleness function. A client's first update keeps FedAsync's rate
    (nothing is known of it yet); its interval from the start is recorded for the next.

    This follows FedAU (Wang and Ji, ICLR 2024): weight each update by an online estimate
    of its client's mean interval between participations, with a cutoff. Changed for an
    asynchronous server: intervals are counted in server versions, not rounds; the
    weight is divided by ``N`` so that a uniformly heard client keeps FedAsync's rate; and
    it multiplies FedAsync's mixing rate, capped so that ``alpha_t`` stays a weight of a
    convex combination (``cap``, by default ``mixing_alpha``, so that no update moves the
    model more than FedAsync would let it).

    The rule keeps state (each client's intervals). It starts afresh when the server's
    version goes back (a new run), or on :meth:`reset`.
    """

    def __init__(self, cutoff: int | None = None, cap: float | None = None):
        if cutoff is not None and not (isinstance(cutoff, int) and cutoff >= 1):
            raise ValueError(f"cutoff={cutoff!r} is invalid: expected an integer >= 1 or None "
                             "(default: 10 times the number of clients)")
        if cap is not None and not (isinstance(cap, (int, float)) and 0 < cap <= 1):
            raise ValueError(f"cap={cap!r} is invalid: expected a number in (0, 1] or None "
                             "(default: the config's mixing_alpha)")
        self.cutoff, self.cap = cutoff, cap
        self.reset()

    @property
    def cache_key(self) -> Optional[str]:
        """Names the rule for the run cache: a run with it starts from an empty state. A
        subclass (a learner's variant) has no key, so its runs are never taken from the cache."""
        if type(self) is not ParticipationWeighted:
            return None
        return f"participation_weighted(cutoff={self.cutoff!r}, cap={self.cap!r})"

    def reset(self) -> None:
        self.last: dict = {}  # client id -> server version at its last update
        self.total: dict = {}  # client id -> sum of its recorded intervals
        self.count: dict = {}  # client id -> number of recorded intervals
        self.version = -1

    def weight(self, client_id: int, num_clients: int) -> float:
        """``w_i``: the client's mean interval over ``N`` (1 before anything is known)."""
        if not self.count.get(client_id):
            return 1.0
        return self.total[client_id] / self.count[client_id] / num_clients

    def __call__(self, ctx: MixingContext) -> float:
        cfg, client = ctx.config, ctx.update.client_id
        if ctx.version < self.version:  # the version went back: a new run
            self.reset()
        self.version = ctx.version
        from . import staleness as staleness_fns

        w = self.weight(client, cfg.num_clients)
        cutoff = self.cutoff or 10 * cfg.num_clients
        interval = ctx.version - self.last.get(client, -1)
        self.total[client] = self.total.get(client, 0) + min(interval, cutoff)
        self.count[client] = self.count.get(client, 0) + 1
        self.last[client] = ctx.version
        cap = self.cap if self.cap is not None else cfg.mixing_alpha
        return min(cap, cfg.mixing_alpha * staleness_fns.from_config(cfg)(ctx.staleness) * w)


def participation_weighted(cutoff: int | None = None, cap: float | None = None) -> ParticipationWeighted:
    """A fresh :class:`ParticipationWeighted` mixing rule (sensible defaults with no arguments)."""
    return ParticipationWeighted(cutoff, cap)
