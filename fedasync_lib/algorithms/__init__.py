"""The algorithms: each one a policy of the one event loop (:mod:`fedasync_lib.core.policy`).

======== ============================================ =====================================
name     what the server does with an update          hooks (the learner's code)
======== ============================================ =====================================
fedasync mixes it in at once, alpha * s(staleness)    mixing_rule, accept / may_start
fedbuff  buffers its change; a step every K updates   buffer_step, accept / may_start
fedavg   waits for the round, averages by sample size (none)
======== ============================================ =====================================

``accept`` is read under ``staleness_policy="drop"``, ``may_start`` under ``"wait"``.
A hook an algorithm does not read raises a ``ValueError`` that names it.
"""

from __future__ import annotations

import inspect
from typing import Any, Dict, FrozenSet, List, Type

from ..core.config import AsyncConfig
from ..core.policy import ALGORITHM_FIELDS, Policy
from .fedasync import FedAsync
from .fedavg import FedAvg
from .fedbuff import FedBuff

ALGORITHMS: Dict[str, Type[Policy]] = {"fedasync": FedAsync, "fedbuff": FedBuff, "fedavg": FedAvg}


def make_policy(algorithm: str, config: AsyncConfig, **hooks: Any) -> Policy:
    """The policy of ``algorithm`` for ``config``, with the learner's ``hooks`` plugged in."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm={algorithm!r} is invalid: expected one of "
                         f"{', '.join(map(repr, ALGORITHMS))}")
    for name in hooks:
        if name not in hooks_of(algorithm):
            raise ValueError(f"{name}= is not read by {algorithm}: it takes "
                             f"{', '.join(hooks_of(algorithm)) or 'no hooks'}")
    return ALGORITHMS[algorithm](config, **hooks)


def hooks_of(algorithm: str) -> List[str]:
    """The hooks ``algorithm`` accepts: the keyword-only arguments of its policy."""
    params = inspect.signature(ALGORITHMS[algorithm].__init__).parameters
    return [p for p, v in params.items() if v.kind is inspect.Parameter.KEYWORD_ONLY]


def ignored_fields(algorithm: str, config: AsyncConfig) -> FrozenSet[str]:
    """The algorithm-specific config fields that a run of ``algorithm`` does not read.

    Changing one of them does not change the run (tested); the classroom app
    greys out their controls.
    """
    return ALGORITHM_FIELDS - ALGORITHMS[algorithm].fields_read(config)


__all__ = ["ALGORITHMS", "FedAsync", "FedAvg", "FedBuff", "hooks_of", "ignored_fields",
           "make_policy"]
