"""Automatic feedback for the four exercises.

``check_exercise_N(...)`` runs the learner's code on small cases whose right
answers are known, prints what is wrong in plain words (or that all checks
passed), and returns True only when everything passed. A function that still
raises ``NotImplementedError`` is reported as not written yet.

:func:`pick` then chooses what the experiments use: the learner's code once
it passes, the library's reference implementation until then.
"""

from __future__ import annotations

import math
from typing import Any, Callable, List

import numpy as np
import torch

from ..algorithms.aggregator import MixingContext
from ..core.config import AsyncConfig
from ..core.update import Update


class _Feedback:
    """Collects the problems found by one checker and prints them."""

    def __init__(self, exercise: int):
        self.exercise = exercise
        self.problems: List[str] = []
        self.checks = 0

    def expect(self, ok: bool, problem: str) -> bool:
        self.checks += 1
        if not ok:
            self.problems.append(problem)
        return ok

    def report(self) -> bool:
        if self.problems:
            print(f"Exercise {self.exercise}: {len(self.problems)} of {self.checks} checks failed.")
            for p in dict.fromkeys(self.problems):  # each message once, in order
                print(f"  - {p}")
            return False
        print(f"Exercise {self.exercise}: all {self.checks} checks passed.")
        return True


def _call(fb: _Feedback, fn: Callable, *args: Any, what: str, hint: str = "") -> Any:
    """Call the learner's code; turn an exception into feedback (and None)."""
    try:
        return fn(*args)
    except NotImplementedError:
        raise
    except Exception as err:  # the learner's code may fail in any way
        fb.expect(False, f"{what} raised {type(err).__name__}: {err}." + (f" {hint}" if hint else ""))
        return None


def _not_written(exercise: int) -> bool:
    print(f"Exercise {exercise}: not written yet (your code raises NotImplementedError). "
          "The experiments below use the library's reference implementation until it passes.")
    return False


def pick(learner: Any, reference: Any, passed: bool, name: str = "") -> Any:
    """The learner's implementation if it passed its checks, else the reference."""
    label = f" {name}" if name else ""
    print(f"Using {'your' if passed else 'the reference'}{label} implementation.")
    return learner if passed else reference


# --- Exercise 1: bounded staleness ----------------------------------------------------------
def check_exercise_1(accept: Callable, may_start: Callable) -> bool:
    """Checks ``accept(staleness, max_staleness)`` and
    ``may_start(version, in_flight_base_versions, max_staleness)``."""
    fb = _Feedback(1)
    try:
        cases = [
            ((3, 3), True, "accept(3, max_staleness=3) should be True: an update exactly at the "
                           "bound is kept (the bound is inclusive, staleness <= max_staleness)."),
            ((4, 3), False, "accept(4, max_staleness=3) should be False: 4 versions is more than "
                            "the bound allows, so the update is dropped."),
            ((0, 0), True, "accept(0, max_staleness=0) should be True: a fresh update is always kept."),
            ((10**6, None), True, "accept(1000000, max_staleness=None) should be True: None means "
                                  "there is no bound at all."),
        ]
        for args, right, message in cases:
            got = _call(fb, accept, *args, what=f"accept{args}", hint=message)
            if got is not None:
                fb.expect(bool(got) == right, message)
        cases = [
            ((13, [11, 12], 4), True,
             "may_start(13, [11, 12], 4) should be True: the oldest job in flight is 13 - 11 = 2 "
             "versions behind, and the 2 jobs in flight (counting the new one, 2 others) could "
             "land first: 2 + 2 = 4 is within the bound (inclusive)."),
            ((14, [13, 10], 5), False,
             "may_start(14, [13, 10], 5) should be False: look at the OLDEST job in flight (the "
             "smallest base version, 10), not the newest or the first in the list: "
             "14 - 10 + 2 = 6 > 5."),
            ((13, [12, 12, 12], 3), False,
             "may_start(13, [12, 12, 12], 3) should be False: count the jobs in flight too. Each "
             "one could land before the oldest and make it staler: 13 - 12 + 3 = 4 > 3."),
            ((14, [], 0), True,
             "may_start(14, [], 0) should be True: with no job in flight there is nobody to wait for."),
            ((50, [0], None), True,
             "may_start(50, [0], None) should be True: None means there is no bound."),
            ((5, [5], 1), True,
             "may_start(5, [5], 1) should be True: 5 - 5 + 1 = 1 is within the bound (inclusive)."),
            ((5, [5], 0), False,
             "may_start(5, [5], 0) should be False: with a bound of 0 only one job may be in "
             "flight, or it could land 1 version stale."),
        ]
        for args, right, message in cases:
            got = _call(fb, may_start, *args, what=f"may_start{args}", hint=message)
            if got is not None:
                fb.expect(bool(got) == right, message)
    except NotImplementedError:
        return _not_written(1)
    return fb.report()


# --- Exercise 2: priority scheduling ----------------------------------------------------------
def check_exercise_2(scheduler_class: Callable[..., Any]) -> bool:
    """Checks a scheduler class built as ``scheduler_class(update_order, client_order)`` with
    ``push_update(job, arrival_time, base_version)``, ``pop_update()``, ``len()`` and
    ``pick_client(idle, latency, delivered, gen)``."""
    fb = _Feedback(2)
    arrivals = [("a", 1.0, 5), ("z", 2.0, 9), ("c", 3.0, 7), ("b", 3.5, 9)]
    try:
        for order, right, wrong_hint in [
            ("arrival", ["a", "z", "c", "b"], "first come, first served: by arrival time"),
            ("freshest", ["z", "b", "c", "a"], "the update computed from the newest version first "
                                              "(highest base_version), ties in arrival order"),
        ]:
            sched = scheduler_class(order, "random")
            for job, t, base in arrivals:
                _call(fb, sched.push_update, job, t, base, what=f"push_update({job!r}, {t}, {base})")
            length = _call(fb, len, sched, what="len(scheduler)")
            fb.expect(length == 4, f"after 4 push_update calls len(scheduler) should be 4, got {length}.")
            got = [_call(fb, sched.pop_update, what="pop_update()") for _ in range(4)]
            if got != right:
                if order == "freshest" and got == ["a", "z", "c", "b"]:
                    problem = ("with update_order='freshest' your queue still pops in arrival order: "
                               "the priority must be the base version (newest first), not the time.")
                elif order == "freshest" and got[0] == "a":
                    problem = ("with update_order='freshest' you applied the stalest update first "
                               "(base version 5): the freshest has the HIGHEST base version, so "
                               "use -base_version as the priority in a min-heap.")
                elif order == "freshest" and got[:2] == ["b", "z"]:
                    problem = ("two updates from the same version (9) must leave in arrival order: "
                               "'z' arrived before 'b'. Add a tie-breaker, such as an arrival "
                               "counter, between the priority and the job.")
                else:
                    problem = f"with update_order={order!r} the order should be {right} ({wrong_hint}), got {got}."
                fb.expect(False, problem)
            else:
                fb.expect(True, "")

        latency, delivered = [3.0, 1.0, 2.0, 0.5], [4, 0, 1, 9]
        gen = np.random.default_rng(0)
        for order, idle, right, message in [
            ("fastest", [0, 1, 2], 1, "client_order='fastest' should pick client 1: the smallest "
                                      "typical job time among the IDLE clients [0, 1, 2] (client 3 "
                                      "is faster but busy)."),
            ("fewest", [0, 2, 3], 2, "client_order='fewest' should pick client 2: it delivered the "
                                     "fewest updates (1) among the idle clients [0, 2, 3]."),
        ]:
            sched = scheduler_class("arrival", order)
            got = _call(fb, sched.pick_client, idle, latency, delivered, gen,
                        what=f"pick_client with client_order={order!r}")
            fb.expect(got == right, message + f" Yours picked {got}.")
        sched = scheduler_class("arrival", "random")
        picks = [_call(fb, sched.pick_client, [0, 2, 3], latency, delivered, gen,
                       what="pick_client with client_order='random'") for _ in range(300)]
        counts = {c: picks.count(c) for c in (0, 2, 3)}
        fb.expect(set(picks) <= {0, 2, 3}, "client_order='random' picked a client that is not idle.")
        fb.expect(min(counts.values()) >= 60,
                  f"client_order='random' should pick each idle client about equally often "
                  f"using the generator `gen`; over 300 picks from [0, 2, 3] yours gave {counts}.")
    except NotImplementedError:
        return _not_written(2)
    return fb.report()


# --- Exercise 3: adaptive mixing ---------------------------------------------------------------
def example_context(staleness: int, distance: float, alpha: float) -> MixingContext:
    """A mixing context whose client model lies at relative ``distance`` from the server's."""
    server = {"w": torch.ones(8), "b": torch.zeros(2)}
    norm = math.sqrt(8.0)
    direction = torch.tensor([1.0, -1.0] * 4) / math.sqrt(8.0)
    client = {"w": server["w"] + distance * norm * direction, "b": server["b"].clone()}
    update = Update(client, client_id=0, base_version=20 - staleness, num_samples=50,
                    base_state=server)
    cfg = AsyncConfig(mixing_alpha=alpha, max_staleness=None)
    return MixingContext(update, staleness, server, version=20, time=10.0, config=cfg)


def check_exercise_3(rule: Callable[[MixingContext], float]) -> bool:
    """Checks an adaptive mixing rule ``rule(ctx) -> alpha_t``: a rate in [0, alpha] that
    shrinks with staleness and with the distance between the client's and the server's model."""
    fb = _Feedback(3)
    alpha = 0.8
    stalenesses = [0, 1, 2, 5, 10, 40]
    distances = [0.001, 0.05, 0.2, 1.0, 10.0]
    try:
        grid = {}
        for t in stalenesses:
            for d in distances:
                got = _call(fb, rule, example_context(t, d, alpha), what=f"your rule at staleness {t}, distance {d}")
                if got is None:
                    return fb.report()
                ok = isinstance(got, (int, float)) and math.isfinite(got) and 0.0 <= got <= alpha + 1e-12
                fb.expect(ok, f"alpha_t must be a number between 0 and mixing_alpha ({alpha}); "
                              f"at staleness {t} and distance {d} yours returned {got!r}.")
                grid[t, d] = float(got) if ok else float("nan")
        fresh = grid[0, 0.001]
        fb.expect(abs(fresh - alpha) < 1e-6,
                  f"a fresh update (staleness 0) that lands close to the server model should get "
                  f"the full rate mixing_alpha = {alpha}; yours gave {fresh:.4g}.")
        for d in distances:
            row = [grid[t, d] for t in stalenesses]
            if any(b > a + 1e-12 for a, b in zip(row, row[1:])):
                fb.expect(False, f"weights must not grow with staleness: at distance {d} your "
                                 f"alpha_t for staleness {stalenesses} is {np.round(row, 4).tolist()}.")
                break
        fb.expect(grid[40, 0.001] < grid[0, 0.001] - 1e-6,
                  "your rate does not react to staleness: an update 40 versions old gets as much "
                  "weight as a fresh one. Multiply by a staleness function s(t).")
        for t in stalenesses:
            col = [grid[t, d] for d in distances]
            if any(b > a + 1e-12 for a, b in zip(col, col[1:])):
                fb.expect(False, f"a client model farther from the server's must not get MORE weight: "
                                 f"at staleness {t}, for distances {distances} yours gives "
                                 f"{np.round(col, 4).tolist()}.")
                break
        fb.expect(grid[0, 10.0] < grid[0, 0.001] - 1e-6,
                  "your rate ignores the second signal: an update whose model lies 10x the "
                  "server model's norm away gets as much weight as one right next to it. Use "
                  "fedasync_lib.adaptive.model_distance(ctx.update.state_dict, ctx.server_state).")
    except NotImplementedError:
        return _not_written(3)
    return fb.report()


# --- Exercise 4: the FedBuff server step ---------------------------------------------------------
def check_exercise_4(buffer_step: Callable) -> bool:
    """Checks ``buffer_step(server_state, buffered, server_lr)``: buffered is a list of
    ``(delta, staleness)``; the result is x + server_lr * mean_i(delta_i / sqrt(1 + staleness_i))."""
    fb = _Feedback(4)
    server = {"w": torch.tensor([1.0, 2.0])}
    buffered = [({"w": torch.tensor([1.0, 0.0])}, 0), ({"w": torch.tensor([0.0, 3.0])}, 3)]
    before = [server["w"].clone()] + [d["w"].clone() for d, _ in buffered]
    right = [2.0, 3.5]
    mistakes = [  # (what the mistake gives, the mistake, the fix)
        ([2.0, 5.0], "no staleness scaling", "divide each delta by sqrt(1 + staleness)"),
        ([3.0, 5.0], "a sum instead of a mean", "divide the sum by the buffer size K"),
        ([2.0, 2.75], "1 / (1 + staleness) instead of 1 / sqrt(1 + staleness)",
         "take the square root"),
        ([1.5, 2.75], "no server learning rate", "multiply the mean by server_lr"),
    ]
    try:
        out = _call(fb, buffer_step, server, buffered, 2.0, what="buffer_step(...)")
        if out is not None:
            if not (isinstance(out, dict) and "w" in out and torch.is_tensor(out["w"])):
                fb.expect(False, f"buffer_step must return a state dict like its input "
                                 f"({{'w': tensor}}), got {type(out).__name__}.")
            else:
                got = [round(v, 6) for v in out["w"].tolist()]
                problem = (f"for x = [1, 2], deltas [1, 0] (staleness 0) and [0, 3] (staleness 3) "
                           f"and server_lr 2, the new state is {right}; yours gave {got}")
                for result, mistake, fix in mistakes:
                    if got == result:
                        problem += f": that is what {mistake} gives. Fix: {fix}"
                fb.expect(got == right, problem + ".")
        after = [server["w"]] + [d["w"] for d, _ in buffered]
        fb.expect(all(torch.equal(a, b) for a, b in zip(before, after)),
                  "buffer_step changed its inputs in place: build and return a new state instead.")
        single = _call(fb, buffer_step, server, [({"w": torch.tensor([4.0, 4.0])}, 8)], 1.0,
                       what="buffer_step with one buffered update")
        if isinstance(single, dict) and torch.is_tensor(single.get("w")):
            fb.expect(torch.allclose(single["w"], torch.tensor([1.0 + 4 / 3, 2.0 + 4 / 3])),
                      "with one update of staleness 8 the step is delta / sqrt(9) = delta / 3; "
                      f"yours gave {single['w'].tolist()}.")
    except NotImplementedError:
        return _not_written(4)
    return fb.report()
