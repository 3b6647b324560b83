"""Which worker holds which client's data: the placement of a deployed run.

In federated learning a client's data stays on its device and only models travel. A
deployed run emulates that: each client is assigned one worker (its *home*), its data is
sent to that worker once, before the run starts, and every job of the client is pinned
to its home. No other worker ever holds the client's data.

When a worker is lost, its clients move together: each goes to the surviving worker
that holds the fewest clients (ties to the lowest address), and their data is sent
there once more. :class:`Placement` is the bookkeeping only; the Dask driver sends data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Sequence


@dataclass
class Placement:
    """``home[client_id]``: the address of the worker that holds the client's data."""

    home: Dict[int, str] = field(default_factory=dict)

    @classmethod
    def spread(cls, clients: Iterable[int], workers: Sequence[str]) -> "Placement":
        """Deal the clients out in turn over the workers in address order, so that worker
        loads differ by at most one client."""
        workers = sorted(workers)
        if not workers:
            raise ValueError("workers is empty: a placement needs at least one worker")
        return cls({c: workers[i % len(workers)] for i, c in enumerate(sorted(clients))})

    def workers(self) -> List[str]:
        """The workers that hold at least one client, in address order."""
        return sorted(set(self.home.values()))

    def clients_on(self, worker: str) -> List[int]:
        return sorted(c for c, w in self.home.items() if w == worker)

    def move_from(self, lost: str, survivors: Sequence[str]) -> Dict[int, str]:
        """Move the clients of worker ``lost`` to ``survivors``, each to the one that holds
        the fewest clients at that moment; returns ``{client_id: new home}``."""
        survivors = sorted(w for w in survivors if w != lost)
        if not survivors:
            raise ValueError(f"no worker is left to take the clients of {lost}")
        load = {w: len(self.clients_on(w)) for w in survivors}
        moved: Dict[int, str] = {}
        for client in self.clients_on(lost):
            target = min(survivors, key=lambda w: (load[w], w))
            self.home[client] = target
            load[target] += 1
            moved[client] = target
        return moved
