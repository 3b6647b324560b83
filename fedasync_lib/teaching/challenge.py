"""The design challenge: a mixing rule, a scheduler or both, scored on held-out scenarios.

A learner submits an *entry*: a FedAsync mixing rule (``mixing_rule(ctx) -> alpha_t``), a
scheduler class (``scheduler_class(update_order, client_order)``, as in Exercise E2), or
both. :func:`score` runs it on :data:`SCENARIOS`, a fixed, seeded set of settings that no
notebook uses elsewhere (other seeds, other mixes of heterogeneity, concurrency and
label skew), and gives one number:

    score = mean tail accuracy - 0.1 * (1 - mean Jain's index of applied alpha)

Tail accuracy is the mean test accuracy over the last five evaluations; Jain's index of
applied alpha is 1 when every client pulled the model equally hard, ``1/N`` when one
client did all the pulling (:meth:`~fedasync_lib.core.history.History.influence`). The
penalty makes a rule that wins accuracy by ignoring the slow clients pay for it. The
baselines (:func:`baselines`) are the lesson's own rules.

An entry's code runs under a time limit and any error it raises is caught: a broken
entry gets no score and a one-line reason, never a traceback. A teacher collects the
learners' entries into one board: each learner calls :func:`save` into a shared folder
(or hands in the file), and :func:`board` reads them all.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from ..core.config import AsyncConfig
from ..core.history import History
from ..core.scheduling import Scheduler
from ..runner import server_for
from . import learner_code
from .feedback import one_line
from .lesson import LESSON, federated_data

#: Weight of the fairness penalty in the score.
FAIRNESS_WEIGHT = 0.1

#: Held-out scenarios: (name, config). Seeds 101 to 108 appear nowhere else in the lesson.
SCENARIOS: List[tuple] = [
    (f"het {h:g}, {c} in flight, Dirichlet {a:g}", LESSON.replace(
        heterogeneity=h, concurrency=c, dirichlet_alpha=a, seed=101 + i, staleness="constant"))
    for i, (h, c, a) in enumerate([(1.0, 5, 0.3), (1.0, 10, 1.0), (2.0, 5, 1.0), (2.0, 10, 0.3),
                                   (1.5, 8, 0.5), (2.5, 10, 0.5), (0.5, 10, 0.3), (2.0, 15, 0.5)])
]

#: Seconds an entry's whole scoring may take before it is stopped.
TIME_LIMIT = 120.0


@dataclass
class Score:
    """One entry's result on every scenario."""

    name: str
    score: Optional[float]  # None when the entry failed
    accuracy: Optional[float]
    fairness: Optional[float]  # mean Jain's index of applied alpha
    scenarios: Dict[str, Dict[str, float]] = field(default_factory=dict)
    seconds: float = 0.0
    error: str = ""

    def row(self, width: int = 32) -> str:
        """One line of the board (the run time is kept in ``seconds``, not shown: it depends
        on the machine)."""
        if self.score is None:
            return f"{self.name:{width}s} {'-':>7s} {'-':>8s} {'-':>8s}   {self.error}"
        return f"{self.name:{width}s} {self.score:7.3f} {self.accuracy:8.3f} {self.fairness:8.3f}"


def _run(config: AsyncConfig, mixing_rule: Optional[Callable],
         scheduler_class: Optional[Callable]) -> History:
    if mixing_rule is not None and hasattr(mixing_rule, "reset"):
        mixing_rule.reset()  # a stateful rule starts every scenario afresh
    hooks = {"mixing_rule": mixing_rule} if mixing_rule is not None else {}
    scheduler = scheduler_class("arrival", "random") if scheduler_class is not None else None
    return server_for(config, "fedasync", federated_data(config), scheduler=scheduler,
                      **hooks).train()


def score(name: str, mixing_rule: Optional[Callable] = None,
          scheduler_class: Optional[Callable] = None) -> Score:
    """Run an entry on every scenario and score it (see the module docstring)."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"name={name!r} is invalid: expected a non-empty string")
    start = time.perf_counter()
    results: Dict[str, Dict[str, float]] = {}

    def every_scenario() -> None:
        for label, config in SCENARIOS:
            h = _run(config, mixing_rule, scheduler_class)
            results[label] = {"accuracy": h.tail_accuracy(), "fairness": h.jain_index(by="alpha"),
                              "diverged": float(h.diverged)}

    outcome = learner_code.call(every_scenario, seconds=TIME_LIMIT)
    seconds = time.perf_counter() - start
    if outcome.timed_out:
        return Score(name, None, None, None, results, seconds,
                     f"stopped after {TIME_LIMIT:g} s: the entry did not finish")
    if outcome.error is not None:
        return Score(name, None, None, None, results, seconds,
                     f"the entry failed: {one_line(outcome.error)}")
    accuracy = [r["accuracy"] for r in results.values()]
    if any(math.isnan(a) for a in accuracy):
        diverged = [label for label, r in results.items() if r["diverged"]]
        return Score(name, None, None, None, results, seconds,
                     f"the entry diverged in {len(diverged)} scenario(s), e.g. {diverged[0]}")
    acc = float(np.mean(accuracy))
    fair = float(np.mean([r["fairness"] for r in results.values()]))
    return Score(name, acc - FAIRNESS_WEIGHT * (1 - fair), acc, fair, results, seconds)


def baselines() -> List[Score]:
    """The lesson's rules as entries: fixed alpha, polynomial and hinge staleness weighting,
    participation weighting (E2), and fewest-first scheduling."""
    from ..algorithms import adaptive, staleness
    from ..algorithms.aggregator import MixingContext

    def weighting(fn) -> Callable[[MixingContext], float]:
        return lambda ctx: ctx.config.mixing_alpha * float(fn(ctx.staleness))

    fewest = lambda update_order, client_order: Scheduler(update_order, "fewest")  # noqa: E731
    return [
        score("baseline: fixed alpha"),
        score("baseline: polynomial (a = 0.5)", weighting(staleness.polynomial(0.5))),
        score("baseline: hinge (a = 10, b = 4)", weighting(staleness.hinge(10.0, 4))),
        score("baseline: participation weighted", adaptive.participation_weighted()),
        score("baseline: fewest-first scheduler", scheduler_class=fewest),
    ]


def scoreboard(scores: List[Score]) -> str:
    """The board as text, best score first; failed entries last, with their reason."""
    ranked = sorted(scores, key=lambda s: (s.score is None, -(s.score or 0.0)))
    width = max([len(s.name) for s in scores] + [len("entry")])
    head = f"    {'entry':{width}s} {'score':>7s} {'accuracy':>8s} {'fairness':>8s}"
    lines = [head, "-" * len(head)]
    for rank, s in enumerate(ranked, 1):
        lines.append((f"{rank:2d}. " if s.score is not None else "    ") + s.row(width))
    return "\n".join(lines)


def save(entry: Score, folder: str | Path) -> Path:
    """Write one entry's result to ``folder`` (one JSON file per entry name)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", entry.name).strip("_") or "entry"
    path = folder / f"{slug}.json"
    path.write_text(json.dumps(asdict(entry), indent=1))
    return path


def board(folder: str | Path) -> List[Score]:
    """Every entry saved in ``folder``; files that are not entries are named and skipped."""
    scores = []
    for path in sorted(Path(folder).glob("*.json")):
        try:
            scores.append(Score(**json.loads(path.read_text())))
        except (ValueError, TypeError) as err:
            print(f"skipped {path.name}: not a challenge entry ({one_line(err)})")
    return scores
