"""Bounded staleness, two ways.

*Drop* (FedAsync's bound): an update more than ``max_staleness`` versions old
is rejected when it arrives. No client ever waits, but the rejected update's
computation is thrown away.

*Wait* (bounded-staleness SGD, in the spirit of the stale synchronous
parallel model): a client may not *start* a new job if that could let an
update arrive more than ``max_staleness`` versions old. The oldest job in
flight (base version b) is the one at risk: if every other job in flight,
and the new one, landed before it, it would arrive

    (version - b) + len(in flight)      versions old       (after the start),

so a client may start only while that is at most ``max_staleness``. Each
later arrival moves the version by at most one and frees one job, so the
bound holds for every update: nothing is dropped and no update is ever
staler than the bound. The price is idle clients: fast ones wait for the
slowest to land, and a bound of 0 allows one job at a time.
"""

from __future__ import annotations

from typing import Callable, FrozenSet, Iterable, Optional

from ..core.config import AsyncConfig
from .hook_results import as_bool

AcceptRule = Callable[[int, Optional[int]], bool]
MayStartRule = Callable[[int, Iterable[int], Optional[int]], bool]


def accept(staleness: int, max_staleness: Optional[int]) -> bool:
    """Drop policy: keep an update whose staleness is at most the bound (inclusive)."""
    return max_staleness is None or staleness <= max_staleness


def may_start(version: int, in_flight_base_versions: Iterable[int],
              max_staleness: Optional[int]) -> bool:
    """Wait policy: may a client start a new job at server ``version`` now?

    Yes while the oldest job in flight could not arrive too stale even if every
    other job, the new one included, landed first:
    ``version - min(bases) + len(bases) <= max_staleness``.
    """
    bases = list(in_flight_base_versions)
    if max_staleness is None or not bases:
        return True
    return version - min(bases) + len(bases) <= max_staleness


class StalenessBound:
    """``config.max_staleness`` enforced by ``config.staleness_policy``, for any algorithm.

    ``accept`` replaces :func:`accept` (drop policy) and ``may_start`` replaces
    :func:`may_start` (wait policy), as the learner's code of Exercise 1 does.
    A hook that the chosen policy never calls raises, naming it.
    """

    def __init__(self, config: AsyncConfig, accept: Optional[AcceptRule] = None,
                 may_start: Optional[MayStartRule] = None, algorithm: str = "fedasync"):
        unread = {"accept": accept, "may_start": may_start}
        del unread[self.hook_for(config)]
        for name, hook in unread.items():
            if hook is not None:
                raise ValueError(
                    f"{name}= is not read by {algorithm} under staleness_policy="
                    f"{config.staleness_policy!r}: the {config.staleness_policy} policy calls "
                    f"{self.hook_for(config)!r}; pass that hook, or change staleness_policy")
        self.config = config
        self._accept = accept or globals()["accept"]
        self._may_start = may_start or globals()["may_start"]

    @staticmethod
    def hook_for(config: AsyncConfig) -> str:
        """The hook the config's staleness policy calls."""
        return "may_start" if config.staleness_policy == "wait" else "accept"

    @staticmethod
    def fields_read(config: AsyncConfig) -> FrozenSet[str]:
        return frozenset({"max_staleness", "staleness_policy"})

    def accepts(self, staleness: int) -> bool:
        """Drop policy: False when the update is older than ``max_staleness``.
        Under the wait policy nothing is dropped: the bound acts before a job starts."""
        if self.config.staleness_policy == "wait":
            return True
        return as_bool(self._accept(staleness, self.config.max_staleness), "accept")

    def allows_start(self, version: int, in_flight_base_versions: Iterable[int]) -> bool:
        """Wait policy: may a client start a job now? Always, under the drop policy."""
        if self.config.staleness_policy != "wait":
            return True
        return as_bool(self._may_start(version, list(in_flight_base_versions),
                                       self.config.max_staleness), "may_start")
