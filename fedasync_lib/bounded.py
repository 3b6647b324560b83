"""Bounded staleness, two ways.

*Drop* (FedAsync's bound): an update more than ``max_staleness`` versions old
is rejected when it arrives. No client ever waits, but the rejected update's
computation is thrown away.

*Wait* (bounded-staleness SGD, in the spirit of the stale synchronous
parallel model): a client may not *start* a new job while the server is more
than ``max_staleness`` versions ahead of the oldest job still in flight. The
fast clients wait for the slowest one to catch up: nothing is thrown away,
but clients sit idle. Since the jobs already in flight can still land, an
update's staleness under this policy can reach ``max_staleness`` plus the
number of other jobs in flight, and no more.
"""

from __future__ import annotations

from typing import Iterable, Optional


def accept(staleness: int, max_staleness: Optional[int]) -> bool:
    """Drop policy: keep an update whose staleness is at most the bound (inclusive)."""
    return max_staleness is None or staleness <= max_staleness


def may_start(version: int, in_flight_base_versions: Iterable[int],
              max_staleness: Optional[int]) -> bool:
    """Wait policy: may a client start a new job at server ``version`` now?

    Yes unless the server is more than ``max_staleness`` versions ahead of the
    oldest job in flight, that is unless ``version - min(bases) > max_staleness``.
    """
    bases = list(in_flight_base_versions)
    if max_staleness is None or not bases:
        return True
    return version - min(bases) <= max_staleness
