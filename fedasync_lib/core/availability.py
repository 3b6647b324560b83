"""Availability: when a client may be handed the model.

Phones train when they are idle, charging and on Wi-Fi: mostly at night, in
their owner's time zone. So the clients a server can reach change over the
day, and a round or a slot may have to wait for one. Three models, chosen by
``AsyncConfig.availability``:

* ``"always"`` (the default): every client, all the time.
* ``"daily"``: a day of ``day_length`` virtual seconds has 24 hours. In hour
  ``h`` client ``i`` is available with probability

      p_i(h) = clip(share * (1 + amplitude * sin(2 pi ((h + 1/2) / 24 + phi_i))), 0, 1),

  drawn once per client and hour, independently; ``phi_i`` ~ U[0, 1) is the
  client's own phase (its time zone). ``share`` is ``availability_share`` and
  ``amplitude`` is ``availability_amplitude``. Over a day the sine sums to
  0, so a client is available for ``share`` of the hours on average, unless the
  clip cuts the peak (share > 1/2 with a large amplitude):
  :meth:`DailyCycle.implied_share` gives the exact long-run share either way.
  FLGo's synthetic availability modes draw availability from a probability in
  the same way (a probability per client and moment, then a coin).
* ``"trace"``: ``availability_trace`` gives, per client, the intervals
  ``[start, end)`` of virtual time when it is available, e.g. converted from a
  measured trace such as FedScale's. After its last interval a client is
  gone for good.

Availability decides who may *start* a job; a job once started runs to its
end (FLGo's split, too: whether a started job comes back is ``dropout``,
:mod:`fedasync_lib.core.server`).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import List, Sequence, Tuple

import numpy as np

from . import seeding
from .config import AsyncConfig

HOURS_PER_DAY = 24

Interval = Tuple[float, float]


class Availability:
    """Always available: the default."""

    #: True when every client is available at every moment (the loop skips the checks).
    always = True

    def is_available(self, client: int, time: float) -> bool:
        return True

    def next_available(self, client: int, time: float) -> float:
        """The first moment ``>= time`` when ``client`` is available (``inf``: never)."""
        return time


class DailyCycle(Availability):
    """Hour by hour, each client available with its own daily probability (module docstring)."""

    always = False

    def __init__(self, config: AsyncConfig):
        self.share = config.availability_share
        self.amplitude = config.availability_amplitude
        self.hour = config.day_length / HOURS_PER_DAY
        self.seed = config.seed
        self.phase = seeding.rng(config.seed, "availability-phase").random(config.num_clients)
        self._days = lru_cache(maxsize=4096)(self._draw_day)

    def probabilities(self, client: int) -> np.ndarray:
        """``p_i(h)`` for the 24 hours of a day (the same every day)."""
        h = (np.arange(HOURS_PER_DAY) + 0.5) / HOURS_PER_DAY
        p = self.share * (1 + self.amplitude * np.sin(2 * np.pi * (h + self.phase[client])))
        return np.clip(p, 0.0, 1.0)

    def implied_share(self, client: int) -> float:
        """The long-run share of hours in which ``client`` is available: the mean of its
        24 hourly probabilities."""
        return float(self.probabilities(client).mean())

    def _draw_day(self, client: int, day: int) -> np.ndarray:
        u = seeding.rng(self.seed, "availability", client, day).random(HOURS_PER_DAY)
        return u < self.probabilities(client)

    def _hour_index(self, time: float) -> int:
        return math.floor(time / self.hour)

    def available_in_hour(self, client: int, index: int) -> bool:
        day, hour = divmod(index, HOURS_PER_DAY)
        return bool(self._days(client, day)[hour])

    def is_available(self, client: int, time: float) -> bool:
        return self.available_in_hour(client, self._hour_index(time))

    def next_available(self, client: int, time: float) -> float:
        index = self._hour_index(time)
        if self.available_in_hour(client, index):
            return time
        probabilities = self.probabilities(client)
        if not probabilities.any():
            return math.inf
        # each day has an hour with p > 0: a run of unavailable hours ends with probability 1
        while True:
            index += 1
            if self.available_in_hour(client, index):
                start = index * self.hour
                while self._hour_index(start) < index:  # floating point: land inside the hour
                    start = float(np.nextafter(start, math.inf))
                return start


class Trace(Availability):
    """Each client available exactly within its given intervals ``[start, end)``."""

    always = False

    def __init__(self, intervals: Sequence[Sequence[Interval]]):
        self.intervals: List[Tuple[Interval, ...]] = [tuple(map(tuple, c)) for c in intervals]
        self.starts = [np.array([s for s, _ in c], dtype=float) for c in self.intervals]

    def _interval(self, client: int, time: float) -> int:
        """Index of the last interval that starts at or before ``time`` (-1: none)."""
        return int(np.searchsorted(self.starts[client], time, side="right")) - 1

    def is_available(self, client: int, time: float) -> bool:
        k = self._interval(client, time)
        return k >= 0 and time < self.intervals[client][k][1]

    def next_available(self, client: int, time: float) -> float:
        if self.is_available(client, time):
            return time
        k = self._interval(client, time) + 1
        return self.intervals[client][k][0] if k < len(self.intervals[client]) else math.inf


def availability_model(config: AsyncConfig) -> Availability:
    """The availability model that ``config.availability`` names."""
    if config.availability == "daily":
        return DailyCycle(config)
    if config.availability == "trace":
        return Trace(config.availability_trace)
    return Availability()


def available_share(model: Availability, client: int, until: float, step: float) -> float:
    """The share of the moments ``0, step, 2 step, ...`` before ``until`` at which ``client``
    is available: what a run sees of the model, for tests and plots."""
    times = np.arange(0.0, until, step)
    return float(np.mean([model.is_available(client, t) for t in times]))
